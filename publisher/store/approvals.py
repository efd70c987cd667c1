"""The steps of posts' approvals (``[board] approval_steps``), as ``Approval`` rows.

The table is append-only: an approval of one step is a row (who, which step, the hash of the
text approved); a revocation — the text changed, the post was rejected, the daemon found it
unsendable — is a row of the step ``revoked``, after which the earlier rows of that post no
longer count. A row counts ("live") when it comes after the post's last revocation and approved
the post's current text (``fields_hash`` of its stored fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.config.model import ROLES
from publisher.render import fields_hash
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import Approval, PostRow

REVOKED = "revoked"  # the step of a revocation marker


def _since_revocation(s: Session, post_id: int) -> list[Approval]:
    rows = list(
        s.scalars(select(Approval).where(Approval.post_id == post_id).order_by(Approval.id))
    )
    last = max((i for i, r in enumerate(rows) if r.step == REVOKED), default=-1)
    return rows[last + 1 :]


def live(s: Session, post: PostRow) -> list[Approval]:
    """The approvals of ``post``'s current text since its last revocation, oldest first."""
    current = fields_hash(post.fields)
    return [r for r in _since_revocation(s, post.id) if r.content_hash == current]


def record(s: Session, post: PostRow, step: str, actor: str, now: datetime) -> Approval:
    """``actor`` approved ``post``'s current text as ``step``."""
    row = Approval(
        post_id=post.id, step=step, actor=actor, content_hash=fields_hash(post.fields), at=now
    )
    s.add(row)
    s.flush()
    return row


def revoke(s: Session, post: PostRow, actor: str, now: datetime) -> bool:
    """Make ``post``'s approvals so far count no more (a marker row, only if any would count
    otherwise); True if there were any."""
    if not any(r.step != REVOKED for r in _since_revocation(s, post.id)):
        return False
    s.add(Approval(post_id=post.id, step=REVOKED, actor=actor, content_hash="", at=now))
    s.flush()
    return True


def reaches(role: str | None, step: str) -> bool:
    """Whether a member of ``role`` may take the approval step ``step`` (their own role's or a
    lower one's); ``None``: no board, anyone takes any step."""
    if role is None:
        return True
    if role not in ROLES or step not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(step)


@dataclass(frozen=True)
class Progress:
    """Where a post's approval stands: the steps done (each with its approval) and pending."""

    steps: tuple[str, ...]
    done: tuple[Approval, ...]
    pending: tuple[str, ...]

    @property
    def next_step(self) -> str | None:
        return self.pending[0] if self.pending else None

    def number(self, step: str) -> int:
        """``step``'s place in the order, from 1."""
        return self.steps.index(step) + 1


def progress(rows: Sequence[Approval], steps: Sequence[str]) -> Progress:
    """The steps of ``steps`` that the live approvals ``rows`` fulfil, and those still pending."""
    by_step = {r.step: r for r in rows if r.step in steps}
    done = tuple(by_step[st] for st in steps if st in by_step)
    return Progress(tuple(steps), done, tuple(st for st in steps if st not in by_step))


def of_post(s: Session, post: PostRow, steps: Sequence[str]) -> Progress:
    """``post``'s approval progress under ``steps`` (``config.approval.steps``)."""
    return progress(live(s, post), steps)


def read_progress(db: Database, post_id: int, steps: Sequence[str]) -> Progress | None:
    """Post ``post_id``'s approval progress (None if no such post), for pages and commands."""
    with db.read() as s:
        post = s.get(PostRow, post_id)
        if post is None:
            return None
        return of_post(s, post, steps)


def read_awaiting(db: Database, steps: Sequence[str]) -> dict[int, Progress]:
    """Every draft's approval progress (by post id), in two queries: what each waits for
    (``progress.next_step``) and who took the steps done, for lists and calendars."""
    with db.read() as s:
        drafts = {p.id: p for p in s.scalars(select(PostRow).where(PostRow.state == State.DRAFT))}
        rows: dict[int, list[Approval]] = {pid: [] for pid in drafts}
        query = (
            select(Approval)
            .join(PostRow, PostRow.id == Approval.post_id)
            .where(PostRow.state == State.DRAFT)
            .order_by(Approval.id)
        )
        for row in s.scalars(query):
            if row.post_id not in rows:  # became a draft since the first query
                continue
            if row.step == REVOKED:
                rows[row.post_id] = []
            else:
                rows[row.post_id].append(row)
        out = {}
        for pid, p in drafts.items():
            current = fields_hash(p.fields)
            out[pid] = progress([r for r in rows[pid] if r.content_hash == current], steps)
        return out
