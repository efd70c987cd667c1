"""The planner: spreads posts over the campaign window by the channels' rules.

Pure and deterministic: the same demands, fixed posts and rules give the same calendar.
No clock, no network, no database. Times come in and go out as aware datetimes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from publisher.config import Config, QuietHours

PostKey = tuple[str, str, int]  # (message key, channel id, occurrence)


@dataclass(frozen=True)
class ChannelRules:
    slots: tuple[time, ...]
    daily_cap: int
    quiet_hours: QuietHours | None = None

    def usable_slots(self) -> tuple[time, ...]:
        quiet = self.quiet_hours
        return tuple(s for s in sorted(set(self.slots)) if not (quiet and quiet.contains(s)))


@dataclass(frozen=True)
class Rules:
    start: date
    end: date
    tz: ZoneInfo
    channels: Mapping[str, ChannelRules]

    def days(self) -> list[date]:
        return [self.start + timedelta(d) for d in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Demand:
    """One post the content asks for: a message on a channel, its n-th time."""

    message: str
    channel: str
    occurrence: int
    kind: str
    pinned: date | None = None

    @property
    def key(self) -> PostKey:
        return (self.message, self.channel, self.occurrence)


@dataclass(frozen=True)
class Fixed:
    """A post whose time the planner must keep (approved, published or set by hand)."""

    message: str
    channel: str
    occurrence: int
    kind: str
    due_at: datetime

    @property
    def key(self) -> PostKey:
        return (self.message, self.channel, self.occurrence)


@dataclass(frozen=True)
class Unplaced:
    demand: Demand
    reason: str


@dataclass
class Plan:
    times: dict[PostKey, datetime] = field(default_factory=dict)
    unplaced: list[Unplaced] = field(default_factory=list)


def rules_from_config(config: Config) -> Rules:
    channels = {
        cid: ChannelRules(ch.slots, ch.daily_cap, ch.quiet_hours)
        for cid, ch in config.channels.items()
    }
    camp = config.campaign
    return Rules(camp.start, camp.end, camp.timezone, channels)


def plan(
    rules: Rules,
    demands: Iterable[Demand],
    fixed: Iterable[Fixed] = (),
    preferred: Mapping[PostKey, datetime] | None = None,
) -> Plan:
    """Give every demand a time on one of its channel's slots, or say why it did not fit.

    ``fixed`` posts keep their times and take room first. A demand's ``preferred`` time (its
    time from the previous plan) is kept while it still obeys the rules, so re-planning after
    a small change does not reshuffle the calendar the board has already read.
    """
    result = Plan()
    prefer = dict(preferred or {})
    fixed_list = list(fixed)
    fixed_keys = {f.key for f in fixed_list}
    by_channel: dict[str, list[Demand]] = defaultdict(list)
    for d in demands:
        if d.key not in fixed_keys:
            by_channel[d.channel].append(d)
    fixed_by_channel: dict[str, list[Fixed]] = defaultdict(list)
    for f in fixed_list:
        fixed_by_channel[f.channel].append(f)
    for cid in sorted(by_channel):
        planner = _ChannelPlanner(rules, cid, fixed_by_channel[cid], result)
        planner.run(by_channel[cid], prefer)
    return result


class _ChannelPlanner:
    """Fills one channel's calendar: pinned posts, then articles, then the slogan rotation."""

    def __init__(self, rules: Rules, cid: str, fixed: Sequence[Fixed], out: Plan) -> None:
        self.rules, self.cid, self.out = rules, cid, out
        ch = rules.channels[cid]
        self.slots = ch.usable_slots()
        self.cap = min(ch.daily_cap, len(self.slots))
        self.days = rules.days()
        self.used: dict[date, set[time]] = defaultdict(set)
        self.count: dict[date, int] = defaultdict(int)
        self.kinds_on: dict[date, set[str]] = defaultdict(set)
        self.slogans: list[tuple[datetime, str]] = []  # (local time, message) placed or fixed
        for f in fixed:
            local = f.due_at.astimezone(rules.tz)
            day = local.date()
            self.used[day].add(local.time().replace(tzinfo=None))
            self.count[day] += 1
            self.kinds_on[day].add(f.kind)
            if f.kind == "slogan":
                self.slogans.append((local, f.message))

    def free_slot(self, day: date) -> time | None:
        if self.count[day] >= self.cap:
            return None
        return next((s for s in self.slots if s not in self.used[day]), None)

    def take(self, demand: Demand, day: date, slot: time) -> datetime:
        self.used[day].add(slot)
        self.count[day] += 1
        self.kinds_on[day].add(demand.kind)
        local = datetime.combine(day, slot, self.rules.tz)
        self.out.times[demand.key] = local.astimezone(UTC)
        return local

    def nearest_day(self, target: int, kind: str) -> date | None:
        """The day nearest to ``days[target]`` with room; first without another ``kind``."""
        n = len(self.days)
        order = sorted(range(n), key=lambda i: (abs(i - target), i < target))
        for avoid_same_kind in (True, False):
            for i in order:
                day = self.days[i]
                if avoid_same_kind and kind in self.kinds_on[day]:
                    continue
                if self.free_slot(day) is not None:
                    return day
        return None

    def full_reason(self) -> str:
        return (
            f"no free slot left on {self.cid} in {self.rules.start:%d/%m}–{self.rules.end:%d/%m} "
            f"({len(self.slots)} usable slots, at most {self.cap} posts a day)"
        )

    def keep(self, demand: Demand, when: datetime | None) -> bool:
        """Take ``when`` for ``demand`` if it is still a valid, free slot; say whether it was."""
        if when is None:
            return False
        local = when.astimezone(self.rules.tz)
        day, slot = local.date(), local.time().replace(tzinfo=None)
        valid = (
            self.rules.start <= day <= self.rules.end
            and slot in self.slots
            and slot not in self.used[day]
            and self.count[day] < self.cap
            and (demand.pinned is None or demand.occurrence > 1 or demand.pinned == day)
        )
        if valid:
            self.take(demand, day, slot)
            if demand.kind == "slogan":
                self.slogans.append((local, demand.message))
        return valid

    def run(self, demands: list[Demand], preferred: Mapping[PostKey, datetime]) -> None:
        pinned = sorted((d for d in demands if d.pinned and d.occurrence == 1), key=_order)
        rest = [d for d in demands if not (d.pinned and d.occurrence == 1)]
        pinned = [d for d in pinned if not self.keep(d, preferred.get(d.key))]
        kept = {d.key for d in sorted(rest, key=_order) if self.keep(d, preferred.get(d.key))}
        rest = [d for d in rest if d.key not in kept]
        for d in pinned:
            assert d.pinned is not None  # noqa: S101 - filtered above
            slot = (
                self.free_slot(d.pinned) if self.rules.start <= d.pinned <= self.rules.end else None
            )
            if slot is None:
                reason = (
                    f"pinned to {d.pinned:%d/%m/%Y} but {self.cid} has no free slot that day "
                    f"(at most {self.cap} posts a day, slots {_hhmm(self.slots)})"
                )
                self.out.unplaced.append(Unplaced(d, reason))
            else:
                local = self.take(d, d.pinned, slot)
                if d.kind == "slogan":
                    self.slogans.append((local, d.message))
        others = sorted((d for d in rest if d.kind != "slogan"), key=_order)
        self.spread(others)
        self.rotate_slogans(sorted((d for d in rest if d.kind == "slogan"), key=_order))

    def spread(self, demands: list[Demand]) -> None:
        n = len(self.days)
        for i, d in enumerate(demands):
            day = self.nearest_day(((2 * i + 1) * n) // (2 * len(demands)), d.kind)
            slot = self.free_slot(day) if day else None
            if day is None or slot is None:
                self.out.unplaced.append(Unplaced(d, self.full_reason()))
            else:
                self.take(d, day, slot)

    def rotate_slogans(self, demands: list[Demand]) -> None:
        """Round-robin the slogans over evenly spread slots, never one twice in a row."""
        if not demands:
            return
        queue = demands  # already in rotation order: (occurrence, message)
        positions: list[tuple[date, time]] = []
        n = len(self.days)
        for i in range(len(queue)):
            day = self.nearest_day(((2 * i + 1) * n) // (2 * len(queue)), "slogan")
            slot = self.free_slot(day) if day else None
            if day is None or slot is None:
                break
            self.used[day].add(slot)  # reserve; released to take() below
            self.count[day] += 1
            self.kinds_on[day].add("slogan")
            positions.append((day, slot))
        positions.sort()
        for day, slot in positions:
            self.used[day].discard(slot)
            self.count[day] -= 1
        pending = list(queue)
        for day, slot in positions:
            local = datetime.combine(day, slot, self.rules.tz)
            before = [(t, m) for t, m in self.slogans if t < local]
            after = [(t, m) for t, m in self.slogans if t > local]
            prev = max(before)[1] if before else None
            nxt = min(after)[1] if after else None
            pick = next((d for d in pending if d.message not in (prev, nxt)), None)
            pick = pick or next((d for d in pending if d.message != prev), pending[0])
            pending.remove(pick)
            self.take(pick, day, slot)
            self.slogans.append((local, pick.message))
        for d in pending:
            self.out.unplaced.append(Unplaced(d, self.full_reason()))


def _order(d: Demand) -> tuple[int, str]:
    return (d.occurrence, d.message)


def _hhmm(slots: Iterable[time]) -> str:
    return ", ".join(f"{s:%H:%M}" for s in slots) or "none"
