"""The web app's /report page (publisher.web.report_form): the office's entries as a form — who
may save them, CSRF, each field checked with a one-line Vietnamese reason naming it, saved with
who and when and audited, a note on values from report.toml — and the report's downloads for a
date (DOCX, HTML, Markdown)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from docx import Document
from fastapi.testclient import TestClient
from sqlalchemy import select

from publisher.config import Config
from publisher.report_entries import ENTRIES
from publisher.store import report_entries
from publisher.store.db import Database
from publisher.store.models import AuditEntry
from publisher.web import report_form
from tests.test_web import app_db as app_db  # a fixture, shared with test_web.py
from tests.test_web import member

Board = tuple[Database, Config]
SEEN = re.compile(r'name="seen\.([a-z.]+)" value="([0-9a-f]+)"')


def form_of(page: str, csrf: str, **values: str) -> dict[str, str]:
    """What the page's form sends: each field's digest as shown, the values given."""
    data = {f"seen.{k}": v for k, v in SEEN.findall(page)}
    data["csrf_token"] = csrf
    data.update({k.replace("__", "."): v for k, v in values.items()})
    return data


def stored(db: Database) -> dict[str, report_entries.Entry]:
    with db.read() as s:
        return report_entries.entries(s)


def audited(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "report_entry"))
        return [(a.actor, a.subject, a.detail) for a in rows]


def test_the_page_shows_every_entry_and_the_navigation_links_to_it(app_db: Board) -> None:
    c, _csrf = member(app_db, "bientap")
    page = c.get("/report")
    assert page.status_code == 200
    assert '<a href="/report" aria-current="page">Báo cáo</a>' in page.text
    for spec in ENTRIES:
        assert spec.label in page.text, spec.key
        assert f'name="{spec.key}"' in page.text
    assert page.text.count("<textarea") == sum(e.kind == "text" for e in ENTRIES)
    assert 'name="csrf_token"' in page.text
    assert 'type="date"' in page.text and 'formaction="/report.md"' in page.text
    assert "Lưu" in page.text
    assert f"Còn {len(ENTRIES)}/{len(ENTRIES)} mục chưa nhập." in page.text


def test_an_editor_saves_figures_and_text_with_who_and_when_and_the_audit(app_db: Board) -> None:
    db, _config = app_db
    c, csrf = member(app_db, "bientap")
    page = c.get("/report").text
    sent = form_of(
        page,
        csrf,
        gifts__children="1.250",
        gifts__value="150.000.000 đồng",
        fund__donors="312",
        proposals__text="Đề nghị Sở LĐ-TB&XH tiếp tục phối hợp.\r\nTổ chức tập huấn.",
    )
    r = c.post("/report", data=sent)
    assert (r.status_code, r.headers["location"]) == (303, "/report")
    found = stored(db)
    assert found["gifts.children"].value == "1250"
    assert found["gifts.value"].value == "150000000"
    assert found["fund.donors"].value == "312"
    assert (
        found["proposals.text"].value == "Đề nghị Sở LĐ-TB&XH tiếp tục phối hợp.\nTổ chức tập huấn."
    )
    assert {e.source for e in found.values()} == {"web"}
    assert {e.set_by for e in found.values()} == {"Ban biên tập"}
    assert "fund.amount" not in found  # left empty: still "[Cần bổ sung]" in the report
    assert sorted(audited(db)) == sorted(
        [
            ("Ban biên tập", "gifts.children", "1250"),
            ("Ban biên tập", "gifts.value", "150000000"),
            ("Ban biên tập", "fund.donors", "312"),
            ("Ban biên tập", "proposals.text", found["proposals.text"].value),
        ]
    )
    shown = c.get("/report").text
    assert "Đã lưu 4 mục số liệu của báo cáo." in shown
    assert 'value="150.000.000"' in shown and 'value="1.250"' in shown
    assert "Do Ban biên tập nhập lúc" in shown
    assert f"Còn {len(ENTRIES) - 4}/{len(ENTRIES)} mục chưa nhập." in shown
    # sent again unchanged (as shown, grouped): nothing stored, nothing audited
    again = c.post("/report", data=form_of(shown, csrf, gifts__children="1.250"))
    assert again.status_code == 303
    assert len(audited(db)) == 4
    assert "Không có thay đổi." in c.get("/report").text


def test_unchanged_form_says_so_and_a_cleared_field_is_removed(app_db: Board) -> None:
    db, _config = app_db
    c, csrf = member(app_db, "tuan.la")  # an approver may too
    page = c.get("/report").text
    c.post("/report", data=form_of(page, csrf, fund__amount="2000000"))
    assert stored(db)["fund.amount"].set_by == "Lê Anh Tuấn"
    page = c.get("/report").text
    r = c.post("/report", data=form_of(page, csrf, fund__amount=""))
    assert r.status_code == 303 and "fund.amount" not in stored(db)
    assert [a[1:] for a in audited(db)] == [("fund.amount", "2000000"), ("fund.amount", "")]
    # a form without a field leaves it alone
    c.post("/report", data=form_of(c.get("/report").text, csrf, fund__donors="5"))
    c.post("/report", data={"csrf_token": csrf, "fund.amount": "7"})
    assert stored(db)["fund.donors"].value == "5"


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        (
            "gifts.children",
            "mười hai",
            "2.4. Số trẻ em được tặng quà, trao thưởng: hãy ghi một số nguyên",
        ),
        ("gifts.children", "-3", "hãy ghi một số nguyên, ví dụ 120"),
        (
            "gifts.value",
            "1,5",
            "2.4. Tổng giá trị quà, phần thưởng (đồng): hãy ghi một số nguyên, ví dụ 1.500.000",
        ),
        ("fund.amount", "9" * 17, "2.5. Số tiền ủng hộ Quỹ Bảo trợ trẻ em (đồng): số quá lớn"),
        ("fund.text", "x" * 20_001, "2.5. Vận động ủng hộ Quỹ (mô tả): tối đa 20.000 ký tự"),
    ],
)
def test_a_wrong_field_is_refused_by_name_and_nothing_is_saved(
    app_db: Board, key: str, value: str, said: str
) -> None:
    db, _config = app_db
    c, csrf = member(app_db, "bientap")
    page = c.get("/report").text
    r = c.post(
        "/report", data=form_of(page, csrf, fund__donors="40", **{key.replace(".", "__"): value})
    )
    assert r.status_code == 400
    assert said in r.text and "Chưa lưu, không có gì thay đổi:" in r.text
    assert 'aria-invalid="true"' in r.text
    kept = f"{int(value):,}".replace(",", ".") if value.isdigit() else value
    assert kept[:100] in r.text  # what was typed is kept in the form
    assert stored(db) == {} and audited(db) == []


def test_a_drafter_sees_the_entries_but_may_not_save(app_db: Board) -> None:
    db, _config = app_db
    c, csrf = member(app_db, "vanphong")
    page = c.get("/report").text
    assert "Vai trò của bạn không được sửa số liệu của báo cáo." in page
    assert "readonly" in page
    r = c.post("/report", data=form_of(page, csrf, gifts__children="3"))
    assert r.status_code == 403
    assert "nhập số liệu cho báo cáo" in r.text
    assert stored(db) == {} and audited(db) == []


def test_saving_needs_the_csrf_token_and_a_session(app_db: Board) -> None:
    db, _config = app_db
    c, _csrf = member(app_db, "bientap")
    page = c.get("/report").text
    data = form_of(page, "wrong", gifts__children="3")
    assert c.post("/report", data=data).status_code == 403
    del data["csrf_token"]
    assert c.post("/report", data=data).status_code == 403
    anon = TestClient(c.app, follow_redirects=False)
    assert anon.post("/report", data=data).status_code == 403
    assert anon.get("/report").headers["location"] == "/login?next=/report"
    assert stored(db) == {}


def test_a_value_changed_by_someone_else_meanwhile_is_not_overwritten(app_db: Board) -> None:
    db, _config = app_db
    editor, csrf = member(app_db, "bientap")
    approver, csrf2 = member(app_db, "tuan.la")
    old_page = editor.get("/report").text
    approver.post("/report", data=form_of(approver.get("/report").text, csrf2, fund__donors="90"))
    r = editor.post("/report", data=form_of(old_page, csrf, fund__donors="80", gifts__children="5"))
    assert r.status_code == 409
    assert "2.5. Số người ủng hộ: Lê Anh Tuấn đã sửa mục này lúc" in r.text
    assert stored(db)["fund.donors"].value == "90" and "gifts.children" not in stored(db)


def test_a_value_from_report_toml_carries_the_note_that_loading_replaces_it(app_db: Board) -> None:
    db, _config = app_db
    with db.write() as s:
        report_entries.put(
            s, "fund.amount", "45000000", source="file", by="vanphong", now=datetime.now(UTC)
        )
    c, csrf = member(app_db, "bientap")
    page = c.get("/report").text
    assert "Giá trị này lấy từ tệp report.toml" in page and 'value="45.000.000"' in page
    c.post("/report", data=form_of(page, csrf, fund__amount="46.000.000"))
    after = stored(db)["fund.amount"]
    assert (after.value, after.source, after.set_by) == ("46000000", "web", "Ban biên tập")
    assert "Giá trị này lấy từ tệp report.toml" not in c.get("/report").text


def test_downloads_for_a_date_in_each_format(app_db: Board) -> None:
    _db, config = app_db
    c, _csrf = member(app_db, "vanphong")  # reading the report needs no permission
    docx = c.get("/report.docx", params={"date": "2024-06-30"})
    assert docx.status_code == 200 and docx.content[:2] == b"PK"
    assert 'filename="bao-cao.docx"' in docx.headers["content-disposition"]
    doc = Document(io.BytesIO(docx.content))
    cells = (c.text for t in doc.tables for row in t.rows for c in row.cells)
    text = "\n".join([*(p.text for p in doc.paragraphs), *cells])
    assert "ngày 30 tháng 6 năm 2024" in text
    page = c.get("/report.html", params={"date": "30/06/2024"})
    assert page.status_code == 200 and "ngày 30 tháng 6 năm 2024" in page.text
    assert "img-src data:" in page.headers["content-security-policy"]
    md = c.get("/report.md", params={"date": "2024-06-15"})
    assert md.headers["content-type"].startswith("text/markdown")
    assert 'filename="bao-cao.md"' in md.headers["content-disposition"]
    assert "ngày 15 tháng 6 năm 2024" in md.text and "# BÁO CÁO" in md.text
    today = datetime.now(config.tz).date()  # no date: today's
    assert f"năm {today.year}" in c.get("/report.md").text.split("# BÁO CÁO")[0]


@pytest.mark.parametrize(
    ("value", "said"),
    [("30-06-2024", "không phải là ngày hợp lệ"), ("2999-01-01", "không thể ghi ngày sau hôm nay")],
)
def test_a_bad_date_is_refused_naming_the_field(app_db: Board, value: str, said: str) -> None:
    c, _csrf = member(app_db, "vanphong")
    for path in ("/report.docx", "/report.html", "/report.md"):
        r = c.get(path, params={"date": value})
        assert r.status_code == 400, path
        assert "Ngày báo cáo (date):" in r.text and said in r.text


def test_parse_accepts_the_ways_people_write_numbers() -> None:
    count = next(e for e in ENTRIES if e.kind == "count")
    for raw in ("1234", "1.234", "1 234", "1,234", " 1234 ", "1.234 đ"):
        assert report_form.parse(count, raw) == "1234", raw
    assert report_form.parse(count, "0") == "0"
    assert report_form.parse(count, "  ") == ""
    for raw in ("12.34", "1.2345", "1.234,5", "1e3", "١٢"):
        with pytest.raises(report_form.EntryError):
            report_form.parse(count, raw)
