"""The board's side of the queue: loading content into posts (``load``), approving, editing and
rescheduling (``actions``), adding and importing content (``intake``) and ``publisher check``."""
