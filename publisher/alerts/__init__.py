"""Alerts to the board: what is wrong now, told once by mail, reminded, and said resolved.

- ``causes``: pure functions of the database state, each giving the **open causes** of one
  kind (a failed post, a blocked channel, a stale daemon …), each with a stable key
  (``post_failed:12``, ``channel_blocked:zalo``); ``SOURCES`` lists them, ``add_source``
  adds one.
- ``texts``: what a mail says (Vietnamese by default, English with ``PUBLISHER_LANG=en``).
- ``engine``: compares the open causes with the ``alert`` table: a new cause → one alert mail
  to each member ``[alerts] to`` names for its kind; still open after ``remind_every`` → a
  reminder; gone → one "resolved" mail. Mail is queued in the ``outbox`` table in the same
  transaction, so a cause alerts once however many processes see it.
- ``sender``: sends the outbox through the mail server, retrying with backoff.
- ``watch``: one evaluation and flush (``publisher watch``, and the daemon's periodic job).
"""
