"""Zalo refuses an article without a cover (-201) and titles of 150 characters, and fetches its
pictures by address: ``check`` and ``load`` say so before the campaign, naming the file. The
campaign ships a banner as its default cover, which the portal publishes for Zalo. And the
adapter's covers against the independent Zalo imitation: a file cover becomes the public address
its media host gives."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from publisher.channels.base import CheckResult, Media, Outgoing, Permanent
from publisher.channels.tokens import InMemoryTokenStore
from publisher.channels.zalo import LIMITS, ZaloAdapter
from publisher.config import Config, load_config
from publisher.content import Message, Picture, read_messages
from publisher.errors import ConfigError, ContentError, LimitError, TemplateError
from publisher.render import FIELDS, MEDIA_FIELD, Renderer
from publisher.sandbox import credentials
from tests.fakes import make_channel, picture_bytes, run
from tests.imitation import Imitation

DATA = Path(__file__).resolve().parent / "data" / "messages"
ROOT = Path(__file__).resolve().parents[1]
ARTICLE = "messages/articles/01-thang-hanh-dong-2024.md"
BANNER = "media/thang-hanh-dong-vi-tre-em-2024.jpg"


def with_media(config: Config, **settings: object) -> Config:
    return replace(config, media=replace(config.media, **settings))  # type: ignore[arg-type]


def with_zalo_default(config: Config, cover: str) -> Config:
    zalo = config.channels["zalo"]
    settings = replace(zalo.settings, default_cover=cover)
    return replace(config, channels={**config.channels, "zalo": replace(zalo, settings=settings)})


def message(config: Config, key: str) -> Message:
    messages, problems = read_messages(config)
    assert problems == []
    return next(m for m in messages if m.key == key)


def pictures(config: Config, m: Message, channel: str = "zalo") -> list[dict[str, object]]:
    entries = json.loads(Renderer(config).render(m, channel).fields[MEDIA_FIELD])
    assert isinstance(entries, list)
    return entries


def drop_default_cover(campaign: Path) -> None:
    path = campaign / "config.toml"
    text = path.read_text(encoding="utf-8")
    cut = re.sub(r"(?m)^default_cover = .*\n", "", text)
    assert cut != text, "the shipped config sets [media] default_cover"
    path.write_text(cut, encoding="utf-8")


def test_the_shipped_campaign_has_a_banner_for_zalo(config: Config) -> None:
    assert config.media.default_cover == BANNER
    assert config.media.host == "portal_stp"
    path = config.messages_dir / BANNER
    assert path.stat().st_size <= 1_000_000  # sent as it is: Zalo takes at most 1 MB
    with Image.open(path) as im:
        assert im.format == "JPEG" and min(im.size) >= 200
    m = message(config, "articles/01-thang-hanh-dong-2024")
    (cover,) = pictures(config, m)
    assert cover["role"] == "cover" and cover["src"] == BANNER
    assert "Tháng hành động vì trẻ em năm 2024" in str(cover["alt"])


def test_a_zalo_post_without_any_cover_is_refused_naming_the_file(config: Config) -> None:
    bare = with_media(config, default_cover="")
    m = message(bare, "articles/01-thang-hanh-dong-2024")
    assert m.cover is None
    with pytest.raises(ContentError) as info:
        Renderer(bare).render(m, "zalo")
    line = info.value.line()
    assert line.startswith(f"{m.path}: has no cover for zalo")
    assert "-201" in line
    assert "add 'cover: media/…' to its front matter" in line
    assert "[media] default_cover" in line
    # the other channels do without a picture
    assert MEDIA_FIELD not in Renderer(bare).render(m, "facebook").fields


def test_a_file_cover_needs_an_address_zalo_can_fetch(config: Config) -> None:
    alone = with_media(config, host="", public_base_url="")
    m = message(alone, "articles/01-thang-hanh-dong-2024")
    with pytest.raises(ContentError) as info:
        Renderer(alone).render(m, "zalo")
    line = info.value.line()
    assert f"{BANNER} has no public address Zalo can fetch it from (zalo)" in line
    assert "[media] public_base_url" in line and "[media] host" in line
    # a published folder gives it one: the file as it is there
    public = with_media(alone, public_base_url="https://stp.example.gov.vn/anh/")
    (cover,) = pictures(public, m)
    assert cover["url"] == "https://stp.example.gov.vn/anh/thang-hanh-dong-vi-tre-em-2024.jpg"
    # the portal as the host: uploaded when the post goes out, so no address yet
    (hosted,) = pictures(config, m)
    assert "url" not in hosted and hosted["sha256"]


def test_a_file_over_1_mb_cannot_be_fetched_from_the_published_folder(
    config: Config, campaign: Path
) -> None:
    (campaign / "messages" / "media" / "lon.png").write_bytes(picture_bytes(1400, 1400, "PNG"))
    assert (campaign / "messages" / "media" / "lon.png").stat().st_size > 1_000_000
    public = with_media(config, host="", public_base_url="https://stp.example.gov.vn/anh/")
    m = replace(
        message(config, "articles/01-thang-hanh-dong-2024"), cover=Picture("media/lon.png", "Ảnh")
    )
    with pytest.raises(ContentError) as info:
        Renderer(public).render(m, "zalo")
    assert "media/lon.png is over Zalo's 1 MB, or carries metadata" in info.value.line()
    # with the portal as host, Zalo gets a copy resized under 1 MB
    (cover,) = pictures(config, m)
    assert int(str(cover["size"])) <= 1_000_000 and cover["mime"] == "image/jpeg"


def test_the_zalo_channel_default_cover_address_still_counts(config: Config) -> None:
    own = with_zalo_default(config, "https://cdn.example.gov.vn/bia.png")
    m = message(own, "articles/01-thang-hanh-dong-2024")
    (cover,) = pictures(own, m)
    assert cover == {
        "role": "cover",
        "alt": "",
        "src": "https://cdn.example.gov.vn/bia.png",
        "url": "https://cdn.example.gov.vn/bia.png",
    }
    # the other channels keep the campaign's banner
    (portal,) = pictures(own, m, "portal_stp")
    assert portal["src"] == BANNER


def test_zalo_titles_stay_under_150_characters(config: Config) -> None:
    assert dict(LIMITS) == {f.name: f.limit for f in FIELDS["zalo"] if f.limit is not None}
    assert LIMITS["title"] == 149
    m = message(config, "articles/01-thang-hanh-dong-2024")
    with pytest.raises(LimitError) as info:
        Renderer(config).render(replace(m, title="T" * 150), "zalo")
    assert (info.value.length, info.value.limit) == (150, 149)
    assert "Zalo refuses titles of 150 characters" in info.value.line()
    assert Renderer(config).render(replace(m, title="T" * 149), "zalo").fields["title"] == "T" * 149


def test_a_template_cannot_set_the_cover(config: Config) -> None:
    path = config.templates_dir / "zalo" / "article.j2"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "{% block cover %}https://x.vn/a.jpg{% endblock %}", encoding="utf-8")
    m = message(config, "articles/01-thang-hanh-dong-2024")
    with pytest.raises(TemplateError) as info:
        Renderer(config).render(m, "zalo")
    assert "block 'cover' is not a field of a zalo post" in info.value.line()


def test_the_zalo_default_cover_must_be_an_https_url(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    bad = text.replace(
        "broadcast = false", 'default_cover = "http://x.vn/a.jpg"\nbroadcast = false'
    )
    assert bad != text
    path = tmp_path / "config.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = info.value.line()
    assert line.startswith(f"{path}: channels.zalo.default_cover: 'http://x.vn/a.jpg' is not")
    assert "https://" in line and "\n" not in line


# -- through the command line -------------------------------------------------------------------


def test_check_refuses_zalo_posts_without_a_cover_naming_each_file(campaign: Path) -> None:
    drop_default_cover(campaign)
    result = run("check")
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert f"error: {ARTICLE}: has no cover for zalo" in "\n".join(errors)
    assert all("Traceback" not in ln for ln in errors)
    assert "OK: no problems found" not in result.stdout


def test_check_refuses_a_zalo_cover_without_an_address(campaign: Path) -> None:
    path = campaign / "config.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('host = "portal_stp"\n', ""), encoding="utf-8"
    )
    result = run("check")
    assert result.exit_code == 1
    assert "has no public address Zalo can fetch it from" in result.stderr


def test_load_refuses_zalo_posts_without_a_cover_and_writes_nothing(campaign: Path) -> None:
    drop_default_cover(campaign)
    result = run("load", "--as", "vanphong")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: messages/")
    assert "has no cover for zalo" in lines[0]
    db = campaign / "publisher.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "message" in tables:
                assert conn.execute("SELECT count(*) FROM message").fetchone()[0] == 0


def test_check_passes_on_the_shipped_campaign(campaign: Path) -> None:
    result = run("check")
    assert result.exit_code == 0, result.stderr
    assert "OK: no problems found." in result.stdout


def test_the_shipped_campaign_loads_with_the_banner_in_every_zalo_post(campaign: Path) -> None:
    assert run("load", "--as", "vanphong").exit_code == 0
    items = json.loads(run("preview", "--format", "json", "--channel", "zalo").stdout)
    every = json.loads(run("preview", "--format", "json").stdout)
    assert len(items) == sum(i["channel"] == "zalo" for i in every) > 0
    covers = {json.loads(i["fields"][MEDIA_FIELD])[0]["src"] for i in items}
    assert covers == {BANNER}


# -- the adapter's covers against the independent Zalo imitation ----------------------------------

HOSTED = "https://stp.example.gov.vn/wp-content/uploads/2024/06/"


class CountingHost:
    """A MediaHost that serves every file under HOSTED and counts the questions."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def check(self) -> CheckResult:
        return CheckResult(True, "the host answers")

    def public_url(self, media: Media) -> str:
        self.asked.append(media.name)
        return HOSTED + media.name


def file_picture(role: str, alt: str, data: bytes, stem: str) -> Media:
    digest = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{digest[:12]}.png"
    return Media(role, alt, "image/png", name, digest, data, width=800, height=800)


def imitation_adapter(im: Imitation, host: CountingHost | None) -> ZaloAdapter:
    zalo = make_channel(
        "zalo",
        "zalo",
        "Zalo OA Sở Tư pháp",
        templates="zalo",
        app_id="1000000000000000000",
        api_base_url=f"{im.url}/zalo/openapi",
        oauth_base_url=f"{im.url}/zalo/oauth",
    )
    return ZaloAdapter(
        zalo,
        httpx.Client(timeout=5.0),
        credentials.SECRETS["zalo"],
        tokens=InMemoryTokenStore(),
        sleep=lambda _s: None,
        media_host=host,
    )


def zalo_post(*media: Media, title: str = "Bảo vệ trẻ em trên không gian mạng") -> Outgoing:
    return Outgoing(
        post_id=3,
        idempotency_key="5d2c7a1e-0f3b-4c6d-9e8f-7a6b5c4d3e2f",
        channel="zalo",
        kind="article",
        fields={"title": title, "description": "Tóm tắt", "body": "Đoạn một.\n\nĐoạn hai."},
        due_at=datetime.now(UTC),
        media=media,
    )


def test_a_file_cover_and_images_reach_the_zalo_imitation_as_public_addresses(
    tmp_path: Path,
) -> None:
    banner = file_picture("cover", "Băng rôn Tháng hành động", b"\x89PNG\r\n\x1a\nbang-ron", "bia")
    chart = file_picture("image", "Biểu đồ Tổng đài 111", b"\x89PNG\r\n\x1a\nbieu-do", "bieu-do")
    linked = Media("image", "", url="https://cdn.example.gov.vn/vien.png")
    host = CountingHost()
    with Imitation(record=tmp_path / "record.jsonl", seed=5) as im:
        im.set_faults("zalo:processing=0")
        adapter = imitation_adapter(im, host)
        since = datetime.now(UTC)
        receipt = adapter.publish(zalo_post(banner, chart, linked))
        (record,) = im.records()
        found = adapter.lookup(zalo_post(banner, chart, linked), since)
        with pytest.raises(Permanent, match=r"\[media\] public_base_url"):
            imitation_adapter(im, None).publish(zalo_post(banner, title="Bài thứ hai"))
        assert len(im.records()) == 1  # refused before Zalo was asked
    assert record["remote_id"] == receipt.remote_id
    assert record["cover"] == HOSTED + banner.name
    assert record["images"] == [
        {"url": HOSTED + chart.name, "caption": "Biểu đồ Tổng đài 111"},
        {"url": "https://cdn.example.gov.vn/vien.png", "caption": ""},
    ]
    assert found is not None and found.remote_id == receipt.remote_id
    assert host.asked == [banner.name, chart.name]  # once each; the lookup asks nothing
