"""The HTML calendar: its markup (cards, key dates, escaping, no network) and, in a real headless
Chromium, its behaviour (one card per post, previews that open and close, no console errors)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from publisher.config import Config
from publisher.documents import pictures as pictures_module
from publisher.documents.calendar_html import (
    PostExtra,
    load_extra,
    load_pictures,
    render_calendar,
)
from publisher.documents.preview import WEEKDAYS_VI, Item, items
from publisher.editorial.load import load
from publisher.store.db import Database, open_database
from publisher.store.models import PostRow
from tests.fakes import banner_name, post_count, set_state

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)
RUNNING = datetime(2024, 6, 13, 5, 0, tzinfo=UTC)  # mid-campaign: some posts went out, some not
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EVIL = "<script>alert(1)</script>"
LIVE = "https://www.facebook.com/100000000000000/posts/123456789"
VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "area", "col", "embed"}


class Page(HTMLParser):
    """What a test needs from the static page: cards, the day each sits in, links, elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.day: str | None = None
        self.day_depth = 0
        self.days: dict[str, dict[str, Any]] = {}
        self.card_day: dict[int, str | None] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "div" and a.get("data-date"):
            self.day, self.day_depth = a["data-date"], len(self.stack)
            self.days[self.day] = {"classes": set((a.get("class") or "").split()), "text": ""}
        if tag == "button" and a.get("data-post"):
            self.card_day[int(a["data-post"] or 0)] = self.day

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.day and len(self.stack) == self.day_depth:
            self.day = None
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.day:
            self.days[self.day]["text"] += data

    def attrs(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def first_of(db: Database, channel: str) -> int:
    with db.read() as s:
        ids = s.scalars(
            select(PostRow.id).where(PostRow.channel == channel).order_by(PostRow.due_at)
        ).all()
    return ids[0]


def run_campaign_a_little(db: Database) -> dict[str, int]:
    """A published, a failed and a missed post, as after a few days of the campaign."""
    posts = {
        "published": first_of(db, "facebook"),
        "failed": first_of(db, "zalo"),
        "missed": first_of(db, "portal_pbgdpl"),
    }
    set_state(
        db,
        posts["published"],
        RUNNING,
        "published",
        "published",
        remote_url=LIVE,
        published_at=RUNNING,
    )
    set_state(
        db,
        posts["failed"],
        RUNNING,
        "failed",
        "refused: Zalo -216 access token is invalid",
        last_error="-216",
    )
    set_state(
        db,
        posts["missed"],
        RUNNING,
        "missed",
        "due 3 days ago, past the 2h grace window (daemon down or channel stopped); reschedule it to publish",
        last_error="missed: due while nothing could publish it",
    )
    return posts


def build(db: Database, config: Config, entries: list[Item] | None = None) -> str:
    entries = items(db, config) if entries is None else entries
    extra = load_extra(db, [i.id for i in entries if i.id > 0])
    pictures = load_pictures(db, entries)
    return render_calendar(entries, config, generated_at=RUNNING, extra=extra, pictures=pictures)


def page_data(html: str) -> dict[str, Any]:
    """The page's JSON: the posts' previews and the pictures' thumbnails."""
    found = re.search(r'id="calendar-data">(.*?)</script>', html, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


# --- The markup ------------------------------------------------------------------------------


def test_one_card_per_post_in_its_local_day(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    entries = items(db, config)
    page = Page(build(db, config, entries))
    assert len(entries) == post_count(db) > 0
    assert sorted(page.card_day) == sorted(i.id for i in entries)
    cards = [a for a in page.attrs("button") if "card" in (a.get("class") or "")]
    assert len(cards) == len(entries)
    for item in entries:
        assert item.due_at is not None
        assert page.card_day[item.id] == item.due_at.astimezone(config.tz).date().isoformat()


def test_labels_key_dates_and_legend(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    html = build(db, config)
    page = Page(html)
    assert "Tháng 6 năm 2024" in html
    for weekday in WEEKDAYS_VI:
        assert f'role="columnheader">{weekday}</div>' in html
    for key in config.key_dates.values():
        cell = page.days[key.date.isoformat()]
        assert "key" in cell["classes"] and key.name in cell["text"]
    assert sum("key" in d["classes"] for d in page.days.values()) == len(config.key_dates)
    assert len(page.days) == 30
    for ch in config.channels.values():
        assert f'<span class="legend-name">{ch.name}</span>' in html
    colours = set(re.findall(r"\.ch-\d+ \{ --ch: (#[0-9a-f]{6});", html))
    assert len(colours) >= len(config.channels)
    assert "Nháp" in html and "Chưa xếp được lịch" not in html


def test_running_campaign_shows_links_and_reasons(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    posts = run_campaign_a_little(db)
    html = build(db, config)
    live = [a for a in Page(html).attrs("a")]
    assert [a["href"] for a in live] == [LIVE]
    assert live[0]["rel"] == "noopener noreferrer"
    assert "Đã đăng" in html and "Thất bại" in html and "Bị lỡ" in html
    assert "refused: Zalo -216 access token is invalid" in html
    assert "past the 2h grace window" in html
    data = json.loads(re.search(r'id="calendar-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data["posts"][str(posts["published"])]["live"] == LIVE
    failed = data["posts"][str(posts["failed"])]["reason"]  # what it means first, in Vietnamese
    assert failed == (
        "Nền tảng từ chối bài hoặc đã hết số lần thử lại. "
        "Chi tiết: refused: Zalo -216 access token is invalid"
    )


def test_every_text_is_escaped(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    entries = items(db, config)
    fb = next(i for i in entries if i.channel == "facebook")
    evil = [
        dataclasses.replace(
            fb,
            id=-1,
            title=EVIL,
            text=f"</script><img src=x onerror=alert(2)> {EVIL}",
            fields={"message": f"</script>{EVIL}", "link": "javascript:alert(3)"},
        ),
        dataclasses.replace(fb, id=-2, due_at=None, title="<b>x</b>", note=f"<i>{EVIL}</i>"),
    ]
    extra = {
        -1: PostExtra(remote_url="javascript:alert(4)", reason=EVIL),
    }
    html = render_calendar([*entries, *evil], config, generated_at=RUNNING, extra=extra)
    page = Page(html)
    assert EVIL not in html and "<img" not in html and "<b>x" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html.split('id="calendar-data">')[0]  # no live link for it
    assert [a.get("type") for a in page.attrs("script")] == ["application/json", None]
    assert page.attrs("img") == [] and page.attrs("iframe") == []
    assert "Chưa xếp được lịch (1)" in html
    raw = re.search(r'id="calendar-data">(.*?)</script>', html, re.S).group(1)  # type: ignore[union-attr]
    assert "</" not in raw and "<" not in raw
    data = json.loads(raw)
    assert data["posts"]["-1"]["title"] == EVIL
    assert data["posts"]["-1"]["live"] is None
    assert data["posts"]["-2"]["reason"] == f"<i>{EVIL}</i>"


def test_no_network_resource(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    run_campaign_a_little(db)
    html = build(db, config)
    page = Page(html)
    refs = [a.get(k) for _, a in page.tags for k in ("src", "href", "action", "poster") if a.get(k)]
    assert refs == ["data:,", LIVE]  # the favicon (none) and the one live post
    assert not re.search(r"url\(|@import|\bsrc\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    csp = next(a["content"] for a in page.attrs("meta") if a.get("http-equiv"))
    assert csp is not None and "default-src 'none'" in csp and "img-src data:" in csp


BANNER = "media/thang-hanh-dong-vi-tre-em-2024.jpg"


def test_each_picture_is_embedded_once_and_every_post_names_its_own(
    db: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72 posts show the campaign's banner: one thumbnail, made once, embedded once; each post's
    preview names it (role, alt text, file, size) and no post shows its pictures' raw JSON."""
    import io

    from PIL import Image

    load(db, config, NOW, "t")
    pictures_module._cache.clear()
    made: list[int] = []
    shrink = pictures_module._shrink
    monkeypatch.setattr(
        pictures_module, "_shrink", lambda data, width: made.append(width) or shrink(data, width)
    )
    html = build(db, config)
    data = page_data(html)
    assert made == [pictures_module.THUMB_WIDTH]
    banner = (config.messages_dir / BANNER).read_bytes()
    sha = hashlib.sha256(banner).hexdigest()
    assert list(data["pictures"]) == [sha]
    src = data["pictures"][sha]["src"]
    assert src.startswith("data:image/jpeg;base64,") and html.count(src) == 1
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as thumb:
        assert thumb.format == "JPEG" and thumb.width == data["pictures"][sha]["width"] == 320
    assert len(src) < 40_000  # a thumbnail, not the 92 kB banner
    posts = data["posts"].values()
    assert len(posts) == 72
    for post in posts:
        assert "media" not in post["fields"]
        (cover,) = post["pictures"]
        assert cover["role"] == "cover" and cover["label"] == "Ảnh bìa" and cover["thumb"] == sha
        assert cover["alt"].startswith("Ảnh bìa Tháng hành động vì trẻ em năm 2024")
        assert cover["name"] == banner_name(config)
        assert cover["about"] == "1200×630 px, 92 kB" and cover["url"] is None
    assert Page(html).attrs("img") == []  # the script shows them, in the preview it opens


def test_an_address_or_a_missing_file_shows_as_its_name(db: Database, config: Config) -> None:
    """A picture given by address is never loaded (the page loads nothing from the network): its
    address is a link; a file whose bytes are not stored has no thumbnail."""
    load(db, config, NOW, "t")
    item = next(i for i in items(db, config) if i.channel == "facebook")
    media = [
        {"role": "cover", "alt": "Ảnh", "src": "https://anh.example.vn/bia.jpg",
         "url": "https://anh.example.vn/bia.jpg"},
        {"role": "image", "alt": "", "src": "media/mat.jpg", "name": "mat-0123456789ab.jpg",
         "mime": "image/jpeg", "sha256": "ab" * 32, "width": 800, "height": 600, "size": 1_800_000},
        {"role": "image", "alt": "x", "src": "javascript:alert(1)", "url": "javascript:alert(1)"},
    ]  # fmt: skip
    odd = dataclasses.replace(item, fields={**item.fields, "media": json.dumps(media)})
    data = page_data(build(db, config, [odd]))
    assert data["pictures"] == {}
    address, missing, hostile = data["posts"][str(odd.id)]["pictures"]
    assert address == {
        "role": "cover", "label": "Ảnh bìa", "alt": "Ảnh", "name": "https://anh.example.vn/bia.jpg",
        "about": "", "url": "https://anh.example.vn/bia.jpg", "thumb": None,
    }  # fmt: skip
    assert missing["thumb"] is None and missing["about"] == "800×600 px, 1,8 MB"
    assert missing["label"] == "Ảnh" and missing["alt"] == ""
    assert hostile["url"] is None  # never a javascript: link


def test_any_window_gets_one_grid_per_month(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    campaign = dataclasses.replace(config.campaign, start=date(2024, 5, 30), end=date(2024, 7, 2))
    wide = dataclasses.replace(config, campaign=campaign)
    html = build(db, wide)
    titles = re.findall(r'class="month-title"[^>]*>([^<]+)<', html)
    assert titles == ["Tháng 5 năm 2024", "Tháng 6 năm 2024", "Tháng 7 năm 2024"]
    assert len(Page(html).days) == 31 + 30 + 31


def test_load_extra_reads_links_and_causes(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    posts = run_campaign_a_little(db)
    extra = load_extra(db, posts.values())
    assert extra[posts["published"]].remote_url == LIVE
    assert extra[posts["published"]].published_at == RUNNING
    assert extra[posts["failed"]].reason == "refused: Zalo -216 access token is invalid"
    assert extra[posts["missed"]].last_error == "missed: due while nothing could publish it"
    assert all(e.occurrence == 1 and e.updated_at == RUNNING for e in extra.values())
    assert load_extra(db, []) == {}


# --- In a real browser -----------------------------------------------------------------------


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = (
        f"the browser test needs Debian's chromium and chromium-driver ({', '.join(missing)} "
        "missing): apt-get install chromium chromium-driver"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="publisher-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1440,1000",
        "--lang=vi-VN",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page_file(config: Config, tmp_path: Path) -> tuple[Path, list[Item], dict[str, int]]:
    """The shipped campaign, a few days in, with one hostile post, written to a file."""
    db = open_database(config.database_url)  # SQLite only: one browser run is enough
    try:
        load(db, config, NOW, "t")
        posts = run_campaign_a_little(db)
        entries = items(db, config)
        portal = next(i for i in entries if i.channel == "portal_stp")
        entries.append(dataclasses.replace(portal, id=-1, title=EVIL, due_at=None, note=EVIL))
        extra = load_extra(db, [i.id for i in entries])
        pictures = load_pictures(db, entries)
    finally:
        db.close()
    path = tmp_path / "calendar.html"
    page = render_calendar(entries, config, generated_at=RUNNING, extra=extra, pictures=pictures)
    path.write_text(page, "utf-8")
    return path, entries, posts


def severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver: Any, tmp_path: Path, name: str, *, full: bool = False) -> Path:
    """The viewport, or the whole page; also kept in tests/artifacts if PUBLISHER_KEEP_ARTIFACTS."""
    path = tmp_path / name
    if full:
        width, height = driver.execute_script(
            "const e = document.documentElement; return [e.clientWidth, e.scrollHeight];"
        )
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(shot["data"]))
    else:
        assert driver.save_screenshot(str(path))
    if os.environ.get("PUBLISHER_KEEP_ARTIFACTS"):
        keep = ROOT / "tests" / "artifacts"
        keep.mkdir(exist_ok=True)
        shutil.copy(path, keep / name)
    return path


def loaded_width(driver: Any, img: Any) -> int:
    """The natural width of a picture once the browser has it (0: it did not load)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return arguments[0].complete;", img))
    width: int = driver.execute_script("return arguments[0].naturalWidth;", img)
    return width


def open_card(driver: Any, post_id: int) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, f'button[data-post="{post_id}"]').click()
    dialog = driver.find_element(By.ID, "preview")
    WebDriverWait(driver, 5).until(lambda d: dialog.is_displayed())
    return dialog


def close_with_esc(driver: Any, dialog: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    WebDriverWait(driver, 5).until(lambda d: not dialog.is_displayed())


def test_the_page_in_headless_chromium(
    browser: Any, page_file: tuple[Path, list[Item], dict[str, int]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    path, entries, _ = page_file
    browser.get(path.as_uri())
    browser.get_log("browser")  # start from a clean log
    browser.refresh()
    cards = browser.find_elements(By.CSS_SELECTOR, "button.card[data-post]")
    assert len(cards) == len(entries) == 73
    assert {int(c.get_attribute("data-post")) for c in cards} == {i.id for i in entries}
    hostile = browser.find_element(By.CSS_SELECTOR, 'button[data-post="-1"] .card-title')
    assert hostile.text == EVIL  # shown as text; an alert would have failed every call
    live = browser.find_element(By.CSS_SELECTOR, "a.live")
    assert live.get_attribute("href") == LIVE
    assert browser.execute_script("return document.title").startswith("Lịch đăng bài")
    shot = screenshot(browser, tmp_path, "calendar.png", full=True)
    assert shot.stat().st_size > 50_000
    assert severe(browser) == []


def test_cards_open_their_previews(
    browser: Any, page_file: tuple[Path, list[Item], dict[str, int]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    path, entries, posts = page_file
    browser.get(path.as_uri())
    browser.get_log("browser")
    by_id = {i.id: i for i in entries}

    fb = by_id[posts["published"]]
    dialog = open_card(browser, fb.id)
    assert browser.find_element(By.ID, "preview-title").text == fb.title
    post = dialog.find_element(By.CSS_SELECTOR, ".fb .fb-text")
    assert fb.fields["message"].strip().splitlines()[0] in post.text
    tags = [t.text for t in post.find_elements(By.CSS_SELECTOR, ".hashtag")]
    assert tags == ["#ThangHanhDongViTreEm", "#BaoVeTreEm", "#SoTuPhapBacGiang"]
    assert dialog.find_element(By.CSS_SELECTOR, ".fb-name").text == "Sở Tư pháp tỉnh Bắc Giang"
    assert dialog.find_element(By.CSS_SELECTOR, ".avatar").text == "STP"
    assert dialog.find_element(By.CSS_SELECTOR, "#preview-status a").get_attribute("href") == LIVE
    photo = dialog.find_element(By.CSS_SELECTOR, ".fb img.fb-photo")  # the cover, under the text
    assert loaded_width(browser, photo) == 320
    assert photo.get_attribute("alt").startswith("Ảnh bìa Tháng hành động vì trẻ em năm 2024")
    assert browser.switch_to.active_element.get_attribute("id") == "preview-close"
    screenshot(browser, tmp_path, "calendar-facebook.png")
    close_with_esc(browser, dialog)
    assert browser.switch_to.active_element.get_attribute("data-post") == str(fb.id)

    zalo = by_id[posts["failed"]]
    dialog = open_card(browser, zalo.id)
    card = dialog.find_element(By.CSS_SELECTOR, ".zalo")
    assert card.find_element(By.CSS_SELECTOR, ".zalo-title").text == zalo.fields["title"]
    assert card.find_element(By.CSS_SELECTOR, ".zalo-meta").text.startswith(zalo.fields["author"])
    paragraphs = [p.text for p in card.find_elements(By.CSS_SELECTOR, ".zalo-body p")]
    assert len(paragraphs) >= 2 and paragraphs[0] in zalo.fields["body"]
    assert "-216" in dialog.find_element(By.ID, "preview-status").text
    cover = card.find_element(By.CSS_SELECTOR, "img.zalo-cover")  # above the title, as in Zalo
    assert loaded_width(browser, cover) == 320
    photo_alt = cover.get_attribute("alt")
    assert photo_alt.startswith("Ảnh bìa Tháng hành động vì trẻ em năm 2024")
    (listed,) = dialog.find_elements(By.CSS_SELECTOR, ".pics .pic")
    assert "Ảnh bìa" in listed.text and "1200×630 px, 92 kB" in listed.text
    assert photo_alt in listed.text
    assert loaded_width(browser, listed.find_element(By.CSS_SELECTOR, "img.pic-thumb")) == 320
    screenshot(browser, tmp_path, "calendar-zalo.png")
    browser.find_element(By.ID, "preview-close").click()
    assert not dialog.is_displayed()

    portal = next(i for i in entries if i.channel == "portal_stp" and i.kind == "article")
    dialog = open_card(browser, portal.id)
    frame = dialog.find_element(By.CSS_SELECTOR, ".portal iframe")
    assert frame.get_attribute("sandbox") == ""
    assert portal.fields["content"] in frame.get_attribute("srcdoc")
    assert dialog.find_element(By.CSS_SELECTOR, ".portal-title").text == portal.fields["title"]
    browser.switch_to.frame(frame)
    try:
        assert "Sở Tư pháp" in browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.switch_to.default_content()
    screenshot(browser, tmp_path, "calendar-portal.png")
    close_with_esc(browser, dialog)
    assert severe(browser) == []


def test_channel_filter_and_sandboxed_portal_html(
    browser: Any, config: Config, page_file: tuple[Path, list[Item], dict[str, int]], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    path, entries, _ = page_file
    browser.get(path.as_uri())
    zalo_cards = [i for i in entries if i.channel == "zalo"]
    browser.find_element(By.CSS_SELECTOR, 'button[data-filter="zalo"]').click()
    visible = [c for c in browser.find_elements(By.CSS_SELECTOR, "button.card") if c.is_displayed()]
    assert len(visible) == len(entries) - len(zalo_cards)

    # Portal HTML that a broken renderer let through still runs nothing and loads nothing.
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    portal = next(i for i in entries if i.channel == "portal_stp")
    hostile = dataclasses.replace(
        portal,
        fields={
            **portal.fields,
            "content": "<p>ok</p><script>parent.document.title='pwned';"
            "document.body.append('RAN')</script>"
            f'<img src="{base}/pixel.png"><link rel="stylesheet" href="{base}/style.css">',
        },
    )
    hostile_file = tmp_path / "hostile.html"
    hostile_file.write_text(render_calendar([hostile], config, generated_at=RUNNING), "utf-8")
    try:
        browser.get(hostile_file.as_uri())
        frame = open_card(browser, hostile.id).find_element(By.CSS_SELECTOR, ".portal iframe")
        time.sleep(0.5)
        browser.switch_to.frame(frame)
        try:
            assert browser.find_element(By.TAG_NAME, "body").text == "ok"
        finally:
            browser.switch_to.default_content()
        assert browser.execute_script("return document.title") != "pwned"
        assert hits == []  # the page's CSP (inherited by the frame) refused both requests
    finally:
        server.shutdown()
        server.server_close()


def test_missing_chromium_is_a_failure_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        _require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        _require_chromium()


def test_every_explained_state_is_explained_in_vietnamese() -> None:
    from publisher.states import MEANING_VI, State, explain_vi

    said = {"held", "rejected", "retrying", "unconfirmed", "needs_review", "failed", "missed"}
    said |= {"handed_off"}  # mailed to a portal's desk, its confirmation awaited
    assert said | {"cancelled"} == set(MEANING_VI)  # every state a person must understand
    quiet = set(State) - set(MEANING_VI)
    assert quiet == {"draft", "approved", "sending", "published"}
    assert explain_vi("held", "held by tuan.la: chờ số liệu") == (
        "Bài đang bị tạm giữ, chưa đăng. Chi tiết: held by tuan.la: chờ số liệu"
    )
    assert explain_vi("missed", None) == MEANING_VI["missed"]
    assert all(explain_vi(state, "claimed by w1") is None for state in quiet)


def test_a_reschedule_does_not_hide_why_a_post_is_held(db: Database, config: Config) -> None:
    """An event that keeps the state (a reschedule, a time set in the file) is not the reason."""
    from publisher.store.history import transition

    load(db, config, NOW, "t")
    post = first_of(db, "facebook")
    set_state(db, post, NOW, "held", "held by tuan.la: chờ số liệu")
    with db.write() as s:
        p = s.get_one(PostRow, post)
        transition(s, p, "held", NOW, "rescheduled by tuan.la to 20/06/2024 08:00", "tuan.la")
    assert load_extra(db, [post])[post].reason == "held by tuan.la: chờ số liệu"
