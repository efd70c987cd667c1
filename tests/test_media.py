"""Pictures from files: named in front matter with their alt text, checked (format, size,
dimensions), resized for each platform without touching the original, and covered by the
render's hash so a changed picture revokes the approval."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from publisher.config import Config
from publisher.content import ALT_LIMIT, IMAGE_LIMIT, Picture, read_messages
from publisher.errors import ContentError
from publisher.media import LIMITS, MIN_SIDE, prepare
from publisher.render import MEDIA_FIELD, Renderer
from tests.fakes import picture_bytes, run

ARTICLE = "articles/02-quyen-tre-em"


@pytest.fixture
def media(campaign: Path) -> Path:
    return campaign / "messages" / "media"


def write_article(campaign: Path, front: str) -> Path:
    path = campaign / "messages" / "articles" / "09-anh.md"
    path.write_text(
        '---\nkind: article\ntitle: "Bài có ảnh"\nsummary: "Tóm tắt."\n'
        f"channels: [portal_stp, facebook, zalo]\n{front}\n---\nNội dung bài viết.\n",
        encoding="utf-8",
    )
    return path


def read_one(config: Config, key: str = "articles/09-anh") -> object:
    messages, problems = read_messages(config)
    for p in problems:
        if "09-anh" in p.line():
            return p
    return next(m for m in messages if m.key == key)


def problem(config: Config) -> str:
    found = read_one(config)
    assert isinstance(found, ContentError), found
    return found.line()


# -- front matter ---------------------------------------------------------------------------


def test_a_cover_file_takes_its_alt_text_from_the_library(config: Config, media: Path) -> None:
    (media / "anh.jpg").write_bytes(picture_bytes(640, 360))
    (media / "alt.yaml").write_text('anh.jpg: "Trẻ em vui chơi"\n', encoding="utf-8")
    write_article(config.messages_dir.parent, "cover: media/anh.jpg")
    m = read_one(config)
    assert m.cover == Picture("media/anh.jpg", "Trẻ em vui chơi")


def test_alt_text_in_the_file_wins_and_images_keep_their_order(config: Config, media: Path) -> None:
    for name in ("a.jpg", "b.png"):
        (media / name).write_bytes(
            picture_bytes(300, 300, "PNG" if name.endswith("png") else "JPEG")
        )
    write_article(
        config.messages_dir.parent,
        'cover: {src: media/a.jpg, alt: "Ảnh A"}\nimages:\n  - {src: media/b.png, alt: ""}\n'
        '  - {src: "https://cdn.example.gov.vn/c.jpg", alt: "Ảnh C"}',
    )
    m = read_one(config)
    assert m.cover == Picture("media/a.jpg", "Ảnh A")
    assert m.images == (
        Picture("media/b.png", ""),  # decorative: said so with alt: ""
        Picture("https://cdn.example.gov.vn/c.jpg", "Ảnh C"),
    )


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("cover: media/khong-co.jpg", "front matter 'cover' media/khong-co.jpg does not exist"),
        (
            "cover: ../config.toml",
            "front matter 'cover' '../config.toml' is not a file under media/",
        ),
        ("cover: anh.jpg", "front matter 'cover' 'anh.jpg' is not a file under media/"),
        (
            "cover: media/alt.yaml",
            "front matter 'cover' media/alt.yaml is not a .jpg, .jpeg or .png",
        ),
        ("cover: http://x.vn/a.jpg", "front matter 'cover' 'http://x.vn/a.jpg' is not an https://"),
        ("cover: media/le.jpg", "front matter 'cover' media/le.jpg has no alternative text"),
        ("cover: {src: media/le.jpg, alt: 3}", "front matter 'cover' alt must be text"),
        ("cover: {file: media/le.jpg}", "front matter 'cover' takes 'src' and 'alt'"),
        ('cover_alt: "x"', "front matter 'cover_alt' is given without a cover"),
        ("images: media/le.jpg", "front matter 'images' must be a list of pictures"),
        (
            f'cover: {{src: media/le.jpg, alt: "{"a" * (ALT_LIMIT + 1)}"}}',
            f"alt text of media/le.jpg is {ALT_LIMIT + 1} characters, the limit is {ALT_LIMIT}",
        ),
        (
            "images: [" + ", ".join(["{src: media/le.jpg, alt: x}"] * (IMAGE_LIMIT + 1)) + "]",
            f"names {IMAGE_LIMIT + 1} pictures, the limit is {IMAGE_LIMIT}",
        ),
    ],
)
def test_bad_pictures_are_one_line_naming_the_file_and_field(
    config: Config, media: Path, front: str, expected: str
) -> None:
    (media / "le.jpg").write_bytes(picture_bytes(300, 300))
    write_article(config.messages_dir.parent, front)
    line = problem(config)
    assert line.startswith("messages/articles/09-anh.md: ")
    assert expected in line
    assert "\n" not in line


def test_a_symbolic_link_out_of_the_media_folder_is_refused(
    config: Config, media: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "ngoai.jpg"
    outside.write_bytes(picture_bytes(300, 300))
    (media / "lien-ket.jpg").symlink_to(outside)
    write_article(config.messages_dir.parent, 'cover: {src: media/lien-ket.jpg, alt: "x"}')
    assert "leads outside messages/media/" in problem(config)


# -- the files themselves -------------------------------------------------------------------


def render_problem(config: Config, front: str) -> str:
    write_article(config.messages_dir.parent, front)
    m = read_one(config)
    with pytest.raises(ContentError) as info:
        Renderer(config).render(m, "portal_stp")  # type: ignore[arg-type]
    return info.value.line()


def test_a_file_that_is_not_really_a_picture_is_refused(config: Config, media: Path) -> None:
    (media / "gia.jpg").write_bytes(b"not a picture at all" * 100)
    line = render_problem(config, 'cover: {src: media/gia.jpg, alt: "x"}')
    assert line.startswith("messages/media/gia.jpg: is not a readable JPEG or PNG picture")


def test_a_gif_named_png_is_refused_by_its_content(config: Config, media: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buf, "GIF")
    (media / "dong.png").write_bytes(buf.getvalue())
    line = render_problem(config, 'cover: {src: media/dong.png, alt: "x"}')
    assert "messages/media/dong.png: is a GIF picture" in line
    assert "JPEG or PNG" in line


def test_a_truncated_file_is_refused(config: Config, media: Path) -> None:
    (media / "cut.jpg").write_bytes(picture_bytes(600, 600)[:3000])
    line = render_problem(config, 'cover: {src: media/cut.jpg, alt: "x"}')
    assert "is not a readable JPEG or PNG picture" in line


def test_a_tiny_picture_is_refused(config: Config, media: Path) -> None:
    (media / "nho.png").write_bytes(picture_bytes(MIN_SIDE - 1, 400, "PNG"))
    line = render_problem(config, 'cover: {src: media/nho.png, alt: "x"}')
    assert f"is {MIN_SIDE - 1}×400 px, too small to show" in line


def test_too_large_files_are_resized_per_platform_never_the_original(
    config: Config, media: Path
) -> None:
    original = picture_bytes(3000, 1600, "JPEG", seed=3)
    assert len(original) > LIMITS["facebook"].max_bytes
    (media / "lon.jpg").write_bytes(original)
    write_article(config.messages_dir.parent, 'cover: {src: media/lon.jpg, alt: "Ảnh lớn"}')
    m = read_one(config)
    renderer = Renderer(config)
    sizes = {}
    for cid, adapter in (("zalo", "zalo"), ("portal_stp", "wordpress"), ("facebook", "facebook")):
        render = renderer.render(m, cid)  # type: ignore[arg-type]
        (entry,) = json.loads(render.fields[MEDIA_FIELD])
        (prepared,) = render.pictures
        assert entry["size"] == len(prepared.data) <= LIMITS[adapter].max_bytes
        assert entry["sha256"] == hashlib.sha256(prepared.data).hexdigest()
        assert entry["source_sha256"] == hashlib.sha256(original).hexdigest()
        with Image.open(io.BytesIO(prepared.data)) as im:
            assert im.format == "JPEG" and im.size == (entry["width"], entry["height"])
            assert im.width / im.height == pytest.approx(3000 / 1600, rel=0.01)
        sizes[cid] = entry["size"]
        # the same file gives the same bytes: a load does not revoke approvals by itself
        assert Renderer(config).render(m, cid).hash == render.hash  # type: ignore[arg-type]
    assert (media / "lon.jpg").read_bytes() == original
    assert sizes["zalo"] < sizes["facebook"]


def test_a_transparent_png_stays_a_png(media: Path) -> None:
    import random

    noise = random.Random(5).randbytes(900 * 900 * 4)  # noqa: S311 - test pixels
    buf = io.BytesIO()
    Image.frombytes("RGBA", (900, 900), noise).save(buf, "PNG")
    assert len(buf.getvalue()) > LIMITS["zalo"].max_bytes
    (media / "trong.png").write_bytes(buf.getvalue())
    prepared = prepare(Picture("media/trong.png", ""), "cover", media.parent, LIMITS["zalo"])
    assert prepared.mime == "image/png" and prepared.name.endswith(".png")
    assert len(prepared.data) <= LIMITS["zalo"].max_bytes
    with Image.open(io.BytesIO(prepared.data)) as im:
        assert im.mode == "RGBA" and min(im.size) >= MIN_SIDE


def test_a_changed_picture_changes_the_render_hash(config: Config, media: Path) -> None:
    (media / "doi.jpg").write_bytes(picture_bytes(400, 300, seed=1))
    write_article(config.messages_dir.parent, 'cover: {src: media/doi.jpg, alt: "x"}')
    m = read_one(config)
    before = Renderer(config).render(m, "facebook").hash  # type: ignore[arg-type]
    (media / "doi.jpg").write_bytes(picture_bytes(400, 300, seed=2))
    after = Renderer(config).render(m, "facebook").hash  # type: ignore[arg-type]
    assert before != after


def test_a_changed_picture_revokes_the_approval_at_the_next_load(
    campaign: Path, media: Path
) -> None:
    (media / "doi.jpg").write_bytes(picture_bytes(400, 300, seed=1))
    write_article(campaign, 'cover: {src: media/doi.jpg, alt: "Ảnh"}')
    assert run("load", "--as", "vanphong").exit_code == 0
    assert run("approve", "--all", "--as", "tuan.la").exit_code == 0
    (media / "doi.jpg").write_bytes(picture_bytes(400, 300, seed=2))
    result = run("load", "--as", "vanphong")
    assert result.exit_code == 0, result.stderr
    items = json.loads(run("preview", "--format", "json").stdout)
    mine = [i for i in items if i["message"] == "articles/09-anh"]
    others = [i for i in items if i["message"] != "articles/09-anh"]
    assert mine and all(i["state"] == "draft" for i in mine)
    assert all(i["state"] == "approved" for i in others)


def test_a_load_keeps_the_approved_bytes_in_the_database(campaign: Path, media: Path) -> None:
    import sqlite3

    data = picture_bytes(500, 400, seed=4)
    (media / "giu.jpg").write_bytes(data)
    write_article(campaign, 'cover: {src: media/giu.jpg, alt: "Ảnh"}')
    assert run("load", "--as", "vanphong").exit_code == 0
    with sqlite3.connect(campaign / "publisher.db") as conn:
        rows = dict(conn.execute("SELECT sha256, data FROM media_file").fetchall())
    assert rows[hashlib.sha256(data).hexdigest()] == data  # within every platform's limits
    banner = (media / "thang-hanh-dong-vi-tre-em-2024.jpg").read_bytes()
    assert rows[hashlib.sha256(banner).hexdigest()] == banner
    assert len(rows) == 2  # each file once, whatever number of posts show it


def test_preview_json_names_each_picture(campaign: Path, media: Path) -> None:
    assert run("load", "--as", "vanphong").exit_code == 0
    items = json.loads(run("preview", "--format", "json").stdout)
    entry = json.loads(items[0]["fields"][MEDIA_FIELD])[0]
    assert entry["src"] == "media/thang-hanh-dong-vi-tre-em-2024.jpg"
    assert entry["alt"].startswith("Ảnh bìa Tháng hành động")


def test_replace_keeps_images(config: Config) -> None:
    messages, _ = read_messages(config)
    m = next(m for m in messages if m.key == ARTICLE)
    assert replace(m, images=(Picture("media/x.jpg", ""),)).images[0].src == "media/x.jpg"


def test_facebook_gets_a_png_over_1_mb_as_a_jpeg(media: Path) -> None:
    data = picture_bytes(640, 640, "PNG", seed=6)
    assert LIMITS["facebook"].png_max_bytes == 1_000_000 < len(data) < LIMITS["wordpress"].max_bytes
    (media / "ve.png").write_bytes(data)
    pic = Picture("media/ve.png", "Hình vẽ")
    facebook = prepare(pic, "cover", media.parent, LIMITS["facebook"])
    assert facebook.mime == "image/jpeg" and len(facebook.data) <= 1_000_000
    assert prepare(pic, "cover", media.parent, LIMITS["wordpress"]).data == data  # as it is


def test_notes_in_the_media_folder_are_not_messages(config: Config, media: Path) -> None:
    (media / "ghi-chu.md").write_text("---\nkind: slogan\n---\nKhông phải thông điệp.\n", "utf-8")
    messages, problems = read_messages(config)
    assert problems == [] and not any(m.key.startswith("media/") for m in messages)


def test_a_facebook_post_with_pictures_carries_its_link_in_its_text(config: Config) -> None:
    """Graph shows a photo post's pictures, never a link preview: the render puts the link at
    the end of the text, so the approved text is what followers see (nothing dropped)."""
    path = config.templates_dir / "facebook" / "slogan.j2"
    path.write_text(
        path.read_text("utf-8") + "{% block link %}https://stp.example.gov.vn/tmhd{% endblock %}",
        encoding="utf-8",
    )
    messages, _ = read_messages(config)
    slogan = next(m for m in messages if m.kind == "slogan")
    render = Renderer(config).render(slogan, "facebook")
    assert render.fields["link"] == ""
    assert render.fields["message"].endswith("\n\nhttps://stp.example.gov.vn/tmhd")
    bare = replace(config, media=replace(config.media, default_cover=""))
    plain = Renderer(bare).render(slogan, "facebook")  # no pictures: a link preview
    assert plain.fields["link"] == "https://stp.example.gov.vn/tmhd"
    assert not plain.fields["message"].endswith("tmhd")


def test_a_photo_s_metadata_is_never_sent(media: Path) -> None:
    """A phone photo small enough to send as it is still carries where it was taken (EXIF
    GPS) and who took it: it is re-encoded without them, upright, for every platform."""
    im = Image.frombytes("RGB", (640, 480), picture_bytes(640, 480, "PPM")[-640 * 480 * 3 :])
    exif = Image.Exif()
    exif[0x013B] = "Nguyễn Văn A"  # Artist
    exif[0x0112] = 6  # Orientation: rotated 90° clockwise
    exif.get_ifd(0x8825)[2] = (21.0, 16.0, 30.0)  # GPSLatitude
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, exif=exif)
    assert len(buf.getvalue()) < LIMITS["zalo"].max_bytes
    (media / "dien-thoai.jpg").write_bytes(buf.getvalue())
    for limits in LIMITS.values():
        sent = prepare(Picture("media/dien-thoai.jpg", "Ảnh"), "cover", media.parent, limits)
        with Image.open(io.BytesIO(sent.data)) as out:
            assert not out.getexif() and "exif" not in out.info
            assert out.size == (480, 640)  # turned upright
        assert b"Nguy" not in sent.data and len(sent.data) <= limits.max_bytes


def test_a_camera_s_multi_frame_jpeg_is_sent_as_its_main_picture(media: Path) -> None:
    frames = [Image.new("RGB", (400, 300), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "MPO", save_all=True, append_images=frames[1:])
    (media / "may-anh.jpg").write_bytes(buf.getvalue())
    with Image.open(media / "may-anh.jpg") as check:
        assert check.format == "MPO"
    sent = prepare(Picture("media/may-anh.jpg", "Ảnh"), "cover", media.parent, LIMITS["zalo"])
    assert sent.mime == "image/jpeg"
    with Image.open(io.BytesIO(sent.data)) as out:
        assert out.format == "JPEG" and getattr(out, "n_frames", 1) == 1


def test_two_alt_texts_of_one_file_are_two_names(media: Path) -> None:
    """WordPress keeps one alt text per file in its library: the same bytes with another alt
    text are another file there, so one post's text never replaces another's."""
    (media / "chung.jpg").write_bytes(picture_bytes(300, 300))
    a = prepare(Picture("media/chung.jpg", "Ảnh A"), "cover", media.parent, LIMITS["wordpress"])
    b = prepare(Picture("media/chung.jpg", "Ảnh B"), "cover", media.parent, LIMITS["wordpress"])
    assert a.sha256 == b.sha256 and a.name != b.name


def test_a_disabled_media_host_and_a_tiny_upload_limit_are_refused(campaign: Path) -> None:
    path = campaign / "config.toml"
    text = path.read_text("utf-8")
    path.write_text(
        text.replace('adapter = "wordpress"', 'adapter = "wordpress"\nenabled = false'), "utf-8"
    )
    result = run("check")
    assert result.exit_code != 0
    assert "media.host: 'portal_stp' is disabled (enabled = false)" in result.stderr
    path.write_text(
        text.replace('adapter = "wordpress"', 'adapter = "wordpress"\nmax_upload_bytes = 0'),
        "utf-8",
    )
    result = run("check")
    assert "channels.portal_stp.max_upload_bytes: is 0: too small for a picture" in result.stderr
