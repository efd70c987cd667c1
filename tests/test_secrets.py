"""Secrets from the environment and the .env file: the file's permissions are checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.cli.main import cli
from publisher.config import Config
from publisher.config.env import environment

VALUE = "EAAB-not-real"


def write_env(campaign: Path, mode: int) -> Path:
    path = campaign / ".env"
    path.write_text(f"PUBLISHER_FACEBOOK_PAGE_TOKEN={VALUE}\n", encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("mode", "said"),
    [(0o644, "readable"), (0o604, "readable"), (0o640, "readable"), (0o620, "writable")],
)
def test_an_env_file_others_can_read_or_write_is_warned_about(
    config: Config, campaign: Path, capsys: pytest.CaptureFixture[str], mode: int, said: str
) -> None:
    path = write_env(campaign, mode)
    env = environment(config, {})
    assert env["PUBLISHER_FACEBOOK_PAGE_TOKEN"] == VALUE  # still read
    err = capsys.readouterr().err
    assert err == f"warning: {path} is {said} by other users: chmod 600 {path}\n"
    assert "EAAB" not in err


def test_a_private_env_file_is_not_warned_about(
    config: Config, campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_env(campaign, 0o600)
    assert environment(config, {})["PUBLISHER_FACEBOOK_PAGE_TOKEN"] == VALUE
    assert capsys.readouterr().err == ""


def test_channels_check_warns_once_about_a_world_readable_env_file(campaign: Path) -> None:
    path = write_env(campaign, 0o644)
    result = CliRunner().invoke(cli, ["channels", "check", "--config", "config.toml"])
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {path} is readable by other users: chmod 600 {path}"]
    assert os.stat(path).st_mode & 0o777 == 0o644  # warned, not changed behind the operator
