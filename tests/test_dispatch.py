"""The dispatcher on a real SQLite queue, a fake clock and scriptable fake platforms: no sleeping."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from publisher.channels.base import Ambiguous, AuthError, Outgoing, Permanent, Temporary, Throttled
from publisher.clock import FakeClock
from publisher.config import Config
from publisher.dispatch.dispatcher import Dispatcher
from publisher.dispatch.retry import RetryPolicy
from publisher.dispatch.settings import DispatchSettings
from publisher.editorial.load import approve, load
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import ChannelState, DaemonRow, MediaFile, PostEvent, PostRow
from tests.fakes import FakePlatform

T0 = datetime(2024, 5, 31, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def platforms(clock: FakeClock, config: Config) -> dict[str, FakePlatform]:
    return {cid: FakePlatform(cid, clock.now) for cid in config.channels}


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    load(db, config, T0, "tester")
    approve(db, [], everything=True, actor="lanh.dao", now=T0)
    return db


def dispatcher(
    db: Database, platforms: dict[str, FakePlatform], clock: FakeClock, **settings: object
) -> Dispatcher:
    return Dispatcher(
        db,
        platforms,  # type: ignore[arg-type]
        clock,
        worker=str(settings.pop("worker", "w1")),
        policy=RetryPolicy(**settings.pop("policy", {})),  # type: ignore[arg-type]
        settings=DispatchSettings(**settings),  # type: ignore[arg-type]
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )


def posts(db: Database, **where: object) -> list[PostRow]:
    with db.read() as s:
        q = select(PostRow).order_by(PostRow.due_at, PostRow.id)
        for k, v in where.items():
            q = q.where(getattr(PostRow, k) == v)
        return list(s.scalars(q))


def first(db: Database, channel: str) -> PostRow:
    return posts(db, channel=channel)[0]


def fail(exc: Exception) -> Callable[[Outgoing], None]:
    def step(_post: Outgoing) -> None:
        raise exc

    return step


def store_then(platform: FakePlatform, exc: Exception) -> Callable[[Outgoing], None]:
    def step(post: Outgoing) -> None:
        platform.store(post)
        raise exc

    return step


def at(clock: FakeClock, post: PostRow, delta: timedelta = timedelta(0)) -> None:
    assert post.due_at is not None
    clock.set(post.due_at + delta)


def test_nothing_goes_out_before_its_time(queue: Database, platforms, clock: FakeClock) -> None:
    d = dispatcher(queue, platforms, clock)
    p = posts(queue)[0]
    at(clock, p, -timedelta(seconds=1))
    assert d.run_once().claimed == 0
    at(clock, p)
    report = d.run_once()
    assert report.published >= 1
    done = posts(queue, id=p.id)[0]
    assert done.state == State.PUBLISHED and done.remote_id and done.published_at == p.due_at
    assert all(when >= p.due_at for _, when, _ in platforms[p.channel].items)


def test_a_whole_month_goes_out_exactly_once_in_order(
    queue: Database, platforms, clock: FakeClock
) -> None:
    d = dispatcher(queue, platforms, clock)
    all_posts = posts(queue)
    for p in all_posts:
        at(clock, p)
        d.run_once()
    assert {p.state for p in posts(queue)} == {State.PUBLISHED}
    sent = [key for f in platforms.values() for key, _, _ in f.items]
    assert sorted(sent) == sorted(p.idempotency_key for p in all_posts)
    due = {p.idempotency_key: p.due_at for p in all_posts}
    for f in platforms.values():
        assert all(when == due[key] for key, when, _ in f.items)  # on time, to the second


def test_temporary_failure_retries_after_the_hint(
    queue: Database, platforms, clock: FakeClock
) -> None:
    p = first(queue, "facebook")
    platforms["facebook"].then(p.idempotency_key, fail(Temporary("503", retry_after=600)))
    d = dispatcher(queue, platforms, clock)
    at(clock, p)
    d.run_once()
    r = posts(queue, id=p.id)[0]
    assert r.state == State.RETRYING and r.attempt == 1
    assert r.next_attempt_at is not None and r.next_attempt_at >= p.due_at + timedelta(seconds=600)
    clock.set(r.next_attempt_at - timedelta(seconds=1))
    d.run_once()
    assert posts(queue, id=p.id)[0].state == State.RETRYING
    clock.set(r.next_attempt_at)
    d.run_once()
    r = posts(queue, id=p.id)[0]
    assert (r.state, r.attempt) == (State.PUBLISHED, 2)
    assert platforms["facebook"].count(p.idempotency_key) == 1


def test_throttling_blocks_the_whole_channel_until_its_time(
    queue: Database, platforms, clock: FakeClock
) -> None:
    fb = posts(queue, channel="facebook")
    nxt = fb[1]
    until = nxt.due_at + timedelta(minutes=30)  # type: ignore[operator]
    platforms["facebook"].then(fb[0].idempotency_key, fail(Throttled("code 4", until=until)))
    late = {"max_lateness": timedelta(days=2)}  # the block lasts a day: not past lateness
    d = dispatcher(queue, platforms, clock, policy=late)
    at(clock, fb[0])
    d.run_once()
    with queue.read() as s:
        block = s.get_one(ChannelState, "facebook")
        assert block.blocked_until == until and block.block_kind == "throttled"
    # the next facebook post falls due while blocked: it waits, other channels go on
    at(clock, nxt)
    d2 = dispatcher(queue, platforms, clock, worker="restarted", policy=late)  # block survives
    d2.run_once()
    assert posts(queue, id=nxt.id)[0].state == State.APPROVED
    assert posts(queue, id=fb[0].id)[0].attempt == 0  # throttling is not the post's fault
    clock.set(until)
    d2.run_once()  # one at a time (concurrency 1), oldest first
    assert posts(queue, id=fb[0].id)[0].state == State.PUBLISHED
    d2.run_once()
    assert {posts(queue, id=i)[0].state for i in (fb[0].id, nxt.id)} == {State.PUBLISHED}


def test_a_throttle_that_has_already_ended_still_pauses_the_channel(
    queue: Database, platforms, clock: FakeClock
) -> None:
    """``Retry-After: 0`` (or a past date): without a floor the post, its attempt given back,
    would be claimed again at once, round after round."""
    p = first(queue, "facebook")
    platforms["facebook"].then(p.idempotency_key, fail(Throttled("429", until=clock.now())))
    d = dispatcher(queue, platforms, clock)
    at(clock, p)
    d.run_once()
    assert platforms["facebook"].calls.count(p.idempotency_key) == 1  # not again in that pass
    with queue.read() as s:
        block = s.get_one(ChannelState, "facebook")
        assert block.blocked_until == p.due_at + timedelta(seconds=5)  # type: ignore[operator]
    clock.set(p.due_at + timedelta(seconds=5))  # type: ignore[operator]
    d.run_once()
    assert posts(queue, id=p.id)[0].state == State.PUBLISHED


def test_ambiguous_outcome_is_looked_up_not_resent(
    queue: Database, platforms, clock: FakeClock
) -> None:
    f = platforms["zalo"]
    p = first(queue, "zalo")
    f.then(p.idempotency_key, store_then(f, Ambiguous("HTTP 500 after create")))
    d = dispatcher(queue, platforms, clock)
    at(clock, p)
    d.run_once()
    assert posts(queue, id=p.id)[0].state == State.UNCONFIRMED
    at(clock, p, timedelta(seconds=30))
    d.run_once()
    assert f.lookups == []  # read-after-write grace first
    at(clock, p, timedelta(minutes=2))
    d.run_once()
    r = posts(queue, id=p.id)[0]
    assert r.state == State.PUBLISHED and r.remote_id == "zalo-1"
    assert f.calls.count(p.idempotency_key) == 1 and f.count(p.idempotency_key) == 1
    with queue.read() as s:
        causes = [e.cause for e in s.scalars(select(PostEvent).where(PostEvent.post_id == p.id))]
    assert any("found on the platform after an unclear outcome" in c for c in causes)


def test_ambiguous_and_not_found_is_sent_again(
    queue: Database, platforms, clock: FakeClock
) -> None:
    f = platforms["portal_stp"]
    p = first(queue, "portal_stp")
    f.then(p.idempotency_key, fail(Ambiguous("read timeout")))  # it did NOT store
    d = dispatcher(queue, platforms, clock)
    at(clock, p)
    d.run_once()
    at(clock, p, timedelta(minutes=2))
    d.run_once()  # lookup: not there → retrying
    r = posts(queue, id=p.id)[0]
    assert r.state == State.RETRYING and f.lookups == [p.idempotency_key]
    assert r.next_attempt_at is not None
    clock.set(r.next_attempt_at)
    d.run_once()
    assert posts(queue, id=p.id)[0].state == State.PUBLISHED
    assert f.count(p.idempotency_key) == 1


def test_still_unclear_goes_to_review_never_a_blind_resend(
    queue: Database, platforms, clock: FakeClock
) -> None:
    f = platforms["facebook"]
    p = first(queue, "facebook")
    f.then(p.idempotency_key, fail(Ambiguous("500")))
    f.lookup_plans = [fail(Temporary("lookup 503")) for _ in range(10)]
    d = dispatcher(queue, platforms, clock, policy={"max_lookups": 3})
    at(clock, p)
    d.run_once()
    for _ in range(10):
        clock.advance(timedelta(hours=1))
        d.run_once()
    r = posts(queue, id=p.id)[0]
    assert r.state == State.NEEDS_REVIEW and len(f.lookups) == 3
    assert f.calls.count(p.idempotency_key) == 1


def test_permanent_failure_is_recorded_with_its_reason(
    queue: Database, platforms, clock: FakeClock
) -> None:
    p = first(queue, "zalo")
    platforms["zalo"].then(p.idempotency_key, fail(Permanent("-201 title too long")))
    d = dispatcher(queue, platforms, clock)
    at(clock, p)
    d.run_once()
    r = posts(queue, id=p.id)[0]
    assert r.state == State.FAILED and r.last_error == "-201 title too long"


def test_retries_end_in_failure_at_the_cap(queue: Database, platforms, clock: FakeClock) -> None:
    p = first(queue, "zalo")
    platforms["zalo"].then(p.idempotency_key, *[fail(Temporary("busy")) for _ in range(10)])
    d = dispatcher(queue, platforms, clock, policy={"max_attempts": 3})
    at(clock, p)
    for _ in range(10):
        d.run_once()
        clock.advance(timedelta(hours=1))
    r = posts(queue, id=p.id)[0]
    assert r.state == State.FAILED and r.attempt == 3
    with queue.read() as s:
        last = s.scalars(
            select(PostEvent).where(PostEvent.post_id == p.id).order_by(PostEvent.id.desc())
        ).first()
    assert last is not None and last.cause.startswith("gave up after 3 attempts")


def test_auth_error_stops_the_channel_until_credentials_work(
    queue: Database, platforms, clock: FakeClock
) -> None:
    f = platforms["facebook"]
    p = first(queue, "facebook")
    f.then(p.idempotency_key, fail(AuthError("code 190: re-authorise")))
    f.check_ok = False
    d = dispatcher(queue, platforms, clock)
    at(clock, p)
    d.run_once()
    with queue.read() as s:
        assert s.get_one(ChannelState, "facebook").block_kind == "auth"
    clock.advance(timedelta(minutes=11))
    d.run_once()
    assert posts(queue, id=p.id)[0].state == State.RETRYING  # still refused
    f.check_ok = True
    clock.advance(timedelta(minutes=11))
    d.run_once()
    assert posts(queue, id=p.id)[0].state == State.PUBLISHED
    with queue.read() as s:
        assert s.get_one(ChannelState, "facebook").blocked_until is None


def test_downtime_inside_the_grace_window_publishes_late_outside_marks_missed(
    queue: Database, platforms, clock: FakeClock
) -> None:
    d = dispatcher(queue, platforms, clock, grace=timedelta(hours=2))
    zalo = posts(queue, channel="zalo")
    # the daemon was down from before the first post until 3 h after it, and 1 h after the second
    at(clock, zalo[0], timedelta(hours=3))
    d.run_once()
    missed = posts(queue, id=zalo[0].id)[0]
    assert missed.state == State.MISSED and platforms["zalo"].count(zalo[0].idempotency_key) == 0
    at(clock, zalo[1], timedelta(hours=1))
    d.run_once()
    assert posts(queue, id=zalo[1].id)[0].state == State.PUBLISHED


def test_a_due_post_is_called_before_the_pass_settles_what_waited_too_long(
    queue: Database, platforms, clock: FakeClock
) -> None:
    """The claim comes first in a pass (its calls start before the recovery of leases and the
    grace window's bookkeeping), and claims nothing that bookkeeping would have settled: a
    post past its grace window is still missed, never sent late, in the same pass."""
    d = dispatcher(queue, platforms, clock, grace=timedelta(minutes=30))
    zalo = posts(queue, channel="zalo")
    fb = posts(queue, channel="facebook")
    late = zalo[0]
    assert late.due_at is not None
    due = next(p for p in fb if p.due_at and p.due_at > late.due_at + timedelta(hours=2))
    calls_when_settling: list[int] = []
    settle = d._expire

    def spy(now: datetime, report: object) -> None:
        calls_when_settling.append(len(d._running))
        settle(now, report)  # type: ignore[arg-type]

    d._expire = spy  # type: ignore[method-assign]
    at(clock, due)
    report = d.run_once()
    assert calls_when_settling and calls_when_settling[0] >= 1  # the call had started
    assert posts(queue, id=due.id)[0].state == State.PUBLISHED
    assert posts(queue, id=late.id)[0].state == State.MISSED
    assert platforms["zalo"].count(late.idempotency_key) == 0
    assert report.missed >= 1


def test_a_worker_killed_mid_call_is_reconciled_by_the_next(
    queue: Database, platforms, clock: FakeClock
) -> None:
    f = platforms["portal_pbgdpl"]
    p = first(queue, "portal_pbgdpl")
    dead = dispatcher(queue, platforms, clock, worker="dead", lease=timedelta(minutes=5))
    at(clock, p)
    from publisher.dispatch.outcomes import PassReport

    dead._expire(clock.now(), PassReport())  # (earlier posts of other channels: missed)
    with queue.write() as s:
        claims = [c for c in dead._claim(s, clock.now(), PassReport()) if c.post_id == p.id]
    assert len(claims) == 1  # claimed …
    f.store(claims[0].outgoing)  # … the platform got it, then kill -9 before recording
    alive = dispatcher(queue, platforms, clock, worker="alive")
    at(clock, p, timedelta(minutes=4))
    alive.run_once()
    assert posts(queue, id=p.id)[0].state == State.SENDING  # lease still held
    at(clock, p, timedelta(minutes=6))
    alive.run_once()  # lease expired → unconfirmed
    at(clock, p, timedelta(minutes=8))
    alive.run_once()  # lookup finds it
    assert posts(queue, id=p.id)[0].state == State.PUBLISHED
    assert f.count(p.idempotency_key) == 1 and f.calls == []
    # the dead worker's late completion is fenced off
    from publisher.channels.base import Receipt
    from publisher.dispatch.dispatcher import Attempt

    report = PassReport()
    with queue.write() as s:
        late = Attempt(claims[0], Receipt("late"), None, 0.1, clock.now())
        assert dead._complete(s, [late], report) == []
    assert report.fenced_off == 1
    assert posts(queue, id=p.id)[0].remote_id != "late"


def test_changed_text_after_approval_is_not_published(
    queue: Database, platforms, clock: FakeClock
) -> None:
    p = first(queue, "facebook")
    with queue.write() as s:
        s.get_one(PostRow, p.id).render_hash = "0" * 64
    at(clock, p)
    dispatcher(queue, platforms, clock).run_once()
    assert posts(queue, id=p.id)[0].state == State.DRAFT
    assert platforms["facebook"].calls == []


@pytest.mark.parametrize("limit", [1, 2])
def test_channel_concurrency_limits_calls_in_flight(
    queue: Database, platforms, clock: FakeClock, limit: int
) -> None:
    fb = posts(queue, channel="facebook")
    busy, most = 0, 0
    lock = threading.Lock()

    def slow(_post: Outgoing) -> None:  # a call that takes a while: others may overlap it
        nonlocal busy, most
        with lock:
            busy += 1
            most = max(most, busy)
        threading.Event().wait(0.02)
        with lock:
            busy -= 1

    for p in fb[:6]:
        platforms["facebook"].then(p.idempotency_key, slow)
    clock.set(fb[5].due_at)  # type: ignore[arg-type]
    report = dispatcher(
        queue, platforms, clock, concurrency={"facebook": limit}, grace=timedelta(days=30)
    ).run_once()
    published = [pid for pid, ch, out in report.outcomes if ch == "facebook" and out == "published"]
    assert most == limit  # never more calls at once than the channel's concurrency …
    assert sorted(published) == sorted(p.id for p in fb[:6])  # … yet one pass streams all six


def test_a_poke_claims_a_post_due_on_another_channel_while_a_slow_call_is_in_flight(
    queue: Database, platforms, clock: FakeClock
) -> None:
    """A pass waits for a slow call on one channel; a post falls due on another meanwhile. The
    waker's poke has the pass claim and send it at once, not when the slow call answers (nor
    when the pass's budget runs out); the pass asks to be woken again (``on_stream``)."""
    slow = posts(queue)[0]
    assert slow.due_at is not None
    other = next(
        p for p in posts(queue) if p.channel != slow.channel and p.due_at and p.due_at > slow.due_at
    )
    release = threading.Event()

    def hold(_post: Outgoing) -> None:
        release.wait(10)

    platforms[slow.channel].then(slow.idempotency_key, hold)
    d = dispatcher(queue, platforms, clock, pass_budget=30.0, grace=timedelta(days=30))
    streams: list[int] = []
    d.on_stream = lambda: streams.append(1)
    at(clock, slow)
    passing = threading.Thread(target=d.run_once)
    passing.start()
    try:
        for _ in range(500):  # the slow call has begun, and the pass waits for it
            if platforms[slow.channel].calls and streams:
                break
            threading.Event().wait(0.01)
        assert platforms[slow.channel].calls == [slow.idempotency_key]
        assert streams == [1]  # the pass waits for its call and asked to be woken
        at(clock, other)
        threading.Event().wait(0.2)
        sent = {key for key, _when, _text in platforms[other.channel].items}
        assert other.idempotency_key not in sent  # without a poke, the pass keeps waiting
        d.poke()
        for _ in range(500):
            sent = {key for key, _when, _text in platforms[other.channel].items}
            if other.idempotency_key in sent and len(streams) == 2:
                break
            threading.Event().wait(0.01)
        assert other.idempotency_key in sent
        assert not release.is_set() and passing.is_alive()  # the slow call still in flight
        assert len(streams) == 2  # after the poke's round, the pass asked for the next wake
    finally:
        release.set()
        passing.join(10)
    assert posts(queue, id=slow.id)[0].state == State.PUBLISHED
    assert posts(queue, id=other.id)[0].state == State.PUBLISHED


def test_two_dispatchers_on_one_database_never_double_post(
    queue: Database, platforms, clock: FakeClock
) -> None:
    all_posts = posts(queue)
    workers = [
        dispatcher(queue, platforms, clock, worker=f"w{n}", concurrency=dict.fromkeys(platforms, 3))
        for n in range(2)
    ]
    clock.set(all_posts[-1].due_at)  # type: ignore[arg-type]
    barrier = threading.Barrier(2)

    def run(d: Dispatcher) -> None:
        barrier.wait()
        for _ in range(40):
            d.run_once()

    big_grace = timedelta(days=60)
    for w in workers:
        w.settings = DispatchSettings(grace=big_grace, concurrency=dict.fromkeys(platforms, 3))
    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {p.state for p in posts(queue)} == {State.PUBLISHED}
    for f in platforms.values():
        keys = [k for k, _, _ in f.items]
        assert len(keys) == len(set(keys))
    assert sum(len(f.items) for f in platforms.values()) == len(all_posts)


def test_a_dead_workers_claims_are_looked_up_at_the_next_pass(
    queue: Database, platforms, clock: FakeClock
) -> None:
    """Claims of a worker known dead are settled at once, the lease (5 min) far from over;
    a live worker's claims, or those of a worker nothing is known of, wait for their lease."""
    host = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    real_now = datetime.now(UTC)
    workers = {  # case → (worker, its heartbeat row: (beat_at, stopped_at) or None)
        "process gone": (f"{host}:{gone.pid}:dead01", None),
        "stopped": ("elsewhere:4242:stop01", (real_now, real_now)),
        "heartbeat stale": ("elsewhere:4343:stal01", (real_now - timedelta(minutes=10), None)),
        "pid reused": (f"{host}:{os.getpid()}:reus01", None),
        "live process": (f"{host}:{live.pid}:live01", (real_now, None)),
        "fresh heartbeat": ("elsewhere:4444:frsh01", (real_now, None)),
        "nothing known": ("elsewhere:4545:once01", None),
    }
    dead = {"process gone", "stopped", "heartbeat stale", "pid reused"}
    wide = dict.fromkeys(platforms, 10)
    try:
        chosen = posts(queue)[: len(workers)]
        at(clock, chosen[-1])
        claimer = dispatcher(queue, platforms, clock, worker="claimer", concurrency=wide)
        with queue.write() as s:
            for (case, (worker, beat)), p in zip(workers.items(), chosen, strict=True):
                row = s.get_one(PostRow, p.id)
                assert claimer._claim_one(s, row, clock.now()) is not None, case
                row.claimed_by = worker  # as if that worker had claimed it
                if beat is not None:
                    s.add(
                        DaemonRow(
                            worker=worker,
                            host=worker.split(":")[0],
                            pid=int(worker.split(":")[1]),
                            mode="run",
                            started_at=real_now - timedelta(hours=1),
                            beat_at=beat[0],
                            stopped_at=beat[1],
                        )
                    )
        claimer.close()
        clock.advance(timedelta(minutes=1))  # the lease has 4 minutes to run
        alive = dispatcher(queue, platforms, clock, worker="alive", concurrency=wide)
        report = alive.run_once()
        alive.close()
    finally:
        live.kill()
        live.wait()
    assert report.recovered == len(dead)
    for (case, (worker, _)), p in zip(workers.items(), chosen, strict=True):
        looked_up = p.idempotency_key in platforms[p.channel].lookups
        state = posts(queue, id=p.id)[0].state
        if case in dead:
            assert looked_up and state != State.SENDING, case
            with queue.read() as s:
                causes = list(
                    s.scalars(
                        select(PostEvent.cause).where(
                            PostEvent.post_id == p.id, PostEvent.to_state == State.UNCONFIRMED
                        )
                    )
                )
            assert len(causes) == 1 and worker in causes[0] and "dead" in causes[0], (case, causes)
        else:
            assert not looked_up and state == State.SENDING, case
        assert platforms[p.channel].calls.count(p.idempotency_key) == 0  # never resent blindly


def last_cause(db: Database, post_id: int) -> str:
    with db.read() as s:
        cause = s.scalars(
            select(PostEvent.cause)
            .where(PostEvent.post_id == post_id)
            .order_by(PostEvent.id.desc())
            .limit(1)
        ).first()
    assert cause is not None
    return cause


def test_a_missed_post_says_the_channel_was_paused_and_by_whom(
    queue: Database, platforms, clock: FakeClock
) -> None:
    zalo = posts(queue, channel="zalo")
    with queue.write() as s:
        s.add(ChannelState(channel="zalo", paused=True, paused_by="bientap", updated_at=T0))
    d = dispatcher(queue, platforms, clock)
    at(clock, zalo[0], -timedelta(minutes=1))
    d.run_once()  # the daemon runs from before the post's time
    at(clock, zalo[0], timedelta(hours=3))
    d.run_once()
    assert posts(queue, id=zalo[0].id)[0].state == State.MISSED
    cause = last_cause(queue, zalo[0].id)
    assert "grace window: channel zalo paused by bientap; reschedule it" in cause, cause


def test_a_missed_post_says_its_channel_was_stopped_and_why(
    queue: Database, platforms, clock: FakeClock
) -> None:
    fb = posts(queue, channel="facebook")
    platforms["facebook"].then(fb[0].idempotency_key, fail(AuthError("code 190: re-authorise")))
    platforms["facebook"].check_ok = False
    d = dispatcher(queue, platforms, clock)
    at(clock, fb[0])
    d.run_once()
    at(clock, fb[1], timedelta(hours=3))
    d.run_once()
    assert posts(queue, id=fb[1].id)[0].state == State.MISSED
    cause = last_cause(queue, fb[1].id)
    assert "grace window: channel facebook stopped: auth: fake;" in cause, cause  # its check said


def test_a_missed_post_says_no_daemon_ran_when_it_fell_due(
    queue: Database, platforms, clock: FakeClock
) -> None:
    zalo = posts(queue, channel="zalo")
    at(clock, zalo[0], timedelta(hours=3))  # the daemon starts 3 h after the post's time
    dispatcher(queue, platforms, clock).run_once()
    cause = last_cause(queue, zalo[0].id)
    started = f"{zalo[0].due_at + timedelta(hours=3):%Y-%m-%d %H:%M} UTC"  # type: ignore[operator]
    assert f"no daemon was running when it fell due (this one started {started})" in cause, cause


def test_a_missed_post_says_its_channel_was_busy_with_earlier_posts(
    queue: Database, platforms, clock: FakeClock
) -> None:
    zalo = posts(queue, channel="zalo")
    at(clock, zalo[0])
    slow = dispatcher(queue, platforms, clock, worker="other", lease=timedelta(days=10))
    with queue.write() as s:  # another worker's call that never ends (its lease holds)
        assert slow._claim_one(s, s.get_one(PostRow, zalo[0].id), clock.now()) is not None
    d = dispatcher(queue, platforms, clock)
    d.run_once()  # this daemon runs from the first post's time on
    at(clock, zalo[1], timedelta(hours=3))
    d.run_once()
    assert posts(queue, id=zalo[1].id)[0].state == State.MISSED
    cause = last_cause(queue, zalo[1].id)
    assert "grace window: channel zalo was busy with 1 earlier post(s) (concurrency 1);" in cause


def test_a_retry_waiting_on_a_stopped_channel_fails_at_max_lateness_not_later(
    queue: Database, platforms, clock: FakeClock
) -> None:
    """Retries end max_lateness past the post's time even when no attempt fails then (its
    channel throttled for a day): it is never sent that late."""
    fb = posts(queue, channel="facebook")
    until = fb[0].due_at + timedelta(days=1)  # type: ignore[operator]
    platforms["facebook"].then(fb[0].idempotency_key, fail(Throttled("code 4", until=until)))
    d = dispatcher(queue, platforms, clock)
    at(clock, fb[0])
    d.run_once()
    at(clock, fb[0], timedelta(hours=6, minutes=1))
    d.run_once()
    assert posts(queue, id=fb[0].id)[0].state == State.FAILED
    assert last_cause(queue, fb[0].id).startswith(
        "gave up: more than 6 h past its time; channel facebook stopped: throttled: code 4"
    )
    clock.set(until)
    d.run_once()
    assert platforms["facebook"].calls.count(fb[0].idempotency_key) == 1


def test_the_adapter_gets_each_picture_with_the_approved_bytes(
    queue: Database, platforms, clock: FakeClock, config: Config
) -> None:
    banner = (config.messages_dir / config.media.default_cover).read_bytes()
    seen: list[Outgoing] = []
    p = first(queue, "zalo")
    platforms["zalo"].then(p.idempotency_key, seen.append)
    at(clock, p)
    dispatcher(queue, platforms, clock).run_once()
    assert posts(queue, id=p.id)[0].state == State.PUBLISHED
    (post,) = seen
    assert post.cover is not None and post.images == ()
    assert post.cover.data == banner and post.cover.mime == "image/jpeg"
    assert post.cover.sha256 == hashlib.sha256(banner).hexdigest()
    assert post.cover.alt.startswith("Ảnh bìa Tháng hành động")
    assert post.cover.name.startswith("thang-hanh-dong-vi-tre-em-2024-")


def test_a_claim_reads_its_pictures_bytes_once(
    queue: Database, platforms, clock: FakeClock
) -> None:
    """The bytes checked against the approval are the bytes sent: one read of the picture
    table per claimed post with pictures, not one to check and another to send (a 90 kB cover
    read twice from PostgreSQL was a fifth of a daemon's CPU per post, bench/findings.py)."""
    p = first(queue, "facebook")
    reads: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM media_file" in statement:
            reads.append(statement)

    at(clock, p)
    event.listen(queue.engine, "before_cursor_execute", seen)
    try:
        dispatcher(queue, platforms, clock).run_once()
    finally:
        event.remove(queue.engine, "before_cursor_execute", seen)
    published = [q for q in posts(queue, state=State.PUBLISHED) if q.fields.get("media")]
    assert published, "the campaign's articles carry its cover"
    assert len(reads) == len(published)


def test_a_picture_changed_in_the_database_is_not_sent(
    queue: Database, platforms, clock: FakeClock
) -> None:
    p = first(queue, "facebook")
    with queue.write() as s:
        for f in s.scalars(select(MediaFile)):
            f.data = f.data + b"\0"  # the stored bytes no longer match the approved hash
    at(clock, p)
    dispatcher(queue, platforms, clock).run_once()
    after = posts(queue, id=p.id)[0]
    assert after.state == State.DRAFT
    assert platforms["facebook"].calls == []
    with queue.read() as s:
        causes = [e.cause for e in s.scalars(select(PostEvent).where(PostEvent.post_id == p.id))]
    assert any("the approved picture thang-hanh-dong-vi-tre-em-2024-" in c for c in causes)
