"""Shared fixtures: a throw-away copy of the campaign with its own SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.config import Config, load_config
from publisher.db import Database, open_database

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped campaign (config, messages, templates) in a temp folder."""
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    for name in ("messages", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def config(campaign: Path) -> Config:
    return load_config(campaign / "config.toml")


@pytest.fixture
def db(config: Config) -> Iterator[Database]:
    database = open_database(config.database_url)
    yield database
    database.close()
