"""Item 8 (issue 18, item 1): scale-out on PostgreSQL. The same posts (2,000 on 200 channels,
concurrency 1 each, all due at one second a few seconds ahead: a backlog, so throughput is the
daemons' capacity and not the arrival rate) dispatched by 1, 2 and 4 daemon processes sharing
the machine's PostgreSQL (a fresh schema per run, dropped afterwards; skipped with a note when
none answers at ``PUBLISHER_BENCH_PG``), against the sandbox served by ``publisher sandbox``
processes of their own (the channels sharded across ``SANDBOXES`` of them), so no client's GIL
is the sandbox's.

Each daemon is a child process (``python -m bench.scaleout daemon …``) running the product's
path: ``make_dispatcher`` and the real ``Daemon`` (claims with SKIP LOCKED, lease, fence), with
the real adapters (Facebook and the signed webhook, alternately) pointed at the sandboxes as
``publisher run --sandbox-url`` points them. Per daemon count: throughput = posts ÷ (last
answer − the due second), lateness = published_at − due_at; duplicates are counted from the
sandboxes' own records (``GET /_sandbox/records``: a channel receiving the same text twice),
not from our database. CPU time of each process (daemons, sandboxes, PostgreSQL's backends) is
read around the run: CPU per post says where a core goes, and so what the ratio would be with a
core per process.

The floor, same run: the sandboxes alone answering the same calls from bare adapters (the same
adapters, a thread per channel, in as many client processes as the most daemons, started at
once), with no queue, claims or scheduler.

``python -m bench.scaleout daemon|floor CONFIG DB_URL SHARDS_JSON [INDEX OF]`` is a child.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    CLK_TCK,
    PYTHON,
    Row,
    Sizes,
    child_env,
    make_campaign,
    percentile,
    shipped_config,
    slots,
    synthetic,
    verdict,
    write_messages,
)
from bench.web import PG, _pg_drop, _pg_schema

logger = logging.getLogger(__name__)

RATIO_TARGET = 3.0  # 4 daemons ÷ 1 daemon, from the issue
STOP_TIMEOUT = 10.0  # seconds for the sandbox processes to stop after Ctrl-C, all together
LEAD = 7.0  # seconds between the daemons being ready and the posts falling due (tick 5 s)
SANDBOX_PORTS = ("--port", "0", "--smtp-port", "0", "--imap-port", "0")  # any free ones
URL_LINE = re.compile(r"publisher sandbox at (http://\S+)")


def _sizes(sizes: Sizes) -> tuple[int, int, tuple[int, ...], int]:
    """(posts, channels, daemon counts, sandbox processes)."""
    if sizes.quick:
        return 100, 10, (1, 2), 1
    return 2_000, 200, (1, 2, 4), 2


# -- the campaign -------------------------------------------------------------------------


def channel_ids(count: int) -> list[str]:
    return [f"ch{i:03d}" for i in range(count)]


def scale_config(count: int) -> dict[str, Any]:
    """The shipped campaign with ``count`` channels instead of its four (Facebook pages and
    signed webhooks, alternately; concurrency 1 each), no mail, no alerts, no figures read."""
    raw = shipped_config()
    for table in ("mail", "imap"):
        raw.pop(table, None)
    raw["alerts"]["enabled"] = False
    raw["insights"]["enabled"] = False
    raw["media"] = {"default_cover": raw["media"]["default_cover"]}
    ids = channel_ids(count)
    for kind in raw["kinds"].values():
        kind["repeats"] = 1
        kind["channels"] = ids[:1]
    times = slots(every_min=10)
    channels: dict[str, Any] = {}
    for i, cid in enumerate(ids):
        common = {"name": f"Kênh {i:03d}", "slots": times, "daily_cap": len(times)}
        if i % 2 == 0:
            channels[cid] = common | {
                "adapter": "facebook",
                "templates": "facebook",
                "page_id": str(100_000_000_000_000 + i),
                "api_version": "v26.0",
                "secrets": {"page_token": "PUBLISHER_FACEBOOK_PAGE_TOKEN"},
            }
        else:
            channels[cid] = common | {
                "adapter": "webhook",
                "templates": "portal",
                "url": f"https://hook.example.gov.vn/{cid}",
                "secrets": {"signing_secret": "PUBLISHER_WEBHOOK_SECRET"},
            }
    raw["channels"] = channels
    return raw


def _pg_url(schema: str) -> str:
    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}options={quote(f'-csearch_path={schema}')}"


def _queue(folder: Path, url: str, posts: int, count: int, like: str | None = None) -> Path:
    """The campaign in ``folder`` loaded into the queue at ``url``, every post approved and due
    tomorrow (the daemons start with nothing due); returns the config file. With ``like``, a
    schema made so before for the same campaign, its rows are copied instead of loading and
    approving the campaign again."""
    from sqlalchemy import select

    from publisher.config import load_config
    from publisher.editorial.load import approve, load
    from publisher.states import State
    from publisher.store.db import open_database
    from publisher.store.models import PostRow

    path = make_campaign(folder, scale_config(count), with_messages=False)
    write_messages(folder / "messages", synthetic(-(-posts // count), channel_ids(count)))
    config = load_config(path)
    db = open_database(url)
    if like is not None:
        db.close()
        _copy_rows(like, url)
        return path
    now = datetime.now(UTC)
    load(db, config, now, "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=now)
    with db.write() as s:
        rows = list(s.scalars(select(PostRow).order_by(PostRow.id)))
        for extra in rows[posts:]:
            extra.state = State.CANCELLED
        for p in rows[:posts]:
            p.due_at = now + timedelta(days=1)
    db.close()
    return path


def _copy_rows(source: str, url: str) -> None:
    """Every row of schema ``source`` into the queue at ``url`` (migrated, so its tables are
    the same): what the migrations put there first is replaced, and each table's id sequence
    continues after the copied ids. One transaction."""
    from sqlalchemy import create_engine, text

    from publisher.store.models import Base

    target = url.rsplit("search_path%3D", 1)[-1]
    tables = Base.metadata.sorted_tables
    engine = create_engine(PG)
    try:
        with engine.begin() as c:
            for t in reversed(tables):
                c.execute(text(f'DELETE FROM "{target}"."{t.name}"'))  # noqa: S608 - ours
            for t in tables:
                rows = f'SELECT * FROM "{source}"."{t.name}"'  # noqa: S608 - our own names
                c.execute(text(f'INSERT INTO "{target}"."{t.name}" {rows}'))
                for col in t.primary_key.columns:
                    seq = c.execute(
                        text("SELECT pg_get_serial_sequence(:t, :c)"),
                        {"t": f'"{target}"."{t.name}"', "c": col.name},
                    ).scalar()
                    if seq:
                        top = f'SELECT max({col.name}) FROM "{target}"."{t.name}"'  # noqa: S608
                        c.execute(
                            text(f"SELECT setval(:seq, COALESCE(({top}), 0) + 1, false)"),
                            {"seq": seq},
                        )
    finally:
        engine.dispose()


def _adapters(config: Any, db: Any, shards: list[str]) -> tuple[Any, dict[str, Any]]:
    """The config with channel ``chNNN`` pointed at sandbox ``NNN % len(shards)``, as
    ``publisher run --sandbox-url`` points every channel at one, and its adapters."""
    from publisher.app import build_adapters, use_sandbox

    channels = dict(config.channels)
    secrets = None
    for k, url in enumerate(shards):
        cfg, secrets = use_sandbox(config, url)
        for cid in channels:
            if int(cid[2:]) % len(shards) == k:
                channels[cid] = cfg.channels[cid]
    assert secrets is not None  # noqa: S101 - at least one sandbox
    cfg = replace(config, channels=channels)
    return cfg, build_adapters(cfg, secrets, db)


# -- processes ----------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of each ``postgres`` process on the machine, by pid."""
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    out[int(entry.name)] = _proc_cpu(int(entry.name))
            except OSError:
                continue
    return out


class PostgresCpu:
    """The CPU time PostgreSQL's processes spend from ``start()`` to ``stop()``, sampled every
    0.2 s so a backend that ends meanwhile (its connection closed) still counts up to its last
    sample. Every user of the server counts: a figure for a quiet machine."""

    def __init__(self) -> None:
        self._first = _postgres_cpu()
        self._last = dict(self._first)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            self._last.update(_postgres_cpu())

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        self._last.update(_postgres_cpu())
        return sum(cpu - self._first.get(pid, 0.0) for pid, cpu in self._last.items())


class Sandboxes:
    """``count`` ``publisher sandbox`` processes on free ports."""

    def __init__(self, count: int, workdir: Path) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []
        env = child_env(workdir)
        for _ in range(count):
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and package
                [PYTHON, "-m", "publisher", "sandbox", *SANDBOX_PORTS],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None  # noqa: S101 - piped above
            line = proc.stdout.readline()
            found = URL_LINE.search(line)
            if found is None:
                self.stop()
                raise RuntimeError(f"publisher sandbox did not start: {line!r}")
            self.urls.append(found.group(1))
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain the rest

    def cpu(self) -> float:
        return sum(_proc_cpu(p.pid) for p in self.procs)

    def records(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for url in self.urls:
            with urllib.request.urlopen(f"{url}/_sandbox/records", timeout=30) as answer:  # noqa: S310 - loopback
                out += json.loads(answer.read())
        return out

    def stop(self) -> None:
        """Ctrl-C to every sandbox at once, then 10 s for all of them together (not each in
        turn); one still running then is killed, and the log says so."""
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error(
                    "sandbox process %s still ran %.0f s after Ctrl-C: killed",
                    proc.pid,
                    STOP_TIMEOUT,
                )
                proc.kill()
                proc.wait()


def _children(
    what: str, n: int, config: Path, url: str, shards: list[str], workdir: Path
) -> list[subprocess.Popen[str]]:
    env = child_env(workdir)
    procs = []
    args = [what, str(config), url, json.dumps(shards)]
    for i in range(n):
        procs.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and package
                [PYTHON, "-m", "bench.scaleout", *args, str(i), str(n)],
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        assert proc.stdout is not None  # noqa: S101 - piped above
        line = proc.stdout.readline().strip()
        if line != "ready":
            for p in procs:
                p.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"a {what} child did not start: {line!r} {err[-400:]}")
    return procs


def _wait(procs: list[subprocess.Popen[str]], timeout: float) -> tuple[list[str], float, str]:
    """Wait for the children (killed after ``timeout``); their last stdout lines, their CPU
    seconds (rusage) and the first problem, if any."""
    deadline = time.monotonic() + timeout
    outs, problem = [], ""
    for proc in procs:
        left = max(0.1, deadline - time.monotonic())
        try:
            out, err = proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            problem = problem or f"a child still ran after {timeout:.0f} s and was killed"
        outs.append(out.strip().splitlines()[-1] if out.strip() else "")
        if proc.returncode and not problem:
            problem = f"a child exited with {proc.returncode}: {err.strip()[-300:]}"
    cpu = 0.0  # each child says its own CPU time from ready to done (start-up left out)
    for line in outs:
        try:
            cpu += float(json.loads(line).get("cpu", 0.0))
        except (ValueError, AttributeError):
            continue
    return outs, cpu, problem


def _field(line: str, name: str) -> float:
    """A figure of a child's last line (JSON), 0 when it has none."""
    try:
        return float(json.loads(line).get(name, 0))
    except (ValueError, AttributeError, TypeError):
        return 0.0


# -- one run ------------------------------------------------------------------------------


def _set_due(url: str, due: datetime) -> None:
    from sqlalchemy import update

    from publisher.store.db import Database
    from publisher.store.models import PostRow

    db = Database(url)
    with db.write() as s:
        s.execute(update(PostRow).where(PostRow.state == "approved").values(due_at=due))
    db.close()


def dispatch(
    tmp: Path,
    n: int,
    posts: int,
    count: int,
    shard_count: int,
    floor_clients: int = 0,
    like: str | None = None,
) -> dict[str, Any]:
    """``posts`` on ``count`` channels dispatched by ``n`` daemon processes; the figures, and
    first (``floor_clients`` > 0) the floor's on the same queue, under ``"floor"``. The queue
    is a copy of schema ``like``'s when given (``_queue``)."""
    from sqlalchemy import select

    from publisher.store.db import Database
    from publisher.store.models import PostEvent, PostRow

    schema = _pg_schema()
    if schema is None:
        raise RuntimeError(f"no PostgreSQL answers at {PG}")
    url = _pg_url(schema)
    folder = tmp / f"scaleout-{n}"
    try:
        config = _queue(folder, url, posts, count, like)
        bare = floor(folder, config, url, floor_clients, shard_count) if floor_clients else None
        boxes = Sandboxes(shard_count, folder)
        try:
            procs = _children("daemon", n, config, url, boxes.urls, folder)
            box_cpu, pg = boxes.cpu(), PostgresCpu()
            due = (datetime.now(UTC) + timedelta(seconds=LEAD)).replace(microsecond=0)
            _set_due(url, due)
            outs, cpu, problem = _wait(procs, 120 + posts * 0.5)
            box_cpu, pg_cpu = boxes.cpu() - box_cpu, pg.stop()
            records = boxes.records()
        finally:
            boxes.stop()
        db = Database(url)
        with db.read() as s:
            done = [
                (p.due_at, p.published_at, p.claimed_by)
                for p in s.scalars(select(PostRow).where(PostRow.state == "published"))
            ]
            detours = list(
                s.scalars(
                    select(PostEvent.cause).where(
                        PostEvent.to_state.in_(["retrying", "unconfirmed"])
                    )
                )
            )
        db.close()
    finally:
        _pg_drop(schema)
    late = [(pub - d).total_seconds() for d, pub, _w in done if pub is not None and d is not None]
    last = max((pub for _d, pub, _w in done if pub is not None), default=due)
    span = max(1e-3, (last - due).total_seconds())
    seen: dict[tuple[str, str, str], int] = {}
    for r in records:
        key = (str(r.get("platform")), str(r.get("channel")), str(r.get("text")))
        seen[key] = seen.get(key, 0) + 1
    return {
        "n": n,
        "posts": posts,
        "published": len(done),
        "rate": len(done) / span,
        "p50": percentile(late, 50) if late else 0.0,
        "p99": percentile(late, 99) if late else 0.0,
        "records": len(records),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "daemon_cpu": cpu,
        "statements": sum(_field(line, "statements") for line in outs),
        "sandbox_cpu": box_cpu,
        "pg_cpu": pg_cpu,
        "detours": detours,
        "problem": problem,
        "outs": outs,
        "span": span,
        "floor": bare,
    }


def floor(folder: Path, config: Path, url: str, clients: int, shard_count: int) -> dict[str, Any]:
    """The queue's calls from bare adapters (a thread per channel, ``clients`` processes) to
    sandboxes of their own, all started at once: what the sandboxes answer, with no queue at
    all. The queue is only read. A failure is said under ``"problem"``."""
    try:
        boxes = Sandboxes(shard_count, folder)
        try:
            procs = _children("floor", clients, config, url, boxes.urls, folder)
            box_cpu = boxes.cpu()
            go = time.time() + 1.0
            for proc in procs:
                assert proc.stdin is not None  # noqa: S101 - piped
                proc.stdin.write(f"{go}\n")
                proc.stdin.flush()  # communicate() closes it
            outs, cpu, problem = _wait(procs, 60 + 1_000)
            box_cpu = boxes.cpu() - box_cpu
        finally:
            boxes.stop()
    except Exception as exc:  # the daemons are still measured; the floor says why it failed
        failed = {"published": 0, "failed": 0, "rate": 0.0, "p50": 0.0, "p99": 0.0}
        return failed | {"sandbox_cpu": 0.0, "problem": f"the floor failed: {exc}"}
    times: list[float] = []
    calls_failed = 0
    for line in outs:
        try:
            got = json.loads(line)
        except ValueError:
            continue
        times += [t - go for t in got["times"]]
        calls_failed += int(got["failed"])
    span = max(times, default=0.0)
    return {
        "published": len(times),
        "failed": calls_failed,
        "rate": len(times) / span if span > 0 else 0.0,
        "p50": percentile(times, 50) if times else 0.0,
        "p99": percentile(times, 99) if times else 0.0,
        "client_cpu": cpu,
        "sandbox_cpu": box_cpu,
        "problem": problem,
    }


# -- the rows -----------------------------------------------------------------------------


def run(sizes: Sizes, tmp: Path) -> list[Row]:
    posts, count, counts, shard_count = _sizes(sizes)
    keys = [f"8 ({n} daemon{'s' if n > 1 else ''})" for n in counts] + ["8b"]
    schema = _pg_schema()
    if schema is None:
        why = f"not measured: no PostgreSQL answers at {PG} (PUBLISHER_BENCH_PG)"
        return [Row(k, "scale-out on PostgreSQL", "skipped", "—", "", "—", why) for k in keys]
    results: dict[int, dict[str, Any]] = {}
    failures: dict[int, str] = {}
    bare: dict[str, Any] = {"problem": "the floor was not measured: the first run failed"}
    try:
        # the campaign loaded and approved once; each run gets a copy of its rows
        _queue(tmp / "scaleout-template", _pg_url(schema), posts, count)
        like: str | None = schema
    except Exception:
        logger.exception("scale-out: the campaign could not be loaded once; each run loads it")
        like = None
    try:
        for i, n in enumerate(counts):
            try:  # the floor reads the first run's queue before its daemons start
                results[n] = dispatch(
                    tmp, n, posts, count, shard_count, max(counts) * (i == 0), like
                )
            except Exception as exc:
                failures[n] = f"the run failed: {exc}"
                continue
            bare = results[n]["floor"] or bare
    finally:
        _pg_drop(schema)
    base = (
        f"the sandboxes alone, bare adapters ({max(counts)} client processes): "
        f"{bare.get('rate', 0.0):,.0f} posts/s, p50 {bare.get('p50', 0.0) * 1000:,.0f} ms, "
        f"p99 {bare.get('p99', 0.0) * 1000:,.0f} ms"
        + (f"; {bare['failed']} of {posts} calls failed" if bare.get("failed") else "")
        + (f"; {bare['problem']}" if bare.get("problem") else "")
    )
    rows: list[Row] = []
    for n, key in zip(counts, keys, strict=False):
        if n not in results:
            rows.append(Row(key, _what(n, posts, count), "failed", "—", base, "—", failures[n]))
            continue
        r = results[n]
        rows.append(
            Row(
                key,
                _what(n, posts, count),
                f"{r['rate']:,.1f} posts/s; lateness p50 {r['p50'] * 1000:,.0f} ms, "
                f"p99 {r['p99'] * 1000:,.0f} ms",
                "0 duplicates",
                base,
                verdict(r["duplicates"] == 0 and r["published"] == posts),
                _note(r, shard_count),
            )
        )
    first, most = results.get(counts[0]), results.get(counts[-1])
    if first and most and first["rate"] > 0:
        ratio = most["rate"] / first["rate"]
        rows.append(
            Row(
                "8b",
                f"scaling ratio, {counts[-1]} daemons ÷ 1 daemon (throughput)",
                f"{ratio:.2f}×",
                f"≥ {RATIO_TARGET:.0f}×" if counts[-1] == 4 else "—",
                f"floor ÷ 1 daemon: {bare.get('rate', 0.0) / first['rate']:.2f}×",
                verdict(ratio >= RATIO_TARGET) if counts[-1] == 4 else "—",
                _per_core(first, most, os.cpu_count() or 1),
            )
        )
    else:
        rows.append(Row("8b", "scaling ratio", "not measured", "—", "", "—", "a daemon run failed"))
    return rows


def _what(n: int, posts: int, count: int) -> str:
    return (
        f"scale-out: {posts:,} posts due at once on {count} channels (concurrency 1), "
        f"{n} daemon process{'es' if n > 1 else ''}, PostgreSQL"
    )


def _ms_per_post(cpu: float, posts: int) -> str:
    return f"{cpu / max(1, posts) * 1000:.1f}"


def _note(r: dict[str, Any], shard_count: int) -> str:
    note = (
        f"{r['published']}/{r['posts']} published in {r['span']:.1f} s; duplicates "
        f"{r['duplicates']} (the sandboxes' records: {r['records']} items); CPU per post: "
        f"daemons {_ms_per_post(r['daemon_cpu'], r['published'])} ms, sandbox "
        f"({shard_count} process{'es' if shard_count > 1 else ''}) "
        f"{_ms_per_post(r['sandbox_cpu'], r['published'])} ms, PostgreSQL "
        f"{_ms_per_post(r['pg_cpu'], r['published'])} ms; SQL statements per post "
        f"(all daemons): {r['statements'] / max(1, r['published']):.1f}"
    )
    if r["detours"]:
        note += f"; {len(r['detours'])} retried or looked up (first: {r['detours'][0][:100]})"
    if r["problem"]:
        note += f"; {r['problem']}"
    return note


def _per_core(first: dict[str, Any], most: dict[str, Any], cores: int) -> str:
    """What bounds the ratio here: posts per CPU-second of the daemons at 1 and at N daemons
    (flat = each daemon scales with a core of its own), and the whole chain's CPU per post."""

    def per_cpu(r: dict[str, Any]) -> float:
        return float(r["published"]) / r["daemon_cpu"] if r["daemon_cpu"] > 0 else 0.0

    def chain(r: dict[str, Any]) -> float:
        cpu = float(r["daemon_cpu"]) + float(r["sandbox_cpu"]) + float(r["pg_cpu"])
        return cpu / max(1, int(r["published"]))

    one, many = per_cpu(first), per_cpu(most)
    n = most["n"]
    efficiency = many / one if one > 0 else 0.0
    ceiling = cores / chain(most) if chain(most) > 0 else 0.0
    return (
        f"{cores} cores: the daemons' posts per CPU-second {one:,.0f} (1) → {many:,.0f} ({n}), "
        f"so with a core per daemon the ratio would be {n * efficiency:.2f}×; the whole chain "
        f"(daemons + sandbox + PostgreSQL) costs {chain(most) * 1000:.1f} ms of CPU per post, "
        f"so {cores} cores cap it at {ceiling:,.0f} posts/s"
    )


# -- the children -------------------------------------------------------------------------


def _cpu() -> float:
    """This process's CPU seconds (all threads) so far."""
    usage = os.times()
    return usage.user + usage.system


def _child_setup(config_path: str, url: str, shards: list[str]) -> tuple[Any, Any, Any]:
    from publisher.config import load_config
    from publisher.store.db import Database

    config = load_config(Path(config_path))
    db = Database(url)
    cfg, adapters = _adapters(config, db, shards)
    for adapter in adapters.values():  # warm, as a daemon that has been running is
        adapter.check()
    return cfg, db, adapters


def child_daemon(config_path: str, url: str, shards: list[str]) -> None:
    from sqlalchemy import event, func, select

    from publisher.app import make_dispatcher
    from publisher.clock import SystemClock
    from publisher.dispatch.daemon import Daemon, worker_name
    from publisher.states import PENDING, RunMode
    from publisher.store.models import PostRow

    cfg, db, adapters = _child_setup(config_path, url, shards)
    statements = [0]  # SQL statements sent from ready to done: a figure the machine's load spares
    kinds: Counter[str] = Counter()  # by their first words, written when profiling

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements[0] += 1
        kinds[" ".join(statement.split()[:12])] += 1

    clock = SystemClock()
    dispatcher = make_dispatcher(db, cfg, adapters, clock, worker=worker_name())

    def finished() -> bool:
        with db.read() as s:
            left = s.scalar(select(func.count(PostRow.id)).where(PostRow.state.in_(PENDING)))
        return bool(left == 0)

    daemon = Daemon(
        db,
        dispatcher,
        clock,
        tick=cfg.daemon.tick.total_seconds(),
        mode=RunMode.RUN,
        until=finished,
    )
    profile = os.environ.get("PUBLISHER_BENCH_PROFILE")  # a folder: yappi's CPU profile there
    if profile:
        import yappi  # type: ignore[import-not-found, import-untyped, unused-ignore]

        yappi.set_clock_type("cpu")
        yappi.start()  # every thread, those started later included
    print("ready", flush=True)
    ready = _cpu()
    event.listen(db.engine, "before_cursor_execute", count)
    daemon.run()
    if profile:
        Path(f"{profile}/statements-{os.getpid()}.json").write_text(
            json.dumps(kinds.most_common(), indent=1)
        )
        yappi.stop()
        yappi.get_func_stats().save(f"{profile}/daemon-{os.getpid()}.pstat", type="pstat")
    done = {"cpu": _cpu() - ready, "passes": daemon.passes, "statements": statements[0]}
    print(json.dumps(done), flush=True)


def child_floor(config_path: str, url: str, shards: list[str], index: int, of: int) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from publisher.dispatch.dispatcher import outgoing_of, picture_shas
    from publisher.store.media import files
    from publisher.store.models import PostRow

    _cfg, db, adapters = _child_setup(config_path, url, shards)
    mine = [c for c in adapters if int(c[2:]) % of == index]
    with db.read() as s:
        posts = list(
            s.scalars(
                select(PostRow)
                .options(joinedload(PostRow.message))
                .where(PostRow.state == "approved", PostRow.channel.in_(mine))
                .order_by(PostRow.id)
            ).unique()
        )
        stored = files(s, [sha for p in posts for sha in picture_shas(p.fields)])
        queues = {c: [outgoing_of(p, files=stored) for p in posts if p.channel == c] for c in mine}
    times: list[float] = []
    failed = 0
    lock = threading.Lock()
    print("ready", flush=True)
    go = float(sys.stdin.readline())
    ready = _cpu()

    def worker(queue: list[Any]) -> None:
        nonlocal failed
        time.sleep(max(0.0, go - time.time()))
        for post in queue:
            try:
                adapters[post.channel].publish(post)
                with lock:
                    times.append(time.time())
            except Exception:
                with lock:
                    failed += 1

    threads = [threading.Thread(target=worker, args=(q,)) for q in queues.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"times": times, "failed": failed, "cpu": _cpu() - ready}))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    what, config_arg, url_arg, shards_arg = sys.argv[1:5]
    index_arg, of_arg = (int(x) for x in sys.argv[5:7])
    if what == "daemon":
        child_daemon(config_arg, url_arg, json.loads(shards_arg))
    else:
        child_floor(config_arg, url_arg, json.loads(shards_arg), index_arg, of_arg)
