"""A rehearsal's copy of the queue: the whole queue, the clock anchor, never half made."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher.config import Config
from publisher.dispatch.rehearsal import Rehearsal, prepare
from publisher.editorial.load import approve, load
from publisher.store.db import Database, open_database
from publisher.store.status import ANCHOR_KEYS
from tests.conftest import BACKENDS
from tests.fakes import together

T0 = datetime(2024, 5, 20, tzinfo=UTC)


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, the meta table aside, and the schema."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {t: sorted(conn.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}  # noqa: S608
        out["schema"] = sorted(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    out.pop("meta")
    return out


@pytest.fixture
def queue(config: Config) -> Database:
    source = open_database(config.database_url)
    load(source, config, T0, "vanphong")
    approve(source, [], everything=True, actor="tuan.la", now=T0)
    return source


def test_an_sqlite_queue_is_copied_whole_with_its_anchor(
    queue: Database, config: Config, tmp_path: Path
) -> None:
    real = Path(queue.engine.url.database or "")
    before = rows(real)
    target = tmp_path / "june.db"
    r = prepare(config, queue, timedelta(minutes=2), str(target))
    assert not r.resumed and r.path == str(target)
    assert rows(target) == before  # every row of every table, the same schema
    assert rows(real) == before  # the real queue untouched
    assert not list(tmp_path.glob("*.partial"))  # no side file left
    with sqlite3.connect(target) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert set(ANCHOR_KEYS) <= set(meta) and meta["rehearsal.source"] == queue.url_safe
    assert float(meta["rehearsal.speed"]) == pytest.approx(30 * 24 * 60 / 2)
    r.db.close()
    again = prepare(config, queue, timedelta(minutes=2), str(target))
    assert again.resumed and again.clock == r.clock  # the same timeline resumes
    again.db.close()


def test_the_row_by_row_copy_gives_the_same_rehearsal(
    queue: Database, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path other databases take (a migrated target filled row by row) agrees."""
    fast = prepare(config, queue, timedelta(minutes=2), str(tmp_path / "fast.db"))
    fast.db.close()
    monkeypatch.setattr("publisher.dispatch.rehearsal._sqlite_file", lambda _db: None)
    slow = prepare(config, queue, timedelta(minutes=2), str(tmp_path / "slow.db"))
    slow.db.close()
    assert rows(tmp_path / "fast.db") == rows(tmp_path / "slow.db")


def test_a_rehearsal_made_meanwhile_by_another_process_is_joined(
    queue: Database, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two daemons started at once on one new --rehearsal-db: the one that finishes its copy
    second does not replace the first's; it joins the first's timeline."""
    import publisher.dispatch.rehearsal as rehearsal

    target = tmp_path / "june.db"
    real_snapshot = rehearsal._snapshot
    made: list[Rehearsal] = []

    def raced(*args: Any) -> Rehearsal | None:
        other = real_snapshot(*args)  # another process links its copy in first …
        assert other is not None
        other.db.close()
        made.append(other)
        before = target.read_bytes()
        assert real_snapshot(*args) is None  # … so this one's copy is not linked over it
        assert target.read_bytes() == before
        return None

    monkeypatch.setattr(rehearsal, "_snapshot", raced)
    joined = prepare(config, queue, timedelta(minutes=5), str(target))
    assert joined.resumed and joined.clock == made[0].clock
    joined.db.close()
    assert not list(tmp_path.glob("*.partial"))


def test_status_reads_a_rehearsal_on_its_own_clock(
    queue: Database, config: Config, tmp_path: Path
) -> None:
    """A channel throttled for a campaign day of a running rehearsal is blocked in status (its
    2024 block is compared with the rehearsal's time, not today's); once the rehearsal stopped,
    with the campaign time of its last heartbeat."""
    from publisher.store.models import ChannelState, DaemonRow
    from publisher.store.status import gather

    r = prepare(config, queue, timedelta(minutes=2), str(tmp_path / "june.db"))
    real_now = datetime.now(UTC)
    virtual_now = r.clock.now()
    with r.db.write() as s:
        s.add(
            ChannelState(
                channel="facebook",
                paused=False,
                blocked_until=virtual_now + timedelta(days=1),
                block_kind="throttled",
                block_reason="throttled: code 4",
                updated_at=virtual_now,
            )
        )
        s.add(
            DaemonRow(
                worker="rehearsing",
                host="here",
                pid=1,
                mode="rehearse",
                started_at=real_now,
                beat_at=real_now,
            )
        )
    info = gather(r.db, config, real_now)
    assert [b["channel"] for b in info["blocked"]] == ["facebook"]
    assert info["rehearsal"]["running"] is True
    shown = datetime.fromisoformat(info["rehearsal"]["campaign_time"])
    assert virtual_now <= shown <= r.clock.now()
    with r.db.write() as s:
        row = s.get_one(DaemonRow, "rehearsing")
        row.stopped_at = row.beat_at
    info = gather(r.db, config, datetime.now(UTC))
    assert info["rehearsal"] == {
        "campaign_time": r.clock.at(real_now).astimezone(config.tz).isoformat(),
        "running": False,
    }
    assert [b["channel"] for b in info["blocked"]] == ["facebook"]
    r.db.close()


@pytest.mark.parametrize("fresh_url", BACKENDS, indirect=True)
def test_daemons_finishing_together_keep_every_birth(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two daemons of one rehearsal end at once and each keeps what its sandbox told of its
    items' births: neither may fail on the other's row (a unique violation on PostgreSQL, seen
    in CI) nor overwrite the births the other kept."""
    import json
    import threading

    import publisher.sandbox.client as client
    from publisher.app import BIRTHS_KEY, keep_births
    from publisher.store.models import MetaRow

    db = open_database(fresh_url)
    rounds, width = 6, 4
    barrier = threading.Barrier(width)

    def told(url: str) -> dict[str, Any]:
        barrier.wait(timeout=10)  # every thread reads and writes at once
        return {"seed": 7, "births": {url: "2024-06-01T00:00:00+00:00"}}

    monkeypatch.setattr(client, "sandbox_births", told)

    def keep(url: str) -> Callable[[], bool]:
        return lambda: keep_births(db, url)

    try:
        for r in range(rounds):
            kept = together(*(keep(f"{r}:{i}") for i in range(width)))
            assert kept == [True] * width, kept
        with db.read() as s:
            row = s.get(MetaRow, BIRTHS_KEY)
        assert row is not None
        value = json.loads(row.value)
        assert value["seed"] == 7
        assert set(value["births"]) == {f"{r}:{i}" for r in range(rounds) for i in range(width)}
    finally:
        db.close()
