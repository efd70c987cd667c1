"""The alert engine: the open causes (``causes.SOURCES``) against the ``alert`` table.

- a cause with no open row → the row is made (its key is unique) and an alert mail is queued
  for each member ``[alerts] to`` names for its kind;
- a cause still open ``remind_every`` after its last mail → a reminder;
- an open row whose cause is gone → "resolved" (a one-off notice, the digest, just closes).

Each step is one conditional write (an insert of a unique key, or an update guarded by what
was read) in the transaction that queues its mails: however many daemons and watchdogs
evaluate at once, each cause's alert, reminder and resolution is mailed once. If a source
fails, the pass resolves nothing (a cause it could not see is not gone) and says so.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from publisher.alerts import texts
from publisher.alerts.causes import ONE_SHOT, SOURCES, Cause, CauseSource, Context
from publisher.config import Config
from publisher.store import outbox
from publisher.store.db import Database
from publisher.store.models import AlertRow

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What one evaluation found and queued."""

    open: list[Cause] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    mails: int = 0
    failed_sources: list[str] = field(default_factory=list)


def find_causes(
    db: Database, ctx: Context, sources: Sequence[CauseSource] | None = None
) -> tuple[list[Cause], list[str]]:
    """Every open cause of every source (each key once), and the sources that failed."""
    found: dict[str, Cause] = {}
    failed: list[str] = []
    with db.read() as s:
        for source in SOURCES if sources is None else sources:
            try:
                for cause in source(s, ctx):
                    found.setdefault(cause.key, cause)
            except Exception:
                name = getattr(source, "__name__", repr(source))
                logger.exception("alerts: the cause source %s failed", name)
                failed.append(name)
    return list(found.values()), failed


def evaluate(
    db: Database,
    config: Config,
    now: datetime,
    real_now: datetime,
    *,
    sources: Sequence[CauseSource] | None = None,
    redact: Callable[[str], str] = lambda text: text,
) -> Evaluation:
    """One pass: find the open causes (campaign time ``now``, real time ``real_now``) and queue
    the mails they call for. Alert times (reminders) are real time. ``redact`` is applied to
    every text queued (the secrets known to the process blanked, a second line of defence)."""
    report = Evaluation()
    if not config.alerts.enabled:
        return report
    ctx = Context(config, now, real_now)
    causes, report.failed_sources = find_causes(db, ctx, sources)
    report.open = [c for c in causes if config.alerts.recipients(c.kind)]
    mailer = _Queue(config, real_now, redact, report)
    with db.write() as s:
        rows = {r.key: r for r in s.scalars(select(AlertRow))}
        for cause in report.open:
            row = rows.get(cause.key)
            if row is None:
                _open_new(s, cause, real_now, mailer)
            elif row.resolved_at is not None:
                _reopen(s, row, cause, real_now, mailer)
            elif cause.kind not in ONE_SHOT:
                _remind(s, row, cause, real_now, config, mailer)
        if not report.failed_sources:
            keys = {c.key for c in report.open}
            for row in rows.values():
                if row.resolved_at is None and row.key not in keys:
                    _resolve(s, row, real_now, mailer)
    return report


class _Queue:
    """Queues one mail per recipient of a kind, in the interface's language, redacted."""

    def __init__(
        self,
        config: Config,
        now: datetime,
        redact: Callable[[str], str],
        report: Evaluation,
    ) -> None:
        self.config, self.now, self.redact, self.report = config, now, redact, report
        sender = config.mail.from_address if config.mail else ""
        self.domain = sender.rpartition("@")[2] or "publisher.invalid"

    def mail(self, s: Session, kind: str, key: str, phase: str, facts: dict[str, object]) -> None:
        subject, text = texts.compose(self.config, kind, phase, facts, self.now)
        subject, text = self.redact(subject), self.redact(text)
        for address in self.config.alerts.recipients(kind):
            outbox.enqueue(
                s,
                message_id=f"<alert.{uuid.uuid4().hex}@{self.domain}>",
                recipients=[address],
                subject=subject,
                text=text,
                now=self.now,
                alert_key=key,
            )
            self.report.mails += 1


def _open_new(s: Session, cause: Cause, now: datetime, q: _Queue) -> None:
    row = AlertRow(
        key=cause.key,
        kind=cause.kind,
        facts=cause.facts,
        opened_at=now,
        last_sent_at=now,
        reminders=0,
        episode=1,
    )
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:  # another process opened it first: it mails
        return
    q.mail(s, cause.kind, cause.key, texts.OPEN, cause.facts)
    q.report.opened.append(cause.key)


def _won(s: Session, row: AlertRow, *guard: ColumnElement[bool], **values: object) -> bool:
    """Update ``row`` only if it is still as read (``guard``): True for the one that did."""
    result = s.execute(
        update(AlertRow)
        .where(AlertRow.id == row.id, AlertRow.episode == row.episode, *guard)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def _reopen(s: Session, row: AlertRow, cause: Cause, now: datetime, q: _Queue) -> None:
    if _won(
        s,
        row,
        AlertRow.resolved_at.is_not(None),
        facts=cause.facts,
        opened_at=now,
        last_sent_at=now,
        reminders=0,
        resolved_at=None,
        episode=row.episode + 1,
    ):
        q.mail(s, cause.kind, cause.key, texts.OPEN, cause.facts)
        q.report.opened.append(cause.key)


def _remind(
    s: Session, row: AlertRow, cause: Cause, now: datetime, config: Config, q: _Queue
) -> None:
    if now - row.last_sent_at < config.alerts.remind_every:
        return
    if _won(
        s,
        row,
        AlertRow.resolved_at.is_(None),
        AlertRow.last_sent_at == row.last_sent_at,
        last_sent_at=now,
        reminders=row.reminders + 1,
        facts=cause.facts,
    ):
        q.mail(s, cause.kind, cause.key, texts.REMINDER, cause.facts)
        q.report.reminded.append(cause.key)


def _resolve(s: Session, row: AlertRow, now: datetime, q: _Queue) -> None:
    if not _won(s, row, AlertRow.resolved_at.is_(None), resolved_at=now):
        return
    if row.kind in ONE_SHOT or row.kind not in texts.KINDS:
        return  # a notice ends with its day; an unknown kind has no text
    q.mail(s, row.kind, row.key, texts.RESOLVED, dict(row.facts))
    q.report.resolved.append(row.key)
