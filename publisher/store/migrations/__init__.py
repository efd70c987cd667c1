"""Alembic migrations of the queue's schema; applied automatically by ``open_database``."""

SCHEMA_HEAD = "0010"  # the newest migration in versions/ (a test checks); light to import
