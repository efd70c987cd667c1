"""A post's state changes: each one recorded in its history, and in the audit trail when a
person acted or the outcome is one a person must know of. Every state change goes through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from publisher.states import State, check_move
from publisher.store import audit
from publisher.store.models import PostEvent, PostRow
from publisher.text import clean

SYSTEM = "daemon"
_CHUNK = 500  # ids per IN (…) list
# Outcomes that enter the audit trail whoever caused them.
AUDITED: dict[str, str] = {
    State.PUBLISHED: "publish",
    State.HANDED_OFF: "hand_off",
    State.FAILED: "fail",
    State.MISSED: "missed",
    State.NEEDS_REVIEW: "needs_review",
}


def transition(
    s: Session,
    post: PostRow,
    to: State,
    now: datetime,
    cause: str,
    actor: str = SYSTEM,
    *,
    audit_as: str | None = None,
    detail: str | None = None,
    content_hash: str | None = None,
) -> None:
    """Move ``post`` to ``to`` and record why; ``audit_as`` names the action for the audit
    trail (default: the outcome's, for the states in AUDITED; none for the rest). A move the
    table of ``states.MOVES`` does not allow raises IllegalMove, and nothing is recorded."""
    check_move(post.state, to)
    cause = clean(cause)  # it may quote a platform: stored and printed without control codes
    detail = None if detail is None else clean(detail)
    action = audit_as or AUDITED.get(to)
    s.add(
        PostEvent(
            post_id=post.id, at=now, actor=actor, from_state=post.state, to_state=to, cause=cause
        )
    )
    post.state = to
    post.updated_at = now
    if action:  # after the move: the audit append's flush writes the post once, with its event
        audit.record(
            s,
            at=now,
            actor=actor,
            action=action,
            post_id=post.id,
            subject=post.channel,
            content_hash=content_hash or post.render_hash,
            detail=cause if detail is None else detail,
        )


def created(s: Session, post: PostRow, now: datetime, cause: str, actor: str = SYSTEM) -> None:
    """Record the birth of ``post`` (a draft) in its history."""
    check_move(None, post.state)
    s.add(
        PostEvent(post=post, at=now, actor=actor, from_state=None, to_state=post.state, cause=cause)
    )


def noted(s: Session, post: PostRow, now: datetime, cause: str, actor: str = SYSTEM) -> None:
    """Record an event that keeps ``post``'s state (its time planned, or set in its file)."""
    s.add(
        PostEvent(
            post=post, at=now, actor=actor, from_state=post.state, to_state=post.state, cause=cause
        )
    )


def last_causes(s: Session, post_ids: Iterable[int]) -> dict[int, str]:
    """Why each post is in its state: the cause recorded with its last change of state (events
    that keep the state, such as a reschedule or a time set in its file, do not count)."""
    ids = sorted(set(post_ids))
    out: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        last = (
            select(PostEvent.post_id, func.max(PostEvent.id).label("event_id"))
            .where(
                PostEvent.post_id.in_(ids[start : start + _CHUNK]),
                or_(PostEvent.from_state.is_(None), PostEvent.from_state != PostEvent.to_state),
            )
            .group_by(PostEvent.post_id)
            .subquery()
        )
        query = select(PostEvent.post_id, PostEvent.cause).join(
            last, PostEvent.id == last.c.event_id
        )
        out.update({pid: cause for pid, cause in s.execute(query)})
    return out
