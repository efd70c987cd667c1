"""``publisher watch``, the watchdog: a real daemon killed with SIGKILL, then ``watch`` (its own
process, not the daemon's) mails ``daemon_stale`` to the test SMTP server; the daemon started
again, the next ``watch`` mails that it is resolved."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import daemon_env, load_and_approve
from tests.mailcfg import no_mail_campaign
from tests.mailserver import mail_server

STALE_TO = {"bientap@stp-bacgiang.example", "tuan.la@stp-bacgiang.example"}


def start_daemon(campaign: Path, copy: Path, log: Path) -> subprocess.Popen[bytes]:
    args = ["run", "--rehearse", "20m", "--sandbox", "--rehearsal-db", str(copy), "--seed", "1"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "publisher", *args],
            cwd=campaign,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=daemon_env(),
        )


def heartbeats(copy: Path) -> set[str]:
    if not copy.exists():
        return set()
    try:
        with sqlite3.connect(copy) as conn:
            return {w for (w,) in conn.execute("SELECT worker FROM daemon")}
    except sqlite3.OperationalError:  # not made yet
        return set()


def wait_for_new_daemon(
    copy: Path, known: set[str], proc: subprocess.Popen[bytes], log: Path
) -> set[str]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = heartbeats(copy)
        if found - known:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"no heartbeat from the daemon\n{log.read_text(errors='replace')[-3000:]}")


def watch(campaign: Path, copy: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = daemon_env(
        PUBLISHER_DATABASE_URL=f"sqlite:///{copy}",
        PUBLISHER_SMTP_URL=f"smtp://127.0.0.1:{port}?from=publisher@stp-bacgiang.example",
    )
    return subprocess.run(
        [sys.executable, "-m", "publisher", "watch"],
        cwd=campaign,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def subjects(server: object, to: str) -> list[str]:
    return [
        str(m["Subject"])
        for _e, m in server.received  # type: ignore[attr-defined]
        if str(m["To"]) == to
    ]


def test_a_killed_daemon_is_alerted_by_watch_and_its_restart_resolves_it(
    campaign: Path, tmp_path: Path
) -> None:
    # The daemon without mail of its own (it would mail its sandbox and could resolve the cause
    # itself before watch runs): here only watch evaluates and mails, to the test's server.
    no_mail_campaign(campaign)
    load_and_approve(campaign)
    copy, log = campaign / "rehearsal.db", campaign / "daemon.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_daemon(campaign, copy, log))
        first = wait_for_new_daemon(copy, set(), procs[-1], log)
        procs[-1].kill()  # SIGKILL: no goodbye in its heartbeat row
        procs[-1].wait(timeout=30)
        with mail_server(tmp_path, security="none") as server:
            out = watch(campaign, copy, server.port)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "daemon: NOT RUNNING" in out.stdout
            stale = "[publisher] The publishing daemon is not running"
            for member in STALE_TO:
                assert subjects(server, member).count(stale) == 1, subjects(server, member)
            again = watch(campaign, copy, server.port)  # the next timer run: nothing new
            assert again.returncode == 0 and "alerts new: 0" in again.stdout, again.stdout
            procs.append(start_daemon(campaign, copy, log))
            wait_for_new_daemon(copy, first, procs[-1], log)
            fixed = watch(campaign, copy, server.port)
            assert fixed.returncode == 0, fixed.stdout + fixed.stderr
            assert "resolved: 1" in fixed.stdout, fixed.stdout
            for member in STALE_TO:
                assert subjects(server, member).count(f"[publisher] Resolved: {stale[12:]}") == 1
            resolved = next(
                m
                for _e, m in server.received
                if str(m["Subject"]).startswith("[publisher] Resolved")
            )
            body = resolved.get_body(("plain",))
            assert body is not None and "Resolved at" in body.get_content()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
