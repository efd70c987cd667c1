"""``[imap]`` and ``PUBLISHER_IMAP_URL``: parsed, checked with one-line errors, the password only
from the environment and never in an error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher.config import IMAP_URL_ENV, load_config
from publisher.config.env import imap_access
from publisher.config.parse import imap_url
from publisher.errors import ConfigError


def with_imap(campaign: Path, table: str) -> Any:
    path = campaign / "config.toml"
    path.write_text(path.read_text("utf-8") + "\n[imap]\n" + table, "utf-8")
    return load_config(path)


def test_an_imap_table_with_its_defaults(campaign: Path) -> None:
    cfg = with_imap(
        campaign,
        'host = "imap.example.gov.vn"\nusername = "publisher"\n'
        'secrets = { password = "PUBLISHER_IMAP_PASSWORD" }\nprocessed = "Processed"\n',
    )
    s = cfg.imap
    assert (s.host, s.port, s.security, s.mailbox, s.processed) == (
        "imap.example.gov.vn",
        993,
        "ssl",
        "INBOX",
        "Processed",
    )
    assert s.poll_every == timedelta(minutes=5) and s.password_env == "PUBLISHER_IMAP_PASSWORD"  # noqa: S105
    access = imap_access(cfg, {"PUBLISHER_IMAP_PASSWORD": "s3cret"})
    assert access is not None and access.password == "s3cret" and "s3cret" not in repr(access)  # noqa: S105
    with pytest.raises(ConfigError, match="PUBLISHER_IMAP_PASSWORD is empty or unset"):
        imap_access(cfg, {})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('host = "imap.example.gov.vn"\nusername = "p"\n', "imap.secrets: names no password"),
        (
            'host = "imap.example.gov.vn"\nusername = "p"\nsecrets = { password = "hunter2 x" }\n',
            "must name an environment variable",
        ),
        (
            'host = "imap.example.gov.vn"\nusername = "p"\nsecrets = { password = "PW" }\n'
            'security = "none"\n',
            "in clear",
        ),
        (
            'host = "imap.example.gov.vn"\nusername = "p"\nsecrets = { password = "PW" }\n'
            'mailbox = "Hộp thư"\n',
            "imap.mailbox",
        ),
        (
            'host = "imap.example.gov.vn"\nusername = "p"\nsecrets = { password = "PW" }\n'
            'poll_every = "often"\n',
            "imap.poll_every",
        ),
        (
            'host = "imap.example.gov.vn"\nusername = "p"\nsecrets = { password = "PW" }\n'
            'folder = "x"\n',
            "imap.folder: is not a known key",
        ),
    ],
)
def test_a_bad_imap_table_is_one_line_naming_the_key(
    campaign: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        with_imap(campaign, table)
    assert "\n" not in caught.value.line()


def test_the_url_overrides_the_connection_and_mailbox() -> None:
    s, password = imap_url(
        "imaps://pub%40stp:p%40ss@imap.example.gov.vn/Replies?processed=Done", None
    )
    assert (s.host, s.port, s.security, s.username, s.mailbox, s.processed) == (
        "imap.example.gov.vn",
        993,
        "ssl",
        "pub@stp",
        "Replies",
        "Done",
    )
    assert password == "p@ss" and s.origin == IMAP_URL_ENV  # noqa: S105
    s, _ = imap_url("imap://u:p@imap.example.gov.vn:1143?starttls=1", None)
    assert (s.port, s.security, s.mailbox) == (1143, "starttls", "INBOX")
    s, _ = imap_url("imap://u:p@127.0.0.1:8143/INBOX", None)
    assert s.security == "none"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("imap://u:topsecret@imap.example.gov.vn/INBOX", "in clear"),
        ("https://u:topsecret@imap.example.gov.vn/", "not an imap:// or imaps:// URL"),
        ("imaps://imap.example.gov.vn/", "needs a user name and a password"),
        ("imaps://u:topsecret@imap.example.gov.vn/?starttls=1", "TLS already"),
        ("imaps://u:topsecret@imap.example.gov.vn/?folder=x", "takes only"),
        ("imaps://u:topsecret@imap.example.gov.vn:99999/", "a port number"),
    ],
)
def test_a_bad_url_never_quotes_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        imap_url(url, None)
    assert "topsecret" not in caught.value.line()


def test_channels_check_has_an_imap_row_against_the_sandbox(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from publisher.cli.main import cli
    from tests.test_cli_channels import result_cell, rows

    with_imap(
        campaign,
        'host = "imap.example.gov.vn"\nusername = "p"\nsecrets = { password = "NOT_SET_PW" }\n',
    )
    monkeypatch.chdir(campaign)
    monkeypatch.delenv("NOT_SET_PW", raising=False)
    result = CliRunner().invoke(cli, ["channels", "check", "--sandbox"])
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("│ imap")]
    assert "ok" in row and "127.0.0.1" in row, result.stdout
    # without the sandbox, the real server's missing password is the row's one line
    result = CliRunner().invoke(cli, ["channels", "check"])
    assert result.exit_code == 1
    cell = result_cell(rows(result.stdout)["imap"])  # its wrapped lines joined
    assert cell.startswith("FAILED: ") and "NOT_SET_PW is empty or unset" in cell, cell
