"""The sandbox's reach figures: plausible, seeded counts that grow with a post's age, and the
virtual clock a rehearsal sets so that a month of reach passes in its minutes.

A post's figures are ``peak × (1 − e^(−age/τ))`` for each figure, the peaks drawn once from the
sandbox's seed, the platform and the post's id (so the same post always has the same figures at
the same age, and two posts differ). Facebook reaches more people than Zalo, Zalo more than the
portals. ``age`` is measured on the virtual clock: a rehearsal tells the sandbox its virtual time
and speed (``POST /_sandbox/clock``), and an item created at sandbox time ``t`` was created at
virtual time ``at(t)``.

Pure: no HTTP; time comes in as parameters.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

REACTIONS = ("like", "love", "care", "haha", "wow", "sad", "angry")
REACTION_WEIGHTS = (70, 14, 8, 3, 3, 1, 1)


@dataclass(frozen=True)
class Profile:
    """How one platform's posts are read: the range of peak views, how fast they come (τ), and
    each other figure as a range of fractions of the views."""

    views: tuple[int, int]  # a post's peak views: log-uniform in this range
    tau: timedelta  # 63 % of the peak is reached at this age
    reactions: tuple[float, float] = (0.0, 0.0)
    comments: tuple[float, float] = (0.0, 0.0)
    shares: tuple[float, float] = (0.0, 0.0)
    clicks: tuple[float, float] = (0.0, 0.0)


PROFILES = {
    "facebook": Profile(
        (600, 6000),
        timedelta(hours=30),
        reactions=(0.03, 0.09),
        comments=(0.002, 0.012),
        shares=(0.004, 0.02),
        clicks=(0.01, 0.05),
    ),
    "zalo": Profile((120, 1500), timedelta(hours=48), shares=(0.005, 0.03)),
    "wordpress": Profile((40, 700), timedelta(hours=72)),
    "webhook": Profile((30, 500), timedelta(hours=72)),
}


class VirtualClock:
    """Sandbox time → a rehearsal's virtual time (the identity until a rehearsal sets it)."""

    def __init__(self) -> None:
        self._anchor: tuple[datetime, datetime, float] | None = None
        self._lock = threading.Lock()

    def set(self, sandbox_now: datetime, virtual_now: datetime, speed: float) -> None:
        """From now on, sandbox time ``sandbox_now`` is ``virtual_now``, and virtual time runs
        ``speed`` times faster."""
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a number > 0, not {speed!r}")
        if virtual_now.tzinfo is None:
            raise ValueError("the virtual time needs its UTC offset")
        with self._lock:
            self._anchor = (sandbox_now, virtual_now, speed)

    def clear(self) -> None:
        with self._lock:
            self._anchor = None

    def at(self, sandbox_time: datetime) -> datetime:
        with self._lock:
            anchor = self._anchor
        if anchor is None:
            return sandbox_time
        real, virtual, speed = anchor
        return virtual + (sandbox_time - real) * speed

    def sandbox_time(self, virtual_time: datetime) -> datetime:
        """The sandbox time that is ``virtual_time`` (``at``'s inverse)."""
        with self._lock:
            anchor = self._anchor
        if anchor is None:
            return virtual_time
        real, virtual, speed = anchor
        return real + (virtual_time - virtual) / speed

    def state(self) -> dict[str, str | float] | None:
        with self._lock:
            anchor = self._anchor
        if anchor is None:
            return None
        real, virtual, speed = anchor
        return {"sandbox": real.isoformat(), "virtual": virtual.isoformat(), "speed": speed}


def _rng(seed: int, platform: str, remote_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{platform}:{remote_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - figures, not secrets


def _between(rng: random.Random, low: float, high: float) -> float:
    return low if high <= low else rng.uniform(low, high)


def peaks(seed: int, platform: str, remote_id: str) -> dict[str, int]:
    """The post's figures once its reach has levelled off (every key of ``figures``)."""
    profile = PROFILES[platform]
    rng = _rng(seed, platform, remote_id)
    low, high = profile.views
    views = round(math.exp(rng.uniform(math.log(low), math.log(high))))
    out = {"views": views}
    for name in ("reactions", "comments", "shares", "clicks"):
        out[name] = round(views * _between(rng, *getattr(profile, name)))
    if out["reactions"]:
        share = [w * rng.uniform(0.6, 1.4) for w in REACTION_WEIGHTS]
        total = sum(share)
        for kind, part in zip(REACTIONS, share, strict=True):
            out[f"reaction:{kind}"] = round(out["reactions"] * part / total)
    return out


def figures(seed: int, platform: str, remote_id: str, age: timedelta) -> dict[str, int]:
    """The post's figures at ``age`` (0 before it exists): each peak × (1 − e^(−age/τ)),
    rounded down, so they never fall as it ages. ``reactions`` is the sum of the
    ``reaction:<type>`` counts."""
    tau = PROFILES[platform].tau
    grown = 0.0 if age <= timedelta(0) else 1.0 - math.exp(-(age / tau))
    top = peaks(seed, platform, remote_id)
    out = {name: math.floor(peak * grown) for name, peak in top.items()}
    kinds = [v for k, v in out.items() if k.startswith("reaction:")]
    if kinds:
        out["reactions"] = sum(kinds)
    return out
