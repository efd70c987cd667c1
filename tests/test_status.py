"""``store.status.gather``: what ``publisher status`` shows, read from the database alone.
Checked against the queue itself, not against the shipped campaign's numbers."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from publisher.config import Config
from publisher.editorial.actions import pause
from publisher.editorial.load import approve, load
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import MetaRow, PostRow
from publisher.store.status import ANCHOR_KEYS, gather
from tests.fakes import set_state

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    load(db, config, NOW, "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=NOW)
    return db


def posts(db: Database) -> list[PostRow]:
    with db.read() as s:
        return list(s.scalars(select(PostRow).order_by(PostRow.due_at, PostRow.id)))


def test_the_counts_are_the_queues(queue: Database, config: Config) -> None:
    rows = posts(queue)
    first, second = rows[0], rows[1]
    set_state(queue, first.id, NOW, State.PUBLISHED, "published as 1")
    set_state(queue, second.id, NOW, State.FAILED, "refused by the platform: #100")
    info = gather(queue, config, NOW)
    stored = Counter(p.state for p in posts(queue))
    assert {k: v for k, v in info["counts"].items() if v} == {str(k): v for k, v in stored.items()}
    assert set(info["counts"]) == {str(s) for s in State}  # every state, zero or not
    per_channel = Counter((p.channel, str(p.state)) for p in posts(queue))
    assert {
        (cid, state): n for cid, states in info["channels"].items() for state, n in states.items()
    } == dict(per_channel)


def test_next_lists_the_soonest_owed_posts_in_order(queue: Database, config: Config) -> None:
    info = gather(queue, config, NOW, upcoming=3)
    expected = [p.id for p in posts(queue) if p.state == State.APPROVED][:3]
    assert [n["id"] for n in info["next"]] == expected
    times = [n["at"] for n in info["next"]]
    assert times == sorted(times) and all(t.endswith("+07:00") for t in times)


def test_problems_carry_the_cause_of_their_state(queue: Database, config: Config) -> None:
    failed = posts(queue)[2]
    set_state(queue, failed.id, NOW, State.FAILED, "refused by the platform: #368 policy")
    info = gather(queue, config, NOW)
    assert [(p["id"], p["state"], p["reason"]) for p in info["problems"]] == [
        (failed.id, "failed", "refused by the platform: #368 policy")
    ]
    assert "unfinished" not in info  # listed only when asked for


def test_unfinished_lists_every_post_still_owed_an_outcome(queue: Database, config: Config) -> None:
    rows = posts(queue)
    set_state(queue, rows[0].id, NOW, State.PUBLISHED, "published as 1")
    info = gather(queue, config, NOW, unfinished=True)
    assert {u["id"] for u in info["unfinished"]} == {p.id for p in rows[1:]}
    assert all(u["reason"] == "approved by tuan.la" for u in info["unfinished"])


def test_a_paused_channel_is_shown_blocked(queue: Database, config: Config) -> None:
    channel = next(iter(config.channels))
    pause(queue, config, channel, actor="tuan.la", now=NOW)
    blocked = gather(queue, config, NOW)["blocked"]
    assert [(b["channel"], b["paused"]) for b in blocked] == [(channel, True)]


def test_a_rehearsal_database_tells_its_campaign_time(queue: Database, config: Config) -> None:
    assert gather(queue, config, NOW)["rehearsal"] is None
    real_start = datetime.now(UTC) - timedelta(seconds=10)
    values = [real_start.isoformat(), NOW.isoformat(), "3600"]
    with queue.write() as s:
        for key, value in zip(ANCHOR_KEYS, values, strict=True):
            s.add(MetaRow(key=key, value=value))
    info = gather(queue, config, datetime.now(UTC))
    # no daemon ran on it: the campaign time of its last heartbeat, none yet: its clock now
    shown = datetime.fromisoformat(info["rehearsal"]["campaign_time"])
    assert NOW + timedelta(hours=9) <= shown <= NOW + timedelta(hours=11)
    assert info["rehearsal"]["running"] is False


def test_everything_shown_is_plain_json(queue: Database, config: Config) -> None:
    info = gather(queue, config, NOW, unfinished=True)
    assert json.loads(json.dumps(info)) == info
