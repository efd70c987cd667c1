"""Clocks: the system clock, a fake one for tests and the rehearsal clock that compresses June.

The one Clock of publisher: the dispatcher, the adapters, the token rotator and store and the
sandbox all ask one for the time (``now()``); nothing else in the core reads it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    @property
    def speed(self) -> float:
        """How many seconds pass on this clock per real second: 1 unless compressed (a
        rehearsal), where anything touching a real resource needs a real-time floor."""
        ...

    def now(self) -> datetime:
        """The current (possibly virtual) time, aware, in UTC."""
        ...

    def real_seconds(self, virtual: timedelta) -> float:
        """How many real seconds pass while ``virtual`` passes on this clock."""
        ...

    def virtual(self, real: timedelta) -> timedelta:
        """How much time passes on this clock while ``real`` passes."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Sleep ``seconds`` of real time, returning early if ``wake`` is set."""
        ...


def real_floor(clock: Clock, campaign: timedelta, real: timedelta) -> timedelta:
    """``campaign`` on ``clock``, but never less than ``real`` of real time: a periodic action
    that touches a real resource (a platform, the database) must not run every few
    milliseconds when the clock is compressed (a month rehearsed in minutes)."""
    return max(campaign, clock.virtual(real))


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, virtual: timedelta) -> float:
        return virtual.total_seconds()

    def virtual(self, real: timedelta) -> timedelta:
        return real

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        if wake is not None:
            wake.wait(max(0.0, seconds))
        else:
            time.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()  # stateless: every part that reads real time shares it


class FakeClock:
    """A clock tests move by hand; sleeping advances it instantly."""

    speed = 1.0  # the adapters' real time and this clock move alike (tests move both)

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.current = start.astimezone(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when.astimezone(UTC)

    def real_seconds(self, virtual: timedelta) -> float:
        return virtual.total_seconds()

    def virtual(self, real: timedelta) -> timedelta:
        return real

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        self.current += timedelta(seconds=max(0.0, seconds))


@dataclass(frozen=True)
class RehearsalClock:
    """``virtual = virtual_start + (real − real_start) × speed``: a month in minutes.

    The anchor (real_start, virtual_start, speed) is stored with the rehearsal's database so a
    restarted rehearsal continues the same timeline.
    """

    real_start: datetime
    virtual_start: datetime
    speed: float

    def now(self) -> datetime:
        return self.at(datetime.now(UTC))

    def at(self, real: datetime) -> datetime:
        """The virtual time at the real instant ``real``."""
        return self.virtual_start + (real - self.real_start) * self.speed

    def to_real(self, virtual: datetime) -> datetime:
        return self.real_start + (virtual - self.virtual_start) / self.speed

    def real_seconds(self, virtual: timedelta) -> float:
        return virtual.total_seconds() / self.speed

    def virtual(self, real: timedelta) -> timedelta:
        return real * self.speed

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        SystemClock().sleep(seconds, wake)
