"""``python -m publisher`` runs the command line."""

from publisher.cli import entry

entry()
