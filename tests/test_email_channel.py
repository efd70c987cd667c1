"""The email channel (a portal's editorial desk by mail): what arrives at a real SMTP server
(aiosmtpd on loopback), parsed with the ``email`` package; the handed_off state; confirming a
hand-off (the core function, the CLI, the signed link in the web app); overdue hand-offs and
the report's counts."""

from __future__ import annotations

import hashlib
import io
import random
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from fastapi.testclient import TestClient
from sqlalchemy import select

from publisher.app import build_adapters, reply_handler
from publisher.channels.email_desk import ConfirmLinks, EmailAdapter, key_of_message_id
from publisher.channels.imap import Reply
from publisher.channels.smtp import Mailer
from publisher.clock import FakeClock
from publisher.config import Config, MailSettings, load_config
from publisher.config.env import Secrets
from publisher.dispatch.dispatcher import Dispatcher
from publisher.dispatch.retry import RetryPolicy
from publisher.dispatch.settings import DispatchSettings
from publisher.documents.report import build_report
from publisher.documents.report_text import to_markdown
from publisher.editorial.check import mail_problems
from publisher.editorial.confirm import confirm, overdue_handoffs, post_for_message_id
from publisher.editorial.load import approve, load
from publisher.errors import ConfigError, InputError
from publisher.signing import link_key
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import AuditEntry, MediaFile, PostEvent, PostRow
from publisher.web.app import create_app
from publisher.web.context import WebContext
from tests.fakes import FakePlatform, run, set_state
from tests.mailserver import Server, mail_server

T0 = datetime(2024, 5, 31, 0, 0, tzinfo=UTC)
SENDER = "publisher@stp.example.vn"
KEY = bytes.fromhex("5e" * 32)  # the suite's audit key (conftest)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SITE = "https://pbgdpl.example.gov.vn"


@pytest.fixture
def server(tmp_path: Path) -> object:
    with mail_server(tmp_path, security="none") as s:
        yield s


def mailer_for(server: Server) -> Mailer:
    settings = MailSettings(
        host="127.0.0.1",
        from_address=SENDER,
        port=server.port,
        security="none",
        from_name="Sở Tư pháp tỉnh Bắc Giang",
        reply_to="pbgdpl@stp.example.vn",
        timeout=timedelta(seconds=5),
    )
    return Mailer(settings)


@pytest.fixture
def web_config(config: Config) -> Config:
    return replace(config, web=replace(config.web, base_url="https://lich.example.gov.vn"))


@pytest.fixture
def queue(db: Database, web_config: Config) -> Database:
    load(db, web_config, T0, "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=T0)
    db.audit_key = KEY  # as the daemon's and the web app's: it keys the confirmation links
    return db


def dispatcher(db: Database, config: Config, server: Server, clock: FakeClock) -> Dispatcher:
    adapters: dict[str, object] = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    links = ConfirmLinks(config.web.base_url, link_key(KEY))
    adapters["portal_pbgdpl"] = EmailAdapter(
        config.channels["portal_pbgdpl"], clock=clock, mailer=mailer_for(server), links=links
    )
    return Dispatcher(
        db,
        adapters,  # type: ignore[arg-type]
        clock,
        worker="w1",
        policy=RetryPolicy(),
        settings=DispatchSettings(),
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )


def desk_posts(db: Database) -> list[PostRow]:
    with db.read() as s:
        q = select(PostRow).where(PostRow.channel == "portal_pbgdpl").order_by(PostRow.due_at)
        return list(s.scalars(q))


def send_first(db: Database, config: Config, server: Server) -> tuple[PostRow, FakeClock]:
    p = desk_posts(db)[0]
    assert p.due_at is not None
    clock = FakeClock(p.due_at)
    d = dispatcher(db, config, server, clock)
    d.run_once()
    d.drain()
    d.close()
    return p, clock


def row(db: Database, post_id: int) -> PostRow:
    with db.read() as s:
        found = s.get(PostRow, post_id)
        assert found is not None
        return found


def parts(msg: EmailMessage) -> dict[str, list[EmailMessage]]:
    out: dict[str, list[EmailMessage]] = {}
    for part in msg.walk():
        if not part.is_multipart():
            out.setdefault(part.get_content_type(), []).append(part)  # type: ignore[arg-type]
    return out


def test_a_post_goes_to_the_desk_as_one_mail_and_waits_handed_off(
    queue: Database, web_config: Config, server: Server
) -> None:
    p, clock = send_first(queue, web_config, server)
    after = row(queue, p.id)
    assert after.state == State.HANDED_OFF
    assert after.published_at is None and after.handed_off_at == p.due_at
    assert len(server.received) == 1
    envelope, msg = server.received[0]
    assert envelope.rcpt_tos == ["toasoan@pbgdpl.example.gov.vn"]
    assert msg["Message-ID"] == f"<{p.idempotency_key}@stp.example.vn>" == after.remote_id
    assert msg["X-Publisher-Post"] == p.idempotency_key
    assert msg["X-Publisher-Channel"] == "portal_pbgdpl"
    assert msg["Reply-To"] == "pbgdpl@stp.example.vn"
    raw = envelope.original_content or b""
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0].lower()  # RFC 2047 in the header
    subject = p.fields["subject"]
    assert str(msg["Subject"]) == subject == unicodedata.normalize("NFC", subject)
    assert "Đề nghị đăng thông điệp" in subject
    assert msg.get_content_type() == "multipart/mixed"
    found = parts(msg)
    text = found["text/plain"][0].get_content()
    html = found["text/html"][0].get_content()
    assert p.fields["text"].splitlines()[0] in text and "111 (miễn phí, 24 giờ mỗi ngày)" in text
    assert "<strong>111</strong>" in html and p.fields["subject"] not in html
    assert unicodedata.is_normalized("NFC", text) and unicodedata.is_normalized("NFC", html)
    link = str(msg["X-Publisher-Confirm"])
    assert link.startswith("https://lich.example.gov.vn/confirm/") and link in text
    # the cover attached: the approved bytes
    with queue.read() as s:
        files = {f.sha256: f.data for f in s.scalars(select(MediaFile))}
    (picture,) = found["image/jpeg"]
    data = picture.get_content()
    assert hashlib.sha256(data).hexdigest() in files
    (docx_part,) = found["application/vnd.openxmlformats-officedocument.wordprocessingml.document"]
    doc = Document(io.BytesIO(docx_part.get_content()))
    words = "\n".join(par.text for par in doc.paragraphs)
    assert "111" in words and "Tổng đài điện thoại quốc gia bảo vệ trẻ em" in words
    assert len(doc.inline_shapes) == 1  # the cover, in the document too
    # its title is the article's (what the editor pastes), not the mail's request subject
    assert doc.paragraphs[0].style.name == "Title"
    with queue.read() as s:
        title = s.get_one(PostRow, p.id).message.title
    assert doc.paragraphs[0].text == title and p.fields["subject"] not in words
    # handed off is never resent
    clock.advance(timedelta(days=2))
    d = dispatcher(queue, web_config, server, clock)
    d.run_once()
    d.drain()
    d.close()
    assert [m["Message-ID"] for _e, m in server.received].count(msg["Message-ID"]) == 1
    assert row(queue, p.id).state == State.HANDED_OFF


def test_a_mail_lost_after_data_is_sent_again_with_the_same_message_id(
    queue: Database, web_config: Config, server: Server
) -> None:
    server.handler.drop_after_data = True  # the server keeps it and the connection drops
    p, clock = send_first(queue, web_config, server)
    assert row(queue, p.id).state == State.UNCONFIRMED
    server.handler.drop_after_data = False
    for _ in range(6):  # the lookup (which cannot find a mail), then the resend
        clock.advance(RetryPolicy().reconcile_after + timedelta(seconds=1))
        d = dispatcher(queue, web_config, server, clock)
        d.run_once()
        d.drain()
        d.close()
    assert row(queue, p.id).state == State.HANDED_OFF
    ids = [m["Message-ID"] for _e, m in server.received]
    assert ids == [f"<{p.idempotency_key}@stp.example.vn>"] * 2


def test_confirm_publishes_once_with_the_live_address(
    queue: Database, web_config: Config, server: Server
) -> None:
    p, clock = send_first(queue, web_config, server)
    url = f"{SITE}/tin-tuc/thong-diep-1"
    with queue.write() as s:
        assert post_for_message_id(s, f"<{p.idempotency_key}@stp.example.vn>") == p.id
        assert post_for_message_id(s, "<other@example.vn>") is None
        done = confirm(s, web_config, p.id, url, by="desk:x", via="reply", now=clock.now())
    assert done.changed and row(queue, p.id).state == State.PUBLISHED
    assert row(queue, p.id).remote_url == url and row(queue, p.id).published_at == clock.now()
    with queue.write() as s:  # again, the same address: nothing changes
        again = confirm(s, web_config, p.id, url, by="bientap", via="cli", now=clock.now())
    assert not again.changed
    with queue.read() as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.post_id == p.id)))
        events = list(s.scalars(select(PostEvent).where(PostEvent.post_id == p.id)))
    assert [e.action for e in entries].count("confirm") == 1
    assert events[-1].actor == "desk:x" and "(reply)" in events[-1].cause
    with queue.write() as s, pytest.raises(InputError, match="already confirmed"):
        confirm(s, web_config, p.id, url + "-2", by="bientap", via="cli", now=clock.now())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://evil.example.com/bai", "is not on the portal"),
        ("http://pbgdpl.example.gov.vn/bai", "is not on the portal"),
        ("ftp://pbgdpl.example.gov.vn/bai", "is not a web address"),
        ("https://pbgdpl.example.gov.vn/a b", "is not a web address"),
    ],
)
def test_confirm_refuses_an_address_off_the_portal(
    queue: Database, web_config: Config, server: Server, url: str, problem: str
) -> None:
    p, clock = send_first(queue, web_config, server)
    with queue.write() as s, pytest.raises(InputError, match=problem):
        confirm(s, web_config, p.id, url, by="bientap", via="cli", now=clock.now())
    assert row(queue, p.id).state == State.HANDED_OFF


def test_only_a_handed_off_post_is_confirmed(queue: Database, web_config: Config) -> None:
    p = desk_posts(queue)[1]  # approved, never sent
    with queue.write() as s, pytest.raises(InputError, match="not handed off"):
        confirm(s, web_config, p.id, f"{SITE}/x", by="bientap", via="cli", now=T0)


def test_overdue_handoffs_and_the_status(
    queue: Database, web_config: Config, server: Server
) -> None:
    p, clock = send_first(queue, web_config, server)
    with queue.read() as s:
        assert overdue_handoffs(s, web_config, clock.now() + timedelta(hours=23)) == []
        (late,) = overdue_handoffs(s, web_config, clock.now() + timedelta(hours=25))
    assert (late.post_id, late.channel) == (p.id, "portal_pbgdpl")
    assert late.deadline == p.due_at + timedelta(hours=24)  # type: ignore[operator]


def test_the_cli_confirms_as_an_editor_only(
    queue: Database, web_config: Config, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, _clock = send_first(queue, web_config, server)
    monkeypatch.setenv(
        "PUBLISHER_DATABASE_URL", queue.url
    )  # the CLI on this queue (PostgreSQL too)
    refused = run("queue", "confirm", str(p.id), f"{SITE}/bai", "--as", "vanphong")
    assert refused.exit_code == 1 and "confirming handed-off posts needs the editor role" in (
        refused.stderr
    )
    done = run("queue", "confirm", str(p.id), f"{SITE}/bai", "--as", "bientap")
    assert done.exit_code == 0, done.output
    assert f"Post {p.id} (portal_pbgdpl) confirmed as published at {SITE}/bai" in done.stdout
    again = run("queue", "confirm", str(p.id), f"{SITE}/bai", "--as", "bientap")
    assert again.exit_code == 0 and "nothing changed" in again.stdout
    other = run("queue", "confirm", str(p.id), f"{SITE}/khac", "--as", "bientap")
    assert other.exit_code == 1 and "already confirmed" in other.stderr


def _link(server: Server) -> str:
    return str(server.received[-1][1]["X-Publisher-Confirm"])


def test_the_signed_link_opens_a_form_that_confirms(
    queue: Database, web_config: Config, server: Server
) -> None:
    p, clock = send_first(queue, web_config, server)
    path = _link(server).removeprefix("https://lich.example.gov.vn")
    c = TestClient(create_app(WebContext(web_config, queue, clock)), follow_redirects=False)
    page = c.get(path)
    assert page.status_code == 200 and f"#{p.id}" in page.text
    token = CSRF.search(page.text)
    assert token is not None
    no_csrf = c.post(path, data={"url": f"{SITE}/bai"})
    assert no_csrf.status_code == 403
    off_site = c.post(path, data={"url": "https://evil.example.com/", "csrf_token": token[1]})
    assert off_site.status_code == 400 and row(queue, p.id).state == State.HANDED_OFF
    done = c.post(path, data={"url": f"{SITE}/bai", "csrf_token": token[1]})
    assert done.status_code == 200 and f"{SITE}/bai" in done.text
    after = row(queue, p.id)
    assert after.state == State.PUBLISHED and after.remote_url == f"{SITE}/bai"
    with queue.read() as s:
        event = s.scalars(
            select(PostEvent).where(PostEvent.post_id == p.id).order_by(PostEvent.id.desc())
        ).first()
    assert event is not None and event.actor == "desk:portal_pbgdpl" and "(link)" in event.cause


def test_a_tampered_or_expired_link_is_refused(
    queue: Database, web_config: Config, server: Server
) -> None:
    p, clock = send_first(queue, web_config, server)
    path = _link(server).removeprefix("https://lich.example.gov.vn")
    c = TestClient(create_app(WebContext(web_config, queue, clock)), follow_redirects=False)
    _post_id, rest = path.removeprefix("/confirm/").split(".", 1)
    other = desk_posts(queue)[1].id
    assert c.get(f"/confirm/{other}.{rest}").status_code == 403  # another post's id
    assert c.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB")).status_code == 403
    assert c.get("/confirm/nonsense").status_code == 403
    clock.advance(web_config.channels["portal_pbgdpl"].setting("link_valid") + timedelta(1))
    assert c.get(path).status_code == 410
    assert row(queue, p.id).state == State.HANDED_OFF


def test_the_report_counts_handed_off_and_confirmed_apart(
    queue: Database, web_config: Config, server: Server
) -> None:
    p, clock = send_first(queue, web_config, server)
    report = build_report(queue, web_config, clock.now())
    line = next(x for x in report.channels if x.key == "portal_pbgdpl")
    assert line.totals.handed_off == 1 and line.totals.published == 0
    assert "1 lượt chờ BBT xác nhận" in to_markdown(report)  # the abbreviation kept capitals
    with queue.write() as s:
        confirm(s, web_config, p.id, f"{SITE}/bai", by="bientap", via="cli", now=clock.now())
    report = build_report(queue, web_config, clock.now())
    line = next(x for x in report.channels if x.key == "portal_pbgdpl")
    assert line.totals.handed_off == 0 and line.totals.published == 1
    assert any(x.url == f"{SITE}/bai" for x in report.published)


def test_an_email_channel_needs_a_mail_server(config: Config, db: Database) -> None:
    bare = replace(config, mail=None)
    assert any("channels.portal_pbgdpl" in line for line in mail_problems(bare))
    assert mail_problems(config) == []
    with pytest.raises(ConfigError, match="no mail server is configured"):
        build_adapters(bare, Secrets(), db)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('to = ["toasoan@pbgdpl.example.gov.vn"]', "to: is missing"),
        ('to = ["toa soan"]', "to[0]: 'toa soan' is not a mail address"),
        ('site = "https://pbgdpl.example.gov.vn"', "site: is missing"),
        ('confirm_within = "24h"', None),
    ],
)
def test_the_email_channel_is_validated(campaign: Path, line: str, expected: str | None) -> None:
    path = campaign / "config.toml"
    text = path.read_text(encoding="utf-8")
    if expected is None:
        changed = text.replace(line, 'confirm_within = "soon"')
        expected = "confirm_within: 'soon' is not a duration"
    elif "is missing" in expected:
        changed = text.replace(line + "", "", 1)
    else:
        changed = text.replace('to = ["toasoan@pbgdpl.example.gov.vn"]', line)
    path.write_text(changed, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"channels.portal_pbgdpl.{expected}" in caught.value.line()


def test_a_message_id_names_its_post() -> None:
    assert key_of_message_id("<0b7c56a4-9a51-4b51-9a0e-2b3e5d1c7f00@x.vn>") == (
        "0b7c56a4-9a51-4b51-9a0e-2b3e5d1c7f00"
    )
    assert key_of_message_id("<abc@x.vn>") is None
    assert key_of_message_id("no brackets") is None


def _reply(p: PostRow, sender: str, *urls: str) -> Reply:
    return Reply(
        uid=1,
        message_id="<re-1@pbgdpl.example.gov.vn>",
        in_reply_to=f"<{p.idempotency_key}@stp.example.vn>",
        references=("<older@stp.example.vn>",),
        sender=sender,
        subject="Re: bài viết",
        urls=urls,
    )


def test_a_desk_reply_confirms_its_post_and_nothing_else(
    queue: Database, web_config: Config, server: Server
) -> None:
    """The daemon's reply handler: a stranger's reply, one naming no post of ours, or one with
    no address on the portal confirms nothing (each ignored with its reason); the desk's reply
    with the live address (after an off-site one) confirms the post it answers, once."""
    p, clock = send_first(queue, web_config, server)
    handle = reply_handler(queue, web_config, clock)
    good = f"{SITE}/tin-tuc/bai-1"
    stranger = handle(_reply(p, "mallory@evil.example.com", good))
    assert stranger.outcome == "ignored" and "not from the desk" in stranger.note
    no_url = handle(_reply(p, "bientap@pbgdpl.example.gov.vn"))
    assert no_url.outcome == "ignored" and "no address" in no_url.note
    off_site = handle(_reply(p, "bientap@pbgdpl.example.gov.vn", "https://evil.example.com/x"))
    assert off_site.outcome == "ignored" and "is not on the portal" in off_site.note
    other = replace(_reply(p, "bientap@pbgdpl.example.gov.vn", good), in_reply_to="<x@y>")
    assert handle(replace(other, references=())).outcome == "ignored"
    assert row(queue, p.id).state == State.HANDED_OFF
    done = handle(_reply(p, "toasoan@pbgdpl.example.gov.vn", "https://evil.example.com/x", good))
    assert done.outcome == "confirmed" and good in done.note
    assert row(queue, p.id).state == State.PUBLISHED and row(queue, p.id).remote_url == good
    again = handle(_reply(p, "toasoan@pbgdpl.example.gov.vn", good))
    assert again.outcome == "confirmed"  # the same address again: a no-op, marked processed


def test_an_editor_withdraws_a_hand_off_the_desk_will_not_publish(
    queue: Database, web_config: Config, server: Server
) -> None:
    """A handed-off post the desk refused (or never answers) is cancelled by an editor: it is
    no longer awaited, and a late confirmation is refused."""
    from publisher.editorial.actions import cancel

    p, clock = send_first(queue, web_config, server)
    done = cancel(queue, [p.id], actor="bientap", now=clock.now(), reason="the desk refused it")
    assert done.done == [p.id], done
    assert row(queue, p.id).state == State.CANCELLED
    with queue.read() as s:
        assert overdue_handoffs(s, web_config, clock.now() + timedelta(days=3)) == []
    with queue.write() as s, pytest.raises(InputError, match="not handed off"):
        confirm(s, web_config, p.id, f"{SITE}/x", by="desk", via="reply", now=clock.now())


def test_a_reply_to_a_post_still_being_sent_is_read_again_later(
    queue: Database, web_config: Config, server: Server
) -> None:
    """A daemon killed after the desk got the mail resends it (same Message-ID); the desk's
    reply to the first copy may come while the post is still retrying: it is left in the
    mailbox (``later``), not thrown away, and confirms the post once it is handed off."""
    p = desk_posts(queue)[0]
    clock = FakeClock(T0)
    handle = reply_handler(queue, web_config, clock)
    good = f"{SITE}/tin-tuc/bai-1"
    set_state(queue, p.id, T0, "retrying", "(test) the connection dropped after DATA")
    early = handle(_reply(p, "toasoan@pbgdpl.example.gov.vn", good))
    assert early.outcome == "later" and not early.processed
    set_state(queue, p.id, T0, "handed_off", "handed off", handed_off_at=T0)
    assert handle(_reply(p, "toasoan@pbgdpl.example.gov.vn", good)).outcome == "confirmed"
    assert row(queue, p.id).state == State.PUBLISHED


def test_two_daemons_handling_one_reply_at_once_publish_the_post_once(
    queue: Database, web_config: Config, server: Server
) -> None:
    """Two daemons read the same mailbox: both hand the desk's reply to their handler at once;
    the post is published once (one history event), the other handler finds it done."""
    import threading

    p, clock = send_first(queue, web_config, server)
    handlers = [reply_handler(queue, web_config, clock) for _ in range(2)]
    reply = _reply(p, "toasoan@pbgdpl.example.gov.vn", f"{SITE}/tin-tuc/bai-1")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def handle(h: Any) -> None:
        barrier.wait()
        outcomes.append(h(reply).outcome)

    threads = [threading.Thread(target=handle, args=(h,)) for h in handlers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes == ["confirmed", "confirmed"]
    with queue.read() as s:
        events = list(s.scalars(select(PostEvent).where(PostEvent.post_id == p.id)))
    assert [e.to_state for e in events].count(State.PUBLISHED) == 1


def test_each_article_document_is_a_fresh_one() -> None:
    """Documents are copied from one parsed template: what one article wrote never shows in
    the next, and the template is left as python-docx ships it."""
    from publisher.channels.email_docx import article_docx

    first = Document(io.BytesIO(article_docx("Một", "<p>Đoạn của bài một.</p>", ())))
    second = Document(io.BytesIO(article_docx("Hai", "<p>Đoạn của bài hai.</p>", ())))
    assert [p.text for p in first.paragraphs] == ["Một", "Đoạn của bài một."]
    assert [p.text for p in second.paragraphs] == ["Hai", "Đoạn của bài hai."]
    assert [p.text for p in Document().paragraphs] == []
