"""Engines and sessions for every process (CLI and daemon alike), and schema upgrades.

SQLite gets WAL, synchronous=FULL, a 60 s busy timeout and ``BEGIN IMMEDIATE`` for writes;
any other SQLAlchemy URL (PostgreSQL) is used as it is. The schema is Alembic's, created and
upgraded by one process at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from publisher.errors import DatabaseError
from publisher.migrations import SCHEMA_HEAD as SCHEMA_HEAD  # re-exported: its old home

BUSY_TIMEOUT_S = 60


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
            _sqlite_setup(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise DatabaseError("database.url", f"{url!r} cannot be used: {exc}") from exc
    return engine


def _sqlite_setup(engine: Engine) -> None:
    """SQLAlchemy's recipe: pysqlite's own BEGIN handling off, ours on (IMMEDIATE for writers)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            f"busy_timeout={BUSY_TIMEOUT_S * 1000}",
            "foreign_keys=ON",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(
            "BEGIN " + conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        )


class Database:
    """One engine, a session factory for reads and one for writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self._write() as session, session.begin():
            yield session

    def schema_version(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError) as exc:
            if "alembic_version" in str(exc):
                return None
            raise DatabaseError(self.url_safe, f"cannot be opened: {exc.orig}") from exc

    @property
    def url_safe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already).

        One process at a time: PostgreSQL takes a transaction-level advisory lock, SQLite's
        write transaction is ``BEGIN IMMEDIATE``; the version is read again under the lock, so
        a process that waited finds the schema its predecessor made."""
        if self.schema_version() == SCHEMA_HEAD:
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig
        from alembic.migration import MigrationContext

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", "publisher:migrations")
        try:
            with self.write_engine.begin() as conn:
                _lock(conn, "schema")
                if MigrationContext.configure(conn).get_current_revision() == SCHEMA_HEAD:
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise DatabaseError(self.url_safe, f"cannot be migrated: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _lock_key(name: str) -> int:
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big", signed=True)


def _lock(conn: Connection, name: str) -> None:
    """Take the transaction-level lock ``name`` (PostgreSQL); SQLite's BEGIN IMMEDIATE is one."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(name)})


def exclusive(session: Session, name: str) -> None:
    """Serialise transactions that take the same named lock, until they end.

    On SQLite every write transaction is ``BEGIN IMMEDIATE``: this only makes it start now.
    PostgreSQL takes a transaction-level advisory lock.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(name)})
    else:
        session.execute(text("SELECT 1"))  # the session begins lazily: take BEGIN IMMEDIATE now


def open_database(url: str) -> Database:
    """Open ``url`` and upgrade its schema; the one way every command gets its database."""
    db = Database(url)
    db.upgrade()
    return db
