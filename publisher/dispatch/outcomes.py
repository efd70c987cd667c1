"""What an answer does to a claimed post: published, retried with backoff, looked up before
any resend, given up, or its channel blocked (throttled, credentials, unreachable).

``decide`` is the rule: pure, from the answer and ``Facts`` read beforehand (the post's counters,
its channel's block) to a ``Decision``; ``apply`` saves a decision inside the transaction that
records the outcome. Neither does any I/O of its own.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
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
from publisher.states import BlockKind, Mode, Outcome, State
from publisher.store.db import locked_row
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
    mode: Mode
    channel: str
    outgoing: Outgoing
    since: datetime | None  # for a lookup: when the unclear send started
    was: State = State.APPROVED  # the post's state before the claim (given back on release)


@dataclass
class PassReport:
    claimed: int = 0
    published: int = 0
    handed_off: int = 0
    retrying: int = 0
    unconfirmed: int = 0
    failed: int = 0
    missed: int = 0
    needs_review: int = 0
    recovered: int = 0
    fenced_off: int = 0
    outcomes: list[tuple[int, str, Outcome]] = field(default_factory=list)  # post, channel, …


@dataclass(frozen=True)
class Block:
    """A channel's block, as ``channel_state`` holds it (the same names)."""

    channel: str
    block_kind: BlockKind | None = None
    blocked_until: datetime | None = None
    block_reason: str | None = None
    blocked_since: datetime | None = None
    probes: int = 0


@dataclass(frozen=True)
class Facts:
    """What ``decide`` needs besides the answer, read from the claimed post and its channel."""

    mode: Mode
    attempt: int  # sends made, this claim's included
    lookups: int
    due_at: datetime
    sent_at: datetime | None
    block: Block  # the channel's block now (no kind: none)
    taken: bool = False  # a lookup found an item another post of the channel already holds


@dataclass(frozen=True)
class Decision:
    """What becomes of a claimed post and its channel. ``None`` keeps a counter or time as it
    was (no rule needs to clear one: an outage's block always has an end)."""

    outcome: Outcome
    to: State
    cause: str
    attempt: int | None = None
    lookups: int | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None  # what the platform said
    receipt: Receipt | None = None  # published: where
    block: Block | None = None  # the channel's block from now on
    warning: str | None = None  # logged as it is applied


def decide(
    facts: Facts,
    receipt: Receipt | None,
    error: BaseException | None,
    now: datetime,
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
) -> Decision:
    """The rule for one answer: what becomes of the post and of its channel. Pure."""
    f = facts
    if receipt is not None and f.mode == Mode.LOOKUP and f.taken:
        # e.g. a repeated slogan found by its title: ours was not found
        taken = f"the lookup found {receipt.remote_id}, which is another post's; not ours"
        return replace(
            decide(f, None, error, now, policy=policy, clock=clock, rng=rng), warning=taken
        )
    if receipt is not None and receipt.handed_off:
        cause = (
            f"handed off as {receipt.remote_id}; waiting for the editorial desk to confirm the "
            "live address"
        )
        return Decision(Outcome.HANDED_OFF, State.HANDED_OFF, cause, receipt=receipt)
    if receipt is not None:
        found = " (found on the platform after an unclear outcome)" if f.mode == Mode.LOOKUP else ""
        cause = f"published as {receipt.remote_id}{found}"
        return Decision(Outcome.PUBLISHED, State.PUBLISHED, cause, receipt=receipt)
    if f.mode == Mode.LOOKUP and error is None:
        # A clean "not there": resend once the platform had time to show it.
        assert f.sent_at is not None  # noqa: S101 - a lookup follows a send
        if now - f.sent_at < policy.reconcile_after:
            cause = "not found yet; will look again"
            retry_at = f.sent_at + policy.reconcile_after
            return Decision(
                Outcome.NOT_FOUND_YET, State.UNCONFIRMED, cause, next_attempt_at=retry_at
            )
        cause = "not found on the platform after an unclear send; sending again"
        return _retry(f, now, None, cause, None, policy, rng)
    assert error is not None  # noqa: S101
    if isinstance(error, (Unreachable, Throttled, AuthError)):
        return _channel_stopped(f, error, now, clock)
    return _failed_call(f, error, now, policy, rng)


def _channel_stopped(
    f: Facts, error: Unreachable | Throttled | AuthError, now: datetime, clock: Clock
) -> Decision:
    """The channel, not the post, is in trouble: the channel is blocked, and the post waits for
    it with a send's attempt given back."""
    said = clean(str(error))[:500]
    given_back = f.attempt - 1 if f.mode == Mode.SEND else f.attempt
    waiting = State.UNCONFIRMED if f.mode == Mode.LOOKUP else State.RETRYING
    if isinstance(error, Unreachable):
        # Nothing reached the platform: the channel waits for it, not the post, which keeps its
        # tries and goes out when the channel is back (see dispatch.blocks).
        block = outage(f.block, error.reason, now, clock)
        return Decision(
            Outcome.UNREACHABLE,
            waiting,
            f"{waits_for(block)}: nothing was sent",
            attempt=given_back,
            next_attempt_at=block.blocked_until,
            last_error=said,
            block=block if block != f.block else None,
        )
    if isinstance(error, Throttled):
        # Never a block that has already ended ("Retry-After: 0", a past date): the post, whose
        # attempt is given back, would be claimed again at once, in a loop.
        until = max(platform_time(error.until, now, clock), now + clock.virtual(MIN_BLOCK))
        return Decision(
            Outcome.THROTTLED,
            waiting,
            f"throttled until {until:%Y-%m-%d %H:%M:%S} UTC: {error.reason}",
            attempt=given_back,
            next_attempt_at=until,
            last_error=said,
            block=blocked(f.block, BlockKind.THROTTLED, until, error.reason, now),
        )
    until = now + auth_recheck(clock)
    return Decision(
        Outcome.AUTH,
        waiting,
        f"channel stopped until re-authorised: {error.reason}",
        attempt=given_back,
        next_attempt_at=now,
        last_error=said,
        block=blocked(f.block, BlockKind.AUTH, until, error.reason, now),
    )


def _failed_call(
    f: Facts, error: BaseException, now: datetime, policy: RetryPolicy, rng: random.Random
) -> Decision:
    """The call failed for this post: looked up again, retried, refused or unclear."""
    said = clean(str(error))[:500]
    if f.mode == Mode.LOOKUP:
        lookups = f.lookups + 1
        if lookups >= policy.max_lookups:
            cause = (
                f"could not tell whether it was published after {lookups} lookups "
                f"({error}); a person must check the platform"
            )
            return Decision(
                Outcome.NEEDS_REVIEW, State.NEEDS_REVIEW, cause, lookups=lookups, last_error=said
            )
        hint = error.retry_after if isinstance(error, Temporary) else None
        return Decision(
            Outcome.LOOKUP_FAILED,
            State.UNCONFIRMED,
            f"lookup failed, will look again: {error}",
            lookups=lookups,
            next_attempt_at=policy.next_attempt(lookups, now, hint, rng),
            last_error=said,
        )
    if isinstance(error, Permanent):
        cause = f"refused by the platform: {error.reason}"
        return Decision(Outcome.PERMANENT, State.FAILED, cause, last_error=said)
    if isinstance(error, Temporary):
        cause = f"temporary failure: {error.reason}"
        return _retry(f, now, error.retry_after, cause, said, policy, rng)
    # Ambiguous, or an unexpected exception: the post may exist; never resend blindly.
    if isinstance(error, Ambiguous):
        why = error.reason
    else:
        why = f"unexpected {type(error).__name__}: {error}"
    return Decision(
        Outcome.AMBIGUOUS,
        State.UNCONFIRMED,
        f"outcome unclear, will look it up before any resend: {why}",
        lookups=0,
        next_attempt_at=now + policy.reconcile_after,
        last_error=said,
    )


def _retry(
    f: Facts,
    now: datetime,
    hint: float | None,
    cause: str,
    said: str | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    """Try again later with backoff, or give up (too many tries, or too late)."""
    stop = policy.give_up(f.attempt, f.due_at, now)
    if stop:
        return Decision(Outcome.FAILED, State.FAILED, f"{stop}; last: {cause}", last_error=said)
    retry_at = policy.next_attempt(f.attempt, now, hint, rng)
    return Decision(
        Outcome.TEMPORARY,
        State.RETRYING,
        f"{cause}; next try {retry_at:%H:%M:%S} UTC",
        lookups=0,
        next_attempt_at=retry_at,
        last_error=said,
    )


def platform_time(when: datetime, now: datetime, clock: Clock) -> datetime:
    """An instant an adapter named ("throttled until …") on the dispatcher's clock.

    Adapters tell real time. On a compressed clock (a rehearsal) a real instant lies far beyond
    the virtual now and would block the channel for the rest of the rehearsal, so there the
    platform's wait is kept as a duration of campaign time, as retry hints are.
    """
    if clock.speed == 1:
        return when  # the adapters share this clock (real time, or a test's fake clock)
    return now + max(timedelta(0), when - datetime.now(UTC))


def blocked(block: Block, kind: BlockKind, until: datetime, reason: str, now: datetime) -> Block:
    """``block`` after the platform stopped the channel (throttled, credentials) until
    ``until``: a new block begins unless it is the same kind still running, and an earlier
    end is never brought forward."""
    running = block.blocked_until if block.block_kind == kind else None  # the same block's end
    ongoing = running is not None and running > now
    since, probes = (block.blocked_since, block.probes) if ongoing else (now, 0)
    end = running if running is not None and running >= until else until
    return Block(block.channel, kind, end, f"{kind}: {reason}", since, probes)


def outage(block: Block, reason: str, now: datetime, clock: Clock) -> Block:
    """``block`` after a call found the channel unreachable: an outage until its first probe,
    unless it is already blocked: by this outage (calls that were in flight when it began), or
    by a throttle or refused credentials, which must not be cut short."""
    if block.block_kind == BlockKind.OUTAGE:
        return block
    other = block.blocked_until if block.block_kind is not None else None  # throttle, auth
    if other is not None and other > now:
        return block
    until = now + probe_wait(clock, 0)
    return Block(block.channel, BlockKind.OUTAGE, until, f"outage: {reason}", now, 0)


def apply(
    s: Session,
    p: PostRow,
    claim: Claim,
    d: Decision,
    now: datetime,
    states: dict[str, ChannelState | None] | None = None,
) -> None:
    """Save decision ``d`` about the claimed post ``p`` (and its channel) in session ``s``.
    ``states``: the channels' rows already read in ``s`` (None: none yet), kept up to date."""
    if d.warning:
        logger.warning("post %s: %s", p.id, d.warning)
    p.lease_until = None
    if d.attempt is not None:
        p.attempt = d.attempt
    if d.lookups is not None:
        p.lookups = d.lookups
    if d.next_attempt_at is not None:
        p.next_attempt_at = d.next_attempt_at
    if d.last_error is not None:
        p.last_error = d.last_error
    content_hash = None
    if d.receipt is not None:
        p.remote_id, p.remote_url = d.receipt.remote_id, d.receipt.url
        if d.to == State.HANDED_OFF:
            p.handed_off_at = now  # published only once the desk confirms the live URL
        else:
            p.published_at = now
        p.last_error = None
        content_hash = fields_hash(claim.outgoing.fields)  # what went out
    if d.block is not None:
        row = _state(s, p.channel, now)
        if states is not None:
            states[p.channel] = row
        if d.block.block_kind == BlockKind.OUTAGE and row.block_kind != BlockKind.OUTAGE:
            why = (d.block.block_reason or "").removeprefix("outage: ")
            logger.warning("channel %s: unreachable (%s); probing it", p.channel, why)
        row.block_kind, row.blocked_until = d.block.block_kind, d.block.blocked_until
        row.block_reason, row.blocked_since = d.block.block_reason, d.block.blocked_since
        row.probes, row.updated_at = d.block.probes, now
    if d.outcome in (
        Outcome.PUBLISHED,
        Outcome.HANDED_OFF,
    ):  # the platform answered: an outage of it is over
        row_now = _read_state(s, p.channel, states)
        if row_now is not None and row_now.block_kind == BlockKind.OUTAGE:
            end_outage(row_now, now)
    transition(s, p, d.to, now, d.cause, content_hash=content_hash)


def facts_of(
    s: Session,
    p: PostRow,
    claim: Claim,
    receipt: Receipt | None,
    states: dict[str, ChannelState | None] | None = None,
) -> Facts:
    """What ``decide`` needs to know of the claimed post ``p``, read in session ``s`` (its
    channel's row from ``states`` when it holds it)."""
    row = _read_state(s, p.channel, states)
    block = Block(p.channel)
    if row is not None:
        since, reason = row.blocked_since, row.block_reason
        block = Block(p.channel, row.block_kind, row.blocked_until, reason, since, row.probes)
    assert p.due_at is not None  # noqa: S101 - a claimed post has a time
    taken = receipt is not None and claim.mode == Mode.LOOKUP and _taken(s, p, receipt.remote_id)
    return Facts(claim.mode, p.attempt, p.lookups, p.due_at, p.sent_at, block, taken)


COUNTED = {  # which PassReport counter an outcome adds to
    Outcome.PUBLISHED: "published",
    Outcome.HANDED_OFF: "handed_off",
    Outcome.NOT_FOUND_YET: "unconfirmed",
    Outcome.LOOKUP_FAILED: "unconfirmed",
    Outcome.AMBIGUOUS: "unconfirmed",
    Outcome.UNREACHABLE: "retrying",
    Outcome.THROTTLED: "retrying",
    Outcome.AUTH: "retrying",
    Outcome.TEMPORARY: "retrying",
    Outcome.NEEDS_REVIEW: "needs_review",
    Outcome.PERMANENT: "failed",
    Outcome.FAILED: "failed",
}


class OutcomeRules:
    """Recording answers, mixed into the dispatcher (which owns the policy, clock and jitter)."""

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
        states: dict[str, ChannelState | None] | None = None,
    ) -> Outcome:
        """Decide what the answer means for ``p`` and save it; count it in ``report``.
        ``states``: the channels' rows already read in ``s`` (``read_states``)."""
        facts = facts_of(s, p, claim, receipt, states)
        d = decide(facts, receipt, error, now, policy=self.policy, clock=self.clock, rng=self.rng)
        if d.outcome == Outcome.AMBIGUOUS and not isinstance(error, ChannelError):
            logger.error(
                "post %s: unexpected error from the %s adapter", p.id, p.channel, exc_info=error
            )
        apply(s, p, claim, d, now, states)
        name = COUNTED[d.outcome]
        setattr(report, name, getattr(report, name) + 1)
        return d.outcome

    def _release(self, s: Session, p: PostRow, claim: Claim, now: datetime) -> None:
        """Give back a claim whose call never started (shutting down)."""
        p.lease_until = None
        if claim.mode == Mode.LOOKUP:
            transition(s, p, State.UNCONFIRMED, now, "released unstarted at shutdown")
            return
        p.attempt -= 1
        p.sent_at = claim.since  # nothing was sent: the last real send (if any) stays
        p.next_attempt_at = now
        # back to where it was: a post that waited for its channel (an outage, a throttle)
        # with no attempt yet is RETRYING at attempt 0, and must stay a waiting post
        to = claim.was if claim.was in (State.APPROVED, State.RETRYING) else State.RETRYING
        transition(s, p, to, now, "released unstarted at shutdown")


def read_states(s: Session, channels: Iterable[str]) -> dict[str, ChannelState | None]:
    """The rows of ``channels`` (None: a channel without one), in one query: what recording a
    round of answers reads of their channels (a missing row would be asked for each time)."""
    wanted = sorted(set(channels))
    found = {
        r.channel: r
        for r in s.scalars(select(ChannelState).where(ChannelState.channel.in_(wanted)))
    }
    return {c: found.get(c) for c in wanted}


def _read_state(
    s: Session, channel: str, states: dict[str, ChannelState | None] | None
) -> ChannelState | None:
    if states is not None and channel in states:
        return states[channel]
    return s.get(ChannelState, channel)


def _state(s: Session, channel: str, now: datetime) -> ChannelState:
    row = s.get(ChannelState, channel)  # usually read already this round: no query
    if row is not None:
        return row
    # The channel's first block: two daemons may make its row at once; neither fails on it.
    values = {"channel": channel, "paused": False, "probes": 0, "updated_at": now}
    return locked_row(s, ChannelState, values)


def end_outage(row: ChannelState, now: datetime) -> None:
    logger.info(
        "channel %s: reachable again (unreachable since %s, %s failed probes)",
        row.channel,
        f"{row.blocked_since:%Y-%m-%d %H:%M:%S} UTC" if row.blocked_since else "?",
        row.probes,
    )
    row.blocked_until = row.block_kind = row.block_reason = row.blocked_since = None
    row.probes, row.updated_at = 0, now


def waits_for(row: ChannelState | Block) -> str:
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
