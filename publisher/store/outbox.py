"""The outbox: mail queued in the database (``outbox`` rows), so none is lost while the mail
server is down and none is sent twice when two senders flush at once.

A mail is queued in the same transaction as what it tells of (``enqueue``). A sender ``claim``s
due rows — each by a conditional update that only one sender can win — then records each
outcome: ``sent``, ``retry`` at a later time, or ``failed`` for good. A claim that its sender
never settled (the process died) expires after its lease; the mail is then sent again with the
same ``Message-ID``, so a mail client shows a duplicate as one. No SMTP here
(``publisher.alerts.sender`` sends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from publisher.store.db import Database
from publisher.store.models import OutboxRow

ERROR_LENGTH = 500  # a last error longer than this is cut (it is for people, not a log)


@dataclass(frozen=True)
class Mail:
    """A claimed outbox row, detached from its session."""

    id: int
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    attempts: int


def enqueue(
    s: Session,
    *,
    message_id: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    now: datetime,
    html: str | None = None,
    alert_key: str | None = None,
) -> OutboxRow:
    """Queue one mail in ``s``'s transaction (it is sent once that commits)."""
    row = OutboxRow(
        message_id=message_id,
        recipients=list(recipients),
        subject=subject,
        text=text,
        html=html,
        alert_key=alert_key,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    s.add(row)
    return row


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        OutboxRow.sent_at.is_(None),
        OutboxRow.failed_at.is_(None),
        OutboxRow.next_attempt_at <= now,
        or_(OutboxRow.claim_until.is_(None), OutboxRow.claim_until < now),
    ]


def claim(
    db: Database, worker: str, now: datetime, lease: timedelta, limit: int = 20
) -> list[Mail]:
    """Claim up to ``limit`` due mails for ``worker`` until ``now + lease``. Each row is taken
    by a conditional update: of two senders racing for it, exactly one updates it."""
    with db.read() as s:
        ids = list(
            s.scalars(select(OutboxRow.id).where(*_due(now)).order_by(OutboxRow.id).limit(limit))
        )
    won: list[Mail] = []
    for row_id in ids:
        with db.write() as s:
            taken = s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id, *_due(now))
                .values(claimed_by=worker, claim_until=now + lease)
                .execution_options(synchronize_session=False)
            )
            if getattr(taken, "rowcount", 0) != 1:
                continue
            row = s.get(OutboxRow, row_id)
            assert row is not None  # noqa: S101 - just updated
            won.append(
                Mail(
                    row.id,
                    row.message_id,
                    tuple(row.recipients),
                    row.subject,
                    row.text,
                    row.html,
                    row.attempts,
                )
            )
    return won


def _settle(db: Database, mail: Mail, worker: str, **values: object) -> bool:
    """Record an outcome of ``worker``'s claim (False if the claim was lost meanwhile)."""
    with db.write() as s:
        done = s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == mail.id, OutboxRow.claimed_by == worker)
            .values(claimed_by=None, claim_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return getattr(done, "rowcount", 0) == 1


def sent(db: Database, mail: Mail, worker: str, now: datetime) -> bool:
    return _settle(db, mail, worker, sent_at=now, attempts=mail.attempts + 1, last_error=None)


def retry(db: Database, mail: Mail, worker: str, at: datetime, error: str) -> bool:
    return _settle(
        db,
        mail,
        worker,
        next_attempt_at=at,
        attempts=mail.attempts + 1,
        last_error=error[:ERROR_LENGTH],
    )


def failed(db: Database, mail: Mail, worker: str, now: datetime, error: str) -> bool:
    return _settle(
        db, mail, worker, failed_at=now, attempts=mail.attempts + 1, last_error=error[:ERROR_LENGTH]
    )


def release(db: Database, worker: str) -> None:
    """Give back the claims ``worker`` holds and did not settle (their mails wait as before)."""
    with db.write() as s:
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.claimed_by == worker)
            .values(claimed_by=None, claim_until=None)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class OutboxState:
    """What the outbox holds, for ``publisher alerts``."""

    waiting: int
    sent: int
    failed: int
    oldest_waiting: datetime | None
    last_error: str | None


def state(db: Database) -> OutboxState:
    with db.read() as s:
        pending = [OutboxRow.sent_at.is_(None), OutboxRow.failed_at.is_(None)]
        waiting = s.scalar(select(func.count()).select_from(OutboxRow).where(*pending)) or 0
        done = s.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_not(None))
        )
        refused = s.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.failed_at.is_not(None))
        )
        oldest = s.scalar(select(func.min(OutboxRow.created_at)).where(*pending))
        error = s.scalar(
            select(OutboxRow.last_error)
            .where(*pending, OutboxRow.last_error.is_not(None))
            .order_by(OutboxRow.id.desc())
            .limit(1)
        )
    return OutboxState(int(waiting), int(done or 0), int(refused or 0), oldest, error)
