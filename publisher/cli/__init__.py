"""The ``publisher`` command line: a thin shell over the library.

``common`` holds the command group and what every command shares; ``main`` the pipeline's own
commands (load, check, preview, approve, report); ``queue``, ``board``, ``run``,
``mail``, ``alerts`` (watch, alerts), ``insights`` (the figures) and ``users`` the rest;
``web`` serves the board's web app.
Importing this package registers them all.
"""

from publisher.cli import alerts, board, insights, mail, main, queue, run, users, web
from publisher.cli.common import cli

__all__ = ["alerts", "board", "cli", "insights", "mail", "main", "queue", "run", "users", "web"]


def entry() -> None:
    """The ``publisher`` script."""
    cli(prog_name="publisher")
