"""What an answer does to a claimed post: published, retried with backoff, looked up before
any resend, given up, or its channel blocked (throttled, credentials, unreachable). The rules
the dispatcher applies inside the transaction that records the outcome; no I/O of their own.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    Outgoing,
    Permanent,
    Receipt,
    Temporary,
    Throttled,
    Unreachable,
)
from publisher.clock import Clock, real_floor
from publisher.dispatch.retry import RetryPolicy
from publisher.render import fields_hash
from publisher.states import State
from publisher.store.history import transition
from publisher.store.models import ChannelState, PostRow
from publisher.text import clean

logger = logging.getLogger(__name__)

AUTH_RECHECK = timedelta(minutes=10)
AUTH_RECHECK_REAL = timedelta(seconds=5)  # real time: the floor of the re-check on any clock
MIN_BLOCK = timedelta(seconds=5)  # real time: the shortest a throttled channel waits
# An unreachable channel is probed after 1, 2, 4, 8 … real seconds, at most PROBE_CAP apart
# (REHEARSAL_PROBE_CAP on a compressed clock, where each real second is hours of campaign time:
# a probe 15 s late would eat most of the real lag a rehearsal tolerates, and the posts held up
# would fail there although production, 15 s late against hours of lateness, would send them).
PROBE_BASE = timedelta(seconds=1)
PROBE_CAP = timedelta(seconds=15)
REHEARSAL_PROBE_CAP = timedelta(seconds=2)


def probe_wait(clock: Clock, failed_probes: int) -> timedelta:
    """How long an unreachable channel waits before its next probe, on ``clock``: real seconds
    (on a compressed clock too: a probe is a request to a real address)."""
    cap = PROBE_CAP if clock.speed == 1 else REHEARSAL_PROBE_CAP
    return clock.virtual(min(cap, PROBE_BASE * 2 ** min(failed_probes, 10)))


def auth_recheck(clock: Clock) -> timedelta:
    """How long a channel whose credentials were refused waits before they are checked again."""
    return real_floor(clock, AUTH_RECHECK, AUTH_RECHECK_REAL)


@dataclass(frozen=True)
class Claim:
    post_id: int
    claims: int  # the fencing token: completion only if the row still carries it
    mode: str  # "send" | "lookup"
    channel: str
    outgoing: Outgoing
    since: datetime | None  # for a lookup: when the unclear send started
    was: State = State.APPROVED  # the post's state before the claim (given back on release)


@dataclass
class PassReport:
    claimed: int = 0
    published: int = 0
    retrying: int = 0
    unconfirmed: int = 0
    failed: int = 0
    missed: int = 0
    needs_review: int = 0
    recovered: int = 0
    fenced_off: int = 0
    outcomes: list[tuple[int, str, str]] = field(default_factory=list)  # (post, channel, outcome)


class OutcomeRules:
    """The outcome rules, mixed into the dispatcher (which owns the policy, clock and jitter)."""

    policy: RetryPolicy
    clock: Clock
    rng: random.Random

    def _apply(
        self,
        s: Session,
        p: PostRow,
        claim: Claim,
        receipt: Receipt | None,
        error: BaseException | None,
        now: datetime,
        report: PassReport,
    ) -> str:
        p.lease_until = None
        if receipt is not None and claim.mode == "lookup" and _taken(s, p, receipt.remote_id):
            logger.warning(
                "post %s: the lookup found %s, which is another post's; not ours",
                p.id,
                receipt.remote_id,
            )
            receipt = None  # e.g. a repeated slogan found by its title: ours was not found
        if receipt is not None:
            p.remote_id, p.remote_url, p.published_at = receipt.remote_id, receipt.url, now
            p.last_error = None
            found = (
                " (found on the platform after an unclear outcome)"
                if claim.mode == "lookup"
                else ""
            )
            transition(
                s,
                p,
                State.PUBLISHED,
                now,
                f"published as {receipt.remote_id}{found}",
                content_hash=fields_hash(claim.outgoing.fields),  # what went out
            )
            self._reached(s, p.channel, now)
            report.published += 1
            return "published"
        if claim.mode == "lookup" and error is None:
            # A clean "not there": resend once the platform had time to show it.
            assert p.sent_at is not None  # noqa: S101 - a lookup follows a send
            if now - p.sent_at < self.policy.reconcile_after:
                p.next_attempt_at = p.sent_at + self.policy.reconcile_after
                transition(s, p, State.UNCONFIRMED, now, "not found yet; will look again")
                report.unconfirmed += 1
                return "not-found-yet"
            return self._retry(
                s,
                p,
                now,
                None,
                "not found on the platform after an unclear send; sending again",
                report,
            )
        assert error is not None  # noqa: S101
        p.last_error = clean(str(error))[:500]
        if isinstance(error, Unreachable):
            # Nothing reached the platform: the channel waits for it, not the post, which
            # keeps its tries and goes out when the channel is back (see publisher.dispatch.blocks).
            row = self._outage(s, p.channel, error.reason, now)
            if claim.mode == "send":
                p.attempt -= 1
            p.next_attempt_at = row.blocked_until
            to = State.UNCONFIRMED if claim.mode == "lookup" else State.RETRYING
            transition(s, p, to, now, f"{waits_for(row)}: nothing was sent")
            report.retrying += 1
            return "unreachable"
        if isinstance(error, Throttled):
            # Never a block that has already ended ("Retry-After: 0", a past date): the post,
            # whose attempt is given back, would be claimed again at once, in a loop.
            until = max(self._platform_time(error.until, now), now + self.clock.virtual(MIN_BLOCK))
            self._block(s, p.channel, until, "throttled", error.reason, now)
            if claim.mode == "send":
                p.attempt -= 1  # the platform's limit, not this post's fault
            p.next_attempt_at = until
            to = State.UNCONFIRMED if claim.mode == "lookup" else State.RETRYING
            transition(
                s,
                p,
                to,
                now,
                f"throttled until {until:%Y-%m-%d %H:%M:%S} UTC: {error.reason}",
            )
            report.retrying += 1
            return "throttled"
        if isinstance(error, AuthError):
            self._block(s, p.channel, now + auth_recheck(self.clock), "auth", error.reason, now)
            if claim.mode == "send":
                p.attempt -= 1
            p.next_attempt_at = now
            to = State.UNCONFIRMED if claim.mode == "lookup" else State.RETRYING
            transition(s, p, to, now, f"channel stopped until re-authorised: {error.reason}")
            report.retrying += 1
            return "auth"
        if claim.mode == "lookup":
            p.lookups += 1
            if p.lookups >= self.policy.max_lookups:
                transition(
                    s,
                    p,
                    State.NEEDS_REVIEW,
                    now,
                    f"could not tell whether it was published after {p.lookups} lookups "
                    f"({error}); a person must check the platform",
                )
                report.needs_review += 1
                return "needs-review"
            hint = error.retry_after if isinstance(error, Temporary) else None
            p.next_attempt_at = self.policy.next_attempt(p.lookups, now, hint, self.rng)
            transition(s, p, State.UNCONFIRMED, now, f"lookup failed, will look again: {error}")
            report.unconfirmed += 1
            return "lookup-failed"
        if isinstance(error, Permanent):
            transition(s, p, State.FAILED, now, f"refused by the platform: {error.reason}")
            report.failed += 1
            return "permanent"
        if isinstance(error, Temporary):
            return self._retry(
                s, p, now, error.retry_after, f"temporary failure: {error.reason}", report
            )
        # Ambiguous, or an unexpected exception: the post may exist; never resend blindly.
        why = (
            error.reason
            if isinstance(error, Ambiguous)
            else f"unexpected {type(error).__name__}: {error}"
        )
        if not isinstance(error, ChannelError):
            logger.error(
                "post %s: unexpected error from the %s adapter", p.id, p.channel, exc_info=error
            )
        p.lookups = 0
        p.next_attempt_at = now + self.policy.reconcile_after
        transition(
            s,
            p,
            State.UNCONFIRMED,
            now,
            f"outcome unclear, will look it up before any resend: {why}",
        )
        report.unconfirmed += 1
        return "ambiguous"

    def _platform_time(self, when: datetime, now: datetime) -> datetime:
        """An instant an adapter named ("throttled until …") on this dispatcher's clock.

        Adapters tell real time. On a compressed clock (a rehearsal) a real instant lies far
        beyond the virtual now and would block the channel for the rest of the rehearsal, so
        there the platform's wait is kept as a duration of campaign time, as retry hints are.
        """
        if self.clock.speed == 1:
            return when  # the adapters share this clock (real time, or a test's fake clock)
        return now + max(timedelta(0), when - datetime.now(UTC))

    def _release(self, s: Session, p: PostRow, claim: Claim, now: datetime) -> None:
        """Give back a claim whose call never started (shutting down)."""
        p.lease_until = None
        if claim.mode == "lookup":
            transition(s, p, State.UNCONFIRMED, now, "released unstarted at shutdown")
            return
        p.attempt -= 1
        p.sent_at = claim.since  # nothing was sent: the last real send (if any) stays
        p.next_attempt_at = now
        # back to where it was: a post that waited for its channel (an outage, a throttle)
        # with no attempt yet is RETRYING at attempt 0, and must stay a waiting post
        to = claim.was if claim.was in (State.APPROVED, State.RETRYING) else State.RETRYING
        transition(s, p, to, now, "released unstarted at shutdown")

    def _retry(
        self,
        s: Session,
        p: PostRow,
        now: datetime,
        hint: float | None,
        cause: str,
        report: PassReport,
    ) -> str:
        assert p.due_at is not None  # noqa: S101
        stop = self.policy.give_up(p.attempt, p.due_at, now)
        if stop:
            transition(s, p, State.FAILED, now, f"{stop}; last: {cause}")
            report.failed += 1
            return "failed"
        p.next_attempt_at = self.policy.next_attempt(p.attempt, now, hint, self.rng)
        p.lookups = 0
        transition(s, p, State.RETRYING, now, f"{cause}; next try {p.next_attempt_at:%H:%M:%S} UTC")
        report.retrying += 1
        return "temporary"

    def _block(
        self, s: Session, channel: str, until: datetime, kind: str, reason: str, now: datetime
    ) -> None:
        row = _state(s, channel, now)
        if row.block_kind != kind or row.blocked_until is None or row.blocked_until <= now:
            row.blocked_since, row.probes = now, 0  # a new block begins
        if row.blocked_until is None or row.blocked_until < until or row.block_kind != kind:
            row.blocked_until = until
        row.block_kind, row.block_reason, row.updated_at = kind, f"{kind}: {reason}", now

    def _outage(self, s: Session, channel: str, reason: str, now: datetime) -> ChannelState:
        """Block ``channel`` as unreachable (``block_kind`` "outage") until its first probe,
        unless it is already blocked: by this outage (calls that were in flight when it
        began), or by a throttle or refused credentials, which must not be cut short."""
        row = _state(s, channel, now)
        if row.block_kind == "outage":
            return row
        if row.block_kind is not None and row.blocked_until is not None and row.blocked_until > now:
            return row
        row.block_kind, row.block_reason = "outage", f"outage: {reason}"
        row.blocked_since, row.probes = now, 0
        row.blocked_until = now + probe_wait(self.clock, 0)
        row.updated_at = now
        logger.warning("channel %s: unreachable (%s); probing it", channel, reason)
        return row

    def _reached(self, s: Session, channel: str, now: datetime) -> None:
        """A call to ``channel`` was answered: an outage it was in is over."""
        row = s.get(ChannelState, channel)
        if row is not None and row.block_kind == "outage":
            end_outage(row, now)


def _state(s: Session, channel: str, now: datetime) -> ChannelState:
    row = s.get(ChannelState, channel)
    if row is None:
        row = ChannelState(channel=channel, paused=False, probes=0, updated_at=now)
        s.add(row)
    return row


def end_outage(row: ChannelState, now: datetime) -> None:
    logger.info(
        "channel %s: reachable again (unreachable since %s, %s failed probes)",
        row.channel,
        f"{row.blocked_since:%Y-%m-%d %H:%M:%S} UTC" if row.blocked_since else "?",
        row.probes,
    )
    row.blocked_until = row.block_kind = row.block_reason = row.blocked_since = None
    row.probes, row.updated_at = 0, now


def waits_for(row: ChannelState) -> str:
    """What a post on the unreachable channel of ``row`` waits for (a history cause)."""
    since = f"{row.blocked_since:%Y-%m-%d %H:%M:%S} UTC" if row.blocked_since else "?"
    reason = (row.block_reason or "").removeprefix("outage: ")
    return f"channel {row.channel} unreachable since {since} ({reason}); waiting for it"


def _taken(s: Session, p: PostRow, remote_id: str) -> bool:
    """Whether another post of ``p``'s channel already holds the platform item ``remote_id``."""
    other = select(PostRow.id).where(
        PostRow.channel == p.channel, PostRow.remote_id == remote_id, PostRow.id != p.id
    )
    return s.scalars(other.limit(1)).first() is not None
