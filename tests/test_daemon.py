"""The APScheduler wiring in real time (one short test), heartbeat and status."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from publisher.app import make_dispatcher
from publisher.clock import SystemClock
from publisher.config import Config
from publisher.dispatch.daemon import Daemon
from publisher.dispatch.outcomes import PassReport
from publisher.editorial.load import approve, load
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import PostRow
from publisher.store.status import gather
from publisher.store.workers import daemon_alive
from tests.fakes import FakePlatform

T0 = datetime(2024, 5, 31, tzinfo=UTC)


def _only_due(db: Database, due: dict[int, datetime]) -> None:
    """Posts ``due`` fall due at their times; every other post goes back to draft."""
    with db.write() as s:
        for p in s.scalars(select(PostRow)):
            if p.id in due:
                p.due_at = due[p.id]
            else:
                p.state = State.DRAFT


def _run_until_published(
    db: Database, config: Config, platforms: dict[str, FakePlatform], due: dict[int, datetime]
) -> dict[str, datetime]:
    """A real-time daemon (tick 30 s: only its wake jobs can publish on time) until the posts
    ``due`` are published (20 s at most); when each was sent, by idempotency key."""
    clock = SystemClock()
    dispatcher = make_dispatcher(db, config, platforms, clock, worker="rt")  # type: ignore[arg-type]

    def done() -> bool:
        with db.read() as s:
            return all(s.get_one(PostRow, i).state == State.PUBLISHED for i in due)

    daemon = Daemon(db, dispatcher, clock, tick=30.0, until=done)
    watchdog = threading.Timer(20, daemon.stop, args=("watchdog",))
    watchdog.start()
    daemon.run()
    watchdog.cancel()
    assert done()
    return {key: when for f in platforms.values() for key, when, _ in f.items}


def _platforms(config: Config) -> dict[str, FakePlatform]:
    clock = SystemClock()
    return {cid: FakePlatform(cid, clock.now) for cid in config.channels}


def test_scheduler_wakes_the_dispatcher_at_the_due_time(db: Database, config: Config) -> None:
    load(db, config, T0, "t")
    approve(db, [1, 2, 3], everything=False, actor="a", now=T0)  # four eyes: not "t"
    start = datetime.now(UTC)
    due = {
        1: start + timedelta(seconds=0.8),
        2: start + timedelta(seconds=1.6),
        3: start + timedelta(seconds=1.6),
    }
    _only_due(db, due)
    sent = _run_until_published(db, config, _platforms(config), due)
    with db.read() as s:
        for pid, when in due.items():
            p = s.get_one(PostRow, pid)
            late = (sent[p.idempotency_key] - when).total_seconds()
            # never early; and far sooner than the 30 s tick could: the wake job fired (a
            # loaded machine, e.g. CI beside other work, has made this take 0.9 s)
            assert 0 <= late < 5.0, (pid, late)
    stopped = daemon_alive(db, timedelta(seconds=5))
    assert stopped == []  # it said it stopped


def test_a_slow_call_on_one_channel_does_not_hold_up_a_post_due_on_another(
    db: Database, config: Config
) -> None:
    """One channel's call takes 3 s; a post due on another channel meanwhile goes out on
    time: the pass waiting for the slow call has the waker armed for that post, and its wake
    has the pass claim it at once (not when the slow call answers, nor at the pass's 2 s
    budget, nor at the 30 s tick)."""
    load(db, config, T0, "t")
    with db.read() as s:
        rows = list(s.scalars(select(PostRow).order_by(PostRow.id)))
    slow = rows[0]
    other = next(p for p in rows if p.channel != slow.channel)
    approve(db, [slow.id, other.id], everything=False, actor="a", now=T0)
    start = datetime.now(UTC)
    due = {slow.id: start + timedelta(seconds=0.8), other.id: start + timedelta(seconds=1.4)}
    _only_due(db, due)
    platforms = _platforms(config)
    platforms[slow.channel].then(slow.idempotency_key, lambda _post: time.sleep(3.0))
    sent = _run_until_published(db, config, platforms, due)
    late = (sent[other.idempotency_key] - due[other.id]).total_seconds()
    slow_done = (sent[slow.idempotency_key] - due[slow.id]).total_seconds()
    assert slow_done >= 3.0  # the slow call did take its 3 s …
    # … and the other post did not wait for it (it would be ~2.2 s late, ~1.4 s at the
    # pass's budget); a loaded machine gets some slack
    assert 0 <= late < 1.0, late


def test_status_reports_counts_problems_blocks_and_heartbeat(db: Database, config: Config) -> None:
    load(db, config, T0, "t")
    approve(db, [], everything=True, actor="a", now=T0)
    with db.write() as s:
        p = s.get_one(PostRow, 1)
        p.state = State.FAILED
        p.last_error = "refused"
    clock = SystemClock()
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    dispatcher = make_dispatcher(db, config, platforms, clock, worker="w")  # type: ignore[arg-type]
    daemon = Daemon(db, dispatcher, clock, tick=5)
    daemon._beat()
    info = gather(db, config, datetime.now(UTC))
    assert info["counts"]["approved"] == 71 and info["counts"]["failed"] == 1
    assert set(info["counts"]) == {s.value for s in State}
    assert info["problems"][0]["id"] == 1 and info["problems"][0]["state"] == "failed"
    assert info["daemon"]["alive"] is True
    assert len(info["next"]) == 5
    daemon._beat(stopped=True)
    assert gather(db, config, datetime.now(UTC))["daemon"]["alive"] is False


def test_the_allocator_is_asked_for_few_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from publisher.dispatch.daemon import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the operator's own setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas() is glibc


def test_a_killed_daemon_is_not_alive_although_its_heartbeat_is_fresh(
    db: Database, config: Config
) -> None:
    import socket
    import subprocess
    import sys

    from publisher.store.models import DaemonRow

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = datetime.now(UTC)
    worker = f"{socket.gethostname()}:{gone.pid}:abc123"
    with db.write() as s:
        s.add(
            DaemonRow(
                worker=worker,
                host=socket.gethostname(),
                pid=gone.pid,
                mode="run",
                started_at=now,
                beat_at=now,
            )
        )
    assert daemon_alive(db, timedelta(seconds=5)) == []
    assert gather(db, config, now)["daemon"]["workers"][0]["alive"] is False


class _SlowDispatcher:
    """A dispatcher whose passes wait until the test lets them finish."""

    worker = "slow"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.passes = 0

    def run_once(self) -> PassReport:
        self.passes += 1
        self.entered.release()
        assert self.release.acquire(timeout=30)
        return PassReport()

    def next_wake(self) -> None:
        return None

    def poke(self) -> None:
        pass

    def abandon(self) -> None:
        self.stopping.set()

    def drain(self, timeout: float | None = None) -> bool:
        return True

    def close(self, wait: bool = True) -> None:
        pass


def test_wakes_during_a_pass_make_exactly_one_more_pass(db: Database) -> None:
    """APScheduler's jobs only ask for a pass: three asks while one runs make one more pass,
    never a pass of their own beside it (nor the 'maximum number of running instances'
    warning)."""
    stub = _SlowDispatcher()
    daemon = Daemon(db, stub, SystemClock(), tick=60.0)  # type: ignore[arg-type]
    seen: list[int] = []

    def drive() -> None:
        try:
            assert stub.entered.acquire(timeout=30)  # the first pass (the tick at start) runs
            for _ in range(3):
                daemon.wake()
            assert not daemon.idle.is_set()
            stub.release.release()
            assert stub.entered.acquire(timeout=30)  # exactly one more pass …
            stub.release.release()
            assert daemon.idle.wait(30)  # … and then nothing is asked for
            seen.append(stub.passes)
        finally:
            stub.release.release()
            daemon.stop("test")

    driver = threading.Thread(target=drive)
    driver.start()
    daemon.run()
    driver.join()
    assert seen == [2] and daemon.passes == 2
