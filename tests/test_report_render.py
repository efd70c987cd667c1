"""The Word report seen as pages: a report of a finished campaign with its charts and appendix is
rendered by docs/render-report.sh (LibreOffice to PDF, poppler to PNG) and checked as an official
would see it — how many pages, the charts drawn on them (not blank, within the margins, each with
its "Biểu đồ N." caption on the same page), the appendix's header row on each of its pages, and the
Vietnamese headings read back from the PDF (pdftotext)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from docx import Document as DocxDocument
from docx.oxml.ns import qn
from PIL import Image

from publisher.config import Config
from publisher.documents import charts, report_docx
from publisher.documents.report import Figure, Report, Table, body, build_report
from publisher.editorial.load import load
from publisher.metrics import Reading
from publisher.store import metrics
from publisher.store.db import Database
from publisher.store.models import PostRow
from tests.fakes import set_state

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "render-report.sh"
TOOLS = ("soffice", "pdftoppm", "pdftotext", "pdfinfo")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
# Skipped on a developer's machine without them; under CI (which installs them) never skipped.
needs_tools = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"),
    reason=f"{', '.join(MISSING)} not installed (apt-get install libreoffice-writer-nogui "
    "poppler-utils fonts-dejavu; .ci/run does)",
)
DPI = 60  # enough to see a chart; small PNGs
A4_MM = (210, 297)


def published_campaign(db: Database, config: Config) -> datetime:
    """The seed campaign loaded, every dated post published at its time with a link, and daily
    figures for each (growing with the post's age); the moment just after the campaign."""
    load(db, config, datetime(2024, 5, 20, tzinfo=UTC), "vanphong")
    with db.read() as s:
        posts = [(p.id, p.due_at, p.channel) for p in s.query(PostRow) if p.due_at is not None]
    end = datetime(2024, 7, 1, 1, tzinfo=UTC)
    for n, (pid, due, channel) in enumerate(posts):
        at = due.replace(tzinfo=due.tzinfo or UTC)
        set_state(
            db,
            pid,
            at,
            "published",
            "published (test)",
            remote_id=f"{channel}-{pid}",
            remote_url=f"https://{channel}.example.gov.vn/bai-viet/{pid}-thang-hanh-dong",
            published_at=at,
        )
        with db.write() as s:
            day, views = at + timedelta(hours=20), 0
            while day < end:
                views += 40 + (pid * 37 + n) % 260
                reading = Reading(views=views, reactions=views // 12, shares=views // 40)
                metrics.record(s, pid, reading, day)
                day += timedelta(days=1)
    return end


def with_figures(r: Report) -> list[object]:
    """The report's body, with charts of its own data when the body has none of its own."""
    blocks = body(r)
    if any(isinstance(b, Figure) for b in blocks):
        return list(blocks)
    days = [(date(2024, 6, d), 100 * d + (d * 37) % 300) for d in range(1, 31)]
    per_channel = [(c.label, 1000 + 250 * i) for i, c in enumerate(r.channels)]
    daily = charts.daily({"Lượt xem": days}, title="Lượt xem theo ngày", unit="lượt xem")
    bars = charts.bars(per_channel, title="Lượt xem theo kênh", unit="lượt xem")
    figures = [
        Figure(daily, "Biểu đồ 1. Lượt xem theo ngày", "Đường biểu diễn lượt xem theo ngày"),
        Figure(bars, "Biểu đồ 2. Lượt xem theo kênh", "Cột: lượt xem của mỗi kênh"),
    ]
    at = next(i for i, b in enumerate(blocks) if isinstance(b, Table))
    return [*blocks[:at], *figures, *blocks[at:]]


@pytest.fixture
def rendered(
    db: Database, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[Path], str, Report]:
    """The report after the campaign, rendered: its PDF, its pages as PNG, the PDF's text."""
    end = published_campaign(db, config)
    r = build_report(db, config, end)
    monkeypatch.setattr(report_docx, "body", with_figures)
    docx = tmp_path / "bao-cao.docx"
    docx.write_bytes(report_docx.docx_bytes(r))
    out = subprocess.run(
        ["bash", str(SCRIPT), str(docx), str(tmp_path / "pages"), str(DPI)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.split()
    pdf, pngs = Path(out[0]), [Path(p) for p in out[1:]]
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return pdf, pngs, text, r


def pages_of(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    found = re.search(r"^Pages:\s+(\d+)", info.stdout, re.M)
    assert found is not None
    return int(found[1])


def charts_on(png: Path) -> list[tuple[int, int, int, int]]:
    """The charts drawn on a page, as boxes (left, top, right, bottom) in pixels: tall, wide bands
    of coloured pixels (a chart's lines and bars; text is black, a link's colour is a narrow
    column of short lines)."""
    with Image.open(png) as opened:
        img = opened.convert("RGB")
    w, h = img.size
    px = img.load()
    assert px is not None
    rows: dict[int, tuple[int, int]] = {}
    for y in range(h):
        xs = [x for x in range(w) if max(px[x, y]) - min(px[x, y]) > 60]
        if xs:
            rows[y] = (xs[0], xs[-1])
    boxes: list[tuple[int, int, int, int]] = []
    for y in sorted(rows):
        left, right = rows[y]
        if boxes and y - boxes[-1][3] <= 0.15 * DPI:  # a caption (black) parts two charts
            b = boxes[-1]
            boxes[-1] = (min(b[0], left), b[1], max(b[2], right), y)
        else:
            boxes.append((left, y, right, y))
    return [b for b in boxes if b[3] - b[1] > 0.8 * DPI and b[2] - b[0] > 0.4 * w]


@needs_tools
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_report_renders_to_pages_with_its_charts_and_vietnamese_text(
    rendered: tuple[Path, list[Path], str, Report],
) -> None:
    pdf, pngs, text, r = rendered
    pages = pages_of(pdf)
    assert [p.name for p in pngs] == [f"page-{n}.png" for n in range(1, pages + 1)]
    # the seed's 72 posts in the appendix: a few pages of body, a few of appendix, no more
    assert 4 <= pages <= 14, pages
    for png in pngs:
        with Image.open(png) as img:  # A4 portrait at DPI
            assert abs(img.size[0] - A4_MM[0] * DPI / 25.4) < 3
            assert abs(img.size[1] - A4_MM[1] * DPI / 25.4) < 3
    # the charts: tall, wide boxes of colour, inside the text block (left margin 3 cm, right 2 cm)
    charts_seen = [(n, box) for n, png in enumerate(pngs, 1) for box in charts_on(png)]
    for _n, (left, _top, right, _bottom) in charts_seen:
        assert left >= 3 / 2.54 * DPI - 2 and right <= (21 - 2) / 2.54 * DPI + 2
    figures = sum(1 for b in report_docx.body(r) if isinstance(b, Figure))
    assert len(charts_seen) == figures >= 2, charts_seen
    # read back: the headings in Vietnamese, every diacritic intact
    flat = " ".join(text.split())
    for heading in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "BÁO CÁO",
        "Tháng hành động vì trẻ em năm 2024",
        "Nơi nhận:",
    ):
        assert heading in flat, heading
    captions = re.findall(r"Biểu đồ (\d+)\.", flat)
    assert captions == [str(i) for i in range(1, len(captions) + 1)] and len(captions) == figures
    # each caption on the page of its chart: the page's text has both
    per_page = text.split("\f")
    for n, _box in charts_seen:
        assert "Biểu đồ" in per_page[n - 1], n
    # the appendix's table: its header row again on every page it runs over
    header = "Đường dẫn"
    table_pages = [i for i, p in enumerate(per_page) if "https://" in p]
    assert len(table_pages) >= 2
    for i in table_pages:
        assert header in per_page[i], i


def test_a_chart_is_as_wide_as_the_text_and_kept_with_its_numbered_caption() -> None:
    wide = charts.bars([("Cổng TTĐT Sở Tư pháp", 1200), ("Zalo OA", 800)], title="", unit="")
    tall = charts.bars([(f"Bài {i}", 100 * i) for i in range(40)], title="", unit="")
    doc = DocxDocument()
    report_docx._page(doc)
    lead = report_docx._para(doc, "Lượt xem theo kênh như sau:", indent=True)
    report_docx._figure(doc, Figure(wide, "Biểu đồ 1. Lượt xem theo kênh", "Hai cột"))
    report_docx._figure(doc, Figure(tall, "Biểu đồ 2. Bốn mươi bài", "Bốn mươi cột"))
    first, second = doc.inline_shapes
    assert first.width == report_docx.TEXT_WIDTH
    assert second.height <= report_docx.FIGURE_HEIGHT + 2 and second.width < first.width
    assert first._inline.docPr.get("descr") == "Hai cột"
    paragraphs = doc.paragraphs
    assert lead.paragraph_format.keep_with_next  # the sentence leading to it stays with it
    picture, caption = paragraphs[1], paragraphs[2]
    assert picture.paragraph_format.keep_with_next and picture.paragraph_format.keep_together
    assert [(r.text, r.bold, r.italic) for r in caption.runs] == [
        ("Biểu đồ 1.", True, None),
        (" Lượt xem theo kênh", None, True),
    ]
    assert not caption.paragraph_format.keep_with_next  # a caption is not tied to the next chart


def test_table_columns_fill_the_text_width_and_fit_their_words() -> None:
    headers = ("STT", "Kênh", "Theo lịch", "Đã đăng", "Lượt xem")
    rows = tuple((str(i), f"Kênh số {i}", "20", "20", "1.234.567") for i in range(1, 40))
    block = Table(headers, rows, (0.5, 6.0, 1.0, 1.0, 1.0))
    widths = report_docx.column_widths(block)
    assert sum(widths) == report_docx.TEXT_WIDTH
    stt, _name, _plan, _done, views = widths
    assert stt.cm >= 1.0 and views.cm >= 1.8  # "STT" and "1.234.567" unbroken at 11 pt
    doc = DocxDocument()
    report_docx._grid(doc, block)
    table = doc.tables[0]
    header = table.rows[0]._tr.trPr
    assert header is not None and header.find(qn("w:tblHeader")) is not None
    assert all(r._tr.trPr.find(qn("w:cantSplit")) is not None for r in table.rows[1:])
    # a long table runs over pages; a short one keeps its rows together
    assert not any(p.paragraph_format.keep_with_next for p in table.rows[5].cells[0].paragraphs)
    short = Table(headers, rows[:4], (0.5, 6.0, 1.0, 1.0, 1.0))
    report_docx._grid(doc, short)
    kept = [r.cells[0].paragraphs[0].paragraph_format.keep_with_next for r in doc.tables[1].rows]
    assert kept == [True, True, True, True, False]
