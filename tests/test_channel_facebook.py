"""FacebookAdapter against a fake Graph API (httpx.MockTransport) that keeps its posts."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

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
from publisher.channels.facebook import PHOTO_REUSE, FacebookAdapter, pacing_delay
from publisher.clock import FakeClock
from publisher.config import Channel
from publisher.sandbox import credentials
from tests.fakes import make_channel
from tests.imitation import Imitation

NOW = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)
PAGE = "100000000000000"
TOKEN = "fake-page-token-" + secrets.token_hex(8)  # made per run: the tests search output for it
EXPIRED = "EAAGexpiredToken999"  # a token the fake Graph refuses
BASE = "https://graph.test"
KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"
TEXT = "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.\n\n#ThangHanhDongViTreEm"
STAMP = "%Y-%m-%dT%H:%M:%S+0000"  # Graph's created_time
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4  # bytes enough to tell apart
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 4
COVER = Media(
    "cover",
    "Áp phích Tháng hành động vì trẻ em: hai em nhỏ nắm tay nhau",
    mime="image/jpeg",
    name="bia-3f2a9c1d0b7e.jpg",
    sha256="3f2a9c1d0b7e" + "0" * 52,
    data=JPEG,
    width=1200,
    height=630,
)
SECOND = Media(
    "image",
    "Tổng đài 111 miễn phí",
    mime="image/png",
    name="tong-dai-111-9b8a7c6d5e4f.png",
    sha256="9b8a7c6d5e4f" + "0" * 52,
    data=PNG,
)
WEB = Media("image", "", url="https://stp.bacgiang.gov.vn/anh/tre-em.jpg")  # decorative


def graph_error(
    code: int, status: int = 400, sub: int | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    error: dict[str, Any] = {"message": f"(#{code}) Lỗi giả lập", "type": "OAuthException"}
    error |= {"code": code, "fbtrace_id": "EJplcsCHuLu"}
    if sub is not None:
        error["error_subcode"] = sub
    return httpx.Response(status, json={"error": error}, headers=headers)


@dataclass(frozen=True)
class Upload:
    """A multipart file part as the fake received it."""

    filename: str
    mime: str
    data: bytes


def form(request: httpx.Request) -> dict[str, Any]:
    """A request's body parameters: urlencoded or multipart (file parts as Upload)."""
    kind = request.headers.get("Content-Type", "")
    if kind.startswith("multipart/form-data"):
        head = f"Content-Type: {kind}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request.content)
        out: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                out[str(name)] = Upload(part.get_filename(), part.get_content_type(), payload)
            else:
                out[str(name)] = payload.decode("utf-8")
        return out
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


class FakeGraph:
    """Enough of graph.facebook.com: feed/photos create (unpublished photos, attached_media),
    published_posts with paging, reads.

    ``after_commit`` stores the post and still answers with the given response (koala#699);
    ``answers`` are returned in order, before any routing, to script errors; ``raise_on_read``
    makes every GET fail with that exception. ``published_posts`` ignores ``since``: the
    adapter's own check of ``created_time`` is under test.
    """

    def __init__(self, page_size: int = 100) -> None:
        self.posts: list[dict[str, str]] = []  # newest last
        self.photos: list[dict[str, Any]] = []  # every upload, in order
        self.requests: list[httpx.Request] = []
        self.answers: list[httpx.Response | Exception] = []
        self.after_commit: httpx.Response | None = None
        self.raise_on_read: Exception | None = None
        self.usage: dict[str, str] = {}
        self.page_size = page_size
        self.next_host = BASE

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return graph_error(190, sub=463)
        if request.method == "GET" and self.raise_on_read is not None:
            raise self.raise_on_read
        response = self.route(request)
        response.headers.update(self.usage)
        return response

    def route(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        assert parts[0] == "v21.0", parts
        if request.method == "POST" and parts[1:] == [PAGE, "photos"]:
            return self.photo(form(request))
        if request.method == "POST" and parts[1:] == [PAGE, "feed"]:
            return self.feed(form(request))
        if request.method == "GET" and parts[1:] == [PAGE, "published_posts"]:
            return self.published_posts(request.url.params)
        if request.method == "GET" and parts[1:] == [PAGE]:
            return httpx.Response(200, json={"id": PAGE, "name": "Sở Tư pháp tỉnh Bắc Giang"})
        if request.method == "GET" and len(parts) == 2:
            post = next((p for p in self.posts if p["id"] == parts[1]), None)
            if post is None:
                return graph_error(100, sub=33)
            return httpx.Response(200, json={"id": post["id"], "permalink_url": post["permalink"]})
        return graph_error(100)

    def photo(self, fields: dict[str, Any]) -> httpx.Response:
        if not isinstance(fields.get("source"), Upload) and not fields.get("url"):
            return graph_error(324)  # "Requires upload file"
        self.photos.append(fields)
        photo_id = f"90000{len(self.photos)}"
        if fields.get("published") == "false":  # no story: only the photo's id
            return httpx.Response(200, json={"id": photo_id})
        post_id = self.store(fields.get("caption", ""))
        if self.after_commit is not None:
            return self.after_commit
        return httpx.Response(200, json={"id": photo_id, "post_id": post_id})

    def feed(self, fields: dict[str, Any]) -> httpx.Response:
        known = {f"90000{n}" for n in range(1, len(self.photos) + 1)}
        attached = [json.loads(v)["media_fbid"] for k, v in sorted(fields.items()) if "[" in k]
        if any(a not in known for a in attached):
            return graph_error(100)
        post_id = self.store(fields.get("message", ""))
        if self.after_commit is not None:
            return self.after_commit
        return httpx.Response(200, json={"id": post_id})

    def store(self, text: str, when: datetime = NOW) -> str:
        n = len(self.posts) + 1
        post_id = f"{PAGE}_{n}"
        self.posts.append(
            {
                "id": post_id,
                "message": text,
                "created_time": when.strftime(STAMP),
                "permalink": f"https://www.facebook.com/{PAGE}/posts/pfbid{n}",
            }
        )
        return post_id

    def published_posts(self, params: httpx.QueryParams) -> httpx.Response:
        newest_first = list(reversed(self.posts))
        start = int(params.get("after", "0"))
        chunk = newest_first[start : start + self.page_size]
        data = [
            {"id": p["id"], "message": p["message"], "created_time": p["created_time"]}
            for p in chunk
        ]
        body: dict[str, Any] = {"data": data}
        if start + self.page_size < len(newest_first):
            after = start + self.page_size
            # real Graph puts the caller's token into paging.next
            nxt = f"{self.next_host}/v21.0/{PAGE}/published_posts?access_token={TOKEN}"
            body["paging"] = {"next": f"{nxt}&limit={self.page_size}&after={after}"}
        return httpx.Response(200, json=body)


def channel(**settings: Any) -> Channel:
    given = {"page_id": PAGE, "base_url": BASE, "api_version": "v21.0", **settings}
    name = "Trang Facebook Sở Tư pháp"
    return make_channel("facebook", "facebook", name, templates="facebook", daily_cap=2, **given)


def outgoing(*media: Media, **fields: str) -> Outgoing:
    return Outgoing(
        post_id=7,
        idempotency_key=KEY,
        channel="facebook",
        kind="slogan",
        fields={"message": TEXT, "link": "", "image": "", **fields},
        due_at=NOW,
        media=media,
    )


def adapter(
    fake: Callable[[httpx.Request], httpx.Response], token: str = TOKEN, clock: Any = None
) -> FacebookAdapter:
    client = httpx.Client(transport=httpx.MockTransport(fake))
    clock = clock or FakeClock(NOW)
    return FacebookAdapter(channel(), client, {"page_token": token}, clock=clock)


def posts_sent(fake: FakeGraph) -> list[httpx.Request]:
    return [r for r in fake.requests if r.method == "POST"]


# -- publishing --------------------------------------------------------------------------


def test_feed_post_carries_exactly_the_message_and_link_and_takes_the_permalink() -> None:
    fake = FakeGraph()
    receipt = adapter(fake).publish(outgoing(link="https://stp.bacgiang.gov.vn/bai-viet/1"))
    create = fake.requests[0]
    assert create.method == "POST"
    assert str(create.url) == f"{BASE}/v21.0/{PAGE}/feed"
    assert create.headers["Authorization"] == f"Bearer {TOKEN}"
    assert form(create) == {"message": TEXT, "link": "https://stp.bacgiang.gov.vn/bai-viet/1"}
    assert receipt.remote_id == f"{PAGE}_1"
    assert receipt.url == f"https://www.facebook.com/{PAGE}/posts/pfbid1"
    assert [r.method for r in fake.requests] == ["POST", "GET"]


def test_feed_post_without_link_sends_no_link_field() -> None:
    fake = FakeGraph()
    adapter(fake).publish(outgoing())
    assert "link" not in form(fake.requests[0])


def test_a_picture_given_by_address_goes_as_a_photo_post_with_url_and_caption() -> None:
    fake = FakeGraph()
    image = "https://stp.bacgiang.gov.vn/anh/tre-em.jpg"
    post = replace(outgoing(), media=(Media("cover", "", url=image),))
    receipt = adapter(fake).publish(post)
    create = fake.requests[0]
    assert str(create.url) == f"{BASE}/v21.0/{PAGE}/photos"
    assert form(create) == {"url": image, "caption": TEXT}
    assert receipt.remote_id == f"{PAGE}_1"
    assert receipt.extra == {"photo_id": "900001"}


def test_one_picture_file_is_uploaded_as_multipart_source_with_caption_and_alt_text() -> None:
    fake = FakeGraph()
    receipt = adapter(fake).publish(outgoing(COVER, link="https://ignored.example"))
    create = fake.requests[0]
    assert create.method == "POST" and str(create.url) == f"{BASE}/v21.0/{PAGE}/photos"
    assert create.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    sent = form(create)
    assert sent == {
        "caption": TEXT,
        "alt_text_custom": COVER.alt,
        "source": Upload("bia-3f2a9c1d0b7e.jpg", "image/jpeg", JPEG),
    }
    assert len(posts_sent(fake)) == 1 and len(fake.posts) == 1
    assert fake.posts[0]["message"] == TEXT
    assert receipt.remote_id == f"{PAGE}_1" and receipt.extra == {"photo_id": "900001"}
    assert receipt.url == f"https://www.facebook.com/{PAGE}/posts/pfbid1"


def test_one_picture_that_is_only_an_address_goes_as_url_without_alt_when_decorative() -> None:
    fake = FakeGraph()
    receipt = adapter(fake).publish(outgoing(WEB))
    create = fake.requests[0]
    assert create.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(create) == {"url": WEB.url, "caption": TEXT}  # alt "": no alt_text_custom
    assert receipt.remote_id == f"{PAGE}_1"


def test_a_file_with_a_public_address_too_is_sent_as_its_approved_bytes() -> None:
    fake = FakeGraph()
    adapter(fake).publish(outgoing(replace(COVER, url="https://media.example.gov.vn/bia.jpg")))
    sent = form(fake.requests[0])
    assert sent["source"].data == JPEG and "url" not in sent


def test_two_pictures_are_two_unpublished_uploads_then_one_feed_post_attaching_them() -> None:
    fake = FakeGraph()
    receipt = adapter(fake).publish(outgoing(COVER, SECOND, link="https://ignored.example"))
    first, second, post = posts_sent(fake)
    assert [str(r.url) for r in (first, second)] == [f"{BASE}/v21.0/{PAGE}/photos"] * 2
    assert form(first) == {
        "published": "false",
        "alt_text_custom": COVER.alt,
        "source": Upload(COVER.name, "image/jpeg", JPEG),
    }
    assert form(second) == {
        "published": "false",
        "alt_text_custom": SECOND.alt,
        "source": Upload(SECOND.name, "image/png", PNG),
    }
    assert str(post.url) == f"{BASE}/v21.0/{PAGE}/feed"
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(post) == {
        "message": TEXT,
        "attached_media[0]": '{"media_fbid":"900001"}',
        "attached_media[1]": '{"media_fbid":"900002"}',
    }
    assert [p["message"] for p in fake.posts] == [TEXT]  # one post; the photos are no posts
    assert receipt.remote_id == f"{PAGE}_1"
    assert receipt.extra == {"photo_ids": "900001,900002"}
    assert receipt.url == f"https://www.facebook.com/{PAGE}/posts/pfbid1"


def test_a_picture_given_twice_is_uploaded_and_attached_once() -> None:
    fake = FakeGraph()
    adapter(fake).publish(outgoing(COVER, WEB, replace(WEB, role="image")))
    assert len(fake.photos) == 2
    assert form(posts_sent(fake)[-1]).keys() == {
        "message",
        "attached_media[0]",
        "attached_media[1]",
    }
    assert fake.photos[1] == {"published": "false", "url": WEB.url}


@pytest.mark.parametrize(
    "lost",
    [graph_error(2, status=500), httpx.ReadTimeout("slow"), httpx.Response(200, text="?")],
    ids=["500-code-2", "read-timeout", "no-json"],
)
def test_a_lost_unpublished_upload_is_temporary_and_the_retry_reuses_uploaded_photos(
    lost: httpx.Response | Exception,
) -> None:
    """Nothing a follower sees exists before the feed call: a lost upload answer is no post to
    look up. The retry does not upload again the photo whose answer came."""
    fake = FakeGraph()
    facebook = adapter(fake)

    def lose_the_second_upload(request: httpx.Request) -> httpx.Response:
        if len(fake.photos) == 1 and request.url.path.endswith("/photos"):
            fake.requests.append(request)
            fake.photos.append(form(request))  # the upload happened; its answer is lost
            if isinstance(lost, Exception):
                raise lost
            return lost
        return fake(request)

    facebook.client = httpx.Client(transport=httpx.MockTransport(lose_the_second_upload))
    with pytest.raises(Temporary) as caught:
        facebook.publish(outgoing(COVER, SECOND))
    assert type(caught.value) is Temporary and "may exist" not in caught.value.reason
    assert fake.posts == []
    receipt = facebook.publish(outgoing(COVER, SECOND))
    uploads = [form(r) for r in fake.requests if r.url.path.endswith("/photos")]
    assert [u["source"].data for u in uploads] == [JPEG, PNG, PNG]  # the cover went once
    attached = form(posts_sent(fake)[-1])
    assert attached["attached_media[0]"] == '{"media_fbid":"900001"}'
    assert attached["attached_media[1]"] == '{"media_fbid":"900003"}'
    assert receipt.extra == {"photo_ids": "900001,900003"}
    assert len(fake.posts) == 1


def test_uploaded_photo_ids_are_kept_per_post_for_a_while_only() -> None:
    fake = FakeGraph()
    clock = FakeClock(NOW)
    facebook = adapter(fake, clock=clock)
    fake.answers += [httpx.Response(200, json={"id": "900001"}), graph_error(1, status=500)]
    with pytest.raises(Temporary):
        facebook.publish(outgoing(COVER, SECOND))
    fake.photos.append({"kept": "the first upload, answered by the script above"})
    other = replace(outgoing(COVER, SECOND), idempotency_key="another-post")
    facebook.publish(other)  # another post: its own uploads
    assert len(fake.photos) == 3
    clock.advance(PHOTO_REUSE)
    facebook.publish(outgoing(COVER, SECOND))  # too old to trust: uploaded again
    assert len(fake.photos) == 5


def test_a_lost_answer_of_the_feed_post_is_ambiguous_and_the_lookup_finds_it() -> None:
    fake = FakeGraph()
    facebook = adapter(fake)
    fake.after_commit = graph_error(2, status=500)
    with pytest.raises(Ambiguous):
        facebook.publish(outgoing(COVER, SECOND))
    fake.after_commit = None
    found = facebook.lookup(outgoing(COVER, SECOND), NOW)
    assert found is not None and found.remote_id == f"{PAGE}_1"
    assert len(fake.posts) == 1


def test_a_published_photo_whose_answer_is_lost_is_ambiguous_and_found_by_its_caption() -> None:
    fake = FakeGraph()
    facebook = adapter(fake)
    fake.answers.append(httpx.ReadTimeout("slow"))
    with pytest.raises(Ambiguous):
        facebook.publish(outgoing(COVER))
    fake.answers.append(graph_error(2, status=500))
    with pytest.raises(Ambiguous):
        facebook.publish(outgoing(COVER))
    assert fake.posts == []  # both scripted: nothing stored
    fake.after_commit = graph_error(2, status=500)
    with pytest.raises(Ambiguous):
        facebook.publish(outgoing(COVER))
    found = facebook.lookup(outgoing(COVER), NOW)
    assert found is not None and found.remote_id == f"{PAGE}_1"


def test_nothing_of_ours_is_added_to_what_followers_read() -> None:
    fake = FakeGraph()
    facebook = adapter(fake)
    for media in ((), (COVER,), (WEB,), (COVER, SECOND)):
        facebook.publish(outgoing(*media))
    assert [p["message"] for p in fake.posts] == [TEXT] * 4
    for request in posts_sent(fake):
        text = request.content.decode("utf-8", errors="replace")
        assert not re.search(r"#p[0-9a-f]{10}", text), text
        for value in form(request).values():
            assert not isinstance(value, str) or value == TEXT or TEXT not in value


@pytest.mark.parametrize(
    "failure",
    [graph_error(2, status=500), graph_error(190, sub=460), httpx.ConnectError("down")],
    ids=["500", "auth", "network"],
)
def test_a_failed_permalink_read_keeps_the_published_post(
    failure: httpx.Response | Exception,
) -> None:
    fake = FakeGraph()
    facebook = adapter(fake)

    def then_fail(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            fake.answers.append(failure)
        return fake(request)

    facebook.client = httpx.Client(transport=httpx.MockTransport(then_fail))
    receipt = facebook.publish(outgoing())
    assert receipt.remote_id == f"{PAGE}_1"
    assert receipt.url == f"https://www.facebook.com/{PAGE}_1"


def test_a_post_answered_without_an_id_is_ambiguous() -> None:
    fake = FakeGraph()
    fake.answers.append(httpx.Response(200, json={"success": True}))
    with pytest.raises(Ambiguous):
        adapter(fake).publish(outgoing())


# -- unclear outcomes and reconciliation -------------------------------------------------


def test_500_code_2_after_create_is_ambiguous_and_lookup_finds_the_post_by_its_text() -> None:
    fake = FakeGraph()
    fake.store("bài cũ, một khẩu hiệu khác")
    fake.after_commit = graph_error(2, status=500)
    facebook = adapter(fake)
    with pytest.raises(Ambiguous) as caught:
        facebook.publish(outgoing())
    assert caught.value.code == "2" and caught.value.status == 500
    fake.after_commit = None
    receipt = facebook.lookup(outgoing(), NOW)
    assert receipt is not None and receipt.remote_id == f"{PAGE}_2"
    assert receipt.url == f"https://www.facebook.com/{PAGE}_2"
    read = fake.requests[-1]
    assert read.url.path == f"/v21.0/{PAGE}/published_posts"
    assert read.url.params["since"] == str(int(NOW.timestamp()) - 300)
    assert read.url.params["limit"] == "100"
    assert read.url.params["fields"] == "id,message,created_time,permalink_url"
    assert len(fake.posts) == 2  # nothing was published twice


def test_506_duplicate_status_is_ambiguous() -> None:
    fake = FakeGraph()
    fake.answers.append(graph_error(506))
    with pytest.raises(Ambiguous) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.code == "506"
    assert "probably exists" in caught.value.reason


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "HTTP 502"),
        (httpx.Response(503, json={"oops": True}), "HTTP 503"),
        (graph_error(1, status=500), "error 1"),
        (graph_error(9999, status=500), "error 9999"),
    ],
    ids=["html-502", "json-without-error", "code-1", "unknown-code-5xx"],
)
def test_5xx_without_a_known_code_is_ambiguous(response: httpx.Response, reason: str) -> None:
    fake = FakeGraph()
    fake.answers.append(response)
    with pytest.raises(Ambiguous, match=reason):
        adapter(fake).publish(outgoing())


def test_read_timeout_after_sending_is_ambiguous_and_connect_error_temporary() -> None:
    fake = FakeGraph()
    facebook = adapter(fake)
    fake.answers.append(httpx.ReadTimeout("slow"))
    with pytest.raises(Ambiguous) as ambiguous:
        facebook.publish(outgoing())
    assert isinstance(ambiguous.value.__cause__, httpx.ReadTimeout)
    fake.answers.append(httpx.ConnectError("refused"))
    with pytest.raises(Temporary) as temporary:
        facebook.publish(outgoing())
    assert isinstance(temporary.value.__cause__, httpx.ConnectError)


# -- error codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "sub", "status", "label"),
    [
        (190, 463, 400, "190/463"),
        (190, None, 400, "190"),
        (102, None, 400, "102"),
        (10, None, 403, "10"),
        (200, None, 403, "200"),
        (299, None, 403, "299"),
    ],
)
def test_token_and_permission_errors_are_auth_errors(
    code: int, sub: int | None, status: int, label: str
) -> None:
    fake = FakeGraph()
    fake.answers.append(graph_error(code, status=status, sub=sub))
    with pytest.raises(AuthError) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.code == label and caught.value.status == status
    assert f"error {label}" in caught.value.reason
    assert "re-authorise the Page token" in caught.value.reason


def test_auth_error_comes_from_the_body_code_even_with_http_500() -> None:
    fake = FakeGraph()
    fake.answers.append(graph_error(190, status=500, sub=467))
    with pytest.raises(AuthError):
        adapter(fake).publish(outgoing())


@pytest.mark.parametrize(
    ("code", "headers", "wait"),
    [
        (
            4,
            {"X-App-Usage": json.dumps({"call_count": 100, "estimated_time_to_regain_access": 7})},
            timedelta(minutes=7),
        ),
        (
            80001,
            {
                "X-Business-Use-Case-Usage": json.dumps(
                    {
                        "999": [{"type": "pages", "estimated_time_to_regain_access": 60}],
                        PAGE: [
                            {
                                "type": "pages",
                                "call_count": 100,
                                "total_cputime": 25,
                                "total_time": 25,
                                "estimated_time_to_regain_access": 19,
                            }
                        ],
                    }
                )
            },
            timedelta(minutes=19),
        ),
        (32, {}, timedelta(minutes=15)),
        (
            613,
            {"X-Page-Usage": '{"call_count": 96, "estimated_time_to_regain_access": 0}'},
            timedelta(minutes=15),
        ),
    ],
    ids=["4-app-usage", "80001-buc-this-page", "32-no-header", "613-zero-estimate"],
)
def test_throttling_codes_wait_for_the_estimated_time_to_regain_access(
    code: int, headers: dict[str, str], wait: timedelta
) -> None:
    fake = FakeGraph()
    fake.answers.append(graph_error(code, headers=headers))
    with pytest.raises(Throttled) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.until == NOW + wait
    assert caught.value.code == str(code)


def test_429_is_throttled_until_retry_after() -> None:
    fake = FakeGraph()
    fake.answers.append(httpx.Response(429, headers={"Retry-After": "120"}, text="slow down"))
    with pytest.raises(Throttled) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.until == datetime(2024, 6, 3, 1, 2, tzinfo=UTC)
    assert caught.value.status == 429


@pytest.mark.parametrize(
    "response",
    [
        graph_error(368),
        graph_error(100, sub=1363003),
        graph_error(1609005),
        graph_error(3),
        graph_error(368, status=500),
        httpx.Response(404, text="Not Found"),
    ],
    ids=["368", "100", "1609005", "other-4xx-code", "368-with-500", "4xx-unparseable"],
)
def test_content_and_parameter_errors_are_permanent(response: httpx.Response) -> None:
    fake = FakeGraph()
    fake.answers.append(response)
    with pytest.raises(Permanent) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.status == response.status_code


# -- pacing ------------------------------------------------------------------------------


def test_pacing_delay_grows_from_80_percent() -> None:
    assert pacing_delay(0) == 0.0
    assert pacing_delay(79.9) == 0.0
    assert pacing_delay(80) == 5.0
    assert pacing_delay(95) == pytest.approx(60.0)
    figures = [pacing_delay(u) for u in range(80, 101)]
    assert figures == sorted(figures) and figures[-1] == 120.0


def test_usage_of_85_percent_slows_down_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeGraph()
    facebook = adapter(fake)
    assert facebook.pacing() == 0.0
    fake.usage = {
        "X-Business-Use-Case-Usage": json.dumps(
            {PAGE: [{"type": "pages", "call_count": 85, "total_cputime": 10, "total_time": 12}]}
        )
    }
    with caplog.at_level(logging.WARNING, logger="publisher.channels.facebook"):
        facebook.check()
        facebook.check()
    assert facebook.pacing() == pytest.approx(pacing_delay(85)) and facebook.pacing() > 5.0
    assert len([r for r in caplog.records if "usage at 85%" in r.getMessage()]) == 1
    fake.usage = {"X-App-Usage": '{"call_count": 12, "total_time": 3, "total_cputime": 3}'}
    facebook.check()
    assert facebook.pacing() == 0.0


def test_usage_is_read_from_error_answers_too() -> None:
    fake = FakeGraph()
    fake.answers.append(graph_error(100, headers={"X-App-Usage": '{"total_cputime": 91}'}))
    facebook = adapter(fake)
    with pytest.raises(Permanent):
        facebook.publish(outgoing())
    assert facebook.pacing() > 0


def test_high_usage_skips_the_permalink_read() -> None:
    fake = FakeGraph()
    fake.usage = {"X-Page-Usage": '{"call_count": 90}'}
    receipt = adapter(fake).publish(outgoing())
    assert [r.method for r in fake.requests] == ["POST"]
    assert receipt.url == f"https://www.facebook.com/{PAGE}_1"


# -- lookup ------------------------------------------------------------------------------


def seed(fake: FakeGraph, count: int, ours_at: int | None) -> None:
    """``count`` posts, the ``ours_at``-th (1 = the oldest) with the wanted text."""
    for n in range(1, count + 1):
        fake.store(TEXT if n == ours_at else f"bài {n}: {TEXT}")


def test_lookup_matches_the_exact_text_whatever_facebook_did_to_its_whitespace() -> None:
    fake = FakeGraph()
    fake.store(TEXT + " Thêm một câu.")  # longer: not the same text
    fake.store(TEXT.replace("\n", "\r\n") + "  \n")  # CRLF, trailing blanks
    found = adapter(fake).lookup(outgoing(), NOW)
    assert found is not None and found.remote_id == f"{PAGE}_2"
    decomposed = FakeGraph()
    decomposed.store(unicodedata.normalize("NFD", TEXT).replace("\n\n", "\n\n\n"))
    found = adapter(decomposed).lookup(outgoing(), NOW)
    assert found is not None and found.remote_id == f"{PAGE}_1"
    prefix = FakeGraph()
    prefix.store(TEXT[:-5])
    assert adapter(prefix).lookup(outgoing(), NOW) is None


def test_lookup_skips_posts_other_posts_own() -> None:
    """The same slogan goes out twice: the earlier post's id is excluded by the dispatcher."""
    fake = FakeGraph()
    fake.store(TEXT)  # the first time, owned by another post
    fake.store(TEXT)  # this post's
    owned = replace(outgoing(), exclude=frozenset({f"{PAGE}_2"}))
    found = adapter(fake).lookup(owned, NOW)
    assert found is not None and found.remote_id == f"{PAGE}_1"
    both = replace(outgoing(), exclude=frozenset({f"{PAGE}_1", f"{PAGE}_2"}))
    assert adapter(fake).lookup(both, NOW) is None


def test_lookup_ignores_a_post_with_the_same_text_created_before_the_window() -> None:
    fake = FakeGraph()
    since = NOW + timedelta(days=7)  # this attempt, a week after the same slogan went out
    fake.store(TEXT, when=since - timedelta(minutes=5, seconds=1))
    assert adapter(fake).lookup(outgoing(), since) is None
    fake.store(TEXT, when=since - timedelta(minutes=5))  # LOOKBACK: still in the window
    found = adapter(fake).lookup(outgoing(), since)
    assert found is not None and found.remote_id == f"{PAGE}_2"


def test_lookup_follows_paging_next_without_the_token_in_the_url() -> None:
    fake = FakeGraph(page_size=2)
    seed(fake, 5, ours_at=1)  # the oldest: on the third page
    receipt = adapter(fake).lookup(outgoing(), NOW)
    assert receipt is not None and receipt.remote_id == f"{PAGE}_1"
    assert len(fake.requests) == 3
    for request in fake.requests:
        assert "access_token" not in request.url.params
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert fake.requests[2].url.params["after"] == "4"


def test_lookup_returns_none_when_no_post_has_the_text() -> None:
    fake = FakeGraph(page_size=2)
    seed(fake, 3, ours_at=None)
    assert adapter(fake).lookup(outgoing(), NOW) is None
    assert len(fake.requests) == 2


def test_lookup_reads_a_bounded_number_of_pages() -> None:
    fake = FakeGraph(page_size=1)
    seed(fake, 20, ours_at=1)
    assert adapter(fake).lookup(outgoing(), NOW) is None
    assert len(fake.requests) == 5


def test_lookup_does_not_follow_paging_to_another_host() -> None:
    fake = FakeGraph(page_size=1)
    fake.next_host = "https://evil.example"
    seed(fake, 2, ours_at=1)
    assert adapter(fake).lookup(outgoing(), NOW) is None
    assert [r.url.host for r in fake.requests] == ["graph.test"]


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (graph_error(190, sub=463), AuthError),
        (graph_error(2, status=500), Temporary),
        (httpx.Response(502, text="Bad Gateway"), Temporary),
        (graph_error(80001), Throttled),
        (httpx.ReadTimeout("slow"), Temporary),
        (httpx.Response(200, text="not json"), Temporary),
    ],
    ids=["auth", "code-2", "502", "throttled", "read-timeout", "unreadable-200"],
)
def test_lookup_raises_on_errors_instead_of_answering_none(
    answer: httpx.Response | Exception, outcome: type[ChannelError]
) -> None:
    fake = FakeGraph()
    fake.answers.append(answer)
    with pytest.raises(outcome):
        adapter(fake).lookup(outgoing(), NOW)


# -- check -------------------------------------------------------------------------------


def test_check_ok_names_the_page() -> None:
    fake = FakeGraph()
    result = adapter(fake).check()
    assert result.ok
    assert "Sở Tư pháp tỉnh Bắc Giang" in result.detail
    assert fake.requests[0].url.params["fields"] == "id,name"
    assert [r.method for r in fake.requests] == ["GET"]


def test_check_reports_an_expired_token() -> None:
    result = adapter(FakeGraph(), token=EXPIRED).check()
    assert not result.ok
    assert result.detail.startswith("the Page token is invalid or expired (code 190/463): ")


def test_check_reports_an_unreachable_graph() -> None:
    fake = FakeGraph()
    fake.answers.append(httpx.ConnectError("Name or service not known"))
    result = adapter(fake).check()
    assert not result.ok
    assert result.detail.startswith(f"cannot reach {BASE}")


def test_a_missing_token_sends_nothing() -> None:
    fake = FakeGraph()
    facebook = adapter(fake, token="")
    result = facebook.check()
    assert not result.ok and "[channels.facebook.secrets] page_token" in result.detail
    with pytest.raises(AuthError):
        facebook.publish(outgoing())
    assert fake.requests == []


# -- secrets -----------------------------------------------------------------------------


def test_the_token_never_reaches_errors_logs_receipts_or_urls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeGraph(page_size=1)
    seed(fake, 3, ours_at=1)
    facebook = adapter(fake)
    echoed = {"message": f"Invalid OAuth access token {TOKEN}", "code": 190, "error_subcode": 467}
    answers: list[httpx.Response | Exception] = [
        httpx.Response(400, json={"error": echoed}),
        graph_error(2, status=500),
        graph_error(80001, headers={"X-App-Usage": '{"call_count": 99}'}),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.Response(502, text=f"proxy says {TOKEN}"),
    ]
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for answer in answers:
            fake.answers.append(answer)
            with pytest.raises(ChannelError) as caught:
                facebook.publish(outgoing())
            texts += [str(caught.value), caught.value.reason, repr(caught.value)]
        fake.usage = {"X-Page-Usage": '{"call_count": 0}'}
        texts.append(repr(facebook.publish(outgoing())))
        texts.append(repr(facebook.lookup(outgoing(), NOW)))
        texts.append(facebook.check().detail)
        texts.append(adapter(fake, token=EXPIRED).check().detail)
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.url) for r in fake.requests]
    assert any(r.name == "publisher.channels.facebook" for r in caplog.records)
    assert any(r.name == "httpx" for r in caplog.records)  # request URLs were logged
    assert "Invalid OAuth access token [token]" in " ".join(texts)
    for text in texts:
        assert TOKEN not in text


# -- against the independent imitation ---------------------------------------------------------


def test_the_independent_imitation_takes_what_the_adapter_sends_and_the_lookups_agree() -> None:
    """Text, a file photo, an address photo and two pictures through the imitation written from
    the Graph documentation (tests/imitation), each looked up again by its exact text."""
    with Imitation(seed=5) as im, httpx.Client() as client:
        facebook = FacebookAdapter(
            channel(base_url=f"{im.url}/facebook"),
            client,
            {"page_token": credentials.FACEBOOK_PAGE_TOKEN},
        )
        since = datetime.now(UTC)
        texts = [f"{TEXT}\n\nBài {n}." for n in range(4)]
        media: list[tuple[Media, ...]] = [(), (COVER,), (WEB,), (COVER, SECOND)]
        receipts = [facebook.publish(_with(t, m)) for t, m in zip(texts, media, strict=True)]
        records = im.records()
        assert [r["text"] for r in records] == texts  # exactly the messages, nothing added
        assert [r["remote_id"] for r in records] == [r.remote_id for r in receipts]
        assert records[0]["images"] == []
        assert [(i["sha256"], i["alt"]) for i in records[1]["images"]] == [
            (hashlib.sha256(JPEG).hexdigest(), COVER.alt)
        ]
        assert [(i["url"], i["alt"]) for i in records[2]["images"]] == [(WEB.url, "")]
        assert [i["alt"] for i in records[3]["images"]] == [COVER.alt, SECOND.alt]
        assert receipts[3].extra["photo_ids"] == ",".join(
            i["photo_id"] for i in records[3]["images"]
        )
        for text, m, receipt in zip(texts, media, receipts, strict=True):
            found = facebook.lookup(_with(text, m), since)
            assert found is not None and found.remote_id == receipt.remote_id
            owned = replace(_with(text, m), exclude=frozenset({receipt.remote_id}))
            assert facebook.lookup(owned, since) is None


def _with(text: str, media: tuple[Media, ...]) -> Outgoing:
    return replace(outgoing(*media), fields={"message": text, "link": "", "image": ""})
