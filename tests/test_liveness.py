"""The daemon stays alive and quiet: no dead dispatcher thread, no spinning, no pass held up by
one slow channel, no second send after a stop that left calls in flight, no waiting post sent
back to a state that misreports it, and nothing sent whose outcome can't be recorded."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.channels.base import CheckResult, Outgoing
from publisher.clock import FakeClock, SystemClock
from publisher.config import Config
from publisher.dispatch.daemon import Daemon
from publisher.dispatch.dispatcher import Dispatcher
from publisher.dispatch.outcomes import PassReport
from publisher.dispatch.retry import RetryPolicy
from publisher.dispatch.settings import DispatchSettings
from publisher.editorial.load import approve, load
from publisher.states import State
from publisher.store.audit_key import AuditKeyError, parse_key
from publisher.store.db import Database
from publisher.store.models import ChannelState, DaemonRow, PostRow
from tests.fakes import FakePlatform, dummy_env, load_and_approve, set_state

T0 = datetime(2024, 5, 31, tzinfo=UTC)
KEY = "a1" * 32


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    db.audit_key = parse_key(KEY)
    load(db, config, T0, "tester")
    approve(db, [], everything=True, actor="lanh.dao", now=T0)
    return db


def dispatcher(db: Database, platforms: dict[str, FakePlatform], clock: FakeClock) -> Dispatcher:
    return Dispatcher(
        db,
        platforms,
        clock,
        worker="w1",
        policy=RetryPolicy(),
        settings=DispatchSettings(grace=timedelta(hours=2)),
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )


def posts_of(db: Database, channel: str) -> list[PostRow]:
    with db.read() as s:
        return list(
            s.scalars(select(PostRow).where(PostRow.channel == channel).order_by(PostRow.due_at))
        )


def block(db: Database, channel: str, kind: str, until: datetime) -> None:
    with db.write() as s:
        row = s.get(ChannelState, channel) or ChannelState(channel=channel)
        s.add(row)
        row.block_kind, row.blocked_until, row.blocked_since = kind, until, until
        row.block_reason = f"{kind}: test"
        row.updated_at = until


def test_a_pass_that_cannot_plan_the_next_one_leaves_the_dispatcher_alive(
    queue: Database, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        worker = "w-broken"
        stopping = threading.Event()
        on_answer = None

        def run_once(self) -> PassReport:
            return PassReport()

        def next_wake(self) -> datetime:
            raise RuntimeError("the database went away")

        def poke(self) -> None:
            pass

    daemon = Daemon(queue, Broken(), SystemClock(), tick=60.0)  # type: ignore[arg-type]
    daemon._scheduler = object()  # as run() sets it: _arm asks for the next wake
    daemon._pass()  # raised before: the dispatcher thread died and no pass ever ran again
    daemon._pass()
    assert daemon.passes == 2
    assert "could not plan the next pass" in caplog.text


def test_next_wake_ignores_channels_it_does_not_serve(queue: Database) -> None:
    """A block left by another daemon's channel (one this one has no adapter for) whose check
    is due is not a reason to wake: it was, 20 times a second, for ever."""
    clock = FakeClock(T0)
    d = dispatcher(queue, {"facebook": FakePlatform("facebook", clock.now)}, clock)
    block(queue, "zalo", "outage", T0 - timedelta(hours=1))
    nxt = d.next_wake()
    assert nxt is not None and nxt > clock.now()
    d.close()


def test_next_wake_waits_for_a_channel_at_its_concurrency(queue: Database) -> None:
    """A post due on a channel whose one slot is taken (another worker's call in flight) can't
    be claimed: the next wake is that call's lease, not 'now' again and again."""
    fb = posts_of(queue, "facebook")
    assert fb[1].due_at is not None
    now = fb[1].due_at + timedelta(minutes=1)
    lease = now + timedelta(minutes=5)
    set_state(
        queue, fb[0].id, now, State.SENDING, "claimed by w2", claimed_by="w2", lease_until=lease
    )
    clock = FakeClock(now)
    d = dispatcher(queue, {"facebook": FakePlatform("facebook", clock.now)}, clock)
    assert d.next_wake() == lease
    set_state(queue, fb[0].id, now, State.PUBLISHED, "w2's call answered", lease_until=None)
    assert d.next_wake() == fb[1].due_at  # the slot is free: due now
    d.close()


class HangingCheck(FakePlatform):
    def __init__(self, name: str, now: FakeClock) -> None:
        super().__init__(name, now.now)
        self.answer = threading.Event()
        self.checking = threading.Event()

    def check(self) -> CheckResult:
        self.checking.set()
        self.answer.wait(60)
        return CheckResult(True, "fine again")


def test_a_slow_check_does_not_hold_up_the_other_channels(queue: Database, config: Config) -> None:
    fb = posts_of(queue, "facebook")
    assert fb[0].due_at is not None
    clock = FakeClock(fb[0].due_at)
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    zalo = HangingCheck("zalo", clock)
    platforms["zalo"] = zalo
    block(queue, "zalo", "auth", clock.now() - timedelta(minutes=1))
    d = dispatcher(queue, platforms, clock)
    answers = threading.Event()
    d.on_answer = answers.set
    done = threading.Event()

    def one_pass() -> None:
        d.run_once()
        done.set()

    runner = threading.Thread(target=one_pass)
    runner.start()
    try:
        assert done.wait(30), "the pass waited for the hanging check"
        assert zalo.checking.is_set()
        assert platforms["facebook"].items  # the other channels went on
        with queue.read() as s:
            assert s.get_one(ChannelState, "zalo").block_kind == "auth"  # not answered yet
        answers.clear()
        zalo.answer.set()
        assert answers.wait(30)  # its answer asks for a pass …
        d.run_once()
        with queue.read() as s:
            assert s.get_one(ChannelState, "zalo").block_kind is None  # … which records it
    finally:
        zalo.answer.set()
        runner.join(30)
        d.close()


def test_a_probe_in_flight_is_no_reason_to_wake(queue: Database, config: Config) -> None:
    clock = FakeClock(T0)
    zalo = HangingCheck("zalo", clock)
    d = dispatcher(queue, {"zalo": zalo}, clock)
    block(queue, "zalo", "outage", T0 - timedelta(minutes=1))
    assert d.next_wake() == T0 - timedelta(minutes=1)  # its check is due
    try:
        d.run_once()
        assert zalo.checking.is_set()
        nxt = d.next_wake()
        assert nxt is None or nxt > clock.now()  # its answer wakes us: no 20 Hz loop meanwhile
    finally:
        zalo.answer.set()
        d.close()


class _Stuck:
    """A dispatcher whose call never answers in time: the daemon abandons it at shutdown."""

    def __init__(self) -> None:
        self.worker = "w-stuck"
        self.stopping = threading.Event()
        self.abandoned = threading.Event()
        self.on_answer = None

    def run_once(self) -> PassReport:
        return PassReport()

    def poke(self) -> None:
        pass

    def next_wake(self) -> None:
        return None

    def drain(self, timeout: float | None = None) -> bool:
        return False  # a call is still in flight

    def abandon(self) -> None:
        self.stopping.set()
        self.abandoned.set()

    def close(self, wait: bool = True) -> None:
        pass


def test_a_stop_with_calls_in_flight_does_not_mark_the_worker_stopped(db: Database) -> None:
    """Marked stopped, another daemon would take its posts over at once, find nothing yet (the
    call still running) and send them again."""
    stuck = _Stuck()
    daemon = Daemon(db, stuck, SystemClock(), tick=60.0, stop_timeout=0.1)  # type: ignore[arg-type]
    threading.Timer(0.5, daemon.stop, args=("test",)).start()
    daemon.run()
    assert stuck.abandoned.is_set()
    with db.read() as s:
        row = s.get_one(DaemonRow, "w-stuck")
    assert row.stopped_at is None


def test_a_post_waiting_for_its_channel_is_released_as_waiting(
    queue: Database, config: Config
) -> None:
    """A post held by an outage is RETRYING with no attempt spent; claimed then released at
    shutdown, it stays so (released as APPROVED it was then 'missed' by the grace window,
    with a reason that said it was never tried)."""
    fb = posts_of(queue, "facebook")
    assert fb[0].due_at is not None
    now = fb[0].due_at + timedelta(hours=5)  # far past the grace window
    set_state(
        queue,
        fb[0].id,
        now,
        State.RETRYING,
        "waits for facebook: nothing was sent",
        next_attempt_at=now,
        attempt=0,
    )
    clock = FakeClock(now)
    d = dispatcher(queue, {"facebook": FakePlatform("facebook", clock.now)}, clock)
    report = PassReport()
    with queue.write() as s:
        claims = [c for c in d._claim(s, now, report) if c.post_id == fb[0].id]
    assert claims
    d.stopping.set()  # shutting down: the call is never started
    d._stream(claims, report, None)
    with queue.read() as s:
        p = s.get_one(PostRow, fb[0].id)
        assert (p.state, p.attempt) == (State.RETRYING, 0)
    d.close()


def test_a_wrong_audit_key_sends_nothing_and_drafts_nothing(queue: Database) -> None:
    fb = posts_of(queue, "facebook")
    assert fb[0].due_at is not None
    clock = FakeClock(fb[0].due_at)
    platform = FakePlatform("facebook", clock.now)
    d = dispatcher(queue, {"facebook": platform}, clock)
    queue.audit_key = parse_key("b2" * 32)
    with pytest.raises(AuditKeyError, match="PUBLISHER_AUDIT_KEY"):
        d.run_once()
    queue.audit_key = None
    with pytest.raises(AuditKeyError, match="is needed"):
        d.run_once()
    assert platform.calls == []
    with queue.read() as s:
        assert s.get_one(PostRow, fb[0].id).state == State.APPROVED
    d.close()


def test_an_unexpected_error_is_stored_without_control_characters(queue: Database) -> None:
    fb = posts_of(queue, "facebook")
    assert fb[0].due_at is not None
    clock = FakeClock(fb[0].due_at)
    platform = FakePlatform("facebook", clock.now)

    def explode(_post: Outgoing) -> None:
        raise RuntimeError("boom\x1b[2J\x1b]0;owned\x07\u202etxt")

    platform.then(fb[0].idempotency_key, explode)
    d = dispatcher(queue, {"facebook": platform}, clock)
    d.run_once()
    with queue.read() as s:
        error = s.get_one(PostRow, fb[0].id).last_error or ""
    assert "boom" in error
    assert not any(c in error for c in "\x1b\x07\u202e"), repr(error)
    d.close()


def test_run_once_without_the_audit_key_stops_before_sending(campaign: Path) -> None:
    env = dict(os.environ)
    load_and_approve(campaign)
    dummy_env(campaign)
    env.pop("PUBLISHER_AUDIT_KEY", None)
    out = subprocess.run(
        [sys.executable, "-m", "publisher", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "PUBLISHER_AUDIT_KEY" in lines[0], out.stderr
    import sqlite3

    with sqlite3.connect(campaign / "publisher.db") as conn:
        states = {s for (s,) in conn.execute("SELECT DISTINCT state FROM post")}
    assert states <= {"approved", "draft"}, states  # nothing claimed, nothing missed


def test_a_slow_call_outliving_its_lease_is_not_taken_over_by_its_own_dispatcher(
    queue: Database,
) -> None:
    """On a rehearsal's fast clock a slow call outlives its lease in a blink: its own
    dispatcher must not look it up before it exists (and then send it again)."""
    fb = posts_of(queue, "facebook")
    assert fb[0].due_at is not None
    clock = FakeClock(fb[0].due_at)
    platform = FakePlatform("facebook", clock.now)
    slow = threading.Event()

    def hold(_post: Outgoing) -> None:
        slow.wait(60)

    platform.then(fb[0].idempotency_key, hold)
    d = Dispatcher(
        queue,
        {"facebook": platform},
        clock,
        worker="w1",
        settings=DispatchSettings(lease=timedelta(minutes=5), pass_budget=0.2),
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )
    try:
        d.run_once()  # the call goes on after the pass
        clock.advance(timedelta(hours=1))  # far past its lease
        d.run_once()
        with queue.read() as s:
            assert s.get_one(PostRow, fb[0].id).state == State.SENDING
        assert platform.lookups == []
        slow.set()
        for _ in range(50):
            d.run_once()
            with queue.read() as s:
                if s.get_one(PostRow, fb[0].id).state == State.PUBLISHED:
                    break
        with queue.read() as s:
            assert s.get_one(PostRow, fb[0].id).state == State.PUBLISHED
        assert platform.count(fb[0].idempotency_key) == 1 and platform.lookups == []
    finally:
        slow.set()
        d.close()
