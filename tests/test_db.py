from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text

from publisher.store.db import SCHEMA_HEAD, Database, open_database
from publisher.store.models import Base, MessageRow
from tests.conftest import BACKENDS
from tests.fakes import together


def test_schema_head_constant_matches_the_newest_migration() -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "publisher.store:migrations")
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'q.db'}")
    assert db.schema_version() == SCHEMA_HEAD
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    open_database(db.url)  # a second open is a no-op


def test_sqlite_settings(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'q.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_writes_begin_immediate_and_reads_deferred(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'q.db'}")
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.write() as s:
        s.execute(text("SELECT 1"))
    with db.read() as s:
        s.execute(text("SELECT 1"))
    begins = [st for st in statements if st.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]


def test_concurrent_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    open_database(url)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        db = Database(url)
        try:
            for i in range(10):
                with db.write() as s:
                    count = s.execute(text("SELECT count(*) FROM message")).scalar_one()
                    s.execute(
                        text(
                            "INSERT INTO message (key, kind, title, summary, body, channels, draft,"
                            " content_hash, source_path, status, created_at, updated_at) VALUES"
                            " (:k, 'slogan', '', '', '', '[]', 0, '', '', 'active', :t, :t)"
                        ),
                        {"k": f"{n}-{i}-{count}", "t": "2024-06-01 00:00:00"},
                    )
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Database(url).read() as s:
        assert s.execute(text("SELECT count(*) FROM message")).scalar_one() == 40


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'q.db'}")
    naive = datetime(2024, 6, 1, 8, 0)  # noqa: DTZ001 - the point of the test
    with db.write() as s:
        s.add(
            MessageRow(
                key="k",
                kind="slogan",
                title="",
                summary="",
                body="",
                channels=[],
                draft=False,
                content_hash="",
                source_path="",
                status="active",
                created_at=naive,
                updated_at=naive,
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            s.flush()
        s.rollback()


def test_upgrading_mid_campaign_keeps_the_queue(tmp_path: Path) -> None:
    """A queue made by the first release is upgraded in place by the newest code."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "publisher.store:migrations")
    engine = Database(url).write_engine
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO message (id, key, kind, title, summary, body, channels, draft,"
                " content_hash, source_path, status, created_at, updated_at) VALUES (1, 'slogans/x',"
                " 'slogan', 't', '', 'Toàn dân', '[\"zalo\"]', 0, 'h', 'p', 'active', :t, :t)"
            ),
            {"t": "2024-06-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO post (id, message_id, channel, occurrence, state, due_at, due_source,"
                " text, fields, render_hash, idempotency_key, created_at, updated_at) VALUES"
                " (1, 1, 'zalo', 1, 'approved', :t, 'plan', 'Toàn dân', '{}', 'r', 'k', :t, :t)"
            ),
            {"t": "2024-06-01 00:00:00"},
        )
    db = open_database(url)
    assert db.schema_version() == SCHEMA_HEAD
    with db.read() as s:
        row = s.execute(text("SELECT state, text, attempt, claims FROM post WHERE id = 1")).one()
    assert tuple(row) == ("approved", "Toàn dân", 0, 0)


@pytest.mark.parametrize("fresh_url", BACKENDS, indirect=True)
def test_a_row_made_by_several_processes_at_once_is_made_once_and_locked(fresh_url: str) -> None:
    """``locked_row``: writers that all find no row insert it together, none fails on a unique
    violation (PostgreSQL), and each then changes the one row in turn (nothing lost)."""
    from datetime import UTC

    from publisher.store.db import locked_row
    from publisher.store.models import ChannelState

    db = open_database(fresh_url)
    width, now = 6, datetime(2024, 6, 1, tzinfo=UTC)
    barrier = threading.Barrier(width)

    def block() -> int:
        barrier.wait(timeout=10)
        with db.write() as s:
            row = locked_row(s, ChannelState, {"channel": "zalo", "probes": 0, "updated_at": now})
            row.probes += 1
            return row.probes

    try:
        for r in range(3):
            counts = together(*[block] * width)
            assert sorted(counts) == list(range(r * width + 1, (r + 1) * width + 1)), counts
        with db.read() as s:
            row = s.get(ChannelState, "zalo")
            assert row is not None and row.probes == 3 * width and not row.paused
    finally:
        db.close()
