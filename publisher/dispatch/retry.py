"""When to try again: persisted exponential backoff with full jitter, and when to give up.

Pure: the time and the random source are parameters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(minutes=30)
    max_attempts: int = 8  # sends of one post, throttling not counted
    max_lateness: timedelta = timedelta(hours=6)  # after due_at, a retry becomes a failure
    reconcile_after: timedelta = timedelta(minutes=1)  # read-after-write grace before a lookup
    max_lookups: int = 5  # unclear lookups before a person must look (needs_review)

    def backoff(self, attempt: int, rng: random.Random) -> timedelta:
        """AWS "full jitter": uniform(0, min(cap, base · 2^attempt))."""
        ceiling = min(
            self.cap.total_seconds(), self.base.total_seconds() * 2 ** max(0, attempt - 1)
        )
        return timedelta(seconds=rng.uniform(0, ceiling))

    def next_attempt(
        self, attempt: int, now: datetime, hint: float | None, rng: random.Random
    ) -> datetime:
        """Backoff, but never sooner than the platform's wait hint (seconds)."""
        wait = self.backoff(attempt, rng)
        if hint is not None:
            wait = max(wait, timedelta(seconds=hint))
        return now + wait

    def give_up(self, attempt: int, due_at: datetime, now: datetime) -> str | None:
        """Why retrying should stop, or None to go on."""
        if attempt >= self.max_attempts:
            return f"gave up after {attempt} attempts"
        if now - due_at > self.max_lateness:
            hours = self.max_lateness.total_seconds() / 3600
            return f"gave up: more than {hours:g} h past its time"
        return None
