"""WordPressAdapter against a stateful fake of the WordPress REST API (no network)."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    Outgoing,
    Permanent,
    Temporary,
    Throttled,
)
from publisher.channels.wordpress import WordPressAdapter, post_slug
from publisher.clock import FakeClock
from publisher.config import Channel
from publisher.sandbox.credentials import WORDPRESS_PASSWORD as PASSWORD
from tests.fakes import make_channel

NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)
BASE = "https://stp.example.gov.vn"
KEY = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SLUG = "thang-hanh-dong-vi-tre-em-nam-2024-1a2b3c4d"


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"code": code, "message": message, "data": {"status": status}}
    )


@dataclass
class FakeWordPress:
    """Users by role, posts with unique slugs (``-2``…), and scenario knobs."""

    users: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "publisher": (re.sub(r"[^A-Za-z0-9]", "", PASSWORD), "editor"),
            "contributor": (re.sub(r"[^A-Za-z0-9]", "", PASSWORD), "contributor"),
        }
    )
    posts: dict[int, dict[str, Any]] = field(default_factory=dict)
    reserved: set[str] = field(default_factory=set)  # slugs held by pages/media: never listed
    requests: list[httpx.Request] = field(default_factory=list)
    fail_after_commit: int = 0  # the next N creates store the post, then answer 500
    hide_next_lookups: int = 0  # the next N lookups see nothing (a concurrent attempt's race)
    strip_auth: bool = False  # the server drops Authorization (Apache/FastCGI)
    answer: httpx.Response | None = None  # answer every request with this
    answer_post: httpx.Response | None = None  # answer the create with this (nothing stored)
    answer_get: httpx.Response | None = None  # answer the slug lookup with this
    answer_delete: httpx.Response | None = None
    post_error: Exception | None = None  # raised when the create is sent
    next_id: int = 100

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def user(self, request: httpx.Request) -> tuple[str | None, httpx.Response | None]:
        auth = request.headers.get("Authorization", "")
        if self.strip_auth or not auth.startswith("Basic "):
            return None, None
        name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if name not in self.users:
            return None, error(401, "invalid_username", "Unknown username.")
        if re.sub(r"[^A-Za-z0-9]", "", password) != self.users[name][0]:
            return None, error(
                401,
                "incorrect_password",
                "The provided password is an invalid application password.",
            )
        return self.users[name][1], None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answer is not None:
            return self.answer
        role, refusal = self.user(request)
        if refusal is not None:
            return refusal
        path = request.url.path
        if not path.startswith("/wp-json/wp/v2/"):
            return error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        route = path.removeprefix("/wp-json/wp/v2/")
        if route == "users/me":
            if role is None:
                return error(401, "rest_not_logged_in", "You are not currently logged in.")
            caps = {"edit_posts": True, "upload_files": True}  # as core: only what they have
            caps |= {"publish_posts": True} if role == "editor" else {}
            return httpx.Response(200, json={"id": 1, "name": "Văn thư Sở", "capabilities": caps})
        if route == "posts" and request.method == "GET":
            return self.lookup(request, role)
        if route == "posts" and request.method == "POST":
            return self.create(request, role)
        if route.startswith("posts/") and request.method == "DELETE":
            if self.answer_delete is not None:
                return self.answer_delete
            gone = self.posts.pop(int(route.split("/")[1]), None)
            if gone is None:
                return error(404, "rest_post_invalid_id", "Invalid post ID.")
            return httpx.Response(200, json={"deleted": True, "previous": gone})
        return error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def lookup(self, request: httpx.Request, role: str | None) -> httpx.Response:
        if self.answer_get is not None:
            return self.answer_get
        q = request.url.params
        if q.get("status") != "publish" and role is None:
            return error(401, "rest_forbidden_status", "Status is forbidden.")
        if self.hide_next_lookups:
            self.hide_next_lookups -= 1
            return httpx.Response(200, json=[], headers={"X-WP-Total": "0"})
        slugs = set(q.get("slug", "").split(","))
        rows = [
            {k: p[k] for k in q.get("_fields", "").split(",")}
            for p in self.posts.values()
            if p["slug"] in slugs
        ]
        return httpx.Response(200, json=rows, headers={"X-WP-Total": str(len(rows))})

    def create(self, request: httpx.Request, role: str | None) -> httpx.Response:
        if self.post_error is not None:
            raise self.post_error
        if self.answer_post is not None:
            return self.answer_post
        if role is None:
            return error(
                401,
                "rest_cannot_create",
                "Sorry, you are not allowed to create posts as this user.",
            )
        body = json.loads(request.content)
        if body.get("status") == "publish" and role != "editor":
            return error(
                403,
                "rest_cannot_publish",
                "Sorry, you are not allowed to publish posts in this post type.",
            )
        if any(not isinstance(c, int) or c > 50 for c in body.get("categories", [])):
            return error(400, "rest_invalid_param", "Invalid parameter(s): categories")
        slug, n = body["slug"], 1
        taken = {p["slug"] for p in self.posts.values()} | self.reserved
        while (slug if n == 1 else f"{body['slug']}-{n}") in taken:
            n += 1
        slug = slug if n == 1 else f"{slug}-{n}"
        self.next_id += 1
        post = {
            "id": self.next_id,
            "slug": slug,
            "status": "publish",
            "link": f"{BASE}/{slug}/",
            "date_gmt": "2024-06-12T01:30:00",
            "title": {"raw": body["title"]},
            "content": {"raw": body["content"]},
            "categories": body.get("categories", []),
        }
        self.posts[self.next_id] = post
        if self.fail_after_commit:
            self.fail_after_commit -= 1
            return error(
                500, "internal_server_error", "There has been a critical error on this website."
            )
        return httpx.Response(
            201, json=post, headers={"Location": f"{BASE}/wp-json/wp/v2/posts/{post['id']}"}
        )


def channel(**settings: Any) -> Channel:
    given = {"base_url": BASE + "/", "username": "publisher", **settings}
    name = "Cổng TTĐT Sở Tư pháp"
    return make_channel("portal_stp", "wordpress", name, templates="portal", daily_cap=2, **given)


def outgoing(title: str = "Tháng hành động vì trẻ em năm 2024", key: str = KEY) -> Outgoing:
    return Outgoing(
        post_id=7,
        idempotency_key=key,
        channel="portal_stp",
        kind="article",
        fields={
            "title": title,
            "excerpt": "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.",
            "content": "<p><strong>Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.</strong></p>",
        },
        due_at=NOW,
    )


def adapter(fake: FakeWordPress, password: str = PASSWORD, **settings: Any) -> WordPressAdapter:
    client = httpx.Client(transport=fake.transport())
    return WordPressAdapter(
        channel(**settings), client, {"password": password}, clock=FakeClock(NOW)
    )


def creates(fake: FakeWordPress) -> list[httpx.Request]:
    return [r for r in fake.requests if r.method == "POST"]


def test_slug_is_ascii_title_words_and_the_key() -> None:
    assert post_slug(outgoing()) == SLUG
    title = "Luật Trẻ em &amp; <em>Đường dây nóng</em> 111 “miễn phí”"
    assert post_slug(outgoing(title)) == "luat-tre-em-duong-day-nong-111-mien-phi-1a2b3c4d"
    assert post_slug(outgoing("")) == "bai-viet-1a2b3c4d"
    long = post_slug(outgoing("Một " * 40))
    assert long.isascii() and len(long) <= 60 + 9 and long.endswith("-1a2b3c4d")


def test_publish_creates_the_post_with_its_slug_and_basic_auth() -> None:
    fake = FakeWordPress()
    receipt = adapter(fake, category_ids=(3, 7)).publish(outgoing())
    assert receipt.remote_id == "101"
    assert receipt.url == f"{BASE}/{SLUG}/"
    assert receipt.extra["slug"] == SLUG
    lookup, create = fake.requests
    assert lookup.method == "GET" and lookup.url.params["slug"] == SLUG
    assert lookup.url.params["status"] == "any" and lookup.url.params["context"] == "edit"
    assert str(create.url) == f"{BASE}/wp-json/wp/v2/posts"
    body = json.loads(create.content)
    assert body == {
        "title": "Tháng hành động vì trẻ em năm 2024",
        "content": "<p><strong>Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.</strong></p>",
        "excerpt": "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.",
        "status": "publish",
        "slug": SLUG,
        "categories": [3, 7],
    }
    expected = "Basic " + base64.b64encode(f"publisher:{PASSWORD}".encode()).decode()
    assert create.headers["Authorization"] == expected


def test_publish_sends_no_categories_when_none_are_configured() -> None:
    fake = FakeWordPress()
    adapter(fake).publish(outgoing())
    assert "categories" not in json.loads(creates(fake)[0].content)


def test_a_retry_after_create_then_500_finds_the_post_and_does_not_create_twice() -> None:
    fake = FakeWordPress(fail_after_commit=1)
    wp = adapter(fake)
    with pytest.raises(Ambiguous) as caught:
        wp.publish(outgoing())
    assert caught.value.status == 500
    found = wp.lookup(outgoing(), NOW - timedelta(minutes=5))
    assert found is not None and found.remote_id == "101"
    again = wp.publish(outgoing())
    assert again.remote_id == "101" and again.url == f"{BASE}/{SLUG}/"
    assert len(creates(fake)) == 1 and len(fake.posts) == 1


def test_lookup_finds_nothing_for_a_post_never_created() -> None:
    fake = FakeWordPress()
    fake.posts[5] = {"id": 5, "slug": SLUG + "-2", "status": "publish", "link": "x", "date_gmt": ""}
    assert adapter(fake).lookup(outgoing(), NOW) is None


def test_a_renamed_duplicate_is_deleted_and_the_original_returned() -> None:
    fake = FakeWordPress()
    wp = adapter(fake)
    first = wp.publish(outgoing())
    fake.hide_next_lookups = 1  # a concurrent attempt created it between our lookup and POST
    receipt = wp.publish(outgoing())
    assert receipt.remote_id == first.remote_id and receipt.url == first.url
    assert receipt.extra["deleted"] == "102"
    assert list(fake.posts) == [101]
    delete = fake.requests[-1]
    assert delete.method == "DELETE" and delete.url.path == "/wp-json/wp/v2/posts/102"
    assert delete.url.params["force"] == "true"


def test_a_duplicate_that_cannot_be_deleted_is_ambiguous_and_named() -> None:
    fake = FakeWordPress()
    wp = adapter(fake)
    wp.publish(outgoing())
    fake.hide_next_lookups = 1
    fake.answer_delete = error(
        403, "rest_cannot_delete", "Sorry, you are not allowed to delete this post."
    )
    with pytest.raises(
        Ambiguous, match=r"duplicate post 102 .* could not be deleted .* original is post 101"
    ):
        wp.publish(outgoing())
    assert len(fake.posts) == 2


def test_a_slug_held_by_a_page_keeps_our_renamed_post() -> None:
    fake = FakeWordPress(reserved={SLUG})
    receipt = adapter(fake).publish(outgoing())
    assert receipt.remote_id == "101" and receipt.extra["slug"] == SLUG + "-2"
    assert list(fake.posts) == [101]  # the only copy is not deleted


def test_the_original_lookup_failing_after_a_rename_is_ambiguous() -> None:
    fake = FakeWordPress()
    wp = adapter(fake)
    wp.publish(outgoing())
    fake.hide_next_lookups = 1
    calls = {"n": 0}
    handle = fake.handle

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            calls["n"] += 1
            if calls["n"] == 2:
                return error(503, "", "")
        return handle(request)

    fake.handle = flaky  # type: ignore[method-assign]
    with pytest.raises(Ambiguous, match=r"renamed slug .* if a post .* exists, delete 102"):
        adapter(fake).publish(outgoing())
    assert len(fake.posts) == 2


def test_a_refused_application_password_is_an_auth_error() -> None:
    fake = FakeWordPress()
    with pytest.raises(AuthError, match="application password was refused") as caught:
        adapter(fake, password="wxyz " * 6).publish(outgoing())
    assert caught.value.status == 401 and caught.value.code == "incorrect_password"
    assert not creates(fake)


def test_a_stripped_authorization_header_is_explained() -> None:
    fake = FakeWordPress(strip_auth=True)
    with pytest.raises(AuthError, match="may strip the Authorization header"):
        adapter(fake).publish(outgoing())
    fake.answer_get = httpx.Response(200, json=[])
    with pytest.raises(AuthError, match="may strip the Authorization header") as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.code == "rest_cannot_create"


def test_a_contributor_cannot_publish() -> None:
    fake = FakeWordPress()
    with pytest.raises(AuthError, match="needs publish_posts") as caught:
        WordPressAdapter(
            channel(username="contributor"),
            httpx.Client(transport=fake.transport()),
            {"password": PASSWORD},
            clock=FakeClock(NOW),
        ).publish(outgoing())
    assert caught.value.status == 403 and caught.value.code == "rest_cannot_publish"
    assert not fake.posts


def test_a_firewall_403_stops_the_channel() -> None:
    fake = FakeWordPress(answer_post=httpx.Response(403, text="<html>Access denied</html>"))
    with pytest.raises(AuthError, match="firewall"):
        adapter(fake).publish(outgoing())


def test_an_invalid_parameter_is_permanent_with_wordpress_words() -> None:
    fake = FakeWordPress()
    with pytest.raises(Permanent, match=r"rest_invalid_param: Invalid parameter\(s\): categories"):
        adapter(fake, category_ids=(999,)).publish(outgoing())


def test_other_4xx_and_redirects_are_permanent() -> None:
    fake = FakeWordPress(
        answer_post=error(400, "rest_missing_callback_param", "Missing parameter(s): title")
    )
    with pytest.raises(Permanent, match="rest_missing_callback_param"):
        adapter(fake).publish(outgoing())
    fake = FakeWordPress(answer=httpx.Response(301, headers={"Location": "https://stp.example/"}))
    with pytest.raises(Permanent, match="redirected to https://stp.example/"):
        adapter(fake).publish(outgoing())


def test_no_rest_api_is_permanent() -> None:
    fake = FakeWordPress(answer=error(404, "rest_no_route", "No route was found."))
    with pytest.raises(Permanent, match=f"no WordPress REST API at {BASE}/wp-json/"):
        adapter(fake).publish(outgoing())


def test_429_throttles_the_channel_until_retry_after() -> None:
    fake = FakeWordPress(answer_post=httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(Throttled) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.until == datetime(2024, 6, 12, 1, 32, tzinfo=UTC)
    fake = FakeWordPress(answer_get=httpx.Response(429))
    with pytest.raises(Throttled) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.until == datetime(2024, 6, 12, 1, 31, tzinfo=UTC)


def test_5xx_before_posting_is_temporary_and_after_posting_ambiguous() -> None:
    fake = FakeWordPress(answer_get=httpx.Response(503, headers={"Retry-After": "30"}))
    with pytest.raises(Temporary) as caught:
        adapter(fake).publish(outgoing())
    assert caught.value.retry_after == 30.0 and not creates(fake)
    fake = FakeWordPress(answer_post=error(502, "", ""))
    with pytest.raises(Ambiguous, match="answered 502"):
        adapter(fake).publish(outgoing())


def test_a_lookup_answer_that_is_not_a_list_is_temporary() -> None:
    fake = FakeWordPress(answer_get=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(Temporary, match="did not answer a list"):
        adapter(fake).publish(outgoing())
    assert not creates(fake)


def test_a_create_without_an_id_is_ambiguous() -> None:
    fake = FakeWordPress(answer_post=httpx.Response(201, text="<html>ok</html>"))
    with pytest.raises(Ambiguous, match="without a post id"):
        adapter(fake).publish(outgoing())


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ReadTimeout("read timed out"), Ambiguous),
        (httpx.ConnectError("connection refused"), Temporary),
    ],
)
def test_network_failures_on_the_create(exc: Exception, outcome: type[ChannelError]) -> None:
    fake = FakeWordPress(post_error=exc)
    with pytest.raises(outcome) as caught:
        adapter(fake).publish(outgoing())
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


def test_a_timeout_on_the_lookup_is_temporary() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    wp = WordPressAdapter(
        channel(), httpx.Client(transport=httpx.MockTransport(slow)), {"password": PASSWORD}
    )
    with pytest.raises(Temporary):
        wp.publish(outgoing())
    with pytest.raises(Temporary):
        wp.lookup(outgoing(), NOW)


def test_check_names_the_user_and_their_right_to_publish() -> None:
    fake = FakeWordPress()
    result = adapter(fake).check()
    assert result.ok and "Văn thư Sở" in result.detail and "can publish" in result.detail
    request = fake.requests[0]
    assert request.url.path == "/wp-json/wp/v2/users/me" and request.url.params["context"] == "edit"
    contributor = WordPressAdapter(
        channel(username="contributor"),
        httpx.Client(transport=fake.transport()),
        {"password": PASSWORD},
    ).check()
    assert not contributor.ok and "publish_posts" in contributor.detail
    assert not fake.posts


def test_check_explains_a_refused_login() -> None:
    bad = adapter(FakeWordPress(), password=PASSWORD[::-1]).check()
    assert not bad.ok and "application password was refused" in bad.detail
    assert "Application Passwords" in bad.detail
    stripped = adapter(FakeWordPress(strip_auth=True)).check()
    assert not stripped.ok and "strip the Authorization header" in stripped.detail
    unreachable = adapter(FakeWordPress(answer=error(404, "rest_no_route", "No route"))).check()
    assert not unreachable.ok and "no WordPress REST API" in unreachable.detail


def scenarios() -> list[Callable[[], object]]:
    def run(fake: FakeWordPress, password: str = PASSWORD, **settings: Any) -> Callable[[], object]:
        def go() -> object:
            wp = adapter(fake, password=password, **settings)
            wp.check()
            return wp.publish(outgoing())

        return go

    def duplicate() -> object:
        fake = FakeWordPress()
        adapter(fake).publish(outgoing())
        fake.hide_next_lookups = 1
        fake.answer_delete = httpx.Response(500)
        return adapter(fake).publish(outgoing())

    return [
        run(FakeWordPress()),
        run(FakeWordPress(fail_after_commit=1)),
        run(FakeWordPress(), password=PASSWORD.replace("a", "z")),
        run(FakeWordPress(strip_auth=True)),
        run(FakeWordPress(), category_ids=(999,)),
        run(FakeWordPress(answer_post=httpx.Response(429))),
        run(FakeWordPress(post_error=httpx.ReadTimeout("timed out"))),
        run(FakeWordPress(reserved={SLUG})),
        duplicate,
    ]


def test_no_password_in_messages_receipts_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for scenario in scenarios():
        try:
            seen.append(repr(scenario()))
        except ChannelError as exc:
            seen.extend([str(exc), exc.reason, repr(exc.args)])
    assert len(seen) > len(scenarios())  # every scenario left something to search
    seen.extend(r.getMessage() for r in caplog.records)
    assert any("renamed" in r.getMessage() for r in caplog.records)
    secrets = [
        PASSWORD,
        PASSWORD.replace(" ", ""),
        base64.b64encode(f"publisher:{PASSWORD}".encode()).decode(),
    ]
    for text in seen:
        for secret in secrets:
            assert secret not in text
        assert "EFGH" not in text
