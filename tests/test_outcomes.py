"""The outcome rules as a table: for each answer to a claim, what ``decide`` makes of the post and
of its channel. Pure: no database, no clock but a fake one, a seeded random source."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    Permanent,
    Receipt,
    Temporary,
    Throttled,
    Unreachable,
)
from publisher.clock import FakeClock, RehearsalClock
from publisher.dispatch.outcomes import (
    AUTH_RECHECK,
    MIN_BLOCK,
    Block,
    Decision,
    Facts,
    blocked,
    decide,
    outage,
)
from publisher.dispatch.retry import RetryPolicy
from publisher.states import BlockKind, Mode, Outcome, State

NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)
DUE = NOW - timedelta(minutes=5)
POLICY = RetryPolicy()
CLEAR = Block("facebook")
RECEIPT = Receipt("123_456", "https://facebook.test/123_456")


def facts(mode: Mode = Mode.SEND, **kw: Any) -> Facts:
    base: dict[str, Any] = {
        "attempt": 1,
        "lookups": 0,
        "due_at": DUE,
        "sent_at": NOW - timedelta(seconds=5),
        "block": CLEAR,
    }
    return Facts(mode, **{**base, **kw})


def run(f: Facts, receipt: Receipt | None, error: BaseException | None, **kw: Any) -> Decision:
    clock = kw.pop("clock", FakeClock(NOW))
    return decide(f, receipt, error, NOW, policy=POLICY, clock=clock, rng=random.Random(7), **kw)  # noqa: S311


# (name, facts, receipt, error, outcome, state, attempt, lookups, cause starts with)
CASES = [
    ("a send answered", facts(), RECEIPT, None, Outcome.PUBLISHED, State.PUBLISHED, None, None,
     "published as 123_456"),
    ("a lookup found it", facts(Mode.LOOKUP), RECEIPT, None, Outcome.PUBLISHED, State.PUBLISHED,
     None, None, "published as 123_456 (found on the platform after an unclear outcome)"),
    ("a lookup found another post's item", facts(Mode.LOOKUP, taken=True), RECEIPT, None,
     Outcome.NOT_FOUND_YET, State.UNCONFIRMED, None, None, "not found yet"),
    ("a lookup found nothing, too soon", facts(Mode.LOOKUP), None, None, Outcome.NOT_FOUND_YET,
     State.UNCONFIRMED, None, None, "not found yet; will look again"),
    ("a lookup found nothing, long after", facts(Mode.LOOKUP, sent_at=NOW - timedelta(hours=1)),
     None, None, Outcome.TEMPORARY, State.RETRYING, None, 0,
     "not found on the platform after an unclear send; sending again"),
    ("nothing left the machine", facts(), None, Unreachable("refused"), Outcome.UNREACHABLE,
     State.RETRYING, 0, None, "channel facebook unreachable since"),
    ("a lookup that reached nothing", facts(Mode.LOOKUP), None, Unreachable("refused"),
     Outcome.UNREACHABLE, State.UNCONFIRMED, 1, None, "channel facebook unreachable since"),
    ("throttled", facts(), None, Throttled("#4", until=NOW + timedelta(minutes=3)),
     Outcome.THROTTLED, State.RETRYING, 0, None, "throttled until 2024-06-12 01:33:00 UTC: #4"),
    ("credentials refused", facts(), None, AuthError("#190 expired"), Outcome.AUTH,
     State.RETRYING, 0, None, "channel stopped until re-authorised: #190 expired"),
    ("refused for good", facts(), None, Permanent("#100 bad"), Outcome.PERMANENT, State.FAILED,
     None, None, "refused by the platform: #100 bad"),
    ("a temporary failure", facts(), None, Temporary("503"), Outcome.TEMPORARY, State.RETRYING,
     None, 0, "temporary failure: 503; next try"),
    ("the last try failed", facts(attempt=POLICY.max_attempts), None, Temporary("503"),
     Outcome.FAILED, State.FAILED, None, None, "gave up after 8 attempts; last: temporary"),
    ("too late to retry", facts(due_at=NOW - timedelta(hours=7)), None, Temporary("503"),
     Outcome.FAILED, State.FAILED, None, None, "gave up: more than 6 h past its time"),
    ("an unclear answer", facts(), None, Ambiguous("timeout after sending"), Outcome.AMBIGUOUS,
     State.UNCONFIRMED, None, 0, "outcome unclear, will look it up before any resend: timeout"),
    ("an adapter's bug", facts(), None, KeyError("id"), Outcome.AMBIGUOUS, State.UNCONFIRMED,
     None, 0, "outcome unclear, will look it up before any resend: unexpected KeyError"),
    ("a lookup failed", facts(Mode.LOOKUP, lookups=1), None, Temporary("503"),
     Outcome.LOOKUP_FAILED, State.UNCONFIRMED, None, 2, "lookup failed, will look again: 503"),
    ("the last lookup failed", facts(Mode.LOOKUP, lookups=POLICY.max_lookups - 1), None,
     Permanent("#100"), Outcome.NEEDS_REVIEW, State.NEEDS_REVIEW, None, POLICY.max_lookups,
     "could not tell whether it was published after 5 lookups"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("f", "receipt", "error", "outcome", "state", "attempt", "lookups", "cause"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decide(
    f: Facts,
    receipt: Receipt | None,
    error: BaseException | None,
    outcome: Outcome,
    state: State,
    attempt: int | None,
    lookups: int | None,
    cause: str,
) -> None:
    d = run(f, receipt, error)
    assert (d.outcome, d.to) == (outcome, state)
    assert (d.attempt, d.lookups) == (attempt, lookups)
    assert d.cause.startswith(cause), d.cause
    assert d.receipt == (receipt if outcome == Outcome.PUBLISHED else None)
    assert d.last_error == (None if error is None else str(error)[:500])


def test_a_publication_clears_nothing_else_and_blocks_nothing() -> None:
    d = run(facts(), RECEIPT, None)
    assert d.next_attempt_at is None and d.block is None and d.warning is None


def test_a_lookup_that_found_another_posts_item_says_so() -> None:
    d = run(facts(Mode.LOOKUP, taken=True), RECEIPT, None)
    assert d.warning == "the lookup found 123_456, which is another post's; not ours"
    assert d.receipt is None


def test_when_each_waits() -> None:
    assert (
        run(facts(Mode.LOOKUP), None, None).next_attempt_at
        == NOW - timedelta(seconds=5) + POLICY.reconcile_after
    )
    assert run(facts(), None, Ambiguous("x")).next_attempt_at == NOW + POLICY.reconcile_after
    assert run(facts(), None, AuthError("x")).next_attempt_at == NOW  # the channel waits instead
    retry = run(facts(), None, Temporary("x", retry_after=600)).next_attempt_at
    assert retry is not None and retry >= NOW + timedelta(seconds=600)  # the platform's hint
    assert run(facts(), None, Permanent("x")).next_attempt_at is None  # kept as it was


def test_an_outage_blocks_the_channel_until_its_first_probe() -> None:
    d = run(facts(), None, Unreachable("connection refused"))
    assert d.block == Block(
        "facebook",
        BlockKind.OUTAGE,
        NOW + timedelta(seconds=1),
        "outage: connection refused",
        NOW,
        0,
    )
    assert d.next_attempt_at == d.block.blocked_until


def test_an_outage_never_shortens_a_running_throttle() -> None:
    throttle = Block(
        "facebook", BlockKind.THROTTLED, NOW + timedelta(hours=1), "throttled: #4", NOW
    )
    d = run(facts(block=throttle), None, Unreachable("refused"))
    assert d.block is None  # unchanged
    assert d.next_attempt_at == NOW + timedelta(hours=1)


def test_an_outage_already_known_changes_nothing() -> None:
    down = outage(CLEAR, "refused", NOW - timedelta(seconds=3), FakeClock(NOW))
    assert outage(down, "again", NOW, FakeClock(NOW)) == down


def test_a_throttle_that_already_ended_still_waits_the_minimum() -> None:
    d = run(facts(), None, Throttled("Retry-After: 0", until=NOW - timedelta(seconds=1)))
    assert d.next_attempt_at == NOW + MIN_BLOCK
    assert d.block is not None and d.block.blocked_until == NOW + MIN_BLOCK


def test_a_throttle_keeps_a_later_end_and_its_start() -> None:
    start = NOW - timedelta(minutes=2)
    running = Block("facebook", BlockKind.THROTTLED, NOW + timedelta(hours=1), "x", start, 2)
    sooner = blocked(running, BlockKind.THROTTLED, NOW + timedelta(minutes=5), "#4", NOW)
    assert (sooner.blocked_until, sooner.blocked_since, sooner.probes) == (
        NOW + timedelta(hours=1),
        start,
        2,
    )
    later = blocked(running, BlockKind.THROTTLED, NOW + timedelta(hours=2), "#4", NOW)
    assert later.blocked_until == NOW + timedelta(hours=2) and later.blocked_since == start
    other = blocked(running, BlockKind.AUTH, NOW + timedelta(minutes=10), "#190", NOW)
    assert (other.block_kind, other.blocked_since, other.probes) == (BlockKind.AUTH, NOW, 0)
    assert other.block_reason == "auth: #190"


def test_credentials_are_checked_again_after_the_recheck_window() -> None:
    d = run(facts(), None, AuthError("#190"))
    assert d.block is not None
    assert d.block.blocked_until == NOW + AUTH_RECHECK
    assert d.block.block_kind == BlockKind.AUTH


def test_on_a_rehearsal_clock_a_platform_instant_becomes_campaign_time() -> None:
    clock = RehearsalClock(datetime.now(UTC), NOW, 1000.0)
    real_until = datetime.now(UTC) + timedelta(hours=3)
    d = run(facts(), None, Throttled("#4", until=real_until), clock=clock)
    assert d.next_attempt_at is not None
    # 3 real hours of waiting kept as 3 hours of campaign time, not the rest of the rehearsal
    assert NOW + timedelta(hours=3, seconds=-5) <= d.next_attempt_at <= NOW + timedelta(hours=3)
    # and never less than MIN_BLOCK of real time (5 s: 5000 s of campaign time at ×1000)
    soon = run(facts(), None, Throttled("#4", until=datetime.now(UTC)), clock=clock)
    assert soon.next_attempt_at == NOW + timedelta(seconds=5000)


def test_every_decision_is_an_allowed_move_from_sending() -> None:
    from publisher.states import MOVES

    for case in CASES:
        d = run(case[1], case[2], case[3])
        assert d.to in MOVES[State.SENDING], case[0]
