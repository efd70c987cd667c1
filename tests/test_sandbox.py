"""The local sandbox over real HTTP on 127.0.0.1: each platform's wire contract, token rotation,
the fault kinds, the record file and the follower page. Time is a fake clock; "slow" never sleeps.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.clock import FakeClock
from publisher.sandbox import credentials as cred
from publisher.sandbox.faults import FaultPlan, FaultSpecError
from publisher.sandbox.server import MAX_BODY, Sandbox, main_serve
from publisher.signing import make_secret, sign, signing_key

NOW = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
PAGE = "100000000000000"
WP_AUTH = (cred.WORDPRESS_USER, cred.WORDPRESS_PASSWORD)
VIETNAMESE = unicodedata.normalize("NFC", "Tháng hành động vì trẻ em: “Quyền được bảo vệ” – đủ dấu")


class Box:
    """A started sandbox, its fake clock, a client at its URL and the sleeps it asked for."""

    def __init__(self, tmp: Path, faults: str = "", **kw: Any) -> None:
        self.clock = FakeClock(NOW)
        self.sleeps: list[float] = []
        self.record = tmp / "record.jsonl"
        plan = FaultPlan.parse(faults, seed=7)
        self.sb = Sandbox(
            record_path=self.record,
            seed=7,
            faults=plan,
            clock=self.clock,
            sleep=kw.pop("sleep", self.sleeps.append),
            **kw,
        ).start()
        self.http = httpx.Client(base_url=self.sb.url, timeout=10)
        self.refresh_token = cred.ZALO_FIRST_REFRESH_TOKEN

    def close(self) -> None:
        self.http.close()
        self.sb.stop()

    def faults(self, spec: str) -> None:
        assert self.http.post("/_sandbox/faults", json={"spec": spec, "seed": 7}).status_code == 200

    # -- per-platform helpers -----------------------------------------------------------------
    def fb_post(self, message: str, **more: Any) -> httpx.Response:
        data = {"message": message, "access_token": cred.FACEBOOK_PAGE_TOKEN, **more}
        return self.http.post(f"/facebook/v21.0/{PAGE}/feed", data=data)

    def zalo_refresh(self, refresh: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "app_id": "1000"}
        headers = {"secret_key": cred.ZALO_APP_SECRET}
        return self.http.post("/zalo/oauth/v4/oa/access_token", data=form, headers=headers)

    def zalo_token(self) -> str:
        """A fresh access token, spending the refresh token this box holds."""
        answer = self.zalo_refresh(self.refresh_token).json()
        self.refresh_token = answer["refresh_token"]
        return str(answer["access_token"])

    def zalo(self, token: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        headers = {"access_token": token}
        if body is None:
            r = self.http.get(f"/zalo/openapi/v2.0/{path}", headers=headers, params=params)
        else:
            r = self.http.post(f"/zalo/openapi/v2.0/{path}", headers=headers, json=body)
        assert r.status_code == 200, r.text
        assert r.headers["X-RateLimit-Limit"] == "4000"
        return dict(r.json())

    def wp_post(self, auth: tuple[str, str] = WP_AUTH, **body: Any) -> httpx.Response:
        return self.http.post("/wordpress/wp-json/wp/v2/posts", json=body, auth=auth)

    def hook(
        self, method: str, path: str, body: bytes = b"", key: str | None = None, **kw: Any
    ) -> httpx.Response:
        """A Standard Webhooks request: ``key`` is the webhook-id (and Idempotency-Key) of a
        POST; a GET gets a fresh id and signs "GET <path>"."""
        stamp = int(kw.pop("stamp", int(self.clock.now().timestamp())))
        secret = kw.pop("signer", cred.WEBHOOK_SIGNING_SECRET)
        msg_id = kw.pop("msg_id", key if method == "POST" else None) or f"msg_{stamp}_{path}"
        content = body if method == "POST" else f"GET {path}".encode()
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(signing_key(secret), msg_id, stamp, content),
            "Content-Type": "application/json; charset=utf-8",
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        headers.update(kw.pop("headers", {}))
        return self.http.request(method, path, content=body, headers=headers)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    b.close()


COVER = {"cover_type": "photo", "photo_url": "https://stp.example.gov.vn/anh.jpg", "status": "show"}


def article(title: str = "Tiêu đề", **more: Any) -> dict[str, Any]:
    body = [{"type": "text", "content": f"<p>{VIETNAMESE}</p>"}]
    return {"type": "normal", "title": title, "author": "Sở Tư pháp", "description": "Tóm tắt"} | {
        "cover": COVER,
        "body": body,
        "status": "show",
        **more,
    }


def hook_body(
    key: str, title: str = "Bài viết", html: str = "<p>Nội dung</p>", channel: str = "p"
) -> bytes:
    body = {
        "id": key,
        "channel": channel,
        "title": title,
        "body_html": html,
        "kind": "article",
        "slug": "bai-viet",
    }
    return json.dumps(body, ensure_ascii=False).encode()


# -- Facebook --------------------------------------------------------------------------------


def test_facebook_feed_post_is_created_listed_read_and_deleted(box: Box) -> None:
    r = box.fb_post(VIETNAMESE + " #pabc")
    assert r.status_code == 200
    post_id = r.json()["id"]
    assert post_id.startswith(PAGE + "_")
    assert json.loads(r.headers["X-App-Usage"])["call_count"] >= 0
    buc = json.loads(r.headers["X-Business-Use-Case-Usage"])
    assert buc[PAGE][0]["type"] == "pages"

    bearer = {"Authorization": f"Bearer {cred.FACEBOOK_PAGE_TOKEN}"}
    since = int((NOW - timedelta(minutes=5)).timestamp())
    params = {"fields": "id,message,created_time,permalink_url", "since": since, "limit": 10}
    listed = box.http.get(f"/facebook/{PAGE}/published_posts", params=params, headers=bearer)
    assert listed.status_code == 200
    [item] = listed.json()["data"]
    assert item["message"] == VIETNAMESE + " #pabc"
    assert item["created_time"] == "2024-06-01T01:00:00+0000"
    assert item["permalink_url"].endswith(f"/sandbox#facebook-{post_id}")

    one = box.http.get(
        f"/facebook/v19.0/{post_id}", params={"fields": "id,permalink_url"}, headers=bearer
    )
    assert set(one.json()) == {"id", "permalink_url"}
    page = box.http.get(f"/facebook/v21.0/{PAGE}", headers=bearer).json()
    assert page["id"] == PAGE and page["name"]

    assert box.http.delete(f"/facebook/{post_id}", headers=bearer).json() == {"success": True}
    assert box.http.get(f"/facebook/{PAGE}/feed", headers=bearer).json() == {"data": []}
    gone = box.http.delete(f"/facebook/{post_id}", headers=bearer)
    assert gone.status_code == 400 and gone.json()["error"]["code"] == 100


def test_facebook_photo_answers_photo_id_and_post_id(box: Box) -> None:
    r = box.http.post(
        f"/facebook/{PAGE}/photos",
        json={"url": "https://example.org/a.jpg", "caption": "Ảnh", "published": "true"},
        headers={"Authorization": f"Bearer {cred.FACEBOOK_PAGE_TOKEN}"},
    )
    assert r.status_code == 200
    assert set(r.json()) == {"id", "post_id"}
    assert box.sb.records()[0]["text"] == "Ảnh"


def test_facebook_bad_token_is_190_with_a_trace_id(box: Box) -> None:
    r = box.http.post(f"/facebook/v21.0/{PAGE}/feed", data={"message": "x", "access_token": "nope"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == 190 and err["type"] == "OAuthException" and err["fbtrace_id"]
    assert box.sb.records() == []


def test_facebook_pages_through_posts_with_the_after_cursor(box: Box) -> None:
    for n in range(3):
        box.fb_post(f"bài {n}")
    params = {"limit": 2, "access_token": cred.FACEBOOK_PAGE_TOKEN}
    first = box.http.get(f"/facebook/v21.0/{PAGE}/published_posts", params=params).json()
    assert [p["message"] for p in first["data"]] == ["bài 2", "bài 1"]
    second = httpx.get(first["paging"]["next"]).json()
    assert [p["message"] for p in second["data"]] == ["bài 0"]
    assert "next" not in second["paging"]


def test_facebook_scheduling_window_and_conflict(box: Box) -> None:
    in_an_hour = int((NOW + timedelta(hours=1)).timestamp())
    conflict = box.fb_post("x", scheduled_publish_time=str(in_an_hour))
    assert conflict.status_code == 400 and "published post" in conflict.json()["error"]["message"]
    too_soon = int((NOW + timedelta(minutes=5)).timestamp())
    early = box.fb_post("x", published="false", scheduled_publish_time=str(too_soon))
    assert early.json()["error"]["code"] == 100
    ok = box.fb_post("hẹn giờ", published="false", scheduled_publish_time=str(in_an_hour))
    assert ok.status_code == 200
    token = {"access_token": cred.FACEBOOK_PAGE_TOKEN}
    assert box.http.get(f"/facebook/{PAGE}/published_posts", params=token).json()["data"] == []
    assert len(box.http.get(f"/facebook/{PAGE}/scheduled_posts", params=token).json()["data"]) == 1
    box.clock.set(NOW + timedelta(hours=2))
    assert len(box.http.get(f"/facebook/{PAGE}/published_posts", params=token).json()["data"]) == 1


def test_facebook_duplicate_message_is_506_only_with_duplicate_check(box: Box) -> None:
    assert box.fb_post("cùng nội dung").status_code == 200
    assert box.fb_post("cùng nội dung").status_code == 200
    box.faults("facebook:duplicate-check")
    dup = box.fb_post("cùng nội dung")
    assert dup.status_code == 400 and dup.json()["error"]["code"] == 506
    box.clock.set(NOW + timedelta(minutes=6))
    assert box.fb_post("cùng nội dung").status_code == 200


# -- Zalo ------------------------------------------------------------------------------------


def test_zalo_article_create_verify_list_detail_broadcast(box: Box) -> None:
    token = box.zalo_token()
    assert box.zalo(token, "oa/getoa")["data"]["oa_type"] == 4
    created = box.zalo(token, "article/create", article())
    assert created["error"] == 0
    verified = box.zalo(token, "article/verify", {"token": created["data"]["token"]})
    article_id = verified["data"]["id"]
    again = box.zalo(token, "article/verify", {"token": created["data"]["token"]})
    assert again["data"]["id"] == article_id
    medias = box.zalo(token, "article/getslice", offset=0, limit=10)["data"]["medias"]
    assert [m["id"] for m in medias] == [article_id]
    assert medias[0]["create_date"] == int(NOW.timestamp())
    assert box.zalo(token, "article/getdetail", id=article_id)["data"]["title"] == "Tiêu đề"
    payload = {
        "template_type": "media",
        "elements": [{"media_type": "article", "attachment_id": article_id}],
    }
    message = {"attachment": {"type": "template", "payload": payload}}
    sent = box.zalo(token, "oa/message", {"recipient": {"target": {}}, "message": message})
    assert sent["error"] == 0 and sent["data"]["message_id"]
    kinds = [(r["platform"], r["kind"]) for r in box.sb.records()]
    assert kinds == [("zalo", "article"), ("zalo", "broadcast")]
    assert box.sb.records()[0]["text"] == f"<p>{VIETNAMESE}</p>"


def test_zalo_enforces_article_limits_with_http_200(box: Box) -> None:
    token = box.zalo_token()
    assert box.zalo(token, "article/create", article("T" * 151))["error"] == -210
    assert box.zalo(token, "article/create", article("T" * 150))["error"] == -210  # in practice
    assert box.zalo(token, "article/create", article(author="A" * 51))["error"] == -210
    assert box.zalo(token, "article/create", article(description="D" * 301))["error"] == -210
    assert box.zalo(token, "article/create", article("T" * 149))["error"] == 0
    assert box.zalo(token, "article/create", article(author="A" * 50))["error"] == 0
    assert box.zalo(token, "article/create", article(description="D" * 300))["error"] == 0
    assert box.zalo(token, "article/create", article(body=[]))["error"] == -201
    assert box.zalo(token, "article/verify", {"token": "unknown"})["error"] == -201
    assert box.zalo("not-a-token", "oa/getoa")["error"] == -216


def test_zalo_refresh_tokens_are_single_use_and_rotate(box: Box) -> None:
    first = box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()
    assert first["expires_in"] == "90000"
    reused = box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()
    assert reused["error"] == -14014 and reused["error_name"] == "Invalid refresh token"
    assert box.zalo(first["access_token"], "oa/getoa")["error"] == 0
    second = box.zalo_refresh(first["refresh_token"]).json()
    assert box.zalo(first["access_token"], "oa/getoa")["error"] == -216
    assert box.zalo(second["access_token"], "oa/getoa")["error"] == 0
    assert box.zalo_refresh(first["refresh_token"]).json()["error"] == -14014
    forged = first["refresh_token"][:-1] + ("0" if first["refresh_token"][-1] != "0" else "1")
    assert box.zalo_refresh(forged).json()["error"] == -14014
    bad_secret = box.http.post(
        "/zalo/oauth/v4/oa/access_token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second["refresh_token"],
            "app_id": "1",
        },
        headers={"secret_key": "wrong"},
    )
    assert bad_secret.status_code == 200 and bad_secret.json()["error"] == -14004


def test_zalo_refresh_token_from_an_earlier_sandbox_is_accepted_once(tmp_path: Path) -> None:
    earlier = Box(tmp_path)
    issued = earlier.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()["refresh_token"]
    earlier.close()
    later = Box(tmp_path)
    try:
        fresh = later.zalo_refresh(issued).json()
        assert fresh["access_token"] and fresh["refresh_token"] != issued
        assert later.zalo_refresh(issued).json()["error"] == -14014
        assert later.zalo(fresh["access_token"], "oa/getoa")["error"] == 0
    finally:
        later.close()


def test_zalo_access_token_dies_after_its_ttl(tmp_path: Path) -> None:
    b = Box(tmp_path, access_token_ttl=3600)
    try:
        first = b.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()
        assert first["expires_in"] == "3600"
        b.clock.set(NOW + timedelta(seconds=3599))
        assert b.zalo(first["access_token"], "oa/getoa")["error"] == 0
        b.clock.set(NOW + timedelta(seconds=3600))
        assert b.zalo(first["access_token"], "oa/getoa")["error"] == -220
    finally:
        b.close()


# -- WordPress -------------------------------------------------------------------------------


def test_wordpress_create_answers_201_with_location_and_edit_context(box: Box) -> None:
    r = box.wp_post(
        title="Tiêu đề", content=f"<p>{VIETNAMESE}</p>", status="publish", slug="chien-dich-1"
    )
    assert r.status_code == 201
    post = r.json()
    assert r.headers["Location"].endswith(f"/wordpress/wp-json/wp/v2/posts/{post['id']}")
    assert post["slug"] == "chien-dich-1" and post["status"] == "publish"
    assert post["date_gmt"] == "2024-06-01T01:00:00" and post["date"] == "2024-06-01T08:00:00"
    assert post["content"]["raw"] == f"<p>{VIETNAMESE}</p>" and post["link"]
    me = box.http.get("/wordpress/wp-json/wp/v2/users/me", auth=WP_AUTH, params={"context": "edit"})
    assert me.json()["roles"] == ["editor"]


def test_wordpress_slug_collision_gets_a_numbered_suffix_and_lookup_sees_both(box: Box) -> None:
    assert (
        box.wp_post(title="A", content="a", status="publish", slug="bai-viet").json()["slug"]
        == "bai-viet"
    )
    assert (
        box.wp_post(title="A", content="a", status="publish", slug="bai-viet").json()["slug"]
        == "bai-viet-2"
    )
    assert (
        box.wp_post(title="A", content="a", status="draft", slug="bai-viet").json()["slug"]
        == "bai-viet-3"
    )
    params = {
        "slug": "bai-viet,bai-viet-2",
        "status": "any",
        "context": "edit",
        "_fields": "id,slug,status",
    }
    found = box.http.get("/wordpress/wp-json/wp/v2/posts", params=params, auth=WP_AUTH)
    assert found.headers["X-WP-Total"] == "2"
    assert {p["slug"] for p in found.json()} == {"bai-viet", "bai-viet-2"}
    assert set(found.json()[0]) == {"id", "slug", "status"}


def test_wordpress_vietnamese_title_makes_an_ascii_slug(box: Box) -> None:
    r = box.wp_post(title="Quyền trẻ em – Đường dây 111", content="x", status="publish")
    assert r.json()["slug"] == "quyen-tre-em-duong-day-111"


def test_wordpress_roles_passwords_and_forbidden_status(box: Box) -> None:
    contributor = (cred.WORDPRESS_CONTRIBUTOR, cred.WORDPRESS_PASSWORD.replace(" ", ""))
    denied = box.wp_post(auth=contributor, title="A", content="a", status="publish", slug="x")
    assert denied.status_code == 403 and denied.json()["code"] == "rest_cannot_publish"
    assert box.wp_post(auth=contributor, title="A", content="a", status="draft").status_code == 201
    wrong = box.wp_post(auth=(cred.WORDPRESS_USER, "abcd"), title="A", content="a")
    assert wrong.status_code == 401 and wrong.json()["code"] == "incorrect_password"
    anonymous = box.http.post("/wordpress/wp-json/wp/v2/posts", json={"title": "A"})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "rest_cannot_create"
    hidden = box.http.get("/wordpress/wp-json/wp/v2/posts", params={"status": "any"})
    assert hidden.status_code == 401 and hidden.json()["code"] == "rest_forbidden_status"
    bad = box.wp_post(title="A", content="a", status="published")
    assert bad.status_code == 400 and bad.json()["code"] == "rest_invalid_param"
    assert "status" in bad.json()["data"]["params"]


def test_wordpress_future_date_trash_and_force_delete(box: Box) -> None:
    later = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    post = box.wp_post(title="A", content="a", status="publish", slug="sau", date_gmt=later).json()
    assert post["status"] == "future" and post["date_gmt"] == later
    url = f"/wordpress/wp-json/wp/v2/posts/{post['id']}"
    assert box.http.delete(url, auth=WP_AUTH).json()["status"] == "trash"
    params = {"slug": "sau", "status": "any"}
    assert box.http.get("/wordpress/wp-json/wp/v2/posts", params=params, auth=WP_AUTH).json() == []
    assert box.wp_post(title="A", content="a", status="publish", slug="sau").json()["slug"] == "sau"
    assert box.http.delete(url, auth=WP_AUTH).status_code == 410
    assert box.http.delete(url, params={"force": "true"}, auth=WP_AUTH).json()["deleted"] is True


# -- webhook ---------------------------------------------------------------------------------


def test_webhook_signed_create_replay_conflict_and_lookup(box: Box) -> None:
    key = "0b9d6a7e-2f1c-4c55-9a53-5d8a3c0e7f11"
    body = hook_body(key, channel="portal_pbgdpl")
    created = box.hook("POST", "/webhook/portal_pbgdpl", body, key)
    assert created.status_code == 201
    replay = box.hook("POST", "/webhook/portal_pbgdpl", body, key)
    assert replay.status_code == 200 and replay.json() == created.json()
    other = box.hook(
        "POST", "/webhook/portal_pbgdpl", hook_body(key, "Khác", channel="portal_pbgdpl"), key
    )
    assert other.status_code == 422
    mismatched = box.hook(
        "POST",
        "/webhook/portal_pbgdpl",
        hook_body("k2", channel="portal_pbgdpl"),
        "k2",
        headers={"Idempotency-Key": "k3"},
    )
    assert mismatched.status_code == 400
    found = box.hook("GET", f"/webhook/portal_pbgdpl/{key}")
    assert found.status_code == 200 and found.json() == created.json()
    assert box.hook("GET", f"/webhook/portal_stp/{key}").status_code == 404  # another channel's
    assert box.hook("GET", "/webhook/portal_pbgdpl/unknown").status_code == 404
    assert box.hook("GET", "/webhook/portal_pbgdpl").json() == {"ok": True}
    assert len(box.sb.records()) == 1


def test_webhook_ids_are_deduplicated_across_paths(box: Box) -> None:
    assert box.hook("POST", "/webhook/a", hook_body("k1", channel="a"), "k1").status_code == 201
    # the same message id on another endpoint, even with a body made for it, is not a new item
    again = box.hook("POST", "/webhook/b", hook_body("k1", channel="b"), "k1")
    assert again.status_code == 422
    # and the body of one endpoint is refused at another
    moved = box.hook("POST", "/webhook/b", hook_body("k2", channel="a"), "k2")
    assert moved.status_code == 400 and moved.json()["error"] == "wrong_channel"
    assert [r["remote_id"] for r in box.sb.records()] == ["1001"]


def test_webhook_signed_gets_bind_their_path(box: Box) -> None:
    box.hook("POST", "/webhook/p", hook_body("k1"), "k1")
    box.hook("POST", "/webhook/p", hook_body("k2"), "k2")
    stamp = int(box.clock.now().timestamp())
    key = signing_key(cred.WEBHOOK_SIGNING_SECRET)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(key, "msg_1", stamp, b"GET /webhook/p/k1"),
    }
    assert box.http.get("/webhook/p/k1", headers=headers).status_code == 200
    assert box.http.get("/webhook/p/k2", headers=headers).status_code == 401
    assert box.http.get("/webhook/p", headers=headers).status_code == 401


def test_webhook_rejects_bad_signatures_and_stale_timestamps(box: Box) -> None:
    body = hook_body("k1")
    other = make_secret(b"x" * 32)
    assert box.hook("POST", "/webhook/p", body, "k1", signer=other).status_code == 401
    stale = int((NOW - timedelta(seconds=301)).timestamp())
    assert box.hook("POST", "/webhook/p", body, "k1", stamp=stale).status_code == 401
    tampered = box.http.post("/webhook/p", content=body, headers={"Idempotency-Key": "k1"})
    assert tampered.status_code == 401
    old_scheme = box.http.post(
        "/webhook/p",
        content=body,
        headers={"X-Publisher-Timestamp": str(int(NOW.timestamp())), "Idempotency-Key": "k1"},
    )
    assert old_scheme.status_code == 401
    assert box.sb.records() == []


def test_webhook_same_key_while_the_first_is_running_is_409(tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        entered.set()
        release.wait(5)

    b = Box(tmp_path, faults="webhook:slow=1:3", sleep=sleep)
    try:
        body = hook_body("k1")
        first: list[httpx.Response] = []
        worker = threading.Thread(
            target=lambda: first.append(b.hook("POST", "/webhook/p", body, "k1"))
        )
        worker.start()
        assert entered.wait(5)
        assert b.hook("POST", "/webhook/p", body, "k1").status_code == 409
        release.set()
        worker.join(5)
        assert first[0].status_code == 201
        assert b.hook("POST", "/webhook/p", body, "k1").status_code == 200
    finally:
        release.set()
        b.close()


# -- faults ----------------------------------------------------------------------------------


def send(box: Box, platform: str) -> httpx.Response:
    """One create request of ``platform`` (Zalo: article/create with a fresh token)."""
    if platform == "facebook":
        return box.fb_post(VIETNAMESE)
    if platform == "wordpress":
        return box.wp_post(title="Tiêu đề", content=VIETNAMESE, status="publish", slug="s")
    if platform == "webhook":
        return box.hook("POST", "/webhook/p", hook_body("k9"), "k9")
    token = box.zalo_token()
    return box.http.post(
        "/zalo/openapi/v2.0/article/create", json=article(), headers={"access_token": token}
    )


@pytest.mark.parametrize(
    ("platform", "status"), [("facebook", 500), ("wordpress", 500), ("webhook", 503), ("zalo", 503)]
)
def test_error_before_answers_5xx_and_creates_nothing(box: Box, platform: str, status: int) -> None:
    box.faults(f"{platform}:error-before=x1")
    r = send(box, platform)
    assert r.status_code == status
    if platform == "facebook":
        assert r.json()["error"]["code"] == 1
    assert box.sb.records() == []
    assert send(box, platform).status_code in (200, 201)


@pytest.mark.parametrize("platform", ["facebook", "wordpress", "webhook", "zalo"])
def test_create_then_fail_answers_5xx_but_the_record_holds_the_item(
    box: Box, platform: str
) -> None:
    box.faults(f"{platform}:create-then-fail=x1")
    r = send(box, platform)
    assert r.status_code == 500
    [record] = box.sb.records()
    assert record["platform"] == platform
    if platform == "facebook":
        assert r.json()["error"]["code"] == 2
        assert box.http.get(
            f"/facebook/{PAGE}/feed", params={"access_token": cred.FACEBOOK_PAGE_TOKEN}
        ).json()["data"]
    if platform == "wordpress":
        params = {"slug": "s", "status": "any"}
        assert box.http.get("/wordpress/wp-json/wp/v2/posts", params=params, auth=WP_AUTH).json()
    if platform == "webhook":
        replay = box.hook("POST", "/webhook/p", hook_body("k9"), "k9")
        assert replay.status_code == 200 and replay.json()["id"] == record["remote_id"]
    if platform == "zalo":
        token = box.sb.tokens.current or ""
        medias = box.zalo(token, "article/getslice")["data"]["medias"]
        assert [m["id"] for m in medias] == [record["remote_id"]]


def test_zalo_create_then_fail_at_verify_answers_an_error_for_a_live_article(box: Box) -> None:
    box.faults("zalo:create-then-fail=x1:verify")
    token = box.zalo_token()
    created = box.zalo(token, "article/create", article())
    assert created["error"] == 0 and len(box.sb.records()) == 1
    r = box.http.post(
        "/zalo/openapi/v2.0/article/verify",
        json={"token": created["data"]["token"]},
        headers={"access_token": token},
    )
    assert r.status_code == 502 or r.json()["error"] in (-32, -100)
    assert len(box.zalo(token, "article/getslice")["data"]["medias"]) == 1
    assert len(box.sb.records()) == 1


def test_zalo_processing_answers_214_for_the_first_verifies(box: Box) -> None:
    box.faults("zalo:processing=x1:2")
    token = box.zalo_token()
    process = box.zalo(token, "article/create", article())["data"]["token"]
    assert box.zalo(token, "article/getslice")["data"]["medias"] == []
    assert box.zalo(token, "article/verify", {"token": process})["error"] == -214
    assert box.zalo(token, "article/verify", {"token": process})["error"] == -214
    assert box.zalo(token, "article/verify", {"token": process})["data"]["id"]
    assert len(box.sb.records()) == 1


def test_slow_sleeps_after_storing(box: Box) -> None:
    box.faults("*:slow=1:0.25")
    for platform in ("facebook", "wordpress", "webhook", "zalo"):
        assert send(box, platform).status_code in (200, 201)
    assert box.sleeps == [0.25, 0.25, 0.25, 0.25]
    assert len(box.sb.records()) == 4


def test_throttle_answers_each_platforms_rate_limit(box: Box) -> None:
    box.faults("*:throttle=1")
    fb = send(box, "facebook")
    assert fb.status_code == 400 and fb.json()["error"]["code"] in (4, 32, 80001)
    buc = json.loads(fb.headers["X-Business-Use-Case-Usage"])
    assert buc[PAGE][0]["estimated_time_to_regain_access"] == 1
    for platform in ("wordpress", "webhook"):
        r = send(box, platform)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert send(box, "zalo").json()["error"] == -32
    assert box.sb.records() == []


def test_token_expiry_kills_the_zalo_token_until_a_refresh(box: Box) -> None:
    first = box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()
    box.faults("zalo:token-expiry=x1,facebook:token-expiry=x1")
    assert box.zalo(first["access_token"], "article/create", article())["error"] == -216
    assert box.zalo(first["access_token"], "oa/getoa")["error"] == -216
    second = box.zalo_refresh(first["refresh_token"]).json()
    assert box.zalo(second["access_token"], "article/create", article())["error"] == 0
    fb = box.fb_post("x").json()["error"]
    assert (fb["code"], fb["error_subcode"]) == (190, 463)


def test_refresh_then_fail_spends_the_refresh_token(box: Box) -> None:
    box.faults("zalo:refresh-then-fail=x1")
    assert box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).status_code == 500
    assert box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()["error"] == -14014


def test_refresh_expired_refuses_the_token_without_spending_it(box: Box) -> None:
    """The refresh token refused as dead (-14014, nothing rotated); once the fault is over (the
    OA re-authorised), the same token refreshes."""
    box.faults("zalo:refresh-expired=x1")
    refused = box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN)
    assert refused.json()["error"] == -14014
    assert "access_token" in box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()


def test_facebook_policy_block_and_permission(box: Box) -> None:
    box.faults("facebook:permission=x1")
    denied = box.fb_post("x")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == 200
    box.faults("facebook:policy-block=x1")
    assert box.fb_post("x").json()["error"]["code"] == 368
    assert box.sb.records() == []


def test_fault_grammar_and_seeded_sequences() -> None:
    plan = FaultPlan.parse(
        "facebook:create-then-fail=0.1, zalo:token-expiry=0.05,*:slow=0.05:2.0", 3
    )
    assert plan.spec() == "facebook:create-then-fail=0.1,zalo:token-expiry=0.05,*:slow=0.05:2.0"
    for bad in (
        "facebook",
        "myspace:throttle",
        "facebook:explode",
        "wordpress:processing",
        "*:slow=2",
    ):
        with pytest.raises(FaultSpecError):
            FaultPlan.parse(bad)

    def run(seed: int) -> list[list[str]]:
        p = FaultPlan.parse("*:error-before=0.3,facebook:throttle=0.2", seed)
        return [sorted(p.draw(pl).rules) for pl in ["facebook", "zalo", "webhook"] * 30]

    assert run(1) == run(1)
    assert run(1) != run(2)
    counted = FaultPlan.parse("webhook:error-before=x2")
    assert ["error-before" in counted.draw("webhook") for _ in range(3)] == [True, True, False]


def test_same_seed_gives_the_same_faults_over_http(tmp_path: Path) -> None:
    outcomes = []
    for n in range(2):
        b = Box(tmp_path / str(n), faults="facebook:error-before=0.5")
        outcomes.append([b.fb_post(f"m{i}").status_code for i in range(12)])
        b.close()
    assert outcomes[0] == outcomes[1] and {200, 500} <= set(outcomes[0])


# -- as strict as the platforms by default; lenient only by flag ----------------------------


def zalo_create(box: Box, token: str, body: dict[str, Any]) -> tuple[int, str]:
    answer = box.zalo(token, "article/create", body)
    return int(answer["error"]), str(answer["message"])


def test_zalo_refuses_an_article_without_a_cover_unless_lenient(box: Box) -> None:
    token = box.zalo_token()
    bare = {k: v for k, v in article().items() if k != "cover"}
    assert zalo_create(box, token, bare) == (-201, "cover is invalid!")  # platform-apis.md §7
    plain = {"cover_type": "photo", "photo_url": "http://stp.example.gov.vn/a.jpg"}
    assert zalo_create(box, token, article(cover=plain))[0] == -201  # not https
    assert zalo_create(box, token, article(cover={"cover_type": "photo"}))[0] == -201
    assert zalo_create(box, token, article(status="visible"))[0] == -201  # show | hide
    assert zalo_create(box, token, article(comment="on"))[0] == -201
    assert box.sb.records() == []
    box.faults("zalo:require-cover")  # the old flag still parses: it is the default now
    assert zalo_create(box, token, bare)[0] == -201
    box.faults("zalo:lenient")
    assert zalo_create(box, token, bare)[0] == 0
    assert zalo_create(box, token, article("T" * 150))[0] == 0  # the documented ≤ 150
    assert zalo_create(box, token, article("T" * 151))[0] == -210
    box.faults("zalo:lenient,zalo:require-cover")  # lenient but for the cover
    assert zalo_create(box, token, bare)[0] == -201
    box.faults("*:lenient")
    assert zalo_create(box, token, bare)[0] == 0


def test_facebook_refuses_a_message_over_63206_characters_unless_lenient(box: Box) -> None:
    longest = "ả" * 63206
    assert box.fb_post(longest).status_code == 200
    r = box.fb_post(longest + "x")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == 100 and "63206" in r.json()["error"]["message"]
    photo = {"url": "https://stp.example.gov.vn/a.jpg", "caption": longest + "x"}
    data = {**photo, "access_token": cred.FACEBOOK_PAGE_TOKEN}
    r = box.http.post(f"/facebook/v26.0/{PAGE}/photos", data=data)
    assert r.status_code == 400 and r.json()["error"]["code"] == 100
    r = box.fb_post("có liên kết", link="không phải địa chỉ")
    assert r.status_code == 400 and r.json()["error"]["code"] == 100
    data = {"url": "anh.jpg", "caption": "x", "access_token": cred.FACEBOOK_PAGE_TOKEN}
    assert box.http.post(f"/facebook/v26.0/{PAGE}/photos", data=data).status_code == 400
    assert len(box.sb.records()) == 1
    box.faults("facebook:lenient")
    assert box.fb_post(longest + "x").status_code == 200


def test_wordpress_refuses_an_empty_post_unless_lenient(box: Box) -> None:
    r = box.wp_post(title="", content="", excerpt="", status="publish", slug="trong")
    assert r.status_code == 400
    assert r.json()["code"] == "empty_content"
    assert r.json()["message"] == "Content, title, and excerpt are empty."
    assert box.wp_post(title="", content="<p>x</p>", status="publish").status_code == 201
    box.faults("wordpress:lenient")
    assert box.wp_post(title="", content="", status="publish", slug="trong").status_code == 201


def test_lenient_is_a_flag_for_the_platforms_with_strict_checks() -> None:
    plan = FaultPlan.parse("zalo:lenient,facebook:lenient=0")
    assert plan.flag("zalo", "lenient") is not None
    assert plan.flag("facebook", "lenient") is None
    assert plan.draw("zalo").rules == {}  # a flag, never drawn
    with pytest.raises(FaultSpecError, match="lenient applies only to"):
        FaultPlan.parse("webhook:lenient")
    assert FaultPlan.parse("zalo:require-cover").spec() == "zalo:require-cover=1"


# -- control, record, page -------------------------------------------------------------------


def test_control_endpoints_set_faults_list_records_reset_and_move_the_clock(box: Box) -> None:
    r = box.http.post("/_sandbox/faults", content=b"wordpress:throttle=x1")
    assert r.json()["spec"] == "wordpress:throttle=x1"
    assert box.http.post("/_sandbox/faults", json={"spec": "nope"}).status_code == 400
    assert box.http.get("/_sandbox/faults").json()["spec"] == "wordpress:throttle=x1"
    box.fb_post("một")
    assert [r["text"] for r in box.http.get("/_sandbox/records").json()] == ["một"]
    assert box.http.post("/_sandbox/reset").json() == {"ok": True}
    assert box.http.get("/_sandbox/records").json() == []
    assert box.zalo_refresh(cred.ZALO_FIRST_REFRESH_TOKEN).json()["access_token"]
    moved = box.http.post("/_sandbox/clock", json={"advance": 3600}).json()["now"]
    assert datetime.fromisoformat(moved) == NOW + timedelta(hours=1)


def test_record_file_has_one_json_line_per_item_with_text_byte_for_byte(box: Box) -> None:
    box.fb_post(VIETNAMESE)
    box.wp_post(title=VIETNAMESE, content=f"<p>{VIETNAMESE}</p>", status="publish", slug="v")
    box.hook("POST", "/webhook/p", hook_body("k1", html=VIETNAMESE), "k1")
    raw = box.record.read_bytes()
    assert raw.count(VIETNAMESE.encode("utf-8")) >= 4  # FB text, WP title+text, webhook text
    lines = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    assert [r["platform"] for r in lines] == ["facebook", "wordpress", "webhook"]
    assert lines[0]["text"] == VIETNAMESE and lines[0]["channel"] == PAGE
    assert lines[1]["text"] == f"<p>{VIETNAMESE}</p>" and lines[1]["title"] == VIETNAMESE
    assert all(datetime.fromisoformat(r["time"]) == NOW for r in lines)
    assert lines == box.sb.records()
    assert cred.FACEBOOK_PAGE_TOKEN not in raw.decode("utf-8")


def test_page_shows_items_newest_first_and_escapes_scripts(box: Box) -> None:
    box.fb_post("cũ")
    box.fb_post('<script>alert("x")</script> mới')
    page = box.http.get("/sandbox")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert page.text.index("mới") < page.text.index("cũ")
    assert "http" not in page.text.split("<body>")[1].replace(box.sb.url, "")
    assert box.http.get("/").text == page.text


def test_main_serve_prints_the_url_and_the_test_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Sandbox, "serve_forever", Sandbox.stop)
    main_serve(0, None, "facebook:throttle=0.1", 5)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out and "facebook:throttle=0.1" in out
    assert cred.FACEBOOK_PAGE_TOKEN in out and cred.ZALO_FIRST_REFRESH_TOKEN in out
    assert f"username={cred.MAIL_USER}  password={cred.MAIL_PASSWORD}" in out
    assert "  mail:      smtp://127.0.0.1:" in out and "/_sandbox/smtp" in out


# -- who may talk to the sandbox (issue 12, item 28) ---------------------------------------------


def raw_request(
    box: Box, head: str, body: bytes = b"", *, send_all: bool = True
) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, CRLF-joined, no blank line) and ``body`` over a
    fresh socket; return the status and the whole answer. The socket gives up after 20 s, so a
    server still waiting for a body it should have refused fails the test instead of hanging."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(box.sb.url)
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + (body if send_all else b""))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        status = int(answer.split(b" ", 2)[1])
        length = 0
        for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(answer.split(b"\r\n\r\n", 1)[1]) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return status, answer


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8765",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.0.0.5",
        "[::2]:80",
        "",
    ],
)
@pytest.mark.parametrize(
    "request_line",
    [
        "GET /_sandbox/records",
        "GET /",
        "GET /sandbox",
        "POST /_sandbox/reset",
        "POST /webhook/portal",
        "GET /facebook/v21.0/me",
    ],
)
def test_a_request_with_a_foreign_host_is_refused(box: Box, host: str, request_line: str) -> None:
    box.fb_post("kept")
    header = f"\r\nHost: {host}" if host else ""
    status, answer = raw_request(
        box, f"{request_line} HTTP/1.1{header}\r\nContent-Length: 0\r\nConnection: close"
    )
    assert status == 403, answer
    assert b"loopback" in answer
    assert len(box.sb.records()) == 1  # the reset did not happen


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:1", "localhost", "LOCALHOST:9", "[::1]:8765", "127.8.9.10"]
)
def test_a_loopback_host_on_any_port_is_served(box: Box, host: str) -> None:
    status, answer = raw_request(
        box, f"GET /_sandbox/records HTTP/1.1\r\nHost: {host}\r\nConnection: close"
    )
    assert status == 200, answer


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "https://127.0.0.1.evil.example", "null"]
)
@pytest.mark.parametrize("what", ["faults", "reset", "clock"])
def test_control_posts_from_a_foreign_origin_are_refused(box: Box, origin: str, what: str) -> None:
    box.fb_post("kept")
    before = box.sb.now()
    body = {"faults": {"spec": "*:error-before=1"}, "reset": {}, "clock": {"advance": 3600}}[what]
    answer = box.http.post(f"/_sandbox/{what}", json=body, headers={"Origin": origin})
    assert answer.status_code == 403, answer.text
    assert box.sb.ctx.faults.spec() == "" and len(box.sb.records()) == 1
    assert box.sb.now() == before


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:5173", "http://localhost", "http://[::1]:8000", None]
)
def test_control_posts_from_loopback_or_without_origin_are_served(
    box: Box, origin: str | None
) -> None:
    headers = {"Origin": origin} if origin else {}
    answer = box.http.post("/_sandbox/faults", json={"spec": "*:slow=1:1"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert box.sb.ctx.faults.spec() == "*:slow=1:1"


def test_a_huge_body_is_refused_without_being_read(box: Box) -> None:
    huge = 300 * 1024 * 1024
    host = box.sb.url.removeprefix("http://")
    status, answer = raw_request(
        box,
        f"POST /_sandbox/faults HTTP/1.1\r\nHost: {host}\r\nContent-Length: {huge}\r\n"
        "Content-Type: application/json",
        b'{"spec": "',  # the rest never comes: a server reading it would wait for 300 MB
    )
    assert status == 413, answer
    assert box.sb.ctx.faults.spec() == ""
    assert box.http.get("/_sandbox/records").status_code == 200  # still serving


def test_a_huge_body_announced_with_expect_100_gets_no_continue(box: Box) -> None:
    host = box.sb.url.removeprefix("http://")
    status, answer = raw_request(
        box,
        f"POST /webhook/portal HTTP/1.1\r\nHost: {host}\r\nContent-Length: {50 * 1024 * 1024}\r\n"
        "Expect: 100-continue",
    )
    assert status == 413, answer
    assert b"100 Continue" not in answer


def test_a_chunked_body_over_the_cap_is_refused(box: Box) -> None:
    sent = 0
    offered = 2 * MAX_BODY // (1024 * 1024)  # MiB: twice the cap

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(offered):
            sent += 1
            yield b"x" * (1024 * 1024)

    try:
        status = box.http.post("/webhook/portal", content=chunks()).status_code
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        status = 413  # the server answered 413 and closed while the client was still writing
    assert status == 413
    assert sent < offered
    assert box.sb.records() == []


def test_bodies_under_the_cap_are_served(box: Box) -> None:
    body = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    answer = box.http.post("/webhook/portal", content=body)
    assert answer.status_code == 401  # read and judged: unsigned
    bad = raw_request(
        box,
        f"POST /webhook/portal HTTP/1.1\r\nHost: {box.sb.url.removeprefix('http://')}\r\n"
        "Content-Length: -5\r\nConnection: close",
    )
    assert bad[0] == 400
