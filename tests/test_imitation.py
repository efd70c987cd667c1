"""The platform imitation's own behaviour, pinned: it must be as strict as the documentation it
was written from (platform-apis.md, standardwebhooks.com), or the chaos tests built on it prove
nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from publisher.sandbox import credentials
from publisher.signing import make_secret
from tests.imitation import FaultPlan, Imitation
from tests.imitation.core import FaultError

PAGE = "100000000000000"
APP = "1000000000000000000"


@pytest.fixture
def imitation(tmp_path: Path) -> Iterator[Imitation]:
    with Imitation(record=tmp_path / "record.jsonl", seed=3) as im:
        yield im


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def zalo_tokens(http: httpx.Client, url: str, refresh: str) -> dict[str, object]:
    resp = http.post(
        f"{url}/zalo/oauth/v4/oa/access_token",
        data={"refresh_token": refresh, "app_id": APP, "grant_type": "refresh_token"},
        headers={"secret_key": credentials.ZALO_APP_SECRET},
    )
    assert resp.status_code == 200  # Zalo answers HTTP 200 whatever happened
    body: dict[str, object] = resp.json()
    return body


def article(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "type": "normal",
        "title": "Tháng hành động vì trẻ em",
        "author": "Sở Tư pháp",
        "cover": {"cover_type": "photo", "photo_url": "https://example.gov.vn/c.jpg"},
        "description": "Tóm tắt",
        "body": [{"type": "text", "content": "<p>Nội dung</p>"}],
        "status": "show",
    }
    return {**body, **extra}


def test_an_outage_refuses_connections_then_comes_back_with_its_state(
    imitation: Imitation, http: httpx.Client
) -> None:
    auth = {"Authorization": f"Bearer {credentials.FACEBOOK_PAGE_TOKEN}"}
    made = http.post(f"{imitation.url}/facebook/v21.0/{PAGE}/feed", data={"message": "xin chào"})
    assert made.status_code == 400 and made.json()["error"]["code"] == 104  # no token
    made = http.post(
        f"{imitation.url}/facebook/v26.0/{PAGE}/feed", data={"message": "xin chào"}, headers=auth
    )
    post_id = made.json()["id"]
    imitation.outage(1.0)
    assert imitation.down.wait(2.0)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", imitation.port), timeout=1.0),
    ):
        pass
    with pytest.raises(httpx.ConnectError):  # the kept-alive connection was cut as well
        http.get(f"{imitation.url}/facebook/{post_id}", headers=auth)
    deadline = time.monotonic() + 5
    while imitation.down.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    got = http.get(
        f"{imitation.url}/facebook/v21.0/{post_id}",
        params={"fields": "permalink_url,message"},
        headers=auth,
    )
    assert got.status_code == 200 and got.json()["message"] == "xin chào"
    assert len(imitation.stats.snapshot()["outages"]) == 1


def test_a_zalo_refresh_token_works_once_and_rotation_kills_the_old_access_token(
    imitation: Imitation, http: httpx.Client
) -> None:
    first = zalo_tokens(http, imitation.url, credentials.ZALO_FIRST_REFRESH_TOKEN)
    assert first["expires_in"] == "90000"  # a string, as Zalo documents it
    again = zalo_tokens(http, imitation.url, credentials.ZALO_FIRST_REFRESH_TOKEN)
    assert again["error"] == -14014
    assert "zalo:refresh" in imitation.stats.snapshot()["last"]
    getoa = f"{imitation.url}/zalo/openapi/v2.0/oa/getoa"
    assert (
        http.get(getoa, headers={"access_token": str(first["access_token"])}).json()["error"] == 0
    )
    second = zalo_tokens(http, imitation.url, str(first["refresh_token"]))
    old = http.get(getoa, headers={"access_token": str(first["access_token"])}).json()
    assert old["error"] == -216
    assert http.get(getoa, params={"access_token": second["access_token"]}).json()["error"] == 0
    imitation.inject("token-expiry", "zalo")  # the current token dies early
    dead = http.get(getoa, params={"access_token": second["access_token"]}).json()
    assert dead["error"] == -216
    wrong = http.post(
        f"{imitation.url}/zalo/oauth/v4/oa/access_token",
        data={
            "refresh_token": second["refresh_token"],
            "app_id": APP,
            "grant_type": "refresh_token",
        },
        headers={"secret_key": "not the secret"},
    )
    assert wrong.json()["error"] == -14004


def test_zalo_articles_need_a_cover_and_a_short_title_and_are_processed_asynchronously(
    imitation: Imitation, http: httpx.Client
) -> None:
    imitation.set_faults("zalo:processing=0.3")
    token = str(
        zalo_tokens(http, imitation.url, credentials.ZALO_FIRST_REFRESH_TOKEN)["access_token"]
    )
    api = f"{imitation.url}/zalo/openapi/v2.0/article"
    h = {"access_token": token}
    no_cover = {k: v for k, v in article().items() if k != "cover"}
    assert http.post(f"{api}/create", json=no_cover, headers=h).json()["error"] == -201
    http_cover = article(cover={"cover_type": "photo", "photo_url": "http://127.0.0.1/c.jpg"})
    assert http.post(f"{api}/create", json=http_cover, headers=h).json()["error"] == -201
    assert http.post(f"{api}/create", json=article(title="a" * 150), headers=h).json()["error"] < 0
    assert http.post(f"{api}/create", json=article(author="b" * 51), headers=h).json()["error"] < 0
    created = http.post(f"{api}/create", json=article(title="a" * 149), headers=h).json()
    process = created["data"]["token"]
    assert http.post(f"{api}/verify", json={"token": process}, headers=h).json()["error"] == -214
    time.sleep(0.35)
    verified = http.post(f"{api}/verify", json={"token": process}, headers=h).json()
    article_id = verified["data"]["id"]
    for n in range(11):
        http.post(f"{api}/create", json=article(title=f"bài {n}"), headers=h)
    page = http.get(f"{api}/getslice", params={"offset": 0, "limit": 20}, headers=h).json()
    assert len(page["data"]["medias"]) == 10 and page["data"]["total"] == 12
    rest = http.get(f"{api}/getslice", params={"offset": 10, "limit": 10}, headers=h).json()
    assert rest["data"]["medias"][-1]["id"] == article_id
    assert isinstance(rest["data"]["medias"][-1]["create_date"], int)
    detail = http.get(f"{api}/getdetail", params={"id": article_id}, headers=h).json()
    assert detail["data"]["title"] == "a" * 149
    assert imitation.records()[0]["title"] == "a" * 149


def test_wordpress_makes_a_second_post_with_the_same_slug_unique_and_refuses_bad_passwords(
    imitation: Imitation, http: httpx.Client
) -> None:
    posts = f"{imitation.url}/wordpress/wp-json/wp/v2/posts"
    auth = (credentials.WORDPRESS_USER, credentials.WORDPRESS_PASSWORD)
    body = {"title": "Quyền trẻ em", "content": "<p>…</p>", "status": "publish", "slug": "quyen"}
    first = http.post(posts, json=body, auth=auth)
    second = http.post(posts, json=body, auth=auth)
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["slug"], second.json()["slug"]) == ("quyen", "quyen-2")
    found = http.get(posts, params={"slug": "quyen", "status": "any", "context": "edit"}, auth=auth)
    assert [p["id"] for p in found.json()] == [first.json()["id"]]
    assert http.get(posts, params={"status": "any", "context": "edit"}).status_code == 401
    bad = http.post(posts, json=body, auth=(credentials.WORDPRESS_USER, "wrong"))
    assert (bad.status_code, bad.json()["code"]) == (401, "incorrect_password")
    anonymous = http.post(posts, json=body)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "rest_cannot_create")
    contributor = http.post(posts, json=body, auth=(credentials.WORDPRESS_CONTRIBUTOR, auth[1]))
    assert (contributor.status_code, contributor.json()["code"]) == (403, "rest_cannot_publish")
    subscriber = http.post(posts, json=body, auth=("subscriber", auth[1]))
    assert (subscriber.status_code, subscriber.json()["code"]) == (403, "rest_cannot_create")
    gone = http.delete(f"{posts}/{second.json()['id']}", params={"force": "true"}, auth=auth)
    assert gone.json()["deleted"] is True
    events = [(r["event"], r["remote_id"]) for r in imitation.records()]
    assert events[-1] == ("deleted", str(second.json()["id"]))


def test_webhook_verifies_standard_webhooks_signatures_and_deduplicates_by_key(
    imitation: Imitation, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = b"a key of thirty-two bytes, ok!!!"
    monkeypatch.setattr(credentials, "WEBHOOK_SIGNING_SECRET", make_secret(key))
    url = f"{imitation.url}/webhook/portal"

    def signed(content: bytes, wid: str, secret: bytes = key) -> dict[str, str]:
        ts = str(int(time.time()))
        mac = hmac.new(secret, f"{wid}.{ts}.".encode() + content, hashlib.sha256).digest()
        sig = "v1," + base64.b64encode(mac).decode()
        return {"webhook-id": wid, "webhook-timestamp": ts, "webhook-signature": f"v1,AAAA {sig}"}

    body = json.dumps({"id": "k1", "title": "Tiêu đề", "body_html": "<p>x</p>"}).encode()
    first = http.post(url, content=body, headers=signed(body, "k1"))
    assert first.status_code == 201
    replay = http.post(url, content=body, headers=signed(body, "k1"))
    assert (replay.status_code, replay.json()) == (200, first.json())
    other = json.dumps({"id": "k1", "title": "Khác", "body_html": "<p>y</p>"}).encode()
    assert http.post(url, content=other, headers=signed(other, "k1")).status_code == 422
    forged = signed(body, "k2", secret=b"another secret")
    assert http.post(url, content=body, headers=forged).status_code == 401
    stale = signed(body, "k1") | {"webhook-timestamp": str(int(time.time()) - 301)}
    assert http.post(url, content=body, headers=stale).status_code == 401
    path = "/webhook/portal/k1"
    found = http.get(f"{imitation.url}{path}", headers=signed(f"GET {path}".encode(), "g1"))
    assert (found.status_code, found.json()) == (200, first.json())
    unsigned_path = http.get(f"{imitation.url}{path}", headers=signed(b"", "g2"))
    assert unsigned_path.status_code == 401  # a GET must sign its path
    missing = http.get(f"{url}/nope", headers=signed(b"GET /webhook/portal/nope", "g3"))
    assert missing.status_code == 404
    assert sum(r["event"] == "created" for r in imitation.records()) == 1


def test_an_ambiguous_outcome_creates_the_item_and_faults_are_reproducible(
    tmp_path: Path, http: httpx.Client
) -> None:
    auth = {"Authorization": f"Bearer {credentials.FACEBOOK_PAGE_TOKEN}"}

    def run(seed: int) -> list[int]:
        seen = []
        with Imitation(faults="facebook:ambiguous=0.5,facebook:5xx=0.2", seed=seed) as im:
            for n in range(20):
                try:
                    resp = http.post(
                        f"{im.url}/facebook/{PAGE}/feed", data={"message": f"m{n}"}, headers=auth
                    )
                    seen.append(resp.status_code)
                except httpx.TransportError:
                    seen.append(0)  # dropped before answering
            created = sum(r["event"] == "created" for r in im.records())
            assert created == 20 - im.stats.snapshot()["counts"]["facebook"].get("fault:5xx", 0)
        return seen

    first = run(7)
    assert first == run(7)
    assert {0, 500, 200} <= set(first)
    with pytest.raises(FaultError):
        FaultPlan.parse("facebook:explode=0.1")


def test_graph_throttling_names_when_to_come_back(imitation: Imitation, http: httpx.Client) -> None:
    imitation.set_faults("facebook:throttle=1:0.5")
    auth = {"Authorization": f"Bearer {credentials.FACEBOOK_PAGE_TOKEN}"}
    resp = http.get(f"{imitation.url}/facebook/v21.0/{PAGE}", headers=auth)
    assert resp.status_code == 400 and resp.json()["error"]["code"] in (4, 17, 32, 613)
    usage = json.loads(resp.headers["X-Business-Use-Case-Usage"])
    assert usage[PAGE][0]["estimated_time_to_regain_access"] == 1  # minutes, at least one
    imitation.set_faults("facebook:policy-368")
    blocked = http.post(
        f"{imitation.url}/facebook/{PAGE}/feed", data={"message": "x"}, headers=auth
    )
    assert blocked.json()["error"]["code"] == 368 and not imitation.records()
    imitation.set_faults("")
    imitation.inject("throttle", "wordpress", hold=0.0)
    posts = f"{imitation.url}/wordpress/wp-json/wp/v2/posts"
    throttled = http.get(posts)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    assert http.get(posts).status_code == 200  # only the next request
    listing = http.get(
        f"{imitation.url}/facebook/v21.0/{PAGE}/published_posts",
        params={"since": "0", "limit": "2", "fields": "id,message"},
        headers=auth,
    )
    assert listing.json() == {"data": []}
    for n in range(3):
        http.post(f"{imitation.url}/facebook/{PAGE}/feed", data={"message": f"m{n}"}, headers=auth)
    page1 = http.get(
        f"{imitation.url}/facebook/v21.0/{PAGE}/published_posts",
        params={"limit": "2", "fields": "id,message"},
        headers=auth,
    ).json()
    assert [p["message"] for p in page1["data"]] == ["m2", "m1"]
    page2 = http.get(page1["paging"]["next"]).json()  # the token rides in the next URL
    assert [p["message"] for p in page2["data"]] == ["m0"] and "next" not in page2["paging"]


def test_graph_photos_come_as_a_file_or_an_address_and_unpublished_ones_are_no_posts(
    imitation: Imitation, http: httpx.Client
) -> None:
    auth = {"Authorization": f"Bearer {credentials.FACEBOOK_PAGE_TOKEN}"}
    page = f"{imitation.url}/facebook/v21.0/{PAGE}"
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64

    def upload(data: dict[str, str], source: bytes | None = None) -> httpx.Response:
        files = {"source": ("anh.jpg", source, "image/jpeg")} if source is not None else None
        return http.post(f"{page}/photos", data=data, files=files, headers=auth)

    assert upload({"published": "false"}).json()["error"]["code"] == 324  # no file, no url
    assert upload({"published": "false"}, b"<html>").json()["error"]["code"] == 324
    one = upload({"caption": "Một ảnh", "alt_text_custom": "Hai em nhỏ"}, jpeg).json()
    assert set(one) == {"id", "post_id"}  # a published photo is a post
    first = upload({"published": "false", "alt_text_custom": "Ảnh một"}, jpeg).json()
    second = upload({"published": "false", "url": "https://example.gov.vn/b.png"}).json()
    assert set(first) == set(second) == {"id"}  # unpublished: no post, no story
    listed = http.get(f"{page}/published_posts", headers=auth).json()["data"]
    assert [p["id"] for p in listed] == [one["post_id"]]
    attach = {
        "message": "Hai ảnh",
        "attached_media[0]": json.dumps({"media_fbid": first["id"]}),
        "attached_media[1]": json.dumps({"media_fbid": second["id"]}),
    }
    album = http.post(f"{page}/feed", data=attach, headers=auth).json()
    again = http.post(f"{page}/feed", data=attach, headers=auth).json()  # shown already
    assert again["error"]["code"] == 100
    unknown = {"message": "x", "attached_media": json.dumps([{"media_fbid": "1"}])}
    assert http.post(f"{page}/feed", data=unknown, headers=auth).json()["error"]["code"] == 100
    photo = http.get(
        f"{imitation.url}/facebook/v21.0/{first['id']}",
        params={"fields": "alt_text_custom,page_story_id"},
        headers=auth,
    ).json()
    assert photo == {"id": first["id"], "alt_text_custom": "Ảnh một", "page_story_id": album["id"]}
    records = imitation.records()
    assert [(r["remote_id"], r["text"]) for r in records] == [
        (one["post_id"], "Một ảnh"),
        (album["id"], "Hai ảnh"),
    ]
    assert [i["alt"] for i in records[0]["images"]] == ["Hai em nhỏ"]
    assert records[0]["images"][0]["sha256"] == hashlib.sha256(jpeg).hexdigest()
    assert [i["photo_id"] for i in records[1]["images"]] == [first["id"], second["id"]]
    assert records[1]["images"][1]["url"] == "https://example.gov.vn/b.png"
