"""WebhookAdapter against a fake receiver that implements docs/webhook.md (no network), the
Standard Webhooks library as a receiver would use it, and the sandbox's receiver over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    Media,
    Outgoing,
    Permanent,
    Temporary,
    Throttled,
)
from publisher.channels.webhook import WebhookAdapter
from publisher.clock import SYSTEM_CLOCK, FakeClock
from publisher.config import Channel
from publisher.sandbox.credentials import WEBHOOK_SIGNING_SECRET as SECRET
from publisher.signing import make_secret, secret_problem
from tests.fakes import make_channel, webhook_pbgdpl

NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)
URL = "https://pbgdpl.example.gov.vn/api/publisher/posts"
KEY = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
TITLE = "Tháng hành động vì trẻ em năm 2024"
OTHER_SECRET = make_secret(b"another-portal-webhook-key-32by!")


def expected_signature(secret: str, msg_id: str, stamp: str, content: bytes) -> str:
    """docs/webhook.md: v1, + base64 HMAC-SHA256 of "{id}.{timestamp}.{content}" under the
    base64-decoded part of the whsec_ secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_content(request: httpx.Request) -> bytes:
    """What a request's signature covers: a POST's body; for a GET, "GET <path>"."""
    if request.method == "GET":
        return b"GET " + request.url.raw_path.split(b"?")[0]
    return request.content


@dataclass
class FakeReceiver:
    """A portal's receiving side: checks signatures, deduplicates by Idempotency-Key."""

    secret: str = SECRET
    now: datetime = NOW
    created: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    processing: set[str] = field(default_factory=set)  # keys whose first request still runs
    fail_after_commit: int = 0  # the next N creates are stored, then answered 500
    answer: httpx.Response | None = None  # answer every accepted request with this
    post_error: Exception | None = None
    relative_urls: bool = False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def verified(self, request: httpx.Request) -> bool:
        msg_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "")
        if not msg_id or not stamp.isdigit() or abs(int(stamp) - self.now.timestamp()) > 300:
            return False
        expected = expected_signature(self.secret, msg_id, stamp, signed_content(request))
        given = request.headers.get("webhook-signature", "").split(" ")
        return any(hmac.compare_digest(expected, g) for g in given)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST" and self.post_error is not None:
            raise self.post_error
        if not self.verified(request):
            return httpx.Response(401, json={"error": "bad signature"})
        if self.answer is not None:
            return self.answer
        path = request.url.path
        if request.method == "GET" and str(request.url) == URL:
            return httpx.Response(200, json={"ok": True})
        if request.method == "GET" and path.startswith("/api/publisher/posts/"):
            key = path.rsplit("/", 1)[1]
            if key not in self.created:
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(200, json=self.created[key][1])
        if request.method == "POST" and str(request.url) == URL:
            return self.create(request)
        return httpx.Response(404)

    def create(self, request: httpx.Request) -> httpx.Response:
        key = request.headers["webhook-id"]  # the Standard Webhooks id is the idempotency key
        try:
            body = json.loads(request.content.decode("utf-8"))
        except ValueError:
            return httpx.Response(400, json={"error": "malformed body"})
        if body.get("id") != key or request.headers.get("Idempotency-Key", key) != key:
            return httpx.Response(400, json={"error": "webhook-id, Idempotency-Key and id differ"})
        if key in self.processing:
            return httpx.Response(409, json={"error": "still processing"})
        if key in self.created:
            first, answer = self.created[key]
            if first != request.content:
                return httpx.Response(422, json={"error": "key reused with a different body"})
            return httpx.Response(200, json=answer)
        n = len(self.created) + 1
        url = (
            f"/tin-tuc/{body['slug']}"
            if self.relative_urls
            else f"https://pbgdpl.example.gov.vn/tin-tuc/{body['slug']}"
        )
        self.created[key] = (request.content, {"id": f"bv-{n}", "url": url})
        if self.fail_after_commit:
            self.fail_after_commit -= 1
            return httpx.Response(500, text="Internal Server Error")
        return httpx.Response(201, json=self.created[key][1])


def channel(**settings: Any) -> Channel:
    name = "Cổng TTĐT Phổ biến, giáo dục pháp luật"
    return make_channel(
        "portal_pbgdpl", "webhook", name, templates="portal", **{"url": URL, **settings}
    )


def outgoing(title: str = TITLE, content: str = "<p>Toàn dân chăm sóc trẻ em.</p>") -> Outgoing:
    return Outgoing(
        post_id=9,
        idempotency_key=KEY,
        channel="portal_pbgdpl",
        kind="slogan",
        fields={"title": title, "excerpt": "Thông điệp: bảo vệ trẻ em.", "content": content},
        due_at=datetime(2024, 6, 12, 1, 30, tzinfo=UTC),
    )


def adapter(fake: FakeReceiver, secret: str = SECRET, **settings: Any) -> WebhookAdapter:
    client = httpx.Client(transport=fake.transport())
    return WebhookAdapter(
        channel(**settings), client, {"signing_secret": secret}, clock=FakeClock(NOW)
    )


def test_publish_posts_the_signed_body_of_the_contract() -> None:
    fake = FakeReceiver()
    receipt = adapter(fake).publish(outgoing())
    assert receipt.remote_id == "bv-1"
    assert (
        receipt.url
        == "https://pbgdpl.example.gov.vn/tin-tuc/thang-hanh-dong-vi-tre-em-nam-2024-1a2b3c4d"
    )
    (request,) = fake.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["Idempotency-Key"] == KEY
    assert request.headers["webhook-id"] == KEY
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert request.headers["webhook-signature"].startswith("v1,")
    assert not any(h.lower().startswith("x-publisher") for h in request.headers)
    assert request.headers["User-Agent"].startswith("publisher/")
    assert json.loads(request.content) == {
        "id": KEY,
        "channel": "portal_pbgdpl",
        "kind": "slogan",
        "title": TITLE,
        "excerpt": "Thông điệp: bảo vệ trẻ em.",
        "body_html": "<p>Toàn dân chăm sóc trẻ em.</p>",
        "slug": "thang-hanh-dong-vi-tre-em-nam-2024-1a2b3c4d",
        "publish_at": "2024-06-12T08:30:00+07:00",
        "tags": [],
    }


def test_the_signature_covers_the_id_the_timestamp_and_the_exact_bytes() -> None:
    fake = FakeReceiver()
    adapter(fake).publish(outgoing())
    request = fake.requests[0]
    stamp = request.headers["webhook-timestamp"]
    expected = expected_signature(SECRET, KEY, stamp, request.content)
    assert request.headers["webhook-signature"] == expected
    assert request.headers["webhook-signature"] != expected_signature(
        OTHER_SECRET, KEY, stamp, request.content
    )
    assert request.headers["webhook-signature"] != expected_signature(
        SECRET, "another-id", stamp, request.content
    )


def live_adapter(fake: FakeReceiver) -> WebhookAdapter:
    """An adapter on the real clock: the Standard Webhooks library checks the timestamp against
    its own clock."""
    client = httpx.Client(transport=fake.transport())
    return WebhookAdapter(channel(), client, {"signing_secret": SECRET}, clock=SYSTEM_CLOCK)


def test_a_post_verifies_with_the_standard_webhooks_library() -> None:
    fake = FakeReceiver(now=SYSTEM_CLOCK.now())
    live_adapter(fake).publish(outgoing())
    request = fake.requests[0]
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == json.loads(
        request.content
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(request.content, dict(request.headers))
    with pytest.raises(WebhookVerificationError):  # the body cannot change under the signature
        Webhook(SECRET).verify(request.content.replace(b"slogan", b"articl"), dict(request.headers))


def test_a_signed_get_binds_its_path() -> None:
    fake = FakeReceiver(now=SYSTEM_CLOCK.now())
    wh = live_adapter(fake)
    assert wh.lookup(outgoing(), NOW) is None
    assert wh.check().ok
    lookup, check = fake.requests
    headers = dict(lookup.headers)
    path = f"/api/publisher/posts/{KEY}"
    Webhook(SECRET).verify(f"GET {path}".encode(), headers, json_parse=False)
    Webhook(SECRET).verify(b"GET /api/publisher/posts", dict(check.headers), json_parse=False)
    other = "/api/publisher/posts/0f0f0f0f-0000-4000-8000-000000000000"
    for replayed in (f"GET {other}", "GET /api/publisher/posts", f"POST {path}", ""):
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(replayed.encode(), headers, json_parse=False)
    assert lookup.headers["webhook-id"] != check.headers["webhook-id"]  # one id per message
    assert lookup.headers["webhook-id"] != KEY  # a read is not the post's message


@pytest.mark.parametrize(
    "secret",
    [
        "sandbox-webhook-secret",  # a plain string: the scheme's receivers cannot verify it
        "whsec_not*base64",
        "whsec_" + base64.b64encode(b"short").decode(),  # under 24 bytes
        "whsec_",
    ],
)
def test_a_secret_that_is_not_a_whsec_key_of_24_bytes_is_refused(secret: str) -> None:
    problem = secret_problem(secret)
    assert problem is not None and "whsec_" in problem and "secrets.token_bytes" in problem
    assert secret.removeprefix("whsec_") not in problem or not secret.removeprefix("whsec_")
    with pytest.raises(ValueError, match="whsec_"):
        adapter(FakeReceiver(), secret=secret)
    assert secret_problem(SECRET) is None and secret_problem(OTHER_SECRET) is None


def test_resolving_a_plain_webhook_secret_names_the_variable_and_the_fix(campaign: Path) -> None:
    from publisher.config import load_config
    from publisher.config.env import resolve

    config = load_config(webhook_pbgdpl(campaign))  # the campaign with its webhook channel
    environ = {"PUBLISHER_PBGDPL_WEBHOOK_SECRET": "plain-old-secret-Qx7"}
    found = resolve(config, environ)
    (problem,) = found.problems["portal_pbgdpl"]
    assert problem.startswith(
        "the environment variable PUBLISHER_PBGDPL_WEBHOOK_SECRET (signing_secret) is not a "
        "Standard Webhooks secret"
    )
    assert "plain-old-secret-Qx7" not in problem
    environ["PUBLISHER_PBGDPL_WEBHOOK_SECRET"] = SECRET
    assert "portal_pbgdpl" not in resolve(config, environ).problems


def test_the_body_is_nfc_utf8_with_vietnamese_intact() -> None:
    fake = FakeReceiver()
    decomposed = unicodedata.normalize("NFD", TITLE)
    assert decomposed != TITLE
    adapter(fake).publish(
        outgoing(title=decomposed, content="<p>Đường dây nóng 111 “miễn phí”</p>")
    )
    raw = fake.requests[0].content
    assert TITLE.encode("utf-8") in raw  # NFC, not \\u escapes
    assert "Đường dây nóng 111 “miễn phí”".encode() in raw
    assert b"\\u" not in raw
    text = raw.decode("utf-8")
    assert unicodedata.is_normalized("NFC", text)


def test_a_replay_answered_200_is_published() -> None:
    fake = FakeReceiver()
    wh = adapter(fake)
    first = wh.publish(outgoing())
    again = wh.publish(outgoing())
    assert again.remote_id == first.remote_id and again.url == first.url
    assert again.extra["replay"] == "true" and "replay" not in first.extra
    assert len(fake.created) == 1
    assert fake.requests[0].content == fake.requests[1].content  # byte-identical retries


def test_409_is_temporary_with_a_default_or_given_wait() -> None:
    fake = FakeReceiver(processing={KEY})
    with pytest.raises(Temporary) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.retry_after == 30.0 and caught.value.status == 409
    fake.answer = httpx.Response(409, headers={"Retry-After": "5"})
    with pytest.raises(Temporary) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.retry_after == 5.0


def test_422_the_same_key_with_another_body_is_permanent() -> None:
    fake = FakeReceiver()
    wh = adapter(fake)
    wh.publish(outgoing())
    with pytest.raises(Permanent, match="different body") as caught:
        wh.publish(outgoing(content="<p>Nội dung đã sửa.</p>"))
    assert caught.value.status == 422


def test_400_is_permanent_with_the_receivers_words() -> None:
    fake = FakeReceiver(answer=httpx.Response(400, json={"error": "title quá dài"}))
    with pytest.raises(Permanent, match="400: title quá dài"):
        adapter(fake).publish(outgoing())


def test_429_throttles_until_retry_after_or_a_minute() -> None:
    fake = FakeReceiver(answer=httpx.Response(429, headers={"Retry-After": "90"}))
    with pytest.raises(Throttled) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.until == datetime(2024, 6, 12, 1, 31, 30, tzinfo=UTC)
    fake.answer = httpx.Response(429)
    with pytest.raises(Throttled) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.until == datetime(2024, 6, 12, 1, 31, tzinfo=UTC)


def test_500_after_create_is_ambiguous_and_the_lookup_finds_it() -> None:
    fake = FakeReceiver(fail_after_commit=1)
    wh = adapter(fake)
    with pytest.raises(Ambiguous) as caught:
        wh.publish(outgoing())
    assert caught.value.status == 500
    found = wh.lookup(outgoing(), datetime(2024, 6, 12, 1, 25, tzinfo=UTC))
    assert found is not None and found.remote_id == "bv-1"
    lookup = fake.requests[-1]
    assert lookup.method == "GET" and str(lookup.url) == f"{URL}/{KEY}" and lookup.content == b""
    stamp, msg_id = lookup.headers["webhook-timestamp"], lookup.headers["webhook-id"]
    expected = expected_signature(SECRET, msg_id, stamp, f"GET /api/publisher/posts/{KEY}".encode())
    assert lookup.headers["webhook-signature"] == expected


def test_lookup_of_a_post_never_created_is_none() -> None:
    assert adapter(FakeReceiver()).lookup(outgoing(), NOW) is None


def test_lookup_errors_are_mapped() -> None:
    with pytest.raises(Temporary):
        adapter(FakeReceiver(answer=httpx.Response(503))).lookup(outgoing(), NOW)
    with pytest.raises(AuthError):
        adapter(FakeReceiver(), secret=OTHER_SECRET).lookup(outgoing(), NOW)


def test_a_refused_signature_is_an_auth_error() -> None:
    fake = FakeReceiver()
    with pytest.raises(AuthError, match="signing secret was refused") as caught:
        adapter(fake, secret=OTHER_SECRET).publish(outgoing())
    assert caught.value.status == 401 and not fake.created
    fake.answer = httpx.Response(403, json={"error": "IP not allowed"})
    with pytest.raises(AuthError, match="IP not allowed"):
        adapter(fake).publish(outgoing())


def test_a_stale_clock_is_refused_like_a_bad_signature() -> None:
    fake = FakeReceiver(now=datetime(2024, 6, 12, 1, 40, tzinfo=UTC))
    with pytest.raises(AuthError):
        adapter(fake).publish(outgoing())


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ReadTimeout("read timed out"), Ambiguous),
        (httpx.ConnectError("connection refused"), Temporary),
    ],
)
def test_network_failures_on_the_post(exc: Exception, outcome: type[ChannelError]) -> None:
    with pytest.raises(outcome) as caught:
        adapter(FakeReceiver(post_error=exc)).publish(outgoing())
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


def test_a_201_without_an_id_is_ambiguous() -> None:
    fake = FakeReceiver(answer=httpx.Response(201, text="OK"))
    with pytest.raises(Ambiguous, match="without an id"):
        adapter(fake).publish(outgoing())


def test_a_wrong_url_is_permanent() -> None:
    fake = FakeReceiver()
    with pytest.raises(Permanent, match="no webhook at"):
        adapter(fake, url=URL + "-old").publish(outgoing())


def test_a_relative_url_is_joined_to_the_public_base_url() -> None:
    fake = FakeReceiver(relative_urls=True)
    receipt = adapter(fake, public_base_url="https://pbgdpl.example.gov.vn").publish(outgoing())
    assert (
        receipt.url
        == "https://pbgdpl.example.gov.vn/tin-tuc/thang-hanh-dong-vi-tre-em-nam-2024-1a2b3c4d"
    )


def test_check_is_a_signed_get_of_the_url() -> None:
    fake = FakeReceiver()
    result = adapter(fake).check()
    assert result.ok and URL in result.detail
    (request,) = fake.requests
    assert request.method == "GET" and str(request.url) == URL
    refused = adapter(fake, secret=OTHER_SECRET).check()
    assert not refused.ok and "the signing secret was refused" in refused.detail
    assert not fake.created


def scenarios() -> list[FakeReceiver]:
    return [
        FakeReceiver(),
        FakeReceiver(fail_after_commit=1),
        FakeReceiver(secret=OTHER_SECRET),
        FakeReceiver(processing={KEY}),
        FakeReceiver(answer=httpx.Response(429)),
        FakeReceiver(answer=httpx.Response(400, text="bad")),
        FakeReceiver(post_error=httpx.ReadTimeout("timed out")),
    ]


def test_no_secret_in_messages_receipts_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    calls: list[Callable[[WebhookAdapter], object]] = [
        lambda wh: wh.check(),
        lambda wh: wh.publish(outgoing()),
        lambda wh: wh.lookup(outgoing(), NOW),
    ]
    for fake in scenarios():
        wh = adapter(fake)
        for call in calls:
            try:
                seen.append(repr(call(wh)))
            except ChannelError as exc:
                seen.extend([str(exc), exc.reason, repr(exc.args)])
    seen.extend(r.getMessage() for r in caplog.records)
    assert len(seen) >= 3 * len(scenarios())
    assert any("signing secret was refused" in text for text in seen)
    for text in seen:
        assert SECRET not in text


# -- pictures -------------------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"bieu-do" * 50


def picture(role: str, alt: str, data: bytes, stem: str, url: str = "") -> Media:
    digest = hashlib.sha256(data).hexdigest()
    ext, mime = ("png", "image/png") if data.startswith(b"\x89PNG") else ("jpg", "image/jpeg")
    name = f"{stem}-{digest[:12]}.{ext}"
    return Media(role, alt, mime, name, digest, data, url, width=1200, height=630)


def illustrated() -> Outgoing:
    """A post with a cover file, a file already public, and a picture known only by its URL."""
    return replace(
        outgoing(),
        media=(
            picture("cover", "Băng rôn Tháng hành động vì trẻ em", JPEG, "bang-ron"),
            picture("image", "Biểu đồ", PNG, "bieu-do", url="https://anh.example.gov.vn/bd.png"),
            Media("image", "Tổng đài 111", url="https://cdn.example.gov.vn/111.jpg"),
        ),
    )


def test_pictures_travel_in_the_signed_body_as_base64_of_their_bytes() -> None:
    fake = FakeReceiver(now=SYSTEM_CLOCK.now())
    live_adapter(fake).publish(illustrated())
    (request,) = fake.requests
    body = Webhook(SECRET).verify(request.content, dict(request.headers))  # signed as a whole
    cover, chart, linked = body["media"]
    assert cover == {
        "role": "cover",
        "name": f"bang-ron-{hashlib.sha256(JPEG).hexdigest()[:12]}.jpg",
        "mime": "image/jpeg",
        "sha256": hashlib.sha256(JPEG).hexdigest(),
        "alt": "Băng rôn Tháng hành động vì trẻ em",
        "width": 1200,
        "height": 630,
        "data_base64": base64.b64encode(JPEG).decode(),
    }
    assert base64.b64decode(cover["data_base64"], validate=True) == JPEG
    assert base64.b64decode(chart["data_base64"], validate=True) == PNG
    assert chart["url"] == "https://anh.example.gov.vn/bd.png" and chart["mime"] == "image/png"
    assert hashlib.sha256(base64.b64decode(chart["data_base64"])).hexdigest() == chart["sha256"]
    assert linked == {
        "role": "image",
        "name": "",
        "mime": "",
        "sha256": "",
        "alt": "Tổng đài 111",
        "width": 0,
        "height": 0,
        "url": "https://cdn.example.gov.vn/111.jpg",
    }
    assert "Tổng đài 111".encode() in request.content  # alt text as UTF-8, like the rest
    tampered = request.content.replace(b'"data_base64":"/9j/', b'"data_base64":"/9k/')
    assert tampered != request.content
    with pytest.raises(WebhookVerificationError):  # the pictures are under the signature too
        Webhook(SECRET).verify(tampered, dict(request.headers))


def test_a_retry_with_pictures_is_the_same_body_and_a_changed_picture_is_not() -> None:
    fake = FakeReceiver()
    wh = adapter(fake)
    first = wh.publish(illustrated())
    again = wh.publish(illustrated())  # the same post, its approved bytes loaded again
    assert again.remote_id == first.remote_id and again.extra == {"replay": "true"}
    assert fake.requests[0].content == fake.requests[1].content
    changed = replace(illustrated(), media=(picture("cover", "Băng rôn", JPEG + b"x", "bang-ron"),))
    with pytest.raises(Permanent, match="different body"):
        wh.publish(changed)


def test_a_post_without_pictures_sends_no_media_key() -> None:
    fake = FakeReceiver()
    adapter(fake).publish(outgoing())
    assert b'"media"' not in fake.requests[0].content  # the bytes of earlier releases


def test_a_picture_over_5_mb_is_refused_before_sending() -> None:
    fake = FakeReceiver()
    big = picture("cover", "Ảnh", b"\xff\xd8\xff" + bytes(5_000_000), "lon")
    with pytest.raises(Permanent, match="5000000") as info:
        adapter(fake).publish(replace(outgoing(), media=(big,)))
    assert info.value.code == "picture" and fake.requests == []
    fits = picture("cover", "Ảnh", b"\xff\xd8\xff" + bytes(4_999_997), "vua")
    assert adapter(fake).publish(replace(outgoing(), media=(fits,))).remote_id == "bv-1"


def test_the_imitated_portal_keeps_each_picture_once_and_refuses_a_wrong_digest() -> None:
    from tests.imitation import Imitation

    with Imitation(seed=4) as im:
        url = f"{im.url}/webhook/portal_pbgdpl"
        client = httpx.Client(timeout=10)
        wh = WebhookAdapter(channel(url=url), client, {"signing_secret": SECRET})
        first = wh.publish(illustrated())
        other = replace(illustrated(), idempotency_key=str(uuid.uuid4()))  # the same pictures
        assert wh.publish(other).remote_id != first.remote_id
        bad = replace(illustrated().media[0], sha256="0" * 64)
        with pytest.raises(Permanent, match="sha256 does not match"):
            wh.publish(replace(outgoing(), idempotency_key=str(uuid.uuid4()), media=(bad,)))
        records = im.records()
        counts = im.stats.snapshot()["counts"]["webhook"]
        files = dict(im.platforms["webhook"].files)
    assert len(records) == 2
    assert [m["role"] for m in records[0]["media"]] == ["cover", "image", "image"]
    assert records[0]["media"][2] == {
        "role": "image",
        "name": "",
        "sha256": "",
        "alt": "Tổng đài 111",
        "url": "https://cdn.example.gov.vn/111.jpg",
    }
    assert (counts["media:stored"], counts["media:reused"]) == (2, 2)
    assert files == {hashlib.sha256(JPEG).hexdigest(): JPEG, hashlib.sha256(PNG).hexdigest(): PNG}


# -- against the sandbox's receiver, over HTTP ----------------------------------------------------


def sandbox_adapter(url: str, sent: list[httpx.Request]) -> WebhookAdapter:
    from publisher.sandbox import credentials

    client = httpx.Client(event_hooks={"request": [sent.append]}, timeout=10)
    settings = credentials.settings_for("webhook", url, "portal_pbgdpl")
    return WebhookAdapter(channel(**settings), client, credentials.SECRETS["webhook"])


def replay(request: httpx.Request, url: str) -> httpx.Response:
    """The captured request sent again, byte for byte and header for header, to ``url``."""
    headers = {
        k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
    }
    return httpx.request(request.method, url, content=request.content, headers=headers, timeout=10)


def test_a_post_replayed_to_another_channels_path_is_refused() -> None:
    from publisher.sandbox.server import Sandbox

    with Sandbox() as box:
        sent: list[httpx.Request] = []
        receipt = sandbox_adapter(box.url, sent).publish(outgoing())
        (post,) = sent
        again = replay(post, f"{box.url}/webhook/portal_pbgdpl")  # the same endpoint: deduplicated
        assert again.status_code == 200 and again.json()["id"] == receipt.remote_id
        moved = replay(post, f"{box.url}/webhook/portal_stp")
        assert moved.status_code == 400 and "channel" in moved.json()["message"]
        assert len(box.records()) == 1


def test_a_signed_lookup_replayed_to_another_keys_path_is_refused() -> None:
    from publisher.sandbox.server import Sandbox

    with Sandbox() as box:
        sent: list[httpx.Request] = []
        wh = sandbox_adapter(box.url, sent)
        mine = wh.publish(outgoing())
        other = Outgoing(**{**outgoing().__dict__, "idempotency_key": str(uuid.uuid4())})
        theirs = wh.publish(other)
        assert theirs.remote_id != mine.remote_id
        found = wh.lookup(outgoing(), NOW)
        assert found is not None and found.remote_id == mine.remote_id
        lookup = sent[-1]
        assert lookup.method == "GET"
        asked = replay(lookup, f"{box.url}/webhook/portal_pbgdpl/{other.idempotency_key}")
        assert asked.status_code == 401, asked.text
        check = wh.check()
        assert check.ok
        moved = replay(sent[-1], f"{box.url}/webhook/portal_stp")  # the check GET elsewhere
        assert moved.status_code == 401


def test_the_verification_examples_of_docs_webhook_md_accept_ours_and_refuse_replays() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "webhook.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
    assert len(blocks) == 2
    fake = FakeReceiver(now=SYSTEM_CLOCK.now())
    wh = live_adapter(fake)
    wh.publish(outgoing())
    wh.lookup(outgoing(), NOW)
    post, lookup = fake.requests
    path = f"/api/publisher/posts/{KEY}"
    for block in blocks:
        scope: dict[str, Any] = {}
        exec(block, scope)  # noqa: S102 - the documentation's own example code
        verify = next(v for k, v in scope.items() if k.startswith("verify_with"))
        ph, lh = dict(post.headers), {k.lower(): v for k, v in lookup.headers.items()}
        assert verify(SECRET, "POST", "/api/publisher/posts", post.content, ph)
        assert verify(SECRET, "GET", path, b"", lh)
        assert not verify(OTHER_SECRET, "POST", "/api/publisher/posts", post.content, ph)
        assert not verify(SECRET, "POST", "/x", post.content.replace(b"Th", b"th"), ph)
        assert not verify(SECRET, "GET", path.replace(KEY[:8], "ffffffff"), b"", lh)
