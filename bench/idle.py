"""Item 4: the daemon as a process. Idle: ``publisher run`` on a queue with nothing due, its CPU
seconds (/proc/<pid>/stat), wake-ups (context switches) and RSS (/proc/<pid>/status) over the
idle period. Memory: RSS of ``publisher run --rehearse`` from the start to the end of a
rehearsed month of 3,000 posts. Both against a sandbox served from this process (the idle
daemon's config points its channels there, the rehearsal takes ``--sandbox-url``), so the
figures are the daemon's alone.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    Row,
    Sizes,
    approved_queue,
    child_env,
    cpu_seconds,
    make_campaign,
    rss_mb,
    shipped_config,
    synthetic,
    verdict,
    wide_config,
)

CHANNELS = ("portal_stp", "portal_pbgdpl", "facebook", "zalo")
RSS_TARGET_MB = 100.0  # MB, 10^6 bytes: 95.4 MiB
FLAT_MB = 10.0  # "flat": the month adds less than this (MiB)
MIB = 1024 * 1024


def run(sizes: Sizes, tmp: Path) -> list[Row]:
    return Background(sizes, tmp).finish()


class Background:
    """Item 4 split in two: ``Background(...)`` starts the idle daemon, the other benchmarks
    may run meanwhile (the daemon is its own process: its CPU time is its own), ``finish()``
    waits out the idle period, measures, then rehearses the month."""

    def __init__(self, sizes: Sizes, tmp: Path) -> None:
        from publisher.sandbox.server import Sandbox

        self.sizes, self.tmp = sizes, tmp
        self.box = Sandbox().start()
        smtp = self.box.smtp_address
        if smtp is None:  # it serves SMTP unless told not to
            raise RuntimeError("the sandbox serves no SMTP server")
        self.idle = _Idle(sizes, tmp / "idle", self.box.url, smtp)

    def finish(self) -> list[Row]:
        try:
            idle = self.idle.finish()
            month = _month(self.sizes, self.tmp / "month", self.box.url)
        finally:
            self.box.stop()
        return _rows(self.sizes, idle, month)


def _rows(sizes: Sizes, idle: dict[str, Any], month: dict[str, Any]) -> list[Row]:
    minutes = sizes.idle_seconds / 60
    span = f"{minutes:.0f} min" if minutes >= 1 else f"{sizes.idle_seconds:.0f} s"
    return [
        Row(
            "4",
            f"idle daemon, nothing due, {span}: CPU time",
            f"{idle['cpu']:.2f} s CPU ({idle['cpu'] / idle['seconds'] * 100:.2f} % of a core)",
            "≈ 0 (sleeps until due)",
            "",
            verdict(idle["cpu"] / idle["seconds"] < 0.01),
            f"{idle['wakeups'] / idle['seconds']:.1f} wake-ups/s (context switches, all "
            f"threads); tick {idle['tick']}; RSS {idle['rss0']:.0f} → {idle['rss1']:.0f} MiB"
            + ("" if idle["alone"] else "; ran alongside the other benchmarks"),
        ),
        Row(
            "4b",
            f"RSS of `run --rehearse {sizes.rehearse}`, a month of {month['posts']:,} posts: "
            "before → after (peak)",
            f"{month['start']:.0f} → {month['end']:.0f} MiB (peak {month['peak']:.0f} MiB "
            f"= {month['peak'] * MIB / 1e6:.0f} MB)",
            f"flat, < {RSS_TARGET_MB:.0f} MB",
            "",
            verdict(
                month["peak"] * MIB / 1e6 < RSS_TARGET_MB
                and month["end"] - month["start"] < FLAT_MB
            ),
            f"{month['published']} published, {month['other']}; before = 5 % into the "
            f"month (startup done), after = its last sample; at ¼, ½, ¾ and the end: "
            + " / ".join(f"{r:.0f}" for r in month["quarters"])
            + f" MiB; {month['samples']} samples",
        ),
    ]


class _Drain(threading.Thread):
    """Reads a child's pipe so it never blocks; notes when a line containing ``marker`` came."""

    def __init__(self, stream: Any, marker: str) -> None:
        super().__init__(daemon=True)
        self.stream, self.marker = stream, marker
        self.seen = threading.Event()
        self.lines: list[str] = []

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if self.marker in line:
                self.seen.set()


def _switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _sandboxed(url: str, smtp: tuple[str, int]) -> tuple[dict[str, Any], list[str]]:
    """The shipped config for a real run (``--sandbox-url`` goes with a rehearsal only) and its
    .env lines: its channels pointed at the sandbox at ``url``, its mail (the email channel's,
    the alerts') at the sandbox's SMTP server ``smtp``, the sandbox's test credentials."""
    from publisher.sandbox import credentials

    raw = shipped_config()
    env_lines = []
    for cid, ch in raw["channels"].items():
        ch.update(credentials.settings_for(ch["adapter"], url, cid))
        values = credentials.SECRETS[ch["adapter"]]
        env_lines += [f"{name}={values[role]}\n" for role, name in ch.get("secrets", {}).items()]
    if "mail" in raw:
        host, port = smtp
        password = raw["mail"]["secrets"]["password"]
        raw["mail"].update(host=host, port=port, security="none", username=credentials.MAIL_USER)
        env_lines.append(f"{password}={credentials.MAIL_PASSWORD}\n")
    return raw, env_lines


class _Idle:
    """``publisher run`` on the seed campaign loaded but not approved: nothing is due, ever."""

    def __init__(self, sizes: Sizes, folder: Path, url: str, smtp: tuple[str, int]) -> None:
        from publisher.config import load_config
        from publisher.editorial.load import load
        from publisher.store.db import open_database

        self.sizes = sizes
        raw, env_lines = _sandboxed(url, smtp)
        config = load_config(make_campaign(folder, raw))
        (folder / ".env").write_text("".join(env_lines), encoding="utf-8")
        db = open_database(config.database_url)
        load(db, config, datetime.now(UTC), "vanphong")
        db.close()
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [PYTHON, "-m", "publisher", "run"],
            cwd=folder,
            env=child_env(folder),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        drain = _Drain(self.proc.stderr, "started")
        drain.start()
        drain.seen.wait(60)
        time.sleep(0.5)  # let the first pass finish
        pid = self.proc.pid
        self.cpu0, self.rss0, self.sw0 = cpu_seconds(pid), rss_mb(pid), _switches(pid)
        self.started = time.monotonic()
        self.end: dict[str, float] = {}
        # The end sample is taken on time by a timer, whatever runs in the meantime.
        self.timer = threading.Timer(sizes.idle_seconds, self._sample)
        self.timer.start()

    def _sample(self) -> None:
        pid = self.proc.pid
        self.end = {
            "seconds": time.monotonic() - self.started,
            "cpu": cpu_seconds(pid),
            "rss": rss_mb(pid),
            "switches": _switches(pid),
        }

    def finish(self) -> dict[str, Any]:
        alone = time.monotonic() - self.started < 1.0  # nothing else ran meanwhile
        try:
            self.timer.join()
        finally:
            self.proc.terminate()
            self.proc.wait(30)
        end = self.end
        return {
            "cpu": end["cpu"] - self.cpu0,
            "seconds": end["seconds"],
            "rss0": self.rss0,
            "rss1": end["rss"],
            "wakeups": end["switches"] - self.sw0,
            "tick": "5 s (config)",
            "alone": alone,
        }


def _month(sizes: Sizes, folder: Path, url: str) -> dict[str, Any]:
    """A month of ``month_posts`` approved posts rehearsed in ``sizes.rehearse``."""
    messages = synthetic(sizes.month_posts // len(CHANNELS), CHANNELS)
    _config, db = approved_queue(folder, wide_config(every_min=10), messages)
    db.close()
    env = child_env(folder)
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            PYTHON,
            "-m",
            "publisher",
            "run",
            "--rehearse",
            sizes.rehearse,
            "--sandbox-url",
            url,
            "--rehearsal-db",
            str(folder / "rehearsal.db"),
        ],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    drain = _Drain(proc.stdout, "Rehearsing")
    drain.start()
    drain.seen.wait(120)
    began = time.monotonic()
    span = parse_seconds(sizes.rehearse)
    settle = span * 0.05  # "before": startup done, first posts out
    samples: list[tuple[float, float]] = []
    peak = 0.0
    while _running(proc.pid):
        try:
            samples.append((time.monotonic() - began, rss_mb(proc.pid)))
            peak = max(peak, rss_mb(proc.pid, "VmHWM"))
        except (OSError, ValueError):
            break
        time.sleep(0.25)
        if time.monotonic() - started > 900:
            proc.terminate()
    _wait(proc)
    drain.join(5)
    published, other = _summary("".join(drain.lines))
    live = [r for _t, r in samples if r]
    before = next((r for t, r in samples if t >= settle and r), live[0] if live else 0.0)
    return {
        "posts": sizes.month_posts,
        "start": before,
        "end": live[-1] if live else 0.0,
        "quarters": [  # the curve: RSS a quarter, half, three quarters into the month, the end
            next((r for t, r in samples if t >= q * span and r), 0.0) for q in (0.25, 0.5, 0.75)
        ]
        + [live[-1] if live else 0.0],
        "peak": peak,
        "samples": len(samples),
        "seconds": time.monotonic() - started,
        "published": published,
        "other": other,
    }


def _running(pid: int) -> bool:
    """Whether the child still runs, without reaping it (so /proc/<pid> stays readable)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def _wait(proc: subprocess.Popen[bytes]) -> None:
    _pid, status = os.waitpid(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)


def parse_seconds(text: str) -> float:
    from publisher.config import parse_duration

    duration = parse_duration(text)
    return duration.total_seconds() if duration else 0.0


def _summary(text: str) -> tuple[int, str]:
    """Published count and the other states from the rehearsal's summary table."""
    import re

    header = next((ln for ln in text.splitlines() if "channel" in ln and "published" in ln), "")
    names = re.findall(r"[a-z_]+", header)[1:]
    totals = dict.fromkeys(names, 0)
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
        if len(cells) == len(names) + 1 and all(c.isdigit() for c in cells[1:]):
            for name, cell in zip(names, cells[1:], strict=True):
                totals[name] += int(cell)
    published = totals.pop("published", 0)
    other = ", ".join(f"{n} {k}" for k, n in totals.items() if n) or "nothing else"
    return published, other
