"""The report's data: what ``build_report`` reads (totals per channel and per content item, the
published posts with their latest figures, the problems, the office's entries) and the neutral
blocks (headings, paragraphs, tables, figures) every writer lays out. Pure.

The web app's /report page, ``report_text`` and ``report_docx`` read these; ``report_results``
turns a Report into blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from publisher.config import Campaign, ReportSettings
from publisher.metrics import Reading
from publisher.states import PENDING, State

NBSP = "\u00a0"  # the blank the clerk fills in, kept wide in HTML and Markdown
Progress = Callable[[int, int], None]  # (steps done, steps in all), e.g. for a rich progress bar
TODO = "[Cần bổ sung]"  # marks what the office still has to write or enter

# "planned" is every post on the calendar that was not cancelled; it splits exactly into the
# other columns but "cancelled": a post still pending is counted, not assumed to go out.
COLUMNS: dict[str, str] = {
    "planned": "Theo lịch",
    "published": "Đã đăng",
    # mailed to a portal's editorial desk (the email channel), its publication not confirmed
    # yet; on such a channel "Đã đăng" counts the posts the desk confirmed
    "handed_off": "Chờ BBT xác nhận",
    "failed": "Không thành công",
    "missed": "Quá giờ, không đăng",
    "needs_review": "Cần kiểm tra",
    "pending": "Chờ đăng",  # approved, being sent, retrying or being looked up
    "unapproved": "Chưa duyệt",  # a draft, or held or rejected by the board
    "cancelled": "Đã hủy",
}
# Each workflow column in words, for the sentence that names the non-zero ones.
EXPLAINED: dict[str, str] = {
    "handed_off": "đã gửi qua thư điện tử tới Ban biên tập (BBT) của cổng, chờ BBT xác nhận "
    "địa chỉ bài đã đăng",
    "failed": "nền tảng từ chối bài hoặc đã hết số lần thử lại",
    "missed": "đến giờ đăng nhưng hệ thống không đăng được trong thời gian cho phép, nên "
    "không đăng muộn",
    "needs_review": "chưa xác định được bài đã lên kênh hay chưa, cần kiểm tra trực tiếp",
    "pending": "đã duyệt, chờ đến giờ đăng hoặc đang đăng",
    "unapproved": "chưa được lãnh đạo phê duyệt",
    "cancelled": "đã hủy, không đăng",
}
_OWN = {State.PUBLISHED, State.FAILED, State.MISSED, State.NEEDS_REVIEW, State.CANCELLED}


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
    due_at: datetime | None = None  # local time
    reading: Reading | None = None  # its latest figures up to the report's date; None: never read
    on_time: bool = True  # sent within the daemon's grace after its time
    handed_off_at: datetime | None = None  # local time: mailed to a portal desk, which published it


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

    @property
    def delivery(self) -> bool:
        """A post that went wrong on its way out (listed in the appendix), not one that was
        never approved or placed (only counted)."""
        return column(self.state) in ("failed", "missed", "needs_review", "pending")


@dataclass(frozen=True)
class Report:
    final: bool  # the campaign window is over by the report's date: a results report
    as_of: datetime  # local time the figures are read up to (the end of ``day``, or now)
    campaign: Campaign
    layout: ReportSettings
    counts: Mapping[str, int]  # every state → posts: equal to ``publisher status``'s counts
    channels: tuple[Line, ...]
    messages: tuple[Line, ...]
    published: tuple[Published, ...]
    problems: tuple[Problem, ...]
    day: date | None = None  # the report's date (default: the day of ``as_of``)
    closed: bool = True  # ``through`` is over: its figures are "tính đến hết ngày"
    # The last day the figures cover, when not ``day``: a past campaign's report dated today
    # says its figures run to the campaign's end (or the last day they were read after it).
    through: date | None = None
    entries: Mapping[str, str] = field(default_factory=dict)  # the office's, by ENTRIES key
    # channel id → its published posts' views summed at the end of each day (cumulative)
    daily: Mapping[str, tuple[tuple[date, int], ...]] = field(default_factory=dict)

    @property
    def dated(self) -> date:
        """The report's date: the one it is signed on and its figures run to."""
        return self.day or self.as_of.date()

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
    def cutoff(self) -> str:
        """ "tính đến hết ngày 30/6/2024" (the day is over) or "tính đến ngày 15/6/2024"."""
        day = self.through or self.dated
        return f"tính đến {'hết ' if self.closed else ''}ngày {short(day)}"

    @property
    def period(self) -> str:
        if self.final:
            return f"(Từ ngày {short(self.campaign.start)} đến ngày {short(self.campaign.end)})"
        return f"(Báo cáo tiến độ: số liệu {self.cutoff})"

    @property
    def number_line(self) -> str:
        return f"Số: {self.layout.number or NBSP * 8}/{self.layout.symbol}"

    @property
    def date_line(self) -> str:
        return f"{self.layout.place}, {long_date(self.dated)}"

    def by_kind(self, kind: str) -> tuple[int, Totals]:
        """How many content items of ``kind`` have posts, and their posts' totals."""
        lines = [m for m in self.messages if m.kind == kind]
        return sum(1 for m in lines if m.totals.planned), Totals.of(
            sum_counts(m.counts for m in lines)
        )


def sum_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
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


def number(n: int) -> str:
    """12345 → "12.345": digits grouped as Vietnamese documents write them."""
    return f"{n:,}".replace(",", ".")


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}".replace(".", ",") + "%" if whole else "–"


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


def recipients(r: Report) -> list[str]:
    """``- Sở LĐ-TB&XH;`` … ``- Lưu: VT, PB&TDTHPL.``"""
    names = [x.rstrip(" ;.") for x in r.layout.recipients]
    return [f"- {x}{'.' if i == len(names) - 1 else ';'}" for i, x in enumerate(names)]


FORMATS = ("docx", "html", "md", "json")
