"""The office's entries for the report in messages/report.toml: parsed and checked (one line per
mistake), stored by ``publisher load`` (source "file"), shown by the report, and the shipped
example leaves every place marked "[Cần bổ sung]"."""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from docx import Document

from publisher.config import Config, load_config
from publisher.documents.report import build_report
from publisher.documents.report_text import render, to_markdown
from publisher.editorial.load import load
from publisher.errors import Problems
from publisher.report_entries import BY_KEY, ENTRIES, FILE, parse
from publisher.store.db import Database
from publisher.store.report_entries import entries, put
from tests.fakes import run

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 5, 31, tzinfo=UTC)
AFTER = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)
WHERE = "messages/report.toml"

FILLED = """
[direction]
text = \"\"\"Lãnh đạo Sở đã chỉ đạo các phòng, đơn vị triển khai Kế hoạch.

Văn phòng Sở theo dõi, đôn đốc.\"\"\"

[gifts]
children = 1250
value = "25.000.000"

[fund]
amount = 12_500_000
donors = 86
"""


def test_the_shipped_example_sets_nothing_and_names_every_entry() -> None:
    text = (ROOT / "messages" / FILE).read_text("utf-8")
    assert parse(text, WHERE) == ({}, [])
    for spec in ENTRIES:  # every key is there, commented out, for the office to fill in
        table, name = spec.key.split(".")
        assert f"[{table}]" in text and f"# {name} = " in text, spec.key


def test_values_are_read_as_the_office_writes_them() -> None:
    decomposed = unicodedata.normalize("NFD", "Công đoàn Sở đã tặng quà.")
    values, problems = parse(FILLED + f'text = "{decomposed}"\n[office]\ntext = "  "\n', WHERE)
    assert problems == []
    assert values["gifts.children"] == "1250"
    assert values["gifts.value"] == "25000000"  # grouped with dots, as written in Vietnamese
    assert values["fund.amount"] == "12500000"  # TOML's own grouping
    assert values["fund.text"] == unicodedata.normalize("NFC", decomposed)
    assert "office.text" not in values  # blank: still to be written
    assert set(values) <= set(BY_KEY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[gift]\nchildren = 3\n",
            "messages/report.toml: [gift] is not a known table (did you mean [gifts]?)",
        ),
        (
            "[gifts]\nchildrens = 3\n",
            "messages/report.toml: gifts.childrens is not a known key (did you mean gifts.children?)",
        ),
        (
            '[gifts]\nchildren = "nhiều"\n',
            "messages/report.toml: gifts.children must be a whole number, not 'nhiều'",
        ),
        ("[gifts]\nchildren = 2.5\n", "gifts.children must be a whole number, not 2.5"),
        ("[gifts]\nchildren = true\n", "gifts.children must be a whole number, not True"),
        ("[fund]\namount = -500000\n", "messages/report.toml: fund.amount must not be negative"),
        ('[fund]\namount = "-500.000"\n', "fund.amount must not be negative"),
        (
            '[fund]\namount = "năm triệu"\n',
            "fund.amount must be an amount in đồng, not 'năm triệu'",
        ),
        ("[proposals]\ntext = 3\n", "proposals.text must be text in quotes"),
        ("gifts = 3\n", "gifts must be a table (write [gifts])"),
        ("[gifts\nchildren = 3\n", "messages/report.toml: is not valid TOML"),
    ],
)
def test_each_mistake_is_one_line_naming_the_file_and_key(text: str, expected: str) -> None:
    values, problems = parse(text, WHERE)
    assert values == {}
    assert len(problems) == 1
    line = problems[0].line()
    assert expected in line and "\n" not in line


def test_several_mistakes_are_all_reported_and_the_good_values_kept() -> None:
    values, problems = parse('[gifts]\nchildren = -1\nvalue = 100\n[fund]\ndonors = "x"\n', WHERE)
    assert values == {"gifts.value": "100"}
    assert [p.line().split(": ", 1)[1].split(" ", 1)[0] for p in problems] == [
        "gifts.children",
        "fund.donors",
    ]


def _report_text(db: Database, campaign: Path) -> list[str]:
    config = load_config(campaign / "config.toml")
    doc = Document(io.BytesIO(render(build_report(db, config, AFTER), "docx")))
    return [p.text for p in doc.paragraphs]


def test_load_stores_the_file_and_the_report_shows_it(campaign: Path, db: Database) -> None:
    config = load_config(campaign / "config.toml")
    texts = _report_text(db, campaign)
    todo = [t for t in texts if "[Cần bổ sung]" in t]
    assert len(todo) >= 9  # I, 2.1, 2.4 and 2.5 (figures and text), III ×3, IV
    (campaign / "messages" / FILE).write_text(FILLED, "utf-8")
    report = load(db, config, T0, "tester")
    assert report.entries == 5 and report.changed
    with db.read() as s:
        stored = entries(s)
    assert {k: e.value for k, e in stored.items()} == {
        "direction.text": "Lãnh đạo Sở đã chỉ đạo các phòng, đơn vị triển khai Kế hoạch.\n\n"
        "Văn phòng Sở theo dõi, đôn đốc.",
        "gifts.children": "1250",
        "gifts.value": "25000000",
        "fund.amount": "12500000",
        "fund.donors": "86",
    }
    assert all(e.source == "file" and e.set_by == "tester" for e in stored.values())
    assert load(db, config, T0, "tester").entries == 0  # loading again changes nothing

    texts = _report_text(db, campaign)
    direction = texts.index("I. CÔNG TÁC CHỈ ĐẠO, TỔ CHỨC THỰC HIỆN")
    assert texts[direction + 1 : direction + 3] == [
        "Lãnh đạo Sở đã chỉ đạo các phòng, đơn vị triển khai Kế hoạch.",
        "Văn phòng Sở theo dõi, đôn đốc.",
    ]
    assert (
        "Số trẻ em được tặng quà, trao thưởng: 1.250 cháu; tổng giá trị quà, phần thưởng: "
        "25.000.000 đồng." in texts
    )
    assert (
        "Số tiền công chức, viên chức, người lao động ủng hộ Quỹ Bảo trợ trẻ em: 12.500.000 "
        "đồng; số người ủng hộ: 86." in texts
    )
    assert "[Cần bổ sung] Hoạt động truyền thông tại cơ quan." in texts  # 2.1: still missing


def test_an_entry_taken_out_of_the_file_is_cleared_but_the_web_forms_stay(
    campaign: Path, db: Database
) -> None:
    config = load_config(campaign / "config.toml")
    path = campaign / "messages" / FILE
    path.write_text(FILLED, "utf-8")
    load(db, config, T0, "tester")
    with db.write() as s:
        put(s, "proposals.text", "Đề nghị tiếp tục.", source="web", by="bientap", now=T0)
    path.write_text(FILLED.replace("donors = 86", "# donors = 86"), "utf-8")
    assert load(db, config, T0, "tester").entries == 1
    with db.read() as s:
        stored = entries(s)
    assert "fund.donors" not in stored
    assert (
        stored["proposals.text"].value == "Đề nghị tiếp tục."
        and stored["proposals.text"].source == "web"
    )
    md = to_markdown(build_report(db, config, AFTER))
    assert "số người ủng hộ: \\[Cần bổ sung\\]." in md
    assert "Đề nghị tiếp tục." in md


def test_a_bad_file_stops_load_with_nothing_written(campaign: Path, db: Database) -> None:
    config = load_config(campaign / "config.toml")
    (campaign / "messages" / FILE).write_text("[fund]\namount = -5\n", "utf-8")
    with pytest.raises(Problems, match=r"report.toml: fund.amount must not be negative"):
        load(db, config, T0, "tester")
    with db.read() as s:
        assert entries(s) == {}
    assert "Chưa có khẩu hiệu" in " ".join(_report_text(db, campaign))


def test_check_lists_the_files_mistakes_and_counts_the_entries(campaign: Path) -> None:
    ok = run("check")
    assert ok.exit_code == 0, ok.output
    assert "report: 0 of 12 entries filled in report.toml" in ok.stdout
    (campaign / "messages" / FILE).write_text('[gifts]\nchildren = "nhiều"\nvalue = -1\n', "utf-8")
    bad = run("check")
    assert bad.exit_code == 1
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: messages/report.toml: gifts.children must be a whole number, not 'nhiều' "
        "(2.4. Số trẻ em được tặng quà, trao thưởng)",
        "error: messages/report.toml: gifts.value must not be negative "
        "(2.4. Tổng giá trị quà, phần thưởng (đồng))",
    ]
    loaded = run("load")
    assert loaded.exit_code == 1 and "gifts.children must be a whole number" in loaded.stderr


def test_the_offices_text_is_printed_as_text(campaign: Path, db: Database) -> None:
    from publisher.documents.report_text import to_html

    config = load_config(campaign / "config.toml")
    evil = '<script>alert("x")</script> **đậm** [a](javascript:alert(1))'
    with db.write() as s:
        put(s, "direction.text", evil, source="web", by="bientap", now=T0)
    report = build_report(db, config, AFTER)
    page = to_html(report)
    assert "<script>" not in page and "<strong>đậm" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;" in page
    doc = Document(io.BytesIO(render(report, "docx")))
    assert evil in [p.text for p in doc.paragraphs]


def test_check_warns_of_a_cited_plan_with_places_to_fill(config: Config) -> None:
    """The shipped config cites the Department's plan as "…/KH-STP ngày …/4/2024" until it is
    signed: ``check`` warns (not a problem); written in, nothing is said."""
    from dataclasses import replace
    from datetime import date

    from publisher.editorial.check import report_warnings, run_check

    [warning] = report_warnings(config)
    assert "report.plans" in warning and "…/KH-STP" in warning
    assert warning in run_check(config, today=date(2024, 5, 20)).warnings
    signed = tuple(
        p.replace("…/KH-STP", "35/KH-STP").replace("…/4", "18/4") for p in config.report.plans
    )
    assert report_warnings(replace(config, report=replace(config.report, plans=signed))) == []
