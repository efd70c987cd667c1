"""Exit statuses as the README states them: click's usage errors 2, every other error 1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakes import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["preview", "--nope"], "No such option '--nope'"),  # an unknown option
        (["queue", "show"], "Missing argument 'POST_ID'"),  # a missing argument
        (["queue", "show", "twelve"], "'twelve' is not a valid integer"),  # the wrong type
        (["preview", "--format", "pdf"], "'pdf' is not one of"),  # not one of the choices
        (["preview", "--from", "June"], "'June' is not a date"),
    ],
)
def test_usage_errors_exit_2(campaign: Path, args: list[str], says: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Usage: " in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["preview", "--channel", "tiktok"],  # an argument check
        ["load", "--config", "nope.toml"],  # the config
        ["status"],  # the database (none yet)
        ["approve"],
    ],
)
def test_every_other_error_exits_1_with_one_line(campaign: Path, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_the_readme_states_both_exit_statuses() -> None:
    readme = " ".join((ROOT / "README.md").read_text("utf-8").split())
    commands = readme.split("## Commands", 1)[1].split("### ", 1)[0]
    assert re.search(r"exits? with status 1", commands)
    assert re.search(
        r"unknown option.*missing argument.*wrong type.*exits? with status 2", commands
    )
