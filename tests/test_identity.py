"""Identity from the OS for the CLI: when the config maps OS users to board members, a command
acts as the member mapped to the calling OS user, and --as / PUBLISHER_AS may only name them
(a service account named in the config may act for any member). Names match after NFC,
whitespace and case folding."""

from __future__ import annotations

import os
import pwd
import sqlite3
import unicodedata
from pathlib import Path

import pytest

from publisher.cli import common as cli_module
from publisher.config import load_config
from publisher.errors import ConfigError
from tests.fakes import run

TUAN = "Lê Anh Tuấn"
MAPPED = {
    'aliases = ["tuan.la"] }': 'aliases = ["tuan.la"], os_user = "tuanla" }',
    'aliases = ["bientap"] }': 'aliases = ["bientap"], os_user = "btv" }',
    "[board]\n": '[board]\nservice_accounts = ["publisher-bot"]\n',
}


def edit_config(campaign: Path, changes: dict[str, str]) -> Path:
    path = campaign / "config.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return path


def as_os_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(cli_module, "os_user", lambda: name)


def approvers(campaign: Path) -> list[str]:
    with sqlite3.connect(campaign / "publisher.db") as conn:
        rows = conn.execute("SELECT DISTINCT approved_by FROM post WHERE approved_by IS NOT NULL")
        return sorted(r[0] for r in rows)


@pytest.fixture
def mapped(campaign: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    edit_config(campaign, MAPPED)
    as_os_user(monkeypatch, "btv")
    with monkeypatch.context() as m:
        m.delenv("PUBLISHER_AS")
        out = run("load")  # a member's own OS user: no --as needed
        assert out.exit_code == 0, out.stderr
    return campaign


def test_the_os_user_comes_from_the_password_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "tuanla")
    monkeypatch.setenv("LOGNAME", "tuanla")
    assert cli_module.os_user() == pwd.getpwuid(os.geteuid()).pw_name


def test_an_unmapped_os_user_is_refused_even_naming_a_member(
    mapped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_os_user(monkeypatch, "root")
    for args in (["--as", "tuan.la"], []):  # PUBLISHER_AS=tuan.la is set too
        out = run("approve", "--all", *args)
        assert out.exit_code == 1
        (line,) = out.stderr.splitlines()
        assert line.startswith("error: OS user root: is not mapped to a member of the board")
        assert 'os_user = "root"' in line
    assert approvers(mapped) == []


def test_a_mapped_user_acts_as_their_member_and_only_them(
    mapped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_os_user(monkeypatch, "tuanla")
    refused = run("approve", "1", "--as", "bientap")
    assert refused.exit_code == 1
    (line,) = refused.stderr.splitlines()
    assert line.startswith("error: --as bientap: OS user tuanla is Lê Anh Tuấn")
    monkeypatch.setenv("PUBLISHER_AS", "bientap")
    refused = run("approve", "1")
    assert refused.exit_code == 1 and "PUBLISHER_AS bientap" in refused.stderr
    assert approvers(mapped) == []
    monkeypatch.delenv("PUBLISHER_AS")
    ok = run("approve", "1")  # no --as: the member mapped to the OS user
    assert ok.exit_code == 0 and f"as {TUAN}" in ok.stdout
    for post, spelling in (
        ("2", " TUAN.LA "),
        ("3", unicodedata.normalize("NFD", TUAN)),
        ("4", "lê  anh   TUẤN"),
    ):
        out = run("approve", post, "--as", spelling)
        assert out.exit_code == 0, out.stderr
    assert approvers(mapped) == [TUAN]


def test_a_service_account_acts_for_the_member_it_names(
    mapped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_os_user(monkeypatch, "publisher-bot")
    monkeypatch.delenv("PUBLISHER_AS")
    out = run("pause", "zalo")
    assert out.exit_code == 1
    assert "error: OS user publisher-bot: is a service account" in out.stderr
    assert "--as" in out.stderr
    assert run("pause", "zalo", "--as", "bientap").exit_code == 0
    monkeypatch.setenv("PUBLISHER_AS", "tuan.la")
    assert run("approve", "1").exit_code == 0
    assert approvers(mapped) == [TUAN]
    refused = run("approve", "2", "--as", "nguoi.la")
    assert refused.exit_code == 1 and "is not a member of the editorial board" in refused.stderr


def test_names_match_after_nfc_whitespace_and_case_folding(campaign: Path) -> None:
    """The shipped config maps no OS user: --as names the member, in any spelling of them."""
    assert run("load", "--as", "  VANPHONG ").exit_code == 0
    nfd = unicodedata.normalize("NFD", TUAN)
    assert nfd != TUAN
    for who, post in ((nfd, "1"), (" TUAN.LA ", "2"), ("Lê   anh TUẤN", "3")):
        out = run("approve", post, "--as", who)
        assert out.exit_code == 0, out.stderr
        assert f"as {TUAN}" in out.stdout
    assert approvers(campaign) == [TUAN]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {'aliases = ["tuan.la"] }': 'aliases = ["tuan.la"], os_user = "" }'},
            "board.members[0].os_user: must not be empty",
        ),
        (
            {'aliases = ["tuan.la"] }': 'aliases = ["tuan.la"], osuser = "tuanla" }'},
            "board.members[0].osuser: is not a known key",
        ),
        (
            {
                'aliases = ["tuan.la"] }': 'aliases = ["tuan.la"], os_user = "tuanla" }',
                'aliases = ["bientap"] }': 'aliases = ["bientap"], os_user = "tuanla" }',
            },
            "board.members[1].os_user: 'tuanla' is mapped twice (to Lê Anh Tuấn and Ban biên tập)",
        ),
        (
            {
                'aliases = ["tuan.la"] }': 'aliases = ["tuan.la"], os_user = "tuanla" }',
                "[board]\n": '[board]\nservice_accounts = ["bot", "bot"]\n',
            },
            "board.service_accounts[1]: 'bot' is given twice",
        ),
        (
            {
                'aliases = ["tuan.la"] }': 'aliases = ["tuan.la"], os_user = "tuanla" }',
                "[board]\n": '[board]\nservice_accounts = ["tuanla"]\n',
            },
            "board.service_accounts[0]: 'tuanla' is Lê Anh Tuấn's os_user",
        ),
        (
            {"[board]\n": '[board]\nservice_accounts = ["bot"]\n'},
            "board.service_accounts: has no effect while no member has an os_user",
        ),
        (
            {"[board]\n": "[board]\nservice_accounts = [7]\n"},
            "board.service_accounts[0]: must be an OS user name",
        ),
        (
            {'aliases = ["bientap"] }': 'aliases = ["Lê  ANH TUẤN"] }'},
            "'Lê ANH TUẤN' is given twice on the board",  # one line: spaces collapsed
        ),
    ],
)
def test_bad_board_config_is_one_line(
    campaign: Path, changes: dict[str, str], expected: str
) -> None:
    path = edit_config(campaign, changes)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = info.value.line()
    assert "\n" not in line and expected in line, line


def test_the_shipped_config_maps_no_os_user() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "config.toml")
    assert all(m.os_user is None for m in config.board.values())
    assert config.service_accounts == ()
