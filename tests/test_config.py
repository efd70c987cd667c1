from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.errors import ConfigError
from tests.fakes import as_webhook_pbgdpl

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (ROOT / "config.toml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, old: str, new: str, shipped: str = SHIPPED) -> str:
    assert old in shipped, old
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, shipped.replace(old, new, 1)))
    line = str(info.value)
    assert "\n" not in line
    return line


def test_shipped_config_describes_the_june_campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    cfg = load_config(ROOT / "config.toml")
    assert (cfg.campaign.start, cfg.campaign.end) == (date(2024, 6, 1), date(2024, 6, 30))
    assert cfg.tz.key == "Asia/Ho_Chi_Minh"
    assert list(cfg.channels) == ["portal_stp", "portal_pbgdpl", "facebook", "zalo"]
    assert {cid: c.adapter for cid, c in cfg.channels.items()} == {
        "portal_stp": "wordpress",
        "portal_pbgdpl": "email",  # its desk publishes what it is mailed
        "facebook": "facebook",
        "zalo": "zalo",
    }
    zalo = cfg.channels["zalo"]
    assert zalo.quiet_hours is not None
    assert zalo.quiet_hours.contains(time(23, 0)) and zalo.quiet_hours.contains(time(5, 59))
    assert not zalo.quiet_hours.contains(time(6, 0))
    assert {k.date for k in cfg.key_dates.values()} == {
        date(2024, 6, 1),
        date(2024, 6, 12),
        date(2024, 6, 28),
    }
    assert cfg.repeats("facebook", "slogan") == 2
    assert cfg.database_url == f"sqlite:///{ROOT / 'publisher.db'}"
    for ch in cfg.channels.values():
        assert all(name.isupper() for name in ch.secrets.values())


def test_environment_overrides_the_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", "postgresql://localhost/x")
    assert load_config(write(tmp_path, SHIPPED)).database_url == "postgresql://localhost/x"


def test_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    cfg = load_config(write(tmp_path, SHIPPED))
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'publisher.db'}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'name = "Tháng',
            'nmae = "Tháng',
            "campaign.nmae: is not a known key (did you mean 'name'?)",
        ),
        (
            "daily_cap = 2\n",
            "daily_cap = 2\ncolour = 'red'\n",
            "channels.portal_stp.colour: is not a known key",
        ),
        (
            'slots = ["09:00", "19:30"]',
            'slots = ["09:00", "25:30"]',
            "channels.zalo.slots[1]: '25:30' is not a time",
        ),
        (
            "end = 2024-06-30",
            "end = 2024-05-30",
            "campaign.end: 2024-05-30 is before the start 2024-06-01",
        ),
        (
            '"portal_pbgdpl", "facebook", "zalo"]',
            '"portal_pbgdpl", "facebok", "zalo"]',
            "kinds.slogan.channels[2]: 'facebok' is not a channel",
        ),
        (
            'adapter = "zalo"',
            'adapter = "zalo-oa"',
            "channels.zalo.adapter: 'zalo-oa' is not a known adapter (one of: wordpress, webhook, facebook, zalo, email)",
        ),
        (
            'slots = ["09:00", "19:30"]',
            'slots = ["09:00", "23:00"]',
            "channels.zalo.slots[1]: 23:00 falls in the quiet hours 22:00–06:00",
        ),
        (
            '"PUBLISHER_FACEBOOK_PAGE_TOKEN"',
            '"EAAB1234secret"',
            "channels.facebook.secrets.page_token: must name an environment variable",
        ),
        (
            'timezone = "Asia/Ho_Chi_Minh"',
            'timezone = "Asia/Hanoi_City"',
            "campaign.timezone: 'Asia/Hanoi_City' is not a known time zone",
        ),
        (
            "daily_cap = 1\nquiet",
            "daily_cap = 0\nquiet",
            "channels.zalo.daily_cap: must be at least 1, not 0",
        ),
        (
            "[kinds.article]",
            "[kinds.video]",
            "kinds.video: is not a content kind (one of: slogan, article)",
        ),
        (
            "date = 2024-06-28",
            "date = 2024-07-28",
            "key_dates.gia_dinh.date: 2024-07-28 is outside the campaign window",
        ),
        (
            "repeats = 2\n",
            'repeats = "two"\n',
            "kinds.slogan.repeats: must be an integer, not a string",
        ),
        ("enabled", "enabled", ""),
    ][:-1],
)
def test_bad_config_names_the_key_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    line = error_for(tmp_path, old, new)
    assert line.startswith(str(tmp_path / "config.toml") + ": ")
    assert expected in line


def test_unknown_channel_table_with_unknown_adapter_is_rejected(tmp_path: Path) -> None:
    text = SHIPPED + '\n[channels.tiktok]\nname = "TikTok"\nadapter = "tiktok"\nslots = ["08:00"]\n'
    with pytest.raises(
        ConfigError, match=r"channels.tiktok.adapter: 'tiktok' is not a known adapter"
    ):
        load_config(write(tmp_path, text))


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, SHIPPED + "\n[campaign\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    line = error_for(tmp_path, "daily_cap = 1\nquiet", "daily_cap = true\nquiet")
    assert "channels.zalo.daily_cap: must be an integer, not a boolean" in line


# -- https for every channel address (issue 12, item 22) -------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            'base_url = "https://stp.example.gov.vn"',
            'base_url = "http://stp.example.gov.vn"',
            "channels.portal_stp.base_url",
        ),
        (
            'site = "https://pbgdpl.example.gov.vn"',
            'site = "http://pbgdpl.example.gov.vn"',
            "channels.portal_pbgdpl.site",
        ),
        (
            'page_id = "100000000000000"',
            'page_id = "100000000000000"\nbase_url = "HTTP://graph.facebook.com"',
            "channels.facebook.base_url",
        ),
        (
            'app_id = "1000000000000000000"',
            'app_id = "1000000000000000000"\napi_base_url = "http://openapi.zalo.me"',
            "channels.zalo.api_base_url",
        ),
        (
            'app_id = "1000000000000000000"',
            'app_id = "1000000000000000000"\noauth_base_url = "http://127.0.0.1.nip.io"',
            "channels.zalo.oauth_base_url",
        ),
        (
            'base_url = "https://stp.example.gov.vn"',
            'base_url = "http://localhost.example.org"',
            "channels.portal_stp.base_url",
        ),
        (
            'base_url = "https://stp.example.gov.vn"',
            'base_url = "http://user@10.0.0.5:8080"',
            "channels.portal_stp.base_url",
        ),
    ],
)
def test_plain_http_is_refused_for_a_real_channel(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    line = error_for(tmp_path, old, new)
    assert f"{key}: " in line
    assert "https://" in line  # says how to fix it


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            'url = "https://pbgdpl.example.gov.vn/api/publisher/posts"',
            'url = "http://pbgdpl.example.gov.vn/api/publisher/posts"',
            "channels.portal_pbgdpl.url",
        ),
        (
            'url = "https://pbgdpl.example.gov.vn/api/publisher/posts"',
            'url = "https://pbgdpl.example.gov.vn/api/publisher/posts"\n'
            'public_base_url = "http://pbgdpl.example.gov.vn"',
            "channels.portal_pbgdpl.public_base_url",
        ),
    ],
)
def test_plain_http_is_refused_for_a_webhook_channel(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    line = error_for(tmp_path, old, new, as_webhook_pbgdpl(SHIPPED))
    assert f"{key}: " in line
    assert "https://" in line


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080",
        "http://LOCALHOST/wp",
        "http://127.0.0.1:8765/wordpress",
        "http://127.9.8.7",
        "http://[::1]:9000/",
        "https://stp.example.gov.vn/sub/",
    ],
)
def test_plain_http_is_allowed_on_loopback(tmp_path: Path, url: str) -> None:
    text = SHIPPED.replace('base_url = "https://stp.example.gov.vn"', f'base_url = "{url}"', 1)
    assert load_config(write(tmp_path, text)).channels["portal_stp"].setting("base_url") == url


def test_a_url_without_a_host_is_refused(tmp_path: Path) -> None:
    line = error_for(
        tmp_path, 'base_url = "https://stp.example.gov.vn"', 'base_url = "https:///wp-json"'
    )
    assert "channels.portal_stp.base_url: " in line and "host" in line


@pytest.mark.parametrize(
    ("given", "taken"), [("[3, 7]", (3, 7)), ('["3", "7"]', (3, 7)), ("[]", ())]
)
def test_wordpress_category_ids_are_whole_numbers(
    tmp_path: Path, given: str, taken: tuple[int, ...]
) -> None:
    text = SHIPPED.replace(
        'base_url = "https://stp.example.gov.vn"',
        f'base_url = "https://stp.example.gov.vn"\ncategory_ids = {given}',
        1,
    )
    channel = load_config(write(tmp_path, text)).channels["portal_stp"]
    assert channel.setting("category_ids") == taken
    assert channel.settings_dict()["category_ids"] == list(taken)  # as templates see it


@pytest.mark.parametrize("bad", ['["news"]', "[3.5]", "[true]"])
def test_wordpress_category_ids_that_are_not_whole_numbers_are_refused(
    tmp_path: Path, bad: str
) -> None:
    line = error_for(
        tmp_path,
        'base_url = "https://stp.example.gov.vn"',
        f'base_url = "https://stp.example.gov.vn"\ncategory_ids = {bad}',
    )
    assert "channels.portal_stp.category_ids: must be a list of whole numbers" in line
