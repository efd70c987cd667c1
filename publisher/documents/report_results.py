"""The report's body as neutral blocks, section by section along the plan: the opening citing
the plans it executes; I. direction; II. results per item of the plan (2.1 in-office
communication, 2.2 slogans and 2.3 articles with their reach and charts, 2.4 gifts and 2.5 the
fund from the office's entries); III. assessment with the facts filled in; IV. proposals; then
the appendix (every published post with its link and reach, and the posts that went wrong).

What the office has not entered yet is marked "[Cần bổ sung]" (a ``todo`` paragraph). No clock
time appears: dates only. Pure: a Report in, blocks out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from publisher.documents import charts
from publisher.documents.report_model import (
    COLUMNS,
    EXPLAINED,
    TODO,
    Block,
    Cell,
    Figure,
    Heading,
    Line,
    Link,
    Para,
    Problem,
    Published,
    Report,
    Table,
    Totals,
    column,
    lower_first,
    number,
    percent,
    safe_url,
    short,
    sum_counts,
)
from publisher.documents.report_reach import Reach, by_key, top
from publisher.report_entries import BY_KEY
from publisher.states import KIND_LABELS_VI

ABBREVIATION = ("Cổng TTĐT", "Cổng thông tin điện tử (Cổng TTĐT)")  # spelled out at first use
NO_FIGURES = "Không có số liệu"
ERRORS = ("failed", "missed", "needs_review")  # the columns that mean a post went wrong
_FIGURES_NOTE = (
    "Lượt tiếp cận là số lượt xem (Trang Facebook: số người đã xem bài; Zalo, Cổng TTĐT: số "
    "lượt xem bài) do các nền tảng thống kê; lượt tương tác gồm bày tỏ cảm xúc, bình luận và "
    "chia sẻ. Kênh không cung cấp số liệu được ghi “{none}”, không tính là 0."
)


def body(r: Report) -> list[Block]:
    """The opening, sections I–IV and the closing sentence."""
    figures = _Figures()
    blocks: list[Block] = [
        Para(_opening(r)),
        Heading("I. CÔNG TÁC CHỈ ĐẠO, TỔ CHỨC THỰC HIỆN", 1),
        *_text(r, "direction.text"),
        Heading("II. KẾT QUẢ THỰC HIỆN", 1),
        *_overview(r, figures),
        Heading("1. Tuyên truyền, phổ biến pháp luật và truyền thông tại cơ quan", 2),
        *_text(r, "office.text"),
        *_kind(r, "slogan", 2, "Đăng tải khẩu hiệu, thông điệp truyền thông", figures),
        *_kind(r, "article", 3, "Viết tin, bài tuyên truyền chính sách, pháp luật", figures),
        *_gifts(r),
        *_fund(r),
        *_assessment(r),
        Heading("IV. ĐỀ XUẤT, KIẾN NGHỊ", 1),
        *_proposals(r),
    ]
    what = "kết quả" if r.final else "tiến độ"
    org = r.campaign.organisation
    blocks.append(Para(f"Trên đây là báo cáo {what} thực hiện {r.campaign.name} của {org}./."))
    return spell_out(blocks)


def _opening(r: Report) -> str:
    plans = [p.rstrip(" ;.,") for p in r.layout.plans]
    cited = "; ".join(plans)
    lead = f"Thực hiện {cited}, " if cited else ""
    return (
        f"{lead}{r.campaign.organisation} báo cáo {_what(r)} thực hiện {r.campaign.name} như sau:"
    )


def _what(r: Report) -> str:
    return "kết quả" if r.final else "tiến độ"


# -- the office's entries ------------------------------------------------------------------


def _entry(r: Report, key: str) -> str | None:
    value = r.entries.get(key, "").strip()
    return value or None


def _figure(r: Report, key: str) -> str:
    """A count or an amount entered by the office, grouped ("1.250", "25.000.000 đồng")."""
    value = _entry(r, key)
    if value is None:
        return TODO
    try:
        n = int(value)
    except ValueError:
        return value
    return number(n) + (" đồng" if BY_KEY[key].kind == "money" else "")


def _text(r: Report, key: str) -> list[Block]:
    """The office's passage (one paragraph per block of lines), or the marked place for it."""
    value = _entry(r, key)
    if value is None:
        return [Para(f"{TODO} {BY_KEY[key].label.split('. ', 1)[-1]}.", "todo")]
    return [Para(" ".join(p.split())) for p in value.split("\n\n") if p.strip()]


def _sentence(text: str) -> Para:
    """A sentence with the office's figures in it: marked while any is missing."""
    return Para(text, "todo" if TODO in text else "")


# -- II. results ---------------------------------------------------------------------------


class _Figures:
    """Numbers the charts in order of appearance: "Biểu đồ 1", "Biểu đồ 2"…"""

    def __init__(self) -> None:
        self.n = 0

    def caption(self, text: str) -> str:
        self.n += 1
        return f"Biểu đồ {self.n}. {text}"


def _reach_cell(x: Reach) -> str:
    if not x.posts:
        return "–"
    return NO_FIGURES if x.views is None else number(x.views)


def _interactions_cell(x: Reach) -> str:
    if not x.posts:
        return "–"
    return NO_FIGURES if x.interactions is None else number(x.interactions)


def _shown(totals: Totals) -> list[str]:
    """The workflow columns to show beside "Theo lịch" and "Đã đăng": only the non-zero ones."""
    return [k for k in list(COLUMNS)[2:] if getattr(totals, k)]


def _states(t: Totals) -> Para:
    """The posts not (yet) published, each state in words; only the non-zero ones."""
    rest = [
        f"{number(getattr(t, k))} lượt {lower_first(COLUMNS[k])} ({EXPLAINED[k]})"
        for k in _shown(t)
    ]
    errors = "" if any(getattr(t, k) for k in ERRORS) else "Không có lượt đăng nào bị lỗi. "
    if not rest:
        return Para(errors.strip())
    return Para(f"{errors}Các lượt đăng còn lại: {'; '.join(rest)}.")


def _channel_table(r: Report, lines: Sequence[Line], kind: str | None) -> Table:
    """Per channel: posts on the calendar, published, the non-zero other states, reach."""
    reach = by_key(r.published, "channel", kind=kind)
    total = Totals.of(sum_counts(x.counts for x in lines))
    extra = _shown(total)
    cols = ["planned", "published", *extra]
    rows: list[tuple[Cell, ...]] = []
    for i, x in enumerate(lines, 1):
        t, reached = x.totals.as_dict(), reach.get(x.key, Reach())
        rows.append(
            (
                str(i),
                f"{x.label}{' (đã gỡ)' if x.removed else ''}",
                *(number(t[c]) for c in cols),
                _reach_cell(reached),
                _interactions_cell(reached),
            )
        )
    everything = Reach.of(p for p in r.published if kind is None or p.kind == kind)
    sums = total.as_dict()
    rows.append(
        (
            "",
            "Tổng cộng",
            *(number(sums[c]) for c in cols),
            _reach_cell(everything),
            _interactions_cell(everything),
        )
    )
    headers = ("STT", "Kênh", *(COLUMNS[c] for c in cols), "Lượt tiếp cận", "Lượt tương tác")
    widths = (0.9, 4.2) + (1.4,) * len(cols) + (1.9, 1.9)
    return Table(headers, tuple(rows), widths, total=True)


def _overview(r: Report, figures: _Figures) -> list[Block]:
    """The whole campaign at a glance: posts, channels, reach, then the per-channel table and
    the charts of reach by day and by channel."""
    t = r.totals
    chans = [c.label for c in r.channels if c.totals.planned]
    everything = Reach.of(r.published)
    lead = (
        f"Số liệu {r.cutoff}: đã đăng tải {number(t.published)}/{number(t.planned)} lượt khẩu "
        f"hiệu, tin, bài theo lịch (đạt {percent(t.published, t.planned)})"
        + (f" trên {len(chans)} kênh: {'; '.join(chans)}" if chans else "")
        + "."
    )
    if everything.views is not None:
        lead += f" Tổng số lượt tiếp cận: {number(everything.views)}"
        if everything.interactions is not None:
            lead += f"; lượt tương tác: {number(everything.interactions)}"
        lead += "."
    blocks: list[Block] = [
        Para(lead),
        _states(t),
        _channel_table(r, [c for c in r.channels if c.totals.planned or c.counts], None),
        Para(_FIGURES_NOTE.format(none=NO_FIGURES), "note"),
    ]
    names = {c.key: c.label for c in r.channels}
    series = {names.get(cid, cid): points for cid, points in r.daily.items()}
    if series:
        caption = figures.caption(f"Lượt tiếp cận cộng dồn theo ngày, theo kênh ({r.cutoff})")
        alt = "; ".join(
            f"{name}: {number(points[-1][1])} lượt đến ngày {short(points[-1][0])}"
            for name, points in series.items()
            if points
        )
        png = charts.daily(series, title="Lượt tiếp cận cộng dồn", unit="lượt")
        blocks.append(Figure(png, caption, f"Đường biểu diễn lượt tiếp cận theo ngày. {alt}."))
    per = by_key(r.published, "channel")
    bars = [(names.get(k, k), x.views) for k, x in per.items() if x.views is not None]
    if bars:
        items = [(label, v) for label, v in sorted(bars, key=lambda b: -b[1])]
        alt = "; ".join(f"{label}: {number(v)} lượt" for label, v in items)
        png = charts.bars(items, title="Lượt tiếp cận theo kênh", unit="lượt")
        blocks.append(Figure(png, figures.caption("Lượt tiếp cận theo kênh"), alt + "."))
    return blocks


def _kind(r: Report, kind: str, n: int, title: str, figures: _Figures) -> list[Block]:
    """Item 2.2 (slogans) or 2.3 (articles): posts and reach per channel and per item."""
    label = KIND_LABELS_VI.get(kind, kind).lower()
    blocks: list[Block] = [Heading(f"{n}. {title}", 2)]
    lines = [m for m in r.messages if m.kind == kind]
    count, t = r.by_kind(kind)
    if not lines:
        return [*blocks, Para(f"Chưa có {label} nào trong kế hoạch đăng tải.")]
    reach = Reach.of(p for p in r.published if p.kind == kind)
    per = by_key(r.published, "channel", kind=kind)
    names = {c.key: c.label for c in r.channels}
    parts = [
        f"{names.get(k, k)} {number(x.posts)} lượt"
        + (f", {number(x.views)} lượt tiếp cận" if x.views is not None else "")
        for k, x in per.items()
    ]
    text = (
        f"Đã đăng tải {number(t.published)}/{number(t.planned)} lượt của {count} {label} theo "
        f"lịch (đạt {percent(t.published, t.planned)})"
    )
    if reach.views is not None:
        text += f", đạt {number(reach.views)} lượt tiếp cận"
    if reach.interactions is not None:
        text += f" và {number(reach.interactions)} lượt tương tác"
    text += f"; trong đó: {'; '.join(parts)}." if parts else "."
    blocks += [Para(text), _items_table(r, lines, kind)]
    if kind == "article":
        best = top(r.published, kind=kind)
        if best:
            names_views = "; ".join(f"“{t}” ({number(v)} lượt)" for t, v in best)
            blocks.append(Para(f"Các bài được xem nhiều nhất: {names_views}."))
            labels = [(clip(t), v) for t, v in best]
            png = charts.bars(labels, title="Bài viết được xem nhiều nhất", unit="lượt xem")
            caption = figures.caption("Các bài viết được xem nhiều nhất (mọi kênh cộng lại)")
            blocks.append(Figure(png, caption, names_views + "."))
    return blocks


def clip(title: str, limit: int = 42) -> str:
    """A title short enough to label a bar: cut at a word, "…" after it."""
    if len(title) <= limit:
        return title
    cut = title[:limit].rsplit(" ", 1)[0].rstrip(" ,.:;-")
    return cut + "…"


def _items_table(r: Report, lines: Sequence[Line], kind: str) -> Table:
    reach = by_key(r.published, "message", kind=kind)
    rows: list[tuple[Cell, ...]] = []
    for i, x in enumerate(lines, 1):
        t, reached = x.totals, reach.get(x.key, Reach())
        rows.append(
            (
                str(i),
                f"{x.label}{' (đã gỡ)' if x.removed else ''}",
                number(t.planned),
                number(t.published),
                _reach_cell(reached),
                _interactions_cell(reached),
            )
        )
    headers = (
        "STT",
        KIND_LABELS_VI.get(kind, kind),
        COLUMNS["planned"],
        COLUMNS["published"],
        "Lượt tiếp cận",
        "Lượt tương tác",
    )
    return Table(headers, tuple(rows), (0.9, 7.0, 1.5, 1.5, 2.0, 2.0))


def _gifts(r: Report) -> list[Block]:
    children, value = _figure(r, "gifts.children"), _figure(r, "gifts.value")
    return [
        Heading("4. Chăm lo cho trẻ em là con công chức, viên chức, người lao động", 2),
        _sentence(
            f"Số trẻ em được tặng quà, trao thưởng: {children} cháu; tổng giá trị quà, phần "
            f"thưởng: {value}."
        ),
        *_text(r, "gifts.text"),
    ]


def _fund(r: Report) -> list[Block]:
    amount, donors = _figure(r, "fund.amount"), _figure(r, "fund.donors")
    return [
        Heading("5. Vận động ủng hộ Quỹ Bảo trợ trẻ em", 2),
        _sentence(
            f"Số tiền công chức, viên chức, người lao động ủng hộ Quỹ Bảo trợ trẻ em: {amount}; "
            f"số người ủng hộ: {donors}."
        ),
        *_text(r, "fund.text"),
    ]


# -- III. assessment, IV. proposals ----------------------------------------------------------


def _assessment(r: Report) -> list[Block]:
    published = r.published
    on_time = sum(1 for p in published if p.on_time)
    strengths: list[Block] = []
    if published:
        strengths.append(
            Para(
                f"Việc đăng tải được thực hiện tự động theo lịch đã được lãnh đạo phê duyệt: "
                f"{number(on_time)}/{number(len(published))} lượt đã đăng đúng giờ (đạt "
                f"{percent(on_time, len(published))})."
            )
        )
        strengths.extend(_desk_delay(published))
    return [
        Heading("III. ĐÁNH GIÁ", 1),
        Heading("1. Ưu điểm", 2),
        *strengths,
        *_text(r, "assessment.strengths"),
        Heading("2. Tồn tại, hạn chế", 2),
        *_limits(r),
        *_text(r, "assessment.limits"),
        Heading("3. Nguyên nhân", 2),
        *_causes(r),
        *_text(r, "assessment.causes"),
    ]


def _desk_delay(published: Sequence[Published]) -> list[Block]:
    """How the posts mailed to a portal's editorial desk count: by when the mail left, and how
    long the desk took to publish them (per portal, on average)."""
    delays: dict[str, list[float]] = {}
    for p in published:
        if p.handed_off_at is not None:
            hours = max((p.at - p.handed_off_at).total_seconds(), 0) / 3600
            delays.setdefault(p.channel_name, []).append(hours)
    return [
        Para(
            f"{number(len(hours))} lượt đăng trên {name} được gửi Ban biên tập cổng qua thư điện "
            f"tử: đúng giờ tính theo thời điểm gửi thư; cổng đăng tải sau trung bình "
            f"{_hours(sum(hours) / len(hours))}."
        )
        for name, hours in delays.items()
    ]


def _hours(h: float) -> str:
    """3.25 → "3,3 giờ"; under an hour in minutes."""
    if h < 1:
        return f"{round(h * 60)} phút"
    return f"{h:.1f}".replace(".", ",") + " giờ"


def _limits(r: Report) -> list[Block]:
    """The problems counted by reason, in words (the list is in the appendix)."""
    if not r.problems:
        return [Para("Không có lượt đăng nào bị lỗi.")]
    reasons: dict[str, int] = {}
    for p in r.problems:
        reasons[p.reason] = reasons.get(p.reason, 0) + 1
    parts = [f"{lower_first(why)} ({number(n)} lượt)" for why, n in reasons.items()]
    listed = sum(1 for p in r.problems if p.delivery)
    where = " (chi tiết tại Phụ lục, mục II)" if listed else ""
    errors = (
        ""
        if any(column_of(p) in ERRORS for p in r.problems)
        else ("Không có lượt đăng nào bị lỗi. ")
    )
    return [
        Para(
            f"{errors}Có {number(len(r.problems))} lượt đăng cần lưu ý{where}: {'; '.join(parts)}."
        )
    ]


def column_of(p: Problem) -> str:
    return column(p.state)


def _causes(r: Report) -> list[Block]:
    """What the platforms answered when they refused posts, quoted, with how often."""
    said: dict[str, int] = {}
    for p in r.problems:
        if column_of(p) == "failed" and p.detail:
            words = platform_words(p.detail)
            said[words] = said.get(words, 0) + 1
    if not said:
        return []
    quoted = "; ".join(f"“{text}” ({number(n)} lượt)" for text, n in said.items())
    return [Para(f"Nền tảng từ chối bài với lý do: {quoted}.")]


def _proposals(r: Report) -> list[Block]:
    if _entry(r, "proposals.text") is not None:
        return _text(r, "proposals.text")
    if r.layout.proposals:
        return [Para(p) for p in r.layout.proposals]
    return _text(r, "proposals.text")


# -- the appendix ----------------------------------------------------------------------------


def appendix(r: Report) -> list[Block]:
    """Every published post with its date, link and reach; then the posts that went wrong on
    their way out (failed, missed, to be checked, stuck), with their reasons."""
    blocks: list[Block] = [
        Heading("PHỤ LỤC", 0),
        Para(
            f"(Kèm theo Báo cáo {_what(r)} thực hiện {r.campaign.name}, số liệu {r.cutoff})",
            "note",
        ),
        Heading("I. DANH SÁCH KHẨU HIỆU, TIN, BÀI ĐÃ ĐĂNG TẢI", 1),
    ]
    if not r.published:
        blocks.append(Para("Chưa có khẩu hiệu, tin, bài nào được đăng."))
    else:
        rows: tuple[tuple[Cell, ...], ...] = tuple(
            (
                str(i),
                short(p.at),
                p.channel_name,
                p.title,
                Link(p.url or "–", safe_url(p.url)),
                _reach_cell(Reach.of([p])),
                _interactions_cell(Reach.of([p])),
            )
            for i, p in enumerate(r.published, 1)
        )
        listing = (
            "STT",
            "Ngày đăng",
            "Kênh",
            "Tiêu đề",
            "Đường dẫn",
            "Lượt tiếp cận",
            "Lượt tương tác",
        )
        blocks.append(Table(listing, rows, (0.9, 2.0, 2.6, 4.2, 4.0, 1.6, 1.6), left=(2, 3, 4)))
    troubled = [p for p in r.problems if p.delivery]
    if troubled:
        rows = tuple(
            (
                str(i),
                short(p.due_at) if p.due_at else "–",
                p.channel_name,
                p.title,
                COLUMNS[column_of(p)],
                p.reason + _answer(p),
            )
            for i, p in enumerate(troubled, 1)
        )
        headers = ("STT", "Ngày dự kiến", "Kênh", "Tiêu đề", "Tình trạng", "Lý do")
        blocks += [
            Heading("II. CÁC LƯỢT ĐĂNG CHƯA THỰC HIỆN ĐƯỢC HOẶC CẦN KIỂM TRA", 1),
            Table(headers, rows, (0.9, 2.0, 2.6, 4.0, 2.0, 4.5), left=(2, 3, 5)),
        ]
    return blocks


def _answer(p: Problem) -> str:
    """The platform's answer to a refused post, quoted; else nothing."""
    if p.detail and column_of(p) == "failed":
        return f" (nền tảng trả lời: “{platform_words(p.detail)}”)"
    return ""


def platform_words(detail: str) -> str:
    """What the platform answered, without the delivery record's own English lead-in
    ("refused by the platform: -201 …" → "-201 …")."""
    return detail.split(_REFUSED, 1)[-1].strip()


_REFUSED = "refused by the platform:"  # publisher.dispatch.outcomes' cause of a refusal


def spell_out(blocks: list[Block]) -> list[Block]:
    """ "Cổng TTĐT" written out in full where it first appears (a paragraph or a table cell)."""
    short_form, full = ABBREVIATION
    done = False
    out: list[Block] = []
    for b in blocks:
        if not done and isinstance(b, Para) and short_form in b.text:
            b, done = replace(b, text=b.text.replace(short_form, full, 1)), True
        elif not done and isinstance(b, Table):
            rows = []
            for row in b.rows:
                cells: list[Cell] = []
                for c in row:
                    if not done and isinstance(c, str) and short_form in c:
                        c, done = c.replace(short_form, full, 1), True
                    cells.append(c)
                rows.append(tuple(cells))
            b = replace(b, rows=tuple(rows))
        out.append(b)
    return out
