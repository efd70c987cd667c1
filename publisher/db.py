"""Engines and sessions for every process (CLI and daemon alike), and schema upgrades.

SQLite gets WAL, synchronous=FULL, a 60 s busy timeout and ``BEGIN IMMEDIATE`` for writes;
any other SQLAlchemy URL (PostgreSQL) is used as it is. The schema is Alembic's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
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


# Session.info keys: the audit key (bytes) and a callable that makes one (publisher.audit).
AUDIT_KEY = "publisher.audit_key"
AUDIT_KEY_MAKER = "publisher.audit_key_maker"


class Database:
    """One engine, a session factory for reads and one for writes.

    ``audit_key`` keys the audit chain (every session carries it in ``info``, so the code that
    appends to the trail finds it without it being passed down); ``audit_key_maker`` is called
    for a key when an unkeyed chain is first appended to and none was given (the CLI's makes one
    in the .env file). Without either, the chain stays unkeyed (library use, tests).
    """

    def __init__(
        self,
        url: str,
        *,
        audit_key: bytes | None = None,
        audit_key_maker: Callable[[], bytes] | None = None,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._info: dict[str, Any] = {AUDIT_KEY: audit_key}
        if audit_key_maker is not None:
            self._info[AUDIT_KEY_MAKER] = lambda: self._made(audit_key_maker)
        self._read = sessionmaker(self.engine, expire_on_commit=False, info=self._info)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False, info=self._info)

    @property
    def audit_key(self) -> bytes | None:
        key: bytes | None = self._info[AUDIT_KEY]
        return key

    @audit_key.setter
    def audit_key(self, key: bytes | None) -> None:
        self._info[AUDIT_KEY] = key  # sessions begun from now on carry it

    def _made(self, maker: Callable[[], bytes]) -> bytes:
        key = maker()
        self.audit_key = key
        return key

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
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        if self.schema_version() == SCHEMA_HEAD:
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", "publisher:migrations")
        try:
            with self.write_engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise DatabaseError(self.url_safe, f"cannot be migrated: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()


def exclusive(session: Session, name: str) -> None:
    """Serialise transactions that take the same named lock, until they end.

    On SQLite every write transaction is ``BEGIN IMMEDIATE``: this only makes it start now.
    PostgreSQL takes a transaction-level advisory lock.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        key = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    else:
        session.execute(text("SELECT 1"))  # the session begins lazily: take BEGIN IMMEDIATE now


def open_database(
    url: str,
    *,
    audit_key: bytes | None = None,
    audit_key_maker: Callable[[], bytes] | None = None,
) -> Database:
    """Open ``url`` and upgrade its schema; the one way every command gets its database."""
    db = Database(url, audit_key=audit_key, audit_key_maker=audit_key_maker)
    db.upgrade()
    return db
