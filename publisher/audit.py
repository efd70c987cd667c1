"""The audit trail: append-only, each entry chained to the previous one by its hash.

``record`` appends inside the caller's transaction (so an action and its entry commit together);
``verify`` recomputes the chain and names every edited or removed entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.db import Database
from publisher.models import AuditEntry, AuditHead, PostRow

GENESIS = "0" * 64
# How the dispatcher's cause begins when it finds a post altered in the database after its
# approval: ``verify`` names every such revocation, as evidence that outlives the repair.
ALTERED = "approval revoked: altered in the database"
# Posts that stand on their approval, or went out on it: their stored fields must be the text
# approved, and the audit trail must hold that approval.
_BOUND = ("approved", "held", "sending", "retrying", "unconfirmed", "published")


def digest(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    post_id: int | None,
    subject: str,
    content_hash: str | None,
    detail: str,
) -> str:
    when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [prev_hash, when, actor, action, post_id, subject, content_hash, detail]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    s: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    post_id: int | None = None,
    subject: str = "",
    content_hash: str | None = None,
    detail: str = "",
) -> AuditEntry:
    """Append one entry; the head row is locked, so concurrent appends queue up in order."""
    head = s.get(AuditHead, 1, with_for_update=True)
    if head is None:  # created by the migration; recreated only if someone deleted it
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        s.add(head)
    at = at.astimezone(UTC)
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        post_id=post_id,
        subject=subject,
        content_hash=content_hash,
        detail=detail,
        prev_hash=head.last_hash,
        hash=digest(head.last_hash, at, actor, action, post_id, subject, content_hash, detail),
    )
    s.add(entry)
    s.flush()
    head.last_id, head.last_hash = entry.id, entry.hash
    return entry


def approves(s: Session, post_id: int, content_hash: str | None) -> bool:
    """Whether the audit trail's last approval of post ``post_id`` is of ``content_hash``."""
    last = s.scalars(
        select(AuditEntry.content_hash)
        .where(AuditEntry.post_id == post_id, AuditEntry.action == "approve")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    return content_hash is not None and last == content_hash


@dataclass(frozen=True)
class Verification:
    entries: int
    problems: list[str]
    head: str

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(db: Database) -> Verification:
    problems: list[str] = []
    prev, last_id = GENESIS, 0
    count = 0
    with db.read() as s:
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(500):
            count += 1
            if e.id != last_id + 1:
                gap = f"{last_id + 1}" if e.id == last_id + 2 else f"{last_id + 1}–{e.id - 1}"
                problems.append(f"entry {gap} was removed (the ids jump from {last_id} to {e.id})")
            elif e.prev_hash != prev:
                problems.append(
                    f"entry {e.id} no longer follows entry {last_id} (its link was altered)"
                )
            expected = digest(
                e.prev_hash, e.at, e.actor, e.action, e.post_id, e.subject, e.content_hash, e.detail
            )
            if expected != e.hash:
                problems.append(f"entry {e.id} was edited: its content no longer matches its hash")
            prev, last_id = e.hash, e.id
            if e.action == "revoke" and e.detail.startswith(ALTERED):
                problems.append(
                    f"post {e.post_id} was altered in the database after its approval "
                    f"(found when sending it, entry {e.id}; nothing was sent)"
                )
        head = s.get(AuditHead, 1)
        problems += _posts(s)
    if head is None:
        if count:
            problems.append("the chain's head record was removed")
    elif head.last_id != last_id or head.last_hash != prev:
        if head.last_id > last_id:
            problems.append(f"entries after {last_id} (up to {head.last_id}) were removed")
        else:
            problems.append(f"the chain's head says entry {head.last_id}, the last is {last_id}")
    return Verification(count, problems, prev)


def _posts(s: Session) -> list[str]:
    """Posts whose stored text or approved hash was changed in the database after approval."""
    from publisher.render import fields_hash

    problems = []
    approved = {  # each post's last approval in the trail
        pid: h
        for pid, h in s.execute(
            select(AuditEntry.post_id, AuditEntry.content_hash)
            .where(AuditEntry.action == "approve")
            .order_by(AuditEntry.id)
        )
    }
    rows = s.scalars(
        select(PostRow)
        .where(PostRow.state.in_(_BOUND), PostRow.approved_hash.is_not(None))
        .order_by(PostRow.id)
    )
    for p in rows:
        if p.state == "held" and p.held_from != "approved":
            continue
        if fields_hash(p.fields) != p.approved_hash:
            problems.append(
                f"post {p.id} ({p.state}): its stored text no longer matches the approved text "
                "(altered in the database after its approval)"
            )
        elif approved.get(p.id) != p.approved_hash:
            problems.append(
                f"post {p.id} ({p.state}): the audit trail holds no approval of its text "
                "(its approval was altered in the database)"
            )
    return problems


def entries(db: Database, post_id: int | None = None) -> list[AuditEntry]:
    with db.read() as s:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if post_id is not None:
            q = q.where(AuditEntry.post_id == post_id)
        return list(s.scalars(q))
