"""WordPress pictures: files uploaded once to the media library (looked up by slug first), the
cover as ``featured_media``, the other pictures as figures, WordPress's refusals mapped (no
network: httpx.MockTransport over a fake site with a media library)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
)
from publisher.channels.wordpress import WordPressAdapter
from publisher.channels.wordpress_media import WordPressMedia, figure, is_loopback, media_slug
from publisher.clock import FakeClock
from publisher.sandbox.credentials import WORDPRESS_PASSWORD as PASSWORD
from tests.test_channel_wordpress import BASE, FakeWordPress, channel, error

NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)
ALT = "Tháng hành động vì trẻ em: các em nhỏ vui chơi an toàn"


def picture(
    role: str = "cover", alt: str = ALT, data: bytes = b"\xff\xd8\xff\xe0 cover", stem: str = "bia"
) -> Media:
    sha = hashlib.sha256(data).hexdigest()
    return Media(
        role=role,
        alt=alt,
        mime="image/jpeg",
        name=f"{stem}-{sha[:12]}.jpg",
        sha256=sha,
        data=data,
        width=1200,
        height=630,
    )


def post(*media: Media, key: str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d") -> Outgoing:
    return Outgoing(
        post_id=7,
        idempotency_key=key,
        channel="portal_stp",
        kind="article",
        fields={
            "title": "Tháng hành động vì trẻ em năm 2024",
            "excerpt": "Toàn dân chăm sóc trẻ em.",
            "content": "<p>Toàn dân chăm sóc trẻ em.</p>",
        },
        due_at=NOW,
        media=media,
    )


@dataclass
class FakeSite(FakeWordPress):
    """FakeWordPress with a media library: raw uploads, slug lookups, alt text updates."""

    library: dict[int, dict[str, Any]] = field(default_factory=dict)
    lose_next_uploads: int = 0  # store the file, then the answer is lost (a read timeout)
    fail_next_uploads: int = 0  # store the file, then answer 500 (PHP died making sub-sizes)
    answer_upload: httpx.Response | None = None  # answer the upload with this (nothing stored)
    answer_update: httpx.Response | None = None
    drop_featured: bool = False  # the create ignores featured_media (the attachment was deleted)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        tail = path.removeprefix("/wp-json/wp/v2/posts/")
        if tail.isdigit() and request.method == "POST" and int(tail) in self.posts:
            self.requests.append(request)  # an update: only featured_media here
            self.posts[int(tail)].update(json.loads(request.content))
            return httpx.Response(200, json=self.posts[int(tail)])
        if not path.startswith("/wp-json/wp/v2/media"):
            response = super().handle(request)
            if path == "/wp-json/wp/v2/posts" and request.method == "POST":
                response = self._featured(request, response)
            return response
        self.requests.append(request)
        role, refusal = self.user(request)
        if refusal is not None:
            return refusal
        tail = path.removeprefix("/wp-json/wp/v2/media").strip("/")
        if not tail and request.method == "GET":
            slugs = set(request.url.params.get("slug", "").split(","))
            rows = [m for m in self.library.values() if m["slug"] in slugs]
            return httpx.Response(200, json=rows)
        if not tail and request.method == "POST":
            return self.upload(request, role)
        if tail.isdigit() and request.method == "POST":
            if self.answer_update is not None:
                return self.answer_update
            item = self.library.get(int(tail))
            if item is None:
                return error(404, "rest_post_invalid_id", "Invalid post ID.")
            body = json.loads(request.content)
            item["alt_text"] = body.get("alt_text", item["alt_text"])
            item["caption"] = {"raw": body.get("caption", item["caption"]["raw"])}
            return httpx.Response(200, json=item)
        if tail.isdigit() and request.method == "DELETE":
            self.library.pop(int(tail), None)
            return httpx.Response(200, json={"deleted": True})
        return error(404, "rest_no_route", "No route was found matching the URL.")

    def upload(self, request: httpx.Request, role: str | None) -> httpx.Response:
        if self.answer_upload is not None:
            return self.answer_upload
        if role is None:
            return error(401, "rest_cannot_create", "Sorry, you are not allowed to upload media.")
        disposition = request.headers.get("Content-Disposition", "")
        filename = disposition.partition('filename="')[2].rstrip('"')
        slug = request.url.params.get("slug") or filename.rpartition(".")[0]
        taken = {m["slug"] for m in self.library.values()} | self.reserved
        if slug in taken:
            n = 2
            while f"{slug}-{n}" in taken:
                n += 1
            slug = f"{slug}-{n}"
        self.next_id += 1
        item = {
            "id": self.next_id,
            "slug": slug,
            "source_url": f"{BASE}/wp-content/uploads/2024/06/{filename}",
            "alt_text": "",
            "caption": {"raw": ""},
            "mime_type": request.headers.get("Content-Type"),
            "bytes": len(request.content),
        }
        self.library[self.next_id] = item
        if self.lose_next_uploads:
            self.lose_next_uploads -= 1
            raise httpx.ReadTimeout("read timed out", request=request)
        if self.fail_next_uploads:
            self.fail_next_uploads -= 1
            return httpx.Response(500, text="<p>There has been a critical error.</p>")
        return httpx.Response(201, json=item)

    def _featured(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if response.status_code != 201:
            return response
        body = json.loads(request.content)
        created = response.json()
        wanted = int(body.get("featured_media", 0))
        given = 0 if self.drop_featured or wanted not in self.library else wanted
        self.posts[created["id"]]["featured_media"] = given
        return httpx.Response(201, json={**created, "featured_media": given})

    def uploads(self) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == "POST" and r.url.path == "/wp-json/wp/v2/media"
        ]

    def created_posts(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == "POST" and r.url.path == "/wp-json/wp/v2/posts"
        ]


def adapter(site: FakeSite, **settings: Any) -> WordPressAdapter:
    client = httpx.Client(transport=site.transport())
    return WordPressAdapter(
        channel(**settings), client, {"password": PASSWORD}, clock=FakeClock(NOW)
    )


def test_the_cover_is_looked_up_uploaded_described_and_made_featured_media() -> None:
    site = FakeSite()
    cover = picture()
    receipt = adapter(site).publish(post(cover))
    assert receipt.remote_id == "102"
    kinds = [(r.method, r.url.path.removeprefix("/wp-json/wp/v2/")) for r in site.requests]
    assert kinds == [
        ("GET", "posts"),  # the post's own lookup comes first: nothing is uploaded for a retry
        ("GET", "media"),
        ("POST", "media"),
        ("POST", "media/101"),
        ("POST", "posts"),
    ]
    lookup, upload, describe = site.requests[1:4]
    assert lookup.url.params["slug"] == f"{cover.slug},{cover.slug}-2"
    assert set(lookup.url.params["_fields"].split(",")) >= {"id", "source_url", "slug", "alt_text"}
    assert lookup.headers["Authorization"].startswith("Basic ")
    assert upload.headers["Content-Type"] == "image/jpeg"
    assert upload.headers["Content-Disposition"] == f'attachment; filename="{cover.name}"'
    assert upload.url.params["slug"] == cover.slug and upload.content == cover.data
    assert json.loads(describe.content) == {"alt_text": ALT, "caption": ALT}
    assert site.library[101]["alt_text"] == ALT and site.library[101]["caption"]["raw"] == ALT
    (made,) = site.created_posts()
    assert made["featured_media"] == 101
    assert made["content"] == "<p>Toàn dân chăm sóc trẻ em.</p>"  # the cover is not in the body
    assert site.posts[102]["featured_media"] == 101


def test_a_cover_two_posts_share_is_uploaded_once() -> None:
    site = FakeSite()
    cover = picture()
    wp = adapter(site)
    wp.publish(post(cover))
    wp.publish(post(cover, key="2b3c4d5e-6f70-4a7b-8c9d-0e1f2a3b4c5d"))
    # A new process (no memo): the lookup finds the attachment.
    adapter(site).publish(post(cover, key="3c4d5e6f-7081-4a7b-8c9d-0e1f2a3b4c5d"))
    assert len(site.uploads()) == 1 and list(site.library) == [101]
    assert [p["featured_media"] for p in site.created_posts()] == [101, 101, 101]
    updates = [r for r in site.requests if r.url.path == "/wp-json/wp/v2/media/101"]
    assert len(updates) == 1  # the alt text was set once: the later posts found it set


def test_a_lost_upload_answer_is_temporary_and_the_next_attempt_finds_the_file() -> None:
    """No post was made, so there is no post to look up (Temporary, not Ambiguous); the
    picture, which may be on the site, is looked up by its name before any new upload."""
    site = FakeSite(lose_next_uploads=1)
    cover = picture()
    wp = adapter(site)
    with pytest.raises(Temporary, match=f"upload of {cover.name} was lost") as caught:
        wp.publish(post(cover))
    assert isinstance(caught.value.__cause__, Ambiguous)  # as the media library said it
    assert isinstance(caught.value.__cause__.__cause__, httpx.ReadTimeout)
    assert wp.lookup(post(cover), NOW) is None  # no post was made
    receipt = wp.publish(post(cover))
    assert len(site.uploads()) == 1 and len(site.library) == 1
    assert site.created_posts()[0]["featured_media"] == 101
    assert receipt.remote_id == "102" and site.library[101]["alt_text"] == ALT


def test_an_upload_stored_then_answered_500_is_found_before_any_new_upload() -> None:
    site = FakeSite(fail_next_uploads=1)
    cover = picture()
    with pytest.raises(Temporary, match=f"500 to the upload of {cover.name}") as caught:
        adapter(site).publish(post(cover))
    assert caught.value.status == 500
    adapter(site).publish(post(cover))
    assert len(site.uploads()) == 1 and len(site.library) == 1
    assert site.created_posts()[0]["featured_media"] == 101


def test_images_follow_the_text_as_figures_with_escaped_alt_text() -> None:
    site = FakeSite()
    one = picture("image", 'Sơ đồ "đường dây nóng" 111 & <Tổng đài>', b"\x89PNG one", "so-do")
    two = Media(role="image", alt="Ảnh từ cổng", url="https://stp.example.gov.vn/a.jpg?x=1&y=2")
    adapter(site).publish(post(picture(), one, two))
    (made,) = site.created_posts()
    src = site.library[102]["source_url"]
    assert made["content"] == (
        "<p>Toàn dân chăm sóc trẻ em.</p>\n"
        f'<figure class="wp-block-image"><img src="{src}" alt="Sơ đồ &quot;đường dây nóng&quot; '
        '111 &amp; &lt;Tổng đài&gt;"/></figure>\n'
        '<figure class="wp-block-image"><img src="https://stp.example.gov.vn/a.jpg?x=1&amp;y=2" '
        'alt="Ảnh từ cổng"/></figure>'
    )
    assert made["featured_media"] == 101
    assert site.library[102]["caption"]["raw"] == (
        'Sơ đồ "đường dây nóng" 111 &amp; &lt;Tổng đài&gt;'
    )


def test_a_cover_given_as_an_address_is_a_figure_before_the_text() -> None:
    site = FakeSite()
    cover = Media(role="cover", alt="Băng rôn", url="https://cdn.example.gov.vn/bia.jpg")
    adapter(site).publish(post(cover))
    (made,) = site.created_posts()
    assert "featured_media" not in made and not site.uploads()
    assert made["content"].startswith(
        '<figure class="wp-block-image"><img src="https://cdn.example.gov.vn/bia.jpg" '
        'alt="Băng rôn"/></figure>\n<p>'
    )


def test_a_picture_address_that_is_not_http_is_refused() -> None:
    with pytest.raises(Permanent, match="not an http"):
        figure("javascript:alert(1)", "x")


def test_an_existing_post_sends_no_picture() -> None:
    site = FakeSite()
    adapter(site).publish(post(picture()))
    before = len(site.requests)
    adapter(site).publish(post(picture()))
    assert [r.url.path for r in site.requests[before:]] == ["/wp-json/wp/v2/posts"]


def test_a_changed_alt_text_is_set_on_the_attachment_found() -> None:
    site = FakeSite()
    adapter(site).publish(post(picture()))
    adapter(site).publish(post(picture(alt="Ảnh bìa mới"), key="2b3c4d5e-6f70-4a7b-8c9d-0e1f"))
    assert len(site.uploads()) == 1
    assert site.library[101]["alt_text"] == "Ảnh bìa mới"


def test_a_renamed_duplicate_upload_is_deleted_for_the_original() -> None:
    site = FakeSite()
    cover = picture()
    adapter(site).publish(post(cover))
    library = WordPressMedia.for_channel(
        channel(), httpx.Client(transport=site.transport()), {"password": PASSWORD}
    )
    real_find = library.find
    library.find = lambda media: None  # type: ignore[method-assign]  # a concurrent attempt's race
    found = library.attachment(cover)
    library.find = real_find  # type: ignore[method-assign]
    assert found.id == 101 and list(site.library) == [101]
    deletes = [r for r in site.requests if r.method == "DELETE"]
    assert [r.url.path for r in deletes] == ["/wp-json/wp/v2/media/103"]
    assert deletes[0].url.params["force"] == "true"


def test_an_attachment_renamed_past_a_page_of_that_slug_is_found_as_dash_2() -> None:
    cover = picture()
    site = FakeSite(reserved={cover.slug})
    adapter(site).publish(post(cover))
    adapter(site).publish(post(cover, key="2b3c4d5e-6f70-4a7b-8c9d-0e1f"))
    assert len(site.uploads()) == 1 and site.library[101]["slug"] == f"{cover.slug}-2"


def test_a_cover_wordpress_ignored_is_uploaded_again_and_set() -> None:
    site = FakeSite()
    cover = picture()
    wp = adapter(site)
    wp.publish(post(cover))
    site.library.clear()  # someone deleted it in the media library; the memo still has it
    site.drop_featured = True
    receipt = wp.publish(post(cover, key="2b3c4d5e-6f70-4a7b-8c9d-0e1f"))
    assert len(site.uploads()) == 2 and list(site.library) == [104]
    fix = site.requests[-1]
    assert fix.url.path == f"/wp-json/wp/v2/posts/{receipt.remote_id}"
    assert json.loads(fix.content) == {"featured_media": 104}
    assert site.posts[int(receipt.remote_id)]["featured_media"] == 104


@pytest.mark.parametrize(
    ("answer", "outcome", "words"),
    [
        (
            httpx.Response(413, text="<h1>413 Request Entity Too Large</h1>"),
            Permanent,
            r"bia-[0-9a-f]{12}\.jpg \(14 bytes\) as too large \(HTTP 413\)",
        ),
        (
            error(
                400,
                "rest_upload_file_too_big",
                "This file is too big. Files must be less than 1500 KB in size.",
            ),
            Permanent,
            r"refused bia-[0-9a-f]{12}\.jpg \(14 bytes\): .* less than 1500 KB",
        ),
        (
            error(500, "rest_upload_sideload_error", "Sorry, you are not allowed to upload this."),
            Permanent,
            r"could not take bia-.*not allowed to upload this",
        ),
        (
            error(400, "rest_upload_no_data", "No data supplied."),
            Permanent,
            "post_max_size",
        ),
        (
            error(400, "rest_upload_invalid_disposition", "Invalid Content-Disposition supplied."),
            Permanent,
            "rest_upload_invalid_disposition",
        ),
        (httpx.Response(502, text="<h1>Bad Gateway</h1>"), Temporary, "502 to the upload"),
        (
            error(403, "rest_cannot_create", "Sorry, you are not allowed to upload media."),
            AuthError,
            "may not upload files: needs upload_files",
        ),
        (error(401, "rest_cannot_create", "Sorry."), AuthError, "strip the Authorization"),
        (httpx.Response(429, headers={"Retry-After": "5"}), ChannelError, "rate-limiting"),
    ],
)
def test_refused_uploads_are_mapped(
    answer: httpx.Response, outcome: type[ChannelError], words: str
) -> None:
    site = FakeSite(answer_upload=answer)
    with pytest.raises(outcome, match=words) as caught:
        adapter(site).publish(post(picture(data=b"\xff\xd8\xff 14 bytes!!")))
    assert caught.value.status == answer.status_code
    assert not site.created_posts()


def test_a_lookup_failure_uploads_nothing() -> None:
    site = FakeSite()
    real = site.handle

    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/wp-json/wp/v2/media" and request.method == "GET":
            return httpx.Response(503, headers={"Retry-After": "30"})
        return real(request)

    site.handle = broken  # type: ignore[method-assign]
    with pytest.raises(Temporary) as caught:
        adapter(site).publish(post(picture()))
    assert caught.value.retry_after == 30.0 and not site.uploads()


def test_an_alt_text_the_user_may_not_change_is_permanent_and_named() -> None:
    site = FakeSite(answer_update=error(403, "rest_cannot_edit", "Sorry, you cannot edit this."))
    with pytest.raises(Permanent, match="may not change attachment 101 .* by hand"):
        adapter(site).publish(post(picture()))


def test_public_url_is_the_uploaded_files_address_https_only_off_loopback() -> None:
    site = FakeSite()
    library = WordPressMedia.for_channel(
        channel(), httpx.Client(transport=site.transport()), {"password": PASSWORD}
    )
    cover = picture()
    assert library.public_url(cover) == f"{BASE}/wp-content/uploads/2024/06/{cover.name}"
    assert library.public_url(cover) == library.public_url(cover)
    assert len(site.uploads()) == 1
    given = Media(role="cover", alt="x", url="https://cdn.example.gov.vn/b.jpg")
    assert library.public_url(given) == given.url

    plain = FakeSite()
    http_site = WordPressMedia.for_channel(
        channel(base_url="http://stp.example.gov.vn"),
        httpx.Client(transport=plain.transport()),
        {"password": PASSWORD},
    )
    plain.library[5] = {
        "id": 5,
        "slug": cover.slug,
        "source_url": f"http://stp.example.gov.vn/wp-content/uploads/{cover.name}",
        "alt_text": ALT,
        "caption": {"raw": ALT},
    }
    with pytest.raises(Permanent, match="not https"):
        http_site.public_url(cover)
    local = WordPressMedia.for_channel(
        channel(base_url="http://127.0.0.1:8765"),
        httpx.Client(transport=plain.transport()),
        {"password": PASSWORD},
    )
    assert local.public_url(cover).startswith("http://stp.example.gov.vn/")


def test_loopback_hosts() -> None:
    assert is_loopback("http://127.0.0.1:8000/x") and is_loopback("http://localhost/")
    assert is_loopback("http://[::1]:80/") and is_loopback("http://127.8.9.1/")
    assert not is_loopback("http://stp.example.gov.vn/") and not is_loopback("http://10.0.0.1/")


def test_the_slug_is_what_wordpress_makes_of_the_file_name() -> None:
    cover = picture()
    assert media_slug(cover.name) == cover.slug == f"bia-{cover.sha256[:12]}"
    assert media_slug("Anh_Bia.Moi-3F2A9C1D0B7E.jpg") == "anh_bia-moi-3f2a9c1d0b7e"
    assert media_slug("  a -- b .png") == "a-b"


def test_check_says_when_the_user_cannot_upload() -> None:
    site = FakeSite()
    handle = site.handle

    def me(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/users/me"):
            caps = {"edit_posts": True, "publish_posts": True}  # core lists only what they have
            return httpx.Response(200, json={"id": 1, "name": "Văn thư", "capabilities": caps})
        return handle(request)

    site.handle = me  # type: ignore[method-assign]
    result = adapter(site).check()
    assert result.ok and "cannot upload pictures (upload_files)" in result.detail


def test_the_library_s_check_lists_one_row_and_says_what_is_wrong() -> None:
    site = FakeSite()
    assert adapter(site).media.check().ok

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    down = WordPressAdapter(channel(), client, {"password": PASSWORD}, clock=FakeClock(NOW))
    result = down.media.check()
    assert not result.ok and not result.reachable and "ConnectError" in result.detail
