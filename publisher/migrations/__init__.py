"""Alembic migrations of the queue's schema; applied automatically by ``open_database``."""
