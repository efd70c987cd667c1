"""``publisher run`` and ``publisher status`` as a user runs them: subprocesses on a temp campaign."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import dummy_env, load_and_approve


def publisher(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def dump(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


@pytest.fixture
def approved(campaign: Path) -> Path:
    load_and_approve(campaign)
    return campaign


def approved_posts(campaign: Path) -> int:
    with sqlite3.connect(campaign / "publisher.db") as conn:
        return int(conn.execute("SELECT count(*) FROM post WHERE state = 'approved'").fetchone()[0])


def dummy_secrets(campaign: Path) -> None:
    """A .env with a made-up value for every secret the config names: enough for ``run`` to
    start on the real queue (whose June 2024 posts are long past: none is ever sent)."""
    dummy_env(campaign)


def test_rehearsal_publishes_everything_once_on_a_copy(approved: Path) -> None:
    before, n = dump(approved / "publisher.db"), approved_posts(approved)
    copy = approved / "rehearsal.db"
    out = publisher("run", "--rehearse", "20s", "--sandbox", "--rehearsal-db", str(copy))
    assert out.returncode == 0, out.stderr
    assert f"Rehearsal database: {copy}" in out.stdout
    assert "maximum number of running instances" not in out.stderr  # wakes coalesce
    assert out.stderr.count("attempt post=") >= n > 0  # a line per attempt, as `run` logs
    assert dump(approved / "publisher.db") == before  # the real queue is untouched
    env = {**os.environ, "PUBLISHER_DATABASE_URL": f"sqlite:///{copy}"}
    status = subprocess.run(
        [sys.executable, "-m", "publisher", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    counts = json.loads(status.stdout)["counts"]
    assert counts["published"] == n
    assert sum(n for state, n in counts.items() if state != "published") == 0
    again = publisher("run", "--rehearse", "20s", "--sandbox", "--rehearsal-db", str(copy))
    assert again.returncode == 0 and "Resuming" in again.stdout


def test_rehearsal_needs_a_sandbox_and_a_duration(approved: Path) -> None:
    out = publisher("run", "--rehearse", "2m")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: --rehearse: a rehearsal publishes to the channels it is pointed at "
        "(add --sandbox (or --sandbox-url URL) so nothing reaches the real platforms)"
    ]
    out = publisher("run", "--rehearse", "soon", "--sandbox")
    assert out.returncode == 1 and "'soon' is not a duration" in out.stderr
    nowhere = approved / "no-such-folder" / "june.db"
    out = publisher("run", "--rehearse", "5s", "--sandbox", "--rehearsal-db", str(nowhere))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: --rehearsal-db: cannot create {nowhere}: No such file or directory "
        "(name a file in an existing folder you can write to)"
    ]


def test_run_without_secrets_says_which_are_missing(approved: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    out = subprocess.run(
        [sys.executable, "-m", "publisher", "run", "--once"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1
    assert "PUBLISHER_STP_WP_APP_PASSWORD" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--once", "--sandbox"),
        ("--once", "--sandbox-url", "http://127.0.0.1:9"),
        ("--sandbox",),
        ("--sandbox-url", "http://127.0.0.1:9"),
    ],
)
def test_a_sandbox_outside_a_rehearsal_is_refused(approved: Path, args: tuple[str, ...]) -> None:
    """The sandbox's links in the real queue, its posts marked published: never."""
    dummy_secrets(approved)
    before = dump(approved / "publisher.db")
    out = publisher("run", *args, timeout=30)
    assert out.returncode == 1
    flag = args[-2] if args[-1].startswith("http") else args[-1]
    assert out.stderr.strip().splitlines() == [
        f"error: {flag}: without --rehearse it would publish the real queue's posts to the "
        "sandbox and mark them published (add --rehearse DURATION, e.g. --rehearse 3m, which "
        "works on a copy of the queue)"
    ]
    assert dump(approved / "publisher.db") == before


def test_once_marks_long_overdue_posts_missed(approved: Path) -> None:
    # June 2024 is long past: with a 2 h grace window every approved post is missed, not posted.
    dummy_secrets(approved)
    n = approved_posts(approved)
    out = publisher("run", "--once")
    assert out.returncode == 0, out.stderr
    assert f"{n} missed" in out.stdout
    status = json.loads(publisher("status", "--json").stdout)
    assert status["counts"]["missed"] == n > 0
    assert "grace window" in status["problems"][0]["reason"]


def test_sigterm_stops_the_daemon_promptly_with_status_zero(approved: Path) -> None:
    dummy_secrets(approved)
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        alive = False
        while time.monotonic() < deadline and not alive:
            time.sleep(0.3)
            alive = json.loads(publisher("status", "--json").stdout)["daemon"]["alive"]
        assert alive, "the daemon never reported a heartbeat"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        assert code == 0, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - sent < 6
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads(publisher("status", "--json").stdout)["daemon"]["alive"] is False


def test_a_rehearsal_that_ends_with_a_call_in_flight_says_so_and_resuming_settles_it(
    approved: Path,
) -> None:
    """Zalo's creates and verifies take 15 s each: at the rehearsal's end (2 s + the 20 s
    real floor of max_lateness) one Zalo call is still in flight (and Zalo's later posts
    wait behind it); the other channels publish meanwhile."""
    from publisher.sandbox.faults import FaultPlan
    from publisher.sandbox.server import Sandbox

    copy = approved / "rehearsal.db"
    args = ("run", "--rehearse", "2s", "--rehearsal-db", str(copy))
    with Sandbox(faults=FaultPlan.parse("zalo:slow=1:15", 1)) as box:
        out = publisher(*args, "--sandbox-url", box.url)
        assert out.returncode == 1, out.stdout + out.stderr
        owed = re.findall(r"post (\d+) \(zalo\) sending: claimed by (\S+)", out.stdout)
        assert len(owed) == 1, out.stdout
        ended = re.search(
            r"^error: the rehearsal reached its end with (\d+) post\(s\) still owed an "
            rf"outcome \(listed above\); resume it to settle them: --rehearsal-db {copy}$",
            out.stderr,
            re.MULTILINE,
        )
        assert ended, out.stderr[-2000:]
        listed = re.findall(
            r"^  post \d+ \(\w+\) (?:approved|sending|retrying|unconfirmed):",
            out.stdout,
            re.MULTILINE,
        )
        assert len(listed) == int(ended.group(1))  # each one listed, with its state and cause
        assert "published" in out.stdout
        again = publisher(*args, "--sandbox-url", box.url)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Resuming" in again.stdout
    post = owed[0][0]
    with sqlite3.connect(copy) as conn:
        (state,) = conn.execute("SELECT state FROM post WHERE id = ?", (post,)).fetchone()
        causes = [
            c for (c,) in conn.execute("SELECT cause FROM post_event WHERE post_id = ?", (post,))
        ]
    assert state == "published", causes  # looked up, found: the slow call had created it
    assert any(c.startswith(f"worker {owed[0][1]} is dead") for c in causes), causes


BAD_CREDENTIALS = """
import sys
import publisher.sandbox.credentials as c
from publisher.signing import make_secret
WRONG_KEY = make_secret(b"wrong-but-well-formed-secret-32b")
for adapter, values in c.SECRETS.items():
    c.SECRETS[adapter] = {
        role: WRONG_KEY if value.startswith("whsec_") else "wrong-" + value
        for role, value in values.items()
    }
# The mail's login (the email channel's, the replies'): the sandbox's servers keep theirs,
# publisher logs in to them with a wrong password.
import types
import publisher.sandbox.imap as imap_server
import publisher.sandbox.smtp as smtp_server
smtp_server.credentials = imap_server.credentials = types.SimpleNamespace(
    MAIL_USER=c.MAIL_USER, MAIL_PASSWORD=c.MAIL_PASSWORD
)
c.MAIL_PASSWORD = "wrong-" + c.MAIL_PASSWORD
from publisher.cli import entry as main
sys.argv = ["publisher", *sys.argv[1:]]
main()
"""


def test_a_rehearsal_with_bad_credentials_stops_every_channel_calmly(approved: Path) -> None:
    """Each channel is stopped once, then re-checked (at most every 5 real seconds) with no
    post claimed until a check passes; each post gets a few history rows, none per re-check; status on the copy shows every channel blocked
    on the rehearsal's clock; every missed post says which channel stopped and why."""
    copy = approved / "rehearsal.db"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            BAD_CREDENTIALS,
            "run",
            "--rehearse",
            "5s",
            "--sandbox",
            "--rehearsal-db",
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    with sqlite3.connect(copy) as conn:
        per_post = dict(
            conn.execute(
                "SELECT post_id, count(*) FROM post_event WHERE actor = 'daemon' GROUP BY post_id"
            ).fetchall()
        )
        per_channel = dict(
            conn.execute(
                "SELECT p.channel, count(*) FROM post_event e JOIN post p ON p.id = e.post_id "
                "WHERE e.actor = 'daemon' GROUP BY p.channel"
            ).fetchall()
        )
        posts = dict(conn.execute("SELECT channel, count(*) FROM post GROUP BY channel").fetchall())
        missed = [
            c for (c,) in conn.execute("SELECT cause FROM post_event WHERE to_state = 'missed'")
        ]
    assert max(per_post.values()) <= 3, per_post  # claimed, stopped, missed
    for channel, rows in per_channel.items():
        assert rows <= posts[channel] + 2, (channel, rows)  # one claim stopped it
    assert missed and all("stopped: auth: " in c for c in missed), missed[:3]
    env = {**os.environ, "PUBLISHER_DATABASE_URL": f"sqlite:///{copy}"}
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "publisher", "status", "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
    )
    assert sorted(b["channel"] for b in status["blocked"]) == sorted(posts)
    assert {b["kind"] for b in status["blocked"]} == {"auth"}
    assert status["rehearsal"]["running"] is False
    assert status["rehearsal"]["campaign_time"].startswith("2024-")  # not today
    text = subprocess.run(
        [sys.executable, "-m", "publisher", "status"], capture_output=True, text=True, env=env
    ).stdout
    assert "rehearsal database: campaign time 2024-" in text
    assert "channel facebook stopped since 2024-06-" in text
