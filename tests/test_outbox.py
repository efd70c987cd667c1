from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from publisher.config import Config
from publisher.editorial.load import approve, load
from publisher.errors import InputError, Problems
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import MessageRow, PostEvent, PostRow

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def dump(db: Database) -> list[tuple[object, ...]]:
    """Every row of every table, to compare the database before and after."""
    rows: list[tuple[object, ...]] = []
    with db.engine.connect() as conn:
        for table in ("message", "post", "post_event"):
            rows += [(table, *r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]  # noqa: S608
    return rows


def posts(db: Database) -> list[PostRow]:
    with db.read() as s:
        return list(s.scalars(select(PostRow).order_by(PostRow.id)))


def test_load_creates_every_post_inside_the_window(db: Database, config: Config) -> None:
    report = load(db, config, NOW, "tester")
    assert len(report.added) == 14 and report.unplaced == []
    all_posts = posts(db)
    assert len(all_posts) == 6 * 2 * 4 + 8 * 1 * 3
    start = datetime(2024, 6, 1, tzinfo=config.tz)
    end = datetime(2024, 7, 1, tzinfo=config.tz)
    with db.read() as s:
        per_message = Counter(
            (p.message.kind, p.message.key, p.channel) for p in s.scalars(select(PostRow))
        )
    for (kind, _key, _channel), n in per_message.items():
        assert n == (2 if kind == "slogan" else 1)
    assert len({(k, c) for k, _, c in per_message}) == 2 * 4 - 1  # slogan×4, article×3 channels
    for p in all_posts:
        assert p.state == State.DRAFT
        assert p.due_at is not None and start <= p.due_at < end
        assert p.due_at.tzinfo is not None


def test_load_twice_changes_nothing(db: Database, config: Config) -> None:
    load(db, config, NOW, "tester")
    before = dump(db)
    report = load(db, config, LATER, "tester")
    assert not report.changed
    assert report.unchanged == 14
    assert dump(db) == before


def test_edit_updates_unpublished_posts_and_revokes_approval(
    db: Database, config: Config, campaign: Path
) -> None:
    load(db, config, NOW, "tester")
    with db.read() as s:
        slogan_posts = list(
            s.scalars(
                select(PostRow)
                .join(MessageRow)
                .where(MessageRow.key == "slogans/03-toan-dan-cham-soc-giao-duc-bao-ve")
            )
        )
    target = slogan_posts[0]
    approve(db, [target.id], everything=False, actor="lanh.dao", now=NOW)
    path = campaign / "messages" / "slogans" / "03-toan-dan-cham-soc-giao-duc-bao-ve.md"
    path.write_text(path.read_text("utf-8").replace("Toàn dân", "Cả nước"), "utf-8")
    report = load(db, config, LATER, "tester")
    assert report.updated == ["messages/slogans/03-toan-dan-cham-soc-giao-duc-bao-ve.md"]
    assert report.revoked == [target.id]
    assert report.rerendered == len(slogan_posts)
    with db.read() as s:
        p = s.get_one(PostRow, target.id)
        assert p.state == State.DRAFT
        assert "Cả nước chăm sóc" in p.text
        assert p.due_at == target.due_at  # revoking does not reshuffle the calendar
        causes = [e.cause for e in p.events]
    assert causes[-1] == "load: approval revoked, the text changed"
    assert "approved by lanh.dao" in causes


def test_removed_file_cancels_its_posts_and_keeps_history(
    db: Database, config: Config, campaign: Path
) -> None:
    load(db, config, NOW, "tester")
    path = campaign / "messages" / "articles" / "06-phong-chong-duoi-nuoc.md"
    saved = path.read_text("utf-8")
    path.unlink()
    report = load(db, config, LATER, "tester")
    assert report.removed == ["messages/articles/06-phong-chong-duoi-nuoc.md"]
    assert len(report.cancelled) == 3
    with db.read() as s:
        rows = list(
            s.scalars(
                select(PostRow)
                .join(MessageRow)
                .where(MessageRow.key == "articles/06-phong-chong-duoi-nuoc")
            )
        )
        assert [p.state for p in rows] == [State.CANCELLED] * 3
        assert all(p.cancel_cause and "was removed" in p.cancel_cause for p in rows)
        assert (
            s.scalars(
                select(MessageRow.status).where(
                    MessageRow.key == "articles/06-phong-chong-duoi-nuoc"
                )
            ).one()
            == "removed"
        )
    path.write_text(saved, "utf-8")
    report = load(db, config, LATER + timedelta(hours=1), "tester")
    assert report.revived == 3
    assert {p.state for p in posts(db)} == {State.DRAFT}


def test_a_bad_file_aborts_the_load_with_nothing_written(
    db: Database, config: Config, campaign: Path
) -> None:
    load(db, config, NOW, "tester")
    before = dump(db)
    good = campaign / "messages" / "articles" / "02-quyen-tre-em.md"
    good.write_text(good.read_text("utf-8").replace("Luật Trẻ em", "Luật Trẻ em mới"), "utf-8")
    (campaign / "messages" / "articles" / "99-bad.md").write_text("---\nkind: [\n---\nx\n", "utf-8")
    with pytest.raises(Problems) as info:
        load(db, config, LATER, "tester")
    assert "messages/articles/99-bad.md: front matter is not valid YAML" in str(info.value)
    assert dump(db) == before


def test_a_bad_template_aborts_the_load(db: Database, config: Config, campaign: Path) -> None:
    (campaign / "templates" / "zalo" / "article.j2").write_text(
        "{% block title %}{{ message.nope }}{% endblock %}", "utf-8"
    )
    with pytest.raises(Problems, match="templates/zalo/article.j2"):
        load(db, config, NOW, "tester")
    assert dump(db) == []


def test_approved_and_hand_set_posts_are_never_moved(
    db: Database, config: Config, campaign: Path
) -> None:
    load(db, config, NOW, "tester")
    approve(db, [], everything=True, actor="lanh.dao", now=NOW)
    before = {p.id: p.due_at for p in posts(db)}
    extra = campaign / "messages" / "articles" / "09-them.md"
    extra.write_text(
        '---\nkind: article\ntitle: "Bài thêm"\nsummary: "Tóm tắt."\npinned: 2024-06-01\n---\nNội dung.\n',
        "utf-8",
    )
    report = load(db, config, LATER, "tester")
    assert report.created == 3
    after = {p.id: p.due_at for p in posts(db)}
    assert all(after[i] == when for i, when in before.items())
    # 01/6 already has the Zalo article (cap 1) and portal/Facebook have room: say so, don't drop.
    assert [reason for _, reason in report.unplaced] == [
        "pinned to 01/06/2024 but zalo has no free slot that day (at most 1 posts a day, slots 09:00, 19:30)"
    ]


def test_approve_records_who_when_and_what(db: Database, config: Config) -> None:
    load(db, config, NOW, "tester")
    report = approve(db, [1, 2, 2], everything=False, actor="pgd.tuan", now=LATER)
    assert report.approved == [1, 2]
    again = approve(db, [1], everything=False, actor="pgd.tuan", now=LATER)
    assert again.refused == [(1, "it is approved, only a draft can be approved")]
    with pytest.raises(InputError, match="no post has id 9999"):
        approve(db, [9999], everything=False, actor="x", now=LATER)
    with db.read() as s:
        p = s.get_one(PostRow, 1)
        assert (p.state, p.approved_by, p.approved_at) == (State.APPROVED, "pgd.tuan", LATER)
        assert p.approved_hash == p.render_hash
        events = list(s.scalars(select(PostEvent).where(PostEvent.post_id == 1)))
    assert [(e.from_state, e.to_state, e.actor) for e in events] == [
        (None, "draft", "tester"),
        ("draft", "draft", "tester"),
        ("draft", "approved", "pgd.tuan"),
    ]
    everything = approve(db, [], everything=True, actor="pgd.tuan", now=LATER)
    assert len(everything.approved) == len(posts(db)) - 2
    assert {p.state for p in posts(db)} == {State.APPROVED}


def test_disabling_a_channel_cancels_its_drafts(
    db: Database, config: Config, campaign: Path
) -> None:
    load(db, config, NOW, "tester")
    cfg_path = campaign / "config.toml"
    cfg_path.write_text(
        cfg_path.read_text("utf-8").replace(
            'adapter = "zalo"', 'adapter = "zalo"\nenabled = false'
        ),
        "utf-8",
    )
    from publisher.config import load_config

    report = load(db, load_config(cfg_path), LATER, "tester")
    assert len(report.cancelled) == 6 * 2 + 8
    assert all("channel zalo is disabled" in cause for _, cause in report.cancelled)
