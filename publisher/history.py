"""A post's state changes: each one recorded in its history, and in the audit trail when a
person acted or the outcome is one a person must know of. Every state change goes through here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from publisher import audit
from publisher.models import PostEvent, PostRow
from publisher.states import State

SYSTEM = "daemon"
# Outcomes that enter the audit trail whoever caused them.
AUDITED: dict[str, str] = {
    State.PUBLISHED: "publish",
    State.FAILED: "fail",
    State.MISSED: "missed",
    State.NEEDS_REVIEW: "needs_review",
}


def transition(
    s: Session,
    post: PostRow,
    to: str,
    now: datetime,
    cause: str,
    actor: str = SYSTEM,
    *,
    audit_as: str | None = None,
    detail: str | None = None,
    content_hash: str | None = None,
) -> None:
    """Move ``post`` to ``to`` and record why; ``audit_as`` names the action for the audit
    trail (default: the outcome's, for the states in AUDITED; none for the rest)."""
    action = audit_as or AUDITED.get(to)
    if action:
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
    event = PostEvent(at=now, actor=actor, from_state=post.state, to_state=to, cause=cause)
    if post.id is None:
        event.post = post  # a new post: the relationship fills the id on flush
    else:
        event.post_id = post.id
    s.add(event)
    post.state = to
    post.updated_at = now
