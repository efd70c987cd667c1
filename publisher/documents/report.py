"""The campaign report: reads the delivery records, the platforms' figures and the office's
entries into a ``Report`` (``build_report``: one read, never the channel tokens).

The data and the blocks are in ``report_model``, the figures' sums in ``report_reach``, the
document's body (sections I–IV and the appendix) in ``report_results``; they are re-exported
here. The writers: ``report_docx`` (Word) and ``report_text`` (JSON, Markdown, HTML). Every name
on the document comes from ``[report]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from publisher.config import KINDS, Config
from publisher.documents.report_model import (
    COLUMNS,
    FORMATS,
    NBSP,
    TODO,
    Block,
    Cell,
    Figure,
    Heading,
    Line,
    Link,
    Para,
    Problem,
    Progress,
    Published,
    Report,
    Table,
    Totals,
    column,
    long_date,
    lower_first,
    number,
    recipients,
    safe_url,
    short,
)
from publisher.documents.report_reach import daily
from publisher.documents.report_results import appendix, body
from publisher.metrics import Reading
from publisher.states import MEANING_VI, State
from publisher.store.db import Database
from publisher.store.history import last_causes
from publisher.store.metrics import Snapshot, latest, snapshots
from publisher.store.models import MessageRow, PostRow
from publisher.store.report_entries import entries

__all__ = [
    "COLUMNS",
    "FORMATS",
    "NBSP",
    "TODO",
    "Block",
    "Cell",
    "Figure",
    "Heading",
    "Line",
    "Link",
    "Para",
    "Problem",
    "Progress",
    "Published",
    "Report",
    "Table",
    "Totals",
    "appendix",
    "body",
    "build_report",
    "column",
    "long_date",
    "lower_first",
    "number",
    "recipients",
    "safe_url",
    "short",
]

_WHY_VI = {
    **MEANING_VI,
    "pending": "Đã quá giờ đăng nhưng chưa đăng được; cần kiểm tra tiến trình đăng bài",
    "unapproved": "Đến giờ đăng nhưng bài chưa được phê duyệt",
    "unplanned": "Không xếp được lịch đăng",
}


def build_report(
    db: Database,
    config: Config,
    now: datetime,
    *,
    day: date | None = None,
    progress: Progress | None = None,
) -> Report:
    """Read the records into a Report dated ``day`` (default: ``now``'s local date; not after
    it): the posts as they are at ``now`` (aware), the figures taken up to the end of ``day``."""
    if now.tzinfo is None:
        raise ValueError("build_report needs an aware datetime")
    tz = config.tz
    today = now.astimezone(tz).date()
    given, day = day, day or today
    if day > today:
        raise ValueError(f"the report's date {day} is after today {today}")
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tz)
    until = min(now, end_of_day)
    read = _read(db, config, until, progress)
    tally = _tally(read, config, until, progress)
    order = {cid: i for i, cid in enumerate(config.channels)}
    tally.published.sort(key=lambda x: (x.at, order.get(x.channel, len(order)), x.id))
    far = datetime.max.replace(tzinfo=tz)
    tally.problems.sort(key=lambda x: (x.due_at or far, x.id))
    kinds = {k: i for i, k in enumerate(KINDS)}
    messages = read.messages
    items = sorted(
        (messages[mid] for mid in tally.by_message),
        key=lambda m: (kinds.get(m.kind, len(kinds)), m.key),
    )
    channel_of = {p.id: p.channel for p in tally.published}
    through = None if given else _through(read.snapshots, config, today)
    return Report(
        final=until >= datetime.combine(config.campaign.end + timedelta(days=1), time(0), tz),
        as_of=until.astimezone(tz),
        campaign=config.campaign,
        layout=config.report,
        counts=tally.counts,
        channels=tuple(
            Line(cid, tally.names.get(cid, cid), "channel", {k: n for k, n in c.items() if n})
            for cid, c in tally.by_channel.items()
        ),
        messages=tuple(
            Line(m.key, m.title, m.kind, tally.by_message[m.id], m.status == "removed")
            for m in items
        ),
        published=tuple(tally.published),
        problems=tuple(tally.problems),
        day=day,
        closed=end_of_day <= now or (through is not None and through < today),
        through=through,
        entries=read.entries,
        daily=daily(read.snapshots, channel_of, start=config.campaign.start, end=day, tz=tz),
    )


# A row of ``_read``'s selects: its columns are read by name, which SQLAlchemy types as Any.
_Record = Any


@dataclass(frozen=True)
class _Read:
    messages: dict[int, _Record]  # by id
    posts: Sequence[_Record]  # in id order
    causes: dict[int, str]  # the troubled posts' last causes
    latest: dict[int, Snapshot]  # the published posts' newest figures up to the cutoff
    snapshots: list[Snapshot]  # every snapshot of them up to the cutoff, by post then time
    entries: dict[str, str]  # the office's entries, by key


def _read(db: Database, config: Config, until: datetime, progress: Progress | None) -> _Read:
    """Everything the report shows, in one read; reports the first of ``len(posts) + 1``
    steps."""
    with db.read() as s:
        messages = {
            r.id: r
            for r in s.execute(
                select(
                    MessageRow.id,
                    MessageRow.key,
                    MessageRow.kind,
                    MessageRow.title,
                    MessageRow.status,
                )
            )
        }
        posts = s.execute(
            select(
                PostRow.id,
                PostRow.message_id,
                PostRow.channel,
                PostRow.state,
                PostRow.due_at,
                PostRow.published_at,
                PostRow.handed_off_at,
                PostRow.remote_id,
                PostRow.remote_url,
                PostRow.last_error,
                PostRow.plan_note,
            ).order_by(PostRow.id)
        ).all()
        total = len(posts) + 1
        if progress:
            progress(1, total)
        troubled = [p.id for p in posts if _trouble(p.state, p.due_at, until, config) is not None]
        published = [p.id for p in posts if p.state == State.PUBLISHED]
        return _Read(
            messages,
            posts,
            last_causes(s, troubled),
            latest(s, published, until=until) if published else {},
            snapshots(s, published, until=until) if published else [],
            {k: e.value for k, e in entries(s).items()},
        )


@dataclass
class _Tally:
    """The posts counted by state, channel and message, and the published and troubled ones."""

    names: dict[str, str]  # channel id → name
    counts: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    by_message: dict[int, dict[str, int]] = field(default_factory=dict)
    published: list[Published] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _tally(read: _Read, config: Config, now: datetime, progress: Progress | None) -> _Tally:
    """Count every post, in order, reporting each as one more step after the read."""
    tz = config.tz
    t = _Tally(
        names={cid: ch.name for cid, ch in config.channels.items()},
        counts={state.value: 0 for state in State},
        by_channel={cid: {} for cid in config.channels},
    )
    posts, causes = read.posts, read.causes
    total = len(posts) + 1
    for done, p in enumerate(posts, 2):
        m = read.messages[p.message_id]
        t.counts[p.state] = t.counts.get(p.state, 0) + 1
        for table in (t.by_channel.setdefault(p.channel, {}), t.by_message.setdefault(m.id, {})):
            table[p.state] = table.get(p.state, 0) + 1
        name = t.names.get(p.channel, p.channel)
        if p.state == State.PUBLISHED:
            at = (p.published_at or p.due_at or now).astimezone(tz)
            snap = read.latest.get(p.id)
            t.published.append(
                Published(
                    p.id,
                    at,
                    p.channel,
                    name,
                    m.key,
                    m.kind,
                    m.title,
                    p.remote_url,
                    p.remote_id,
                    due_at=p.due_at.astimezone(tz) if p.due_at else None,
                    reading=_reading(snap),
                    # A post handed off to a portal's desk left on time if its mail did: the
                    # desk's own delay is reported apart (report_results._assessment).
                    on_time=p.due_at is None
                    or (p.handed_off_at or at) <= p.due_at + config.daemon.grace,
                    handed_off_at=p.handed_off_at.astimezone(tz) if p.handed_off_at else None,
                )
            )
        why = _trouble(p.state, p.due_at, now, config)
        if why is not None:
            detail = p.plan_note if why == "unplanned" else causes.get(p.id, p.last_error or "")
            due = p.due_at.astimezone(tz) if p.due_at else None
            t.problems.append(
                Problem(
                    p.id, due, p.channel, name, m.key, m.title, p.state, _WHY_VI[why], detail or ""
                )
            )
        if progress:
            progress(done, total)
    return t


def _trouble(state: str, due: datetime | None, now: datetime, config: Config) -> str | None:
    """Why a post belongs in "Tồn tại, vướng mắc" (a key of _WHY_VI), or None if it does not."""
    col = column(state)
    if col in ("failed", "missed", "needs_review"):
        return col
    if col == "unapproved":
        if due is None:
            return "unplanned"
        return (state if state in _WHY_VI else col) if due <= now else None
    if col == "pending" and due is not None and due < now - config.daemon.grace:
        return col
    return None


def _through(snaps: Sequence[Snapshot], config: Config, today: date) -> date | None:
    """For a report dated today of a campaign already over: the last day its figures cover —
    the campaign's last day, or the last day they were read after it. None while it runs."""
    end = config.campaign.end
    if today <= end:
        return None
    read = max((s.taken_at for s in snaps), default=None)
    last = read.astimezone(config.tz).date() if read is not None else end
    return max(end, min(last, today))


def _reading(snap: Snapshot | None) -> Reading | None:
    """A snapshot's figures; None when never read or the platform keeps none."""
    return snap.reading if snap is not None and snap.available else None
