"""Against a real WordPress (Debian's package, on loopback: tests/real_wordpress.py): an article
with a cover file is published with ``featured_media`` set, the file uploaded once even when two
posts use it, its alternative text ours and its address serving the bytes; an upload whose answer
was lost is found again instead of being sent twice; a site without a stats plugin gives no
figures (never a zero), whichever ``stats`` is set, and the sandbox imitates its answers.

Skipped when the packages or MariaDB are missing, unless ``CI`` is set: CI must prove it.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from publisher.channels import build
from publisher.channels.base import Media, Outgoing, Temporary
from publisher.channels.wordpress import WordPressAdapter
from publisher.metrics import NoFigures
from publisher.sandbox import credentials
from publisher.sandbox.server import Sandbox
from tests.fakes import make_channel
from tests.real_wordpress import Site, missing, real_wordpress

ALT = "Băng rôn Tháng hành động vì trẻ em năm 2024 & đường dây nóng 111"
NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test against a real WordPress, but {reason}")
        pytest.skip(reason)
    with real_wordpress(tmp_path) as running:
        yield running


def banner(color: str, seed: int) -> bytes:
    """A real 1200×630 JPEG (the size of a social-media cover), different for each ``seed``."""
    image = Image.new("RGB", (1200, 630), color)
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x = (i * 97 + seed * 31) % 1100
        draw.rectangle((x, 40 + i * 45, x + 90, 80 + i * 45), fill=(255, 255 - i * 15, seed % 256))
    draw.ellipse((450, 165, 750, 465), outline="white", width=12)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def picture(data: bytes, role: str = "cover", alt: str = ALT, stem: str = "bang-ron") -> Media:
    sha = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{sha[:12]}.jpg"
    return Media(role, alt, "image/jpeg", name, sha, data, width=1200, height=630)


def article(n: int, *media: Media) -> Outgoing:
    return Outgoing(
        post_id=n,
        idempotency_key=f"{n:08x}-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        channel="portal_stp",
        kind="article",
        fields={
            "title": f"Tháng hành động vì trẻ em: bài {n}",
            "excerpt": "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.",
            "content": "<p>Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.</p>",
        },
        due_at=NOW,
        media=media,
    )


class Recording(httpx.HTTPTransport):
    """The network, noting each request; ``lose`` uploads are sent, then their answer lost."""

    def __init__(self, lose: int = 0) -> None:
        super().__init__()
        self.lose = lose
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path))
        response = super().handle_request(request)
        if self.lose and request.method == "POST" and request.url.path.endswith("/wp/v2/media"):
            self.lose -= 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def adapter(site: Site, transport: httpx.BaseTransport, stats: str = "none") -> WordPressAdapter:
    channel = make_channel(
        "portal_stp",
        "wordpress",
        "Cổng TTĐT Sở Tư pháp (thử nghiệm)",
        templates="portal",
        base_url=site.url,
        username=site.editor,
        stats=stats,
    )
    client = httpx.Client(transport=transport, timeout=60.0, follow_redirects=False)
    built = build(channel, {"password": site.password}, client=client)
    assert isinstance(built, WordPressAdapter)
    return built


def attachments(api: httpx.Client) -> list[dict[str, object]]:
    rows = api.get("/media", params={"per_page": 100, "context": "edit"})
    assert rows.status_code == 200, rows.text
    found: list[dict[str, object]] = rows.json()
    return found


def test_two_articles_share_one_uploaded_cover(site: Site) -> None:
    cover = picture(banner("#c0392b", 1))
    image = picture(banner("#2c3e50", 2), role="image", alt="Sơ đồ “đường dây nóng”", stem="so-do")
    wire = Recording()
    wp = adapter(site, wire)
    first = wp.publish(article(1, cover, image))
    second = wp.publish(article(2, cover))
    later = Recording()  # another process: nothing remembered, the lookup finds the file
    third = adapter(site, later).publish(article(3, cover))
    assert ("POST", "/wp-json/wp/v2/media") not in later.sent
    assert not any(path.startswith("/wp-json/wp/v2/media/") for _, path in later.sent)
    uploads = [path for method, path in wire.sent if method == "POST" and "/media" in path]
    assert len(uploads) == 4  # the cover and the image: each uploaded, then described, once
    # featured_media was taken with the post: no post needed its cover set afterwards.
    assert not any(m == "POST" and p.startswith("/wp-json/wp/v2/posts/") for m, p in wire.sent)

    with site.api() as api:
        files = attachments(api)
        ours = [f for f in files if str(f["slug"]).startswith(cover.slug)]
        assert len(ours) == 1, files  # one attachment for the cover, whatever used it
        (att,) = ours
        assert att["slug"] == cover.slug and att["alt_text"] == ALT
        caption = att["caption"]
        assert isinstance(caption, dict) and caption["raw"] == ALT.replace("&", "&amp;")
        assert len(files) == 2  # the cover and the image: nothing else was uploaded
        for receipt in (first, second, third):
            post = api.get(f"/posts/{receipt.remote_id}", params={"context": "edit"}).json()
            assert post["featured_media"] == att["id"]
            assert post["status"] == "publish"
        body = api.get(f"/posts/{first.remote_id}", params={"context": "edit"}).json()
        (other,) = [f for f in files if f["id"] != att["id"]]
        assert body["content"]["raw"].endswith(
            f'<figure class="wp-block-image"><img src="{other["source_url"]}" '
            'alt="Sơ đồ “đường dây nóng”"/></figure>'
        )
    served = httpx.get(str(att["source_url"]), timeout=30.0)
    assert served.status_code == 200 and served.content == cover.data
    assert served.headers["Content-Type"] == "image/jpeg"
    assert wp.media.public_url(cover) == att["source_url"]  # loopback: http is allowed


def test_an_upload_whose_answer_was_lost_is_found_not_sent_again(site: Site) -> None:
    cover = picture(banner("#16a085", 3))
    wire = Recording(lose=1)
    wp = adapter(site, wire)
    with pytest.raises(Temporary, match="was lost"):  # no post was made: nothing to look up
        wp.publish(article(4, cover))
    assert wp.lookup(article(4, cover), NOW) is None  # the post was never made
    retry = Recording()
    receipt = adapter(site, retry).publish(article(4, cover))
    assert ("POST", "/wp-json/wp/v2/media") not in retry.sent
    with site.api() as api:
        files = attachments(api)
        assert [f["slug"] for f in files] == [cover.slug]
        post = api.get(f"/posts/{receipt.remote_id}", params={"context": "edit"}).json()
        assert post["featured_media"] == files[0]["id"]
        assert files[0]["alt_text"] == ALT  # set by the retry: the lost attempt never got to it


def test_a_site_without_a_stats_plugin_gives_no_figures_never_a_zero(site: Site) -> None:
    """The real WordPress has no stats plugin: each ``stats`` setting reads NoFigures saying
    why, for a published post as for one that does not exist; the sandbox without its plugins
    answers the same shapes."""
    receipt = adapter(site, Recording()).publish(article(5))
    for remote_id in (receipt.remote_id, "999999"):
        wire = Recording()
        with pytest.raises(NoFigures, match='stats = "none"'):
            adapter(site, wire, "none").metrics(remote_id, None)
        assert wire.sent == []  # nothing asked: the setting says the site keeps none
        # Post Views Counter not installed: WordPress answers 404 rest_no_route for its route
        with pytest.raises(NoFigures, match="has no Post Views Counter REST route"):
            adapter(site, wire, "post-views-counter").metrics(remote_id, None)
        assert wire.sent[-1] == (
            "GET",
            f"/wp-json/post-views-counter/get-post-views/{remote_id}",
        )
    # WP-PostViews not active: the post's answer has no views field
    wire = Recording()
    with pytest.raises(NoFigures, match="has no views field"):
        adapter(site, wire, "wp-postviews").metrics(receipt.remote_id, None)
    assert wire.sent == [("GET", f"/wp-json/wp/v2/posts/{receipt.remote_id}")]
    with site.api() as api:  # what the adapter read: the real answer, without views
        body = api.get(f"/posts/{receipt.remote_id}", params={"_fields": "id,views"}).json()
        assert body == {"id": int(receipt.remote_id)}
        gone = api.get("/posts/999999", params={"_fields": "id,views"})
        assert gone.status_code == 404 and gone.json()["code"] == "rest_post_invalid_id"
        real = {
            "route": api.get(f"{site.url}/wp-json/post-views-counter/get-post-views/1"),
            "field": api.get(f"/posts/{receipt.remote_id}", params={"_fields": "id,views"}),
        }
    # the sandbox without its plugins (POST /_sandbox/stats) answers as the real one does
    with Sandbox(smtp_port=None, imap_port=None) as sb:
        httpx.post(f"{sb.url}/_sandbox/stats", json={"wordpress": []}).raise_for_status()
        user, password = credentials.WORDPRESS_USER, credentials.WORDPRESS_PASSWORD
        imitation = Site(f"{sb.url}/wordpress", user, password, Path(os.devnull))
        mine = adapter(imitation, Recording()).publish(article(5))
        with imitation.api() as api:
            imitated = {
                "route": api.get(f"{imitation.url}/wp-json/post-views-counter/get-post-views/1"),
                "field": api.get(f"/posts/{mine.remote_id}", params={"_fields": "id,views"}),
            }
        assert imitated["field"].json() == {"id": int(mine.remote_id)}
        for name in ("none", "post-views-counter", "wp-postviews"):
            with pytest.raises(NoFigures):
                adapter(imitation, Recording(), name).metrics(mine.remote_id, None)
    for what, answer in real.items():
        assert imitated[what].status_code == answer.status_code, what
        assert set(imitated[what].json()) == set(answer.json()), what
    assert imitated["route"].json()["code"] == real["route"].json()["code"] == "rest_no_route"
