"""The dry-run calendar: reads the queue, writes a table or JSON. Never opens a network socket.

SQLAlchemy is imported only by ``items``: ``publisher preview`` reads an SQLite queue with the
standard library (``items_sqlite``), as importing SQLAlchemy alone costs more than a whole
preview may take (bench/RESULTS.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.config import Config
from publisher.documents.pictures import MEDIA_FIELD, ROLE_LABELS_VI, Shown, pictures_of, size_text
from publisher.states import KIND_LABELS_VI, LABELS_VI, State
from publisher.text import first_words

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from publisher.store.db import Database

_TAG = re.compile(r"<[^>]+>")
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


@dataclass(frozen=True)
class Item:
    """One post as the calendar shows it."""

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
    unplanned: bool = False,
    bare: bool = False,
    fields: bool = True,
    only: Sequence[int] | None = None,
) -> list[Item]:
    """Posts in calendar order (unplanned ones last), filtered by channel and local dates;
    ``unplanned``: only those without a time. ``bare``: without their text and fields (read
    as ""; of the fields only ``media``), for a view that shows neither (the web calendar):
    most of a post's bytes; ``fields=False``: without the fields but ``media`` (a list that
    shows the text). ``media`` names the post's pictures in a few hundred bytes: a card or a
    list shows them. ``only``: only the posts of these ids."""
    from sqlalchemy import literal, select

    from publisher.store.models import MessageRow, PostRow

    # Columns, not ORM objects: the same values without an identity map or instance state per
    # row (most of the calendar page's time under load; bench/RESULTS.md, item 7). Of the
    # message only what an item shows (not the body: an article's whole text).
    whole = fields and not bare
    q = select(
        PostRow.id,
        PostRow.due_at,
        PostRow.channel,
        MessageRow.key,
        MessageRow.kind,
        MessageRow.title,
        literal("") if bare else PostRow.text,
        PostRow.fields if whole else literal(None),
        PostRow.state,
        PostRow.plan_note,
        PostRow.render_hash,
    ).join(MessageRow, PostRow.message_id == MessageRow.id)
    if only is not None:
        q = q.where(PostRow.id.in_(list(only)))
    q = _filtered(q, config, channel, start, end, include_cancelled, states, kind, unplanned, True)
    with db.read() as s:
        rows = s.execute(q).all()
        if not whole:
            media = _media_of(s, {(r[0], r[-1]) for r in rows})
    out = []
    for pid, due, cid, key, mkind, title, text, stored, state, note, rendered in rows:
        if whole:
            shown = dict(stored)
        else:
            pictures = media.get(rendered)
            shown = {MEDIA_FIELD: pictures} if pictures else {}
        out.append(Item(pid, due, cid, key, mkind, title, text or "", shown, state, note))
    return _calendar_order(out, config)


# The ``media`` field of a render, by the render's hash (``fields_hash`` of all its fields, so
# the hash names the field's value): reading it means parsing the post's whole fields (JSON
# of ~10 KB each), which was most of the calendar's query; a render's pictures are read once.
_MEDIA: dict[str, str | None] = {}
_MEDIA_MAX = 20_000  # renders (a few hundred bytes each); emptied when full


def _media_of(s: Session, posts: set[tuple[int, str]]) -> dict[str, str | None]:
    """The ``media`` field of these posts (id, render hash), by render hash: from ``_MEDIA``,
    else read (and kept)."""
    from sqlalchemy import select

    from publisher.store.models import PostRow

    missing = sorted({pid for pid, rendered in posts if rendered not in _MEDIA})
    for at in range(0, len(missing), 500):
        media = PostRow.fields[MEDIA_FIELD].as_string()  # JSON_EXTRACT / ->>: the field alone
        ids = missing[at : at + 500]
        found = s.execute(select(PostRow.render_hash, media).where(PostRow.id.in_(ids))).all()
        if len(_MEDIA) + len(found) > _MEDIA_MAX:
            _MEDIA.clear()
        _MEDIA.update((rendered, pictures) for rendered, pictures in found)
    return {rendered: _MEDIA.get(rendered) for _pid, rendered in posts}


def page(
    db: Database,
    config: Config,
    offset: int,
    limit: int,
    *,
    channel: str | None = None,
    start: date | None = None,
    end: date | None = None,
    states: Sequence[str] | None = None,
    kind: str | None = None,
    fields: bool = True,
) -> tuple[int, list[Item]]:
    """How many posts ``items`` would give with these filters, and the ``limit`` of them from
    ``offset`` in the same order: the order is found from three narrow columns of every
    matching post, and only the page's posts are read whole."""
    from sqlalchemy import select

    from publisher.store.models import PostRow

    q = select(PostRow.id, PostRow.due_at, PostRow.channel)
    q = _filtered(q, config, channel, start, end, False, states, kind, False)
    with db.read() as s:
        keys = list(s.execute(q).all())
    order = {cid: i for i, cid in enumerate(config.channels)}
    far = datetime.max.replace(tzinfo=config.tz)
    keys.sort(key=lambda k: (k[1] or far, order.get(k[2], len(order)), k[0]))
    chosen = [k[0] for k in keys[offset : offset + limit]]
    if not chosen:
        return len(keys), []
    # by id alone: a post the daemon moved on meanwhile stays on the page it was counted in
    found = items(db, config, include_cancelled=True, fields=fields, only=chosen)
    return len(keys), found


def _filtered(
    q: Any,
    config: Config,
    channel: str | None,
    start: date | None,
    end: date | None,
    include_cancelled: bool,
    states: Sequence[str] | None,
    kind: str | None,
    unplanned: bool,
    joined: bool = False,
) -> Any:
    """``q`` (a select of posts; ``joined``: already joined to their messages) narrowed as
    ``items`` is asked."""
    from publisher.store.models import MessageRow, PostRow

    if unplanned:
        q = q.where(PostRow.due_at.is_(None))
    if channel:
        q = q.where(PostRow.channel == channel)
    if states:
        q = q.where(PostRow.state.in_(list(states)))
    elif not include_cancelled:
        q = q.where(PostRow.state != State.CANCELLED)
    if kind:
        q = (q if joined else q.join(PostRow.message)).where(MessageRow.kind == kind)
    low, high = _bounds(config, start, end)
    if low:
        q = q.where(PostRow.due_at >= low)
    if high:
        q = q.where(PostRow.due_at < high)
    return q


def items_sqlite(
    config: Config,
    *,
    channel: str | None = None,
    start: date | None = None,
    end: date | None = None,
    include_cancelled: bool = False,
) -> list[Item] | None:
    """``items`` read from an SQLite queue with the standard library's sqlite3, the same rows in
    the same order; None unless the queue is an existing SQLite file at the current schema
    (then the caller opens it with ``open_database``, which creates or upgrades it)."""
    file = sqlite_path(config)
    if file is None or not file.is_file():
        return None
    sql, args = _sqlite_query(config, channel, start, end, include_cancelled)
    rows = _sqlite_rows(file, sql, args)
    if rows is None:
        return None
    out = [
        Item(
            pid,
            datetime.fromisoformat(due).replace(tzinfo=UTC) if due else None,
            cid,
            key,
            kind,
            title,
            text,
            json.loads(fields),
            state,
            note,
        )
        for pid, due, cid, key, kind, title, text, fields, state, note in rows
    ]
    return _calendar_order(out, config)


def _sqlite_query(
    config: Config,
    channel: str | None,
    start: date | None,
    end: date | None,
    include_cancelled: bool,
) -> tuple[str, list[Any]]:
    """The SQL of ``items``'s query for sqlite3, and its arguments."""
    sql = (
        "SELECT p.id, p.due_at, p.channel, m.key, m.kind, m.title, p.text, p.fields, p.state,"
        " p.plan_note FROM post AS p JOIN message AS m ON m.id = p.message_id WHERE 1 = 1"
    )
    args: list[Any] = []
    if channel:
        sql += " AND p.channel = ?"
        args.append(channel)
    if not include_cancelled:
        sql += " AND p.state != ?"
        args.append(str(State.CANCELLED))
    low, high = _bounds(config, start, end)
    for op, bound in ((">=", low), ("<", high)):
        if bound:  # stored as SQLAlchemy stores them on SQLite: naive UTC text
            sql += f" AND p.due_at {op} ?"
            args.append(bound.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    return sql, args


def _sqlite_rows(file: Path, sql: str, args: list[Any]) -> list[Any] | None:
    """The rows of ``sql`` in the SQLite file ``file``, opened read-write but never created;
    None if it cannot be read or is not at the current schema."""
    import sqlite3

    from publisher.store.migrations import SCHEMA_HEAD

    uri = f"{file.absolute().as_uri()}?mode=rw"  # never create it: a reader creates nothing
    try:
        conn = sqlite3.connect(uri, timeout=60, uri=True)  # publisher.store.db's busy timeout
    except sqlite3.Error:
        return None
    try:
        if conn.execute("SELECT version_num FROM alembic_version").fetchone() != (SCHEMA_HEAD,):
            return None
        rows: list[Any] = conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return rows


def sqlite_path(config: Config) -> Path | None:
    """The queue's SQLite file, read from the URL without SQLAlchemy; None for a URL it does
    not simply name (another backend, memory, options)."""
    url = config.database_url
    path = url.removeprefix("sqlite:///")
    if path == url or not path or "?" in path or path.startswith(":memory:"):
        return None
    return Path(path)


def _bounds(
    config: Config, start: date | None, end: date | None
) -> tuple[datetime | None, datetime | None]:
    """The instants of ``--from`` (inclusive) and the day after ``--to``, local midnight."""
    tz = config.tz
    low = datetime.combine(start, datetime.min.time(), tz) if start else None
    high = datetime.combine(end + timedelta(1), datetime.min.time(), tz) if end else None
    return low, high


def _calendar_order(out: list[Item], config: Config) -> list[Item]:
    order = {cid: i for i, cid in enumerate(config.channels)}
    far = datetime.max.replace(tzinfo=config.tz)
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
            "pictures": [p.as_json() for p in pictures_of(i.fields)],
            "note": i.note,
        }
        for i in entries
    ]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def day_heading(day: date, config: Config) -> str:
    heading = f"{WEEKDAYS_VI[day.weekday()]}, {day:%d/%m/%Y}"
    key = config.key_date_on(day)
    return heading + (f" · {key.name}" if key else "")


HEADERS = ("Mã", "Giờ", "Kênh", "Loại", "Tiêu đề", "Nội dung", "Ảnh", "Trạng thái")
UNPLANNED_HEADING = "Chưa xếp được lịch"


class _Page:
    """What the table shows, laid out by ``render_table`` (rich) or ``plain_table``. (A plain
    class: a dataclass costs a preview ~1 ms to create.)"""

    def __init__(
        self,
        heading: str,  # printed with rich markup: bold
        subheading: str,
        days: list[tuple[str, bool, list[tuple[str, ...]]]],  # title, planned, rows of 8 cells
        total: str,
        pictures: list[str],  # "Ảnh dùng …" and one line per picture (printed whole)
    ) -> None:
        self.heading, self.subheading, self.days = heading, subheading, days
        self.total, self.pictures = total, pictures


def _page(entries: Sequence[Item], config: Config) -> _Page:
    tz = config.tz
    names = {cid: ch.name for cid, ch in config.channels.items()}
    camp = config.campaign
    days: dict[date | None, list[Item]] = {}
    for i in entries:
        days.setdefault(i.due_at.astimezone(tz).date() if i.due_at else None, []).append(i)
    tables = []
    for day, group in days.items():
        rows: list[tuple[str, ...]] = [
            (
                str(i.id),
                f"{i.due_at.astimezone(tz):%H:%M}" if i.due_at else "–",
                names.get(i.channel, i.channel),
                KIND_LABELS_VI.get(i.kind, i.kind),
                i.title,
                first_words(_TAG.sub(" ", i.text), 16) if day else (i.note or ""),
                pictures_cell(pictures_of(i.fields)),
                LABELS_VI.get(i.state, i.state),
            )
            for i in group
        ]
        tables.append((day_heading(day, config) if day else UNPLANNED_HEADING, bool(day), rows))
    counts: dict[str, int] = {}
    for i in entries:
        counts[i.kind] = counts.get(i.kind, 0) + 1
    parts = ", ".join(f"{n} {KIND_LABELS_VI.get(k, k).lower()}" for k, n in sorted(counts.items()))
    used = pictures_used(entries)
    return _Page(
        f"Lịch đăng bài · {camp.name}",
        f"{camp.organisation} · {camp.start:%d/%m/%Y}–{camp.end:%d/%m/%Y} · giờ {tz.key}",
        tables,
        f"Tổng cộng {len(entries)} bài đăng" + (f" ({parts})" if parts else "") + ".",
        [f"Ảnh dùng trong các bài ({len(used)}):", *used] if used else [],
    )


def render_table(entries: Sequence[Item], config: Config, console: Any) -> None:
    """Print the calendar grouped by day, in Vietnamese, for the editorial board."""
    from rich.table import Table

    page = _page(entries, config)
    console.print(f"[bold]{page.heading}[/bold]")
    console.print(page.subheading)
    for title, planned, rows in page.days:
        table = Table(title=title, title_justify="left", title_style="bold cyan", expand=True)
        table.add_column(HEADERS[0], justify="right", no_wrap=True)
        table.add_column(HEADERS[1], no_wrap=True)
        table.add_column(HEADERS[2], no_wrap=True, max_width=24, overflow="ellipsis")
        table.add_column(HEADERS[3], no_wrap=True)
        table.add_column(HEADERS[4], no_wrap=True, overflow="ellipsis", ratio=2)
        table.add_column(HEADERS[5] if planned else "Lý do", no_wrap=planned, ratio=3)
        table.add_column(HEADERS[6], no_wrap=True)
        table.add_column(HEADERS[7], no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(page.total)
    if page.pictures:
        console.print(page.pictures[0], markup=False, highlight=False)
        for line in page.pictures[1:]:  # whole lines: an alt text is read as it is, not cut
            console.print(line, markup=False, highlight=False, soft_wrap=True)


# Characters one cell wide for rich (and every terminal) that rich prints as they are: ASCII,
# Latin-1 and Latin Extended (no soft hyphen, no combining marks), Vietnamese's precomposed
# letters (Latin Extended Additional) and a few punctuation marks.
_PLAIN = re.compile(r"[\x20-\x5a\x5d-\x7e\xa0-\xac\xae-\u02ff\u1e00-\u1eff–—‘’“”…•]*")
_EMOJI_CODE = re.compile(r":\S*?:")  # rich replaces :name: by an emoji


def _plain(text: str) -> bool:
    return _PLAIN.fullmatch(text) is not None and not _EMOJI_CODE.search(text)


def plain_table(entries: Sequence[Item], config: Config, width: int = 160) -> str | None:
    """What ``render_table`` prints on a console ``width`` columns wide without colours (a file,
    a pipe), laid out here without rich (whose import and layout were most of a preview's time,
    bench/RESULTS.md); None when the page holds what only rich lays out (a post without a time,
    whose reason wraps; a line or title wider than the page; text outside ``_PLAIN``, a markup
    bracket or an emoji code). tests/test_preview.py checks it against rich's output."""
    page = _page(entries, config)
    texts = [page.heading, page.subheading, page.total, *page.pictures]
    cells = [c for _t, _p, rows in page.days for row in rows for c in row]
    titles = [t for t, _p, _r in page.days]
    if not all(_plain(t) for t in (*texts, *titles, *cells)):
        return None
    if any(len(t) > width for t in (page.heading, page.subheading, page.total, *titles)):
        return None
    if not all(planned for _t, planned, _r in page.days):
        return None
    out = [page.heading, page.subheading]
    for title, _planned, rows in page.days:
        widths = _widths(rows, width - len(HEADERS) - 1)
        if widths is None:
            return None
        out.append(title.ljust(width))
        out.append(_border("┏", "━", "┳", "┓", widths))
        out.append(_line("┃", HEADERS, widths))
        out.append(_border("┡", "━", "╇", "┩", widths))
        out.extend(_line("│", row, widths) for row in rows)
        out.append(_border("└", "─", "┴", "┘", widths))
    out += [page.total, *page.pictures]
    return "\n".join(out) + "\n"


_MAX = {2: 24}  # the channel's column: its name cut to 24 characters
_FLEX = {4: 2, 5: 3}  # the title's and the text's columns share what is left, 2 : 3


def _widths(rows: Sequence[tuple[str, ...]], room: int) -> list[int] | None:
    """The columns' widths with their padding, as rich's ``Table(expand=True)`` sets them (its
    ``_calculate_column_widths`` when the fixed columns leave the flexible ones room); None
    when they do not."""
    widths = []
    for c, header in enumerate(HEADERS):
        if c in _FLEX:
            widths.append(0)
            continue
        longest = max(len(header), *(len(row[c]) for row in rows)) + 2
        widths.append(min(longest, room, _MAX.get(c, room) + 2))
    left = room - sum(widths)
    total_ratio = sum(_FLEX.values())
    for c, ratio in _FLEX.items():  # rich's ratio_distribute, each at least 3 (1 + padding)
        share = max(3, -(-ratio * left // total_ratio))
        widths[c] = share
        total_ratio -= ratio
        left -= share
    return widths if sum(widths) == room and all(w > 2 for w in widths) else None


def _border(left: str, line: str, cross: str, right: str, widths: Sequence[int]) -> str:
    return left + cross.join(line * w for w in widths) + right


def _line(edge: str, cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = []
    for c, (text, w) in enumerate(zip(cells, widths, strict=True)):
        room = w - 2
        if c == 0:  # right-aligned: rich strips the end first
            text = text.rstrip()
        if len(text) > room:
            text = text[: room - 1] + "…"
        parts.append(" " + (text.rjust(room) if c == 0 else text.ljust(room)) + " ")
    return edge + edge.join(parts) + edge


def pictures_cell(pictures: Sequence[Shown]) -> str:
    """A post's pictures in the table's narrow column: "bìa", "bìa + 2", "2 ảnh" or "–"."""
    cover = any(p.role == "cover" for p in pictures)
    others = len(pictures) - cover
    if cover:
        return "bìa" + (f" + {others}" if others else "")
    return f"{others} ảnh" if others else "–"


def pictures_used(entries: Sequence[Item]) -> list[str]:
    """Each distinct picture of ``entries`` once (a file by its bytes, an address by itself):
    its role, file or address, size, how many posts show it, and its alternative text."""
    seen: dict[tuple[str, str], tuple[Shown, int]] = {}
    for i in entries:
        for p in pictures_of(i.fields):
            key = (p.role, p.sha256 or p.url or p.src)
            first, n = seen.get(key, (p, 0))
            seen[key] = (first, n + 1)
    lines = []
    for p, n in seen.values():
        what = [ROLE_LABELS_VI.get(p.role, p.role), p.name or p.url or p.src]
        if p.dimensions:
            what.append(p.dimensions)
        if p.size:
            what.append(size_text(p.size))
        if p.name and p.url:
            what.append(p.url)
        what.append(f"{n} bài")
        alt = f"“{p.alt}”" if p.alt else "(không có mô tả: ảnh trang trí)"
        lines.append("• " + " · ".join(what) + " — " + alt)
    return lines
