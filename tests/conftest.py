"""Shared fixtures: a throw-away copy of the campaign with its own SQLite database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from publisher.config import Config, load_config
from publisher.store.db import Database, open_database

# The suite reads the interface in English (PUBLISHER_LANG=en), whatever the developer's own
# setting: its assertions quote the English text. This process's and every child's (they inherit
# os.environ); tests/test_i18n.py unsets it to see the Vietnamese a user sees by default.
os.environ["PUBLISHER_LANG"] = "en"

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)


PG_URL = os.environ.get("PUBLISHER_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def pg_schema_url(base: str, schema: str) -> str:
    """``base`` with every connection's search_path set to ``schema``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema for one test (dropped afterwards), as a database URL."""
    if not PG_URL:
        pytest.skip("PUBLISHER_TEST_DATABASE_URL is not set (.ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for one test: a SQLite file, or a new PostgreSQL schema."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue.db'}"
        return
    with pg_schema() as url:
        yield url


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped campaign (config, messages, templates) in a temp folder."""
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("PUBLISHER_SMTP_URL", raising=False)  # no mail unless a test sets it up
    monkeypatch.delenv("PUBLISHER_IMAP_URL", raising=False)  # nor replies by IMAP
    monkeypatch.setenv("PUBLISHER_AS", "tuan.la")  # the board's approver, as the commands' default
    # An installation already set up: the audit key exists (tests/test_audit_key.py unsets it
    # to see a new user's first command make one).
    monkeypatch.setenv("PUBLISHER_AUDIT_KEY", "5e" * 32)
    for name in ("messages", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def config(campaign: Path) -> Config:
    return load_config(campaign / "config.toml")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty queue at the newest schema, migrated once per test session (the migrations
    themselves are tested in tests/test_db.py); each test's SQLite queue starts as a copy."""
    path = tmp_path_factory.mktemp("template") / "queue.db"
    open_database(f"sqlite:///{path}").close()  # closing checkpoints the WAL into the file
    return path


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, config: Config, sqlite_template: Path) -> Iterator[Database]:
    """The queue of the test campaign, on SQLite (a copy of the migrated template) and (when
    configured) on PostgreSQL (a new schema, migrated)."""
    if request.param == "sqlite":
        target = Path(config.database_url.removeprefix("sqlite:///"))
        shutil.copyfile(sqlite_template, target)
        target.chmod(0o600)
        database = open_database(config.database_url)
        yield database
        database.close()
        return
    with pg_schema() as url:
        database = open_database(url)
        try:
            yield database
        finally:
            database.close()
