"""What every benchmark shares: result rows, temporary campaigns, synthetic content, and
measuring processes (wall and CPU time, /proc samples). Measures only; asserts nothing.

Everything happens in temporary folders: never the repository's own ``publisher.db``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import ROOT

PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Row:
    """One line of the results table."""

    key: str  # the item, e.g. "1" or "6b"
    what: str
    figure: str
    target: str = ""
    baseline: str = ""  # the comparison measured in the same run (a floor or APScheduler)
    verdict: str = ""  # "met", "missed", or "" for a figure without a target
    note: str = ""


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is: the full run, or ``--quick`` (the seconds-long smoke run)."""

    quick: bool = False
    runs: int = 11  # whole-process timings: the median of this many runs
    messages: int = 10_000  # synthetic campaign of item 2 (× 3 channels)
    due_together: int = 1_000  # item 3
    idle_seconds: float = 300.0  # item 4
    month_posts: int = 3_000  # item 4
    rehearse: str = "2m"
    scheduled: int = 10_000  # item 6
    outage_posts: int = 600  # item 6: one post a second across a 10-minute outage

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if not quick:
            return cls()
        return cls(
            quick=True,
            runs=1,
            messages=100,
            due_together=12,
            idle_seconds=3.0,
            month_posts=40,
            rehearse="3s",
            scheduled=200,
            outage_posts=40,
        )


def verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:,.2f} s" if seconds < 100 else f"{seconds:,.0f} s"


# -- temporary campaigns -------------------------------------------------------------------


def shipped_config() -> dict[str, Any]:
    """The repository's config.toml as a dict, to be adjusted for a benchmark."""
    raw: dict[str, Any] = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    return raw


def slots(first: str = "06:30", last: str = "21:30", every_min: int = 30) -> list[str]:
    """Local posting times from ``first`` to ``last`` (outside every shipped quiet window)."""
    h, m = map(int, first.split(":"))
    end_h, end_m = map(int, last.split(":"))
    out, t, end = [], h * 60 + m, end_h * 60 + end_m
    while t <= end:
        out.append(f"{t // 60:02d}:{t % 60:02d}")
        t += every_min
    return out


def wide_config(
    *,
    days: int | None = None,
    every_min: int = 30,
    repeats: int = 1,
    concurrency: int | None = None,
    tick: str | None = None,
) -> dict[str, Any]:
    """The shipped config with room for thousands of posts: more slots and caps to match, each
    kind sent once per channel, optionally a longer window (``days``) and more concurrency."""
    raw = shipped_config()
    camp = raw["campaign"]
    if days is not None:
        camp["end"] = camp["start"] + timedelta(days=days - 1)
    times = slots(every_min=every_min)
    for ch in raw["channels"].values():
        ch["slots"] = times
        ch["daily_cap"] = len(times)
        if concurrency is not None:
            ch["concurrency"] = concurrency
    for kind in raw.get("kinds", {}).values():
        kind["repeats"] = repeats
    if tick is not None:
        raw.setdefault("daemon", {})["tick"] = tick
    return raw


def make_campaign(
    folder: Path, raw: Mapping[str, Any] | None = None, *, with_messages: bool = True
) -> Path:
    """A copy of the campaign in ``folder`` (templates, optionally messages, the config);
    returns the config file. Its SQLite queue is ``folder/publisher.db``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "templates", folder / "templates", dirs_exist_ok=True)
    if with_messages:
        shutil.copytree(ROOT / "messages", folder / "messages", dirs_exist_ok=True)
    else:  # the pictures stay: the config's default cover is one of them
        shutil.copytree(ROOT / "messages" / "media", folder / "messages" / "media")
    path = folder / "config.toml"
    if raw is None:
        shutil.copy(ROOT / "config.toml", path)
    else:
        data = dict(raw)
        data["database"] = {"url": "sqlite:///publisher.db"}
        path.write_text(dump_toml(data), encoding="utf-8")
    return path


def dump_toml(data: Mapping[str, Any]) -> str:
    """Enough TOML for config.toml: tables, strings, numbers, booleans, dates, lists and
    inline tables (the board's members)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{ " + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    lines: list[str] = []

    def table(prefix: str, t: Mapping[str, Any]) -> None:
        plain = {k: v for k, v in t.items() if not _is_table(v)}
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{_key(k)} = {value(v)}" for k, v in plain.items())
        for k, v in t.items():
            if _is_table(v):
                table(f"{prefix}.{_key(k)}" if prefix else _key(k), v)

    table("", data)
    return "\n".join(lines).lstrip() + "\n"


def _is_table(v: Any) -> bool:
    """Nested tables become [sections]; a table of plain values inside a channel stays
    inline (e.g. ``secrets = { … }``, ``quiet_hours = { … }``)."""
    if not isinstance(v, Mapping):
        return False
    return not v or any(isinstance(x, Mapping) for x in v.values())


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


# -- synthetic content ---------------------------------------------------------------------


def seed_messages() -> list[Any]:
    """The shipped campaign's 14 messages (6 slogans, 8 articles), read from ``messages/``."""
    from publisher.config import load_config
    from publisher.content import read_messages

    messages, problems = read_messages(load_config(ROOT / "config.toml"))
    if problems:
        raise RuntimeError(f"the shipped messages do not read: {problems[0].line()}")
    return messages


def synthetic(count: int, channels: Sequence[str], *, start: int = 0) -> list[Any]:
    """``count`` distinct messages cycling through the shipped ones (their mix of slogans and
    articles and their real lengths), unpinned, each on ``channels``."""
    seeds = seed_messages()
    out = []
    for i in range(start, start + count):
        s = seeds[i % len(seeds)]
        folder = "slogans" if s.kind == "slogan" else "articles"
        key = f"{folder}/bench-{i:06d}"
        out.append(
            replace(
                s,
                key=key,
                path=f"messages/{key}.md",
                title=f"{s.title} · {i}" if s.kind == "article" else s.title,
                body=f"{s.body}\n\n(Số {i}.)" if s.kind == "article" else f"{s.body} ({i})",
                channels=tuple(channels),
                pinned=None,
                draft=False,
                at=None,
            )
        )
    return out


def write_messages(messages_dir: Path, messages: Sequence[Any]) -> None:
    """Write messages as content files (front matter + Markdown body) under ``messages_dir``."""
    for m in messages:
        path = messages_dir / f"{m.key}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = [f"kind: {m.kind}", f"channels: [{', '.join(m.channels)}]"]
        if m.kind == "article":
            meta += [f"title: {json.dumps(m.title, ensure_ascii=False)}"]
            meta += [f"summary: {json.dumps(m.summary, ensure_ascii=False)}"]
        path.write_text("---\n" + "\n".join(meta) + "\n---\n" + m.body + "\n", encoding="utf-8")


# -- processes -----------------------------------------------------------------------------


def child_env(workdir: Path, *, bytecode: bool = True) -> dict[str, str]:
    """The environment of a measured ``python -m publisher`` run in ``workdir`` (a folder of the
    benchmark's temporary directory): no database override, a board member acting, and
    (``bytecode``) compiled modules cached in one prefix for the whole benchmark run, as in any
    normal install, rather than recompiled by every process."""
    env = {k: v for k, v in os.environ.items() if k != "PUBLISHER_DATABASE_URL"}
    env["PUBLISHER_AS"] = "tuan.la"
    env["PUBLISHER_LANG"] = "en"  # the CLI output read here is English (Vietnamese: the default)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(workdir.parent / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "no-pycache")  # empty: nothing cached
    return env


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system seconds of the process (and any it waited for)
    rc: int


def run_timed(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Timing:
    """Run ``cmd`` once; its wall time and CPU time (from ``wait4``'s rusage)."""
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter running our own package
        list(cmd),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Timing(wall, usage.ru_utime + usage.ru_stime, proc.returncode)


@dataclass
class Series:
    """Repeated whole-process timings of one command (hyperfine-style: warm-up, then N)."""

    runs: list[Timing] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(t.wall for t in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(t.cpu for t in self.runs)

    @property
    def spread(self) -> str:
        walls = sorted(t.wall for t in self.runs)
        return f"{walls[0] * 1000:.0f}–{walls[-1] * 1000:.0f} ms"

    @property
    def ok(self) -> bool:
        return all(t.rc == 0 for t in self.runs)


def interleaved(
    cmds: Mapping[str, Sequence[str]], cwd: Path, env: Mapping[str, str], runs: int
) -> dict[str, Series]:
    """Time several commands round-robin, so a change in the machine's load touches them all
    alike (this machine is shared)."""
    for cmd in cmds.values():
        run_timed(cmd, cwd, env)
    out = {name: Series() for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            out[name].runs.append(run_timed(cmd, cwd, env))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident memory of a process in MiB from /proc/<pid>/status: ``VmRSS`` (now) or ``VmHWM``
    (its peak; unlike getrusage's ru_maxrss it does not count the parent's image before exec)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


# -- the machine ---------------------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop: how fast this machine runs Python right now."""
    started = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return time.perf_counter() - started


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "uname": " ".join(platform.uname()),
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("SQLAlchemy", "APScheduler", "Jinja2", "httpx", "rich", "click"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def approved_queue(
    folder: Path, raw: Mapping[str, Any], messages: Sequence[Any], *, like: Path | None = None
) -> Any:
    """A campaign in ``folder`` holding ``messages`` as files, loaded into its SQLite queue and
    every post approved, through publisher's own load and approve; returns (config, database).
    With ``like``, the folder of such a campaign made before with the same messages and plan
    (its queue closed), its queue file is copied instead: the same rows, without loading and
    approving them again."""
    from publisher.config import load_config
    from publisher.editorial.load import approve, load
    from publisher.store.db import open_database

    path = make_campaign(folder, raw, with_messages=False)
    write_messages(folder / "messages", messages)
    config = load_config(path)
    if like is not None:
        shutil.copyfile(like / "publisher.db", folder / "publisher.db")
        return config, open_database(config.database_url)
    db = open_database(config.database_url)
    now = datetime.now(UTC)
    load(db, config, now, "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=now)
    return config, db


def sandbox_adapters(config: Any, db: Any, url: str) -> tuple[Any, dict[str, Any]]:
    """The config pointed at the sandbox at ``url`` and a real adapter per enabled channel, as
    ``publisher run --sandbox-url`` builds them (Zalo with its database token store)."""
    from publisher.app import build_adapters, use_sandbox

    cfg, secrets = use_sandbox(config, url)
    return cfg, build_adapters(cfg, secrets, db)
