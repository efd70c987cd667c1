"""The board's web app in a real browser: Debian's Chromium driven by Playwright against a real
``publisher web`` process, on a copy of the shipped campaign. Screenshots (1280 px and 390 px
wide) go to $PUBLISHER_TEST_ARTIFACTS, else the test's temporary folder."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from publisher.config import load_config
from publisher.documents import preview
from publisher.editorial.load import load
from publisher.store import audit_key
from publisher.store.db import open_database

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "mật khẩu " + secrets.token_urlsafe(12)  # made per run: no secret in the file

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(campaign: Path) -> Iterator[tuple[str, int]]:
    """``publisher web`` on a free port over the loaded campaign: its address and a draft's id."""
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url, audit_key=audit_key.from_environment(config))
    try:
        load(db, config, datetime.now(UTC), "vanphong")
        post = next(i for i in preview.items(db, config) if i.due_at and i.state == "draft")
    finally:
        db.close()
    env = {**os.environ, "PUBLISHER_LANG": "vi"}
    cli = [sys.executable, "-m", "publisher"]
    for name in ("tuan.la", "vanphong"):
        subprocess.run(
            [*cli, "user", "add", name, "--password-stdin", "--as", "admin"],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            env=env,
            capture_output=True,
        )
    port = free_port()
    log = (campaign / "web.log").open("w")
    proc = subprocess.Popen(
        [*cli, "web", "--config", "config.toml", "--port", str(port)],
        cwd=campaign,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # until it answers (or gives up after about 30 s)
            if proc.poll() is not None:
                pytest.fail("publisher web exited: " + (campaign / "web.log").read_text())
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, post.id
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PUBLISHER_TEST_ARTIFACTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_editorial_loop_in_a_browser(server: tuple[str, int], artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, post_id = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            wide = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
            page = wide.new_page()
            log_in(page, "tuan.la")
            expect(page.locator(".who-name")).to_have_text("Lê Anh Tuấn")
            page.goto("/?month=2024-06")
            expect(page.locator(".month-head h1")).to_have_text("Tháng 6 năm 2024")
            page.screenshot(path=artifacts / "calendar-1280.png", full_page=True)
            card = page.locator(f'a.card[data-post="{post_id}"]')
            assert loaded_width(card.locator("img.card-cover")) == 320  # the cover's thumbnail
            card.click()
            expect(page).to_have_url(re.compile(rf"/posts/{post_id}$"))
            expect(page.locator(".preview")).to_contain_text("Bài sẽ được gửi lên")
            cover_shown(page, artifacts)

            page.get_by_role("button", name="Duyệt", exact=True).click()
            expect(page.locator(".flash-ok")).to_contain_text(f"Đã duyệt: #{post_id}")
            expect(page.locator(".side")).to_contain_text("đúng là nội dung đã duyệt")
            page.screenshot(path=artifacts / "post-1280.png", full_page=True)

            edit_text(page, post_id, artifacts)
            page.goto(f"/posts/{post_id}")
            expect(page.locator(".meta .chip")).to_have_text("Nháp")  # the approval is gone

            csrf_refused(page, post_id)
            phone = browser.new_context(viewport={"width": 390, "height": 844}, base_url=base)
            small = phone.new_page()
            drafter_refused(small, post_id, artifacts)

            page.get_by_role("button", name="Đăng xuất").click()
            expect(page).to_have_url(re.compile(r"/login$"))
            page.goto("/")
            expect(page).to_have_url(re.compile(r"/login$"))
        finally:
            browser.close()


def loaded_width(img: object) -> int:
    """The natural width of a picture once the browser has it (0: it did not load)."""
    from playwright.sync_api import Locator

    assert isinstance(img, Locator)
    img.scroll_into_view_if_needed()
    img.page.wait_for_function("(img) => img.complete", arg=img.element_handle())
    width: int = img.evaluate("(img) => img.naturalWidth")
    return width


def cover_shown(page: object, artifacts: Path) -> None:
    """The post page shows the post's cover, loaded from the app (a thumbnail linking to the
    whole picture), with its alternative text, role and file."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    figure = page.locator(".preview figure.picture-cover")
    cover = figure.locator("img")
    expect(cover).to_have_attribute(
        "alt", re.compile(r"^Ảnh bìa Tháng hành động vì trẻ em năm 2024")
    )
    assert loaded_width(cover) == 320
    expect(figure.locator(".picture-role")).to_have_text("Ảnh bìa")
    expect(figure).to_contain_text("1200×630 px · 92 kB")
    whole = page.request.get(figure.locator("a.picture-open").get_attribute("href") or "")
    assert whole.status == 200 and whole.headers["content-type"] == "image/jpeg"
    assert whole.body() == Path("messages/media/thang-hanh-dong-vi-tre-em-2024.jpg").read_bytes()
    page.screenshot(path=artifacts / "post-cover-1280.png", full_page=True)


def log_in(page: object, name: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.locator(".who-name")).to_be_visible()


def edit_text(page: object, post_id: int, artifacts: Path) -> None:
    """Change the post's text in the editor: the live preview shows it, Save says the approval
    was revoked."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(f"/messages/{post_id}/edit")
    expect(page.locator("#preview .preview-one").first).to_be_visible()  # htmx's first preview
    area = page.locator("#text")
    area.fill(area.input_value().rstrip("\n") + "\n\nMột câu thêm từ trình duyệt.\n")
    expect(page.locator("#preview")).to_contain_text("Một câu thêm từ trình duyệt.")
    assert loaded_width(page.locator("#preview .picture-cover img").first) == 320
    page.screenshot(path=artifacts / "edit-1280.png", full_page=True)
    page.get_by_role("button", name="Lưu").click()
    expect(page.locator(".flash-ok")).to_contain_text("đã bị huỷ")


def csrf_refused(page: object, post_id: int) -> None:
    """A POST without the session's token (another site's form would send none) → 403."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    r = page.request.post(f"/posts/{post_id}/approve", form={"nothing": "here"})
    assert r.status == 403 and "mã bảo mật" in r.text()


def drafter_refused(page: object, post_id: int, artifacts: Path) -> None:
    """A drafter (on a phone) sees no approve button, and approving anyway is refused."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    log_in(page, "vanphong")
    page.goto("/?month=2024-06")
    page.screenshot(path=artifacts / "calendar-390.png")
    page.goto(f"/posts/{post_id}")
    expect(page.get_by_role("button", name="Duyệt", exact=True)).to_have_count(0)
    page.screenshot(path=artifacts / "post-390.png")
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    r = page.request.post(f"/posts/{post_id}/approve", form={"csrf_token": token or ""})
    assert r.status == 403 and "không có quyền duyệt bài" in r.text()
