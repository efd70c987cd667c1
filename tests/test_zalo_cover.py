"""Zalo refuses an article without a cover (-201) and titles of 150 characters: ``check`` and
``load`` say so before the campaign, naming the file; the rendered cover is the URL sent. And
the adapter's covers against the independent Zalo imitation: a file cover becomes the public
address its media host gives."""

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

from publisher.channels.base import Media, Outgoing, Permanent
from publisher.channels.tokens import InMemoryTokenStore
from publisher.channels.zalo import LIMITS, ZaloAdapter
from publisher.config import Config, load_config
from publisher.content import Message, read_messages
from publisher.errors import ConfigError, ContentError, LimitError, TemplateError
from publisher.render import FIELDS, Renderer
from publisher.sandbox import credentials
from tests.fakes import make_channel, run
from tests.imitation import Imitation

DATA = Path(__file__).resolve().parent / "data" / "messages"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "https://stp.example.gov.vn/documents/anh-bia.jpg"
ARTICLE = "messages/articles/01-thang-hanh-dong-2024.md"


def with_default(config: Config, cover: str) -> Config:
    zalo = config.channels["zalo"]
    settings = replace(zalo.settings, default_cover=cover)
    return replace(config, channels={**config.channels, "zalo": replace(zalo, settings=settings)})


def message(config: Config, key: str) -> Message:
    messages, problems = read_messages(replace(config, messages_dir=DATA))
    assert problems == []
    return next(m for m in messages if m.key == key)


def drop_default_cover(campaign: Path) -> None:
    path = campaign / "config.toml"
    text = path.read_text(encoding="utf-8")
    cut = re.sub(r"(?m)^default_cover = .*\n", "", text)
    assert cut != text, "the shipped config sets channels.zalo.default_cover"
    path.write_text(cut, encoding="utf-8")


def test_the_shipped_config_gives_zalo_an_https_default_cover(config: Config) -> None:
    cover = str(config.channels["zalo"].setting("default_cover"))
    assert cover.startswith("https://stp.example.gov.vn/")


def test_a_zalo_post_without_any_cover_is_refused_naming_the_file(config: Config) -> None:
    bare = with_default(config, "")
    m = message(bare, "articles/01-thu")
    assert m.cover is None
    with pytest.raises(ContentError) as info:
        Renderer(bare).render(m, "zalo")
    line = info.value.line()
    assert line.startswith(f"{m.path}: has no cover for zalo")
    assert "-201" in line
    assert "add 'cover: https://…' to its front matter" in line
    assert "channels.zalo.default_cover" in line
    # the other channels do not need one
    Renderer(bare).render(m, "facebook")


def test_the_rendered_cover_is_the_url_that_will_be_sent(config: Config) -> None:
    cfg = with_default(config, DEFAULT)
    m = message(cfg, "articles/01-thu")
    assert Renderer(cfg).render(m, "zalo").fields["cover"] == DEFAULT
    own = replace(m, cover="https://cdn.example.gov.vn/own.png")
    assert Renderer(cfg).render(own, "zalo").fields["cover"] == "https://cdn.example.gov.vn/own.png"
    # a post's own cover needs no default
    assert Renderer(with_default(config, "")).render(own, "zalo").fields["cover"] == own.cover


def test_a_template_without_a_cover_block_still_sends_the_default(config: Config) -> None:
    cfg = with_default(config, DEFAULT)
    path = cfg.templates_dir / "zalo" / "slogan.j2"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"\{% block cover %\}.*?\{% endblock %\}", "", text), encoding="utf-8")
    m = message(cfg, "slogans/01-thu")
    render = Renderer(cfg).render(m, "zalo")
    assert render.fields["cover"] == DEFAULT


def test_a_template_that_renders_a_non_https_cover_is_refused(config: Config) -> None:
    path = config.templates_dir / "zalo" / "slogan.j2"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\{% block cover %\}.*?\{% endblock %\}", "", text)
    path.write_text(text + "{% block cover %}anh-bia.jpg{% endblock %}", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"templates/zalo/slogan.j2: .*https://"):
        Renderer(config).render(message(config, "slogans/01-thu"), "zalo")


def test_zalo_titles_stay_under_150_characters(config: Config) -> None:
    assert dict(LIMITS) == {f.name: f.limit for f in FIELDS["zalo"] if f.limit is not None}
    assert LIMITS["title"] == 149
    m = message(config, "articles/01-thu")
    with pytest.raises(LimitError) as info:
        Renderer(config).render(replace(m, title="T" * 150), "zalo")
    assert (info.value.length, info.value.limit) == (150, 149)
    assert "Zalo refuses titles of 150 characters" in info.value.line()
    assert Renderer(config).render(replace(m, title="T" * 149), "zalo").fields["title"] == "T" * 149


def test_default_cover_must_be_an_https_url(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    bad = re.sub(r'(?m)^default_cover = ".*?"', 'default_cover = "http://x.vn/a.jpg"', text)
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


def test_the_shipped_campaign_loads_with_the_default_cover_in_every_zalo_post(
    campaign: Path,
) -> None:
    assert run("load", "--as", "vanphong").exit_code == 0
    cover = str(load_config(campaign / "config.toml").channels["zalo"].setting("default_cover"))
    items = json.loads(run("preview", "--format", "json", "--channel", "zalo").stdout)
    every = json.loads(run("preview", "--format", "json").stdout)
    assert len(items) == sum(i["channel"] == "zalo" for i in every) > 0
    assert {i["fields"]["cover"] for i in items} == {cover}


# -- the adapter's covers against the independent Zalo imitation ----------------------------------

HOSTED = "https://stp.example.gov.vn/wp-content/uploads/2024/06/"


class CountingHost:
    """A MediaHost that serves every file under HOSTED and counts the questions."""

    def __init__(self) -> None:
        self.asked: list[str] = []

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
