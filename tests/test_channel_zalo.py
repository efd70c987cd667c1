from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    CheckResult,
    Media,
    Outgoing,
    Permanent,
    Temporary,
    Throttled,
    Unreachable,
)
from publisher.channels.tokens import InMemoryTokenStore, seed_digest
from publisher.channels.zalo import ZaloAdapter
from publisher.clock import FakeClock
from publisher.config import Channel
from publisher.store.db import open_database
from publisher.store.tokens import DatabaseTokenStore
from publisher.tokens import Tokens
from tests.fakes import make_channel

NOW = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội
API = "https://openapi.zalo.test"
OAUTH = "https://oauth.zalo.test"
APP_ID = "1234567890"
APP_SECRET = "app-secret-" + secrets.token_hex(4)  # made per run: the tests search output for it
SEED = "rt-seed-Zk41xv"
LIVE_ACCESS = "at-live-Hh28sd"
LIVE_REFRESH = "rt-live-Pp09we"
NEW_ACCESS, NEW_REFRESH = "at-new-1-Yt5", "rt-new-1-Ur7"  # what the fake mints first
KEY = f"zalo@{OAUTH}"
GOLDEN = Path(__file__).parent / "golden" / "articles__01-thu__zalo.json"
COVER = "https://stp.example.gov.vn/documents/anh-bia.jpg"
SENT_COVER = {"cover_type": "photo", "photo_url": COVER, "status": "show"}


class FakeZalo:
    """A Zalo OA + OAuth v4 fake with rotating single-use tokens (platform-apis.md §2.8)."""

    def __init__(self) -> None:
        self.access = {LIVE_ACCESS}
        self.refresh = {SEED, LIVE_REFRESH}
        self.minted = 0
        self.refresh_calls: list[str] = []
        self.requests: list[httpx.Request] = []
        self.replies: dict[str, list[dict[str, Any] | httpx.Response]] = {}
        self.verify_processing = 0  # verify answers -214 this many times first
        self.articles: list[dict[str, Any]] = []
        self.seen_access: list[str] = []
        self.on_new_access: Callable[[str], None] | None = None
        self.before_refresh: Callable[[], None] | None = None
        self.mutex = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.mutex:
            self.requests.append(request)
        path = request.url.path
        if path.endswith("/v4/oa/access_token"):
            return self.oauth(request)
        token = request.headers.get("access_token", "")
        with self.mutex:
            first_use = token not in self.seen_access
            self.seen_access.append(token)
        if first_use and token.startswith("at-new") and self.on_new_access:
            self.on_new_access(token)
        name = path.rsplit("/", 1)[-1]
        queued = self.replies.get(name)
        if queued:
            reply = queued.pop(0)
            return reply if isinstance(reply, httpx.Response) else httpx.Response(200, json=reply)
        if token not in self.access:
            return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})
        return getattr(self, "api_" + name)(request)

    def oauth(self, request: httpx.Request) -> httpx.Response:
        if self.before_refresh:
            self.before_refresh()
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        with self.mutex:
            self.refresh_calls.append(form.get("refresh_token", ""))
            if request.headers.get("secret_key") != APP_SECRET:
                return httpx.Response(200, json={"error": -14004, "error_name": "Invalid secret"})
            if form.get("app_id") != APP_ID or form.get("grant_type") != "refresh_token":
                return httpx.Response(200, json={"error": -14002, "error_name": "Invalid appId"})
            if form.get("refresh_token") not in self.refresh:
                return httpx.Response(
                    200, json={"error": -14014, "error_name": "Invalid refresh token."}
                )
            self.refresh.discard(form["refresh_token"])  # single use
            self.minted += 1
            access, refresh = f"at-new-{self.minted}-Yt5", f"rt-new-{self.minted}-Ur7"
            self.access, self.refresh = {access}, self.refresh | {refresh}
        body = {"access_token": access, "refresh_token": refresh, "expires_in": "90000"}
        return httpx.Response(200, json=body)

    def api_create(self, request: httpx.Request) -> httpx.Response:
        article = json.loads(request.content)
        article["id"] = f"art{len(self.articles) + 1}"
        self.articles.append(article)
        return httpx.Response(200, json={"error": 0, "data": {"token": f"proc-{article['id']}"}})

    def api_verify(self, request: httpx.Request) -> httpx.Response:
        if self.verify_processing > 0:
            self.verify_processing -= 1
            return httpx.Response(200, json={"error": -214, "message": "Article is processing"})
        token = json.loads(request.content)["token"]
        return httpx.Response(200, json={"error": 0, "data": {"id": token.removeprefix("proc-")}})

    def api_getdetail(self, request: httpx.Request) -> httpx.Response:
        aid = request.url.params["id"]
        link = f"https://zalo.me/oa/article/{aid}"
        return httpx.Response(200, json={"error": 0, "data": {"id": aid, "link": link}})

    def api_message(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": 0, "data": {"message_id": "m1"}})

    def api_getoa(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": 0, "data": {"oaid": "999", "name": "STP BG"}})

    def calls(self, name: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("/" + name)]

    def secrets(self) -> list[str]:
        n = range(1, self.minted + 1)
        minted = [f"at-new-{i}-Yt5" for i in n] + [f"rt-new-{i}-Ur7" for i in n]
        return [APP_SECRET, SEED, LIVE_ACCESS, LIVE_REFRESH, *minted]


def channel(**settings: Any) -> Channel:
    given = {
        "app_id": APP_ID,
        "api_base_url": API,
        "oauth_base_url": OAUTH,
        "author": "Sở Tư pháp tỉnh Bắc Giang",
        **settings,
    }
    return make_channel("zalo", "zalo", "Zalo OA Sở Tư pháp", templates="zalo", **given)


def outgoing(*media: Media, **fields: str) -> Outgoing:
    """A Zalo article; its pictures are ``media``, else one cover at a public https address."""
    base = {
        "title": "Quyền của trẻ em",
        "author": "",
        "description": "Tóm tắt ngắn",
        "body": "Đoạn một.\n\nĐoạn hai.",
    }
    return Outgoing(
        post_id=7,
        idempotency_key="0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f",
        channel="zalo",
        kind="article",
        fields={**base, **fields},
        due_at=NOW,
        media=media or (Media("cover", "Ảnh bìa", url=COVER),),
    )


def live_store(expires: datetime = NOW + timedelta(hours=20)) -> InMemoryTokenStore:
    store = InMemoryTokenStore()
    store.save(KEY, Tokens(LIVE_ACCESS, LIVE_REFRESH, expires), seed_hash=seed_digest(SEED))
    return store


def make(
    fake: FakeZalo,
    store: Any = None,
    *,
    clock: datetime = NOW,
    seed: str = SEED,
    sleeps: list[float] | None = None,
    media_host: Any = None,
    **settings: Any,
) -> ZaloAdapter:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    return ZaloAdapter(
        channel(**settings),
        client,
        {"app_secret": APP_SECRET, "refresh_token": seed},
        clock=FakeClock(clock),
        tokens=live_store() if store is None else store,
        sleep=(sleeps if sleeps is not None else []).append,
        media_host=media_host,
    )


# -- publishing ---------------------------------------------------------------------------------


def test_publish_creates_then_verifies_and_returns_the_link() -> None:
    fake = FakeZalo()
    receipt = make(fake).publish(outgoing())
    assert receipt.remote_id == "art1"
    assert receipt.url == "https://zalo.me/oa/article/art1"
    assert receipt.extra == {}
    create = fake.calls("create")[0]
    assert create.url == f"{API}/v2.0/article/create"
    assert create.headers["access_token"] == LIVE_ACCESS
    assert "access_token" not in create.url.params
    assert json.loads(create.content) == {
        "type": "normal",
        "title": "Quyền của trẻ em",
        "author": "Sở Tư pháp tỉnh Bắc Giang",  # the channel's default author
        "cover": SENT_COVER,
        "description": "Tóm tắt ngắn",
        "body": [
            {"type": "text", "content": "<p>Đoạn một.</p>"},
            {"type": "text", "content": "<p>Đoạn hai.</p>"},
        ],
        "status": "show",
        "comment": "show",
    }
    assert json.loads(fake.calls("verify")[0].content) == {"token": "proc-art1"}
    assert fake.refresh_calls == []


def test_the_rendered_body_becomes_escaped_paragraphs() -> None:
    fields = json.loads(GOLDEN.read_text(encoding="utf-8"))
    fake = FakeZalo()
    make(fake).publish(outgoing(**fields))
    sent = json.loads(fake.calls("create")[0].content)
    assert sent["author"] == "Sở Tư pháp tỉnh Bắc Giang"
    assert sent["title"] == fields["title"]  # a JSON string, not HTML
    assert [b["content"] for b in sent["body"]] == [
        "<p>Luật Trẻ em số 102/2016/QH13 có hiệu lực từ ngày 01/6/2017.</p>",
        "<p>Các quyền cơ bản</p>",
        "<p>• Quyền sống;<br>• Quyền được chăm sóc sức khỏe.</p>",
        "<p>Khi cần, hãy gọi Tổng đài 111 &lt;script&gt;alert(1)&lt;/script&gt;.</p>",
        "<p>Sở Tư pháp tỉnh Bắc Giang – Tháng hành động vì trẻ em năm 2024</p>",
    ]
    assert sent["cover"] == SENT_COVER  # the post's cover picture, whatever the render says


def test_verify_is_retried_while_zalo_processes_the_article() -> None:
    fake = FakeZalo()
    fake.verify_processing = 2
    sleeps: list[float] = []
    receipt = make(fake, sleeps=sleeps).publish(outgoing())
    assert receipt.remote_id == "art1"
    assert len(fake.calls("verify")) == 3
    assert sleeps == [2.0, 4.0]


def test_verify_still_processing_is_ambiguous() -> None:
    fake = FakeZalo()
    fake.verify_processing = 99
    sleeps: list[float] = []
    with pytest.raises(Ambiguous, match="created but not verified") as info:
        make(fake, sleeps=sleeps).publish(outgoing())
    assert info.value.code == "-214"
    assert len(fake.calls("verify")) == 5 and sleeps == [2.0, 4.0, 8.0, 16.0]
    assert len(fake.articles) == 1  # it exists: lookup, never re-create


def test_verify_answering_article_id_is_accepted() -> None:
    fake = FakeZalo()
    fake.replies["verify"] = [{"error": 0, "data": {"article_id": 42}}]
    assert make(fake).publish(outgoing()).remote_id == "42"


@pytest.mark.parametrize("code", [-201, -210, -233, -248, -204, -205, -999])
def test_a_create_error_in_an_http_200_is_permanent(code: int) -> None:
    fake = FakeZalo()
    fake.replies["create"] = [{"error": code, "message": "title is invalid!"}]
    with pytest.raises(Permanent) as info:
        make(fake).publish(outgoing())
    assert info.value.code == str(code)
    assert f"Zalo error {code}: title is invalid!" in info.value.reason
    assert fake.calls("verify") == []


def test_the_body_decides_even_when_the_status_is_an_error() -> None:
    fake = FakeZalo()
    fake.replies["create"] = [httpx.Response(500, json={"error": -201, "message": "bad"})]
    with pytest.raises(Permanent):
        make(fake).publish(outgoing())


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(502, text="Bad gateway"),
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json={"error": -200, "message": "Send message failed"}),
        httpx.Response(200, json={"error": -100, "message": "failed"}),
    ],
)
def test_an_unclear_create_is_ambiguous(reply: httpx.Response) -> None:
    fake = FakeZalo()
    fake.replies["create"] = [reply]
    with pytest.raises(Ambiguous):
        make(fake).publish(outgoing())


def test_network_errors_on_create() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/create"):
            raise httpx.ReadTimeout("slow", request=request)
        return fake(request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake = FakeZalo()
    with pytest.raises(Ambiguous):
        make(timeout).publish(outgoing())  # type: ignore[arg-type]
    with pytest.raises(Temporary):
        make(refused).publish(outgoing())  # type: ignore[arg-type]


def test_network_errors_on_the_token_refresh_say_it_was_the_refresh() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    expired = live_store(NOW - timedelta(minutes=1))  # the refresh comes first
    with pytest.raises(Unreachable, match=r"ConnectError .*\(refreshing the Zalo access token\)"):
        make(refused, expired).publish(outgoing())  # type: ignore[arg-type]
    expired = live_store(NOW - timedelta(minutes=1))
    with pytest.raises(Temporary, match="ReadError refreshing the Zalo access token") as info:
        make(dropped, expired).publish(outgoing())  # type: ignore[arg-type]
    assert not isinstance(info.value, Unreachable)


def test_throttling_pauses_the_channel_for_a_minute() -> None:
    fake = FakeZalo()
    fake.replies["create"] = [{"error": -32, "message": "Your OA reached limit call api"}]
    with pytest.raises(Throttled) as info:
        make(fake).publish(outgoing())
    assert info.value.until == NOW + timedelta(seconds=60)


def test_the_article_quota_pauses_the_channel_for_hours() -> None:
    fake = FakeZalo()
    fake.replies["create"] = [{"error": -223, "message": "reach the limit quota create article"}]
    with pytest.raises(Throttled) as info:
        make(fake).publish(outgoing())
    assert info.value.until == NOW + timedelta(hours=6)


def test_refused_at_night_waits_until_six_in_the_morning() -> None:
    fake = FakeZalo()
    fake.replies["create"] = [{"error": -234, "message": "cannot send at night"}]
    late = datetime(2024, 6, 1, 16, 30, tzinfo=UTC)  # 23:30 in Hà Nội
    with pytest.raises(Temporary) as info:
        make(fake, live_store(late + timedelta(hours=20)), clock=late).publish(outgoing())
    assert info.value.retry_after == 6.5 * 3600


@pytest.mark.parametrize(("field", "limit"), [("title", 149), ("author", 50), ("description", 300)])
def test_limits_are_enforced_before_any_request(field: str, limit: int) -> None:
    fake = FakeZalo()
    with pytest.raises(Permanent, match=f"{field} has {limit + 1} characters.*at most {limit}"):
        make(fake, InMemoryTokenStore()).publish(outgoing(**{field: "ầ" * (limit + 1)}))
    assert fake.requests == []  # not even a token refresh


def test_limits_count_nfc_characters() -> None:
    decomposed = unicodedata.normalize("NFD", "ầ" * 149)  # 447 code points
    fake = FakeZalo()
    make(fake).publish(outgoing(title=decomposed))
    assert json.loads(fake.calls("create")[0].content)["title"] == "ầ" * 149


def test_broadcast_sends_the_article_to_followers() -> None:
    fake = FakeZalo()
    receipt = make(fake, broadcast=True).publish(outgoing())
    assert receipt.extra == {"broadcast": "sent"}
    (message,) = fake.calls("message")
    assert message.url == f"{API}/v2.0/oa/message"
    sent = json.loads(message.content)
    payload = sent["message"]["attachment"]["payload"]
    assert payload["elements"] == [{"media_type": "article", "attachment_id": "art1"}]
    assert "target" in sent["recipient"]


def test_a_failed_broadcast_keeps_the_article_published(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeZalo()
    fake.replies["message"] = [{"error": -211, "message": "Out of quota"}]
    receipt = make(fake, broadcast=True).publish(outgoing())
    assert receipt.remote_id == "art1"
    assert receipt.extra == {"broadcast": "failed: Zalo error -211: Out of quota"}
    assert "not broadcast" in caplog.text


def test_no_broadcast_when_it_is_off() -> None:
    fake = FakeZalo()
    make(fake, broadcast=False).publish(outgoing())
    assert fake.calls("message") == []


# -- pictures -----------------------------------------------------------------------------------

HOSTED = "https://stp.example.gov.vn/wp-content/uploads/2024/06/"
JPEG = b"\xff\xd8\xff\xe0" + b"anh-bia" * 40


def picture(role: str, alt: str, data: bytes = JPEG, stem: str = "bia") -> Media:
    """A file picture as the dispatcher hands it over (name unique to the bytes)."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{digest[:12]}.jpg"
    return Media(role, alt, "image/jpeg", name, digest, data, width=1200, height=630)


class FakeHost:
    """A MediaHost: the address of each file it is asked about, or the failure it is given."""

    def __init__(self, fake: FakeZalo, error: ChannelError | None = None) -> None:
        self.fake, self.error = fake, error
        self.asked: list[tuple[str, int]] = []  # (file name, Zalo requests made before it)

    down: CheckResult | None = None  # what check() answers instead of "ok"

    def check(self) -> CheckResult:
        return self.down or CheckResult(True, "the host answers")

    def public_url(self, media: Media) -> str:
        self.asked.append((media.name, len(self.fake.requests)))
        if self.error is not None:
            raise self.error
        return HOSTED + media.name


def sent(fake: FakeZalo) -> dict[str, Any]:
    (create,) = fake.calls("create")
    article: dict[str, Any] = json.loads(create.content)
    return article


def test_a_url_cover_is_sent_as_it_is_without_asking_the_host() -> None:
    fake = FakeZalo()
    host = FakeHost(fake)
    own = Media("cover", "Ảnh bìa", url="https://cdn.example.gov.vn/own.png")
    make(fake, media_host=host, default_cover=COVER).publish(outgoing(own))
    assert sent(fake)["cover"] == {
        "cover_type": "photo",
        "photo_url": "https://cdn.example.gov.vn/own.png",
        "status": "show",
    }
    assert host.asked == []


def test_a_file_cover_gets_its_address_from_the_media_host_once_per_attempt() -> None:
    fake = FakeZalo()
    host = FakeHost(fake)
    cover = picture("cover", "Băng rôn Tháng hành động")
    again = picture("image", "Băng rôn, nhắc lại")  # the same file further down
    other = picture("image", "Tổng đài 111", JPEG + b"!", stem="tong-dai")
    adapter = make(fake, media_host=host)
    adapter.publish(outgoing(cover, again, other))
    assert [name for name, _ in host.asked] == [cover.name, other.name]  # one call per file
    assert all(before == 0 for _, before in host.asked)  # all before any request to Zalo
    article = sent(fake)
    assert article["cover"]["photo_url"] == HOSTED + cover.name
    assert [b.get("url") for b in article["body"][2:]] == [HOSTED + cover.name, HOSTED + other.name]
    adapter.publish(outgoing(cover))  # another attempt asks again: the host knows the file
    assert len(host.asked) == 3


def test_zalo_s_own_credentials_are_tried_before_the_media_host_is_asked() -> None:
    """With Zalo's refresh token refused, the channel stops on its own AuthError: the portal
    that hosts the covers is not asked at every retry of every post."""
    fake = FakeZalo()
    fake.refresh = set()
    host = FakeHost(fake)
    with pytest.raises(AuthError):
        make(fake, live_store(NOW), media_host=host).publish(outgoing(picture("cover", "Ảnh")))
    assert host.asked == []


def test_a_file_already_public_is_sent_by_its_address() -> None:
    fake = FakeZalo()
    host = FakeHost(fake)
    public = replace(picture("cover", "Ảnh bìa"), url="https://anh.example.gov.vn/bia.jpg")
    make(fake, media_host=host).publish(outgoing(public))
    assert sent(fake)["cover"]["photo_url"] == "https://anh.example.gov.vn/bia.jpg"
    assert host.asked == []


def test_a_file_cover_without_a_media_host_is_permanent_before_any_request() -> None:
    fake = FakeZalo()
    cover = picture("cover", "Ảnh bìa")
    with pytest.raises(Permanent) as info:
        make(fake, InMemoryTokenStore(), default_cover=COVER).publish(outgoing(cover))
    reason = info.value.reason
    assert reason.startswith(f"the cover {cover.name} is a file and Zalo takes pictures only")
    assert "[media] public_base_url" in reason and "[media] host" in reason
    assert "\n" not in reason and info.value.code == "media-host"
    assert fake.requests == []  # not even a token refresh


@pytest.mark.parametrize(
    ("error", "wait"),
    [
        (Temporary("the portal answered 503", retry_after=30.0), 30.0),
        (Ambiguous("network: ReadTimeout after the upload was sent"), None),
    ],
    ids=["temporary", "ambiguous"],
)
def test_a_failing_media_host_makes_the_post_wait_not_the_zalo_channel(
    error: ChannelError, wait: float | None
) -> None:
    fake = FakeZalo()
    host = FakeHost(fake, error)
    cover = picture("cover", "Ảnh bìa")
    with pytest.raises(Temporary) as info:
        make(fake, media_host=host).publish(outgoing(cover))
    assert type(info.value) is Temporary  # not Unreachable: the Zalo channel is not down
    assert info.value.code == "media-host" and info.value.retry_after == wait
    assert info.value.reason == (
        f"the cover {cover.name} has no public address yet; the media host: {error.reason}"
    )
    assert info.value.__cause__ is error
    assert len(host.asked) == 1 and fake.requests == []


@pytest.mark.parametrize(
    "error",
    [
        Unreachable("network: ConnectError before the request reached the portal"),
        AuthError("the WordPress password was refused"),
    ],
    ids=["unreachable", "auth"],
)
def test_a_host_that_is_down_or_refuses_us_stops_the_zalo_channel_until_check_passes(
    error: ChannelError,
) -> None:
    """No post spends its tries on a portal that is down or refuses our password: the Zalo
    channel stops (its pictures cannot go out) and its check, which asks the host too, keeps
    it stopped until the host answers."""
    fake = FakeZalo()
    host = FakeHost(fake, error)
    cover = picture("cover", "Ảnh bìa")
    adapter = make(fake, media_host=host)
    with pytest.raises(type(error)) as info:
        adapter.publish(outgoing(cover))
    assert info.value.code == "media-host" and info.value.__cause__ is error
    assert info.value.reason.endswith(f"the media host: {error.reason}")
    host.down = CheckResult(False, "the portal cannot be reached", reachable=False)
    result = adapter.check()
    assert not result.ok and result.detail.endswith("its media host: the portal cannot be reached")
    assert not result.reachable
    host.down = None
    assert adapter.check().ok


def test_a_rate_limiting_media_host_makes_the_zalo_channel_wait_as_long() -> None:
    """A throttle ends by time (no check needed), and spends no post's tries: a portal that
    rate-limits for hours would otherwise fail every Zalo post with a file cover."""
    fake = FakeZalo()
    until = NOW + timedelta(minutes=2)
    host = FakeHost(fake, Throttled("the portal is rate-limiting", until=until))
    cover = picture("cover", "Ảnh bìa")
    with pytest.raises(Throttled) as info:
        make(fake, media_host=host).publish(outgoing(cover))
    assert info.value.until == until and info.value.code == "media-host"
    assert info.value.reason.endswith("the media host: the portal is rate-limiting")
    assert fake.calls("create") == []


def test_a_file_the_media_host_refuses_is_permanent() -> None:
    fake = FakeZalo()
    refused = Permanent("the portal refused the file (413: too large)", status=413)
    host = FakeHost(fake, refused)
    cover = picture("cover", "Ảnh bìa")
    with pytest.raises(Permanent) as info:
        make(fake, media_host=host).publish(outgoing(cover))
    assert info.value.reason == f"the media host refused the cover {cover.name}: {refused.reason}"
    assert (info.value.status, info.value.code) == (413, "media-host")
    assert fake.requests == []


def test_images_become_blocks_after_the_text_with_their_alt_text_as_caption() -> None:
    fake = FakeZalo()
    host = FakeHost(fake)
    cover = Media("cover", "Ảnh bìa", url=COVER)
    chart = picture("image", "Biểu đồ số cuộc gọi tới Tổng đài 111", stem="bieu-do")
    linked = Media("image", "Trẻ em vui chơi an toàn", url="https://cdn.example.gov.vn/vui.jpg")
    border = Media("image", "", url="https://cdn.example.gov.vn/vien.png")  # decorative
    make(fake, media_host=host).publish(outgoing(cover, chart, linked, border))
    assert sent(fake)["body"] == [
        {"type": "text", "content": "<p>Đoạn một.</p>"},
        {"type": "text", "content": "<p>Đoạn hai.</p>"},
        {
            "type": "image",
            "url": HOSTED + chart.name,
            "caption": "Biểu đồ số cuộc gọi tới Tổng đài 111",
        },
        {
            "type": "image",
            "url": "https://cdn.example.gov.vn/vui.jpg",
            "caption": "Trẻ em vui chơi an toàn",
        },
        {"type": "image", "url": "https://cdn.example.gov.vn/vien.png"},
    ]
    assert [name for name, _ in host.asked] == [chart.name]


@pytest.mark.parametrize(
    "url", ["http://cdn.example.gov.vn/bia.jpg", "media/bia.jpg", "ftp://x.vn/a.jpg"]
)
def test_a_cover_zalo_cannot_fetch_over_https_is_permanent(url: str) -> None:
    fake = FakeZalo()
    with pytest.raises(Permanent, match="not a public https:// address") as info:
        make(fake).publish(outgoing(Media("cover", "Ảnh bìa", url=url)))
    assert info.value.code == "picture" and fake.requests == []
    image = Media("image", "Ảnh", url=url)  # an image block too
    with pytest.raises(Permanent, match=r"^picture 1 is at .*not a public https://"):
        make(fake).publish(outgoing(Media("cover", "Ảnh bìa", url=COVER), image))
    host = FakeHost(fake)  # and an address a host gives
    host.public_url = lambda media: url  # type: ignore[method-assign]
    with pytest.raises(Permanent, match="not a public https:// address"):
        make(fake, media_host=host).publish(outgoing(picture("cover", "Ảnh bìa")))
    assert fake.requests == []


def test_a_plain_http_cover_is_taken_only_by_a_sandbox_on_loopback() -> None:
    plain = "http://127.0.0.1:8765/media/bia.jpg"
    for api in ("http://127.0.0.1:8765/zalo/openapi", "http://localhost:8765/zalo/openapi"):
        fake = FakeZalo()
        make(fake, api_base_url=api).publish(outgoing(Media("cover", "Ảnh bìa", url=plain)))
        assert sent(fake)["cover"]["photo_url"] == plain
    with pytest.raises(Permanent):
        make(FakeZalo()).publish(outgoing(Media("cover", "Ảnh bìa", url=plain)))


def test_without_a_cover_picture_the_article_goes_as_it_is_for_zalo_to_refuse() -> None:
    """``check`` refuses such a post (the render gives every Zalo post a cover, the channel's
    default_cover included); the adapter adds nothing of its own."""
    fake = FakeZalo()
    bare = Outgoing(**{**outgoing().__dict__, "media": ()})
    make(fake, default_cover="https://x.test/default.jpg").publish(bare)
    assert "cover" not in json.loads(fake.calls("create")[0].content)


# -- tokens -------------------------------------------------------------------------------------


def test_a_rejected_access_token_is_refreshed_once_and_the_call_retried() -> None:
    fake = FakeZalo()
    fake.access = set()  # Zalo killed the stored access token early
    store = live_store()
    receipt = make(fake, store).publish(outgoing())
    assert receipt.remote_id == "art1"
    assert fake.refresh_calls == [LIVE_REFRESH]
    assert [r.headers["access_token"] for r in fake.calls("create")] == [
        LIVE_ACCESS,
        NEW_ACCESS,
    ]
    stored = store.load(KEY)
    assert stored is not None and stored.refresh_token == NEW_REFRESH
    assert stored.access_expires_at == NOW + timedelta(seconds=90000)


def test_a_fresh_token_rejected_again_is_an_auth_error() -> None:
    fake = FakeZalo()
    fake.replies["create"] = [{"error": -216}, {"error": -220, "message": "expired"}]
    with pytest.raises(AuthError, match="re-authorise"):
        make(fake).publish(outgoing())
    assert len(fake.refresh_calls) == 1


def test_a_token_expiring_within_the_hour_is_refreshed_first() -> None:
    fake = FakeZalo()
    make(fake, live_store(NOW + timedelta(minutes=59))).publish(outgoing())
    assert fake.refresh_calls == [LIVE_REFRESH]
    assert fake.calls("create")[0].headers["access_token"] == NEW_ACCESS
    fake = FakeZalo()
    make(fake, live_store(NOW + timedelta(minutes=61))).publish(outgoing())
    assert fake.refresh_calls == []


def test_the_refresh_request_follows_oauth_v4() -> None:
    fake = FakeZalo()
    make(fake, live_store(NOW)).publish(outgoing())
    (refresh,) = fake.calls("access_token")
    assert refresh.url == f"{OAUTH}/v4/oa/access_token"
    assert refresh.headers["secret_key"] == APP_SECRET
    assert refresh.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(refresh.content.decode()) == {
        "refresh_token": [LIVE_REFRESH],
        "app_id": [APP_ID],
        "grant_type": ["refresh_token"],
    }


@pytest.mark.parametrize("durable", [True, False], ids=["database", "memory"])
def test_two_publishes_racing_refresh_once_and_save_before_use(
    tmp_path: Path, durable: bool
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'q.db'}")
    store: Any = DatabaseTokenStore(db, APP_SECRET) if durable else InMemoryTokenStore()
    store.save(KEY, Tokens(LIVE_ACCESS, LIVE_REFRESH, NOW), seed_hash=seed_digest(SEED))
    fake = FakeZalo()
    stored_at_first_use: list[str | None] = []

    def record(token: str) -> None:
        tokens = store.load(KEY)
        stored_at_first_use.append(tokens.refresh_token if tokens else None)
        assert tokens is not None and tokens.access_token == token

    fake.on_new_access = record
    loaded_by: set[int] = set()
    both_loaded = threading.Event()
    real_load = store.load

    def load(key: str) -> Tokens | None:  # note which threads have looked at the expired token
        loaded_by.add(threading.get_ident())
        if len(loaded_by) >= 2:
            both_loaded.set()
        return real_load(key)

    store.load = load  # type: ignore[method-assign]
    fake.before_refresh = lambda: both_loaded.wait(5)
    sleeps: list[float] = []
    adapter = make(fake, store, sleeps=sleeps)
    receipts: list[str] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            receipts.append(adapter.publish(outgoing()).remote_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert both_loaded.is_set()
    assert sorted(receipts) == ["art1", "art2"]
    assert fake.refresh_calls == [LIVE_REFRESH]
    assert sleeps == []  # the second thread waited on the lock, not on the lease
    assert stored_at_first_use == [NEW_REFRESH]  # durable before the new token went out
    assert real_load(KEY) == Tokens(NEW_ACCESS, NEW_REFRESH, NOW + timedelta(hours=25))
    db.close()


def test_a_refused_refresh_token_is_an_auth_error() -> None:
    fake = FakeZalo()
    fake.refresh = set()
    with pytest.raises(AuthError) as info:
        make(fake, live_store(NOW)).publish(outgoing())
    assert info.value.reason == (
        "Zalo refused the refresh token (-14014): re-authorise the OA and put the new refresh"
        " token in the channel's refresh_token secret"
    )
    assert fake.calls("create") == []


def test_first_use_bootstraps_from_the_configured_refresh_token() -> None:
    fake = FakeZalo()
    store = InMemoryTokenStore()
    make(fake, store).publish(outgoing())
    assert fake.refresh_calls == [SEED]
    assert store.seed_hash(KEY) == seed_digest(SEED)
    make(fake, store).publish(outgoing())  # same seed configured: the stored tokens are used
    assert fake.refresh_calls == [SEED]
    tokens = store.load(KEY)
    assert tokens is not None and tokens.refresh_token == NEW_REFRESH


def test_a_new_configured_refresh_token_means_re_authorised() -> None:
    fake = FakeZalo()
    store = InMemoryTokenStore()
    make(fake, store).publish(outgoing())
    fake.refresh.add("rt-seed-second-8Hh")  # the operator authorised the OA again
    make(fake, store, seed="rt-seed-second-8Hh").publish(outgoing())
    assert fake.refresh_calls == [SEED, "rt-seed-second-8Hh"]
    assert store.seed_hash(KEY) == seed_digest("rt-seed-second-8Hh")
    make(fake, store, seed="rt-seed-second-8Hh").publish(outgoing())
    assert len(fake.refresh_calls) == 2


def test_no_stored_tokens_and_no_seed_is_an_auth_error() -> None:
    fake = FakeZalo()
    with pytest.raises(AuthError, match="no tokens are stored"):
        make(fake, InMemoryTokenStore(), seed="").publish(outgoing())
    assert fake.requests == []


def test_sandbox_and_real_tokens_are_kept_apart() -> None:
    fake = FakeZalo()
    store = live_store()
    make(fake, store, oauth_base_url="https://sandbox.test/zalo/oauth").publish(outgoing())
    assert fake.refresh_calls == [SEED]  # its own key: bootstrapped, the real pair untouched
    assert store.load(KEY) == Tokens(LIVE_ACCESS, LIVE_REFRESH, NOW + timedelta(hours=20))


# -- lookup, check, pacing ------------------------------------------------------------------------


def test_lookup_finds_the_article_by_title_since_the_attempt() -> None:
    since = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    ms = int(since.timestamp() * 1000)
    fake = FakeZalo()
    fake.replies["getslice"] = [
        {
            "error": 0,
            "data": {
                "medias": [
                    {"id": "a3", "title": "Khác", "create_date": ms + 60_000},
                    {
                        "id": "a2",
                        "title": "Quyền của trẻ em",
                        "create_date": ms - 240_000,
                        "link_view": "https://zalo.me/a2",
                    },
                    {"id": "a1", "title": "Quyền của trẻ em", "create_date": ms - 3_600_000},
                ],
                "total": 3,
            },
        }
    ]
    receipt = make(fake).lookup(outgoing(), since)
    assert receipt is not None
    assert (receipt.remote_id, receipt.url) == ("a2", "https://zalo.me/a2")
    params = fake.calls("getslice")[0].url.params
    assert (params["offset"], params["limit"], params["type"]) == ("0", "10", "normal")


def test_lookup_skips_articles_other_posts_own_and_never_asks_the_media_host() -> None:
    since = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    ms = int(since.timestamp() * 1000)
    same = {"title": "Quyền của trẻ em"}
    fake = FakeZalo()
    fake.replies["getslice"] = [
        {
            "error": 0,
            "data": {
                "medias": [
                    {"id": "a9", **same, "create_date": ms + 120_000},  # the repeat's article
                    {"id": "a8", **same, "create_date": ms + 60_000},
                ]
            },
        }
    ]
    host = FakeHost(fake)
    post = replace(outgoing(picture("cover", "Ảnh bìa")), exclude=frozenset({"a9"}))
    receipt = make(fake, media_host=host).lookup(post, since)
    assert receipt is not None and receipt.remote_id == "a8"
    assert host.asked == []


def test_lookup_accepts_articles_in_seconds_and_pages_on() -> None:
    since = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    old = {"id": "x", "title": "Khác", "created_date": int(since.timestamp()) - 9999}
    fake = FakeZalo()
    fake.replies["getslice"] = [
        {"error": 0, "data": {"articles": [old] * 10}},
        {
            "error": 0,
            "data": {
                "articles": [
                    {
                        "id": "b7",
                        "title": "Quyền của trẻ em",
                        "created_date": int(since.timestamp()),
                    }
                ]
            },
        },
    ]
    receipt = make(fake).lookup(outgoing(), since)
    assert receipt is not None and receipt.remote_id == "b7" and receipt.url is None
    assert [r.url.params["offset"] for r in fake.calls("getslice")] == ["0", "10"]


def test_lookup_finds_nothing() -> None:
    fake = FakeZalo()
    fake.replies["getslice"] = [{"error": 0, "data": {"medias": [], "total": 0}}]
    assert make(fake).lookup(outgoing(), NOW) is None


def test_lookup_failures_are_temporary() -> None:
    fake = FakeZalo()
    fake.replies["getslice"] = [httpx.Response(503, text="busy")]
    with pytest.raises(Temporary):
        make(fake).lookup(outgoing(), NOW)


def test_check_names_the_oa() -> None:
    fake = FakeZalo()
    result = make(fake).check()
    assert result.ok and "STP BG" in result.detail
    assert fake.calls("getoa")[0].url == f"{API}/v2.0/oa/getoa"


def test_check_refreshes_a_missing_token_and_reports_a_refusal() -> None:
    fake = FakeZalo()
    fake.refresh = set()
    result = make(fake, InMemoryTokenStore()).check()
    assert not result.ok and "re-authorise" in result.detail
    assert fake.calls("getoa") == []


def test_check_spots_the_wrong_oa() -> None:
    result = make(FakeZalo(), oa_id="111").check()
    assert not result.ok and "999" in result.detail


def test_pacing_follows_the_rate_limit_headers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        response.headers["X-RateLimit-Limit"] = "4000"
        response.headers["X-RateLimit-Remain"] = "0"
        return response

    fake = FakeZalo()
    adapter = make(handler)  # type: ignore[arg-type]
    assert adapter.pacing() == 0.0
    adapter.check()
    assert adapter.pacing() == 60.0


def test_no_secret_in_any_message_or_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bootstrap, refused, rejected, invalid, broadcast = (FakeZalo() for _ in range(5))
    refused.refresh = set()
    rejected.access = set()
    invalid.replies["create"] = [{"error": -201, "message": "cover is invalid"}]
    broadcast.replies["message"] = [{"error": -216}, {"error": -216}]
    scenarios: list[tuple[FakeZalo, Callable[[FakeZalo], object]]] = [
        (bootstrap, lambda f: make(f, InMemoryTokenStore()).publish(outgoing())),
        (refused, lambda f: make(f, live_store(NOW)).publish(outgoing())),
        (rejected, lambda f: make(f).publish(outgoing())),
        (invalid, lambda f: make(f).publish(outgoing())),
        (broadcast, lambda f: make(f, broadcast=True).publish(outgoing())),
        (refused, lambda f: make(f, InMemoryTokenStore()).check()),
    ]
    messages: list[str] = []
    for fake, scenario in scenarios:
        try:
            messages.append(repr(scenario(fake)))
        except ChannelError as exc:
            messages.append(f"{exc!r} {exc.reason} {exc.__cause__!r}")
    assert "Zalo refused the refresh token (-14014)" in messages[1]  # each failed as meant
    assert "Zalo error -201" in messages[3] and "failed: Zalo rejects" in messages[4]
    assert bootstrap.minted == rejected.minted == broadcast.minted == 1
    text = caplog.text + "\n".join(messages)
    for fake, _ in scenarios:
        for secret in fake.secrets():
            assert secret not in text
