"""The report page in a real browser: Debian's Chromium (Playwright) against a real
``publisher web`` process. The approver opens "Báo cáo" from the navigation, types a wrong count
(refused, the field named, what was typed kept), then the office's figures and a passage (saved,
with who and when); downloads the Word report and the Markdown for a date, opens the web page
report; a drafter sees the entries read-only."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from docx import Document
from sqlalchemy import select

from publisher.config import load_config
from publisher.store import report_entries
from publisher.store.db import open_database
from publisher.store.models import AuditEntry
from tests.test_web_browser import ARGS, CHROMIUM, log_in
from tests.test_web_browser import artifacts as artifacts  # fixtures, shared
from tests.test_web_browser import server as server

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)"
)


def test_the_office_fills_the_report_and_downloads_it(
    server: tuple[str, int], artifacts: Path, campaign: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _post = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, base_url=base, accept_downloads=True
            )
            page = context.new_page()
            log_in(page, "tuan.la")
            page.get_by_role("link", name="Báo cáo", exact=True).click()
            expect(page).to_have_url(re.compile(r"/report$"))
            expect(page.locator("h1")).to_have_text("Báo cáo")

            page.fill("#e-gifts-children", "mười hai")
            page.get_by_role("button", name="Lưu").click()
            expect(page.locator(".flash-bad")).to_contain_text(
                "2.4. Số trẻ em được tặng quà, trao thưởng: hãy ghi một số nguyên"
            )
            expect(page.locator("#e-gifts-children")).to_have_value("mười hai")

            page.fill("#e-gifts-children", "1.250")
            page.fill("#e-fund-amount", "25000000")
            page.fill("#e-proposals-text", "Đề nghị tiếp tục phối hợp tuyên truyền trong năm 2025.")
            page.get_by_role("button", name="Lưu").click()
            expect(page.locator(".flash-ok")).to_contain_text("Đã lưu 3 mục số liệu của báo cáo.")
            expect(page.locator("#e-fund-amount")).to_have_value("25.000.000")
            expect(page.locator(".entries")).to_contain_text("Do Lê Anh Tuấn nhập lúc")
            page.screenshot(path=artifacts / "report-1280.png", full_page=True)

            page.fill("#report-date", "2024-06-30")
            with page.expect_download() as got:
                page.get_by_role("button", name="Báo cáo (Word)").click()
            word = got.value
            assert word.suggested_filename == "bao-cao.docx"
            doc = Document(io.BytesIO(Path(word.path()).read_bytes()))
            header = " ".join(c.text for row in doc.tables[0].rows for c in row.cells)
            assert "ngày 30 tháng 6 năm 2024" in header
            with page.expect_download() as got:
                page.get_by_role("button", name="Báo cáo (Markdown)").click()
            text = Path(got.value.path()).read_text("utf-8")
            assert "# BÁO CÁO" in text and "ngày 30 tháng 6 năm 2024" in text
            with context.expect_page() as opened:
                page.get_by_role("button", name="Báo cáo (trang web)").click()
            report = opened.value
            expect(report.locator("h1").first).to_contain_text("BÁO CÁO")
            assert "date=2024-06-30" in report.url

            drafter = browser.new_context(base_url=base).new_page()
            log_in(drafter, "vanphong")
            drafter.goto("/report")
            expect(drafter.locator("#e-fund-amount")).to_have_value("25.000.000")
            expect(drafter.locator("#e-fund-amount")).to_have_attribute("readonly", "")
            expect(drafter.get_by_role("button", name="Lưu")).to_have_count(0)
            expect(drafter.locator(".entries")).to_contain_text(
                "Vai trò của bạn không được sửa số liệu của báo cáo."
            )
        finally:
            browser.close()
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url)
    try:
        with db.read() as s:
            saved = report_entries.entries(s)
            trail = s.scalars(select(AuditEntry).where(AuditEntry.action == "report_entry"))
            audited = sorted((a.actor, a.subject) for a in trail)
    finally:
        db.close()
    assert {k: e.value for k, e in saved.items()} == {
        "gifts.children": "1250",
        "fund.amount": "25000000",
        "proposals.text": "Đề nghị tiếp tục phối hợp tuyên truyền trong năm 2025.",
    }
    assert audited == [
        ("Lê Anh Tuấn", "fund.amount"),
        ("Lê Anh Tuấn", "gifts.children"),
        ("Lê Anh Tuấn", "proposals.text"),
    ]
