"""The ``publisher`` command line: a thin shell over the library.

``common`` holds the command group and what every command shares; ``main`` the pipeline's own
commands (load, check, preview, approve, report); ``queue``, ``board``, ``run``,
``mail``, ``alerts`` (watch, alerts), ``insights`` (the figures) and ``users`` the rest;
``web`` serves the board's web app.
The group imports a command's module when the command is looked up (``common.COMMANDS``), so a
command starts without the others' imports; listing the commands imports them all.
"""

from publisher.cli.common import cli

__all__ = ["cli", "entry"]


def entry() -> None:
    """The ``publisher`` script."""
    cli(prog_name="publisher")
