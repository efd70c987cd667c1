"""The planner: spreads posts over the campaign window by the channels' rules.

Pure and deterministic: the same demands, fixed posts and rules give the same calendar.
No clock, no network, no database. Times come in and go out as aware datetimes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
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
    exists: dict[tuple[date, time], bool] = {}
    for cid in sorted(by_channel):
        planner = _ChannelPlanner(rules, cid, fixed_by_channel[cid], result, exists)
        planner.run(by_channel[cid], prefer)
    return result


class _ChannelPlanner:
    """Fills one channel's calendar: pinned posts, then articles, then the slogan rotation."""

    def __init__(
        self,
        rules: Rules,
        cid: str,
        fixed: Sequence[Fixed],
        out: Plan,
        exists: dict[tuple[date, time], bool],
    ) -> None:
        self.rules, self.cid, self.out = rules, cid, out
        self.exists = exists  # which local times happen (_exists), shared by the channels
        ch = rules.channels[cid]
        self.slots = ch.usable_slots()
        # The cap counts every post of the day, fixed ones at any time included; the slots
        # themselves limit the rest (free_slot).
        self.cap = ch.daily_cap
        self.days = rules.days()
        self.used: dict[date, set[time]] = defaultdict(set)
        self.count: dict[date, int] = defaultdict(int)
        self.kinds_on: dict[date, list[str]] = defaultdict(list)  # a multiset: see release()
        # per kind, how many days of the window have none of it (kept by _add/_remove_kind):
        # when none, nearest_day's first search cannot succeed and is skipped (it was linear in
        # the window for every post, most of a large plan's time, bench/RESULTS.md)
        self.window = set(self.days)
        self.lacking: dict[str, int] = defaultdict(lambda: len(self.window))
        self.slogans: list[tuple[datetime, str]] = []  # (local time, message) placed or fixed
        for f in fixed:
            local = f.due_at.astimezone(rules.tz)
            day = local.date()
            self.used[day].add(local.time().replace(tzinfo=None))
            self.count[day] += 1
            self._add_kind(day, f.kind)
            if f.kind == "slogan":
                self.slogans.append((local, f.message))

    def _add_kind(self, day: date, kind: str) -> None:
        if day in self.window and kind not in self.kinds_on[day]:
            self.lacking[kind] -= 1
        self.kinds_on[day].append(kind)

    def _remove_kind(self, day: date, kind: str) -> None:
        self.kinds_on[day].remove(kind)
        if day in self.window and kind not in self.kinds_on[day]:
            self.lacking[kind] += 1

    def free_slot(self, day: date) -> time | None:
        if self.count[day] >= self.cap:
            return None
        used, exists = self.used[day], self.exists
        for s in self.slots:
            if s not in used:
                ok = exists.get((day, s))
                if ok is None:
                    ok = exists[(day, s)] = _exists(day, s, self.rules.tz)
                if ok:
                    return s
        return None

    def take(self, demand: Demand, day: date, slot: time) -> datetime:
        self.used[day].add(slot)
        self.count[day] += 1
        self._add_kind(day, demand.kind)
        local = datetime.combine(day, slot, self.rules.tz)
        self.out.times[demand.key] = local.astimezone(UTC)
        return local

    def release(self, demand: Demand, local: datetime) -> None:
        """Undo ``take`` (and the slogan entry) of a post kept at ``local``."""
        day = local.date()
        self.used[day].discard(local.time())
        self.count[day] -= 1
        self._remove_kind(day, demand.kind)
        del self.out.times[demand.key]
        if demand.kind == "slogan":
            self.slogans.remove((local, demand.message))

    def nearest_day(self, target: int, kind: str) -> tuple[date, time] | None:
        """The day nearest to ``days[target]`` with room, first without another ``kind``; with
        its free slot (``free_slot``: found while looking, not looked for again)."""
        order = _nearest_first(len(self.days), target)
        days, kinds_on, free_slot = self.days, self.kinds_on, self.free_slot
        if self.lacking[kind]:
            for i in order:
                if kind not in kinds_on[days[i]] and (slot := free_slot(days[i])) is not None:
                    return days[i], slot
        for i in order:
            if (slot := free_slot(days[i])) is not None:
                return days[i], slot
        return None

    def full_reason(self) -> str:
        return (
            f"no free slot left on {self.cid} in {self.rules.start:%d/%m}–{self.rules.end:%d/%m} "
            f"({len(self.slots)} usable slots, at most {self.cap} posts a day)"
        )

    def keep(self, demand: Demand, when: datetime | None) -> datetime | None:
        """Take ``when`` for ``demand`` if it is still a valid, free slot; its local time if so."""
        if when is None:
            return None
        local = when.astimezone(self.rules.tz)
        day, slot = local.date(), local.time().replace(tzinfo=None)
        valid = (
            self.rules.start <= day <= self.rules.end
            and slot in self.slots
            and slot not in self.used[day]
            and self.count[day] < self.cap
            and (demand.pinned is None or demand.occurrence > 1 or demand.pinned == day)
        )
        if not valid:
            return None
        local = self.take(demand, day, slot)
        if demand.kind == "slogan":
            self.slogans.append((local, demand.message))
        return local

    def run(self, demands: list[Demand], preferred: Mapping[PostKey, datetime]) -> None:
        pinned = sorted((d for d in demands if d.pinned and d.occurrence == 1), key=_order)
        rest = sorted((d for d in demands if not (d.pinned and d.occurrence == 1)), key=_order)
        pinned = [d for d in pinned if self.keep(d, preferred.get(d.key)) is None]
        kept: dict[PostKey, tuple[Demand, datetime]] = {}
        for d in rest:
            local = self.keep(d, preferred.get(d.key))
            if local is not None:
                kept[d.key] = (d, local)
        for d in pinned:
            assert d.pinned is not None  # noqa: S101 - filtered above
            in_window = self.rules.start <= d.pinned <= self.rules.end
            slot = self.free_slot(d.pinned) if in_window else None
            if slot is None and in_window:
                # A pin outranks a post only kept at its previous (preferred) time: the
                # earliest such post that day gives up its place and is planned again below.
                on_day = [v for v in kept.values() if v[1].date() == d.pinned]
                if on_day:
                    victim, at = min(on_day, key=lambda v: v[1])
                    self.release(victim, at)
                    del kept[victim.key]
                    slot = self.free_slot(d.pinned)
            if slot is None:
                if in_window:
                    reason = (
                        f"pinned to {d.pinned:%d/%m/%Y} but {self.cid} has no free slot that "
                        f"day (at most {self.cap} posts a day, slots {_hhmm(self.slots)})"
                    )
                else:
                    reason = (
                        f"pinned to {d.pinned:%d/%m/%Y}, outside the window "
                        f"{self.rules.start:%d/%m/%Y}–{self.rules.end:%d/%m/%Y}"
                    )
                self.out.unplaced.append(Unplaced(d, reason))
            else:
                local = self.take(d, d.pinned, slot)
                if d.kind == "slogan":
                    self.slogans.append((local, d.message))
        rest = [d for d in rest if d.key not in kept]
        self.spread([d for d in rest if d.kind != "slogan"])
        self.rotate_slogans([d for d in rest if d.kind == "slogan"])

    def spread(self, demands: list[Demand]) -> None:
        n = len(self.days)
        for i, d in enumerate(demands):
            found = self.nearest_day(((2 * i + 1) * n) // (2 * len(demands)), d.kind)
            if found is None:
                self.out.unplaced.append(Unplaced(d, self.full_reason()))
            else:
                self.take(d, *found)

    def rotate_slogans(self, demands: list[Demand]) -> None:
        """Round-robin the slogans over evenly spread slots, never one twice in a row."""
        if not demands:
            return
        queue = demands  # already in rotation order: (occurrence, message)
        positions: list[tuple[date, time]] = []
        n = len(self.days)
        for i in range(len(queue)):
            found = self.nearest_day(((2 * i + 1) * n) // (2 * len(queue)), "slogan")
            if found is None:
                break
            day, slot = found
            self.used[day].add(slot)  # reserve; released to take() below
            self.count[day] += 1
            self._add_kind(day, "slogan")
            positions.append((day, slot))
        positions.sort()
        for day, slot in positions:
            self.used[day].discard(slot)
            self.count[day] -= 1
            self._remove_kind(day, "slogan")
        tz = self.rules.tz
        times = [datetime.combine(day, slot, tz) for day, slot in positions]
        order = _arrange(times, queue, self.slogans) or self.greedy(times, queue)
        for (day, slot), pick in zip(positions, order, strict=True):
            local = self.take(pick, day, slot)
            self.slogans.append((local, pick.message))
        placed = {d.key for d in order}
        for d in queue:
            if d.key not in placed:
                self.out.unplaced.append(Unplaced(d, self.full_reason()))

    def greedy(self, times: list[datetime], queue: list[Demand]) -> list[Demand]:
        """The old one-pass rotation: best effort when no order avoids a repeat (fixed, pinned
        or kept slogans, or a lone slogan, force one)."""
        slogans = list(self.slogans)
        pending = list(queue)
        order = []
        for local in times:
            before = [(t, m) for t, m in slogans if t < local]
            after = [(t, m) for t, m in slogans if t > local]
            prev = max(before)[1] if before else None
            nxt = min(after)[1] if after else None
            pick = next((d for d in pending if d.message not in (prev, nxt)), None)
            pick = pick or next((d for d in pending if d.message != prev), pending[0])
            pending.remove(pick)
            order.append(pick)
            slogans.append((local, pick.message))
        return order


def _arrange(
    times: Sequence[datetime], queue: Sequence[Demand], placed: Iterable[tuple[datetime, str]]
) -> list[Demand] | None:
    """Slogans for the sorted ``times``: no message twice in a row, counting the ``placed``
    slogans between and around them; each message's occurrences in order, and the rotation
    order (``queue``) wherever the rule allows. A bounded depth-first search; None if it finds
    no such order."""
    n = len(times)
    before, after = _neighbours(times, placed)
    left = _Rotation(queue)
    order: list[Demand] = []
    failed: set[tuple[int, str | None, tuple[int, ...]]] = set()
    budget = 20_000

    def frame(i: int) -> tuple[int, str | None, Iterator[Demand]]:
        prev = before[i] if before[i] is not None or not order else order[-1].message
        skip = (prev, after[i])
        # The candidates are read from ``left.heads`` itself, not a copy (copying every head
        # for every position made long rotations quadratic: bench/findings.py). The list
        # changes while the frame waits, but whenever the loop below asks a frame for its next
        # candidate, every pick made since the frame was built (its own and deeper frames')
        # has been undone, so ``heads`` is again the list the frame was built on.
        return i, prev, (d for d in left.heads if d.message not in skip)

    def state(i: int, prev: str | None) -> tuple[int, str | None, tuple[int, ...]]:
        """A frame's search state; ``taken`` is as it was when the frame was made."""
        return (i, prev, tuple(left.taken.values()))

    if n == 0:
        return []
    stack = [frame(0)]  # one frame per position being filled
    while stack and budget > 0:
        budget -= 1
        i, prev, candidates = stack[-1]
        if len(order) == len(stack):  # back in this frame: undo its last pick
            left.untake(order.pop())
        pick = next(candidates, None)
        if pick is None:
            failed.add(state(i, prev))
            stack.pop()
            continue
        order.append(pick)
        left.take(pick)
        if len(order) == n:
            return order
        nxt = frame(len(order))
        if not failed or state(nxt[0], nxt[1]) not in failed:
            stack.append(nxt)
    return None


def _neighbours(
    times: Sequence[datetime], placed: Iterable[tuple[datetime, str]]
) -> tuple[list[str | None], list[str | None]]:
    """For each of the sorted ``times``, the ``placed`` slogan right before it (after the time
    before it) and the one right after it (before the time after it); None where none is."""
    anchors = sorted(placed)
    n = len(times)
    before: list[str | None] = []
    after: list[str | None] = []
    for i, t in enumerate(times):
        low = times[i - 1] if i else None
        high = times[i + 1] if i + 1 < n else None
        between = [m for at, m in anchors if at < t and (low is None or at > low)]
        before.append(between[-1] if between else None)
        between = [m for at, m in anchors if at > t and (high is None or at < high)]
        after.append(between[0] if between else None)
    return before, after


class _Rotation:
    """The slogans ``_arrange`` picks from: each message's occurrences in rotation order, how
    many of each are ``taken``, and the next untaken occurrence of each (``heads``)."""

    def __init__(self, queue: Sequence[Demand]) -> None:
        self.queues: dict[str, list[Demand]] = defaultdict(list)
        for d in sorted(queue, key=_order):
            self.queues[d.message].append(d)
        self.taken = dict.fromkeys(sorted(self.queues), 0)
        # Kept sorted as picks are made and undone (sorting them anew at every position made
        # long rotations quadratic: bench/RESULTS.md); ``orders`` holds each head's ``_order``,
        # so the searches compare tuples without calling it.
        self.heads = sorted((q[0] for q in self.queues.values()), key=_order)
        self.orders = [_order(d) for d in self.heads]

    def take(self, d: Demand) -> None:
        """Pick ``d``, the head of its message: the message's next occurrence becomes head."""
        taken = self.taken
        self._drop(_order(d))
        taken[d.message] += 1
        q = self.queues[d.message]
        if taken[d.message] < len(q):
            self._add(q[taken[d.message]])

    def untake(self, d: Demand) -> None:
        """Undo ``take(d)``: ``d`` is its message's head again."""
        taken = self.taken
        q = self.queues[d.message]
        if taken[d.message] < len(q):
            self._drop(_order(q[taken[d.message]]))
        taken[d.message] -= 1
        self._add(d)

    def _drop(self, order: tuple[int, str]) -> None:
        at = bisect_left(self.orders, order)
        del self.orders[at], self.heads[at]

    def _add(self, d: Demand) -> None:
        order = _order(d)
        at = bisect_left(self.orders, order)
        self.orders.insert(at, order)
        self.heads.insert(at, d)


@lru_cache(maxsize=1024)
def _nearest_first(n: int, target: int) -> tuple[int, ...]:
    """Day indexes ``0..n-1`` by distance from ``target``, the later one first on a tie."""
    return tuple(sorted(range(n), key=lambda i: (abs(i - target), i < target)))


def _exists(day: date, slot: time, tz: ZoneInfo) -> bool:
    """Whether the local time ``slot`` happens on ``day`` (a DST jump skips some)."""
    local = datetime.combine(day, slot, tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == datetime.combine(day, slot)


def _order(d: Demand) -> tuple[int, str]:
    return (d.occurrence, d.message)


def _hhmm(slots: Iterable[time]) -> str:
    return ", ".join(f"{s:%H:%M}" for s in slots) or "none"
