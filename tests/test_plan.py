"""The planner's contract: example calendars with literal times, and hypothesis properties.

Every property check goes through ``check_plan``, which asserts the invariants of the planner
(window, slots, quiet hours, pins, caps, fixed posts, exactly-once, UTC, no double booking,
slogan rotation) against an independent reading of the rules, not against planner internals.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.config import QuietHours, parse_config
from publisher.plan import (
    ChannelRules,
    Demand,
    Fixed,
    Plan,
    PostKey,
    Rules,
    plan,
    rules_from_config,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
JUNE_1, JUNE_30 = date(2024, 6, 1), date(2024, 6, 30)
PROPERTY = settings(max_examples=200, deadline=None)


def hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def slots(*texts: str) -> tuple[time, ...]:
    return tuple(hm(t) for t in texts)


def usable(ch: ChannelRules) -> set[time]:
    quiet = ch.quiet_hours
    return {s for s in ch.slots if not (quiet and quiet.contains(s))}


def exists(day: date, slot: time, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time ``slot`` happens on ``day`` (not skipped by a DST jump)."""
    local = datetime.combine(day, slot, tz)
    back = local.astimezone(UTC).astimezone(tz)
    return (back.date(), back.time()) == (day, slot)


def local_of(rules: Rules, when: datetime) -> tuple[date, time]:
    loc = when.astimezone(rules.tz)
    return loc.date(), loc.time()


def is_pin(d: Demand) -> bool:
    return d.pinned is not None and d.occurrence == 1


def names_date(reason: str, day: date) -> bool:
    return f"{day:%d/%m/%Y}" in reason or day.isoformat() in reason


def check_plan(
    rules: Rules,
    demands: Sequence[Demand],
    fixed: Sequence[Fixed],
    result: Plan,
    *,
    rotation: bool = True,
) -> None:
    """Assert every invariant of the contract; ``rotation`` adds the slogan-order checks
    (off when arbitrary ``preferred`` times were given: a valid preferred time is kept even
    where it puts one slogan twice in a row)."""
    fixed_keys = {f.key for f in fixed}
    by_key = {d.key: d for d in demands}
    assert len(by_key) == len(demands), "test bug: duplicate demand keys"

    # Exactly once: placed ∪ unplaced == demands − fixed, never both, never twice.
    unplaced_keys = [u.demand.key for u in result.unplaced]
    assert len(unplaced_keys) == len(set(unplaced_keys)), "a demand is unplaced twice"
    assert set(result.times).isdisjoint(unplaced_keys), "a demand is both placed and unplaced"
    assert set(result.times) | set(unplaced_keys) == set(by_key) - fixed_keys
    for u in result.unplaced:
        assert u.demand == by_key[u.demand.key]
        assert isinstance(u.reason, str)
        assert u.reason.strip(), f"{u.demand} unplaced without a reason"

    # Where every post of each channel lands, in local time.
    occupied: dict[tuple[str, date], list[tuple[time, PostKey | None]]] = defaultdict(list)
    fixed_count: Counter[tuple[str, date]] = Counter()
    fixed_instants: dict[str, set[datetime]] = defaultdict(set)
    for f in fixed:
        day, at = local_of(rules, f.due_at)
        occupied[(f.channel, day)].append((at, None))
        fixed_count[(f.channel, day)] += 1
        fixed_instants[f.channel].add(f.due_at)
    placed_count: Counter[tuple[str, date]] = Counter()
    instants: dict[str, list[datetime]] = defaultdict(list)
    for key, when in result.times.items():
        d = by_key[key]
        ch = rules.channels[d.channel]
        # Aware, in UTC.
        assert when.tzinfo is not None and when.utcoffset() == timedelta(0), when
        assert when.tzinfo == UTC, when
        day, at = local_of(rules, when)
        assert rules.start <= day <= rules.end, f"{key} at {when} is outside the window"
        assert at in ch.slots, f"{key} at local {at} is not one of {d.channel}'s slots"
        assert not (ch.quiet_hours and ch.quiet_hours.contains(at)), f"{key} in quiet hours"
        if is_pin(d):
            assert day == d.pinned, f"{key} pinned to {d.pinned} but placed on {day}"
        assert when not in fixed_instants[d.channel], f"{key} double-books a fixed post"
        occupied[(d.channel, day)].append((at, key))
        placed_count[(d.channel, day)] += 1
        instants[d.channel].append(when)
    for cid, whens in instants.items():
        assert len(whens) == len(set(whens)), f"two posts at the same time on {cid}"

    # Daily caps: placed + fixed ≤ cap, unless fixed posts alone already break it.
    for (cid, day), n in placed_count.items():
        cap = rules.channels[cid].daily_cap
        assert n + fixed_count[(cid, day)] <= cap, f"{cid} has {n}+fixed posts on {day}"

    def has_room(cid: str, day: date) -> bool:
        ch = rules.channels[cid]
        posts = occupied[(cid, day)]
        if len(posts) >= ch.daily_cap:
            return False
        taken = {at for at, _ in posts}
        return any(s not in taken and exists(day, s, rules.tz) for s in usable(ch))

    room = {cid: [day for day in rules.days() if has_room(cid, day)] for cid in rules.channels}
    # Never dropped while there was room: an unplaced post had nowhere to go, and a pin
    # never loses its day to a post that could have gone elsewhere.
    for u in result.unplaced:
        d = u.demand
        if is_pin(d):
            assert d.pinned is not None
            assert names_date(u.reason, d.pinned), u.reason
            if rules.start <= d.pinned <= rules.end:
                assert d.pinned not in room[d.channel], f"{d} unplaced, its day has room"
                for _, other in occupied[(d.channel, d.pinned)]:
                    if other is not None:
                        o = by_key[other]
                        assert is_pin(o) and o.pinned == d.pinned, f"{other} took {d}'s pin day"
        else:
            free = room[d.channel]
            assert not free, f"{d} unplaced though {d.channel} has room on {free[:3]}"

    if rotation:
        for cid in rules.channels:
            check_slogans(rules, cid, demands, fixed, result)


def check_slogans(
    rules: Rules, cid: str, demands: Sequence[Demand], fixed: Sequence[Fixed], result: Plan
) -> None:
    """Never the same slogan twice in a row on a channel (articles ignored), whenever the
    channel has at least two distinct slogans.

    Restrictions, where the rule cannot hold: fixed slogans can force a repeat (two fixed posts
    of one slogan next to each other), so channels with fixed slogans are not checked; pinned
    slogans can force one too (A pinned to the 1st, B to the 3rd, one free day between and one
    post a day: A ? B), so with pins a repeat is only allowed when no order of the unpinned
    slogans over the same times avoids it (exhaustive search, for up to 12 such times).
    """
    mine = [d for d in demands if d.channel == cid and d.kind == "slogan"]
    if len({d.message for d in mine}) < 2:
        return
    if any(f.channel == cid and f.kind == "slogan" for f in fixed):
        return
    by_key = {d.key: d for d in mine}
    seq = sorted((t, by_key[k]) for k, t in result.times.items() if k in by_key)
    repeats = [(a, b) for (_, a), (_, b) in itertools.pairwise(seq) if a.message == b.message]
    if not any(is_pin(d) for d in mine):
        assert not repeats, f"a slogan twice in a row on {cid}: {repeats}"
        # And the rotation goes round by round: every slogan's n-th post before any (n+1)-th.
        occurrences = [d.occurrence for _, d in seq]
        assert occurrences == sorted(occurrences), f"{cid} slogans not in rounds: {seq}"
        return
    free = [d for _, d in seq if not is_pin(d)]
    if repeats and len(free) <= 12:
        # The placed sequence with its free (unpinned) places blanked out: pins stay put.
        pattern = [None if not is_pin(d) else d.message for _, d in seq]
        available = Counter(d.message for d in mine if not is_pin(d))
        assert not can_alternate(pattern, available), f"avoidable repeat on {cid}: {repeats}"


def can_alternate(pattern: Sequence[str | None], available: Mapping[str, int]) -> bool:
    """Whether the blanks (None) of ``pattern`` can be filled from ``available`` with no
    message twice in a row."""
    names = sorted(available)

    @functools.cache
    def fill(i: int, prev: str | None, left: tuple[int, ...]) -> bool:
        if i == len(pattern):
            return True
        fixed_here = pattern[i]
        if fixed_here is not None:
            return fixed_here != prev and fill(i + 1, fixed_here, left)
        for j, name in enumerate(names):
            if left[j] and name != prev:
                rest = (*left[:j], left[j] - 1, *left[j + 1 :])
                if fill(i + 1, name, rest):
                    return True
        return False

    return fill(0, None, tuple(available[n] for n in names))


def keys_on(result: Plan, channel: str) -> dict[PostKey, datetime]:
    return {k: t for k, t in result.times.items() if k[1] == channel}


# ---------------------------------------------------------------------------------------------
# Examples with literal times.


def campaign_rules() -> Rules:
    """The real campaign's shape (config.toml): June 2024 in Vietnam, four channels."""
    return Rules(
        JUNE_1,
        JUNE_30,
        HCM,
        {
            "portal_stp": ChannelRules(slots("08:00", "14:30"), 2),
            "portal_pbgdpl": ChannelRules(slots("08:30", "15:00"), 1),
            "facebook": ChannelRules(
                slots("07:30", "11:30", "20:00"), 2, QuietHours(hm("22:30"), hm("06:00"))
            ),
            "zalo": ChannelRules(slots("09:00", "19:30"), 1, QuietHours(hm("22:00"), hm("06:00"))),
        },
    )


def campaign_demands() -> list[Demand]:
    slogan_channels = ("portal_stp", "portal_pbgdpl", "facebook", "zalo")
    article_channels = ("portal_stp", "facebook", "zalo")
    pins = {1: date(2024, 6, 1), 4: date(2024, 6, 12), 8: date(2024, 6, 28)}
    demands = [
        Demand(f"slogan-{i}", cid, occ, "slogan")
        for i in range(1, 7)
        for cid in slogan_channels
        for occ in (1, 2)
    ]
    demands += [
        Demand(f"article-{i}", cid, 1, "article", pins.get(i))
        for i in range(1, 9)
        for cid in article_channels
    ]
    return demands


def test_the_campaign_fits_entirely() -> None:
    rules, demands = campaign_rules(), campaign_demands()
    result = plan(rules, demands)

    assert result.unplaced == []
    assert len(result.times) == 6 * 2 * 4 + 8 * 3 == 72
    check_plan(rules, demands, [], result)
    # Pins on their day, in the channel's first slot (local +07:00 → UTC).
    assert result.times[("article-1", "portal_stp", 1)] == datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    assert result.times[("article-4", "facebook", 1)] == datetime(2024, 6, 12, 0, 30, tzinfo=UTC)
    assert result.times[("article-8", "zalo", 1)] == datetime(2024, 6, 28, 2, 0, tzinfo=UTC)
    # Every slogan twice on each of its four channels.
    per = Counter((k[0], k[1]) for k in result.times if k[0].startswith("slogan"))
    assert set(per.values()) == {2}
    assert len(per) == 6 * 4
    # Articles are spread: no two on one day on a channel, and they reach the last week.
    for cid in ("portal_stp", "facebook", "zalo"):
        days = sorted(
            t.astimezone(HCM).date()
            for k, t in keys_on(result, cid).items()
            if k[0].startswith("article")
        )
        assert len(days) == len(set(days)) == 8
        # An article in every week of June. Not evener than that: the unpinned articles are
        # spread as if the pins were not there (gaps of 3, 6, 2, 4, 6, 6 and 1 days today).
        gaps = [b - a for a, b in zip([JUNE_1, *days], [*days, JUNE_30], strict=True)]
        assert max(g.days for g in gaps) <= 7, days


def test_the_campaign_is_independent_of_input_order_and_stable() -> None:
    rules, demands = campaign_rules(), campaign_demands()
    result = plan(rules, demands)
    shuffled = sorted(demands, key=lambda d: (d.channel[::-1], -d.occurrence, d.message[::-1]))
    assert plan(rules, shuffled) == result
    assert plan(rules, list(reversed(demands))) == result
    assert plan(rules, demands, preferred=result.times) == result


def test_pinned_day_without_room_is_unplaced_with_the_date() -> None:
    rules = Rules(JUNE_1, JUNE_30, HCM, {"zalo": ChannelRules(slots("09:00", "19:30"), 1)})
    first = Demand("a-first", "zalo", 1, "article", date(2024, 6, 12))
    second = Demand("b-second", "zalo", 1, "article", date(2024, 6, 12))
    outside = Demand("c-july", "zalo", 1, "article", date(2024, 7, 5))

    result = plan(rules, [second, outside, first])

    assert result.times == {first.key: datetime(2024, 6, 12, 2, 0, tzinfo=UTC)}
    reasons = {u.demand.key: u.reason for u in result.unplaced}
    assert set(reasons) == {second.key, outside.key}
    assert names_date(reasons[second.key], date(2024, 6, 12)), reasons[second.key]
    assert names_date(reasons[outside.key], date(2024, 7, 5)), reasons[outside.key]
    check_plan(rules, [first, second, outside], [], result)


def test_a_later_occurrence_of_a_pinned_message_is_free() -> None:
    rules = Rules(JUNE_1, date(2024, 6, 3), HCM, {"web": ChannelRules(slots("08:00"), 1)})
    demands = [Demand("news", "web", occ, "article", date(2024, 6, 2)) for occ in (1, 2, 3)]

    result = plan(rules, demands)

    assert result.unplaced == []
    assert result.times[("news", "web", 1)] == datetime(2024, 6, 2, 1, 0, tzinfo=UTC)
    assert {t.astimezone(HCM).date() for t in result.times.values()} == {
        date(2024, 6, 1),
        date(2024, 6, 2),
        date(2024, 6, 3),
    }


def test_overflow_is_unplaced_with_a_reason() -> None:
    rules = Rules(JUNE_1, date(2024, 6, 3), HCM, {"web": ChannelRules(slots("08:00"), 1)})
    demands = [Demand(f"article-{i}", "web", 1, "article") for i in range(1, 6)]

    result = plan(rules, demands)

    assert sorted(result.times.values()) == [
        datetime(2024, 6, 1, 1, 0, tzinfo=UTC),
        datetime(2024, 6, 2, 1, 0, tzinfo=UTC),
        datetime(2024, 6, 3, 1, 0, tzinfo=UTC),
    ]
    assert len(result.unplaced) == 2
    for u in result.unplaced:
        assert "web" in u.reason
        assert "slot" in u.reason
    check_plan(rules, demands, [], result)


def test_slogans_overflow_is_unplaced_and_still_alternates() -> None:
    rules = Rules(JUNE_1, date(2024, 6, 2), HCM, {"fb": ChannelRules(slots("07:30", "20:00"), 2)})
    demands = [Demand(m, "fb", occ, "slogan") for m in ("s-a", "s-b") for occ in (1, 2, 3)]

    result = plan(rules, demands)

    assert len(result.times) == 4
    assert {u.demand.occurrence for u in result.unplaced} == {3}
    check_plan(rules, demands, [], result)


def test_fixed_posts_are_kept_and_count_toward_caps() -> None:
    rules = Rules(
        JUNE_1, date(2024, 6, 2), HCM, {"portal": ChannelRules(slots("08:00", "14:30"), 2)}
    )
    demands = [Demand("s-0", "portal", 1, "slogan")] + [
        Demand(f"a-{i}", "portal", 1, "article") for i in range(1, 4)
    ]
    fixed = [
        # Approved at its slot, and one set by hand at 10:00 (not a slot) on the same day.
        Fixed("s-0", "portal", 1, "slogan", datetime(2024, 6, 1, 1, 0, tzinfo=UTC)),
        Fixed("old", "portal", 1, "article", datetime(2024, 6, 1, 10, 0, tzinfo=HCM)),
    ]

    result = plan(rules, demands, fixed)

    assert ("s-0", "portal", 1) not in result.times  # a fixed post is not re-planned
    # 1 June is full (two fixed posts, cap 2); 2 June takes two articles, the third waits.
    assert sorted(result.times.values()) == [
        datetime(2024, 6, 2, 1, 0, tzinfo=UTC),
        datetime(2024, 6, 2, 7, 30, tzinfo=UTC),
    ]
    assert [u.demand.message for u in result.unplaced] == ["a-3"]
    check_plan(rules, demands, fixed, result)


def test_a_fixed_slot_is_never_double_booked() -> None:
    rules = Rules(JUNE_1, JUNE_1, HCM, {"portal": ChannelRules(slots("08:00", "14:30"), 2)})
    demands = [Demand("a-1", "portal", 1, "article"), Demand("a-2", "portal", 1, "article")]
    fixed = [Fixed("hand", "portal", 1, "article", datetime(2024, 6, 1, 1, 0, tzinfo=UTC))]

    result = plan(rules, demands, fixed)

    assert result.times == {("a-1", "portal", 1): datetime(2024, 6, 1, 7, 30, tzinfo=UTC)}
    assert [u.demand.key for u in result.unplaced] == [("a-2", "portal", 1)]


def test_fixed_posts_over_the_cap_leave_that_day_empty() -> None:
    rules = Rules(JUNE_1, date(2024, 6, 2), HCM, {"zalo": ChannelRules(slots("09:00"), 1)})
    fixed = [
        Fixed("x", "zalo", 1, "article", datetime(2024, 6, 1, 9, 0, tzinfo=HCM)),
        Fixed("y", "zalo", 1, "article", datetime(2024, 6, 1, 12, 0, tzinfo=HCM)),
    ]
    demands = [Demand("a", "zalo", 1, "article"), Demand("b", "zalo", 1, "article")]

    result = plan(rules, demands, fixed)

    assert list(result.times.values()) == [datetime(2024, 6, 2, 2, 0, tzinfo=UTC)]
    assert len(result.unplaced) == 1
    check_plan(rules, demands, fixed, result)


def test_an_off_slot_fixed_post_leaves_room_under_the_cap() -> None:
    # One slot, cap 2: a post set by hand at 10:00 uses one of the two posts of the day, and
    # the 08:00 slot is still free, so the article fits (count 2 ≤ cap 2).
    rules = Rules(JUNE_1, JUNE_1, HCM, {"web": ChannelRules(slots("08:00"), 2)})
    fixed = [Fixed("hand", "web", 1, "article", datetime(2024, 6, 1, 10, 0, tzinfo=HCM))]
    demands = [Demand("a", "web", 1, "article")]

    result = plan(rules, demands, fixed)

    assert result.times == {("a", "web", 1): datetime(2024, 6, 1, 1, 0, tzinfo=UTC)}
    assert result.unplaced == []


def test_quiet_hours_across_midnight_remove_a_slot() -> None:
    quiet = QuietHours(hm("22:00"), hm("06:00"))
    rules = Rules(
        JUNE_1,
        date(2024, 6, 3),
        HCM,
        {"zalo": ChannelRules(slots("05:30", "23:00", "09:00"), 3, quiet)},
    )
    demands = [Demand(f"a-{i}", "zalo", 1, "article") for i in range(5)]

    result = plan(rules, demands)

    assert {t.astimezone(HCM).time() for t in result.times.values()} == {hm("09:00")}
    assert len(result.times) == 3
    assert len(result.unplaced) == 2
    check_plan(rules, demands, [], result)


def test_every_slot_quiet_leaves_everything_unplaced() -> None:
    quiet = QuietHours(hm("20:00"), hm("10:00"))
    rules = Rules(JUNE_1, JUNE_30, HCM, {"fb": ChannelRules(slots("07:30", "21:00"), 2, quiet)})
    demands = [
        Demand("s", "fb", 1, "slogan"),
        Demand("a", "fb", 1, "article", date(2024, 6, 12)),
    ]

    result = plan(rules, demands)

    assert result.times == {}
    assert len(result.unplaced) == 2
    check_plan(rules, demands, [], result)


def test_preferred_times_are_kept_when_valid() -> None:
    rules = Rules(JUNE_1, date(2024, 6, 10), HCM, {"web": ChannelRules(slots("08:00", "14:30"), 1)})
    demands = [Demand(f"s-{i}", "web", 1, "slogan") for i in range(3)]
    fresh = plan(rules, demands)
    preferred = {
        ("s-0", "web", 1): datetime(2024, 6, 9, 7, 30, tzinfo=UTC),  # valid: 14:30 on 9 June
        ("s-1", "web", 1): datetime(2024, 6, 9, 1, 0, tzinfo=UTC),  # day already full (cap 1)
        ("s-2", "web", 1): datetime(2024, 6, 4, 3, 0, tzinfo=UTC),  # 10:00 is not a slot
    }

    result = plan(rules, demands, preferred=preferred)

    assert result.times[("s-0", "web", 1)] == datetime(2024, 6, 9, 7, 30, tzinfo=UTC)
    assert result.times[("s-1", "web", 1)] != preferred[("s-1", "web", 1)]
    assert result.times[("s-2", "web", 1)] != preferred[("s-2", "web", 1)]
    assert result.unplaced == []
    check_plan(rules, demands, [], result, rotation=False)
    assert plan(rules, demands, preferred=fresh.times) == fresh


def test_invalid_preferred_times_are_replanned() -> None:
    quiet = QuietHours(hm("22:00"), hm("06:00"))
    rules = Rules(
        JUNE_1, date(2024, 6, 5), HCM, {"zalo": ChannelRules(slots("09:00", "23:00"), 1, quiet)}
    )
    demands = [
        Demand("a", "zalo", 1, "article"),
        Demand("b", "zalo", 1, "article"),
        Demand("c", "zalo", 1, "article", date(2024, 6, 3)),
        Demand("d", "zalo", 1, "article"),
    ]
    preferred = {
        ("a", "zalo", 1): datetime(2024, 6, 2, 23, 0, tzinfo=HCM),  # in the quiet hours
        ("b", "zalo", 1): datetime(2024, 7, 1, 9, 0, tzinfo=HCM),  # after the window
        ("c", "zalo", 1): datetime(2024, 6, 4, 9, 0, tzinfo=HCM),  # not its pinned day
        ("d", "zalo", 1): datetime(2024, 6, 5, 9, 0, tzinfo=HCM),  # valid
    }

    result = plan(rules, demands, preferred=preferred)

    assert result.unplaced == []
    assert result.times[("c", "zalo", 1)] == datetime(2024, 6, 3, 2, 0, tzinfo=UTC)
    assert result.times[("d", "zalo", 1)] == datetime(2024, 6, 5, 2, 0, tzinfo=UTC)
    for key in (("a", "zalo", 1), ("b", "zalo", 1)):
        assert result.times[key] != preferred[key]
    check_plan(rules, demands, [], result)


def test_a_pin_wins_its_day_from_a_movable_preferred_post() -> None:
    # The previous plan put a slogan on 12 June; a new article is then pinned to 12 June on a
    # one-post-a-day channel. The slogan only prefers that day, the article must have it.
    rules = Rules(
        date(2024, 6, 10), date(2024, 6, 14), HCM, {"zalo": ChannelRules(slots("09:00"), 1)}
    )
    slogan = Demand("s", "zalo", 1, "slogan")
    pinned = Demand("news", "zalo", 1, "article", date(2024, 6, 12))
    preferred = {slogan.key: datetime(2024, 6, 12, 2, 0, tzinfo=UTC)}

    result = plan(rules, [slogan, pinned], preferred=preferred)

    assert result.unplaced == []
    assert result.times[pinned.key] == datetime(2024, 6, 12, 2, 0, tzinfo=UTC)
    assert result.times[slogan.key].astimezone(HCM).date() != date(2024, 6, 12)
    check_plan(rules, [slogan, pinned], [], result)


def test_slots_skipped_by_a_dst_jump_are_not_used() -> None:
    # Berlin skips 02:00–03:00 on 31 March 2024: 02:30 does not exist that day, and a naive
    # 02:30 would land on 03:30, the other slot.
    rules = Rules(
        date(2024, 3, 30),
        date(2024, 4, 1),
        BERLIN,
        {"web": ChannelRules(slots("02:30", "03:30"), 2)},
    )
    demands = [Demand(f"a-{i}", "web", 1, "article") for i in range(6)]

    result = plan(rules, demands)

    assert sorted(result.times.values()) == [
        datetime(2024, 3, 30, 1, 30, tzinfo=UTC),
        datetime(2024, 3, 30, 2, 30, tzinfo=UTC),
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),  # 03:30 CEST
        datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
        datetime(2024, 4, 1, 1, 30, tzinfo=UTC),
    ]
    assert len(result.unplaced) == 1
    check_plan(rules, demands, [], result)
    assert plan(rules, demands, preferred=result.times) == result


def test_rules_from_config(tmp_path: Path) -> None:
    raw = {
        "campaign": {
            "name": "Tháng hành động vì trẻ em",
            "theme": "Trẻ em",
            "organisation": "Sở Tư pháp",
            "start": JUNE_1,
            "end": JUNE_30,
            "timezone": "Asia/Ho_Chi_Minh",
        },
        "channels": {
            "web": {
                "name": "Web",
                "adapter": "webhook",
                "url": "https://example.org/hook",
                "slots": ["14:30", "08:00"],
                "daily_cap": 1,
                "quiet_hours": {"start": "22:00", "end": "06:00"},
            }
        },
    }
    rules = rules_from_config(parse_config(raw, tmp_path / "config.toml"))

    assert (rules.start, rules.end, rules.tz) == (JUNE_1, JUNE_30, HCM)
    assert rules.channels == {
        "web": ChannelRules(slots("08:00", "14:30"), 1, QuietHours(hm("22:00"), hm("06:00")))
    }
    assert len(rules.days()) == 30


# ---------------------------------------------------------------------------------------------
# Properties over random rules and content.

ZONES = (
    "Asia/Ho_Chi_Minh",
    "UTC",
    "Asia/Kathmandu",  # +05:45
    "Europe/Berlin",  # DST 31 March / 27 October 2024, at 02:00–03:00
    "America/New_York",  # DST 10 March / 3 November 2024
    "Australia/Lord_Howe",  # half-hour DST, 7 April / 6 October 2024
)
# Starts a few weeks before the DST changes, so that windows often cross one.
NEAR_DST = (date(2024, 3, 1), date(2024, 3, 20), date(2024, 9, 20), date(2024, 10, 15))
zones = st.one_of(st.just("Asia/Ho_Chi_Minh"), st.sampled_from(ZONES)).map(ZoneInfo)
starts = st.one_of(st.dates(date(2024, 1, 1), date(2024, 12, 31)), st.sampled_from(NEAR_DST))
# Times that collide often (02:15/02:30 fall in DST gaps), or any minute of the day.
times = st.one_of(
    st.sampled_from(slots("02:15", "02:30", "08:00", "14:30", "20:00", "23:30", "00:00")),
    st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60)),
)
# Quiet hours possibly across midnight, possibly covering some or all slots.
quiet_hours = st.none() | st.builds(QuietHours, times, times).filter(lambda q: q.start != q.end)
channel_rules = st.builds(
    ChannelRules,
    slots=st.lists(times, min_size=1, max_size=4, unique=True).map(tuple),
    daily_cap=st.integers(1, 4),
    quiet_hours=quiet_hours,
)
CHANNELS = ("facebook", "portal", "web", "zalo")
window_lengths = st.integers(1, 40)
channel_sets = st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True)
# A message: (slogan?, channel bit mask, pinned day index or None, a "video" article?).
message_specs = st.lists(
    st.tuples(st.booleans(), st.integers(1, 15), st.none() | st.integers(0, 39), st.booleans()),
    max_size=14,
)
repeat_counts = st.lists(st.integers(1, 3), min_size=2 * len(CHANNELS), max_size=2 * len(CHANNELS))
# Where a post goes (fixed or preferred): (day index, slot index or any time).
placements = st.tuples(st.integers(0, 44), st.integers(0, 3) | times)


@st.composite
def rules_strategy(
    draw: st.DrawFn,
    zone: st.SearchStrategy[ZoneInfo] = zones,
    start: st.SearchStrategy[date] = starts,
    length: st.SearchStrategy[int] = window_lengths,
    channel: st.SearchStrategy[ChannelRules] = channel_rules,
) -> Rules:
    """A window of 1–40 days and 1–4 channels with random slots, caps and quiet hours."""
    first = draw(start)
    cids = draw(channel_sets)
    return Rules(
        first,
        first + timedelta(days=draw(length) - 1),
        draw(zone),
        {cid: draw(channel) for cid in sorted(cids)},
    )


@st.composite
def content_strategy(draw: st.DrawFn, rules: Rules, *, pins: bool = True) -> list[Demand]:
    """Slogans and articles on random channel subsets, each repeated as its channel and kind
    say (as config.repeats does: one count per channel and kind), some pinned in the window."""
    cids = sorted(rules.channels)
    days = rules.days()
    counts = draw(repeat_counts)
    demands = []
    numbers: Counter[str] = Counter()
    for is_slogan, mask, pin, video in draw(message_specs):
        group = "slogan" if is_slogan else "article"
        kind = "video" if video and not is_slogan else group
        name = f"{group}-{numbers[group]}"
        numbers[group] += 1
        channels = [c for j, c in enumerate(cids) if mask >> j & 1] or [cids[mask % len(cids)]]
        pinned = days[pin % len(days)] if pins and pin is not None else None
        for cid in channels:
            repeats = counts[2 * CHANNELS.index(cid) + is_slogan]
            for occ in range(1, repeats + 1):
                demands.append(Demand(name, cid, occ, kind, pinned))
    return demands


def at(rules: Rules, day: date, t: time) -> datetime:
    return datetime.combine(day, t, rules.tz).astimezone(UTC)


def place(rules: Rules, cid: str, days: Sequence[date], where: tuple[int, int | time]) -> datetime:
    """A time from ``placements``: on one of the channel's slots (quiet or not) or any time."""
    day, t = where
    ch_slots = rules.channels[cid].slots
    return at(
        rules, days[day % len(days)], t if isinstance(t, time) else ch_slots[t % len(ch_slots)]
    )


@st.composite
def fixed_strategy(draw: st.DrawFn, rules: Rules, demands: Sequence[Demand]) -> list[Fixed]:
    """Some demands fixed by hand, on a slot or at any time, in the window or just outside;
    plus posts of messages no longer in the content."""
    days = [rules.start - timedelta(days=1), *rules.days(), rules.end + timedelta(days=1)]
    cids = sorted(rules.channels)
    picks = draw(st.lists(st.tuples(st.integers(0, 999), placements), max_size=5))
    gone = draw(st.lists(st.tuples(st.integers(0, 3), st.booleans(), placements), max_size=2))
    out: dict[PostKey, Fixed] = {}
    for i, where in picks if demands else []:
        d = demands[i % len(demands)]
        out[d.key] = Fixed(*d.key, d.kind, place(rules, d.channel, days, where))
    for i, (c, slogan, where) in enumerate(gone):
        cid = cids[c % len(cids)]
        kind = "slogan" if slogan else "article"
        out[(f"gone-{i}", cid, 1)] = Fixed(
            f"gone-{i}", cid, 1, kind, place(rules, cid, days, where)
        )
    return list(out.values())


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rules, list[Demand], list[Fixed]]:
    rules = draw(rules_strategy())
    demands = draw(content_strategy(rules))
    return rules, demands, draw(fixed_strategy(rules, demands))


@PROPERTY
@given(scenarios(), st.randoms(use_true_random=False))
def test_property_invariants_order_independence_and_stability(
    scenario: tuple[Rules, list[Demand], list[Fixed]], rnd: random.Random
) -> None:
    rules, demands, fixed = scenario
    result = plan(rules, demands, fixed)

    check_plan(rules, demands, fixed, result)
    assert_everything_fits_when_there_is_room(rules, demands, fixed, result)
    # Deterministic, whatever the order of the demands and fixed posts.
    shuffled, fixed_shuffled = list(demands), list(fixed)
    rnd.shuffle(shuffled)
    rnd.shuffle(fixed_shuffled)
    assert plan(rules, shuffled, fixed_shuffled) == result
    # Stable: the previous plan as the preferred times gives the very same plan.
    assert plan(rules, shuffled, fixed, preferred=dict(result.times)) == result


@PROPERTY
@given(st.data())
def test_property_articles_are_spread_over_the_window(data: st.DataObject) -> None:
    # No DST zones here: a skipped slot would make one day unusable and move an article.
    rules = data.draw(rules_strategy(zone=st.just(HCM)))
    demands = [d for d in data.draw(content_strategy(rules, pins=False)) if d.kind != "video"]
    result = plan(rules, demands)
    check_plan(rules, demands, [], result)
    n = len(rules.days())
    for cid, ch in rules.channels.items():
        k = sum(1 for d in demands if d.channel == cid and d.kind == "article")
        if not usable(ch) or not 0 < k <= n:
            continue
        days = sorted(
            (when.astimezone(rules.tz).date() - rules.start).days
            for key, when in result.times.items()
            if key[1] == cid and key[0].startswith("article")
        )
        assert len(days) == k, "room for every article on its own day, and all placed"
        assert len(set(days)) == k, f"two articles on one day on {cid}: {days}"
        # Evenly spread: no stretch without an article longer than ceil(n / k) days.
        gaps = [days[0], *(b - a for a, b in itertools.pairwise(days)), n - 1 - days[-1]]
        assert max(gaps) <= -(-n // k), f"{cid}: articles on days {days} of {n}"


# The day before a DST jump that skips 02:00–03:00 (Lord Howe: 02:00–02:30), in each zone.
BEFORE_GAP = {
    "Europe/Berlin": date(2024, 3, 30),
    "America/New_York": date(2024, 3, 9),
    "Australia/Lord_Howe": date(2024, 10, 5),
}
gap_times = st.sampled_from(slots("01:45", "02:00", "02:15", "02:30", "03:00", "03:15")) | times


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(BEFORE_GAP)), st.data())
def test_property_dst_jumps(zone: str, data: st.DataObject) -> None:
    rules = data.draw(
        rules_strategy(
            zone=st.just(ZoneInfo(zone)),
            start=st.just(BEFORE_GAP[zone]),
            length=st.integers(2, 4),
            channel=st.builds(
                ChannelRules,
                slots=st.lists(gap_times, min_size=1, max_size=4, unique=True).map(tuple),
                daily_cap=st.integers(1, 4),
            ),
        )
    )
    demands = data.draw(content_strategy(rules))
    fixed = data.draw(fixed_strategy(rules, demands))
    result = plan(rules, demands, fixed)
    check_plan(rules, demands, fixed, result)
    assert_everything_fits_when_there_is_room(rules, demands, fixed, result)
    assert plan(rules, demands, fixed, preferred=dict(result.times)) == result


@PROPERTY
@given(scenarios(), st.data())
def test_property_preferred_times_kept_when_valid_and_replanned_when_not(
    scenario: tuple[Rules, list[Demand], list[Fixed]], data: st.DataObject
) -> None:
    rules, demands, fixed = scenario
    previous = plan(rules, demands, fixed)
    # Perturb the previous plan: drop or move some times (anywhere: off the window, off the
    # slots, into the quiet hours, onto another post's time or day, off its pinned day), also
    # for posts it left unplaced.
    days = [rules.start - timedelta(days=2), *rules.days(), rules.end + timedelta(days=2)]
    taken: dict[str, list[datetime]] = defaultdict(list)
    for key, when in sorted(previous.times.items()):
        taken[key[1]].append(when)
    changes = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, 999), st.sampled_from(["drop", "move", "steal", "crowd"]), placements
            ),
            max_size=12,
        )
    )
    preferred = dict(previous.times)
    for i, action, where in changes if demands else []:
        d = demands[i % len(demands)]
        if action == "drop":
            preferred.pop(d.key, None)
        elif action == "move":
            preferred[d.key] = place(rules, d.channel, days, where)
        elif taken[d.channel]:
            other = taken[d.channel][where[0] % len(taken[d.channel])]
            if action == "steal":  # the very time of another post of the channel
                preferred[d.key] = other
            else:  # another slot on that post's day (where the cap may be reached)
                preferred[d.key] = place(rules, d.channel, [local_of(rules, other)[0]], where)

    result = plan(rules, demands, fixed, preferred)

    check_plan(rules, demands, fixed, result, rotation=False)
    assert_preferred_kept_unless_invalid(rules, demands, fixed, preferred, result)
    # Re-planning the result with itself as the preferred times changes nothing.
    assert plan(rules, demands, fixed, preferred=dict(result.times)) == result


def assert_preferred_kept_unless_invalid(
    rules: Rules,
    demands: Iterable[Demand],
    fixed: Iterable[Fixed],
    preferred: Mapping[PostKey, datetime],
    result: Plan,
) -> None:
    """A preferred time is left only if it breaks a rule or its slot/day is taken in the end."""
    fixed_list = list(fixed)
    fixed_keys = {f.key for f in fixed_list}
    posts: dict[tuple[str, date], list[tuple[time, PostKey]]] = defaultdict(list)
    for f in fixed_list:
        day, t = local_of(rules, f.due_at)
        posts[(f.channel, day)].append((t, f.key))
    for key, when in result.times.items():
        day, t = local_of(rules, when)
        posts[(key[1], day)].append((t, key))
    for d in demands:
        want = preferred.get(d.key)
        if want is None or d.key in fixed_keys or result.times.get(d.key) == want:
            continue
        ch = rules.channels[d.channel]
        day, t = local_of(rules, want)
        others = [(ot, ok) for ot, ok in posts[(d.channel, day)] if ok != d.key]
        invalid = (
            not rules.start <= day <= rules.end
            or t not in usable(ch)
            or (is_pin(d) and d.pinned != day)
            or any(ot == t for ot, _ in others)
            or len(others) >= ch.daily_cap
        )
        assert invalid, f"{d.key} left its valid, free preferred time {want}"


def assert_everything_fits_when_there_is_room(
    rules: Rules, demands: Sequence[Demand], fixed: Sequence[Fixed], result: Plan
) -> None:
    """When a channel's posts fit its free capacity, and each day's pins fit that day, the
    planner leaves nothing out (the calendar is full only when it is really full)."""
    fixed_keys = {f.key for f in fixed}
    for cid, ch in rules.channels.items():
        fixed_here = [local_of(rules, f.due_at) for f in fixed if f.channel == cid]

        def capacity(
            day: date, ch: ChannelRules = ch, fixed_here: list[tuple[date, time]] = fixed_here
        ) -> int:
            taken = {t for d, t in fixed_here if d == day}
            free = [s for s in usable(ch) if s not in taken and exists(day, s, rules.tz)]
            return max(0, min(ch.daily_cap - sum(d == day for d, _ in fixed_here), len(free)))

        mine = [d for d in demands if d.channel == cid and d.key not in fixed_keys]
        pins = Counter(d.pinned for d in mine if d.pinned is not None and d.occurrence == 1)
        total = sum(capacity(day) for day in rules.days())
        pins_fit = all(
            rules.start <= day <= rules.end and n <= capacity(day) for day, n in pins.items()
        )
        if len(mine) <= total and pins_fit:
            left = [u.demand for u in result.unplaced if u.demand.channel == cid]
            assert not left, f"{cid} has room for all, yet left out {left}"
