"""`publisher channels check` fetches Zalo's default cover once (HEAD), as Zalo will: from its
address, the published media folder, or the portal that hosts the campaign's pictures."""

from __future__ import annotations

from dataclasses import replace
from secrets import token_urlsafe

import httpx
import pytest
import respx

from publisher.app import cover_check
from publisher.channels.base import fetchable
from publisher.config import Config
from publisher.config.env import Secrets
from publisher.media import LIMITS, prepare
from publisher.render import Renderer

COVER = "https://cdn.example.gov.vn/bia.jpg"
PORTAL = "https://stp.example.gov.vn"
JPEG = {"content-type": "image/jpeg", "content-length": "91976"}


def zalo_default(config: Config, cover: str) -> Config:
    zalo = config.channels["zalo"]
    settings = replace(zalo.settings, default_cover=cover)
    return replace(config, channels={**config.channels, "zalo": replace(zalo, settings=settings)})


def portal_secrets() -> Secrets:
    secrets = Secrets()
    secrets.values["portal_stp"] = {"password": token_urlsafe(18)}  # made per run
    return secrets


@respx.mock
def test_a_picture_anyone_can_fetch_passes() -> None:
    respx.head(COVER).mock(return_value=httpx.Response(200, headers=JPEG))
    result = fetchable(COVER, max_bytes=1_000_000)
    assert result.ok and result.detail == f"{COVER} can be fetched (image/jpeg, 91 kB)"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(404), "answered HTTP 404"),
        (httpx.Response(200, headers={"content-type": "text/html"}), "is text/html, not a JPEG"),
        (
            httpx.Response(200, headers={"content-type": "image/png", "content-length": "2000000"}),
            "is 2,000,000 bytes, over 1,000,000",
        ),
    ],
)
@respx.mock
def test_a_picture_zalo_could_not_take_fails_saying_why(
    answer: httpx.Response, expected: str
) -> None:
    respx.head(COVER).mock(return_value=answer)
    result = fetchable(COVER, max_bytes=1_000_000)
    assert not result.ok and expected in result.detail


@respx.mock
def test_a_server_without_head_is_asked_with_get() -> None:
    respx.head(COVER).mock(return_value=httpx.Response(405))
    respx.get(COVER).mock(return_value=httpx.Response(200, headers=JPEG, content=b"x"))
    assert fetchable(COVER, max_bytes=1_000_000).ok


@respx.mock
def test_redirects_are_followed_and_an_unreachable_host_is_said() -> None:
    moved = "https://cdn.example.gov.vn/2024/bia.jpg"
    respx.head(COVER).mock(return_value=httpx.Response(301, headers={"location": moved}))
    respx.head(moved).mock(return_value=httpx.Response(200, headers=JPEG))
    assert fetchable(COVER, max_bytes=1_000_000).ok
    respx.head("https://down.example.gov.vn/a.jpg").mock(side_effect=httpx.ConnectError("no"))
    down = fetchable("https://down.example.gov.vn/a.jpg", max_bytes=1_000_000)
    assert not down.ok and not down.reachable and "ConnectError" in down.detail


@respx.mock
def test_the_zalo_channel_s_own_address_is_fetched(config: Config) -> None:
    route = respx.head(COVER).mock(return_value=httpx.Response(200, headers=JPEG))
    cfg = zalo_default(config, COVER)
    result = cover_check(cfg, cfg.channels["zalo"], None)
    assert result is not None and result.ok and route.call_count == 1
    assert result.detail.startswith("default cover: ")


@respx.mock
def test_the_published_folder_is_fetched(config: Config) -> None:
    base = "https://stp.example.gov.vn/anh/"
    url = base + "thang-hanh-dong-vi-tre-em-2024.jpg"
    route = respx.head(url).mock(return_value=httpx.Response(404))
    cfg = replace(config, media=replace(config.media, public_base_url=base, host=""))
    result = cover_check(cfg, cfg.channels["zalo"], None)
    assert result is not None and not result.ok and route.call_count == 1
    assert f"{url} answered HTTP 404" in result.detail


@respx.mock
def test_the_portal_is_asked_and_its_address_fetched(config: Config) -> None:
    uploads = f"{PORTAL}/wp-content/uploads/2024/06/"
    cover = Renderer(config).default_cover(config.channels["zalo"])
    assert cover is not None
    name = prepare(cover, "cover", config.messages_dir, LIMITS["zalo"]).name
    slug = name.rpartition(".")[0]  # the name WordPress keeps it by
    row = {"id": 7, "slug": slug, "source_url": uploads + "bia.jpg", "alt_text": "", "caption": ""}
    found = [row]
    lookup = respx.get(url__startswith=f"{PORTAL}/wp-json/wp/v2/media").mock(
        side_effect=[httpx.Response(200, json=[]), httpx.Response(200, json=found)]
    )
    head = respx.head(uploads + "bia.jpg").mock(return_value=httpx.Response(200, headers=JPEG))
    zalo = config.channels["zalo"]
    first = cover_check(config, zalo, portal_secrets())
    assert first is not None and first.ok
    assert "not on portal_stp yet, uploaded there with the first Zalo post" in first.detail
    assert not head.called
    second = cover_check(config, zalo, portal_secrets())
    assert second is not None and second.ok and head.call_count == 1
    assert lookup.call_count == 2
    assert not any(c.request.method == "POST" for c in respx.calls)  # nothing uploaded


def test_no_address_at_all_fails(config: Config) -> None:
    cfg = replace(config, media=replace(config.media, host=""))
    result = cover_check(cfg, cfg.channels["zalo"], None)
    assert result is not None and not result.ok
    assert "has no public address: set [media] host or [media] public_base_url" in result.detail


@respx.mock
def test_an_address_zalo_cannot_fetch_over_https_fails_and_a_length_is_counted() -> None:
    plain = fetchable("http://stp.example.gov.vn/bia.jpg", max_bytes=1_000_000)
    assert not plain.ok and "is not an https:// address" in plain.detail
    respx.head(COVER).mock(return_value=httpx.Response(200, headers={"content-type": "image/jpeg"}))
    respx.get(COVER).mock(
        return_value=httpx.Response(
            200, headers={"content-type": "image/jpeg"}, content=b"x" * 1_200_000
        )
    )
    counted = fetchable(COVER, max_bytes=1_000_000)  # no Content-Length: read, up to the limit
    assert not counted.ok and "over 1,000,000" in counted.detail
