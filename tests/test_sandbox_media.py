"""The sandbox's pictures over real HTTP: the shared store (decoded, by sha256, served with GET and
HEAD), WordPress's /wp/v2/media and featured images, Facebook photos and attached_media, Zalo
covers and image blocks, webhook pictures in base64, the follower page and the upload faults.
Every refusal is the platform's own answer, and a refused request stores nothing."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from publisher.sandbox import credentials as cred
from publisher.sandbox.faults import FaultPlan, FaultSpecError
from publisher.sandbox.media import LIMITS, Refusal, inspect
from publisher.sandbox.page import pictures
from publisher.sandbox.server import Sandbox
from tests.test_sandbox import PAGE, WP_AUTH, Box, article, hook_body

MEDIA = "/wordpress/wp-json/wp/v2/media"
POSTS = "/wordpress/wp-json/wp/v2/posts"
FB = {"access_token": cred.FACEBOOK_PAGE_TOKEN}
ALT = "Trẻ em vui chơi trong ngày hội – Tháng hành động"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    b.close()


def picture(w: int = 400, h: int = 300, kind: str = "JPEG", seed: int = 1) -> bytes:
    """A small picture of one colour (its seed chooses which), as ``kind`` (JPEG or PNG)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test pictures
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    out = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(out, kind)
    return out.getvalue()


def noise(over: int, kind: str = "PNG") -> bytes:
    """A picture of random pixels (it hardly compresses) of a little more than ``over`` bytes."""
    per_pixel = 3.0 if kind == "PNG" else 1.0  # bytes, about
    side = int((over / per_pixel) ** 0.5)
    while True:
        raw = random.Random(side).randbytes(side * side * 3)  # noqa: S311 - test data
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), raw).save(out, kind, quality=95)
        if len(out.getvalue()) > over:
            return out.getvalue()
        side += max(8, side // 20)


def upload(box: Box, data: bytes, name: str = "bia.jpg", **params: Any) -> httpx.Response:
    """A raw-body upload, as the WordPress adapter sends one."""
    headers = {
        "Content-Type": "image/jpeg" if name.endswith(".jpg") else "image/png",
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    return box.http.post(MEDIA, content=data, headers=headers, params=params, auth=WP_AUTH)


def photo(box: Box, data: bytes, **fields: Any) -> httpx.Response:
    """A multipart ``/photos`` upload with its file in ``source``."""
    files = {"source": ("anh.jpg", data, "image/jpeg")}
    return box.http.post(f"/facebook/v21.0/{PAGE}/photos", data=fields | FB, files=files)


def stored(box: Box) -> list[dict[str, Any]]:
    return list(box.http.get("/_sandbox/media").json())


# -- the store: decoded pictures, served by sha256 --------------------------------------------


def test_inspect_decodes_the_whole_picture_and_refuses_anything_else() -> None:
    jpg, png = picture(), picture(kind="PNG")
    assert inspect(jpg).mime == "image/jpeg" and inspect(png).mime == "image/png"
    assert (inspect(jpg).width, inspect(jpg).height) == (400, 300)
    assert inspect(jpg).sha256 == hashlib.sha256(jpg).hexdigest()
    gif = io.BytesIO()
    Image.new("RGB", (300, 300)).save(gif, "GIF")
    for bad in (b"<svg xmlns='http://www.w3.org/2000/svg'/>", gif.getvalue(), jpg[: len(jpg) // 2]):
        with pytest.raises(Refusal) as refused:
            inspect(bad)
        assert refused.value.reason == "format"
    with pytest.raises(Refusal, match="empty"):
        inspect(b"")
    with pytest.raises(Refusal) as too_big:
        inspect(jpg, len(jpg) - 1)
    assert too_big.value.reason == "too_big"


def test_the_same_bytes_are_decoded_once_and_answered_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cover uploaded again (every channel, every article) is not decoded to the last pixel
    again: the same bytes get the same answer; other bytes (a truncated copy) are decoded and
    refused; the size limit holds for bytes decoded before."""
    from publisher.sandbox import media

    data = picture(seed=71)
    opened: list[int] = []
    real_open = Image.open

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(media.Image, "open", counted)
    first, again = inspect(data), inspect(data)
    assert again == first and (again.mime, again.width, again.height) == ("image/jpeg", 400, 300)
    assert len(opened) == 1
    with pytest.raises(Refusal) as refused:
        inspect(data[: len(data) // 2])
    assert refused.value.reason == "format" and len(opened) == 2
    with pytest.raises(Refusal) as too_big:
        inspect(data, len(data) - 1)
    assert too_big.value.reason == "too_big"


def test_an_uploaded_picture_is_served_with_get_and_head(box: Box) -> None:
    data = picture()
    media = upload(box, data).json()
    got = httpx.get(media["source_url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "image/jpeg"
    assert got.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    head = httpx.head(media["source_url"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data))
    [held] = stored(box)
    assert held["sha256"] == hashlib.sha256(data).hexdigest() and held["size"] == len(data)
    own = box.http.get(f"/media/{held['sha256']}.jpg")
    assert own.content == data and box.http.head(f"/media/{held['sha256']}.jpg").status_code == 200
    assert box.http.get(f"/media/{'0' * 64}.jpg").status_code == 404
    assert box.http.get("/wordpress/wp-content/uploads/2024/06/nothing.jpg").status_code == 404
    box.http.post("/_sandbox/reset")
    assert stored(box) == [] and httpx.get(media["source_url"]).status_code == 404


# -- WordPress: /wp/v2/media ------------------------------------------------------------------


def test_wordpress_raw_upload_answers_201_with_the_attachment(box: Box) -> None:
    data = picture()
    r = upload(box, data, "bia-3f2a9c1d0b7e.jpg", alt_text=ALT, caption="Ảnh bìa")
    assert r.status_code == 201, r.text
    media = r.json()
    assert r.headers["Location"].endswith(f"/wp/v2/media/{media['id']}")
    assert media["slug"] == "bia-3f2a9c1d0b7e" and media["title"]["raw"] == "bia-3f2a9c1d0b7e"
    assert media["mime_type"] == "image/jpeg" and media["media_type"] == "image"
    assert (
        media["source_url"]
        == f"{box.sb.url}/wordpress/wp-content/uploads/2024/06/bia-3f2a9c1d0b7e.jpg"
    )
    details = media["media_details"]
    assert (details["width"], details["height"], details["filesize"]) == (400, 300, len(data))
    assert media["alt_text"] == ALT
    assert media["caption"] == {"raw": "Ảnh bìa", "rendered": "<p>Ảnh bìa</p>\n"}
    assert media["status"] == "inherit" and media["type"] == "attachment"
    found = box.http.get(MEDIA, params={"slug": "bia-3f2a9c1d0b7e", "_fields": "id,source_url"})
    assert found.json() == [{"id": media["id"], "source_url": media["source_url"]}]
    assert found.headers["X-WP-Total"] == "1"
    assert box.http.get(MEDIA, params={"slug": "khac"}).json() == []
    assert [m["id"] for m in box.http.get(MEDIA, params={"search": "3f2a9c"}).json()] == [
        media["id"]
    ]
    [record] = box.sb.records()
    assert (
        record["kind"] == "media"
        and record["media"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    )


def test_wordpress_upload_slugs_and_the_slug_trap(box: Box) -> None:
    files = {"file": ("Ảnh bìa.jpg", picture(), "image/jpeg")}
    first = box.http.post(MEDIA, files=files, data={"alt_text": ALT}, auth=WP_AUTH).json()
    assert first["title"]["raw"] == "Ảnh bìa" and first["slug"] == "anh-bia"
    assert first["alt_text"] == ALT and first["source_url"].endswith("/2024/06/Ảnh-bìa.jpg")
    again = box.http.post(MEDIA, files=files, auth=WP_AUTH).json()  # titled by the sent name
    assert again["slug"] == "anh-bia-2" and again["source_url"].endswith("/Ảnh-bìa-1.jpg")
    assert upload(box, picture()).json()["slug"] == "bia"
    raw = upload(box, picture(seed=2)).json()  # titled by the stored file's name
    assert raw["slug"] == "bia-1" and raw["title"]["raw"] == "bia-1"
    assert raw["source_url"].endswith("/bia-1.jpg")
    # an attachment's slug is unique across posts too; a post's only among posts
    box.wp_post(title="x", content="x", status="publish", slug="bai-viet")
    assert upload(box, picture(), "bai-viet.jpg").json()["slug"] == "bai-viet-2"
    post = box.wp_post(title="y", content="y", status="publish", slug="anh-bia").json()
    assert post["slug"] == "anh-bia"
    ids = [m["id"] for m in box.http.get(MEDIA, params={"per_page": 100}).json()]
    assert len(ids) == 5 and post["id"] > max(ids)  # one sequence of ids, as in wp_posts


def test_wordpress_png_named_jpg_is_stored_as_png(box: Box) -> None:
    media = upload(box, picture(kind="PNG"), "anh.jpg").json()
    assert media["mime_type"] == "image/png" and media["source_url"].endswith("/anh.png")


@pytest.mark.parametrize(
    ("headers", "body", "code", "status"),
    [
        ({"Content-Type": "image/jpeg"}, b"", "rest_upload_no_data", 400),
        (
            {"Content-Disposition": 'attachment; filename="a.jpg"'},
            b"x",
            "rest_upload_no_content_type",
            400,
        ),
        ({"Content-Type": "image/jpeg"}, b"x", "rest_upload_no_content_disposition", 400),
        (
            {"Content-Type": "image/jpeg", "Content-Disposition": "attachment"},
            b"x",
            "rest_upload_invalid_disposition",
            400,
        ),
        (
            {
                "Content-Type": "image/jpeg",
                "Content-Disposition": "attachment; filename*=UTF-8''a.jpg",
            },
            b"x",
            "rest_upload_invalid_disposition",
            400,
        ),
        (
            {"Content-Type": "image/jpeg", "Content-Disposition": 'attachment; filename="a.jpg"'},
            b"not a picture",
            "rest_upload_sideload_error",
            500,
        ),
        (
            {"Content-Type": "image/jpeg", "Content-Disposition": 'attachment; filename="a.txt"'},
            "JPEG",
            "rest_upload_sideload_error",
            500,
        ),
        (
            {
                "Content-Type": "image/jpeg",
                "Content-Disposition": 'attachment; filename="a.jpg"',
                "Content-MD5": "0" * 32,
            },
            "JPEG",
            "rest_upload_hash_mismatch",
            412,
        ),
    ],
)
def test_wordpress_upload_refusals_are_cores(
    box: Box, headers: dict[str, str], body: bytes | str, code: str, status: int
) -> None:
    content = picture() if body == "JPEG" else body
    assert isinstance(content, bytes)
    r = box.http.post(MEDIA, content=content, headers=headers, auth=WP_AUTH)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["data"]["status"] == status
    assert box.sb.records() == [] and stored(box) == []


def test_wordpress_sizes_are_php_s_and_a_multipart_non_picture_is_refused(box: Box) -> None:
    """A single site checks no size of its own (core's check_upload_size is multisite's): a
    raw body over 2 MiB is taken, a multipart file over upload_max_filesize is PHP's 500."""
    big = noise(LIMITS["wordpress"], "JPEG")
    assert upload(box, big).status_code == 201
    files = {"file": ("lon.jpg", big, "image/jpeg")}
    r = box.http.post(MEDIA, files=files, auth=WP_AUTH)
    assert r.status_code == 500 and r.json()["code"] == "rest_upload_unknown_error"
    assert "upload_max_filesize" in r.json()["message"]
    files = {"file": ("a.jpg", b"%PDF-1.4 not a picture", "image/jpeg")}
    r = box.http.post(MEDIA, files=files, auth=WP_AUTH)
    assert r.status_code == 500 and r.json()["code"] == "rest_upload_unknown_error"
    assert r.json()["message"] == "Sorry, you are not allowed to upload this file type."
    assert [r["kind"] for r in box.sb.records()] == ["media"]  # the raw one above


def test_a_multisite_s_upload_limit_is_its_own_refusal() -> None:
    with Sandbox(wordpress_upload_limit=1_536_000) as sb:
        http = httpx.Client(base_url=sb.url)
        headers = {
            "Content-Type": "image/jpeg",
            "Content-Disposition": 'attachment; filename="a.jpg"',
        }
        r = http.post(MEDIA, content=noise(1_536_000, "JPEG"), headers=headers, auth=WP_AUTH)
        assert r.status_code == 400 and r.json()["code"] == "rest_upload_file_too_big"
        assert "1,500 KB" in r.json()["message"]


def test_a_small_file_of_huge_dimensions_is_refused_without_decoding_it() -> None:
    buf = io.BytesIO()
    Image.new("1", (13000, 13000)).save(buf, "PNG")  # a few kB; 169 Mpx once decoded
    assert len(buf.getvalue()) < 1_000_000
    with pytest.raises(Refusal, match="too large"):
        inspect(buf.getvalue())


def test_the_follower_page_links_only_web_addresses() -> None:
    html = pictures([{"url": "javascript:alert(1)", "alt": "x", "role": "cover"}], lambda _u: None)
    assert "javascript" not in html


def test_wordpress_upload_needs_upload_files(box: Box) -> None:
    anonymous = box.http.post(MEDIA, content=picture(), headers={"Content-Type": "image/jpeg"})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "rest_cannot_create"
    contributor = (cred.WORDPRESS_CONTRIBUTOR, cred.WORDPRESS_PASSWORD)
    headers = {"Content-Type": "image/jpeg", "Content-Disposition": 'attachment; filename="a.jpg"'}
    denied = box.http.post(MEDIA, content=picture(), headers=headers, auth=contributor)
    assert denied.status_code == 403 and denied.json()["code"] == "rest_cannot_create"
    assert box.sb.records() == []


def test_wordpress_media_update_list_statuses_and_delete(box: Box) -> None:
    media = upload(box, picture()).json()
    url = f"{MEDIA}/{media['id']}"
    changed = box.http.post(
        url, json={"alt_text": ALT, "caption": {"raw": "Chú thích"}}, auth=WP_AUTH
    )
    assert changed.status_code == 200
    assert changed.json()["alt_text"] == ALT and changed.json()["caption"]["raw"] == "Chú thích"
    assert box.http.get(url).json()["alt_text"] == ALT
    contributor = (cred.WORDPRESS_CONTRIBUTOR, cred.WORDPRESS_PASSWORD)
    assert box.http.post(url, json={"alt_text": "x"}, auth=contributor).status_code == 403
    assert box.http.post(url, json={"alt_text": "x"}).status_code == 401
    bad = box.http.get(MEDIA, params={"status": "any"}, auth=WP_AUTH)
    assert bad.status_code == 400 and bad.json()["code"] == "rest_invalid_param"
    assert (
        box.http.get(MEDIA, params={"status": "private"}).json()["code"] == "rest_forbidden_status"
    )
    assert box.http.get(f"{MEDIA}/999").json()["code"] == "rest_post_invalid_id"
    assert box.http.get(f"{POSTS}/{media['id']}").status_code == 404  # not a post
    trash = box.http.delete(url, auth=WP_AUTH)
    assert trash.status_code == 501 and trash.json()["code"] == "rest_trash_not_supported"
    gone = box.http.delete(url, params={"force": "true"}, auth=WP_AUTH)
    assert gone.json()["deleted"] is True
    assert httpx.get(media["source_url"]).status_code == 404
    assert box.http.get(MEDIA).json() == []


def test_wordpress_big_jpeg_is_served_scaled_and_a_big_png_is_not(box: Box) -> None:
    jpeg = upload(box, picture(3000, 2000)).json()
    assert jpeg["source_url"].endswith("/2024/06/bia-scaled.jpg")
    details = jpeg["media_details"]
    assert (details["width"], details["height"]) == (2560, 1707)
    assert details["original_image"] == "bia.jpg"
    served = Image.open(io.BytesIO(httpx.get(jpeg["source_url"]).content))
    assert served.size == (2560, 1707)
    original = jpeg["source_url"].replace("-scaled", "")
    assert Image.open(io.BytesIO(httpx.get(original).content)).size == (3000, 2000)
    png = upload(box, picture(3000, 2000, "PNG"), "bang.png").json()
    assert png["source_url"].endswith("/bang.png") and png["media_details"]["width"] == 3000


def test_wordpress_featured_media_is_kept_only_for_an_attachment(box: Box) -> None:
    media = upload(box, picture(), alt_text=ALT).json()
    body = {"title": "Bài", "content": "<p>x</p>", "status": "publish"}
    post = box.wp_post(slug="co-anh", featured_media=media["id"], **body).json()
    assert post["featured_media"] == media["id"]
    assert box.http.get(f"{POSTS}/{post['id']}").json()["featured_media"] == media["id"]
    # core drops set_post_thumbnail's failure: the post is saved, without a featured image
    unknown = box.wp_post(slug="khong-anh", featured_media=9999, **body)
    assert unknown.status_code == 201 and unknown.json()["featured_media"] == 0
    a_post = box.wp_post(slug="bai-la-anh", featured_media=post["id"], **body)
    assert a_post.status_code == 201 and a_post.json()["featured_media"] == 0
    url = f"{POSTS}/{post['id']}"
    assert (
        box.http.post(url, json={"featured_media": 9999}, auth=WP_AUTH).json()["featured_media"]
        == media["id"]
    )
    assert (
        box.http.post(url, json={"featured_media": 0}, auth=WP_AUTH).json()["featured_media"] == 0
    )
    record = next(r for r in box.sb.records() if r["remote_id"] == str(post["id"]))
    assert record["media"][0] | {"url": ""} == {
        "role": "cover",
        "url": "",
        "alt": ALT,
        "id": media["id"],
        "sha256": hashlib.sha256(picture()).hexdigest(),
        "mime": "image/jpeg",
        "size": len(picture()),
        "width": 400,
        "height": 300,
    }


def test_wordpress_images_in_the_content_are_on_the_record(box: Box) -> None:
    media = upload(box, picture()).json()
    content = f'<p>x</p><img src="{media["source_url"]}" alt="{ALT}"><img src="https://example.org/a.png">'
    post = box.wp_post(title="Bài", content=content, status="publish", slug="anh-trong-bai").json()
    record = next(r for r in box.sb.records() if r["remote_id"] == str(post["id"]))
    assert [(m["role"], m["alt"], m.get("width")) for m in record["media"]] == [
        ("image", ALT, 400),
        ("image", "", None),
    ]


# -- Facebook: photos and attached_media ------------------------------------------------------


def test_facebook_photo_file_makes_a_photo_post_with_its_caption(box: Box) -> None:
    data = picture()
    r = photo(box, data, caption="Ảnh hoạt động", alt_text_custom=ALT)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id", "post_id"}
    params = {"fields": "id,message,full_picture,attachments"} | FB
    [listed] = box.http.get(f"/facebook/{PAGE}/published_posts", params=params).json()["data"]
    assert listed["id"] == r.json()["post_id"] and listed["message"] == "Ảnh hoạt động"
    assert httpx.get(listed["full_picture"]).content == data
    assert listed["attachments"]["data"][0]["target"]["id"] == r.json()["id"]
    node = box.http.get(
        f"/facebook/{r.json()['id']}", params={"fields": "id,name,alt_text_custom,images"} | FB
    ).json()
    assert node["name"] == "Ảnh hoạt động" and node["alt_text_custom"] == ALT
    [record] = box.sb.records()
    assert record["kind"] == "photo" and record["media"][0]["alt"] == ALT
    assert record["fields"]["source"] == {
        "filename": "anh.jpg",
        "content_type": "image/jpeg",
        "size": len(data),
    }


def test_facebook_unpublished_photos_are_attached_to_one_feed_post(box: Box) -> None:
    ids = []
    for n in range(2):
        r = photo(box, picture(seed=n), published="false", alt_text_custom=f"ảnh {n}")
        assert set(r.json()) == {"id"}
        ids.append(r.json()["id"])
    listed = box.http.get(f"/facebook/{PAGE}/published_posts", params=FB).json()
    assert listed["data"] == []  # nothing a follower sees yet
    assert "ảnh 0" not in box.http.get("/sandbox").text
    form = {f"attached_media[{i}]": json.dumps({"media_fbid": fbid}) for i, fbid in enumerate(ids)}
    post = box.fb_post("Hai ảnh", **form)
    assert post.status_code == 200, post.text
    params = {"fields": "id,message,attachments"} | FB
    [shown] = box.http.get(f"/facebook/{PAGE}/published_posts", params=params).json()["data"]
    album = shown["attachments"]["data"][0]["subattachments"]["data"]
    assert [a["target"]["id"] for a in album] == ids
    record = box.sb.records()[-1]
    assert record["kind"] == "post" and [m["alt"] for m in record["media"]] == ["ảnh 0", "ảnh 1"]
    assert [r["kind"] for r in box.sb.records()] == ["media", "media", "post"]
    page = box.http.get("/sandbox").text
    assert 'alt="ảnh 0"' in page and 'alt="ảnh 1"' in page
    as_json = box.http.post(
        f"/facebook/{PAGE}/feed",
        json={"message": "JSON", "attached_media": [{"media_fbid": ids[0]}]} | FB,
    )
    assert as_json.status_code == 200


@pytest.mark.parametrize("which", ["unknown", "published", "other-page", "not-json"])
def test_facebook_attached_media_must_name_an_unpublished_photo_of_the_page(
    box: Box, which: str
) -> None:
    published = photo(box, picture()).json()["id"]
    other = box.http.post(
        "/facebook/v21.0/200000000000000/photos",
        data={"published": "false"} | FB,
        files={"source": ("a.jpg", picture(), "image/jpeg")},
    ).json()["id"]
    value = {
        "unknown": json.dumps({"media_fbid": "123456"}),
        "published": json.dumps({"media_fbid": published}),
        "other-page": json.dumps({"media_fbid": other}),
        "not-json": "media_fbid=1",
    }[which]
    r = box.fb_post("x", **{"attached_media[0]": value})
    assert r.status_code == 400 and r.json()["error"]["code"] == 100
    assert [r["kind"] for r in box.sb.records()] == ["photo", "media"]


def test_facebook_photo_refusals(box: Box) -> None:
    bad = photo(box, b"GIF89a not really")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 324
    big = photo(box, noise(LIMITS["facebook"]))
    assert big.status_code == 400 and big.json()["error"]["code"] == 324
    missing = {"url": f"{box.sb.url}/media/{'0' * 64}.jpg", "caption": "x"} | FB
    r = box.http.post(f"/facebook/{PAGE}/photos", data=missing)
    assert r.status_code == 400 and r.json()["error"]["code"] == 324
    assert box.sb.records() == [] and stored(box) == []


def test_facebook_photo_by_url_on_the_sandbox_or_elsewhere(box: Box) -> None:
    media = upload(box, picture(), alt_text=ALT).json()
    mine = box.http.post(
        f"/facebook/{PAGE}/photos", data={"url": media["source_url"], "caption": "a"} | FB
    )
    assert mine.status_code == 200
    elsewhere = {"url": "https://stp.example.gov.vn/anh.jpg", "caption": "b"} | FB
    assert box.http.post(f"/facebook/{PAGE}/photos", data=elsewhere).status_code == 200
    page = box.http.get("/sandbox").text
    path = media["source_url"].removeprefix(box.sb.url)
    assert f'<img src="{path}"' in page
    assert '<img src="https://stp.example.gov.vn' not in page
    assert 'href="https://stp.example.gov.vn/anh.jpg"' in page


def test_facebook_posts_need_no_marker(box: Box) -> None:
    assert box.fb_post("Khẩu hiệu không có dấu riêng").status_code == 200
    [listed] = box.http.get(f"/facebook/{PAGE}/published_posts", params=FB).json()["data"]
    assert listed["message"] == "Khẩu hiệu không có dấu riêng"


# -- Zalo: covers and image blocks ------------------------------------------------------------


def zalo_cover(box: Box, token: str, url: str, **more: Any) -> int:
    cover = {"cover_type": "photo", "photo_url": url, "status": "show"}
    return int(box.zalo(token, "article/create", article(cover=cover, **more))["error"])


def test_zalo_cover_on_the_sandbox_may_be_http_and_must_be_a_small_picture(box: Box) -> None:
    token = box.zalo_token()
    small = upload(box, picture()).json()["source_url"]
    assert small.startswith("http://127.0.0.1:")
    assert zalo_cover(box, token, small) == 0
    localhost = small.replace("127.0.0.1", "localhost")
    assert zalo_cover(box, token, localhost) == 0
    over = upload(box, noise(LIMITS["zalo"], "JPEG"), "to.jpg").json()["source_url"]
    assert zalo_cover(box, token, over) == -201  # more than 1 MB
    assert zalo_cover(box, token, small.replace("bia.jpg", "khong-co.jpg")) == -201
    assert zalo_cover(box, token, f"{box.sb.url}/sandbox") == -201  # not a picture
    assert zalo_cover(box, token, "http://stp.example.gov.vn/anh.jpg") == -201  # http elsewhere
    assert zalo_cover(box, token, "https://stp.example.gov.vn/anh.jpg") == 0  # taken as given
    box.faults("zalo:lenient")
    assert zalo_cover(box, token, over) == -201  # the documented 1 MB holds in lenient mode
    [first] = [r for r in box.sb.records() if r["platform"] == "zalo"][:1]
    assert first["media"][0]["role"] == "cover" and first["media"][0]["width"] == 400


def test_zalo_image_blocks_follow_the_same_rule(box: Box) -> None:
    token = box.zalo_token()
    small = upload(box, picture()).json()["source_url"]
    text = {"type": "text", "content": "<p>x</p>"}
    ok = [text, {"type": "image", "url": small, "caption": ALT}]
    assert box.zalo(token, "article/create", article(body=ok))["error"] == 0
    missing = [text, {"type": "image", "url": small.replace("bia", "khac")}]
    assert box.zalo(token, "article/create", article(body=missing)) == {
        "error": -201,
        "message": "body.url is invalid!",
    }
    plain = [text, {"type": "image", "url": "http://stp.example.gov.vn/a.jpg"}]
    assert box.zalo(token, "article/create", article(body=plain))["error"] == -201
    article_record = next(r for r in box.sb.records() if r["platform"] == "zalo")
    assert [(m["role"], m["alt"]) for m in article_record["media"]] == [
        ("cover", ""),
        ("image", ALT),
    ]


# -- webhook: pictures in base64 --------------------------------------------------------------


def entry(data: bytes, **more: Any) -> dict[str, Any]:
    image = Image.open(io.BytesIO(data))
    return {
        "role": "cover",
        "name": "bia-3f2a9c1d0b7e.png" if image.format == "PNG" else "bia-3f2a9c1d0b7e.jpg",
        "mime": "image/png" if image.format == "PNG" else "image/jpeg",
        "sha256": hashlib.sha256(data).hexdigest(),
        "alt": ALT,
        "width": image.width,
        "height": image.height,
        "data_base64": base64.b64encode(data).decode(),
    } | more


def hook_with(box: Box, key: str, media: list[dict[str, Any]]) -> httpx.Response:
    body = json.loads(hook_body(key)) | {"media": media}
    return box.hook("POST", "/webhook/p", json.dumps(body, ensure_ascii=False).encode(), key)


def test_webhook_keeps_a_picture_of_up_to_5_mb_and_records_no_bytes(box: Box) -> None:
    largest = noise(LIMITS["webhook"] - 200_000)
    assert len(largest) <= LIMITS["webhook"]
    r = hook_with(
        box,
        "k1",
        [
            entry(largest),
            {
                "role": "image",
                "alt": "",
                "url": "https://example.org/a.jpg",
                "name": "a.jpg",
                "mime": "",
                "sha256": "",
                "width": 0,
                "height": 0,
            },
        ],
    )
    assert r.status_code == 201, r.text
    [record] = box.sb.records()
    cover = record["media"][0]
    assert cover["sha256"] == hashlib.sha256(largest).hexdigest() and cover["alt"] == ALT
    assert httpx.get(cover["url"]).content == largest
    assert record["media"][1]["url"] == "https://example.org/a.jpg"
    raw = box.record.read_text("utf-8")
    assert base64.b64encode(largest[:3000]).decode()[:64] not in raw
    assert "characters>" in json.dumps(record["fields"]["media"][0]["data_base64"])


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"sha256": "0" * 64}, "sha256 does not match"),
        ({"data_base64": "not base64!"}, "not base64"),
        ({"data_base64": base64.b64encode(b"<svg/>").decode()}, "not a JPEG or PNG"),
        ({"mime": "image/png"}, "mime says"),
        ({"width": 10}, "width×height"),
        ({"role": "banner"}, "role must be"),
        ({"data_base64": None, "url": None}, "neither data_base64 nor url"),
        ({"data_base64": None, "url": "http://example.org/a.jpg"}, "https"),
    ],
)
def test_webhook_refuses_a_bad_picture_with_400(
    box: Box, change: dict[str, Any], problem: str
) -> None:
    bad = entry(picture()) | change
    if change.get("data_base64") is None and "data_base64" in change:
        del bad["data_base64"]
    r = hook_with(box, "k1", [entry(picture(seed=3)), bad])
    assert r.status_code == 400 and r.json()["error"] == "bad_media"
    assert "media[1]" in r.json()["message"] and problem in r.json()["message"]
    assert box.sb.records() == [] and stored(box) == []


def test_webhook_refuses_a_picture_over_5_mb(box: Box) -> None:
    r = hook_with(box, "k1", [entry(noise(LIMITS["webhook"]))])
    assert r.status_code == 400 and "at most 5000000" in r.json()["message"]


# -- the follower page ------------------------------------------------------------------------


def test_page_shows_pictures_from_the_sandbox_and_links_the_others(box: Box) -> None:
    media = upload(box, picture(), alt_text=ALT).json()
    box.wp_post(
        title="Bài có ảnh",
        content="<p>x</p>",
        status="publish",
        slug="a",
        featured_media=media["id"],
    )
    token = box.zalo_token()
    zalo_cover(box, token, "https://stp.example.gov.vn/anh.jpg")
    page = box.http.get("/sandbox")
    assert "img-src 'self'" in page.headers["Content-Security-Policy"]
    path = media["source_url"].removeprefix(box.sb.url)
    assert f'<img src="{path}" alt="{ALT}">' in page.text
    assert 'href="https://stp.example.gov.vn/anh.jpg"' in page.text
    sources = [part.split('"', 1)[0] for part in page.text.split('<img src="')[1:]]
    assert sources and all(s.startswith("/") for s in sources)  # nothing loaded from elsewhere
    assert "1 picture(s) uploaded" in page.text
    assert "WordPress portal (1)" in page.text  # the upload is not a card


# -- faults: an upload that commits, then fails -----------------------------------------------


def test_wordpress_upload_create_then_fail_stores_the_picture(box: Box) -> None:
    box.faults("wordpress:create-then-fail=x1:upload")
    assert box.wp_post(title="a", content="a", status="publish", slug="s").status_code == 201
    failed = upload(box, picture())
    assert failed.status_code == 500
    [found] = box.http.get(MEDIA, params={"slug": "bia"}).json()  # what a lookup finds first
    assert found["source_url"].endswith("/bia.jpg")
    again = upload(box, picture())  # a blind retry: WordPress makes another attachment
    assert again.status_code == 201 and again.json()["slug"] == "bia-1"
    assert [r["kind"] for r in box.sb.records()] == ["post", "media", "media"]


def test_facebook_upload_faults_fire_on_unpublished_photos_only(box: Box) -> None:
    box.faults("facebook:create-then-fail=x1:upload")
    assert box.fb_post("bài").status_code == 200
    assert photo(box, picture(), caption="một bài ảnh").status_code == 200  # a post: "create"
    r = photo(box, picture(seed=2), published="false")
    assert r.status_code == 500 and r.json()["error"]["code"] == 2
    [kept] = [r for r in box.sb.records() if r["kind"] == "media"]
    assert kept["platform"] == "facebook" and box.sb.facebook.photos[kept["remote_id"]]
    box.faults("facebook:error-before=x1:upload")
    assert photo(box, picture(), published="false").status_code == 500
    assert len(box.sb.records()) == 3


def test_step_args_are_checked() -> None:
    assert (
        FaultPlan.parse("wordpress:create-then-fail=x1:upload").spec()
        == "wordpress:create-then-fail=x1:upload"
    )
    with pytest.raises(FaultSpecError, match="step"):
        FaultPlan.parse("wordpress:create-then-fail=x1:uploads")
    plan = FaultPlan.parse("*:error-before=1:upload")
    assert plan.draw("wordpress", "create").rules == {}
    assert "error-before" in plan.draw("wordpress", "upload")
