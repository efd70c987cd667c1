"""The desks' replies: each unseen message of the IMAP mailbox handed to a handler, which says
what became of it (``Handled``); the poller marks it processed when the handler is done with it.

The handler is the caller's: the composition root gives one that maps the reply's In-Reply-To /
References to a handed-off post and confirms it with the reply's URL; until then
``log_only`` (which leaves every reply in the mailbox, unseen). A reply that matches no post,
or carries no URL, is the handler's to judge: it answers ``Handled.ignored(why)``, the reply is
marked processed and the reason logged, so it is not read again.

A handler that raises leaves its reply unseen (read again at the next poll) and the poll goes
on with the next one; a mailbox that cannot be read is the reader's ChannelError, which the
caller (the daemon) logs and tries again later: replies never stop publishing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from publisher.channels.imap import Reply, Session

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handled:
    """What a handler did with a reply. ``processed``: mark it so (never read again);
    ``outcome``: ``confirmed``, ``ignored`` or ``later`` (left unseen, read again next poll);
    ``note``: one line for the log (which post, or why it was ignored)."""

    outcome: str
    note: str = ""

    @property
    def processed(self) -> bool:
        return self.outcome != "later"

    @classmethod
    def confirmed(cls, note: str) -> Handled:
        return cls("confirmed", note)

    @classmethod
    def ignored(cls, why: str) -> Handled:
        return cls("ignored", why)

    @classmethod
    def later(cls, why: str) -> Handled:
        return cls("later", why)


Handler = Callable[[Reply], Handled]


class Reader(Protocol):
    """What the poller uses of ``publisher.channels.imap.ImapReader``."""

    def session(self) -> AbstractContextManager[Session]: ...


@dataclass
class PollReport:
    """One poll: how many replies were read, and what became of them."""

    read: int = 0
    confirmed: int = 0
    ignored: int = 0
    later: int = 0
    failed: int = 0  # the handler raised: left unseen
    notes: list[str] = field(default_factory=list)


class Poller:
    """Polls ``reader`` with ``handle``; remembers the replies it left unseen, so a reply the
    handler keeps for later is logged once, not at every poll."""

    def __init__(self, reader: Reader, handle: Handler) -> None:
        self.reader = reader
        self.handle = handle
        self._told: set[str] = set()

    def poll(self) -> PollReport:
        """Read the unseen replies once; ChannelError if the mailbox cannot be read."""
        return poll_replies(self.reader, self.handle, told=self._told)


def poll_replies(reader: Reader, handle: Handler, *, told: set[str] | None = None) -> PollReport:
    """Hand each unseen reply of ``reader``'s mailbox to ``handle``, in order of arrival, and
    mark processed those it is done with (``Handled.processed``); log what became of each
    (``told``: the replies already logged as left for later, not logged again)."""
    report = PollReport()
    with reader.session() as session:
        for reply in session.replies():
            report.read += 1
            try:
                handled = handle(reply)
            except Exception:
                report.failed += 1
                logger.exception("reply %s: the handler failed; read again next time", _who(reply))
                continue
            if handled.processed:
                session.processed(reply.uid)
            _tell(report, reply, handled, told)
    return report


def _tell(report: PollReport, reply: Reply, handled: Handled, told: set[str] | None) -> None:
    line = f"reply {_who(reply)}: {handled.outcome}: {handled.note}"
    report.notes.append(line)
    if handled.outcome == "confirmed":
        report.confirmed += 1
        logger.info(line)
    elif handled.outcome == "ignored":
        report.ignored += 1
        logger.warning(line)
    else:
        report.later += 1
        key = reply.message_id or f"uid {reply.uid}"
        if told is None or key not in told:
            logger.info(line)
        if told is not None:
            told.add(key)


def _who(reply: Reply) -> str:
    """A reply in a few words for the log: its Message-ID, sender and what it answers."""
    answers = f" to {reply.in_reply_to}" if reply.in_reply_to else ""
    return f"{reply.message_id or reply.uid} from {reply.sender or '?'}{answers}"


def log_only(reply: Reply) -> Handled:
    """The handler until the email channel's confirmation is wired in: it logs the reply (what
    it answers and the URLs it carries) and leaves it in the mailbox, unseen, for the real one."""
    urls = ", ".join(reply.urls) or "no URL"
    return Handled.later(f"no confirmation is wired in yet; it carries {urls}")
