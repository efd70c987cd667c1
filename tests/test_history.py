"""Every state change goes through ``history.transition``: one table of allowed moves, an event
per change (with the audit entry of an audited outcome), and an illegal move refused whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import StatementError

from publisher.config import load_config
from publisher.editorial.load import load
from publisher.states import FINAL, MOVES, IllegalMove, State, check_move
from publisher.store.db import Database, open_database
from publisher.store.history import last_causes, transition
from publisher.store.models import AuditEntry, PostEvent, PostRow
from tests.fakes import path_to, set_state

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2024, 5, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = open_database(f"sqlite:///{tmp_path / 'q.db'}")
    load(database, load_config(ROOT / "config.toml"), NOW, "vanphong")
    return database


def first_post(db: Database) -> int:
    with db.read() as s:
        return int(s.scalars(select(PostRow.id).order_by(PostRow.id)).first() or 0)


def test_every_state_has_its_moves_and_every_move_leads_to_a_state() -> None:
    assert set(MOVES) == set(State)
    for targets in MOVES.values():
        assert targets <= set(State)


def test_nothing_leaves_published_or_needs_review() -> None:
    assert MOVES[State.PUBLISHED] == frozenset() and MOVES[State.NEEDS_REVIEW] == frozenset()
    assert {State.PUBLISHED, State.NEEDS_REVIEW} <= FINAL


def test_every_state_is_reachable_from_a_new_draft() -> None:
    for state in State:
        assert path_to(State.DRAFT, state)[-1] == state


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (State.DRAFT, State.PUBLISHED),  # nothing is published without approval and a claim
        (State.DRAFT, State.SENDING),
        (State.PUBLISHED, State.DRAFT),
        (State.UNCONFIRMED, State.RETRYING),  # an unclear outcome is looked up first
        (State.CANCELLED, State.APPROVED),
        (State.NEEDS_REVIEW, State.SENDING),
        (State.HELD, State.SENDING),
    ],
)
def test_illegal_moves_are_refused(before: State, after: State) -> None:
    with pytest.raises(IllegalMove, match=f"from {before} to {after}"):
        check_move(before, after)


def test_a_new_post_starts_as_a_draft() -> None:
    check_move(None, State.DRAFT)
    with pytest.raises(IllegalMove):
        check_move(None, State.APPROVED)


def test_an_illegal_transition_records_nothing(db: Database) -> None:
    post = first_post(db)
    with db.read() as s:
        events = s.scalar(select(func.count()).select_from(PostEvent))
        entries = s.scalar(select(func.count()).select_from(AuditEntry))
    with db.write() as s:
        p = s.get_one(PostRow, post)
        with pytest.raises(IllegalMove):
            transition(s, p, State.PUBLISHED, NOW, "forged")
    with db.read() as s:
        assert s.get_one(PostRow, post).state == State.DRAFT
        assert s.scalar(select(func.count()).select_from(PostEvent)) == events
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == entries


def test_a_walk_of_allowed_moves_records_an_event_each_and_audits_the_outcome(
    db: Database,
) -> None:
    post = first_post(db)
    set_state(db, post, NOW, State.PUBLISHED, "published as 42")
    with db.read() as s:
        moves = [
            (e.from_state, e.to_state)
            for e in s.scalars(select(PostEvent).where(PostEvent.post_id == post).order_by("id"))
            if e.from_state != e.to_state  # not the events that keep a state (planning)
        ]
        actions = [
            a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.post_id == post))
        ]
        assert s.get_one(PostRow, post).state == State.PUBLISHED
        assert last_causes(s, [post]) == {post: "published as 42"}
    assert moves == [
        (None, State.DRAFT),
        (State.DRAFT, State.APPROVED),
        (State.APPROVED, State.SENDING),
        (State.SENDING, State.PUBLISHED),
    ]
    assert actions[-1] == "publish"


def test_states_are_stored_as_their_values_and_read_back_as_states(db: Database) -> None:
    post = first_post(db)
    with db.read() as s:
        raw = s.execute(select(PostRow.__table__.c.state).where(PostRow.id == post)).scalar()
        row = s.get_one(PostRow, post)
    assert raw == "draft"
    assert row.state is State.DRAFT


def test_an_unknown_state_is_refused_both_ways(db: Database) -> None:
    post = first_post(db)
    with db.write() as s:
        p = s.get_one(PostRow, post)
        p.state = "bogus"  # type: ignore[assignment]
        with pytest.raises(StatementError, match="'bogus' is not a valid State"):
            s.flush()
        s.rollback()
    with db.write() as s:  # written behind publisher's back
        s.execute(text("UPDATE post SET state = 'bogus' WHERE id = :id"), {"id": post})
    with pytest.raises(ValueError, match="'bogus' is not a valid State"), db.read() as s:
        s.get_one(PostRow, post)
