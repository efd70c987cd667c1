"""The campaign report: totals per channel and per content item, every published post with its
link, and the problems with their reasons, from the delivery records, and the document's body.

Only ``build_report`` reads the database (one read, never the channel tokens); the rest is pure.
The writers: ``report_docx`` (Word) and ``report_text`` (JSON, Markdown, HTML). Every name on
the document comes from ``[report]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from publisher.config import KINDS, Campaign, Config, ReportSettings
from publisher.states import KIND_LABELS_VI, LABELS_VI, MEANING_VI, PENDING, State
from publisher.store.db import Database
from publisher.store.history import last_causes
from publisher.store.models import MessageRow, PostRow

NBSP = "\u00a0"  # the blank the clerk fills in, kept wide in HTML and Markdown
Progress = Callable[[int, int], None]  # (steps done, steps in all), e.g. for a rich progress bar

# "planned" is every post on the calendar that was not cancelled; it splits exactly into the
# other columns but "cancelled": a post still pending is counted, not assumed to go out.
COLUMNS: dict[str, str] = {
    "planned": "Kế hoạch",
    "published": "Đã đăng",
    # mailed to a portal's editorial desk (the email channel), its publication not confirmed
    # yet; on such a channel "Đã đăng" counts the posts the desk confirmed
    "handed_off": "Chờ BBT xác nhận",
    "failed": "Thất bại",
    "missed": "Bị lỡ",
    "needs_review": "Cần kiểm tra",
    "pending": "Chờ đăng",  # approved, being sent, retrying or being looked up
    "unapproved": "Chưa duyệt",  # a draft, or held or rejected by the board
    "cancelled": "Đã hủy",
}
_OWN = {State.PUBLISHED, State.FAILED, State.MISSED, State.NEEDS_REVIEW, State.CANCELLED}
_WHY_VI = {
    **MEANING_VI,
    "pending": "Đã quá giờ đăng nhưng chưa đăng được; cần kiểm tra tiến trình đăng bài",
    "unapproved": "Đến giờ đăng nhưng bài chưa được phê duyệt",
    "unplanned": "Không xếp được lịch đăng",
}
TODO_VI = "[Cần bổ sung trước khi trình ký] Đề xuất, kiến nghị của đơn vị (nếu có)."


def column(state: str) -> str:
    """The totals column a post in ``state`` counts in (never "planned")."""
    if state == State.HANDED_OFF:
        return "handed_off"
    if state in _OWN:
        return str(state)
    return "pending" if state in PENDING else "unapproved"


def lower_first(label: str) -> str:
    """``label`` inside a sentence: its first letter lower-case, an abbreviation kept
    ("Chờ BBT xác nhận" → "chờ BBT xác nhận")."""
    return label[:1].lower() + label[1:]


@dataclass(frozen=True)
class Totals:
    planned: int = 0
    published: int = 0
    handed_off: int = 0
    failed: int = 0
    missed: int = 0
    needs_review: int = 0
    pending: int = 0
    unapproved: int = 0
    cancelled: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Totals:
        cols = dict.fromkeys(COLUMNS, 0)
        for state, n in counts.items():
            cols[column(state)] += n
            cols["planned"] += 0 if state == State.CANCELLED else n
        return cls(**cols)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Line:
    """One row of a totals table: a channel, or a content item (slogan or article)."""

    key: str  # channel id or message key
    label: str  # channel name or message title
    kind: str  # "channel", "slogan" or "article"
    counts: Mapping[str, int]  # state → posts, non-zero only
    removed: bool = False  # a content file that was taken away

    @property
    def totals(self) -> Totals:
        return Totals.of(self.counts)


@dataclass(frozen=True)
class Published:
    id: int
    at: datetime  # local time
    channel: str
    channel_name: str
    message: str
    kind: str
    title: str
    url: str | None
    remote_id: str | None


@dataclass(frozen=True)
class Problem:
    id: int
    due_at: datetime | None  # local time
    channel: str
    channel_name: str
    message: str
    title: str
    state: str
    reason: str  # in Vietnamese, for the reader
    detail: str  # the delivery record's own words (the last recorded cause)


@dataclass(frozen=True)
class Report:
    final: bool  # the campaign window is over: a results report, not a progress report
    as_of: datetime  # local time the figures were read
    campaign: Campaign
    layout: ReportSettings
    counts: Mapping[str, int]  # every state → posts: equal to ``publisher status``'s counts
    channels: tuple[Line, ...]
    messages: tuple[Line, ...]
    published: tuple[Published, ...]
    problems: tuple[Problem, ...]

    @property
    def totals(self) -> Totals:
        return Totals.of(self.counts)

    @property
    def subject(self) -> str:
        return f"{'Kết quả' if self.final else 'Tiến độ'} thực hiện {self.campaign.name}"

    @property
    def title(self) -> str:
        return f"Báo cáo {lower_first(self.subject)}"

    @property
    def period(self) -> str:
        if self.final:
            return f"(Từ ngày {short(self.campaign.start)} đến ngày {short(self.campaign.end)})"
        return f"(Báo cáo tiến độ: số liệu tính đến {self.as_of:%H:%M} ngày {short(self.as_of)})"

    @property
    def number_line(self) -> str:
        return f"Số: {self.layout.number or NBSP * 8}/{self.layout.symbol}"

    @property
    def date_line(self) -> str:
        return f"{self.layout.place}, {long_date(self.as_of.date())}"

    def by_kind(self, kind: str) -> tuple[int, Totals]:
        """How many content items of ``kind`` have posts, and their posts' totals."""
        lines = [m for m in self.messages if m.kind == kind]
        return sum(1 for m in lines if m.totals.planned), Totals.of(_sum(m.counts for m in lines))


def _sum(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for state, n in c.items():
            out[state] = out.get(state, 0) + n
    return out


def short(d: date) -> str:
    """``01/6/2024``, as the plan writes dates in its text."""
    return f"{d.day:02d}/{d.month}/{d.year}"


def long_date(d: date) -> str:
    """``ngày 05 tháng 7 năm 2024``: a zero before days below 10 and months 1–2 (NĐ 30/2020)."""
    month = f"{d.month:02d}" if d.month < 3 else str(d.month)
    return f"ngày {d.day:02d} tháng {month} năm {d.year}"


def build_report(
    db: Database, config: Config, now: datetime, *, progress: Progress | None = None
) -> Report:
    """Read the delivery records as they are at ``now`` (aware) into a Report."""
    if now.tzinfo is None:
        raise ValueError("build_report needs an aware datetime")
    messages, posts, causes = _read(db, config, now, progress)
    tally = _tally(messages, posts, causes, config, now, progress)
    tz = config.tz
    order = {cid: i for i, cid in enumerate(config.channels)}
    tally.published.sort(key=lambda x: (x.at, order.get(x.channel, len(order)), x.id))
    far = datetime.max.replace(tzinfo=tz)
    tally.problems.sort(key=lambda x: (x.due_at or far, x.id))
    kinds = {k: i for i, k in enumerate(KINDS)}
    items = sorted(
        (messages[mid] for mid in tally.by_message),
        key=lambda m: (kinds.get(m.kind, len(kinds)), m.key),
    )
    return Report(
        final=now >= datetime.combine(config.campaign.end + timedelta(days=1), time(0), tz),
        as_of=now.astimezone(tz),
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
    )


# A row of ``_read``'s selects: its columns are read by name, which SQLAlchemy types as Any.
_Record = Any


def _read(
    db: Database, config: Config, now: datetime, progress: Progress | None
) -> tuple[dict[int, _Record], Sequence[_Record], dict[int, str]]:
    """The messages by id, the posts in id order and the troubled posts' last causes, in one
    read; reports the first of ``len(posts) + 1`` steps."""
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
                PostRow.remote_id,
                PostRow.remote_url,
                PostRow.last_error,
                PostRow.plan_note,
            ).order_by(PostRow.id)
        ).all()
        total = len(posts) + 1
        if progress:
            progress(1, total)
        troubled = [p.id for p in posts if _trouble(p.state, p.due_at, now, config) is not None]
        causes = last_causes(s, troubled)
    return messages, posts, causes


@dataclass
class _Tally:
    """The posts counted by state, channel and message, and the published and troubled ones."""

    names: dict[str, str]  # channel id → name
    counts: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    by_message: dict[int, dict[str, int]] = field(default_factory=dict)
    published: list[Published] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _tally(
    messages: Mapping[int, _Record],
    posts: Sequence[_Record],
    causes: Mapping[int, str],
    config: Config,
    now: datetime,
    progress: Progress | None,
) -> _Tally:
    """Count every post, in order, reporting each as one more step after the read."""
    tz = config.tz
    t = _Tally(
        names={cid: ch.name for cid, ch in config.channels.items()},
        counts={state.value: 0 for state in State},
        by_channel={cid: {} for cid in config.channels},
    )
    total = len(posts) + 1
    for done, p in enumerate(posts, 2):
        m = messages[p.message_id]
        t.counts[p.state] = t.counts.get(p.state, 0) + 1
        for table in (t.by_channel.setdefault(p.channel, {}), t.by_message.setdefault(m.id, {})):
            table[p.state] = table.get(p.state, 0) + 1
        name = t.names.get(p.channel, p.channel)
        if p.state == State.PUBLISHED:
            at = (p.published_at or p.due_at or now).astimezone(tz)
            t.published.append(
                Published(
                    p.id, at, p.channel, name, m.key, m.kind, m.title, p.remote_url, p.remote_id
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


# -- the document's body, shared by every format -------------------------------------------


@dataclass(frozen=True)
class Link:
    text: str
    url: str | None  # None: shown as text only (no address, or not an http(s) one)


Cell = str | int | Link


@dataclass(frozen=True)
class Heading:
    text: str
    level: int  # 1: "I. …", 2: "1. …"


@dataclass(frozen=True)
class Para:
    text: str
    style: str = ""  # "" | "note" (italic) | "todo" (for the drafter to complete)


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    widths: tuple[float, ...]  # relative
    left: tuple[int, ...] = (1,)  # text columns, aligned left; the others are centred
    total: bool = False  # the last row sums the others


@dataclass(frozen=True)
class Figure:
    """A chart (``publisher.documents.charts``): PNG bytes, shown at ``width`` cm with its
    caption under it ("Biểu đồ 1. …"); ``alt`` says in words what it shows."""

    png: bytes
    caption: str
    alt: str
    width: float = 15.0


Block = Heading | Para | Table | Figure


def safe_url(url: str | None) -> str | None:
    return url if url and re.match(r"^https?://", url, re.IGNORECASE) else None


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}".replace(".", ",") + "%" if whole else "–"


def _totals_table(first: str, lines: Sequence[Line]) -> Table:
    total = Totals.of(_sum(x.counts for x in lines))
    rows: list[tuple[Cell, ...]] = [
        (str(i), f"{x.label}{' (đã gỡ)' if x.removed else ''}", *x.totals.as_dict().values())
        for i, x in enumerate(lines, 1)
    ]
    rows.append(("", "Tổng cộng", *total.as_dict().values()))
    widths = (0.9, 3.7) + (1.26,) * len(COLUMNS)
    return Table(("STT", first, *COLUMNS.values()), tuple(rows), widths, total=True)


def body(r: Report) -> list[Block]:
    """Sections I–IV and the closing sentence, as neutral blocks every renderer lays out."""
    blocks: list[Block] = [Para(r.layout.basis), *_results(r), *_published(r), *_problems(r)]
    blocks.append(Heading("IV. ĐỀ XUẤT, KIẾN NGHỊ", 1))
    blocks += [Para(p) for p in r.layout.proposals] or [Para(TODO_VI, "todo")]
    what = "kết quả" if r.final else "tiến độ"
    org = r.campaign.organisation
    blocks.append(Para(f"Trên đây là báo cáo {what} thực hiện {r.campaign.name} của {org}./."))
    return blocks


def _results(r: Report) -> list[Block]:
    """Section I: the summary sentences, then the totals per channel and per content item."""
    t = r.totals
    parts = []
    for kind in KINDS:
        n, kt = r.by_kind(kind)
        if kt.planned:
            label = KIND_LABELS_VI.get(kind, kind).lower()
            parts.append(f"{kt.published}/{kt.planned} lượt đăng của {n} {label}")
    chans = [c.label for c in r.channels if c.totals.planned]
    lead = (
        f"Tính đến {r.as_of:%H:%M} ngày {short(r.as_of)}, đã đăng tải {t.published}/{t.planned} "
        f"lượt theo kế hoạch (đạt {_percent(t.published, t.planned)})"
        + (f", gồm {' và '.join(parts)}" if parts else "")
        + (f", trên {len(chans)} kênh: {'; '.join(chans)}." if chans else ".")
    )
    rest = [
        f"{getattr(t, k)} lượt {lower_first(COLUMNS[k])}"
        for k in list(COLUMNS)[2:]
        if getattr(t, k)
    ]
    blocks: list[Block] = [
        Heading("I. KẾT QUẢ ĐĂNG TẢI THÔNG ĐIỆP VÀ BÀI VIẾT", 1),
        Para(lead),
        Para(("Số lượt còn lại: " + "; ".join(rest) + ".") if rest else "Không có lượt nào lỗi."),
        Para(
            "Ghi chú: “Kế hoạch” là số lượt đăng đã xếp lịch, không kể lượt đã hủy; mỗi khẩu hiệu, "
            "bài viết được đăng một hoặc nhiều lượt trên mỗi kênh. Với cổng nhận bài qua thư điện "
            "tử, “Chờ BBT xác nhận” là số bài đã gửi ban biên tập nhưng chưa được xác nhận đã "
            "đăng; “Đã đăng” là số bài ban biên tập đã xác nhận.",
            "note",
        ),
        Heading("1. Theo kênh đăng tải", 2),
        _totals_table("Kênh", r.channels),
    ]
    for n, kind in enumerate(KINDS, 2):
        lines = [m for m in r.messages if m.kind == kind]
        label = KIND_LABELS_VI.get(kind, kind)
        if lines:
            blocks += [Heading(f"{n}. Theo từng {label.lower()}", 2), _totals_table(label, lines)]
    return blocks


def _published(r: Report) -> list[Block]:
    """Section II: every published post with its link."""
    heading = Heading("II. DANH SÁCH BÀI ĐÃ ĐĂNG", 1)
    if not r.published:
        return [heading, Para("Chưa có bài nào được đăng.")]
    rows: tuple[tuple[Cell, ...], ...] = tuple(
        (str(i), f"{p.at:%d/%m/%Y %H:%M}", p.channel_name, p.title, _link(p.url))
        for i, p in enumerate(r.published, 1)
    )
    headers = ("STT", "Thời gian đăng", "Kênh", "Tiêu đề", "Đường dẫn")
    return [heading, Table(headers, rows, (1.0, 2.3, 3.0, 5.2, 4.5), left=(2, 3, 4))]


def _problems(r: Report) -> list[Block]:
    """Section III: the posts not made or to be checked, each with its reason."""
    heading = Heading("III. TỒN TẠI, VƯỚNG MẮC", 1)
    if not r.problems:
        return [heading, Para("Không có.")]
    rows: tuple[tuple[Cell, ...], ...] = tuple(
        (
            str(i),
            f"{p.due_at:%d/%m/%Y %H:%M}" if p.due_at else "–",
            p.channel_name,
            p.title,
            LABELS_VI.get(p.state, p.state),
            p.reason + (f" ({p.detail})" if p.detail and p.state != State.MISSED else ""),
        )
        for i, p in enumerate(r.problems, 1)
    )
    headers = ("STT", "Thời gian dự kiến", "Kênh", "Tiêu đề", "Tình trạng", "Lý do")
    return [
        heading,
        Para(f"Có {len(r.problems)} lượt đăng chưa thực hiện được hoặc cần kiểm tra:"),
        Table(headers, rows, (1.0, 2.3, 2.6, 4.0, 1.7, 4.4), left=(2, 3, 5)),
    ]


def _link(url: str | None) -> Link:
    return Link(url or "–", safe_url(url))


def recipients(r: Report) -> list[str]:
    """``- Sở LĐ-TB&XH;`` … ``- Lưu: VT, PB&TDTHPL.``"""
    names = [x.rstrip(" ;.") for x in r.layout.recipients]
    return [f"- {x}{'.' if i == len(names) - 1 else ';'}" for i, x in enumerate(names)]


FORMATS = ("docx", "html", "md", "json")
