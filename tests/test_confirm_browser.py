"""The desk's confirmation link in a real browser: Debian's Chromium (Playwright) against a real
``publisher web`` process. The desk has no account: the signed link opens the form, the
address is refused off the portal, then taken; the post is published with it; the link opened
again says it is done; a link changed by one character is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from publisher.app import confirm_link_key
from publisher.config import load_config
from publisher.signing import link_token
from publisher.states import State
from publisher.store import audit_key
from publisher.store.db import open_database
from publisher.store.models import PostRow
from tests.fakes import load_and_approve, set_state
from tests.test_web_browser import ARGS, CHROMIUM, free_port

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (CI installs it)"
)
SITE = "https://pbgdpl.example.gov.vn"


def handed_off_post(campaign: Path) -> tuple[int, str]:
    """A PBGDPL post handed off to its desk, and the path of its signed link (as the mail's)."""
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url, audit_key=audit_key.from_environment(config))
    try:
        with db.read() as s:
            post = s.scalars(
                select(PostRow).where(PostRow.channel == "portal_pbgdpl").order_by(PostRow.id)
            ).first()
            assert post is not None
            post_id, key = post.id, post.idempotency_key
        now = datetime.now(UTC)
        set_state(db, post_id, now, "handed_off", "handed off (test)", handed_off_at=now)
        signing = confirm_link_key(db)
        assert signing is not None
        expires = int((now + timedelta(days=14)).timestamp())
        return post_id, f"/confirm/{link_token(signing, post_id, key, expires)}"
    finally:
        db.close()


def test_the_desk_confirms_through_the_signed_link_in_a_browser(
    campaign: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    load_and_approve(campaign)
    post_id, path = handed_off_post(campaign)
    port = free_port()
    log = (campaign / "web.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "web", "--port", str(port)],
        cwd=campaign,
        env={**os.environ, "PUBLISHER_LANG": "vi"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail("publisher web exited: " + (campaign / "web.log").read_text())
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            try:
                page = browser.new_context(base_url=base).new_page()
                page.goto(path)
                expect(page.locator("h1")).to_have_text("Xác nhận đã đăng bài")
                expect(page.locator("section.confirm")).to_contain_text(f"#{post_id}")
                page.fill("#url", "https://evil.example.com/bai")
                page.get_by_role("button", name="Xác nhận").click()
                expect(page.locator(".flash-bad")).to_contain_text(SITE)
                page.fill("#url", f"{SITE}/tin-tuc/bai-{post_id}")
                page.get_by_role("button", name="Xác nhận").click()
                expect(page.locator(".flash-ok")).to_contain_text(
                    f"Xin cảm ơn: đã ghi nhận bài #{post_id}"
                )
                shots = Path(os.environ.get("PUBLISHER_TEST_ARTIFACTS") or tmp_path)
                page.screenshot(path=shots / "confirm-link.png", full_page=True)
                page.goto(path)  # again: done, no form
                expect(page.locator(".flash-ok")).to_contain_text(f"{SITE}/tin-tuc/bai-{post_id}")
                expect(page.locator("#url")).to_have_count(0)
                tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
                answer = page.goto(tampered)
                assert answer is not None and answer.status == 403
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url)
    try:
        with db.read() as s:
            post = s.get_one(PostRow, post_id)
            assert post.state == State.PUBLISHED
            assert post.remote_url == f"{SITE}/tin-tuc/bai-{post_id}"
    finally:
        db.close()
