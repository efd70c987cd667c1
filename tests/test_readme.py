"""The README's two commands are what CI and a newcomer run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick)


def test_quick_start_is_exactly_two_commands() -> None:
    main, tests = commands()
    assert "publisher load" in main and "publisher preview" in main
    assert "pytest" in tests


def test_ci_runs_the_readmes_test_command() -> None:
    _, tests = commands()
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    assert tests in ci
