"""The retry policy: full-jitter backoff within its bounds, the platform's hint honoured, and
when to give up. Pure: the time and the random source are parameters."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from publisher.dispatch.retry import RetryPolicy

NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)
POLICY = RetryPolicy()


@given(attempt=st.integers(min_value=0, max_value=60), seed=st.integers(0, 2**32))
def test_backoff_stays_within_full_jitter_bounds(attempt: int, seed: int) -> None:
    wait = POLICY.backoff(attempt, random.Random(seed))  # noqa: S311 - jitter
    ceiling = min(
        POLICY.cap.total_seconds(), POLICY.base.total_seconds() * 2 ** max(0, attempt - 1)
    )
    assert 0 <= wait.total_seconds() <= ceiling


def test_backoff_grows_then_stops_at_the_cap() -> None:
    top = [
        max(POLICY.backoff(n, random.Random(s)) for s in range(200))  # noqa: S311
        for n in (1, 2, 3, 10, 30)
    ]
    assert top[0] <= POLICY.base < top[2]
    assert top[-1] <= POLICY.cap and top[-2] > POLICY.cap / 2


@given(hint=st.floats(min_value=0, max_value=86_400), seed=st.integers(0, 2**32))
def test_next_attempt_never_comes_before_the_platforms_hint(hint: float, seed: int) -> None:
    at = POLICY.next_attempt(3, NOW, hint, random.Random(seed))  # noqa: S311
    assert at >= NOW + timedelta(seconds=hint)
    assert at <= NOW + max(timedelta(seconds=hint), POLICY.cap)


def test_the_same_seed_gives_the_same_schedule() -> None:
    one = [POLICY.next_attempt(n, NOW, None, random.Random(5)) for n in range(1, 6)]  # noqa: S311
    two = [POLICY.next_attempt(n, NOW, None, random.Random(5)) for n in range(1, 6)]  # noqa: S311
    assert one == two


def test_give_up_after_the_last_attempt_or_too_late() -> None:
    due = NOW - timedelta(minutes=10)
    assert POLICY.give_up(POLICY.max_attempts - 1, due, NOW) is None
    assert POLICY.give_up(POLICY.max_attempts, due, NOW) == "gave up after 8 attempts"
    late = NOW - POLICY.max_lateness - timedelta(seconds=1)
    assert POLICY.give_up(1, late, NOW) == "gave up: more than 6 h past its time"
    assert POLICY.give_up(1, NOW - POLICY.max_lateness, NOW) is None  # exactly on the limit
    short = RetryPolicy(max_lateness=timedelta(minutes=90))
    assert short.give_up(1, late, NOW) == "gave up: more than 1.5 h past its time"
