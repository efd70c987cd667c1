"""The board's operations on the queue (``editorial.actions``), called as a library: which
states each accepts, where a release returns, what a reschedule does to a failed or missed post,
and the kill switch. Checked against the queue, not the shipped campaign's numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from publisher.config import Config
from publisher.editorial import actions
from publisher.editorial.load import approve, load
from publisher.errors import InputError
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import ChannelState, PostEvent, PostRow
from tests.fakes import set_state

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)
WHO = "tuan.la"


@pytest.fixture
def ids(db: Database, config: Config) -> list[int]:
    """The posts of the test campaign, drafts, soonest first."""
    load(db, config, NOW, "vanphong")
    with db.read() as s:
        return list(s.scalars(select(PostRow.id).order_by(PostRow.due_at, PostRow.id)))


def state(db: Database, post: int) -> State:
    with db.read() as s:
        return s.get_one(PostRow, post).state


def test_hold_then_release_returns_where_it_was(db: Database, ids: list[int]) -> None:
    approve(db, ids[:1], everything=False, actor=WHO, now=NOW)
    done = actions.hold(db, ids[:2], actor=WHO, now=NOW, reason="chờ số liệu")
    assert done.done == ids[:2] and done.refused == []
    assert {state(db, i) for i in ids[:2]} == {State.HELD}
    actions.release(db, ids[:2], actor=WHO, now=NOW)
    assert (state(db, ids[0]), state(db, ids[1])) == (State.APPROVED, State.DRAFT)


def test_a_post_edited_while_held_needs_approving_again(db: Database, ids: list[int]) -> None:
    approve(db, ids[:1], everything=False, actor=WHO, now=NOW)
    actions.hold(db, ids[:1], actor=WHO, now=NOW)
    with db.write() as s:  # its text changed meanwhile (a load would do this)
        s.get_one(PostRow, ids[0]).render_hash = "0" * 64
    actions.release(db, ids[:1], actor=WHO, now=NOW)
    assert state(db, ids[0]) == State.DRAFT


def test_each_action_refuses_the_states_it_does_not_take(db: Database, ids: list[int]) -> None:
    set_state(db, ids[0], NOW, State.PUBLISHED, "published as 1")
    for act in (actions.hold, actions.release):
        out = act(db, ids[:1], actor=WHO, now=NOW)
        assert out.done == [] and out.refused[0][0] == ids[0]
        assert "it is published" in out.refused[0][1]
    out = actions.reject(db, ids[:1], actor=WHO, now=NOW, reason="sai số liệu")
    assert out.done == [] and state(db, ids[0]) == State.PUBLISHED
    out = actions.cancel(db, ids[:1], actor=WHO, now=NOW, reason="")
    assert out.done == [] and out.refused[0][1].endswith("it cannot be cancelled")


def test_an_unknown_post_is_refused_in_one_line(db: Database, ids: list[int]) -> None:
    missing = max(ids) + 1
    with pytest.raises(InputError, match=f"no post has id {missing}"):
        actions.hold(db, [missing], actor=WHO, now=NOW)


def test_reject_and_cancel_record_who_and_why(db: Database, ids: list[int]) -> None:
    actions.reject(db, ids[:1], actor=WHO, now=NOW, reason="sai số liệu")
    actions.cancel(db, ids[1:2], actor=WHO, now=NOW, reason="trùng bài")
    assert (state(db, ids[0]), state(db, ids[1])) == (State.REJECTED, State.CANCELLED)
    with db.read() as s:
        causes = [
            e.cause
            for e in s.scalars(
                select(PostEvent).where(PostEvent.post_id.in_(ids[:2])).order_by(PostEvent.id)
            )
            if e.to_state in (State.REJECTED, State.CANCELLED)
        ]
    assert causes == [f"rejected by {WHO}: sai số liệu", f"cancelled by {WHO}: trùng bài"]


def test_reschedule_gives_a_failed_post_a_new_time_and_its_approval_back(
    db: Database, config: Config, ids: list[int]
) -> None:
    post = ids[0]
    approve(db, [post], everything=False, actor=WHO, now=NOW)
    set_state(db, post, NOW, State.FAILED, "gave up after 8 attempts")
    with db.read() as s:
        due = s.get_one(PostRow, post).due_at
    assert due is not None
    when = due + timedelta(days=1)
    assert actions.reschedule(db, config, post, when, actor=WHO, now=NOW, force=True) == (
        State.APPROVED
    )
    with db.read() as s:
        row = s.get_one(PostRow, post)
        assert (row.due_at, row.due_source) == (when, "manual")


def test_a_cancelled_post_cannot_be_rescheduled(
    db: Database, config: Config, ids: list[int]
) -> None:
    actions.cancel(db, ids[:1], actor=WHO, now=NOW, reason="")
    with pytest.raises(InputError, match="it cannot be rescheduled"):
        actions.reschedule(db, config, ids[0], NOW + timedelta(days=20), actor=WHO, now=NOW)


def test_pause_and_resume_one_channel_or_all(db: Database, config: Config, ids: list[int]) -> None:
    channel = next(iter(config.channels))
    assert actions.pause(db, config, channel, actor=WHO, now=NOW) == [channel]
    with db.read() as s:
        assert s.get_one(ChannelState, channel).paused is True
    every = actions.pause(db, config, None, actor=WHO, now=NOW, paused=False)
    assert set(every) == set(config.channels)
    with db.read() as s:
        assert not any(r.paused for r in s.scalars(select(ChannelState)))
    with pytest.raises(InputError):
        actions.pause(db, config, "no_such_channel", actor=WHO, now=NOW)
