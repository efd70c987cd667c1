"""The report's reach: figures recorded as dated snapshots (``store.metrics.record``) summed per
channel, per content item and day by day, the most-read articles, the charts, the dates (no
clock time), the "[Cần bổ sung]" marks and the appendix — the DOCX read back with python-docx."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from docx import Document
from docx.enum.text import WD_COLOR_INDEX
from docx.oxml.ns import qn
from hypothesis import given
from hypothesis import strategies as st

from publisher.documents.report import Published, Report, build_report
from publisher.documents.report_reach import Reach, daily, top
from publisher.documents.report_text import render, to_html, to_json, to_markdown
from publisher.metrics import Reading
from publisher.store.metrics import Snapshot, record
from tests.test_report import June, june  # noqa: F401 - the June run, as a fixture here

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # long after: the report of a past campaign
JUNE_30 = date(2024, 6, 30)
LATE = datetime(2024, 7, 3, 3, 0, tzinfo=UTC)  # a reading after the report's date
CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")


def views(post_id: int, days: int) -> int:
    """The made-up reach of a post ``days`` after it went out (grows, differs per post)."""
    return 1000 * days + 37 * post_id


@dataclass
class Figures:
    june: June
    report: Report
    expected: dict[int, int | None]  # post id → its views up to 30/6 (None: no figures)
    docx: Any  # python-docx Document


@pytest.fixture(scope="module")
def figures(june: June) -> Figures:  # noqa: F811 - the imported fixture
    """Every published post read 1 and 3 days after it went out (those readings falling after
    30/6 too), and once more on 3/7; the portal reached by mail keeps no figures."""
    published = build_report(june.db, june.config, NOW).published
    end = datetime(2024, 7, 1, tzinfo=june.config.tz)
    expected: dict[int, int | None] = {}
    with june.db.write() as s:
        for p in published:
            if p.channel == "portal_pbgdpl":
                record(s, p.id, Reading(), p.at + timedelta(days=1), note="no stats endpoint")
                expected[p.id] = None
                continue
            for days in (1, 3):
                taken = p.at + timedelta(days=days)
                reading = Reading(
                    views=views(p.id, days), reactions=days, comments=1, shares=0, source="test"
                )
                record(s, p.id, reading, taken)
                if taken < end:
                    expected[p.id] = views(p.id, days)
            expected.setdefault(p.id, None)  # published on 30/6, first read after it
            record(s, p.id, Reading(views=10**6), LATE)
    report = build_report(june.db, june.config, NOW, day=JUNE_30)
    return Figures(june, report, expected, Document(io.BytesIO(render(report, "docx"))))


def cells(table: Any) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


def grouped(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def test_reach_per_channel_is_the_latest_reading_up_to_the_date(figures: Figures) -> None:
    names = {ch.name: cid for cid, ch in figures.june.config.channels.items()}
    table = next(t for t in figures.docx.tables if cells(t)[0][:2] == ["STT", "Kênh"])
    head, *rows, total = cells(table)
    assert head[-2:] == ["Lượt tiếp cận", "Lượt tương tác"]
    channel_of = {p.id: p.channel for p in figures.report.published}
    everything = 0
    for row in rows:
        cid = names[row[1].replace("Cổng thông tin điện tử (Cổng TTĐT)", "Cổng TTĐT")]
        mine = [v for pid, v in figures.expected.items() if channel_of[pid] == cid]
        if cid == "portal_pbgdpl":
            assert row[-2] == "Không có số liệu"  # never an invented zero
            continue
        known = sum(v for v in mine if v is not None)
        assert row[-2] == grouped(known), cid
        assert known > 1000 and "." in row[-2]  # grouped the Vietnamese way
        everything += known
    assert total[-2] == grouped(everything)
    assert "1.000.000" not in " ".join(c for row in cells(table) for c in row)  # 3/7: too late


def test_a_later_date_takes_the_later_readings(figures: Figures) -> None:
    later = build_report(figures.june.db, figures.june.config, NOW, day=date(2024, 7, 5))
    data = json.loads(to_json(later))
    readable = sum(1 for p in later.published if p.channel != "portal_pbgdpl")
    assert data["reach"]["views"] == 10**6 * readable
    assert data["channels"]["portal_pbgdpl"]["reach"]["views"] is None
    assert data["date"] == "2024-07-05" and data["figures"] == "tính đến hết ngày 05/7/2024"


def test_reach_per_article_and_the_most_read(figures: Figures) -> None:
    report = figures.report
    per_item: dict[str, int] = {}
    titles: dict[str, str] = {}
    for p in report.published:
        v = figures.expected[p.id]
        if p.kind == "article" and v is not None:
            per_item[p.message] = per_item.get(p.message, 0) + v
            titles[p.message] = p.title
    table = next(t for t in figures.docx.tables if cells(t)[0][:2] == ["STT", "Bài viết"])
    shown = {row[1]: row[4] for row in cells(table)[1:]}
    for key, v in per_item.items():
        assert shown[titles[key]] == grouped(v), key
    best = sorted(per_item.items(), key=lambda kv: -kv[1])[:5]
    texts = [p.text for p in figures.docx.paragraphs]
    line = next(t for t in texts if t.startswith("Các bài được xem nhiều nhất: "))
    assert (
        line
        == "Các bài được xem nhiều nhất: "
        + "; ".join(f"“{titles[k]}” ({grouped(v)} lượt)" for k, v in best)
        + "."
    )


def test_three_charts_with_captions_and_descriptions(figures: Figures) -> None:
    doc = figures.docx
    assert len(doc.inline_shapes) == 3
    described = [s._inline.docPr.get("descr") for s in doc.inline_shapes]
    assert all(d and re.search(r"\d\.\d{3}", d) for d in described)
    texts = [p.text for p in doc.paragraphs]
    captions = [t for t in texts if t.startswith("Biểu đồ ")]
    assert [c.split(".")[0] for c in captions] == ["Biểu đồ 1", "Biểu đồ 2", "Biểu đồ 3"]
    assert "theo ngày" in captions[0] and "theo kênh" in captions[1]
    assert "xem nhiều nhất" in captions[2]
    page = to_html(figures.report)
    assert page.count('<img src="data:image/png;base64,') == 3
    md = to_markdown(figures.report)
    assert "data:image" not in md and md.count("*Biểu đồ ") == 3


def test_the_daily_line_is_cumulative_and_stops_at_the_date(figures: Figures) -> None:
    series = figures.report.daily
    assert set(series) == {"portal_stp", "facebook", "zalo"}  # the mail portal has no figures
    for cid, points in series.items():
        days = [d for d, _ in points]
        assert days[0] == date(2024, 6, 1) and days[-1] == JUNE_30, cid
        values = [v for _, v in points]
        assert values == sorted(values) and values[-1] > 0
        channel_sum = sum(
            v
            for p in figures.report.published
            if p.channel == cid
            for v in [figures.expected[p.id]]
            if v is not None
        )
        assert values[-1] == channel_sum, cid


def test_the_document_is_dated_without_a_clock(figures: Figures) -> None:
    doc = figures.docx
    texts = [p.text for p in doc.paragraphs]
    everything = [*texts, *(c for t in doc.tables for row in cells(t) for c in row)]
    assert not [t for t in everything if CLOCK.search(t)]
    assert "Bắc Giang, ngày 30 tháng 6 năm 2024" in cells(doc.tables[0])[1]
    assert any(t.startswith("Số liệu tính đến hết ngày 30/6/2024: đã đăng tải ") for t in texts)
    assert "(Từ ngày 01/6/2024 đến ngày 30/6/2024)" in texts
    mid = build_report(figures.june.db, figures.june.config, NOW, day=date(2024, 6, 15))
    assert not mid.final and mid.period == "(Báo cáo tiến độ: số liệu tính đến hết ngày 15/6/2024)"
    with pytest.raises(ValueError, match="after today"):
        build_report(figures.june.db, figures.june.config, NOW, day=date(2026, 12, 8))


def test_the_plans_are_cited_and_the_portal_spelled_out_once(figures: Figures) -> None:
    texts = [p.text for p in figures.docx.paragraphs]
    opening = next(t for t in texts if t.startswith("Thực hiện "))
    assert texts.index(opening) < texts.index("I. CÔNG TÁC CHỈ ĐẠO, TỔ CHỨC THỰC HIỆN")
    assert opening.endswith(
        ", Sở Tư pháp tỉnh Bắc Giang báo cáo kết quả thực hiện Tháng hành động vì trẻ em năm "
        "2024 như sau:"
    )
    assert opening.startswith(
        "Thực hiện Kế hoạch số 26/KH-UBND ngày 11/4/2024 của UBND tỉnh về tổ chức Tháng hành "
        "động vì trẻ em năm 2024; Kế hoạch số …/KH-STP"
    )
    first = next(t for t in texts if "Cổng TTĐT" in t)
    assert "Cổng thông tin điện tử (Cổng TTĐT) Sở Tư pháp" in first
    assert sum(t.count("(Cổng TTĐT)") for t in texts) == 1


def test_what_the_office_must_add_is_marked_and_highlighted(figures: Figures) -> None:
    paras = [p for p in figures.docx.paragraphs if "[Cần bổ sung]" in p.text]
    assert len(paras) >= 9
    assert all(p.runs[0].font.highlight_color == WD_COLOR_INDEX.YELLOW for p in paras)
    texts = [p.text for p in figures.docx.paragraphs]
    for heading in ("I. CÔNG TÁC CHỈ ĐẠO, TỔ CHỨC THỰC HIỆN", "IV. ĐỀ XUẤT, KIẾN NGHỊ"):
        assert texts[texts.index(heading) + 1].startswith("[Cần bổ sung]"), heading
    assert "1. Ưu điểm" in texts and "3. Nguyên nhân" in texts
    strengths = texts[texts.index("1. Ưu điểm") + 1]
    assert re.search(r"\d+/\d+ lượt đã đăng đúng giờ \(đạt [\d,]+%\)", strengths)


def test_the_appendix_follows_the_signature_with_every_post(figures: Figures) -> None:
    doc = figures.docx
    body = list(doc.element.body.iterchildren())
    signature = next(t for t in doc.tables if cells(t)[0][0].startswith("Nơi nhận:"))
    annex = next(p for p in doc.paragraphs if p.text == "PHỤ LỤC")
    assert body.index(signature._tbl) < body.index(annex._p)
    breaks = [
        e for e in body[body.index(signature._tbl) : body.index(annex._p)] if e.xpath(".//w:br")
    ]
    assert breaks and breaks[0].xpath(".//w:br")[0].get(qn("w:type")) == "page"
    listing = next(t for t in doc.tables if cells(t)[0][:2] == ["STT", "Ngày đăng"])
    assert body.index(annex._p) < body.index(listing._tbl)
    rows = cells(listing)[1:]
    assert len(rows) == len(figures.report.published)
    for row, p in zip(rows, figures.report.published, strict=True):
        v = figures.expected[p.id]
        assert row[4] == p.url and row[5] == ("Không có số liệu" if v is None else grouped(v))


def test_reach_sums_and_the_top_list_without_a_database() -> None:
    def post(pid: int, channel: str, message: str, reading: Reading | None) -> Published:
        at = datetime(2024, 6, 2, 1, 0, tzinfo=UTC)
        return Published(
            pid,
            at,
            channel,
            channel,
            message,
            "article",
            message.upper(),
            None,
            None,
            reading=reading,
        )

    posts = [
        post(1, "facebook", "a", Reading(views=5, reactions=2, shares=1)),
        post(2, "zalo", "a", Reading(views=7)),
        post(3, "zalo", "b", Reading(views=20, comments=3)),
        post(4, "portal", "b", None),
        post(5, "portal", "c", Reading(views=0)),
    ]
    assert Reach.of(posts) == Reach(posts=5, read=4, views=32, interactions=6)
    assert Reach.of(posts[3:4]) == Reach(posts=1, read=0, views=None, interactions=None)
    assert top(posts, kind="article") == [("B", 20), ("A", 12)]  # no item with 0 views


def test_the_daily_line_carries_a_reading_forward_over_days_without_one() -> None:
    tz = UTC
    snaps = [
        Snapshot(1, datetime(2024, 6, 1, 10, tzinfo=tz), Reading(views=10), None),
        Snapshot(1, datetime(2024, 6, 3, 10, tzinfo=tz), Reading(views=30), None),
        Snapshot(2, datetime(2024, 6, 2, 10, tzinfo=tz), Reading(views=5), None),
        Snapshot(3, datetime(2024, 6, 2, 10, tzinfo=tz), Reading(), "none kept"),
    ]
    out = daily(
        snaps, {1: "fb", 2: "fb", 3: "web"}, start=date(2024, 6, 1), end=date(2024, 6, 30), tz=tz
    )
    assert out == {
        "fb": (
            (date(2024, 6, 1), 10),
            (date(2024, 6, 2), 15),
            (date(2024, 6, 3), 35),
        )
    }


def test_the_command_takes_the_reports_date(campaign: Any) -> None:
    from tests.fakes import one_line_error, run

    assert run("load").exit_code == 0
    out = run("report", "--format", "md", "--date", "30/6/2024")
    assert out.exit_code == 0, out.output
    assert "*Bắc Giang, ngày 30 tháng 6 năm 2024*" in out.stdout
    assert "Số liệu tính đến hết ngày 30/6/2024: đã đăng tải 0/72 lượt" in out.stdout
    assert not CLOCK.search(out.stdout)
    error = one_line_error(run("report", "--format", "md", "--date", "2099-01-01"))
    assert error.startswith("error: --date: 01/01/2099 is after today")
    bad = run("report", "--format", "md", "--date", "31/6/2024")  # click's usage error
    assert bad.exit_code == 2 and "'31/6/2024' is not a date" in bad.stderr


def test_a_past_campaigns_report_dated_today_says_how_far_its_figures_run(
    figures: Figures,
) -> None:
    today = build_report(figures.june.db, figures.june.config, NOW)
    assert today.date_line == "Bắc Giang, ngày 07 tháng 12 năm 2026"  # signed today
    assert today.final and today.cutoff == "tính đến hết ngày 03/7/2024"  # the last reading
    assert sum(p.reading.views or 0 for p in today.published if p.reading) >= 10**6
    # Read on 1/7 with no figures recorded yet: they run to the window's end.
    assert figures.june.final.report.cutoff == "tính đến hết ngày 30/6/2024"
    on_1_7 = build_report(figures.june.db, figures.june.config, datetime(2024, 7, 1, 2, tzinfo=UTC))
    assert on_1_7.cutoff == "tính đến ngày 01/7/2024"  # read that morning: the day is not over
    assert not [p for p in on_1_7.published if p.reading and p.reading.views == 10**6]


@given(
    st.lists(
        st.tuples(
            st.integers(1, 4),  # post
            st.integers(0, 40 * 24),  # hours after 1/6 00:00 UTC
            st.integers(0, 10**6) | st.none(),  # views
        ),
        max_size=40,
    )
)
def test_the_daily_line_ends_at_each_posts_last_reading(
    readings: list[tuple[int, int, int | None]],
) -> None:
    start, end = date(2024, 6, 1), date(2024, 6, 30)
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    snaps = sorted(
        (Snapshot(pid, t0 + timedelta(hours=h), Reading(views=v), None) for pid, h, v in readings),
        key=lambda s: (s.post_id, s.taken_at),
    )
    channel = {1: "a", 2: "a", 3: "b", 4: "b"}
    out = daily(snaps, channel, start=start, end=end, tz=UTC)
    cutoff = datetime(2024, 7, 1, tzinfo=UTC)
    for cid, points in out.items():
        values = [v for _, v in points]
        assert points[0][0] == start and points[-1][0] <= end
        last: dict[int, int] = {}
        for s in snaps:  # each post's latest views taken before the line's last day ends
            close = min(
                cutoff, datetime.combine(points[-1][0] + timedelta(1), datetime.min.time(), UTC)
            )
            if channel[s.post_id] == cid and s.reading.views is not None and s.taken_at < close:
                last[s.post_id] = s.reading.views
        assert values[-1] == sum(last.values())
        assert all(v >= 0 for v in values)
    if not any(v is not None for *_, v in readings):
        assert out == {}


def test_a_post_handed_off_to_a_desk_counts_on_time_by_its_mail(figures: Figures) -> None:
    """The portal's desk published it hours after the mail went out on time: the post counts as
    on time (what publisher did), and the desk's delay is said apart, per portal."""
    from dataclasses import replace

    from publisher.documents.report_model import Para
    from publisher.documents.report_results import body

    r = figures.report
    due = datetime(2024, 6, 2, 8, 30, tzinfo=r.published[0].at.tzinfo)
    handed = replace(
        r.published[0],
        channel_name="Cổng TTĐT Phổ biến, giáo dục pháp luật",
        due_at=due,
        handed_off_at=due + timedelta(minutes=5),
        at=due + timedelta(hours=6, minutes=35),
        on_time=True,
    )
    late = replace(r.published[1], due_at=due, at=due + timedelta(hours=5), on_time=False)
    text = " ".join(
        b.text for b in body(replace(r, published=[handed, late])) if isinstance(b, Para)
    )
    assert "1/2 lượt đã đăng đúng giờ (đạt 50,0%)" in text
    assert (
        "1 lượt đăng trên Cổng TTĐT Phổ biến, giáo dục pháp luật được gửi Ban biên tập cổng qua "
        "thư điện tử: đúng giờ tính theo thời điểm gửi thư; cổng đăng tải sau trung bình 6,5 giờ."
    ) in text
