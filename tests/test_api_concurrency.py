"""The board works through the API while a rehearsal publishes from the same SQLite file.

A June rehearsal (``publisher run --rehearse``, a subprocess, against an in-process sandbox)
runs while the API, served by uvicorn in a thread on the rehearsal's database, is used by two
approvers' clients approving every draft (in bulk and one by one), an editor rescheduling
some, and two readers listing and opening posts. Afterwards: no 5xx and no "database is locked"
anywhere, every approval made through the API is in the database and in the audit trail under
the approver, and every approved post was published exactly once (its history and the
sandbox's record agree).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from publisher.config import Config, load_config
from publisher.editorial.load import approve, load
from publisher.sandbox.server import Sandbox
from publisher.states import State
from publisher.store import audit_key, users
from publisher.store.db import Database, open_database
from publisher.store.models import AuditEntry, PostEvent, PostRow
from publisher.web.app import create_app
from publisher.web.context import WebContext
from tests.fakes import Daemons, anchor

REHEARSAL = "40s"  # June in 40 real seconds
BUDGET = 120.0  # real seconds for the whole rehearsal
APPROVER, EDITOR = "Lê Anh Tuấn", "Ban biên tập"


class Served:
    """An app served by uvicorn in a thread, on a port of its own."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> Served:
        self.thread.start()
        limit = time.monotonic() + 10
        while not self.server.started and time.monotonic() < limit:
            time.sleep(0.02)
        assert self.server.started
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class Board:
    """The members' clients; every answer they got is kept for the checks."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url, self.tokens = url, tokens
        self.answers: list[tuple[str, int, str]] = []
        self.approved: list[int] = []
        self.rescheduled: list[int] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def client(self, who: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=90)

    def keep(self, what: str, r: httpx.Response) -> Any:
        with self.lock:
            self.answers.append((what, r.status_code, r.text[:300]))
        return r.json()

    def drafts(self, c: httpx.Client, limit: int) -> list[int]:
        page = self.keep("list", c.get("/posts", params={"state": "draft", "limit": limit}))
        return [p["id"] for p in page["items"]]

    def approve(self, one_by_one: bool) -> None:
        with self.client(APPROVER) as c:
            for _round in range(40):
                ids = self.drafts(c, 6)
                if not ids:
                    return
                if one_by_one:
                    for pid in ids[:3]:
                        out = self.keep("approve", c.post(f"/posts/{pid}/approve"))
                        if out.get("state") == "approved":
                            with self.lock:
                                self.approved.append(pid)
                else:
                    out = self.keep("bulk", c.post("/posts/approve", json={"ids": ids}))
                    with self.lock:
                        self.approved.extend(out["approved"])

    def reschedule(self) -> None:
        """Five facebook drafts moved to the end of June (slots at 07:30, 11:30, 20:00)."""
        with self.client(EDITOR) as c:
            page = self.keep("list", c.get("/posts", params={"channel": "facebook"}))
            ids = [p["id"] for p in page["items"] if p["state"] == "draft"][:5]
            for n, pid in enumerate(ids):
                at = f"2024-06-{26 + n} 11:30"
                out = self.keep(
                    "reschedule", c.post(f"/posts/{pid}/reschedule", json={"at": at, "force": True})
                )
                if "due_at" in out:
                    with self.lock:
                        self.rescheduled.append(pid)

    def read(self) -> None:
        with self.client(EDITOR) as c:
            while not self.done.is_set():
                page = self.keep("list", c.get("/posts", params={"limit": 50}))
                for p in page["items"][:3]:
                    self.keep("show", c.get(f"/posts/{p['id']}"))
                self.keep("status", c.get("/status"))


@pytest.fixture
def queue(config: Config) -> tuple[Config, list[int]]:
    """The campaign's queue loaded, with an approver's and an editor's account. The posts of
    the campaign's last days are approved before the rehearsal starts (a rehearsal with nothing
    approved ends at once, before any API call could land), so it lives to the end of June
    while the API approves the rest; those are the ones the test follows."""
    db = open_database(config.database_url)
    now = datetime.now(UTC)
    load(db, config, now, "vanphong")
    with db.read() as s:
        last_days = list(
            s.scalars(select(PostRow.id).where(PostRow.due_at >= datetime(2024, 6, 27, tzinfo=UTC)))
        )
    assert last_days
    done = approve(db, last_days, everything=False, actor=APPROVER, now=now, role="approver")
    assert done.approved == last_days, done.refused
    for name in (APPROVER, EDITOR):
        users.add_user(db, config, name, None, None, actor="admin", now=now)
    db.close()
    return config, last_days


def tokens_in(db: Database, config: Config) -> dict[str, str]:
    now = datetime.now(UTC)
    return {n: users.new_token(db, config, n, actor="admin", now=now) for n in (APPROVER, EDITOR)}


def test_the_board_approves_through_the_api_while_a_rehearsal_publishes(
    queue: tuple[Config, list[int]], campaign: Path, tmp_path: Path
) -> None:
    config, before = queue
    target = campaign / "rehearsal.db"
    with Sandbox(record_path=tmp_path / "record.jsonl", seed=3) as sandbox:
        daemons = Daemons(campaign, sandbox.url, target, REHEARSAL)
        proc = daemons.start()
        try:
            clock = anchor(target, daemons, proc)
            config = load_config(campaign / "config.toml")
            # as `publisher web` must open it: with the key of the trail the daemon appends to
            db = Database(f"sqlite:///{target}", audit_key=audit_key.from_environment(config))
            app = create_app(WebContext(config, db, clock))  # the API mounted at /api/v1
            with Served(app) as served:
                board = Board(served.url, tokens_in(db, config))
                workers = [
                    threading.Thread(target=board.approve, args=(False,)),
                    threading.Thread(target=board.approve, args=(True,)),
                    threading.Thread(target=board.reschedule),
                    threading.Thread(target=board.read),
                    threading.Thread(target=board.read),
                ]
                for w in workers:
                    w.start()
                for w in workers[:3]:
                    w.join(timeout=60)
                board.done.set()
                for w in workers[3:]:
                    w.join(timeout=60)
            daemons.wait(proc, time.monotonic() + BUDGET, "the rehearsal")
        finally:
            daemons.kill_all()
        records = sandbox.recorder.records()
    log = daemons.output(proc)
    assert "locked" not in log and "Traceback" not in log, daemons.tail(proc)
    failed = [a for a in board.answers if a[1] >= 500 or "locked" in a[2]]
    assert not failed, (Counter((a[0], a[1]) for a in board.answers), failed[:5])
    assert Counter(a[0] for a in board.answers)["show"] > 0
    check_published_once(db, board, records, before)
    db.close()


def check_published_once(
    db: Database, board: Board, records: list[dict[str, Any]], before: list[int]
) -> None:
    """Every approval made through the API is the approver's in the queue and the audit trail,
    and every approved post went out exactly once."""
    approved = sorted(board.approved)
    assert approved and len(approved) == len(set(approved))
    assert board.rescheduled, board.answers
    # Each post's item on its platform; for the email channel (portal_pbgdpl), its mail to the
    # desk (the remote id is its Message-ID) and, apart, the desk's publication of it.
    created = Counter(
        r["remote_id"]
        for r in records
        if r["kind"] not in ("broadcast", "media") and not r["kind"].startswith("desk-")
    )
    desk = Counter(r["fields"]["post"] for r in records if r["kind"] == "desk-reply")
    with db.read() as s:
        posts = {p.id: p for p in s.scalars(select(PostRow).where(PostRow.id.in_(approved)))}
        audit = Counter(
            e.post_id
            for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "approve"))
            if e.actor == APPROVER
        )
        published = Counter(
            s.scalars(select(PostEvent.post_id).where(PostEvent.to_state == State.PUBLISHED))
        )
        drafts = list(s.scalars(select(PostRow.id).where(PostRow.state == State.DRAFT)))
    assert not drafts, (
        f"drafts left unapproved: {drafts}; {[a for a in board.answers if a[1] != 200][:6]}"
    )
    for pid in approved:
        p = posts[pid]
        assert p.approved_by == APPROVER and audit[pid] == 1, pid
        assert p.state == State.PUBLISHED, (pid, p.state, p.last_error)
        assert published[pid] == 1 and created[str(p.remote_id)] == 1, pid
        if p.channel == "portal_pbgdpl":  # handed off, then confirmed by the desk's reply
            assert desk[p.idempotency_key] == 1 and p.remote_url, pid
    # nothing else went out: the posts approved through the API and those approved before
    assert sum(created.values()) == len(approved) + len(before), json.dumps(created)
    assert desk and set(desk.values()) == {1}, desk  # the desk published each article once
    moved = [posts[pid] for pid in board.rescheduled if pid in posts]
    assert all(p.due_at is not None and p.due_at.day >= 26 for p in moved)
