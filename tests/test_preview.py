"""``preview`` reads an SQLite queue two ways (the standard library for speed, SQLAlchemy for any
URL): both must return the same posts in the same order, whatever the filters."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from publisher.config import Config
from publisher.documents import preview as pv
from publisher.editorial.load import approve, load
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import PostRow

NOW = datetime(2024, 5, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"channel": "zalo"},
        {"start": date(2024, 6, 10), "end": date(2024, 6, 12)},
        {"channel": "facebook", "start": date(2024, 6, 28)},
        {"include_cancelled": True},
    ],
)
def test_both_read_paths_agree(config: Config, filters: dict[str, object]) -> None:
    from publisher.store.db import open_database

    db: Database = open_database(config.database_url)  # the campaign's SQLite file
    load(db, config, NOW, "t")
    approve(db, [1, 2, 3], everything=False, actor="a", now=NOW)  # four eyes: not "t"
    with db.write() as s:  # a cancelled post and one with no time, to be filtered or kept
        rows = list(s.scalars(select(PostRow).order_by(PostRow.id).limit(6)))
        rows[4].state = State.CANCELLED
        rows[5].due_at, rows[5].plan_note = None, "did not fit"
    fast = pv.items_sqlite(config, **filters)  # type: ignore[arg-type]
    assert fast is not None
    assert fast == pv.items(db, config, **filters)  # type: ignore[arg-type]
    assert len(fast) > 0


def test_the_fast_path_declines_what_it_cannot_read(config: Config) -> None:
    assert pv.items_sqlite(config) is None  # no queue file yet: the ORM path creates it
