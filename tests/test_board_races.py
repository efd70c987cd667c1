"""Two members doing the same thing at the same moment, on SQLite and on PostgreSQL: approving
one post, saving one report entry. Each thread is held, inside its transaction, just after it
has read what it is about to change, until the other has read too (or 2 s have passed: with
the rows locked, the other cannot read until the first has committed). Without the locks both
would read the old state on PostgreSQL and both write: a post approved twice, a value
overwritten without the form's "changed meanwhile" refusal (409), or a unique violation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from publisher.config import Config
from publisher.editorial.load import approve, load
from publisher.states import State
from publisher.store import approvals, users
from publisher.store import report_entries as stored
from publisher.store.db import Database
from publisher.store.models import Approval, AuditEntry, PostRow
from publisher.web import report_form
from publisher.web.auth import Viewer
from publisher.web.context import WebContext
from tests.fakes import together
from tests.test_web import PASSWORD

NOW = datetime(2024, 5, 31, tzinfo=UTC)


def held_after(real: Callable[..., Any], barrier: threading.Barrier) -> Callable[..., Any]:
    """``real``, then a wait for the other thread to get here too (2 s at most)."""

    def held(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        # BrokenBarrierError: the other is waiting for our lock: go on and commit
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=2)
        return result

    return held


def test_two_members_approving_one_post_at_once_approve_it_once(
    db: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(db, config, NOW, "vanphong")
    with db.read() as s:
        post = s.scalars(
            select(PostRow).where(PostRow.state == State.DRAFT, PostRow.due_at.is_not(None))
        ).first()
        assert post is not None
        pid = post.id
    barrier = threading.Barrier(2)
    monkeypatch.setattr(approvals, "of_post", held_after(approvals.of_post, barrier))
    reports = together(
        lambda: approve(db, [pid], everything=False, actor="tuan.la", now=NOW),
        lambda: approve(db, [pid], everything=False, actor="bientap", now=NOW),
    )
    assert not [r for r in reports if isinstance(r, Exception)], reports
    assert sorted(len(r.approved) for r in reports) == [0, 1], reports
    refused = next(r for r in reports if not r.approved)
    assert refused.refused == [(pid, "it is approved, only a draft can be approved")]
    with db.read() as s:
        assert len(s.scalars(select(Approval).where(Approval.post_id == pid)).all()) == 1
        audited = s.scalars(select(AuditEntry).where(AuditEntry.post_id == pid)).all()
        assert [a.action for a in audited] == ["approve"]
        assert s.get_one(PostRow, pid).state == State.APPROVED


def test_two_members_saving_one_entry_at_once_one_is_told_it_changed(
    db: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = WebContext(config, db)
    viewers = []
    for name in ("tuan.la", "bientap"):
        users.add_user(db, config, name, None, PASSWORD, actor="admin", now=NOW)
        account = users.find(db, config, name)
        assert account is not None
        viewers.append(Viewer(ctx, account, csrf="-", token="-"))  # noqa: S106 - not checked
    seen = report_form.digest("")  # both opened the form while the entry was empty
    barrier = threading.Barrier(2)
    monkeypatch.setattr(stored, "entries", held_after(stored.entries, barrier))

    def save(viewer: Viewer, value: str) -> list[str]:
        return report_form.save(ctx, viewer, {"fund.donors": value, "seen.fund.donors": seen})

    results = together(lambda: save(viewers[0], "90"), lambda: save(viewers[1], "80"))
    saved = [i for i, r in enumerate(results) if r == ["fund.donors"]]
    told = [r for r in results if isinstance(r, report_form.EntryError)]
    assert len(saved) == 1 and len(told) == 1, results
    assert told[0].status == 409
    with db.read() as s:
        entry = stored.entries(s)["fund.donors"]
        assert entry.value == ("90", "80")[saved[0]]
        audit_rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "report_entry"))
        assert len(audit_rows.all()) == 1
