"""The report: a June run on fake platforms with refusals and downtime, then every format checked
against the queue — JSON against ``publisher status``, the DOCX read back with python-docx."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from sqlalchemy import select

from publisher.channels.base import Outgoing, Permanent
from publisher.clock import FakeClock
from publisher.config import Config, load_config
from publisher.dispatch.dispatcher import Dispatcher
from publisher.documents.report import COLUMNS, Report, build_report, long_date
from publisher.documents.report_text import render, to_html, to_json, to_markdown
from publisher.editorial.load import approve, load
from publisher.errors import ConfigError
from publisher.store.db import Database, open_database
from publisher.store.models import MessageRow, PostRow
from publisher.store.status import gather
from tests.fakes import FakePlatform

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 5, 31, tzinfo=UTC)
# Mid-campaign (a progress report), then the morning after the window (the results report).
MID = datetime(2024, 6, 15, 5, 0, tzinfo=UTC)  # 12:00 in Bắc Giang
AFTER = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)  # 09:00 on 01/7
DOWN = (datetime(2024, 6, 7, 17, 0, tzinfo=UTC), datetime(2024, 6, 9, 17, 0, tzinfo=UTC))
STATES_BY_COLUMN = {  # written out by hand, so the report's own mapping is checked
    "published": {"published"},
    "failed": {"failed"},
    "missed": {"missed"},
    "needs_review": {"needs_review"},
    "pending": {"approved", "sending", "retrying", "unconfirmed"},
    "unapproved": {"draft", "held", "rejected"},
    "cancelled": {"cancelled"},
}


@dataclass
class Snapshot:
    now: datetime
    report: Report
    data: dict[str, Any]  # to_json, parsed
    status: dict[str, Any]  # publisher.store.status.gather
    rows: list[tuple[int, str, str, str, str | None]]  # (id, channel, title, state, remote_url)
    docx: bytes


@dataclass
class June:
    config: Config
    db: Database
    refused: list[int]
    mid: Snapshot
    final: Snapshot


def snapshot(db: Database, config: Config, now: datetime) -> Snapshot:
    report = build_report(db, config, now)
    with db.read() as s:
        rows = [
            (p.id, p.channel, title, p.state, p.remote_url)
            for p, title in s.execute(
                select(PostRow, MessageRow.title).join(MessageRow).order_by(PostRow.id)
            ).all()
        ]
    data = json.loads(to_json(report))
    return Snapshot(now, report, data, gather(db, config, now), rows, render(report, "docx"))


@pytest.fixture(scope="module")
def june(tmp_path_factory: pytest.TempPathFactory) -> Iterator[June]:
    """The whole campaign approved, then published on fake platforms: two posts refused, and the
    daemon down from 8 to 10 June (those posts missed). Reported at noon on 15/6 and on 1/7."""
    root = tmp_path_factory.mktemp("june")
    for name in ("messages", "templates"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PUBLISHER_DATABASE_URL", raising=False)
        config = load_config(root / "config.toml")
    db = open_database(config.database_url)
    load(db, config, T0, "tester")
    approve(db, [], everything=True, actor="lanh.dao", now=T0)
    clock = FakeClock(T0)
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    dispatcher = Dispatcher(
        db,
        platforms,  # type: ignore[arg-type]
        clock,
        worker="w1",
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )
    with db.read() as s:
        posts = list(s.scalars(select(PostRow).order_by(PostRow.due_at, PostRow.id)))

    def refuse(_post: Outgoing) -> None:
        raise Permanent("-201 tiêu đề quá dài")

    zalo = next(p for p in posts if p.channel == "zalo")
    facebook = next(p for p in posts if p.channel == "facebook" and p.due_at and p.due_at > MID)
    for p in (zalo, facebook):
        platforms[p.channel].then(p.idempotency_key, refuse)
    mid = None
    for p in posts:
        assert p.due_at is not None
        if mid is None and p.due_at > MID:
            clock.set(MID)
            dispatcher.run_once()
            mid = snapshot(db, config, MID)
        if not DOWN[0] <= p.due_at < DOWN[1]:
            clock.set(p.due_at)
            dispatcher.run_once()
    clock.set(AFTER)
    dispatcher.run_once()
    dispatcher.close()
    assert mid is not None
    yield June(config, db, [zalo.id, facebook.id], mid, snapshot(db, config, AFTER))
    db.close()


def by_column(rows: list[tuple[int, str, str, str, str | None]], **where: str) -> Counter[str]:
    """Posts per totals column, counted straight from the rows."""
    out: Counter[str] = Counter()
    for _id, channel, title, state, _url in rows:
        if where.get("channel", channel) == channel and where.get("title", title) == title:
            col = next(c for c, states in STATES_BY_COLUMN.items() if state in states)
            out[col] += 1
            out["planned"] += col != "cancelled"
    return out


def cells(table: Any) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


@pytest.mark.parametrize("when", ["mid", "final"])
def test_json_totals_equal_status_and_the_rows(june: June, when: str) -> None:
    snap: Snapshot = getattr(june, when)
    data, status = snap.data, snap.status
    assert data["counts"] == status["counts"]
    for cid, counts in status["channels"].items():
        assert data["channels"][cid]["counts"] == counts
    assert data["totals"] == {col: by_column(snap.rows)[col] for col in COLUMNS}
    totals = data["totals"]
    assert totals["planned"] == sum(
        v for k, v in totals.items() if k not in ("planned", "cancelled")
    )
    assert (
        totals["planned"] + totals["cancelled"] == len(snap.rows) == sum(status["counts"].values())
    )
    assert totals["failed"] >= 1 and totals["missed"] >= 1 and totals["published"] >= 10
    for key, m in data["messages"].items():
        assert m["totals"] == {
            col: by_column(snap.rows, title=m["title"])[col] for col in COLUMNS
        }, key
    assert sum(m["totals"]["published"] for m in data["messages"].values()) == totals["published"]


def test_mid_campaign_is_a_progress_report(june: June) -> None:
    mid, final = june.mid, june.final
    assert not mid.report.final and mid.data["report"] == "progress"
    assert mid.report.title == "Báo cáo tiến độ thực hiện Tháng hành động vì trẻ em năm 2024"
    assert mid.data["totals"]["pending"] > 0  # the rest of June is still to come
    doc = Document(io.BytesIO(mid.docx))
    texts = [p.text for p in doc.paragraphs]
    assert "Tiến độ thực hiện Tháng hành động vì trẻ em năm 2024" in texts
    assert "(Báo cáo tiến độ: số liệu tính đến ngày 15/6/2024)" in texts
    assert not any(re.search(r"\b\d{1,2}:\d{2}\b", t) for t in texts)  # no clock time
    assert "Bắc Giang, ngày 15 tháng 6 năm 2024" in [c.text for c in doc.tables[0].rows[1].cells]
    assert final.report.final and final.data["report"] == "final"
    assert final.report.title == "Báo cáo kết quả thực hiện Tháng hành động vì trẻ em năm 2024"
    assert final.data["totals"]["pending"] == 0


def test_docx_is_the_administrative_report_and_its_numbers_are_the_queues(june: June) -> None:
    snap = june.final
    doc = Document(io.BytesIO(snap.docx))
    section = doc.sections[0]
    assert (round(section.page_width.cm, 1), round(section.page_height.cm, 1)) == (21.0, 29.7)
    assert round(section.left_margin.cm, 1) == 3.0
    assert doc.styles["Normal"].font.name == "Times New Roman"

    header = cells(doc.tables[0])
    assert header[0][0].split("\n")[:2] == ["UBND TỈNH BẮC GIANG", "SỞ TƯ PHÁP"]
    assert header[0][1].split("\n")[:2] == [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
    ]
    number, place_date = header[1]
    assert number.startswith("Số:") and number.endswith("/BC-STP")
    assert number[3:-7].strip() == ""  # the clerk writes the number in
    assert place_date == "Bắc Giang, ngày 01 tháng 7 năm 2024"
    assert doc.tables[0].rows[1].cells[1].paragraphs[0].runs[0].italic

    texts = [p.text for p in doc.paragraphs]
    title = texts.index("BÁO CÁO")
    assert texts[title + 1] == "Kết quả thực hiện Tháng hành động vì trẻ em năm 2024"
    assert doc.paragraphs[title].runs[0].bold
    for heading in (
        "I. CÔNG TÁC CHỈ ĐẠO",
        "II. KẾT QUẢ THỰC HIỆN",
        "III. ĐÁNH GIÁ",
        "IV. ĐỀ XUẤT",
        "PHỤ LỤC",
    ):
        assert any(t.startswith(heading) for t in texts), heading
    assert texts.index("IV. ĐỀ XUẤT, KIẾN NGHỊ") < texts.index("PHỤ LỤC")

    # The totals per channel, read back, are the queue's; a workflow column only where it is
    # not zero, and none named "Kế hoạch".
    channel_table = next(t for t in doc.tables if cells(t)[0][:2] == ["STT", "Kênh"])
    head, *rows, total = cells(channel_table)
    label = {v: k for k, v in COLUMNS.items()}
    shown = [label[h] for h in head[2:-2]]
    assert shown[:2] == ["planned", "published"] and "Kế hoạch" not in head
    assert head[-2:] == ["Lượt tiếp cận", "Lượt tương tác"]
    everything = by_column(snap.rows)
    assert set(shown[2:]) == {c for c in list(COLUMNS)[2:] if everything[c]}
    names = {ch.name: cid for cid, ch in june.config.channels.items()}
    for row in rows:
        expected = by_column(snap.rows, channel=names[row[1]])
        assert [int(n) for n in row[2:-2]] == [expected[c] for c in shown], row[1]
    assert total[1] == "Tổng cộng"
    assert [int(n) for n in total[2:-2]] == [everything[c] for c in shown]
    assert [int(n) for n in total[2:-2]] == [snap.data["totals"][c] for c in shown]
    assert dict(zip(shown, map(int, total[2:-2]), strict=True))["published"] == sum(
        1 for r in snap.rows if r[3] == "published"
    )

    # Every published post is listed, with its link as a real hyperlink.
    links = {
        h.url
        for t in doc.tables
        for row in t.rows
        for c in row.cells
        for p in c.paragraphs
        for h in p.hyperlinks
    }
    published = [r for r in snap.rows if r[3] == "published"]
    assert published and all(url and url in links for *_, url in published)
    listing = next(t for t in doc.tables if cells(t)[0][:2] == ["STT", "Ngày đăng"])
    assert len(listing.rows) == 1 + len(published)
    assert {r[4] for r in cells(listing)[1:]} == {url for *_, url in published}

    # The problems, with their reasons: both refusals and the posts missed during the downtime.
    problems = next(t for t in doc.tables if cells(t)[0][:2] == ["STT", "Ngày dự kiến"])
    reasons = [r[5] for r in cells(problems)[1:]]
    assert sum("nền tảng trả lời: “-201 tiêu đề quá dài”" in r for r in reasons) == 2
    missed = sum(1 for r in snap.rows if r[3] == "missed")
    assert missed and sum(r[4] == "Quá giờ, không đăng" for r in cells(problems)[1:]) == missed
    words = " ".join([*texts, *(c for t in doc.tables for row in cells(t) for c in row)])
    for wrong in ("bị lỡ", "Bị lỡ", "refused", "Thất bại", "Không có.", "Kế hoạch\n"):
        assert wrong not in words, wrong

    footer = next(cells(t)[0] for t in doc.tables if cells(t)[0][0].startswith("Nơi nhận:"))
    assert footer[0].split("\n") == [
        "Nơi nhận:",
        "- Sở LĐ-TB&XH;",
        "- Lãnh đạo Sở;",
        "- Lưu: VT, PB&TDTHPL.",
    ]
    signature = [line for line in footer[1].split("\n") if line]
    assert signature == ["KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC", "Lê Anh Tuấn"]


def test_problems_cover_status_problems_with_the_recorded_cause(june: June) -> None:
    snap = june.final
    ids = {p["id"] for p in snap.data["problems"]}
    assert {p["id"] for p in snap.status["problems"]} <= ids
    assert set(june.refused) <= ids
    refused = [p for p in snap.data["problems"] if p["id"] in june.refused]
    assert all(p["state"] == "failed" and "-201 tiêu đề quá dài" in p["detail"] for p in refused)
    assert all("từ chối" in p["reason"] for p in refused)
    missed = [p for p in snap.data["problems"] if p["state"] == "missed"]
    assert missed and all(DOWN[0] <= datetime.fromisoformat(p["due_at"]) < DOWN[1] for p in missed)


def test_markdown_and_html_carry_the_same_tables_and_links(june: June) -> None:
    snap = june.final
    md, page = to_markdown(snap.report), to_html(snap.report)
    assert (
        "| STT | Kênh | Theo lịch | Đã đăng | Không thành công | Quá giờ, không đăng "
        "| Lượt tiếp cận | Lượt tương tác |"
    ) in md
    assert "| STT | Ngày đăng | Kênh | Tiêu đề | Đường dẫn | Lượt tiếp cận | Lượt tương tác |" in md
    total = snap.data["totals"]
    assert f"| **Tổng cộng** | **{total['planned']}** | **{total['published']}** |" in md
    # Nothing was read from the platforms here: the reach is "no figures", never a zero.
    assert "| **Không có số liệu** | **Không có số liệu** |" in md
    assert "**Nơi nhận:**" in md and "**Lê Anh Tuấn**" in md
    for *_, url in (r for r in snap.rows if r[3] == "published"):
        assert f"<{url}>" in md
        assert f'<a href="{url}">' in page
    assert page.startswith("<!DOCTYPE html>") and '<html lang="vi">' in page
    assert "<script" not in page


def test_html_markdown_and_docx_escape_what_they_print(june: June) -> None:
    evil = '<script>alert("x")</script> & <b>đậm</b> | [a](javascript:alert(1)) \x07'
    report = june.final.report
    first = replace(report.published[0], title=evil, url="javascript:alert(1)")
    report = replace(report, published=(first, *report.published[1:]))
    page = to_html(report)
    assert "<script>" not in page and "<b>đậm" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;đậm" in page
    assert 'href="javascript' not in page
    md = to_markdown(report)
    assert r"\<script\>" in md and "<javascript:" not in md and r"\| \[a\]" in md
    doc = Document(io.BytesIO(render(report, "docx")))
    listing = next(t for t in doc.tables if cells(t)[0][:2] == ["STT", "Ngày đăng"])
    row = listing.rows[1].cells
    assert row[3].text == evil.replace("\x07", "")
    assert row[4].text == "javascript:alert(1)" and not row[4].paragraphs[0].hyperlinks


def test_names_on_the_document_come_from_the_config(campaign: Path, db: Database) -> None:
    path = campaign / "config.toml"
    text = path.read_text("utf-8")
    for old, new in (
        ('authority = "UBND TỈNH BẮC GIANG"', 'authority = "UBND TỈNH BẮC NINH"'),
        ('place = "Bắc Giang"', 'place = "Bắc Ninh"'),
        ('number = ""', 'number = "125"'),
        ('signer = "Lê Anh Tuấn"', 'signer = "Nguyễn Văn An"'),
        ('signature = ["KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC"]', 'signature = ["GIÁM ĐỐC"]'),
        ("proposals = []", 'proposals = ["Đề nghị tiếp tục đăng tải trong tháng 7."]'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, "utf-8")
    config = load_config(path)
    load(config=config, db=db, now=T0, actor="tester")  # drafts only: nothing approved yet
    report = build_report(db, config, datetime(2024, 6, 5, 1, 0, tzinfo=UTC))
    doc = Document(io.BytesIO(render(report, "docx")))
    header = cells(doc.tables[0])
    assert header[0][0].startswith("UBND TỈNH BẮC NINH\n")
    assert header[1] == ["Số: 125/BC-STP", "Bắc Ninh, ngày 05 tháng 6 năm 2024"]
    assert [x for x in cells(doc.tables[-1])[0][1].split("\n") if x] == [
        "GIÁM ĐỐC",
        "Nguyễn Văn An",
    ]
    texts = [p.text for p in doc.paragraphs]
    proposals = texts.index("IV. ĐỀ XUẤT, KIẾN NGHỊ")
    assert texts[proposals + 1] == "Đề nghị tiếp tục đăng tải trong tháng 7."
    assert "Chưa có khẩu hiệu, tin, bài nào được đăng." in texts
    # Before anything is published the drafts past their time are counted in one sentence,
    # not listed one by one, and nothing in English.
    assert not any(cells(t)[0][:2] == ["STT", "Ngày dự kiến"] for t in doc.tables)
    limits = texts[texts.index("2. Tồn tại, hạn chế") + 1]
    assert "đến giờ đăng nhưng bài chưa được phê duyệt (" in limits
    assert not re.search(r"\b(the|draft|load|by|not)\b", " ".join(texts))
    # Nothing approved: every planned post counts as not approved; those past due are problems.
    totals = json.loads(to_json(report))["totals"]
    assert totals["unapproved"] == totals["planned"] > 0 and totals["published"] == 0
    assert report.problems and all(p.state == "draft" for p in report.problems)
    assert all(
        p.due_at and p.due_at <= datetime(2024, 6, 5, 8, 0, tzinfo=config.tz)
        for p in report.problems
    )


def test_shipped_proposals_are_left_for_the_drafter(june: June) -> None:
    doc = Document(io.BytesIO(june.final.docx))
    todo = next(p for p in doc.paragraphs if "Cần bổ sung" in p.text)
    assert todo.runs[0].font.highlight_color is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recipients = [", "report.recipients: must be a list of non-empty strings"),
        ("signer = ", "report.signer: must be a string, not an integer"),
        ("[report]\n", "report.signer_name: is not a known key"),
        ("plans = [", "report.plans: must be a list of non-empty strings"),
        (
            "proposals = []",
            "report.basis: is no longer used: the opening is written from the plans",
        ),
    ],
)
def test_report_config_is_validated(tmp_path: Path, text: str, expected: str) -> None:
    shipped = (ROOT / "config.toml").read_text("utf-8")
    bad = {
        "recipients = [": 'recipients = ["", ',
        "signer = ": "signer = 7 #",
        "[report]\n": '[report]\nsigner_name = "x"\n',
        "plans = [": 'plans = [" ", ',
        "proposals = []": 'basis = "Thực hiện Kế hoạch…"\nproposals = []',
    }[text]
    assert text in shipped
    path = tmp_path / "config.toml"
    path.write_text(shipped.replace(text, bad, 1), "utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_progress_is_reported_step_by_step(june: June) -> None:
    seen: list[tuple[int, int]] = []
    build_report(
        june.db, june.config, AFTER, progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1][0] == seen[-1][1] == len(june.final.rows) + 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    steps: list[int] = []
    render(june.final.report, "docx", progress=lambda done, total: steps.append(done))
    assert steps and steps == sorted(steps)


def test_dates_follow_the_administrative_rules() -> None:
    assert long_date(date(2024, 7, 1)) == "ngày 01 tháng 7 năm 2024"
    assert long_date(date(2025, 2, 5)) == "ngày 05 tháng 02 năm 2025"
    assert long_date(date(2024, 12, 28)) == "ngày 28 tháng 12 năm 2024"


def test_unknown_format_and_naive_time_are_refused(june: June) -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(june.final.report, "pdf")
    with pytest.raises(ValueError, match="aware"):
        build_report(june.db, june.config, datetime(2024, 7, 1))  # noqa: DTZ001 - the point
