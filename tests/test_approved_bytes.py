"""The bytes sent are the bytes approved: text altered in the database after its approval is
never sent, goes back to draft with the reason, and ``audit --verify`` names it."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from publisher.clock import FakeClock
from publisher.config import Config
from publisher.dispatch.dispatcher import Dispatcher
from publisher.editorial.load import RenderCheck, approve, load, message_of
from publisher.render import Renderer, fields_hash
from publisher.states import State
from publisher.store import audit
from publisher.store.db import Database
from publisher.store.history import last_causes
from publisher.store.models import AuditEntry, MessageRow, PostRow
from tests.fakes import FakePlatform, run

T0 = datetime(2024, 5, 31, 0, 0, tzinfo=UTC)
FORGED = "Nội dung chưa từng được duyệt: chuyển khoản vào tài khoản 0123456789."


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def platforms(clock: FakeClock, config: Config) -> dict[str, FakePlatform]:
    return {cid: FakePlatform(cid, clock.now) for cid in config.channels}


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    load(db, config, T0, "tester")
    approve(db, [], everything=True, actor="Lê Anh Tuấn", now=T0)
    return db


def dispatcher(
    db: Database, platforms: dict[str, FakePlatform], clock: FakeClock, config: Config
) -> Dispatcher:
    return Dispatcher(
        db,
        platforms,  # type: ignore[arg-type]
        clock,
        worker="w1",
        rng=random.Random(1),  # noqa: S311 - jitter in tests
        render_check=RenderCheck(config),  # as the daemon runs it
    )


def facebook_post(db: Database) -> PostRow:
    with db.read() as s:
        q = select(PostRow).where(PostRow.channel == "facebook").order_by(PostRow.due_at)
        return s.scalars(q.limit(1)).one()


def alter_fields(db: Database, post_id: int, fields: dict[str, str]) -> None:
    """What anyone who can write the database can do: a raw UPDATE, no publisher code."""
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE post SET fields = :f WHERE id = :id"),
            {"f": json.dumps(fields, ensure_ascii=False), "id": post_id},
        )


def cause(db: Database, post_id: int) -> str:
    with db.read() as s:
        return last_causes(s, [post_id])[post_id]


def test_fields_hash_is_the_render_hash(config: Config, queue: Database) -> None:
    with queue.read() as s:
        for p in s.scalars(select(PostRow)):
            assert fields_hash(p.fields) == p.render_hash == p.approved_hash


@pytest.mark.parametrize("state", [State.APPROVED, State.RETRYING])
def test_text_altered_in_the_database_after_approval_is_not_sent(
    queue: Database,
    config: Config,
    platforms: dict[str, FakePlatform],
    clock: FakeClock,
    state: State,
) -> None:
    p = facebook_post(queue)
    assert p.due_at is not None
    alter_fields(queue, p.id, {**p.fields, "message": FORGED})
    if state == State.RETRYING:
        with queue.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE post SET state = 'retrying', attempt = 1, next_attempt_at = due_at"
                    " WHERE id = :id"
                ),
                {"id": p.id},
            )
    # caught before anything is sent: verify names the post
    found = audit.verify(queue)
    assert not found.ok
    assert any(f"post {p.id} " in problem for problem in found.problems), found.problems

    clock.set(p.due_at)
    report = dispatcher(queue, platforms, clock, config).run_once()
    assert platforms["facebook"].calls == []
    assert report.claimed == 0
    with queue.read() as s:
        row = s.get_one(PostRow, p.id)
        assert row.state == State.DRAFT
        revoke = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.post_id == p.id, AuditEntry.action == "revoke")
            .order_by(AuditEntry.id.desc())
        ).first()
    why = cause(queue, p.id)
    assert "altered in the database" in why and "nothing was sent" in why
    assert revoke is not None and revoke.detail == why
    # and after the pass, the trail still says it happened
    after = audit.verify(queue)
    assert any(f"post {p.id} " in problem for problem in after.problems), after.problems


def test_a_forged_approval_whose_hashes_all_agree_is_not_sent(
    queue: Database,
    config: Config,
    platforms: dict[str, FakePlatform],
    clock: FakeClock,
) -> None:
    """The attacker rewrites the message, the post's fields and every hash consistently: only
    the audit trail still holds what was approved."""
    p = facebook_post(queue)
    assert p.due_at is not None
    with queue.read() as s:
        message = s.get_one(MessageRow, p.message_id)
        forged_message = message_of(message)
    forged = Renderer(config).render(replace(forged_message, body=FORGED), "facebook")
    with queue.engine.begin() as conn:
        conn.execute(
            text("UPDATE message SET body = :b WHERE id = :id"), {"b": FORGED, "id": p.message_id}
        )
        conn.execute(
            text(
                "UPDATE post SET fields = :f, text = :t, render_hash = :h, approved_hash = :h"
                " WHERE id = :id"
            ),
            {
                "f": json.dumps(dict(forged.fields), ensure_ascii=False),
                "t": forged.text,
                "h": forged.hash,
                "id": p.id,
            },
        )
    assert not audit.verify(queue).ok
    clock.set(p.due_at)
    dispatcher(queue, platforms, clock, config).run_once()
    assert platforms["facebook"].calls == []
    with queue.read() as s:
        assert s.get_one(PostRow, p.id).state == State.DRAFT
    assert "audit trail" in cause(queue, p.id)


def test_the_publish_entry_carries_the_hash_of_what_was_sent(
    queue: Database,
    config: Config,
    platforms: dict[str, FakePlatform],
    clock: FakeClock,
) -> None:
    p = facebook_post(queue)
    assert p.due_at is not None
    clock.set(p.due_at)
    dispatcher(queue, platforms, clock, config).run_once()
    assert platforms["facebook"].calls == [p.idempotency_key]
    with queue.read() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.post_id == p.id, AuditEntry.action == "publish")
        ).one()
    assert entry.content_hash == fields_hash(p.fields) == p.approved_hash
    assert audit.verify(queue).ok


def test_audit_verify_names_a_post_whose_text_was_updated_in_the_database(
    campaign: Path,
) -> None:
    assert run("load", "--as", "vanphong").exit_code == 0
    assert run("approve", "--all", "--as", "tuan.la").exit_code == 0
    assert run("audit", "--verify").exit_code == 0
    with sqlite3.connect(campaign / "publisher.db") as conn:
        fields = json.loads(conn.execute("SELECT fields FROM post WHERE id = 7").fetchone()[0])
        main = next(iter(fields))
        fields[main] = FORGED
        conn.execute(
            "UPDATE post SET fields = ? WHERE id = 7", (json.dumps(fields, ensure_ascii=False),)
        )
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert "error: audit: post 7 " in out.stderr
    assert "altered" in out.stderr
