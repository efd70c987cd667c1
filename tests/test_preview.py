"""``preview`` reads an SQLite queue two ways (the standard library for speed, SQLAlchemy for any
URL): both must return the same posts in the same order, whatever the filters."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


def test_the_media_field_is_the_renderers() -> None:
    from publisher.documents import pictures
    from publisher.render import MEDIA_FIELD

    assert pictures.MEDIA_FIELD == MEDIA_FIELD


def test_a_view_without_the_fields_still_names_the_pictures(db: Database, config: Config) -> None:
    """A card or a list reads no text and no field but ``media``: it can show the cover."""
    load(db, config, NOW, "t")
    whole = pv.items(db, config)
    for lean in (pv.items(db, config, bare=True), pv.items(db, config, fields=False)):
        assert [i.id for i in lean] == [i.id for i in whole]
        for full, light in zip(whole, lean, strict=True):
            assert light.fields == {"media": full.fields["media"]}
    assert pv.items(db, config, bare=True)[0].text == ""


def test_json_names_each_picture_and_the_table_shows_them(config: Config) -> None:
    import io
    import json

    from rich.console import Console

    from publisher.store.db import open_database

    db = open_database(config.database_url)
    load(db, config, NOW, "t")
    entries = pv.items(db, config)
    data = json.loads(pv.to_json(entries, config))
    assert len(data) == 72
    for post in data:
        (cover,) = post["pictures"]
        assert json.loads(post["fields"]["media"])[0]["sha256"] == cover["sha256"]
        assert (
            cover["role"] == "cover" and cover["src"] == "media/thang-hanh-dong-vi-tre-em-2024.jpg"
        )
        assert (cover["width"], cover["height"], cover["mime"]) == (1200, 630, "image/jpeg")
    out = io.StringIO()
    pv.render_table(entries, config, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "┃ Ảnh ┃" in text and text.count("│ bìa │") == 72
    (line,) = [x for x in text.splitlines() if x.startswith("• ")]
    assert line.startswith(
        f"• Ảnh bìa · {cover['name']} · 1200×630 px · 92 kB · 72 bài — “Ảnh bìa Tháng hành động"
    )
    assert "Ảnh dùng trong các bài (1):" in text


def test_the_table_cell_counts_a_posts_pictures() -> None:
    from publisher.documents.pictures import Shown

    cover, image = Shown("cover", "", "media/a.jpg"), Shown("image", "", "media/b.jpg")
    assert pv.pictures_cell([cover, image, image]) == "bìa + 2"
    assert pv.pictures_cell([image, image]) == "2 ảnh"
    assert pv.pictures_cell([cover]) == "bìa"
    assert pv.pictures_cell([]) == "–"


def _rich_table(entries: list[pv.Item], config: Config) -> str:
    import io

    from rich.console import Console

    out = io.StringIO()
    pv.render_table(entries, config, Console(file=out, width=160, color_system=None))
    return out.getvalue()


def test_the_plain_table_is_richs_on_the_seed_campaign(config: Config) -> None:
    """``publisher preview`` to a file or a pipe lays the table out without rich: the same
    characters as rich's layout, for the whole seed campaign (drafts, approved, cancelled)."""
    from publisher.store.db import open_database

    db = open_database(config.database_url)
    load(db, config, NOW, "t")
    approve(db, [1, 2, 3], everything=False, actor="a", now=NOW)
    with db.write() as s:
        s.scalars(select(PostRow).where(PostRow.id == 5)).one().state = State.CANCELLED
    for entries in (pv.items(db, config), pv.items(db, config, include_cancelled=True), []):
        plain = pv.plain_table(entries, config)
        assert plain is not None
        assert plain == _rich_table(entries, config)


_CHARS = "aăâđêôơưAĐỆỳýỹỷỵ Ếà ạ0123456789·–—“”…•-_/.,()'\"![]:\\\t\n中\u0301\u00ad😀"
_WORDS = st.text(alphabet=st.sampled_from(_CHARS), max_size=90)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    titles=st.lists(_WORDS, min_size=1, max_size=4),
    texts=st.lists(_WORDS, min_size=1, max_size=4),
    ids=st.lists(st.integers(1, 10**12), min_size=1, max_size=4),
    minutes=st.lists(st.integers(0, 60 * 24 * 40), min_size=1, max_size=4),
    unplanned=st.booleans(),
)
def test_the_plain_table_is_richs_or_declines(
    config: Config,
    titles: list[str],
    texts: list[str],
    ids: list[int],
    minutes: list[int],
    unplanned: bool,
) -> None:
    """Whatever the text (Vietnamese, markup brackets, emoji codes, wide or combining
    characters, tabs, lines longer than the page), ``plain_table`` prints rich's characters
    or declines (None), and it lays out plain Vietnamese itself."""
    from datetime import timedelta

    channels = list(config.channels)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    entries = [
        pv.Item(
            ids[n % len(ids)],
            None if unplanned and n == 0 else start + timedelta(minutes=minutes[n % len(minutes)]),
            channels[n % len(channels)],
            f"m{n}",
            ("slogan", "article")[n % 2],
            titles[n % len(titles)],
            texts[n % len(texts)],
            {},
            State.DRAFT,
            "did not fit",
        )
        for n in range(max(len(titles), len(texts)))
    ]
    plain = pv.plain_table(entries, config)
    if plain is not None:
        assert plain == _rich_table(entries, config)
    simple = all(
        set(t) <= set("aăâđêôơưAĐỆỳýỹỷỵ Ếà ạ0123456789·–—“”…•-_/.,()'\"!")
        for t in (*titles, *texts)
    )
    if simple and not unplanned:
        assert plain is not None


def test_a_page_is_the_slice_of_the_whole_list_and_counts_it(db: Database, config: Config) -> None:
    """``page`` orders by three narrow columns and reads only its posts: the same posts, in
    the same order, as slicing ``items``; its total is the count of them all."""
    load(db, config, NOW, "t")
    with db.write() as s:  # one cancelled (left out), one without a time (last)
        first, second = s.scalars(select(PostRow).order_by(PostRow.id).limit(2))
        first.state = State.CANCELLED
        second.due_at = None
    every = pv.items(db, config, fields=False)
    for offset, limit in ((0, 10), (5, 30), (60, 50), (71, 1), (500, 5)):
        total, found = pv.page(db, config, offset, limit, fields=False)
        assert total == len(every) == 71
        assert found == every[offset : offset + limit]
    total, found = pv.page(db, config, 0, 5, channel="facebook")
    assert found == pv.items(db, config, channel="facebook")[:5] and total > 5


def test_a_renders_pictures_are_read_once_and_follow_its_hash(db: Database, config: Config) -> None:
    """The ``media`` a card shows is kept by render hash: a new render is read anew."""
    load(db, config, NOW, "t")
    pv.items(db, config, bare=True)
    with db.write() as s:
        post = s.scalars(select(PostRow).order_by(PostRow.id).limit(1)).one()
        post.fields = {**post.fields, "media": "[]"}
        post.render_hash = "0" * 64
    assert pv.items(db, config, bare=True, only=[post.id])[0].fields == {"media": "[]"}
