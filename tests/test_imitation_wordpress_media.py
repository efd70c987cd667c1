"""The imitation's WordPress media library (platform-apis.md §3.5), and the adapter's pictures
against it over real HTTP: uploaded once, found again after a lost or failed answer."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from publisher.channels.base import Ambiguous, Media, Outgoing, Temporary
from publisher.channels.wordpress import WordPressAdapter
from publisher.sandbox import credentials
from tests.fakes import make_channel
from tests.imitation import Imitation
from tests.imitation.wordpress import WordPress

AUTH = (credentials.WORDPRESS_USER, credentials.WORDPRESS_PASSWORD)
ALT = "Băng rôn Tháng hành động vì trẻ em năm 2024"
NOW = datetime(2024, 6, 12, 1, 30, tzinfo=UTC)


def jpeg(color: str = "#c0392b", size: tuple[int, int] = (320, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=80)
    return out.getvalue()


def cover(data: bytes, alt: str = ALT) -> Media:
    sha = hashlib.sha256(data).hexdigest()
    return Media("cover", alt, "image/jpeg", f"bang-ron-{sha[:12]}.jpg", sha, data, width=320)


@pytest.fixture
def imitation(tmp_path: Path) -> Iterator[Imitation]:
    with Imitation(record=tmp_path / "record.jsonl", seed=5) as im:
        yield im


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def site(imitation: Imitation) -> WordPress:
    platform = imitation.platforms["wordpress"]
    assert isinstance(platform, WordPress)
    return platform


def media_records(imitation: Imitation) -> list[dict[str, object]]:
    return [r for r in imitation.records() if r.get("kind") == "media" and r["event"] == "created"]


def test_a_raw_upload_is_stored_served_and_found_by_slug(
    imitation: Imitation, http: httpx.Client
) -> None:
    media = f"{imitation.url}/wordpress/wp-json/wp/v2/media"
    data = jpeg()
    made = http.post(
        media,
        params={"slug": "Bang-Ron-01"},
        content=data,
        headers={
            "Content-Type": "image/jpeg",
            "Content-Disposition": 'attachment; filename="bang-ron.jpg"',
        },
        auth=AUTH,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["slug"] == "bang-ron-01" and body["media_details"]["width"] == 320
    assert made.headers["Location"].endswith(f"/wp/v2/media/{body['id']}")
    served = http.get(body["source_url"])
    assert served.content == data and served.headers["Content-Type"] == "image/jpeg"
    found = http.get(
        media, params={"slug": "bang-ron-01,other", "context": "edit", "_fields": "id,slug"}
    )
    assert found.status_code == 401  # the edit context needs a login
    found = http.get(media, params={"slug": "bang-ron-01", "_fields": "id,slug"}, auth=AUTH)
    assert found.json() == [{"id": body["id"], "slug": "bang-ron-01"}]
    again = http.post(
        media,
        content=data,
        headers={"Content-Type": "image/jpeg", "Content-Disposition": "attachment; filename=x.jpg"},
        auth=AUTH,
    )
    assert again.json()["slug"] == "x"
    (record,) = [r for r in media_records(imitation) if r["remote_id"] == str(body["id"])]
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_multipart_upload_takes_its_fields_and_the_alt_text_can_be_changed(
    imitation: Imitation, http: httpx.Client
) -> None:
    media = f"{imitation.url}/wordpress/wp-json/wp/v2/media"
    made = http.post(
        media,
        files={"file": ("anh.png", b"\x89PNG\r\n\x1a\n" + bytes(40), "image/png")},
        data={"alt_text": "  Sơ đồ   đường dây nóng ", "caption": "Sơ đồ &amp; số"},
        auth=AUTH,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["slug"] == "anh" and body["alt_text"] == "Sơ đồ đường dây nóng"
    assert body["caption"]["raw"] == "Sơ đồ &amp; số"
    changed = http.post(f"{media}/{body['id']}", json={"alt_text": "Mới"}, auth=AUTH)
    assert changed.status_code == 200 and changed.json()["alt_text"] == "Mới"
    keep = http.delete(f"{media}/{body['id']}", auth=AUTH)
    assert (keep.status_code, keep.json()["code"]) == (501, "rest_trash_not_supported")
    gone = http.delete(f"{media}/{body['id']}", params={"force": "true"}, auth=AUTH)
    assert gone.json()["deleted"] is True
    assert http.get(body["source_url"]).status_code == 404


def test_uploads_wordpress_refuses(imitation: Imitation, http: httpx.Client) -> None:
    media = f"{imitation.url}/wordpress/wp-json/wp/v2/media"
    raw = {"Content-Type": "image/jpeg", "Content-Disposition": 'attachment; filename="a.jpg"'}

    def code(resp: httpx.Response) -> tuple[int, str]:
        return resp.status_code, resp.json()["code"]

    contributor = (credentials.WORDPRESS_CONTRIBUTOR, credentials.WORDPRESS_PASSWORD)
    assert code(http.post(media, content=jpeg(), headers=raw, auth=contributor)) == (
        403,
        "rest_cannot_create",
    )
    assert code(http.post(media, content=jpeg(), headers=raw)) == (401, "rest_cannot_create")
    svg = {**raw, "Content-Disposition": 'attachment; filename="a.svg"'}
    assert code(http.post(media, content=b"<svg/>", headers=svg, auth=AUTH)) == (
        500,
        "rest_upload_sideload_error",
    )
    assert code(http.post(media, content=b"", headers=raw, auth=AUTH)) == (
        400,
        "rest_upload_no_data",
    )
    bare = {"Content-Type": "image/jpeg"}
    assert code(http.post(media, content=jpeg(), headers=bare, auth=AUTH)) == (
        400,
        "rest_upload_no_content_disposition",
    )
    site(imitation).fileupload_maxk = 1
    too_big = http.post(media, content=jpeg(size=(900, 900)), headers=raw, auth=AUTH)
    assert code(too_big) == (400, "rest_upload_file_too_big")
    assert "less than 1 KB" in too_big.json()["message"]
    assert not media_records(imitation)


def test_commit_then_500_stores_the_upload(imitation: Imitation, http: httpx.Client) -> None:
    media = f"{imitation.url}/wordpress/wp-json/wp/v2/media"
    site(imitation).fail_next_uploads = 1
    raw = {"Content-Type": "image/jpeg", "Content-Disposition": 'attachment; filename="a.jpg"'}
    failed = http.post(media, content=jpeg(), headers=raw, auth=AUTH)
    assert failed.status_code == 500 and "critical error" in failed.text
    assert [m["slug"] for m in http.get(media, params={"slug": "a"}, auth=AUTH).json()] == ["a"]


def adapter(imitation: Imitation) -> WordPressAdapter:
    channel = make_channel(
        "portal_stp",
        "wordpress",
        "Cổng TTĐT",
        templates="portal",
        base_url=f"{imitation.url}/wordpress",
        username=credentials.WORDPRESS_USER,
    )
    client = httpx.Client(timeout=5.0)
    return WordPressAdapter(channel, client, {"password": credentials.WORDPRESS_PASSWORD})


def article(picture: Media, n: int) -> Outgoing:
    return Outgoing(
        post_id=n,
        idempotency_key=f"{n:08x}-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        channel="portal_stp",
        kind="article",
        fields={"title": f"Bài viết số {n}", "excerpt": "", "content": "<p>Nội dung.</p>"},
        due_at=NOW,
        media=(picture,),
    )


def test_two_posts_share_one_uploaded_cover(imitation: Imitation, http: httpx.Client) -> None:
    picture = cover(jpeg())
    first = adapter(imitation).publish(article(picture, 1))
    second = adapter(imitation).publish(article(picture, 2))  # another process: no memo
    (record,) = media_records(imitation)
    wp = site(imitation)
    attachment = wp.media[int(record["remote_id"])]  # type: ignore[call-overload]
    assert attachment.slug == picture.slug and attachment.alt_text == ALT
    assert attachment.caption == ALT
    for receipt in (first, second):
        assert wp.posts[int(receipt.remote_id)].featured_media == attachment.id
    listed = http.get(
        f"{imitation.url}/wordpress/wp-json/wp/v2/posts/{first.remote_id}", auth=AUTH
    ).json()
    assert listed["featured_media"] == attachment.id


def test_a_failed_or_lost_upload_is_found_by_the_next_attempt(imitation: Imitation) -> None:
    one, two = cover(jpeg("#16a085")), cover(jpeg("#2980b9"))
    site(imitation).fail_next_uploads = 1
    with pytest.raises(Temporary):
        adapter(imitation).publish(article(one, 1))
    adapter(imitation).publish(article(one, 1))
    imitation.set_faults("wordpress:ambiguous=1")  # every create: stored, then the answer fails
    with pytest.raises((Ambiguous, Temporary)):
        adapter(imitation).publish(article(two, 2))
    imitation.set_faults("")
    receipt = adapter(imitation).publish(article(two, 2))
    by_sha = [r["sha256"] for r in media_records(imitation)]
    assert sorted(by_sha) == sorted([one.sha256, two.sha256])  # each uploaded once
    wp = site(imitation)
    assert wp.posts[int(receipt.remote_id)].featured_media == next(
        m.id for m in wp.media.values() if m.slug == two.slug
    )
