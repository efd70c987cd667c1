"""The keyed audit chain: whoever can write the database cannot rewrite the trail unseen.

HMAC-SHA256 with PUBLISHER_AUDIT_KEY (environment or .env, never the database); ``--expect``
checks a head the daemon logged; an unkeyed chain is re-keyed once, with an entry saying so.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select

from publisher.app import make_dispatcher
from publisher.clock import FakeClock
from publisher.config import Config
from publisher.dispatch.daemon import HEAD_EVERY, Daemon
from publisher.editorial.load import approve, load
from publisher.errors import PublisherError
from publisher.store import audit
from publisher.store.audit_key import KEY_ENV, key_id, parse_key
from publisher.store.db import Database, open_database
from publisher.store.models import AuditEntry, AuditHead, PostRow
from tests.fakes import FakePlatform, run

KEY = "a1" * 32
OTHER = "b2" * 32
T0 = datetime(2024, 5, 31, tzinfo=UTC)


def url(campaign: Path) -> str:
    return f"sqlite:///{campaign / 'publisher.db'}"


def head(campaign: Path) -> tuple[int, str]:
    with sqlite3.connect(campaign / "publisher.db") as conn:
        last_id, last_hash = conn.execute("SELECT last_id, last_hash FROM audit_head").fetchone()
    return int(last_id), str(last_hash)


def count(campaign: Path) -> int:
    with sqlite3.connect(campaign / "publisher.db") as conn:
        return int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])


@pytest.fixture
def keyed(campaign: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The campaign loaded and approved with PUBLISHER_AUDIT_KEY in the environment."""
    monkeypatch.setenv(KEY_ENV, KEY)
    assert run("load", "--as", "vanphong").exit_code == 0
    assert run("approve", "--all", "--as", "tuan.la").exit_code == 0
    return campaign


def rewrite(campaign: Path, key: bytes | None, change: Callable[[AuditEntry], None]) -> None:
    """Rewrite the trail as someone with write access to the database would: change entries,
    then recompute every hash (plain SHA-256 when ``key`` is None) and move the head."""
    db = Database(url(campaign))
    with db.write() as s:
        prev = audit.GENESIS
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id)):
            change(e)
            e.prev_hash = prev
            e.hash = audit.digest(
                prev,
                e.at,
                e.actor,
                e.action,
                e.post_id,
                e.subject,
                e.content_hash,
                e.detail,
                key=key,
            )
            prev = e.hash
        s.get_one(AuditHead, 1).last_hash = prev
    db.close()


def first_error(out: Result) -> str:
    return out.stderr.splitlines()[0]


def test_the_key_is_validated_and_identified() -> None:
    assert parse_key(KEY) == bytes.fromhex(KEY)
    assert len(parse_key("q" * 43)) == 32  # URL-safe base64 of 32 bytes
    for bad in ("short", "a1" * 16, "zz" * 32 + "!"):
        with pytest.raises(PublisherError) as info:
            parse_key(bad)
        line = info.value.line()
        assert line.startswith(f"{KEY_ENV}: ") and "\n" not in line
        assert "token_hex(32)" in line and bad not in line  # never echo a key
    assert re.fullmatch(r"[0-9a-f]{16}", key_id(parse_key(KEY)))
    assert key_id(parse_key(KEY)) != key_id(parse_key(OTHER))


def test_a_cut_tail_with_the_head_moved_back_fails_against_a_logged_head(keyed: Path) -> None:
    for command in ("pause", "resume", "pause", "resume"):
        assert run(command, "zalo", "--as", "bientap").exit_code == 0
    logged_id, logged_hash = head(keyed)  # as the daemon writes it to the log
    ok = run("audit", "--verify", "--expect", f"{logged_id}:{logged_hash}")
    assert ok.exit_code == 0, ok.stderr
    keep = logged_id - 3
    with sqlite3.connect(keyed / "publisher.db") as conn:
        (kept_hash,) = conn.execute("SELECT hash FROM audit WHERE id = ?", (keep,)).fetchone()
        conn.execute("DELETE FROM audit WHERE id > ?", (keep,))
        conn.execute("UPDATE audit_head SET last_id = ?, last_hash = ?", (keep, kept_hash))
    assert run("audit", "--verify").exit_code == 0  # nothing inside the database tells
    out = run("audit", "--verify", "--expect", f"{logged_id}:{logged_hash}")
    assert out.exit_code == 1
    assert first_error(out).startswith(f"error: audit: entry {logged_id} ")
    assert "removed" in first_error(out)


def test_a_head_that_does_not_match_the_log_is_named(keyed: Path) -> None:
    logged_id, _ = head(keyed)
    out = run("audit", "--verify", "--expect", f"{logged_id}:{'0' * 64}")
    assert out.exit_code == 1 and f"entry {logged_id} " in first_error(out)
    bad = run("audit", "--verify", "--expect", "twelve")
    assert bad.exit_code == 1 and "--expect" in bad.stderr and "ID:HASH" in bad.stderr


def test_a_renamed_approver_with_every_hash_recomputed_as_sha256_fails(keyed: Path) -> None:
    def rename(e: AuditEntry) -> None:
        if e.actor == "Lê Anh Tuấn":
            e.actor = "Người khác"

    rewrite(keyed, None, rename)
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert first_error(out).startswith("error: audit: entry 1 ")  # the first bad entry


def test_a_chain_rewritten_under_another_key_fails(keyed: Path) -> None:
    def rename(e: AuditEntry) -> None:
        if e.actor == "Lê Anh Tuấn":
            e.actor = "Người khác"

    rewrite(keyed, parse_key(OTHER), rename)
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert first_error(out).startswith("error: audit: entry 1 ")


def test_one_edited_entry_is_named_first(keyed: Path) -> None:
    with sqlite3.connect(keyed / "publisher.db") as conn:
        conn.execute("UPDATE audit SET detail = 'sửa' WHERE id = 20")
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert first_error(out) == (
        "error: audit: entry 20 was edited: its content no longer matches its hash"
    )


def test_a_wrong_key_is_named_as_such(keyed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = count(keyed)
    monkeypatch.setenv(KEY_ENV, OTHER)
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert f"{KEY_ENV} is not the key of this audit trail" in out.stderr
    assert key_id(parse_key(OTHER)) in out.stderr and OTHER not in out.stderr
    refused = run("pause", "zalo", "--as", "bientap")
    assert refused.exit_code == 1 and len(refused.stderr.splitlines()) == 1
    assert "is not the key of this audit trail" in refused.stderr
    assert count(keyed) == before  # nothing appended, nothing paused


def test_no_key_for_a_keyed_chain_is_an_error_never_an_unkeyed_entry(
    keyed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = count(keyed)
    monkeypatch.delenv(KEY_ENV)
    out = run("audit", "--verify")
    assert out.exit_code == 1 and f"{KEY_ENV} is needed" in out.stderr
    refused = run("pause", "zalo", "--as", "bientap")
    assert refused.exit_code == 1 and len(refused.stderr.splitlines()) == 1
    assert f"{KEY_ENV}" in refused.stderr
    assert count(keyed) == before
    assert not (keyed / ".env").exists()  # no second key made for a keyed chain


def test_appending_without_the_key_or_with_another_raises(config: Config, campaign: Path) -> None:
    keyed_db = open_database(url(campaign), audit_key=parse_key(KEY))
    load(keyed_db, config, T0, "t")
    keyed_db.close()
    for key in (None, parse_key(OTHER)):
        db = Database(url(campaign), audit_key=key)
        with pytest.raises(PublisherError, match=KEY_ENV):
            approve(db, [1], everything=False, actor="a", now=T0)
        db.close()
    with Database(url(campaign)).read() as s:
        assert s.get_one(PostRow, 1).state == "draft"


def test_an_unkeyed_chain_is_rekeyed_once_with_an_entry_saying_so(
    config: Config, campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    plain = open_database(url(campaign))  # as the first release kept it
    load(plain, config, T0, "t")
    approve(plain, [1, 2], everything=False, actor="Lê Anh Tuấn", now=T0)
    entries = count(campaign)
    _, old_head = head(campaign)
    assert audit.verify(plain).ok
    plain.close()
    monkeypatch.setenv(KEY_ENV, KEY)
    out = run("audit", "--verify")
    assert out.exit_code == 0, out.stderr
    rows = audit.entries(Database(url(campaign)))
    assert len(rows) == entries + 1
    rekey = rows[-1]
    assert (rekey.action, rekey.actor) == ("rekey", "publisher")
    assert f"{entries} entries" in rekey.detail and old_head in rekey.detail
    with sqlite3.connect(campaign / "publisher.db") as conn:
        scheme, kid = conn.execute("SELECT scheme, key_id FROM audit_head").fetchone()
    assert (scheme, kid) == ("hmac-sha256", key_id(parse_key(KEY)))
    assert run("audit", "--verify").exit_code == 0
    assert count(campaign) == entries + 1  # once


def test_a_broken_unkeyed_chain_is_rekeyed_with_the_evidence_kept(
    config: Config, campaign: Path
) -> None:
    plain = open_database(url(campaign))
    load(plain, config, T0, "t")
    plain.close()
    with sqlite3.connect(campaign / "publisher.db") as conn:
        conn.execute("UPDATE audit SET actor = 'Người khác' WHERE id = 3")
    keyed = Database(url(campaign), audit_key=parse_key(KEY))
    approve(keyed, [1], everything=False, actor="a", now=T0)
    rekey = next(e for e in audit.entries(keyed) if e.action == "rekey")
    assert "entry 3 was edited" in rekey.detail
    result = audit.verify(keyed)
    assert not result.ok
    assert any(f"entry {rekey.id}" in p and "entry 3 was edited" in p for p in result.problems)


def test_a_new_user_gets_a_key_in_the_env_file(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    out = run("load", "--as", "vanphong")
    assert out.exit_code == 0
    notes = [line for line in out.stderr.splitlines() if KEY_ENV in line]
    assert len(notes) == 1 and ".env" in notes[0] and "keep a copy" in notes[0]
    env = campaign / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    (line,) = env.read_text().splitlines()
    assert re.fullmatch(rf"{KEY_ENV}=[0-9a-f]{{64}}", line)
    again = run("approve", "--all", "--as", "tuan.la")
    assert again.exit_code == 0 and KEY_ENV not in again.stderr
    assert env.read_text().count(KEY_ENV) == 1
    with sqlite3.connect(campaign / "publisher.db") as conn:
        (scheme,) = conn.execute("SELECT scheme FROM audit_head").fetchone()
    assert scheme == "hmac-sha256"
    assert run("audit", "--verify").exit_code == 0


def test_without_an_env_file_to_keep_it_the_key_is_asked_for(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    config = campaign / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('file = ".env"', 'file = ""'), encoding="utf-8"
    )
    out = run("load", "--as", "vanphong")
    assert out.exit_code == 1
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"error: {KEY_ENV}") and "token_hex(32)" in line
    assert count(campaign) == 0


def test_the_daemon_logs_the_head_at_start_and_shutdown(
    db: Database, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    db.audit_key = parse_key(KEY)
    load(db, config, T0, "t")
    approve(db, [], everything=True, actor="a", now=T0)  # not "t": four eyes
    with db.read() as s:
        first = s.scalars(select(PostRow).order_by(PostRow.due_at, PostRow.id)).first()
        assert first is not None and first.due_at is not None
        started_at = s.get_one(AuditHead, 1).last_id
    clock = FakeClock(first.due_at)
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    dispatcher = make_dispatcher(db, config, platforms, clock, worker="w")  # type: ignore[arg-type]
    daemon = Daemon(db, dispatcher, clock, tick=30.0, until=lambda: True)
    watchdog = threading.Timer(15, daemon.stop, args=("watchdog",))
    watchdog.start()
    with caplog.at_level(logging.INFO, logger="publisher.dispatch.daemon"):
        daemon.run()
    watchdog.cancel()
    lines = [r.getMessage() for r in caplog.records if "audit head" in r.getMessage()]
    assert len(lines) == 2
    assert f"audit head: entry {started_at} hmac-sha256 " in lines[0]
    with db.read() as s:
        h = s.get_one(AuditHead, 1)
        assert h.last_id > started_at  # the pass published a post
        end_id, end_hash = h.last_id, h.last_hash
    assert lines[1] == (
        f"audit head: entry {end_id} hmac-sha256 {end_hash}; "
        f"verify with: publisher audit --verify --expect {end_id}:{end_hash}"
    )
    assert audit.verify(db, expect=[(end_id, end_hash)]).ok


def test_the_daemon_logs_the_head_once_a_day_from_its_passes(
    db: Database, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    db.audit_key = parse_key(KEY)
    load(db, config, T0, "t")
    clock = FakeClock(T0)
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    dispatcher = make_dispatcher(db, config, platforms, clock, worker="w")  # type: ignore[arg-type]
    daemon = Daemon(db, dispatcher, clock, tick=30.0)
    daemon._head_logged = time.monotonic()  # as run() sets it at start
    with caplog.at_level(logging.INFO, logger="publisher.dispatch.daemon"):
        daemon._pass()
        assert not [r for r in caplog.records if "audit head" in r.getMessage()]
        daemon._head_logged -= HEAD_EVERY  # a day later
        daemon._pass()
        daemon._pass()
    dispatcher.close()
    assert len([r for r in caplog.records if "audit head" in r.getMessage()]) == 1


def test_a_keyed_chain_set_back_to_unkeyed_is_not_rekeyed(keyed: Path) -> None:
    """Re-keying would launder whatever was edited meanwhile: a head that says "unkeyed" over
    entries keyed with this very key was altered."""
    before = count(keyed)
    with sqlite3.connect(keyed / "publisher.db") as conn:
        conn.execute("UPDATE audit_head SET scheme = 'sha256', key_id = NULL")
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert "keys entry 1, yet the audit head says the trail is unkeyed" in first_error(out)
    refused = run("pause", "zalo", "--as", "bientap")
    assert refused.exit_code == 1 and len(refused.stderr.splitlines()) == 1
    assert count(keyed) == before
