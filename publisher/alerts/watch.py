"""One round of alerting: evaluate the causes, then flush the outbox — what ``publisher watch``
does once (from a systemd timer, without the daemon) and the daemon does periodically (in a
thread of its own, never in the way of publishing: ``Round.safe`` logs any failure)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from publisher.alerts.engine import Evaluation, evaluate
from publisher.alerts.sender import Flush, flush, sender_name
from publisher.channels.smtp import Mailer
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Config
from publisher.store.db import Database

logger = logging.getLogger(__name__)


def redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that blanks every one of ``secrets`` (4 characters or more) in a text."""
    values = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "[redacted]")
        return text

    return redact


@dataclass
class Round:
    """Evaluate and flush on ``db``: causes on ``clock`` (the campaign's time: virtual in a
    rehearsal), heartbeats, reminders and mail retries on ``wall`` (real time)."""

    db: Database
    config: Config
    mailer: Mailer
    clock: Clock = SYSTEM_CLOCK
    wall: Clock = SYSTEM_CLOCK
    redact: Callable[[str], str] = lambda text: text
    worker: str = ""

    def __call__(self) -> tuple[Evaluation, Flush]:
        evaluation = evaluate(
            self.db, self.config, self.clock.now(), self.wall.now(), redact=self.redact
        )
        sent = flush(self.db, self.mailer, self.wall.now(), worker=self.worker or sender_name())
        for key in evaluation.opened:
            logger.info("alert: %s", key)
        for key in evaluation.resolved:
            logger.info("alert resolved: %s", key)
        return evaluation, sent

    def safe(self) -> None:
        """One round; any failure logged, never raised (the daemon's periodic job)."""
        try:
            self()
        except Exception:
            logger.exception("alerts: this round failed; the next one tries again")
