"""Engines and sessions for every process (CLI and daemon alike), and schema upgrades.

SQLite gets WAL, synchronous=FULL, a 60 s busy timeout and ``BEGIN IMMEDIATE`` for writes;
any other SQLAlchemy URL (PostgreSQL) is used as it is. The schema is Alembic's, created and
upgraded by one process at a time. An SQLite file is created private to its user (0600; SQLite
gives its -wal and -shm the same mode). Failures of the database itself (unwritable, not a
database, unreachable) become a DatabaseError naming the file or the URL, password hidden.
"""

from __future__ import annotations

import getpass
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import DatabaseError as SQLDatabaseError
from sqlalchemy.orm import Session, sessionmaker

from publisher.errors import DatabaseError
from publisher.store.migrations import SCHEMA_HEAD as SCHEMA_HEAD  # re-exported: its old home

BUSY_TIMEOUT_S = 60
PRIVATE_MODE = 0o600
SETTING = "[database] url / PUBLISHER_DATABASE_URL"
NO_QUEUE = f"run 'publisher load' first, or set {SETTING}"
# SQLite reports a query that does not fit the schema as an OperationalError (PostgreSQL as a
# ProgrammingError): a schema that is not there yet, not a failure of the database itself.
_SCHEMA_ERRORS = ("no such table", "no such column")
_Row = TypeVar("_Row")
_PASSWORD = re.compile(r"(://[^/@:\s]*:)([^/@\s]*)@")


def safe_url(url: str) -> str:
    """``url`` with its password shown as ``***``, whether SQLAlchemy can parse it or not."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", url)


def scrub(message: str, url: str | None = None) -> str:
    """``message`` without any password: the one in ``url`` (as typed or %-encoded) and any
    ``scheme://user:password@`` in it."""
    passwords: set[str] = set()
    if url:
        with suppress(ArgumentError, ValueError):
            password = make_url(url).password
            if password:
                passwords |= {str(password), quote(str(password), safe="")}
        typed = _PASSWORD.search(url)
        if typed and typed.group(2):
            passwords.add(typed.group(2))
    for password in sorted(passwords, key=len, reverse=True):
        message = message.replace(password, "***")
    return _PASSWORD.sub(r"\1***@", message)


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for another backend, memory or a ``file:`` URI."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    name = parsed.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
            _sqlite_setup(engine, sqlite_file(url))
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise DatabaseError(
            "database.url", f"{safe_url(url)!r} cannot be used: {scrub(str(exc), url)}"
        ) from None
    return engine


def _create_private(file: Path) -> None:
    """Create ``file`` empty with mode 0600 unless it exists: SQLite would make it 0644 (and its
    -wal and -shm, which take the main file's mode, too). A folder that is missing or not
    writable is left for SQLite to report."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except OSError:
        return
    os.close(fd)


def _sqlite_setup(engine: Engine, file: Path | None) -> None:
    """SQLAlchemy's recipe: pysqlite's own BEGIN handling off, ours on (IMMEDIATE for writers)."""

    if file is not None:

        @event.listens_for(engine, "do_connect")
        def _create(*_args: Any) -> None:
            if not file.exists():
                _create_private(file)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        _wal(cur)
        for pragma in ("synchronous=FULL", "foreign_keys=ON"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(
            "BEGIN " + conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        )


# Session.info keys: the audit key (bytes) and a callable that makes one (publisher.store.audit).
AUDIT_KEY = "publisher.audit_key"
AUDIT_KEY_MAKER = "publisher.audit_key_maker"


def _wal(cur: Any) -> None:
    """Switch to WAL mode. Processes opening a new file at once can find it locked at once
    (SQLite does not wait on the busy timeout for a journal mode change): retry, up to the busy
    timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "the publisher user"


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
        self.file = sqlite_file(url)
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
        try:
            with self._read() as session:
                yield session
        except DBAPIError as exc:
            raise self.failure(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception."""
        try:
            with self._write() as session, session.begin():
                yield session
        except DBAPIError as exc:
            raise self.failure(exc) from exc

    def schema_version(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError as exc:
            if isinstance(exc, (OperationalError, ProgrammingError)) and "alembic_version" in str(
                exc.orig
            ):
                return None
            raise self.failure(exc, force=True) from exc

    @property
    def url_safe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def where(self) -> str:
        """The database as errors name it: its file, or its URL without the password."""
        return str(self.file) if self.file is not None else self.url_safe

    def failure(self, exc: DBAPIError, *, force: bool = False, doing: str = "") -> Exception:
        """The DatabaseError ``exc`` means for the operator, naming the database and the fix;
        ``exc`` itself if it is no failure of the database (a constraint, a bug in a query),
        unless ``force``. ``doing`` prefixes the problem (``cannot be migrated``)."""
        raw = str(exc.orig if exc.orig is not None else exc).strip()
        said = scrub(raw.splitlines()[0] if raw else type(exc).__name__, self.url)
        low = said.lower()
        environmental = (
            (isinstance(exc, OperationalError) and not low.startswith(_SCHEMA_ERRORS))
            or type(exc) is SQLDatabaseError
            or (isinstance(exc, ProgrammingError) and "permission denied" in low)
        )
        if isinstance(exc, IntegrityError) or not (environmental or force):
            return exc
        problem = f"{doing}: {said}" if doing else said
        return DatabaseError(self.where, problem, self._hint(said))

    def _hint(self, said: str) -> str:
        low = said.lower()
        if self.file is None:
            if "permission denied" in low:
                return "grant the database user in [database] url the rights it needs"
            return f"check {SETTING} and that the database server is reachable"
        if "not a database" in low or "malformed" in low:
            return f"point {SETTING} at the queue file"
        if "locked" in low:
            return f"another process held it over {BUSY_TIMEOUT_S} s; try again"
        return (
            f"make the file, its -wal and -shm and its folder writable by this user ({_user()}), "
            f"or point {SETTING} at the queue file"
        )

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
        cfg.set_main_option("script_location", "publisher.store:migrations")
        try:
            with self.write_engine.begin() as conn:
                _lock(conn, "schema")
                if MigrationContext.configure(conn).get_current_revision() == SCHEMA_HEAD:
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except DBAPIError as exc:
            raise self.failure(exc, force=True, doing="cannot be migrated") from exc

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


def locked_row(session: Session, model: type[_Row], values: dict[str, Any]) -> _Row:
    """The row of ``model`` whose primary key ``values`` holds, locked for this transaction
    (``FOR UPDATE``; SQLite's write transaction holds the whole file), made from ``values``
    first if there is none. Processes that find no row at once both insert it with ``ON
    CONFLICT DO NOTHING``, so neither fails on a unique violation; both then read the one row."""
    mapper = inspect(model)
    key = tuple(values[c.key] for c in mapper.primary_key)
    ident = key[0] if len(key) == 1 else key
    row = session.get(model, ident, with_for_update=True)
    if row is None:
        dialect = session.get_bind().dialect.name
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(make(model).values(**values).on_conflict_do_nothing())
        row = session.get(model, ident, with_for_update=True, populate_existing=True)
    assert row is not None  # noqa: S101 - inserted or found just above
    return row


def open_database(
    url: str,
    *,
    audit_key: bytes | None = None,
    audit_key_maker: Callable[[], bytes] | None = None,
) -> Database:
    """Open ``url`` and upgrade its schema (creating both if need be): for commands that write."""
    db = Database(url, audit_key=audit_key, audit_key_maker=audit_key_maker)
    db.upgrade()
    return db


def open_existing(url: str, *, audit_key: bytes | None = None) -> Database:
    """Open the queue at ``url`` for a command that only reads: a missing SQLite file is not
    created and a database without the schema is refused (an older schema is upgraded)."""
    file = sqlite_file(url)
    if file is not None and not file.exists():
        raise DatabaseError(f"no queue at {file}", NO_QUEUE)
    db = Database(url, audit_key=audit_key)
    version = db.schema_version()
    if version is None:
        db.close()
        raise DatabaseError(f"no queue at {db.where}", NO_QUEUE)
    if version != SCHEMA_HEAD:
        db.upgrade()
    return db
