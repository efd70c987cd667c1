"""The dry-run calendar: reads the queue, writes a table or JSON. Never opens a network socket."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from publisher.config import Config
from publisher.db import Database
from publisher.models import MessageRow, PostRow
from publisher.states import KIND_LABELS_VI, LABELS_VI, State
from publisher.text import first_words

_TAG = re.compile(r"<[^>]+>")
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


@dataclass(frozen=True)
class Item:
    id: int
    due_at: datetime | None
    channel: str
    message: str
    kind: str
    title: str
    text: str
    fields: dict[str, Any]
    state: str
    note: str | None


def items(
    db: Database,
    config: Config,
    *,
    channel: str | None = None,
    start: date | None = None,
    end: date | None = None,
    include_cancelled: bool = False,
    states: Sequence[str] | None = None,
    kind: str | None = None,
) -> list[Item]:
    """Posts in calendar order (unplanned ones last), filtered by channel and local dates."""
    q = select(PostRow).options(joinedload(PostRow.message))
    if channel:
        q = q.where(PostRow.channel == channel)
    if states:
        q = q.where(PostRow.state.in_(list(states)))
    elif not include_cancelled:
        q = q.where(PostRow.state != State.CANCELLED)
    if kind:
        q = q.join(PostRow.message).where(MessageRow.kind == kind)
    tz = config.tz
    if start:
        q = q.where(PostRow.due_at >= datetime.combine(start, datetime.min.time(), tz))
    if end:
        q = q.where(PostRow.due_at < datetime.combine(end + timedelta(1), datetime.min.time(), tz))
    order = {cid: i for i, cid in enumerate(config.channels)}
    with db.read() as s:
        rows = list(s.scalars(q))
        out = [
            Item(
                p.id,
                p.due_at,
                p.channel,
                p.message.key,
                p.message.kind,
                p.message.title,
                p.text,
                dict(p.fields),
                p.state,
                p.plan_note,
            )
            for p in rows
        ]
    far = datetime.max.replace(tzinfo=tz)
    out.sort(key=lambda i: (i.due_at or far, order.get(i.channel, len(order)), i.id))
    return out


def to_json(entries: Sequence[Item], config: Config) -> str:
    tz = config.tz
    data = [
        {
            "id": i.id,
            "due_at": i.due_at.astimezone(tz).isoformat() if i.due_at else None,
            "channel": i.channel,
            "message": i.message,
            "kind": i.kind,
            "title": i.title,
            "text": i.text,
            "state": i.state,
            "fields": i.fields,
            "note": i.note,
        }
        for i in entries
    ]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def day_heading(day: date, config: Config) -> str:
    heading = f"{WEEKDAYS_VI[day.weekday()]}, {day:%d/%m/%Y}"
    key = config.key_date_on(day)
    return heading + (f" · {key.name}" if key else "")


def render_table(entries: Sequence[Item], config: Config, console: Any) -> None:
    """Print the calendar grouped by day, in Vietnamese, for the editorial board."""
    from rich.table import Table

    tz = config.tz
    names = {cid: ch.name for cid, ch in config.channels.items()}
    camp = config.campaign
    console.print(f"[bold]Lịch đăng bài · {camp.name}[/bold]")
    console.print(f"{camp.organisation} · {camp.start:%d/%m/%Y}–{camp.end:%d/%m/%Y} · giờ {tz.key}")
    days: dict[date | None, list[Item]] = {}
    for i in entries:
        days.setdefault(i.due_at.astimezone(tz).date() if i.due_at else None, []).append(i)
    for day, group in days.items():
        title = day_heading(day, config) if day else "Chưa xếp được lịch"
        table = Table(title=title, title_justify="left", title_style="bold cyan", expand=True)
        table.add_column("Mã", justify="right", no_wrap=True)
        table.add_column("Giờ", no_wrap=True)
        table.add_column("Kênh", no_wrap=True, max_width=24, overflow="ellipsis")
        table.add_column("Loại", no_wrap=True)
        table.add_column("Tiêu đề", no_wrap=True, overflow="ellipsis", ratio=2)
        table.add_column("Nội dung" if day else "Lý do", no_wrap=bool(day), ratio=3)
        table.add_column("Trạng thái", no_wrap=True)
        for i in group:
            table.add_row(
                str(i.id),
                f"{i.due_at.astimezone(tz):%H:%M}" if i.due_at else "–",
                names.get(i.channel, i.channel),
                KIND_LABELS_VI.get(i.kind, i.kind),
                i.title,
                first_words(_TAG.sub(" ", i.text), 16) if day else (i.note or ""),
                LABELS_VI.get(i.state, i.state),
            )
        console.print(table)
    counts: dict[str, int] = {}
    for i in entries:
        counts[i.kind] = counts.get(i.kind, 0) + 1
    parts = ", ".join(f"{n} {KIND_LABELS_VI.get(k, k).lower()}" for k, n in sorted(counts.items()))
    console.print(f"Tổng cộng {len(entries)} bài đăng" + (f" ({parts})" if parts else "") + ".")
