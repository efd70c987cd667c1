"""Alerts (``publisher.alerts``): causes from the database, the engine's de-duplication,
reminders and resolutions on fake clocks, the outbox against a real SMTP server
(``tests/mailserver.py``), and no secret in any mail."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.alerts import causes as alert_causes
from publisher.alerts.causes import Context
from publisher.alerts.engine import evaluate
from publisher.alerts.sender import flush
from publisher.channels.smtp import Mailer
from publisher.clock import FakeClock
from publisher.config import Config, MailSettings, parse_config
from publisher.editorial.load import approve, load
from publisher.i18n import use_language
from publisher.states import BlockKind, RunMode
from publisher.store.db import Database
from publisher.store.models import (
    AlertRow,
    ChannelState,
    ChannelTokenRow,
    DaemonRow,
    OutboxRow,
    PostRow,
)
from tests.fakes import set_state
from tests.mailserver import free_port, mail_server

NOW = datetime(2024, 6, 5, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội, during the campaign
FAILED_TO = (
    "bientap@stp-bacgiang.example",
    "pbgdpl@stp-bacgiang.example",
    "tuan.la@stp-bacgiang.example",
)


# The engine's tests look at posts only (a queue of approved posts with no daemon has a stale
# daemon too: tested apart).
POST_SOURCES = [alert_causes.failed_posts, alert_causes.posts_to_review, alert_causes.missed_posts]
ev = partial(evaluate, sources=POST_SOURCES)


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    load(db, config, NOW - timedelta(days=10), "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=NOW - timedelta(days=10))
    return db


def first_post(db: Database, channel: str) -> int:
    with db.read() as s:
        return int(
            s.scalars(
                select(PostRow.id).where(PostRow.channel == channel).order_by(PostRow.due_at)
            ).first()
            or 0
        )


def outbox(db: Database) -> list[OutboxRow]:
    with db.read() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def fail(
    db: Database, post: int, why: str = "(#368) The action attempted has been deemed abusive"
) -> None:
    set_state(db, post, NOW, "failed", f"refused by facebook: {why}", last_error=why)


def test_a_failed_post_alerts_each_member_once_however_many_passes_see_it(
    queue: Database, config: Config
) -> None:
    post = first_post(queue, "facebook")
    fail(queue, post)
    first = ev(queue, config, NOW, NOW)
    assert first.opened == [f"post_failed:{post}"]
    for _ in range(3):  # later passes, other processes: nothing new
        again = ev(queue, config, NOW + timedelta(minutes=5), NOW + timedelta(minutes=5))
        assert again.mails == 0
    mails = outbox(queue)
    assert sorted(a for m in mails for a in m.recipients) == sorted(FAILED_TO)
    assert all(m.alert_key == f"post_failed:{post}" for m in mails)
    assert len({m.message_id for m in mails}) == len(mails)


def test_two_evaluations_at_once_alert_once(queue: Database, config: Config) -> None:
    post = first_post(queue, "facebook")
    fail(queue, post)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait()
            ev(queue, config, NOW, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(outbox(queue)) == len(FAILED_TO)


def test_a_cause_still_open_is_reminded_at_the_interval_and_resolved_once(
    queue: Database, config: Config
) -> None:
    post = first_post(queue, "facebook")
    fail(queue, post)
    wall = FakeClock(NOW)
    ev(queue, config, NOW, wall.now())
    every = config.alerts.remind_every
    wall.advance(every - timedelta(seconds=1))
    assert ev(queue, config, NOW, wall.now()).reminded == []
    wall.advance(timedelta(seconds=1))
    assert ev(queue, config, NOW, wall.now()).reminded == [f"post_failed:{post}"]
    wall.advance(every / 2)
    assert ev(queue, config, NOW, wall.now()).reminded == []
    wall.advance(every / 2)
    assert ev(queue, config, NOW, wall.now()).reminded == [f"post_failed:{post}"]
    set_state(queue, post, NOW, "approved", "rescheduled by Ban biên tập")  # the fix
    wall.advance(timedelta(minutes=1))
    assert ev(queue, config, NOW, wall.now()).resolved == [f"post_failed:{post}"]
    assert ev(queue, config, NOW, wall.now()).mails == 0
    subjects = Counter(m.subject.split(":")[0] for m in outbox(queue))
    assert subjects == {
        "[publisher] Post failed": 3,
        "[publisher] Reminder": 6,
        "[publisher] Resolved": 3,
    }
    with queue.read() as s:
        row = s.scalars(select(AlertRow)).one()
    assert row.resolved_at == wall.now() and row.reminders == 2
    fail(queue, post, "(#368) again")  # the same cause again: alerted again
    assert ev(queue, config, NOW, wall.now()).opened == [f"post_failed:{post}"]


def test_a_failing_source_resolves_nothing(queue: Database, config: Config) -> None:
    post = first_post(queue, "facebook")
    fail(queue, post)
    ev(queue, config, NOW, NOW)
    set_state(queue, post, NOW, "approved", "rescheduled")

    def broken(_s: object, _ctx: Context) -> list[alert_causes.Cause]:
        raise RuntimeError("boom")

    report = evaluate(queue, config, NOW, NOW, sources=[*POST_SOURCES, broken])
    assert report.failed_sources == ["broken"] and report.resolved == []
    assert ev(queue, config, NOW, NOW).resolved == [f"post_failed:{post}"]


def test_causes_of_channels_tokens_the_daemon_and_the_digest(
    queue: Database, config: Config
) -> None:
    ctx = Context(config, NOW, NOW)
    with queue.write() as s:
        s.add(
            ChannelState(
                channel="zalo",
                block_kind=BlockKind.AUTH,
                block_reason="-216 token",
                blocked_since=NOW,
                blocked_until=NOW + timedelta(minutes=5),
                updated_at=NOW,
            )
        )
        s.add(
            ChannelState(
                channel="facebook",
                block_kind=BlockKind.THROTTLED,
                block_reason="#4",
                blocked_since=NOW - timedelta(minutes=30),
                blocked_until=NOW + timedelta(hours=1),
                updated_at=NOW,
            )
        )
        s.add(
            ChannelTokenRow(
                key="zalo@https://oauth.zaloapp.com",
                secret="x",  # noqa: S106 - not a token
                access_expires_at=NOW - timedelta(days=80),
                updated_at=NOW,
            )
        )
        s.add(
            DaemonRow(
                worker="elsewhere:1:abc",
                host="elsewhere",
                pid=1,
                mode=RunMode.RUN,
                started_at=NOW - timedelta(days=1),
                beat_at=NOW - timedelta(minutes=11),
            )
        )
    with queue.read() as s:
        blocked = alert_causes.blocked_channels(s, ctx)
        tokens = alert_causes.expiring_tokens(s, ctx)
        stale = alert_causes.stale_daemon(s, ctx)
        later = alert_causes.blocked_channels(s, Context(config, NOW + timedelta(minutes=31), NOW))
        fresh = alert_causes.stale_daemon(s, Context(config, NOW, NOW - timedelta(minutes=2)))
    assert [c.key for c in blocked] == ["channel_blocked:zalo"]  # a 30-minute throttle is not
    assert [c.key for c in later] == ["channel_blocked:facebook", "channel_blocked:zalo"]
    assert [c.key for c in tokens] == ["token_expiring:zalo"]
    assert tokens[0].facts["variable"] == "PUBLISHER_ZALO_REFRESH_TOKEN"
    assert [c.key for c in stale] == ["daemon_stale"] and stale[0].facts["waiting"] > 0
    assert fresh == []


def test_the_digest_lists_posts_due_within_a_day_not_approved(db: Database, config: Config) -> None:
    load(db, config, NOW - timedelta(days=10), "vanphong")  # drafts, not approved
    morning = datetime(2024, 6, 5, 0, 30, tzinfo=UTC)  # 07:30 local
    with db.read() as s:
        before = alert_causes.digest(s, Context(config, morning - timedelta(hours=1), morning))
        found = alert_causes.digest(s, Context(config, morning, morning))
        due = s.scalars(
            select(PostRow).where(
                PostRow.due_at >= morning, PostRow.due_at < morning + timedelta(days=1)
            )
        ).all()
    assert before == []
    assert [c.key for c in found] == ["digest:2024-06-05"]
    assert found[0].facts["count"] == len(due) > 0
    evaluate(db, config, morning, morning)
    evaluate(db, config, morning + timedelta(hours=7), morning + timedelta(hours=7))
    digests = [m for m in outbox(db) if m.alert_key == "digest:2024-06-05"]
    assert [m.recipients for m in digests] == [["tuan.la@stp-bacgiang.example"]]  # once


def mailer(port: int) -> Mailer:
    settings = MailSettings(
        host="127.0.0.1",
        from_address="publisher@stp-bacgiang.example",
        port=port,
        security="none",
        timeout=timedelta(seconds=5),
    )
    return Mailer(settings)


def test_the_outbox_waits_while_the_server_is_down_then_sends_each_mail_once(
    queue: Database, config: Config, tmp_path: Path
) -> None:
    post = first_post(queue, "facebook")
    fail(queue, post)
    with use_language("vi"):
        ev(queue, config, NOW, NOW)
    wall = FakeClock(NOW)
    down = flush(queue, mailer(free_port()), wall.now(), worker="a")
    assert (down.sent, down.retrying) == (0, 1)  # the server is down: the rest waits too
    waiting = outbox(queue)
    assert all(m.sent_at is None for m in waiting)
    tried = waiting[0]
    assert tried.attempts == 1 and tried.next_attempt_at == NOW + timedelta(minutes=1)
    assert "cannot reach the mail server" in (tried.last_error or "")
    assert [m.attempts for m in waiting[1:]] == [0, 0]
    with mail_server(tmp_path, security="none") as server:
        early = flush(queue, mailer(server.port), wall.now(), worker="a")
        assert early.sent == 2  # the tried one waits for its backoff
        assert tried.message_id not in {str(m["Message-ID"]) for _e, m in server.received}
        wall.advance(timedelta(minutes=1))
        assert flush(queue, mailer(server.port), wall.now(), worker="a").sent == 1
        assert flush(queue, mailer(server.port), wall.now(), worker="a").sent == 0
        received = [m for _e, m in server.received]
    assert sorted(str(m["To"]) for m in received) == sorted(FAILED_TO)
    ids = {m.message_id for m in outbox(queue)}
    assert {str(m["Message-ID"]) for m in received} == ids
    subject = str(received[0]["Subject"])
    assert subject.startswith("[publisher] Bài đăng thất bại: Trang Facebook Sở Tư pháp — ")
    body = received[0].get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "(#368) The action attempted has been deemed abusive" in text
    assert f"http://127.0.0.1:8080/posts/{post}" in text


def test_two_flushers_at_once_never_send_a_mail_twice(
    queue: Database, config: Config, tmp_path: Path
) -> None:
    for channel in ("facebook", "zalo", "portal_stp"):
        fail(queue, first_post(queue, channel))
    ev(queue, config, NOW, NOW)
    queued = outbox(queue)
    assert len(queued) == 3 * len(FAILED_TO)
    with mail_server(tmp_path, security="none") as server:
        barrier = threading.Barrier(3)

        def one(name: str) -> None:
            barrier.wait()
            flush(queue, mailer(server.port), NOW, worker=name, limit=100)

        threads = [threading.Thread(target=one, args=(f"w{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = Counter(str(m["Message-ID"]) for _e, m in server.received)
    assert got == Counter({m.message_id: 1 for m in queued})
    assert all(m.sent_at is not None for m in outbox(queue))


# Made per run (no secret-like literal in a tracked file), each of its platform's shape.
SECRETS = {
    "PUBLISHER_FACEBOOK_PAGE_TOKEN": "EAA" + secrets.token_urlsafe(24),
    "PUBLISHER_ZALO_APP_SECRET": secrets.token_urlsafe(16),
    "PUBLISHER_ZALO_REFRESH_TOKEN": secrets.token_urlsafe(32),
    "PUBLISHER_STP_WP_APP_PASSWORD": " ".join(secrets.token_hex(2) for _ in range(6)),
}
SMTP_PASSWORD = secrets.token_urlsafe(12)


def test_no_secret_reaches_a_mail(
    queue: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher.app import alert_round
    from publisher.config.env import resolve

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    smtp_url = (
        f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{free_port()}?from=publisher@stp-bacgiang.example"
    )
    monkeypatch.setenv("PUBLISHER_SMTP_URL", smtp_url)
    post = first_post(queue, "facebook")
    leak = " ".join([*SECRETS.values(), SMTP_PASSWORD, smtp_url])
    fail(queue, post, f"platform echoed: {leak}")
    with queue.write() as s:
        s.add(
            ChannelState(
                channel="zalo",
                block_kind=BlockKind.AUTH,
                block_reason=f"refused {leak}",
                blocked_since=NOW,
                updated_at=NOW,
            )
        )
    found = alert_round(config, queue, FakeClock(NOW), resolve(config))
    assert found is not None
    evaluation, sent = found()
    assert len(evaluation.opened) >= 2 and sent.retrying == 1  # nothing listens there
    texts = [m.subject + m.text + (m.last_error or "") for m in outbox(queue)]
    assert texts
    for text in texts:
        for secret in [*SECRETS.values(), SMTP_PASSWORD, smtp_url]:
            assert secret not in text
    assert "[redacted]" in texts[0]


def test_alerts_off_or_unrouted_send_nothing(queue: Database, config: Config) -> None:
    fail(queue, first_post(queue, "facebook"))
    off = replace(config, alerts=replace(config.alerts, enabled=False))
    assert evaluate(queue, off, NOW, NOW).mails == 0
    unrouted = replace(config, alerts=replace(config.alerts, to={"digest": ("a@b.example",)}))
    assert evaluate(queue, unrouted, NOW, NOW).mails == 0 and outbox(queue) == []


BOARD = """
[board]
members = [
  { name = "Lê Anh Tuấn", role = "approver", aliases = ["tuan.la"], email = "tuan.la@x.example" },
  { name = "Ban biên tập", role = "editor", aliases = ["bientap"] },
]
"""


@pytest.mark.parametrize(
    ("alerts", "error"),
    [
        ('to = { post_late = ["tuan.la"] }', "alerts.to.post_late: is not a kind of alert"),
        (
            'to = { post_failed = ["bientap"] }',
            "alerts.to.post_failed[0]: Ban biên tập has no email",
        ),
        (
            'to = { post_failed = ["editor"] }',
            "alerts.to.post_failed[0]: no editor on the board has an email",
        ),
        (
            'to = { post_failed = ["nobody"] }',
            "'nobody' is neither a member of the board nor a role",
        ),
        (
            'to = { digest = ["tuan.la"] }\nremind_every = "soon"',
            "alerts.remind_every: 'soon' is not a duration",
        ),
        ('to = { digest = ["tuan.la"] }\ndigest_at = "7h"', "alerts.digest_at: '7h' is not a time"),
        ('to = { digest = ["tuan.la"] }\nstale_after = "5s"', "alerts.stale_after: 5s is shorter"),
        ("to = {}", "alerts.to: names nobody to alert"),
        ('to = { digest = ["tuan.la"] }\nsend = true', "alerts.send: is not a known key"),
    ],
)
def test_a_bad_alerts_table_is_one_line_naming_the_key(
    campaign: Path, alerts: str, error: str
) -> None:
    import tomllib

    from publisher.errors import ConfigError

    text = (campaign / "config.toml").read_text("utf-8")
    text = text[: text.index("[board]")] + BOARD + "\n[alerts]\n" + alerts + "\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text), campaign / "config.toml")
    assert error in caught.value.line()
    assert "\n" not in caught.value.line()


def test_a_member_email_must_be_an_address(campaign: Path) -> None:
    import tomllib

    from publisher.errors import ConfigError

    text = (campaign / "config.toml").read_text("utf-8")
    text = text.replace('email = "tuan.la@stp-bacgiang.example"', 'email = "tuan.la at stp"')
    with pytest.raises(ConfigError, match=r"board.members\[0\].email: 'tuan.la at stp' is not"):
        parse_config(tomllib.loads(text), campaign / "config.toml")


def test_the_shipped_config_routes_each_kind(config: Config) -> None:
    assert config.alerts.enabled
    assert set(config.alerts.recipients("post_failed")) == set(FAILED_TO)
    assert config.alerts.recipients("digest") == ("tuan.la@stp-bacgiang.example",)


def test_check_and_channels_check_say_alerts_have_no_mail_server(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from tests.fakes import run

    cfg = campaign / "config.toml"  # the shipped config without its [mail] table
    cfg.write_text(re.sub(r"(?ms)^\[mail\]\n.*?(?=^\[)", "", cfg.read_text("utf-8")), "utf-8")
    out = run("check")
    assert "alerts: alerts are on but no mail server is configured" in out.stderr
    channels = run("channels", "check", "--sandbox")
    assert "alerts: alerts are on ([alerts]) but no mail server is configured" in channels.stdout
    monkeypatch.setenv("PUBLISHER_SMTP_URL", "smtp://127.0.0.1:2525?from=p@stp-bacgiang.example")
    assert "alerts are on" not in run("check").stderr


def test_a_hand_off_the_desk_does_not_confirm_in_time_alerts_until_confirmed(
    queue: Database, config: Config
) -> None:
    """``handoff_unconfirmed``: a post mailed to the PBGDPL portal's desk is not a cause within
    its ``confirm_within`` (24 h); past it, one alert to the members named (with how to
    confirm); confirmed with its live address, one "resolved" mail."""
    from publisher.editorial.confirm import confirm

    post = first_post(queue, "portal_pbgdpl")
    set_state(queue, post, NOW, "handed_off", "handed off", handed_off_at=NOW)
    sources = [alert_causes.unconfirmed_handoffs]
    assert evaluate(queue, config, NOW + timedelta(hours=23), NOW, sources=sources).mails == 0
    late = NOW + timedelta(hours=25)
    with use_language("vi"):
        opened = evaluate(queue, config, late, late, sources=sources)
    assert opened.opened == [f"handoff_unconfirmed:{post}"]
    mails = outbox(queue)
    assert sorted(a for m in mails for a in m.recipients) == [
        "bientap@stp-bacgiang.example",
        "pbgdpl@stp-bacgiang.example",
    ]
    assert f"#{post}" in mails[0].subject and f"publisher queue confirm {post} URL" in mails[0].text
    with queue.write() as s:
        confirm(s, config, post, "https://pbgdpl.example.gov.vn/bai-1", by="t", via="cli", now=late)
    done = evaluate(queue, config, late, late, sources=sources)
    assert done.resolved == [f"handoff_unconfirmed:{post}"]
    assert len(outbox(queue)) == 4  # two alerts, two "resolved"
