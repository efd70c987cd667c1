"""Item 3: dispatch lateness in real time against the local sandbox.

A real ``Daemon`` (APScheduler waker, ``SystemClock``, the configured tick) drives a real
``Dispatcher`` with the real adapters (Zalo with its database token store) against
``publisher sandbox`` served by a child process (``SandboxProcess``: its Python has its own GIL,
so the sandbox's work is not counted as the client's). Lateness of a post = its
``published_at`` (taken right after the platform answered) − its ``due_at``. Bursts: N posts
due at the same whole second; lone posts: one due every 250 ms, the case a campaign's calendar
actually has.

The floor, same run, a sandbox process of its own too: the same posts sent by the same adapters
with the same concurrency per channel, all started at once, with no queue, no claims and no
scheduler (the Zalo adapter still reads its token from the database, as it does under the
dispatcher); its "lateness" is each call's answer time after the start. No dispatcher can beat
it here. A floor call that fails is counted and named in the row, and the ratio is then said on
the calls that succeeded: no figure is ever nan.
"""

from __future__ import annotations

import logging
import math
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    Row,
    Sizes,
    approved_queue,
    percentile,
    sandbox_adapters,
    synthetic,
    verdict,
    wide_config,
)

logger = logging.getLogger(__name__)

CHANNELS = ("portal_stp", "portal_pbgdpl", "facebook", "zalo")
LONE_TARGET = 0.050  # issue 18: a lone post's p99 (it was 100 ms)
IMAP = ("--imap-port", "0")
STARTUP_TIMEOUT = 60.0  # seconds for the sandbox process to say where it listens
FLOOR_RATIO = 1.3  # issue 18: a burst's p99 at most this many times its floor's
LONE_SPACING = 0.25  # seconds between two lone posts' times


def run(sizes: Sizes, tmp: Path) -> list[Row]:
    rows = []
    concurrencies = [None, 8] if sizes.quick else [None, 8, 32]
    for c in concurrencies:
        r = _safely(measure, tmp, sizes.due_together, concurrency=c)
        f = _safely(floor, tmp, sizes.due_together, concurrency=c)
        label = "1, as configured" if c is None else str(c)
        rows.append(
            Row(
                "3" if c is None else f"3 (c={c})",
                f"lateness, {r['n']:,} posts due in the same second, channel concurrency {label}",
                _figure(r),
                f"p99 ≤ {FLOOR_RATIO}× the floor's",
                f"the calls alone (no queue, claims or scheduler): {_figure(f)}" + _failed(f),
                verdict(
                    r["published"] == r["n"]
                    and bool(f["published"])
                    and r["p99"] <= FLOOR_RATIO * f["p99"]
                ),
                _note(r) + "; " + _ratio(r, f),
            )
        )
    lone = 4 if sizes.quick else 40
    r = _safely(measure, tmp, lone, concurrency=None, spacing=LONE_SPACING)
    f = _safely(floor, tmp, lone, concurrency=None, spacing=LONE_SPACING)
    rows.append(
        Row(
            "3b",
            f"lateness, {lone} lone posts (one due every 250 ms), concurrency 1",
            _figure(r),
            f"p99 < {LONE_TARGET * 1000:.0f} ms",
            f"the calls alone, each made at its post's time: {_figure(f)}" + _failed(f),
            verdict(r["p99"] < LONE_TARGET and r["published"] == r["n"]),
            _note(r) + "; " + _ratio(r, f) + _slowest(f),
        )
    )
    return rows


def _slowest(f: dict[str, Any]) -> str:
    """The floor's p99 channel by channel, and the slowest, when the floor says them."""
    per = f.get("channels") or {}
    if not per:
        return ""
    slowest = max(per, key=per.__getitem__)
    each = ", ".join(f"{c} {t * 1000:,.0f}" for c, t in sorted(per.items()))
    return f"; the floor's p99 by channel (ms): {each} (slowest: {slowest})"


def _safely(how: Callable[..., dict[str, Any]], tmp: Path, n: int, **kwargs: Any) -> dict[str, Any]:
    """``how(tmp, n, **kwargs)``, or, if it raised, a result saying that nothing was sent and
    why: a run unattended still prints every row."""
    try:
        return how(tmp, n, **kwargs)
    except Exception as exc:
        logger.exception("lateness: %s of %s posts failed", how.__name__, n)
        cause = f"{type(exc).__name__}: {str(exc)[:160]}"
        nan = float("nan")
        return {
            "n": n,
            "published": 0,
            "failed": n,
            "why": [(cause, n)],
            "error": cause,
            "passes": 0,
            "rate": 0.0,
            "detours": [],
            **dict.fromkeys(("p50", "p95", "p99", "max"), nan),
        }


def _figure(r: dict[str, Any]) -> str:
    if "error" in r:
        return "not measured"
    if not r["published"]:
        return "none sent"
    return " / ".join(f"{r[k] * 1000:,.0f}" for k in ("p50", "p95", "p99", "max")) + " ms"


def _failed(f: dict[str, Any]) -> str:
    """How many of the floor's calls failed and why (the commonest causes), or nothing."""
    if not f["failed"]:
        return ""
    if "error" in f:
        return f"; not measured: {f['error']}"
    why = "; ".join(f"{n}× {cause}" for cause, n in f["why"])
    return f"; {f['failed']} of {f['n']} calls failed ({why}), the figure is of the others"


def _ratio(r: dict[str, Any], f: dict[str, Any]) -> str:
    """p99 over the floor's p99, said on what each side sent when not all of it was sent."""
    if not r["published"] or not f["published"]:
        return "no ratio: " + (
            "nothing was sent" if not r["published"] else "no floor call succeeded"
        )
    ratio = f"p99 {r['p99'] / f['p99']:.2f}× the floor's"
    if r["published"] < r["n"] or f["published"] < f["n"]:
        ratio += (
            f", on what succeeded ({r['published']}/{r['n']} sent, "
            f"{f['published']}/{f['n']} floor calls)"
        )
    return ratio


def _note(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"not measured: {r['error']}"
    note = (
        f"p50/p95/p99/max; {r['published']}/{r['n']} sent (published or handed off) "
        f"in {r['passes']} passes, {r['rate']:,.0f} posts/s"
    )
    if r.get("call_p99", math.nan) == r.get("call_p99"):  # not nan: the calls' start noted
        note += (
            f"; calls began p50/p99 {r['call_p50'] * 1000:,.0f}/{r['call_p99'] * 1000:,.0f} ms "
            "after their time (the lateness less the call itself)"
        )
    if r["detours"]:
        note += f"; {len(r['detours'])} retried or looked up (first: {r['detours'][0][:120]})"
    return note


def measure(tmp: Path, n: int, *, concurrency: int | None, spacing: float = 0.0) -> dict[str, Any]:
    """Publish ``n`` posts due at ``T`` (+ ``i × spacing``) and return their lateness."""
    from sqlalchemy import select

    from publisher.app import make_dispatcher
    from publisher.clock import SystemClock
    from publisher.dispatch.daemon import Daemon
    from publisher.states import PENDING, RunMode
    from publisher.store.models import PostEvent, PostRow

    name = f"lateness-{concurrency or 'cfg'}-{n}-{spacing}"
    config, db = _queue(Path(tmp), name, n, concurrency)
    passes = 0

    def pending() -> int:
        with db.read() as s:
            return len(s.scalars(select(PostRow.id).where(PostRow.state.in_(PENDING))).all())

    def count(_report: Any) -> None:
        nonlocal passes
        passes += 1

    with SandboxProcess() as url:
        cfg, adapters = sandbox_adapters(config, db, url)
        _warm(adapters)
        clock = SystemClock()
        calls = _timed(adapters, clock)
        dispatcher = make_dispatcher(db, cfg, adapters, clock, worker=f"bench-{name}")
        with db.write() as s:
            posts = list(s.scalars(select(PostRow).order_by(PostRow.id)))
            for extra in posts[n:]:  # the last message may bring more posts than asked for
                extra.state = "cancelled"
            due = (clock.now() + timedelta(seconds=1.5)).replace(microsecond=0)
            for i, p in enumerate(posts[:n]):
                p.due_at = due + timedelta(seconds=i * spacing)
        daemon = Daemon(
            db,
            dispatcher,
            clock,
            tick=cfg.daemon.tick.total_seconds(),
            mode=RunMode.RUN,  # the production path, measured
            until=lambda: pending() == 0,
            on_pass=count,
        )
        watchdog = threading.Timer(120 + n * 0.5, daemon.stop, args=("bench watchdog",))
        watchdog.start()
        try:
            daemon.run()
        finally:
            watchdog.cancel()
            for adapter in adapters.values():
                _close(adapter)
    with db.read() as s:
        # sent: published, or (an email channel's) handed off to the desk — the daemon's part
        done = [
            (p.due_at, p.published_at or p.handed_off_at)
            for p in s.scalars(
                select(PostRow).where(PostRow.state.in_(["published", "handed_off"]))
            )
        ]
        due_of = {i: d for i, d in s.execute(select(PostRow.id, PostRow.due_at))}
        detours = list(
            s.scalars(
                select(PostEvent.cause).where(PostEvent.to_state.in_(["retrying", "unconfirmed"]))
            )
        )
    db.close()
    late = [(pub - d).total_seconds() for d, pub in done if pub is not None and d is not None]
    # when each post's (first) call began: lateness less the call itself
    dues = {p_id: d for p_id, d in due_of.items() if d is not None}
    began = [(calls[i] - dues[i]).total_seconds() for i in calls if i in dues]
    first_due = due
    last = max((pub for _d, pub in done if pub is not None), default=first_due)
    span = max(1e-3, (last - first_due).total_seconds())
    return {
        "n": n,
        "published": len(done),
        "passes": passes,
        "p50": percentile(late, 50),
        "p95": percentile(late, 95),
        "p99": percentile(late, 99),
        "max": max(late, default=float("nan")),
        "call_p50": percentile(began, 50),
        "call_p99": percentile(began, 99),
        "rate": len(done) / span,
        "detours": detours,  # why posts were retried or looked up, if any were
        "at": datetime.now(UTC),
    }


def floor(tmp: Path, n: int, *, concurrency: int | None, spacing: float = 0.0) -> dict[str, Any]:
    """The same ``n`` posts through the same adapters and sandbox, as many at a time per
    channel as the dispatcher would call, each started at its time (``start + i × spacing``:
    all at once for a burst): the calls alone, no database work. Its "lateness" is each
    answer's time after the post's."""
    from sqlalchemy import select

    from publisher.dispatch.dispatcher import outgoing_of, picture_shas
    from publisher.store.media import files
    from publisher.store.models import PostRow

    name = f"floor-{concurrency or 'cfg'}-{n}-{spacing}"
    config, db = _queue(Path(tmp), name, n, concurrency)
    with db.read() as s:
        posts = list(s.scalars(select(PostRow).order_by(PostRow.id)))[:n]
        # the approved pictures' bytes, as the dispatcher loads them at the claim
        stored = files(s, [sha for p in posts for sha in picture_shas(p.fields)])
        queues = {
            ch: [
                (i * spacing, outgoing_of(p, files=stored))
                for i, p in reversed(list(enumerate(posts)))
                if p.channel == ch
            ]
            for ch in CHANNELS
        }
    late: list[float] = []
    by_channel: dict[str, list[float]] = {ch: [] for ch in CHANNELS}
    failed: Counter[str] = Counter()
    with SandboxProcess() as url:
        cfg, adapters = sandbox_adapters(config, db, url)
        _warm(adapters)
        go = threading.Event()
        start = 0.0

        def worker(queue: list[Any]) -> None:
            go.wait()
            while True:
                try:
                    offset, post = queue.pop()  # oldest first, as the dispatcher claims
                except IndexError:
                    return
                time.sleep(max(0.0, start + offset - time.monotonic()))
                try:
                    adapters[post.channel].publish(post)
                    answered = time.monotonic() - start - offset
                    late.append(answered)
                    by_channel[post.channel].append(answered)
                except Exception as exc:  # counted, and named in the row's note
                    failed[f"{post.channel}: {type(exc).__name__}: {str(exc)[:80]}"] += 1

        threads = [
            threading.Thread(target=worker, args=(queues[ch],))
            for ch in CHANNELS
            for _ in range(cfg.channels[ch].concurrency)
        ]
        for t in threads:
            t.start()
        start = time.monotonic()
        go.set()
        for t in threads:
            t.join()
        for adapter in adapters.values():
            _close(adapter)
    db.close()
    return {
        "n": n,
        "published": len(late),
        "failed": sum(failed.values()),
        "why": failed.most_common(3),
        "p50": percentile(late, 50),
        "p95": percentile(late, 95),
        "p99": percentile(late, 99),
        "max": max(late, default=float("nan")),
        "channels": {ch: percentile(t, 99) for ch, t in by_channel.items() if t},
    }


def _queue(tmp: Path, name: str, n: int, concurrency: int | None) -> Any:
    """The campaign of ``n`` posts, approved, in ``tmp/name``: loaded and approved once for
    each ``n`` (in ``tmp/template-N``), its queue copied for every run after (the channels'
    concurrency changes no stored row: each run gets the same posts). (config, database)."""
    raw = wide_config(every_min=10, concurrency=concurrency)
    messages = synthetic(-(-n // len(CHANNELS)), CHANNELS)
    template = tmp / f"template-{n}"
    if not (template / "publisher.db").exists():
        _config, db = approved_queue(template, wide_config(every_min=10), messages)
        db.close()  # checkpointed: the file alone holds every row
    return approved_queue(tmp / name, raw, messages, like=template)


def _timed(adapters: dict[str, Any], clock: Any) -> dict[int, datetime]:
    """Note when each post's first call begins (post id → the clock's time): how late its
    call starts, which the row's note gives beside the lateness (which includes the call)."""
    began: dict[int, datetime] = {}

    def timed(publish: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(post: Any) -> Any:
            began.setdefault(post.post_id, clock.now())
            return publish(post)

        return call

    for adapter in adapters.values():
        adapter.publish = timed(adapter.publish)
    return began


def _warm(adapters: dict[str, Any]) -> None:
    """One check per channel first (connections open, Zalo's first token), and one Word
    document built if a channel mails the desk (python-docx is imported at the first), as a
    daemon that has been running has done: both sides of the comparison start warm."""
    from publisher.channels.email_desk import EmailAdapter
    from publisher.channels.email_docx import article_docx

    for adapter in adapters.values():
        adapter.check()
        if isinstance(adapter, EmailAdapter):
            article_docx("warm", "<p>warm</p>", ())


def _close(adapter: Any) -> None:
    client = getattr(adapter, "client", None) or getattr(adapter, "_client", None)
    if client is not None:
        client.close()


class SandboxProcess:
    """``publisher sandbox`` in a child process of its own (``with SandboxProcess() as url``),
    so the sandbox's Python does not share the measured client's GIL: each has a core of its
    own on a 2-core machine. Stopped with Ctrl-C's signal, as a person stops it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        from bench import ROOT
        from bench.common import PYTHON

        env = {k: v for k, v in os.environ.items() if k != "PUBLISHER_DATABASE_URL"}
        env["PYTHONPATH"] = str(ROOT)
        env["PUBLISHER_LANG"] = "en"
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter running our own package
            [PYTHON, "-m", "publisher", "sandbox", *("--port", "0", "--smtp-port", "0"), *IMAP],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None  # noqa: S101 - asked for just above
        ready, _w, _x = select.select([self.proc.stdout], [], [], STARTUP_TIMEOUT)
        # "publisher sandbox at http://127.0.0.1:PORT …", or nothing if it did not start
        first = self.proc.stdout.readline() if ready else f"nothing in {STARTUP_TIMEOUT:.0f} s"
        found = re.search(r"https?://[\d.]+:\d+", first)
        if found is None:
            self.__exit__()
            raise RuntimeError(f"the sandbox process did not say where it listens: {first!r}")
        return found.group(0)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
