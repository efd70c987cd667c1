"""The daemon: APScheduler wakes the dispatcher at the next due time and on a safety tick.

APScheduler holds only two in-memory jobs (``tick`` and a re-armed one-shot ``wake``); the
database is the single source of truth. SIGTERM/SIGINT stop claiming, let calls in flight
finish for a few seconds, and exit; anything still in flight is reconciled on the next start.

When the desks' replies are read by IMAP, a thread of its own polls the mailbox every
``replies_every`` real seconds (``replies``: one poll); a poll that fails is logged and tried
again at the next, and never holds up a pass.

When figures are read (``insights``: one round of the collector), APScheduler's ``insights``
job wakes a thread of its own every ``insights_every`` real seconds; a round that fails is
logged, and publishing never waits for one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from publisher.clock import Clock
from publisher.dispatch.dispatcher import Dispatcher
from publisher.dispatch.outcomes import PassReport
from publisher.errors import PublisherError
from publisher.states import RunMode
from publisher.store import audit
from publisher.store.db import Database
from publisher.store.models import DaemonRow

logger = logging.getLogger(__name__)

MIN_REPLIES = 1.0  # real seconds between two polls of the replies' mailbox, at least
MIN_WAKE = 0.05  # real seconds: after a pass that claimed nothing, so a stuck post cannot spin
HEAD_EVERY = 86400.0  # real seconds between the audit head's log lines (and at start and stop)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Ask glibc's allocator for at most ``arenas`` heaps, as ``MALLOC_ARENA_MAX`` would.

    Each thread (the dispatcher's calls, APScheduler's, the HTTP pool) otherwise gets an arena
    of its own that keeps its freed memory: over a month the process grows by megabytes it does
    not use (bench/RESULTS.md, item 4b). The daemon's threads mostly wait on the network, so
    sharing two arenas costs nothing measurable. Elsewhere than glibc this does nothing; an
    explicit ``MALLOC_ARENA_MAX`` in the environment wins.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-8, arenas))  # -8 is M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        return False


class Daemon:
    """Runs passes of a dispatcher when due; stops on a signal or when ``until`` says so.

    One thread runs the passes, one at a time. APScheduler's jobs (the safety tick and the
    one-shot wake at the next due time) only ask for a pass: a request that arrives while a
    pass runs makes exactly one more pass after it, however many arrive, so jobs never pile
    up. The heartbeat (and ``until``) is written by a thread of its own every tick, in real
    time, whatever a pass is waiting for: a slow call never makes this daemon look dead.
    """

    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        tick: float,
        mode: RunMode = RunMode.RUN,
        until: Callable[[], bool] | None = None,
        on_pass: Callable[[PassReport], None] | None = None,
        stop_timeout: float = 4.0,
        replies: Callable[[], object] | None = None,
        replies_every: float = 300.0,
        chores: Callable[[], None] | None = None,
        chores_every: float = 30.0,
        insights: Callable[[], object] | None = None,
        insights_every: float = 3600.0,
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.clock = clock
        self.tick = tick
        self.mode = mode
        self.until = until
        self.on_pass = on_pass
        self.stop_timeout = stop_timeout
        self.replies = replies
        self.replies_every = max(MIN_REPLIES, replies_every)
        # Work beside publishing (the alerts: app.alert_round), every ``chores_every`` real
        # seconds in a thread of its own and once more at the stop; it must log its failures.
        self.chores = chores
        self.chores_every = chores_every
        # The figures' round (app.make_collector's ``safe``), woken by the ``insights`` job.
        self.insights = insights
        self.insights_every = max(MIN_REPLIES, insights_every)
        self._insights_wanted = threading.Event()
        self.stopping = threading.Event()
        self.passes = 0
        # Set while no pass runs and none is asked for.
        self.idle = threading.Event()
        self._wanted = False
        self._cond = threading.Condition()
        self._scheduler: Any = None
        self._head_logged = 0.0  # time.monotonic() when the audit head was last logged
        dispatcher.on_answer = self.wake  # a call that outlived its pass: record it soon
        dispatcher.on_stream = self._arm  # a pass waits for calls: wake it at the next post due

    # -- heartbeat -------------------------------------------------------------------------

    def _beat(self, *, stopped: bool = False) -> None:
        now = datetime.now(UTC)  # the heartbeat is real time, whatever the dispatcher's clock
        with self.db.write() as s:
            row = s.get(DaemonRow, self.dispatcher.worker)
            if row is None:
                row = DaemonRow(
                    worker=self.dispatcher.worker,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    mode=self.mode,
                    started_at=now,
                    beat_at=now,
                )
                s.add(row)
            row.beat_at = now
            row.stopped_at = now if stopped else None

    # -- the audit head ---------------------------------------------------------------------

    def log_audit_head(self, *, start: bool = False) -> None:
        """Write the audit chain's head to the log (at start, daily, at shutdown): a record
        outside the database that ``publisher audit --verify --expect ID:HASH`` checks, so a
        trail cut back or rewritten in the database is found. At start it keys an unkeyed
        chain first and a key problem stops the daemon; later it never does."""
        try:
            logger.info(audit.head_line(self.db, key_first=start))
        except PublisherError as exc:
            if start:
                raise
            logger.error("audit head: %s", exc.line())
        self._head_logged = time.monotonic()

    # -- heartbeat thread --------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.tick):
            try:
                self._beat()
                if self.until and self.until():
                    self.stop("finished")
            except Exception:
                logger.exception("could not write the heartbeat; trying again next tick")

    # -- replies thread ----------------------------------------------------------------------

    def _replies(self) -> None:
        """Poll the replies' mailbox now, then every ``replies_every`` seconds until stopped."""
        assert self.replies is not None  # noqa: S101 - the thread runs only with a poll
        while not self.stopping.is_set():
            try:
                self.replies()
            except PublisherError as exc:
                logger.warning("replies: %s; trying again later", exc.line())
            except Exception as exc:  # the mailbox away (a ChannelError), a bug: log, go on
                reason = getattr(exc, "reason", None)
                if reason:
                    logger.warning("replies: %s; trying again later", reason)
                else:
                    logger.exception("replies: the poll failed; trying again later")
            if self.stopping.wait(self.replies_every):
                return

    # -- chores thread -----------------------------------------------------------------------

    def _chores(self) -> None:
        while not self.stopping.wait(self.chores_every):
            self._chore()

    def _chore(self) -> None:
        if self.chores is None:
            return
        try:
            self.chores()
        except Exception:  # a chore never stops the daemon
            logger.exception("a periodic job failed; it runs again later")

    # -- insights thread ---------------------------------------------------------------------

    def want_insights(self) -> None:
        """Ask for a round of reading figures (the ``insights`` job does). Never waits."""
        self._insights_wanted.set()

    def _insights(self) -> None:
        """Run a round of reading figures each time one is asked for, until stopped."""
        assert self.insights is not None  # noqa: S101 - the thread runs only with a round
        while not self.stopping.is_set():
            self._insights_wanted.wait(self.tick)
            if self.stopping.is_set():
                return
            if not self._insights_wanted.is_set():
                continue
            self._insights_wanted.clear()
            try:
                self.insights()
            except Exception:  # reading figures never stops the daemon, nor publishing
                logger.exception("insights: the round failed; the next one tries again")

    # -- passes ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask for a pass. Never waits, never runs one itself."""
        with self._cond:
            self._wanted = True
            self.idle.clear()
            self._cond.notify()

    def alarm(self) -> None:
        """A time came (APScheduler's jobs: the tick, the wake at the next post due): ask for a
        pass, and have a pass that is waiting for calls claim at once what is due now."""
        self.wake()
        self.dispatcher.poke()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and not self.stopping.is_set():
                    self.idle.set()
                    self._cond.wait()
                if self.stopping.is_set():
                    return
                self._wanted = False
            self._pass()

    def _pass(self) -> None:
        """One pass, then re-arm the one-shot wake at the next due time."""
        claimed = 0
        try:
            report = self.dispatcher.run_once()
            self.passes += 1
            claimed = report.claimed
            if time.monotonic() - self._head_logged >= HEAD_EVERY:
                self.log_audit_head()
            if self.on_pass:
                self.on_pass(report)
            if self.until and self.until():
                self.stop("finished")
                return
        except Exception:
            logger.exception("dispatch pass failed; the next tick tries again")
        try:
            self._arm(progressed=claimed > 0)
        except Exception:  # e.g. the database is away: the tick wakes the next pass
            logger.exception("could not plan the next pass; the next tick tries again")

    def _arm(self, *, progressed: bool = False) -> None:
        """Ask for the next pass. A pass that claimed posts may have left more due (each
        channel claims at most its concurrency): the next pass then starts at once, as every
        claim moves its post on, so this cannot spin; otherwise at the next due time (the
        one-shot wake job), not sooner than MIN_WAKE, unless the tick comes first."""
        if self.stopping.is_set():
            return
        if progressed:
            self.wake()
            return
        if self._scheduler is None:
            return
        nxt = self.dispatcher.next_wake()
        if nxt is None:
            return
        wait = max(MIN_WAKE, self.clock.real_seconds(nxt - self.clock.now()))
        if wait >= self.tick:
            return  # the tick comes first
        run_at = datetime.now(UTC) + timedelta(seconds=wait)
        try:
            self._scheduler.add_job(
                self.alarm, "date", run_date=run_at, id="wake", replace_existing=True
            )
        except Exception:
            logger.debug("could not re-arm the wake job", exc_info=True)

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self, why: str = "signal") -> None:
        with self._cond:
            if self.stopping.is_set():
                return
            logger.info("stopping (%s)", why)
            self.stopping.set()
            self.dispatcher.stopping.set()
            self._insights_wanted.set()  # its thread sees the stop at once
            self._cond.notify_all()
        if self._scheduler is not None:
            threading.Thread(
                target=self._scheduler.shutdown, kwargs={"wait": False}, daemon=True
            ).start()

    def run(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.log_audit_head(start=True)
        self._scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._scheduler.add_job(
            self.alarm, "interval", seconds=self.tick, id="tick", next_run_time=datetime.now(UTC)
        )
        if self.insights is not None:
            self._scheduler.add_job(
                self.want_insights,
                "interval",
                seconds=self.insights_every,
                id="insights",
                next_run_time=datetime.now(UTC),
            )
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self._beat()
        passes, others = self._start_threads()
        logger.info(
            "daemon %s started (%s, tick %.1fs)", self.dispatcher.worker, self.mode, self.tick
        )
        try:
            if not self.stopping.is_set():
                self._scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._shut_down(passes, others)

    def _start_threads(self) -> tuple[threading.Thread, list[threading.Thread]]:
        """The dispatcher's passes, and the heartbeat, the reply poller, the chores and the
        figures' rounds (the three last when configured), started: (passes, the others)."""
        passes = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        others = [threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)]
        if self.replies is not None:
            others.append(threading.Thread(target=self._replies, name="replies", daemon=True))
        if self.chores is not None:
            others.append(threading.Thread(target=self._chores, name="chores", daemon=True))
        if self.insights is not None:
            others.append(threading.Thread(target=self._insights, name="insights", daemon=True))
        for thread in (passes, *others):
            thread.start()
        return passes, others

    def _shut_down(self, passes: threading.Thread, others: list[threading.Thread]) -> None:
        """After the scheduler ends: the passes stopped, the calls in flight drained (or
        abandoned), the other threads joined, the last chores done and the stop recorded."""
        self.stop("shutting down")
        deadline = time.monotonic() + self.stop_timeout
        passes.join(self.stop_timeout)
        left = max(0.0, deadline - time.monotonic())
        if passes.is_alive() or not self.dispatcher.drain(left):
            logger.warning(
                "calls still in flight after %.0fs; they are reconciled on the next start",
                self.stop_timeout,
            )
            self.dispatcher.abandon()
        self.dispatcher.close(wait=False)
        for thread in others:
            thread.join(self.stop_timeout)
        self._chore()  # what the last passes did is told before the process ends
        try:
            # Calls abandoned in flight may still reach their platforms: this worker is
            # not marked stopped, or another daemon would take their posts over at once
            # and, finding nothing yet, send them again. It counts as dead once its
            # process has exited (the calls end first) or its heartbeat is stale.
            self._beat(stopped=not self.dispatcher.abandoned.is_set())
        except Exception:
            logger.exception("could not record the stop; the heartbeat goes stale instead")
        self.log_audit_head()
        logger.info("daemon %s stopped", self.dispatcher.worker)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(signal.Signals(signum).name)
