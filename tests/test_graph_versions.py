"""Facebook Graph API versions expire: a dated table, and warnings from ``check`` and
``channels check`` when the configured version dies before the campaign ends or soon."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.channels.facebook import FacebookAdapter
from publisher.cli.main import cli
from publisher.config import ADAPTERS, Config, FacebookSettings, load_config
from publisher.config import graph_versions as gv
from publisher.editorial.check import run_check
from tests.fakes import run

TODAY = date(2026, 12, 6)


def with_version(config: Config, version: str, end: date | None = None) -> Config:
    fb = config.channels["facebook"]
    fb = replace(fb, settings=replace(fb.settings, api_version=version))
    campaign = replace(config.campaign, end=end) if end else config.campaign
    return replace(config, channels={**config.channels, "facebook": fb}, campaign=campaign)


def test_the_table_is_dated_and_ordered() -> None:
    names = [v.name for v in gv.VERSIONS]
    assert names[-1] == gv.CURRENT == "v26.0"
    assert {"v19.0", "v20.0", "v21.0", "v22.0", "v23.0", "v24.0", "v25.0"} <= set(names)
    released = [v.released for v in gv.VERSIONS]
    assert released == sorted(released)
    table = {v.name: v for v in gv.VERSIONS}
    assert table["v26.0"].released == date(2026, 7, 29)  # platform-apis.md §7
    assert table["v25.0"].released == date(2026, 2, 18)
    assert table["v21.0"].available_until == date(2027, 1, 21)
    assert table["v26.0"].available_until is None  # not announced yet


def test_the_default_version_is_the_current_one(config: Config) -> None:
    assert ADAPTERS["facebook"].optional["api_version"] == "v26.0"
    assert config.channels["facebook"].setting("api_version") == "v26.0"
    fb = config.channels["facebook"]
    settings = FacebookSettings(page_id=fb.setting("page_id"))  # api_version left to its default
    adapter = FacebookAdapter(replace(fb, settings=settings), None, {})  # type: ignore[arg-type]
    assert adapter.root.endswith("/v26.0")


@pytest.mark.parametrize(
    ("version", "today", "end", "expected"),
    [
        ("v26.0", TODAY, date(2027, 6, 30), None),
        ("v25.0", TODAY, date(2027, 6, 30), None),
        ("v21.0", date(2026, 6, 1), date(2026, 6, 30), None),
        ("v21.0", TODAY, date(2026, 12, 31), "stops working on 2027-01-21, in 46 days"),
        ("v22.0", TODAY, date(2027, 6, 30), "stops working on 2027-05-20, before the campaign"),
        ("v21.0", date(2027, 1, 21), date(2027, 3, 31), "stopped working on 2027-01-21"),
        ("v18.0", TODAY, date(2026, 12, 31), "stopped working on 2026-01-26"),
        ("v2.8", TODAY, date(2026, 12, 31), "older than every version"),
        ("v27.0", TODAY, date(2026, 12, 31), "not in publisher's table"),
        ("", TODAY, date(2026, 12, 31), "no api_version"),
    ],
)
def test_version_notes(version: str, today: date, end: date, expected: str | None) -> None:
    note = gv.version_note(version, today, end)
    if expected is None:
        assert note is None
        return
    assert note is not None and expected in note.text, note
    assert 'set api_version = "v26.0"' in note.text
    assert note.dead == ("stopped" in expected or "older" in expected)


def test_check_warns_without_failing(config: Config) -> None:
    old = with_version(config, "v21.0", end=date(2027, 3, 31))
    result = run_check(old, today=TODAY)
    assert result.problems == []
    versions = [w for w in result.warnings if ".api_version:" in w]
    assert versions == [
        f"{config.path}: channels.facebook.api_version: Graph API v21.0 stops working on "
        "2027-01-21, before the campaign ends on 2027-03-31 "
        '(set api_version = "v26.0", the current version)'
    ]
    current = run_check(with_version(config, "v26.0"), today=TODAY).warnings
    assert not [w for w in current if ".api_version:" in w]


def _set_version(campaign: Path, version: str) -> None:
    path = campaign / "config.toml"
    text = path.read_text(encoding="utf-8")
    new = re.sub(r'(?m)^api_version = ".*?"', f'api_version = "{version}"', text)
    assert new != text
    path.write_text(new, encoding="utf-8")


def _clock(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    moment = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)
    monkeypatch.setattr("publisher.cli.main.now", lambda: moment)
    monkeypatch.setattr("publisher.cli.run.now", lambda: moment)


def test_publisher_check_prints_the_warning_and_exits_0(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_version(campaign, "v21.0")
    _clock(monkeypatch, TODAY)
    result = run("check")
    assert result.exit_code == 0, result.stderr
    assert "warning: " in result.stderr
    line = next(ln for ln in result.stderr.splitlines() if "api_version" in ln)
    assert line.startswith("warning: ") and "2027-01-21, in 46 days" in line
    assert "OK: no problems found." in result.stdout


@pytest.fixture
def no_secrets(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    for ch in config.channels.values():
        for name in ch.secrets.values():
            monkeypatch.delenv(name, raising=False)


def _facebook_row(output: str) -> str:
    cells, inside = [], False
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        first = line.split("│")[1].strip()
        if first:
            inside = first == "facebook"
        if inside:
            cells.append(line.split("│")[-2].strip())
    return " ".join(cells)


def test_channels_check_warns_in_the_facebook_row(
    campaign: Path, monkeypatch: pytest.MonkeyPatch, no_secrets: None
) -> None:
    _set_version(campaign, "v21.0")
    _clock(monkeypatch, TODAY)
    result = CliRunner().invoke(cli, ["channels", "check", "--sandbox"])
    assert result.exit_code == 0, result.output
    row = _facebook_row(result.stdout)
    assert row.startswith("ok: ") and "v21.0" in row and "2027-01-21" in row, row


def test_channels_check_fails_a_dead_version(
    campaign: Path, monkeypatch: pytest.MonkeyPatch, no_secrets: None
) -> None:
    _set_version(campaign, "v21.0")
    _clock(monkeypatch, date(2027, 2, 1))
    result = CliRunner().invoke(cli, ["channels", "check", "--sandbox"])
    assert result.exit_code == 1, result.output
    row = _facebook_row(result.stdout)
    assert row.startswith("FAILED: ") and "stopped working on 2027-01-21" in row, row
    assert 'set api_version = "v26.0"' in row
    assert result.stderr.strip() == "1 channel(s) failed the check."


def test_shipped_config_loads_v26(campaign: Path) -> None:
    assert load_config(campaign / "config.toml").channels["facebook"].setting("api_version") == (
        "v26.0"
    )
