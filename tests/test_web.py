"""The board's web app (publisher.web) through FastAPI's TestClient: logins, sessions and CSRF,
every page and button for each role, and refusals as Vietnamese pages with their reason."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from publisher.config import ApprovalRules, Config
from publisher.documents import preview
from publisher.editorial.load import load
from publisher.store import users
from publisher.store.db import Database
from publisher.store.models import AuditEntry, MediaFile, PostRow
from publisher.web.app import create_app
from publisher.web.context import WebContext
from tests.fakes import banner_name, picture_bytes, set_state

PASSWORD = "mật khẩu " + secrets.token_urlsafe(12)  # made per run: no secret in the file
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app_db(
    db: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> tuple[Database, Config]:
    """The campaign loaded (every post a draft); accounts are added as tests log in (``member``):
    tuan.la the approver, bientap an editor, vanphong a drafter."""
    monkeypatch.setenv("PUBLISHER_LANG", "vi")
    load(db, config, datetime.now(UTC), "vanphong")
    return db, config


def client(app_db: tuple[Database, Config]) -> TestClient:
    db, config = app_db
    return TestClient(create_app(WebContext(config, db)), follow_redirects=False)


def log_in(c: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log ``name`` in; the session's CSRF token (from the next page)."""
    form = c.get("/login")
    token = CSRF.search(form.text)
    assert token is not None
    r = c.post("/login", data={"username": name, "password": password, "csrf_token": token[1]})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    page = c.get("/")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found is not None
    return found[1]


def member(app_db: tuple[Database, Config], name: str) -> tuple[TestClient, str]:
    """A client logged in as ``name`` (the account made if need be) and its CSRF token."""
    db, config = app_db
    if users.find(db, config, name) is None:
        users.add_user(db, config, name, None, PASSWORD, actor="admin", now=datetime.now(UTC))
    c = client(app_db)
    return c, log_in(c, name)


def a_draft(db: Database, config: Config) -> preview.Item:
    return next(i for i in preview.items(db, config) if i.due_at and i.state == "draft")


def state_of(db: Database, post_id: int) -> str:
    with db.read() as s:
        post = s.get(PostRow, post_id)
        assert post is not None
        return str(post.state)


def test_pages_need_a_login_and_next_is_kept_only_when_local(
    app_db: tuple[Database, Config],
) -> None:
    c = client(app_db)
    r = c.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    r = c.get("/posts/3?x=1")
    assert r.headers["location"] == "/login?next=/posts/3%3Fx%3D1"
    for path in (
        "/posts",
        "/status",
        "/audit",
        "/report.docx",
        "/calendar.ics",
        "/messages/1/edit",
    ):
        assert c.get(path).headers["location"].startswith("/login"), path
    form = c.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in form.text
    assert 'name="username"' in form.text and 'name="password"' in form.text
    assert "Đăng nhập" in form.text


def test_login_sets_a_session_cookie_and_every_page_says_who(
    app_db: tuple[Database, Config],
) -> None:
    member(app_db, "tuan.la")  # the account
    c = client(app_db)
    form = c.get("/login")
    token = CSRF.search(form.text)
    assert token is not None
    r = c.post(
        "/login",
        data={
            "username": "tuan.la",
            "password": PASSWORD,
            "csrf_token": token[1],
            "next": "/status",
        },
    )
    assert (r.status_code, r.headers["location"]) == (303, "/status")
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "publisher_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http in the test; see test_secure_cookies
    page = c.get("/status").text
    assert "Lê Anh Tuấn" in page and "người duyệt" in page and "Đăng xuất" in page
    assert "Tình trạng" in page


def test_secure_cookies_when_configured_or_over_https(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c = TestClient(create_app(WebContext(config, db)), base_url="https://testserver")
    c.follow_redirects = False
    form = c.get("/login")
    assert "secure" in form.headers["set-cookie"].lower()


def test_login_refusals_are_vietnamese_and_rate_limited(app_db: tuple[Database, Config]) -> None:
    member(app_db, "tuan.la")  # the account
    c = client(app_db)
    token = CSRF.search(c.get("/login").text)
    assert token is not None
    r = c.post("/login", data={"username": "tuan.la", "password": "sai", "csrf_token": token[1]})
    assert r.status_code == 401 and "Sai tên hoặc mật khẩu" in r.text
    for _ in range(users.ACCOUNT_FAILURES):
        r = c.post(
            "/login", data={"username": "tuan.la", "password": "sai", "csrf_token": token[1]}
        )
    assert r.status_code == 429 and "quá nhiều lần" in r.text
    r = c.post("/login", data={"username": "tuan.la", "password": PASSWORD, "csrf_token": token[1]})
    assert r.status_code == 429  # even the right password waits
    assert "publisher_session" not in r.headers.get("set-cookie", "")


def test_login_without_its_csrf_token_is_refused(app_db: tuple[Database, Config]) -> None:
    member(app_db, "tuan.la")  # the account
    c = client(app_db)
    c.get("/login")
    r = c.post("/login", data={"username": "tuan.la", "password": PASSWORD})
    assert r.status_code == 403 and "csrf_token" in r.text
    r = c.post("/login", data={"username": "tuan.la", "password": PASSWORD, "csrf_token": "x"})
    assert r.status_code == 403


def test_a_post_without_the_sessions_csrf_token_is_refused(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c, _token = member(app_db, "tuan.la")
    post = a_draft(db, config)
    r = c.post(f"/posts/{post.id}/approve")
    assert r.status_code == 403 and "mã bảo mật" in r.text
    r = c.post(f"/posts/{post.id}/approve", data={"csrf_token": "not-the-token"})
    assert r.status_code == 403
    assert state_of(db, post.id) == "draft"
    r = client(app_db).post(f"/posts/{post.id}/approve", data={"csrf_token": "x"})
    assert r.status_code == 403  # no session at all


def test_a_drafter_may_not_approve(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c, token = member(app_db, "vanphong")
    post = a_draft(db, config)
    assert "Duyệt</button>" not in c.get(f"/posts/{post.id}").text  # no button offered
    r = c.post(f"/posts/{post.id}/approve", data={"csrf_token": token})
    assert r.status_code == 403
    assert "không có quyền duyệt bài" in r.text and "Văn phòng Sở" in r.text
    assert state_of(db, post.id) == "draft"


def test_approve_enters_the_audit_trail_under_the_member(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c, token = member(app_db, "tuan.la")
    post = a_draft(db, config)
    r = c.post(f"/posts/{post.id}/approve", data={"csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, f"/posts/{post.id}")
    assert state_of(db, post.id) == "approved"
    with db.read() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.post_id == post.id, AuditEntry.action == "approve")
        ).one()
    assert entry.actor == "Lê Anh Tuấn"
    page = c.get(f"/posts/{post.id}").text
    assert f"Đã duyệt: #{post.id}" in page  # the flash
    assert "Được Lê Anh Tuấn duyệt lúc" in page and "đúng là nội dung đã duyệt" in page


def test_four_eyes_and_two_steps_in_the_browser(app_db: tuple[Database, Config]) -> None:
    """With [board] approval_steps = ["editor", "approver"] an editor's approval is step 1 of 2
    (the post stays a draft and its page says what it waits for); the approver completes it; and
    whoever changed the text last may not approve it."""
    db, config = app_db
    stepped = (db, replace(config, approval=ApprovalRules(steps=("editor", "approver"))))
    post = a_draft(db, config)
    c, token = member(stepped, "bientap")
    c.post(f"/posts/{post.id}/approve", data={"csrf_token": token})
    assert state_of(db, post.id) == "draft"
    page = c.get(f"/posts/{post.id}").text
    assert "đã duyệt với vai trò biên tập viên (bước 1/2)" in page  # the flash
    assert "Bước 1 (biên tập viên): Ban biên tập đã duyệt lúc" in page
    assert "Bước 2 (người duyệt): đang chờ." in page
    c, token = member(stepped, "tuan.la")
    c.post(f"/posts/{post.id}/approve", data={"csrf_token": token})
    assert state_of(db, post.id) == "approved"
    # four eyes: a post whose text Lê Anh Tuấn changed last is not theirs to approve
    other = next(i for i in preview.items(db, config) if i.state == "draft" and i.id != post.id)
    with db.write() as s:
        s.get_one(PostRow, other.id).text_by = "Lê Anh Tuấn"
    c, token = member(app_db, "tuan.la")
    c.post(f"/posts/{other.id}/approve", data={"csrf_token": token})
    assert state_of(db, other.id) == "draft"
    assert f"Bài #{other.id} không được duyệt" in c.get(f"/posts/{other.id}").text


def test_bulk_approve_says_what_was_approved_and_what_was_refused(
    app_db: tuple[Database, Config],
) -> None:
    db, config = app_db
    c, token = member(app_db, "tuan.la")
    drafts = [i for i in preview.items(db, config) if i.due_at and i.state == "draft"][:3]
    c.post(f"/posts/{drafts[0].id}/approve", data={"csrf_token": token})
    listing = c.get("/posts").text
    assert "Duyệt các bài đã chọn" in listing and 'name="ids"' in listing
    r = c.post(
        "/posts/approve",
        data={"csrf_token": token, "ids": [str(d.id) for d in drafts]},
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert f"Đã duyệt: #{drafts[1].id}, #{drafts[2].id}." in page
    assert f"Bài #{drafts[0].id} không được duyệt" in page
    assert c.post("/posts/approve", data={"csrf_token": token}).status_code == 400
    r = c.post("/posts/approve", data={"csrf_token": token, "ids": "abc"})
    assert r.status_code == 400 and "ids" in r.text
    drafter, _token2 = member(app_db, "vanphong")
    assert 'name="ids"' not in drafter.get("/posts").text


def test_reject_needs_a_reason(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c, token = member(app_db, "bientap")
    post = a_draft(db, config)
    r = c.post(f"/posts/{post.id}/reject", data={"csrf_token": token, "reason": "  "})
    assert r.status_code == 400 and "reason" in r.text and "lý do" in r.text
    assert state_of(db, post.id) == "draft"
    r = c.post(f"/posts/{post.id}/reject", data={"csrf_token": token, "reason": "Sai số hiệu"})
    assert r.status_code == 303 and state_of(db, post.id) == "rejected"
    assert "Đã từ chối bài" in c.get(f"/posts/{post.id}").text


def test_hold_release_and_cancel(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c, token = member(app_db, "bientap")
    post = a_draft(db, config)
    c.post(f"/posts/{post.id}/hold", data={"csrf_token": token})
    assert state_of(db, post.id) == "held"
    c.post(f"/posts/{post.id}/release", data={"csrf_token": token})
    assert state_of(db, post.id) == "draft"
    c.post(f"/posts/{post.id}/cancel", data={"csrf_token": token, "reason": "trùng"})
    assert state_of(db, post.id) == "cancelled"
    r = c.post(f"/posts/{post.id}/release", data={"csrf_token": token})
    assert "Bị từ chối" in c.get(r.headers["location"]).text
    assert c.post(f"/posts/{post.id}/explode", data={"csrf_token": token}).status_code == 404


def test_reschedule_refusals_say_why(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    c, token = member(app_db, "bientap")
    post = a_draft(db, config)
    r = c.post(
        f"/posts/{post.id}/reschedule", data={"csrf_token": token, "when": "2031-01-01T09:00"}
    )
    page = c.get(r.headers["location"]).text
    assert "Không đổi được lịch" in page and "outside the campaign window" in page
    r = c.post(f"/posts/{post.id}/reschedule", data={"csrf_token": token, "when": "tomorrow"})
    assert r.status_code == 400 and "when" in r.text
    slot = config.channels[post.channel].slots[0]
    day = config.campaign.end
    when = f"{day:%Y-%m-%d}T{slot:%H:%M}"
    r = c.post(
        f"/posts/{post.id}/reschedule", data={"csrf_token": token, "when": when, "force": "1"}
    )
    assert "Đã đổi lịch đăng" in c.get(r.headers["location"]).text
    with db.read() as s:
        moved = s.get(PostRow, post.id)
        assert moved is not None and moved.due_at is not None
        assert f"{moved.due_at.astimezone(config.tz):%Y-%m-%dT%H:%M}" == when


def _message_file(config: Config, db: Database, post_id: int) -> Path:
    with db.read() as s:
        post = s.get(PostRow, post_id)
        assert post is not None
        return config.messages_dir / f"{post.message.key}.md"


def test_edit_revokes_the_approval_and_a_bad_file_is_refused_untouched(
    app_db: tuple[Database, Config],
) -> None:
    db, config = app_db
    c, token = member(app_db, "tuan.la")
    post = a_draft(db, config)
    c.post(f"/posts/{post.id}/approve", data={"csrf_token": token})
    path = _message_file(config, db, post.id)
    before = path.read_text("utf-8")
    page = c.get(f"/messages/{post.id}/edit").text
    assert "Lưu" in page and "hx-post" in page
    assert before.splitlines()[1] in page.replace("&#39;", "'").replace("&#34;", '"')
    changed = before.rstrip("\n") + "\n\nThêm một câu mới.\n"
    shown = c.post(f"/messages/{post.id}/preview", data={"csrf_token": token, "text": changed})
    assert shown.status_code == 200 and "Thêm một câu mới." in shown.text
    assert path.read_text("utf-8") == before  # a preview saves nothing
    r = c.post(f"/messages/{post.id}/edit", data={"csrf_token": token, "text": changed})
    assert r.status_code == 200 and "phê duyệt của các bài" in r.text and "duyệt lại" in r.text
    assert path.read_text("utf-8") == changed
    assert state_of(db, post.id) == "draft"
    bad = "---\nkind: nonsense\n---\nchữ\n"
    shown = c.post(f"/messages/{post.id}/preview", data={"csrf_token": token, "text": bad})
    assert "flash-bad" in shown.text and "kind" in shown.text
    r = c.post(f"/messages/{post.id}/edit", data={"csrf_token": token, "text": bad})
    assert r.status_code == 400 and "Chưa lưu, tệp giữ nguyên" in r.text
    assert path.read_text("utf-8") == changed
    drafter, token2 = member(app_db, "vanphong")
    r = drafter.post(
        f"/messages/{post.id}/edit", data={"csrf_token": token2, "text": changed + "x"}
    )
    assert r.status_code == 200 and "Đã lưu và nạp" in r.text  # drafters may edit
    assert c.get("/messages/..%2F..%2Fconfig/edit").status_code == 404


def test_status_and_pausing_a_channel(app_db: tuple[Database, Config]) -> None:
    _db, config = app_db
    c, token = member(app_db, "bientap")
    page = c.get("/status").text
    assert "Số bài theo trạng thái" in page and 'hx-trigger="every 10s"' in page
    channel = next(iter(config.channels))
    r = c.post("/status/pause", data={"csrf_token": token, "channel": channel, "paused": "1"})
    assert r.status_code == 303
    page = c.get("/status", headers={"HX-Request": "true"}).text
    assert "<html" not in page and "tạm dừng" in page
    r = c.post("/status/pause", data={"csrf_token": token, "channel": "nope", "paused": "1"})
    assert r.status_code == 400 and "channel" in r.text
    drafter, token2 = member(app_db, "vanphong")
    r = drafter.post(
        "/status/pause", data={"csrf_token": token2, "channel": channel, "paused": "0"}
    )
    assert r.status_code == 403 and "không có quyền" in r.text


def test_calendar_filters_and_htmx_swaps_the_grid(app_db: tuple[Database, Config]) -> None:
    _db, config = app_db
    c, _token = member(app_db, "tuan.la")
    page = c.get("/?month=2024-06").text
    assert "Tháng 6 năm 2024" in page and "Thứ Hai" in page
    channel = next(iter(config.channels))
    name = config.channels[channel].name
    others = [ch.name for cid, ch in config.channels.items() if cid != channel]
    grid = c.get(f"/?month=2024-06&channel={channel}", headers={"HX-Request": "true"}).text
    assert "<html" not in grid and 'id="grid"' in grid and name in grid
    assert not any(f"{o} ·" in grid for o in others)
    assert c.get("/?month=June").status_code == 400
    assert c.get("/?state=lost").status_code == 400
    assert c.get("/posts?kind=poem").status_code == 400
    assert c.get("/posts/abc").status_code == 400
    assert c.get("/posts/999999").status_code == 404
    assert c.get("/audit?page=0").status_code == 400


def test_post_page_shows_the_stored_render_escaped(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    post = a_draft(db, config)
    with db.write() as s:
        row = s.get(PostRow, post.id)
        assert row is not None
        row.fields = {**row.fields, "title": "<script>alert(1)</script>"}
        row.remote_url = "javascript:alert(1)"
    c, _token = member(app_db, "tuan.la")
    page = c.get(f"/posts/{post.id}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "javascript:alert" not in page
    assert "Lịch sử" in page and "Nhật ký kiểm tra của bài" in page


def test_downloads_and_the_audit_trail(app_db: tuple[Database, Config]) -> None:
    c, _token = member(app_db, "vanphong")
    ics = c.get("/calendar.ics")
    assert (
        ics.headers["content-type"].startswith("text/calendar")
        and b"BEGIN:VCALENDAR" in ics.content
    )
    docx = c.get("/report.docx")
    assert docx.status_code == 200 and docx.content[:2] == b"PK"
    assert "BÁO CÁO" in c.get("/report.html").text
    audit = c.get("/audit").text
    assert "Nhật ký kiểm tra" in audit and "login" in audit
    verified = c.get("/audit/verify").text
    assert "Nhật ký toàn vẹn" in verified


def test_healthz(app_db: tuple[Database, Config], tmp_path: Path) -> None:
    _db, config = app_db
    r = client(app_db).get("/healthz")
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["schema"]
    gone = Database(f"sqlite:///{tmp_path / 'missing' / 'queue.db'}")
    r = TestClient(create_app(WebContext(config, gone))).get("/healthz")
    assert r.status_code == 503 and r.json() == {"ok": False, "database": "unreachable"}


def test_logout_ends_the_session(app_db: tuple[Database, Config]) -> None:
    c, token = member(app_db, "tuan.la")
    cookie = c.cookies.get("publisher_session")
    assert cookie
    assert c.post("/logout").status_code == 403  # CSRF here too
    r = c.post("/logout", data={"csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert c.get("/").status_code == 303
    c.cookies.set("publisher_session", cookie)  # the old cookie opens nothing
    assert c.get("/").headers["location"] == "/login"


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ("port = 70000", "web.port"),
        ("port = 'x'", "web.port"),
        ("idle = 'soon'", "web.idle"),
        ("secure_cookies = 'yes'", "web.secure_cookies"),
        ("base_url = 'ftp://x'", "web.base_url"),
        ("host = 'a b'", "web.host"),
        ("colour = 'blue'", "colour"),
    ],
)
def test_the_web_table_is_checked(campaign: Path, table: str, where: str) -> None:
    from publisher.config import load_config
    from publisher.errors import ConfigError

    path = campaign / "config.toml"
    path.write_text(path.read_text("utf-8") + f"\n[web]\n{table}\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert where in str(caught.value) and "\n" not in str(caught.value)


def test_the_web_table_is_read(campaign: Path) -> None:
    from datetime import timedelta

    from publisher.config import load_config

    path = campaign / "config.toml"
    extra = "\n[web]\nhost = '192.0.2.10'\nport = 8443\nidle = '10m'\nsecure_cookies = true\n"
    path.write_text(path.read_text("utf-8") + extra + "base_url = 'https://lich.example.vn/'\n")
    web = load_config(path).web
    assert (web.host, web.port, web.idle, web.secure_cookies, web.base_url) == (
        "192.0.2.10",
        8443,
        timedelta(minutes=10),
        True,
        "https://lich.example.vn",
    )


# -- pictures ---------------------------------------------------------------------------------

BANNER_ALT = "Ảnh bìa Tháng hành động vì trẻ em năm 2024 của Sở Tư pháp tỉnh Bắc Giang"


def banner(config: Config) -> tuple[bytes, str]:
    data = (config.messages_dir / "media" / "thang-hanh-dong-vi-tre-em-2024.jpg").read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def test_the_post_page_shows_its_pictures_not_their_json(app_db: tuple[Database, Config]) -> None:
    db, config = app_db
    _data, sha = banner(config)
    post = a_draft(db, config)
    c, _token = member(app_db, "tuan.la")
    page = c.get(f"/posts/{post.id}").text
    assert "&#34;role&#34;" not in page and "sha256" not in page  # no raw JSON
    assert f'<img src="/media/{sha}/thumb" alt="{BANNER_ALT}' in page
    assert 'width="320" height="168"' in page
    assert f'href="/media/{sha}"' in page and "Hình ảnh" in page and "Ảnh bìa" in page
    assert f"{banner_name(config)} · 1200×630 px · 92 kB" in page


def test_an_address_picture_is_a_link_and_a_lost_file_is_named(
    app_db: tuple[Database, Config],
) -> None:
    db, config = app_db
    post = a_draft(db, config)
    media = [
        {"role": "cover", "alt": "Ảnh ngoài", "src": "https://anh.example.vn/bia.jpg",
         "url": "https://anh.example.vn/bia.jpg"},
        {"role": "image", "alt": "", "src": "media/mat.jpg", "name": "mat-0123456789ab.jpg",
         "mime": "image/jpeg", "sha256": "ab" * 32, "width": 800, "height": 600, "size": 1_800_000},
    ]  # fmt: skip
    with db.write() as s:
        row = s.get_one(PostRow, post.id)
        row.fields = {**row.fields, "media": json.dumps(media)}
    c, _token = member(app_db, "tuan.la")
    page = c.get(f"/posts/{post.id}").text
    assert 'href="https://anh.example.vn/bia.jpg"' in page and "Ảnh ngoài" in page
    assert 'src="https://' not in page  # never loaded: the page loads only its own pictures
    assert "mat-0123456789ab.jpg · 800×600 px · 1,8 MB" in page
    assert f"/media/{'ab' * 32}" not in page  # not stored: nothing to show
    assert "Không có văn bản thay thế (ảnh trang trí)" in page and "Không hiển thị ở đây" in page


def test_pictures_are_served_to_members_by_their_hash(app_db: tuple[Database, Config]) -> None:
    _db, config = app_db
    data, sha = banner(config)
    assert client(app_db).get(f"/media/{sha}").headers["location"] == f"/login?next=/media/{sha}"
    c, _token = member(app_db, "vanphong")
    r = c.get(f"/media/{sha}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "private, no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["etag"] == f'"{sha}"'
    assert r.headers["content-disposition"] == (f'inline; filename="{banner_name(config)}"')
    again = c.get(f"/media/{sha}", headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and again.content == b""
    thumb = c.get(f"/media/{sha}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"] == "private, no-cache"
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert (im.format, im.size) == ("JPEG", (320, 168))
    for path in (f"/media/{'0' * 64}", f"/media/{'0' * 64}/thumb", "/media/abc", "/media/%2E%2E"):
        r = c.get(path)
        assert r.status_code == 404 and "Không có ảnh nào được lưu" in r.text, path


def test_cards_and_the_list_show_each_posts_cover(app_db: tuple[Database, Config]) -> None:
    _db, config = app_db
    _data, sha = banner(config)
    c, _token = member(app_db, "tuan.la")
    grid = c.get("/?month=2024-06").text
    cards = grid.count('class="card ')
    assert (
        cards > 40
        and grid.count(f'<img class="card-cover" src="/media/{sha}/thumb" alt=""') == cards
    )
    listed = c.get("/posts").text
    assert listed.count(f'<img class="list-cover" src="/media/{sha}/thumb" alt="{BANNER_ALT}') == 72


def test_the_editors_preview_shows_a_picture_not_stored_yet(
    app_db: tuple[Database, Config],
) -> None:
    """A new picture in messages/media/ named by the edited text: the preview embeds its
    thumbnail (its bytes are in no database until the file is saved and loaded)."""
    db, config = app_db
    c, token = member(app_db, "bientap")
    post = a_draft(db, config)
    path = _message_file(config, db, post.id)
    new = picture_bytes(640, 480, seed=7)
    (config.messages_dir / "media" / "moi.jpg").write_bytes(new)
    text = path.read_text("utf-8").replace(
        "---\n", '---\ncover: {src: media/moi.jpg, alt: "Ảnh mới của bài"}\n', 1
    )
    shown = c.post(f"/messages/{post.id}/preview", data={"csrf_token": token, "text": text})
    assert shown.status_code == 200, shown.text
    found = re.findall(
        r'<img src="data:image/jpeg;base64,([^"]+)" alt="Ảnh mới của bài"', shown.text
    )
    assert found, shown.text  # each channel's render shows it
    with Image.open(io.BytesIO(base64.b64decode(found[0]))) as im:
        assert im.size == (320, 240)
    assert "moi-" in shown.text and "640×480 px" in shown.text
    with db.read() as s:  # a preview stores nothing
        assert s.get(MediaFile, hashlib.sha256(new).hexdigest()) is None
    page = c.get(f"/messages/{post.id}/edit")
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    _data, sha = banner(config)  # a picture the queue keeps comes from the app, cached
    before = path.read_text("utf-8")
    shown = c.post(f"/messages/{post.id}/preview", data={"csrf_token": token, "text": before})
    assert f'<img src="/media/{sha}/thumb" alt="{BANNER_ALT}' in shown.text
    assert "data:image" not in shown.text


def test_an_editor_confirms_a_hand_off_on_its_page(app_db: tuple[Database, Config]) -> None:
    """A post handed off to the PBGDPL desk shows the confirm form to an editor (not to a
    drafter); an address off the portal is refused with the reason, the portal's is taken."""
    db, config = app_db
    post = next(i for i in preview.items(db, config) if i.channel == "portal_pbgdpl")
    now = datetime.now(UTC)
    set_state(db, post.id, now, "handed_off", "handed off (test)", handed_off_at=now)
    drafter, _token = member(app_db, "vanphong")
    assert f'action="/posts/{post.id}/confirm"' not in drafter.get(f"/posts/{post.id}").text
    c, token = member(app_db, "bientap")
    page = c.get(f"/posts/{post.id}").text
    assert f'action="/posts/{post.id}/confirm"' in page and "Xác nhận đã đăng" in page
    assert "Tiêu đề thư" in page  # the mail's subject field, in Vietnamese
    assert f'action="/posts/{post.id}/reschedule"' not in page  # a hand-off is not rescheduled
    off = c.post(f"/posts/{post.id}/confirm", data={"csrf_token": token, "url": "https://x.vn/a"})
    assert "Chưa xác nhận được" in c.get(off.headers["location"]).text
    assert state_of(db, post.id) == "handed_off"
    url = "https://pbgdpl.example.gov.vn/tin-tuc/bai-1"
    done = c.post(f"/posts/{post.id}/confirm", data={"csrf_token": token, "url": url})
    assert f"Đã xác nhận: bài đã đăng tại {url}" in c.get(done.headers["location"]).text
    assert state_of(db, post.id) == "published"
    refused = c.post(f"/posts/{post.id}/confirm", data={"url": url})  # no CSRF token
    assert refused.status_code == 403


def test_a_database_error_is_logged_by_the_drivers_first_line_without_its_detail() -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from publisher.web.app import database_reason

    locked = OperationalError(
        "UPDATE post SET state=?", ("sent",), sqlite3.OperationalError("database is locked")
    )
    assert database_reason(locked) == "OperationalError: database is locked"
    # PostgreSQL's message, then a DETAIL line that may quote a row's values: only the first
    serial = OperationalError(
        "UPDATE post", {}, RuntimeError("could not serialize access\nDETAIL: key (id)=(7)")
    )
    assert database_reason(serial) == "RuntimeError: could not serialize access"
    assert database_reason(RuntimeError()) == "RuntimeError"
