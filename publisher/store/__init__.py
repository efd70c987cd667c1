"""The queue in the database: engine and schema (``db``, ``models``, ``migrations``), every state
change and its event (``history``), the keyed audit chain (``audit``, ``audit_key``), the daemons'
heartbeats (``workers``) and the reads ``publisher status`` shows (``status``)."""
