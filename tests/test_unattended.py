"""Issue 16's done-when, from outside: the June campaign rehearsed against an in-process sandbox
(its SMTP server, its IMAP mailbox and the desk it plays) with the PBGDPL portal on the email
channel, a Facebook policy block and a Zalo refresh token refused as dead. Every hand-off mail
goes once and is confirmed by the desk's reply; each failure is one Vietnamese alert to each
member ``[alerts]`` names for it, and a "resolved" mail follows its fix (Zalo: the token works
again; Facebook: an editor cancels the refused post and ``publisher watch`` sees it)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from publisher.sandbox import credentials
from publisher.sandbox.faults import FaultPlan
from publisher.sandbox.server import Sandbox
from tests.fakes import daemon_env, load_and_approve

FAULTS = "facebook:policy-block=x1,zalo:token-expiry=x1,zalo:refresh-expired=x1"
# config.toml's [alerts.to], as addresses
POST_FAILED = ["bientap@stp-bacgiang.example", "pbgdpl@stp-bacgiang.example"]
POST_FAILED += ["tuan.la@stp-bacgiang.example"]
CHANNEL_BLOCKED = POST_FAILED


def publisher(campaign: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=campaign,
        capture_output=True,
        text=True,
        timeout=600,
        env=daemon_env(PUBLISHER_LANG="vi", **env),
    )


def alerts(box: Sandbox) -> list[dict[str, Any]]:
    return [
        r
        for r in box.records()
        if r["platform"] == "mail" and r["kind"] == "mail" and r["title"].startswith("[publisher]")
    ]


def by_subject(mails: list[dict[str, Any]], start: str) -> list[str]:
    """The recipients of the mails whose subject starts with ``start``, one entry a mail."""
    return sorted(
        a for m in mails if m["title"].startswith(start) for a in m["fields"]["recipients"]
    )


def test_a_month_rehearsed_with_the_desk_by_mail_alerts_each_failure_once_then_its_fix(
    campaign: Path,
) -> None:
    load_and_approve(campaign)
    db = campaign / "rehearsal.db"
    with Sandbox(faults=FaultPlan.parse(FAULTS, 7)) as box:
        out = publisher(campaign, "run", "--rehearse", "1m", "--sandbox-url", box.url,
                        "--rehearsal-db", str(db))  # fmt: skip
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        records = box.records()

        # The PBGDPL portal's posts: one mail each to its desk, each confirmed by its reply.
        handed = [r for r in records if r["kind"] == "mail" and r["fields"].get("x_publisher_post")]
        replies = [r for r in records if r["kind"] == "desk-reply"]
        with sqlite3.connect(db) as conn:
            desk_posts = conn.execute(
                "SELECT state, remote_url FROM post WHERE channel = 'portal_pbgdpl'"
            ).fetchall()
            states = Counter(s for (s,) in conn.execute("SELECT state FROM post"))
            (refused,) = conn.execute("SELECT id FROM post WHERE state = 'failed'").fetchone()
        assert len(handed) == len(desk_posts) == len(replies) == 12
        assert len({r["remote_id"] for r in handed}) == 12  # one Message-ID a post, none twice
        assert all(r["fields"]["recipients"] == ["toasoan@pbgdpl.example.gov.vn"] for r in handed)
        assert all(s == "published" and url.startswith(f"{box.url}/desk/") for s, url in desk_posts)
        assert states == {"published": 71, "failed": 1}  # the Facebook post refused (#368)

        # One alert a cause and member, in Vietnamese; Zalo's said resolved once it recovered.
        mails = alerts(box)
        assert by_subject(mails, "[publisher] Bài đăng thất bại: Trang Facebook") == POST_FAILED
        assert by_subject(mails, "[publisher] Kênh bị chặn: Zalo") == CHANNEL_BLOCKED
        assert by_subject(mails, "[publisher] Đã khắc phục: Kênh bị chặn: Zalo") == CHANNEL_BLOCKED
        assert len(mails) == 9, [m["title"] for m in mails]  # nothing else, no reminder
        failed = next(m for m in mails if "thất bại" in m["title"])
        assert f"Bài #{refused} " in failed["text"] and "368" in failed["text"]
        assert f"/posts/{refused}" in failed["text"] and "Cần làm:" in failed["text"]
        assert all(credentials.MAIL_PASSWORD not in m["text"] for m in mails)

        # The fix: an editor cancels the refused post; the watchdog's round says it is resolved.
        env = {"PUBLISHER_DATABASE_URL": f"sqlite:///{db}"}
        cancel = publisher(campaign, "queue", "cancel", str(refused), "--as", "bientap", **env)
        assert cancel.returncode == 0, cancel.stderr
        watch = publisher(campaign, "watch", "--sandbox-url", box.url, **env)
        assert watch.returncode == 0, watch.stderr
        again = publisher(campaign, "watch", "--sandbox-url", box.url, **env)
        assert again.returncode == 0, again.stderr
        mails = alerts(box)
    assert by_subject(mails, "[publisher] Đã khắc phục: Bài đăng thất bại") == POST_FAILED
    assert len(mails) == 12  # the second watch sent nothing
