"""Rehearsals: the campaign window mapped onto a few real minutes, on a copy of the queue.

A rehearsal never touches the real queue: it copies the database into its own SQLite file and
stores its clock anchor there, so running it again on that file resumes the same timeline. An
SQLite queue is copied whole with SQLite's online backup (schema and rows, page by page, no
rows in Python and no migrations to run: the rehearsal's memory stays small); any other
database is copied row by row into a freshly migrated target.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import Connection, Integer, delete, func, insert, select

from publisher.clock import RehearsalClock
from publisher.config import Config
from publisher.errors import DatabaseError, InputError
from publisher.store.db import SCHEMA_HEAD, Database, open_database, safe_url
from publisher.store.models import Base, MetaRow
from publisher.store.status import ANCHOR_KEYS, clock_of

COPY_BATCH = 500  # rows copied at a time


@dataclass(frozen=True)
class Rehearsal:
    db: Database
    path: str  # the rehearsal database: a file path, or a URL (password hidden) for a server
    clock: RehearsalClock
    resumed: bool
    virtual_end: datetime  # the end of the campaign window, in virtual time


def window(config: Config) -> tuple[datetime, datetime]:
    tz = config.tz
    start = datetime.combine(config.campaign.start, time(0), tz).astimezone(UTC)
    end = datetime.combine(config.campaign.end + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


def copy_database(
    source: Database, target: Database, meta: Callable[[], dict[str, str]] | None = None
) -> int:
    """Copy every row of every table (any source backend) into an empty, migrated target, then
    add the rows ``meta()`` gives (asked for once the rows are copied), all in one transaction:
    a crash leaves no half-made rehearsal."""
    rows = 0
    with source.engine.connect() as src, target.write_engine.begin() as dst:
        for table in reversed(Base.metadata.sorted_tables):
            dst.execute(delete(table))  # rows a migration seeded (the audit head)
        for table in Base.metadata.sorted_tables:
            # In batches: a whole table of rendered posts at once is tens of MB the process
            # would keep as resident memory for the rest of the rehearsal (bench/RESULTS.md).
            result = src.execute(select(table).execution_options(yield_per=COPY_BATCH))
            for batch in result.mappings().partitions():
                dst.execute(insert(table), [dict(r) for r in batch])
                rows += len(batch)
        if meta:
            rows_of_meta = meta()
            dst.execute(delete(MetaRow).where(MetaRow.key.in_(list(rows_of_meta))))
            dst.execute(insert(MetaRow), [{"key": k, "value": v} for k, v in rows_of_meta.items()])
        if dst.dialect.name == "postgresql":
            _advance_sequences(dst)
    return rows


def _advance_sequences(conn: Connection) -> None:
    """Rows inserted with their ids leave PostgreSQL's id sequences at 1: move each past its
    table's largest id, or the first new row (a post event) collides with a copied one."""
    for table in Base.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if isinstance(column.type, Integer):
                sequence = func.pg_get_serial_sequence(table.name, column.name)
                conn.execute(select(func.setval(sequence, func.max(column))))


def prepare(config: Config, source: Database, duration: timedelta, target: str | None) -> Rehearsal:
    """Open the rehearsal database ``target`` (a file, or a SQLAlchemy URL of an empty database
    or schema), resuming it if it holds a rehearsal, or fill it with a copy of ``source``."""
    if duration <= timedelta(0):
        raise InputError("--rehearse", "the duration must be positive", "e.g. --rehearse 3m")
    start, end = window(config)
    if target is None:
        target = str(Path(tempfile.mkdtemp(prefix="publisher-rehearsal-")) / "rehearsal.db")
    if "://" in target:
        url, path = target, safe_url(target)  # the path is shown: never the password
        probe = Database(url)
        try:
            resumed = probe.schema_version() is not None
        finally:
            probe.close()
    else:
        file = Path(target).resolve()
        url, path, resumed = f"sqlite:///{file}", str(file), file.exists()
    if url == source.url:
        raise InputError("--rehearsal-db", "is the real queue", "a rehearsal works on a copy")
    source_file = _sqlite_file(source)
    if not resumed and "://" not in target and source_file is not None:
        made = _snapshot(source, source_file, Path(path), start, end, duration)
        if made is not None:
            return made
        resumed = True  # another process made it meanwhile: join that rehearsal
    db = open_database(url, audit_key=source.audit_key)  # the copy's trail: the same key
    with db.read() as s:
        meta = {
            m.key: m.value for m in s.scalars(select(MetaRow).where(MetaRow.key.in_(ANCHOR_KEYS)))
        }
    if resumed and len(meta) == len(ANCHOR_KEYS):
        return Rehearsal(db, path, clock_of(meta), True, end)
    if resumed:
        raise InputError(
            "--rehearsal-db",
            f"{path} exists but is not a rehearsal",
            "name a new file to start one",
        )
    anchor = _Anchor(source, start, end, duration)
    copy_database(source, db, anchor)
    assert anchor.clock is not None  # noqa: S101 - set by copy_database
    return Rehearsal(db, path, anchor.clock, False, end)


class _Anchor:
    """A new rehearsal's meta rows, its clock started when they are asked for: after the copy,
    so the time the copy took does not eat into the rehearsed window."""

    def __init__(self, source: Database, start: datetime, end: datetime, duration: timedelta):
        self.source, self.start, self.speed = source, start, (end - start) / duration
        self.clock: RehearsalClock | None = None

    def __call__(self) -> dict[str, str]:
        self.clock = RehearsalClock(datetime.now(UTC), self.start, self.speed)
        return {
            "rehearsal.real_start": self.clock.real_start.isoformat(),
            "rehearsal.virtual_start": self.start.isoformat(),
            "rehearsal.speed": repr(self.speed),
            "rehearsal.source": self.source.url_safe,
        }


def _sqlite_file(db: Database) -> str | None:
    """The file of an SQLite database at the current schema, else None."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database if db.schema_version() == SCHEMA_HEAD else None


def _snapshot(
    source: Database,
    source_file: str,
    file: Path,
    start: datetime,
    end: datetime,
    duration: timedelta,
) -> Rehearsal | None:
    """Copy an SQLite queue into ``file`` with the online backup and add the clock anchor, in
    a side file linked into place only when complete (a crash leaves no half-made rehearsal);
    None if another process created ``file`` first."""
    anchor = _Anchor(source, start, end, duration)
    try:
        fd, side = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".partial")
    except OSError as exc:
        raise InputError(
            "--rehearsal-db",
            f"cannot create {file}: {exc.strerror}",
            "name a file in an existing folder you can write to",
        ) from exc
    os.close(fd)
    partial = Path(side)
    try:
        src = sqlite3.connect(source_file)
        try:
            dst = sqlite3.connect(partial, isolation_level=None)
            try:
                src.backup(dst)
                meta = anchor()
                dst.execute("BEGIN IMMEDIATE")
                dst.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in meta])
                dst.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
                dst.execute("COMMIT")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
        except sqlite3.Error as exc:
            raise DatabaseError(str(file), f"the rehearsal copy failed: {exc}") from exc
        finally:
            src.close()
        try:
            os.link(partial, file)  # atomic, and never over a rehearsal another process made
        except FileExistsError:
            return None
    finally:
        partial.unlink(missing_ok=True)
    assert anchor.clock is not None  # noqa: S101 - set before the link
    copy = Database(f"sqlite:///{file}", audit_key=source.audit_key)
    return Rehearsal(copy, str(file), anchor.clock, False, end)
