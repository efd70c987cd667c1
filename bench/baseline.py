"""Item 6: the baseline a developer would write first, APScheduler 3.11 with a
``SQLAlchemyJobStore`` (SQLite) and one ``date`` job per post, beside publisher on the same
three questions: time to schedule N posts, restart time with N stored, and how many posts due
during a 10-minute outage are lost.

The outage is simulated, not waited for: the posts are stored due over the 10 minutes before the
restart. APScheduler keeps its default ``misfire_grace_time`` (1 s); publisher its ``grace`` (2 h)
on a ``FakeClock`` dispatcher, with an adapter that accepts everything.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    Row,
    Sizes,
    approved_queue,
    make_campaign,
    secs,
    synthetic,
    wide_config,
    write_messages,
)

CHANNELS = ("portal_stp", "portal_pbgdpl", "facebook", "zalo")
OUTAGE = timedelta(minutes=10)
EVE = datetime(2024, 5, 31, 12, 0, tzinfo=UTC)  # before the campaign: nothing is due yet

_ran: list[int] = []


def publish_post(post_id: int) -> None:
    """The baseline's job: module-level, as the job store pickles a reference to it."""
    _ran.append(post_id)


def run(sizes: Sizes, tmp: Path) -> list[Row]:
    folder = tmp / "baseline"
    folder.mkdir(parents=True, exist_ok=True)
    n = sizes.scheduled
    aps_schedule, aps_restart, aps_loaded = _aps_schedule_and_restart(folder / "jobs.sqlite", n)
    aps_ran, aps_missed = _aps_outage(folder / "outage.sqlite", sizes.outage_posts)
    pub_schedule, pub_restart, pub_count = _publisher_schedule_and_restart(folder / "queue", n)
    pub_done, pub_missed = _publisher_outage(folder / "outage-queue", sizes.outage_posts)
    m = sizes.outage_posts
    return [
        Row(
            "6",
            f"schedule {n:,} posts (publisher: load = read, render, plan, insert; one transaction)",
            secs(pub_schedule),
            "beside the baseline",
            f"APScheduler add_job × {n:,}: {secs(aps_schedule)}",
            "",
            f"publisher queued {pub_count:,} posts; the baseline's jobs hold no rendered text",
        ),
        Row(
            "6b",
            f"restart with {n:,} stored (publisher: open the queue + first dispatch pass)",
            secs(pub_restart),
            "beside the baseline",
            f"APScheduler start + get_jobs: {secs(aps_restart)} ({aps_loaded:,} jobs)",
            "",
            "in-process, imports already done on both sides; nothing due yet on either side "
            "(publisher's pass and next wake-up find that in the database; APScheduler "
            "unpickles every job)",
        ),
        Row(
            "6c",
            f"posts lost to a 10-minute outage ({m} due during it)",
            f"{pub_missed} lost, {pub_done} published on restart",
            "0 within the 2 h grace",
            f"APScheduler (misfire_grace_time=1 s): {aps_missed} lost, {aps_ran} ran",
            "met" if pub_missed == 0 and pub_done == m else "missed",
            "baseline: every job due > 1 s before the restart is EVENT_JOB_MISSED and removed",
        ),
    ]


# -- APScheduler ------------------------------------------------------------------------------


def _scheduler(path: Path) -> Any:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(url=f"sqlite:///{path}")
    return BackgroundScheduler(jobstores={"default": store}, timezone=UTC)


def _aps_schedule_and_restart(path: Path, n: int) -> tuple[float, float, int]:
    first = datetime.now(UTC) + timedelta(days=1)
    sched = _scheduler(path)
    sched.start()
    started = time.perf_counter()
    for i in range(n):
        sched.add_job(
            publish_post, "date", run_date=first + timedelta(minutes=i), args=[i], id=f"post-{i}"
        )
    schedule = time.perf_counter() - started
    sched.shutdown()

    started = time.perf_counter()
    again = _scheduler(path)
    again.start(paused=True)
    jobs = again.get_jobs()
    restart = time.perf_counter() - started
    again.shutdown()
    return schedule, restart, len(jobs)


def _aps_outage(path: Path, n: int) -> tuple[int, int]:
    """N jobs due over the 10 minutes before the restart; how many run, how many are missed."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    restart = datetime.now(UTC)
    # The scheduler that went down: it stores the jobs, then is left paused, as if killed.
    # (Shutting a paused scheduler down runs one processing pass that eats due jobs, the
    # pitfall of scheduler-notes §1.8, which would muddle the count.)
    before = _scheduler(path)
    before.start(paused=True)
    step = OUTAGE / n
    for i in range(n):
        when = restart - OUTAGE + step * i
        before.add_job(publish_post, "date", run_date=when, args=[i], id=f"post-{i}")

    counts = {"ran": 0, "missed": 0}
    done = threading.Event()
    lock = threading.Lock()

    def listen(event: Any) -> None:
        with lock:
            counts["missed" if event.code == EVENT_JOB_MISSED else "ran"] += 1
            if counts["ran"] + counts["missed"] >= n:
                done.set()

    after = _scheduler(path)
    after.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    after.start()
    done.wait(60)
    after.shutdown()
    before.shutdown()  # nothing of its jobs is left to eat
    return counts["ran"], counts["missed"]


# -- publisher --------------------------------------------------------------------------------


class _Accepting:
    """An adapter whose platform accepts every post at once (the outage is about policy)."""

    def publish(self, post: Any) -> Any:
        from publisher.channels.base import Receipt

        return Receipt(f"bench-{post.post_id}", None)

    def lookup(self, post: Any, since: datetime) -> Any:
        return None

    def check(self) -> Any:
        from publisher.channels.base import CheckResult

        return CheckResult(True, "bench")

    def pacing(self) -> float:
        return 0.0


def _publisher_schedule_and_restart(folder: Path, n: int) -> tuple[float, float, int]:
    from sqlalchemy import func, select

    from publisher.app import make_dispatcher
    from publisher.clock import FakeClock
    from publisher.config import load_config
    from publisher.editorial.load import approve, load
    from publisher.store.db import open_database
    from publisher.store.models import PostRow

    path = make_campaign(folder, wide_config(every_min=10), with_messages=False)
    write_messages(folder / "messages", synthetic(n // len(CHANNELS), CHANNELS))
    config = load_config(path)
    db = open_database(config.database_url)  # the schema exists before the clock starts
    now = datetime.now(UTC)
    started = time.perf_counter()
    load(db, config, now, "vanphong")
    schedule = time.perf_counter() - started
    approve(db, [], everything=True, actor="tuan.la", now=now)
    with db.read() as s:
        count = s.scalar(select(func.count()).select_from(PostRow)) or 0
    db.close()

    started = time.perf_counter()
    db = open_database(config.database_url)
    clock = FakeClock(EVE)
    adapters = {cid: _Accepting() for cid in CHANNELS}
    dispatcher = make_dispatcher(db, config, adapters, clock, worker="bench")
    dispatcher.run_once()
    dispatcher.next_wake()
    restart = time.perf_counter() - started
    dispatcher.close()
    db.close()
    return schedule, restart, count


def _publisher_outage(folder: Path, n: int) -> tuple[int, int]:
    from sqlalchemy import func, select

    from publisher.app import make_dispatcher
    from publisher.clock import FakeClock
    from publisher.store.models import PostRow

    config, db = approved_queue(folder, wide_config(every_min=10), synthetic(n // 4, CHANNELS))
    restart = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
    step = OUTAGE / n
    with db.write() as s:
        for i, p in enumerate(s.scalars(select(PostRow).order_by(PostRow.id))):
            p.due_at = restart - OUTAGE + step * i
    clock = FakeClock(restart)
    adapters = {cid: _Accepting() for cid in CHANNELS}
    dispatcher = make_dispatcher(db, config, adapters, clock, worker="bench")
    while dispatcher.run_once().claimed:
        clock.advance(timedelta(seconds=1))
    dispatcher.close()
    with db.read() as s:
        states = dict(
            s.execute(select(PostRow.state, func.count()).group_by(PostRow.state)).tuples().all()
        )
    db.close()
    return states.get("published", 0), states.get("missed", 0)
