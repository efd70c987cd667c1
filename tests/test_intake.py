"""Adding, editing and importing content as a library (``editorial.intake``): each writes the
file(s), loads them in the same step, and writes nothing when anything is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher.config import Config
from publisher.editorial import intake
from publisher.editorial.load import load
from publisher.errors import InputError, Problems, PublisherError
from publisher.store.db import Database
from publisher.store.models import MessageRow

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)


@pytest.fixture
def loaded(db: Database, config: Config) -> Database:
    load(db, config, NOW, "vanphong")
    return db


def messages(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(MessageRow)) or 0)


def files(config: Config) -> set[Path]:
    return set(config.messages_dir.rglob("*.md"))


def test_add_writes_a_file_and_loads_it(loaded: Database, config: Config) -> None:
    before, count = files(config), messages(loaded)
    meta = {"kind": "slogan", "channels": ["facebook"], "title": "Trẻ em hôm nay"}
    path, report = intake.add(
        loaded, config, meta, "Trẻ em hôm nay, thế giới ngày mai.", actor="a", now=NOW
    )
    assert files(config) == before | {path} and path.parent.name == "slogans"
    assert len(report.added) == 1 and report.added[0].endswith(path.name)
    assert messages(loaded) == count + 1
    assert intake.render_file(meta, "x").startswith("---\n")


def test_add_refuses_an_unknown_kind_and_writes_nothing(loaded: Database, config: Config) -> None:
    before = files(config)
    with pytest.raises(InputError, match="'poem' is not a content kind"):
        intake.add(loaded, config, {"kind": "poem"}, "…", actor="a", now=NOW)
    assert files(config) == before


def test_an_edit_that_breaks_the_file_is_refused_and_the_file_kept(
    loaded: Database, config: Config
) -> None:
    path = sorted(files(config))[0]
    text = path.read_text(encoding="utf-8")
    with pytest.raises(PublisherError):
        intake.edit(loaded, config, path, "---\nkind: [unclosed\n---\nx\n", actor="a", now=NOW)
    assert path.read_text(encoding="utf-8") == text


def test_an_edit_outside_messages_is_refused(
    loaded: Database, config: Config, tmp_path: Path
) -> None:
    elsewhere = tmp_path.parent / "elsewhere.md"
    with pytest.raises(InputError):
        intake.edit(loaded, config, elsewhere, "---\nkind: slogan\n---\nx\n", actor="a", now=NOW)
    assert not elsewhere.exists()


def test_a_csv_import_writes_every_row_or_none(
    loaded: Database, config: Config, tmp_path: Path
) -> None:
    good = tmp_path / "june.csv"
    good.write_text(
        "kind,channels,title,body\n"
        'slogan,facebook,Một,"Trẻ em là hạnh phúc của gia đình."\n'
        'slogan,facebook,Hai,"Bảo vệ trẻ em là trách nhiệm của toàn xã hội."\n',
        encoding="utf-8",
    )
    count = messages(loaded)
    result = intake.import_csv(loaded, config, good, actor="a", now=NOW)
    assert len(result.files) == 2 and all(f.parent.name == "imported" for f in result.files)
    assert messages(loaded) == count + 2
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,channels,title,body\nslogan,facebook,Ba,Một.\npoem,facebook,Bốn,x\n")
    before = files(config)
    with pytest.raises(Problems, match="row 3: kind is 'poem'"):
        intake.import_csv(loaded, config, bad, actor="a", now=NOW)
    assert files(config) == before and messages(loaded) == count + 2


def test_an_empty_csv_is_refused(loaded: Database, config: Config, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("kind,channels,title,body\n", encoding="utf-8")
    with pytest.raises(InputError, match="has no rows"):
        intake.import_csv(loaded, config, empty, actor="a", now=NOW)
