"""Sends the outbox (``store.outbox``) through the mail server, one claimed mail at a time.

Sent → recorded sent. The server down, deferring, or the login refused (``Unreachable``,
``Temporary``, ``AuthError``) → tried again after a backoff (1, 2, 4 … minutes, at most an
hour), the mail kept. An unclear end (``Ambiguous``: the connection lost after DATA) → tried
again too, with the same ``Message-ID``. Refused for good (``Permanent``: a 5xx to the
message or its recipient) → recorded failed, with the server's words, and logged.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

from publisher.channels.base import ChannelError, Permanent
from publisher.channels.smtp import Mailer
from publisher.store import outbox
from publisher.store.db import Database

logger = logging.getLogger(__name__)

FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(minutes=5)  # a claim whose sender died is taken over after this


def sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:outbox"


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try (1 → 1 min, 2 → 2 min, … ≤ 1 h)."""
    wait: timedelta = FIRST_BACKOFF * (2 ** max(0, attempts - 1))
    return min(wait, MAX_BACKOFF)


@dataclass
class Flush:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def message(mail: outbox.Mail) -> EmailMessage:
    """The mail as it goes out: To its recipients, its subject, the plain text (and the HTML
    alternative, if any), its stored Message-ID."""
    from publisher.channels.smtp import text_message

    msg = text_message(", ".join(mail.recipients), mail.subject, mail.text)
    if mail.html:
        msg.add_alternative(mail.html, subtype="html", cte="base64")
    msg["Message-ID"] = mail.message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
    return msg


def flush(
    db: Database,
    mailer: Mailer,
    now: datetime,
    *,
    worker: str | None = None,
    limit: int = 20,
) -> Flush:
    """Send the mails due at ``now`` (real time): claimed first, so a mail another sender
    holds is left to it. Stops at the first server failure that is not the mail's own (the
    next flush tries again)."""
    worker = worker or sender_name()
    report = Flush()
    for mail in outbox.claim(db, worker, now, LEASE, limit):
        try:
            mailer.send(message(mail))
        except Permanent as exc:
            outbox.failed(db, mail, worker, now, exc.reason)
            logger.error("alert mail %s refused for good: %s", mail.message_id, exc.reason)
            report.failed += 1
            report.errors.append(exc.reason)
            continue
        except ChannelError as exc:
            outbox.retry(db, mail, worker, now + backoff(mail.attempts + 1), exc.reason)
            logger.warning("alert mail %s not sent yet: %s", mail.message_id, exc.reason)
            report.retrying += 1
            report.errors.append(exc.reason)
            outbox.release(db, worker)  # the server is down: the rest waits for the next flush
            break
        outbox.sent(db, mail, worker, now)
        report.sent += 1
    outbox.release(db, worker)
    return report
