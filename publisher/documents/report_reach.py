"""Reach for the report: the published posts' latest figures summed per channel and per
content item, the most-read items, and views day by day across the month (from the dated
snapshots of ``publisher.store.metrics``). A figure no platform reported stays ``None`` —
"không có số liệu" — never an invented zero. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from publisher.documents.report_model import Published
from publisher.metrics import Reading
from publisher.store.metrics import Snapshot


def _add(a: int | None, b: int | None) -> int | None:
    return a if b is None else (b if a is None else a + b)


def interactions(r: Reading) -> int | None:
    """Reactions, comments and shares together; None if the platform reported none of them."""
    total: int | None = None
    for n in (r.reactions, r.comments, r.shares):
        total = _add(total, n)
    return total


@dataclass(frozen=True)
class Reach:
    """What a set of published posts reached, as far as the platforms report it."""

    posts: int = 0  # published posts
    read: int = 0  # of them, with at least one figure
    views: int | None = None  # None: no post of the set has a views figure
    interactions: int | None = None

    @classmethod
    def of(cls, posts: Iterable[Published]) -> Reach:
        n = read = 0
        views: int | None = None
        inter: int | None = None
        for p in posts:
            n += 1
            if p.reading is None or p.reading.empty:
                continue
            read += 1
            views = _add(views, p.reading.views)
            inter = _add(inter, interactions(p.reading))
        return cls(n, read, views, inter)


def by_key(posts: Iterable[Published], key: str, *, kind: str | None = None) -> dict[str, Reach]:
    """Reach per channel (``key="channel"``) or per content item (``key="message"``), of
    ``kind`` only when given."""
    groups: dict[str, list[Published]] = {}
    for p in posts:
        if kind is None or p.kind == kind:
            groups.setdefault(getattr(p, key), []).append(p)
    return {k: Reach.of(v) for k, v in groups.items()}


def top(posts: Sequence[Published], *, kind: str, n: int = 5) -> list[tuple[str, int]]:
    """The ``n`` content items of ``kind`` most viewed (all channels together), with their
    views, most first; only items with views."""
    views: dict[str, int] = {}
    titles: dict[str, str] = {}
    for p in posts:
        if p.kind == kind and p.reading is not None and p.reading.views is not None:
            views[p.message] = views.get(p.message, 0) + p.reading.views
            titles[p.message] = p.title
    ranked = sorted(views.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(titles[k], v) for k, v in ranked[:n] if v > 0]


def daily(
    snapshots: Sequence[Snapshot],
    channel_of: Mapping[int, str],
    *,
    start: date,
    end: date,
    tz: tzinfo,
) -> dict[str, tuple[tuple[date, int], ...]]:
    """Per channel, its posts' views summed as they stood at the end of each day from
    ``start`` to the last day with a snapshot (at most ``end``): a cumulative line. Snapshots
    come ordered by post, then time (``store.metrics.snapshots``)."""
    by_post: dict[int, list[tuple[datetime, int]]] = {}
    for snap in snapshots:
        if snap.reading.views is not None and snap.post_id in channel_of:
            by_post.setdefault(snap.post_id, []).append((snap.taken_at, snap.reading.views))
    if not by_post:
        return {}
    last = max(at for points in by_post.values() for at, _ in points).astimezone(tz).date()
    end = min(end, last)
    days = [start + timedelta(d) for d in range((end - start).days + 1)]
    out: dict[str, list[int]] = {}
    for post_id, points in by_post.items():
        series = out.setdefault(channel_of[post_id], [0] * len(days))
        i, value = 0, 0
        for n, day in enumerate(days):
            close = datetime.combine(day + timedelta(1), time(0), tz)
            while i < len(points) and points[i][0] < close:
                value = points[i][1]
                i += 1
            series[n] += value
    return {cid: tuple(zip(days, values, strict=True)) for cid, values in out.items()}
