"""The sandbox's IMAP server and its editorial desk, read with publisher's IMAP reader over real
imaplib on loopback: the login, the unseen replies read without being marked, marked only once
handled (a crash reads them again), the poller's outcomes, the IMAP protocol's corners a client
meets; the desk end to end (an article mailed to the sandbox's SMTP server, its reply read over
IMAP, its URL followed to the article's page), a resend published once, its faults, its delay
in campaign time and the control endpoints."""

from __future__ import annotations

import imaplib
import threading
import time
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from publisher.app import build_imap_reader, use_sandbox
from publisher.channels.base import AuthError, Permanent, Unreachable
from publisher.channels.imap import ImapReader, Reply
from publisher.channels.smtp import Mailer
from publisher.config import Config, ImapSettings, MailSettings
from publisher.dispatch.replies import Handled, Poller, log_only, poll_replies
from publisher.sandbox import credentials as cred
from publisher.sandbox.faults import FaultPlan
from publisher.sandbox.server import Sandbox
from tests.fakes import FakePlatform
from tests.mailserver import free_port

DESK = "toasoan@pbgdpl.example.gov.vn"
REPLY_TO = "phanhoi@stp.example.gov.vn"
SUBJECT = unicodedata.normalize("NFC", "Quyền được bảo vệ khỏi bạo lực, xâm hại")
BODY = unicodedata.normalize(
    "NFC",
    "Trẻ em có quyền được bảo vệ khỏi mọi hình thức bạo lực.\n"
    "Xác nhận: http://127.0.0.1:8080/confirm/7?sig=abc\n",
)


def article(key: str = "post-7-k1", message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = DESK
    msg["Subject"] = SUBJECT
    msg["X-Publisher-Post"] = key
    msg["X-Publisher-Channel"] = "portal_pbgdpl"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(BODY)
    msg.add_alternative(f"<h2>{SUBJECT}</h2><p>{BODY.splitlines()[0]}</p>", subtype="html")
    return msg


class Box:
    def __init__(self, faults: str = "", delay: timedelta = timedelta(0)) -> None:
        self.sb = Sandbox(faults=FaultPlan.parse(faults, seed=3), desk_delay=delay).start()
        assert self.sb.smtp_address and self.sb.imap_address
        host, port = self.sb.smtp_address
        self.mailer = Mailer(
            MailSettings(
                host=host,
                port=port,
                security="none",
                username=cred.MAIL_USER,
                from_address="publisher@stp.example.gov.vn",
                reply_to=REPLY_TO,
            ),
            cred.MAIL_PASSWORD,
        )
        self.imap_host, self.imap_port = self.sb.imap_address

    def settings(self, **changes: Any) -> ImapSettings:
        base = ImapSettings(
            host=self.imap_host,
            port=self.imap_port,
            security="none",
            username=cred.MAIL_USER,
            timeout=timedelta(seconds=5),
        )
        return ImapSettings(**{**base.__dict__, **changes})

    def reader(self, password: str = cred.MAIL_PASSWORD, **changes: Any) -> ImapReader:
        return ImapReader(self.settings(**changes), password)

    def replies(self) -> list[Reply]:
        with self.reader().session() as s:
            return list(s.replies())


@pytest.fixture
def box() -> Iterator[Box]:
    b = Box()
    yield b
    b.sb.stop()


def wait_for(what: Any, limit: float = 20.0) -> Any:
    """Poll ``what()`` until it is truthy (a bound on a wait, not an assertion on time)."""
    deadline = time.monotonic() + limit
    while not (found := what()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return found


# -- the desk end to end ------------------------------------------------------------------------


def test_the_desk_publishes_an_article_and_its_reply_leads_to_the_page() -> None:
    b = Box(delay=timedelta(milliseconds=200))
    try:
        message_id = b.mailer.send(article())
        (reply,) = wait_for(b.replies)
        assert reply.in_reply_to == message_id and reply.references == (message_id,)
        assert reply.sender == DESK and reply.subject == f"Re: {SUBJECT}"
        assert reply.thread == (message_id,)
        (url,) = reply.urls  # the confirm link it quotes is not taken
        assert url.startswith(f"{b.sb.url}/desk/portal_pbgdpl/")
        assert "Ban biên tập đã đăng bài" in reply.text
        page = httpx.get(url)
        assert page.status_code == 200 and SUBJECT in page.text
        assert "Trẻ em có quyền được bảo vệ" in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        records = [r for r in b.sb.records() if r["kind"] == "desk-reply"]
        assert len(records) == 1 and records[0]["fields"]["url"] == url
        assert records[0]["fields"]["recipients"] == [REPLY_TO]  # to the Reply-To
        assert records[0]["fields"]["post"] == "post-7-k1"
        assert url in httpx.get(f"{b.sb.url}/sandbox").text
    finally:
        b.sb.stop()


def test_a_resend_with_the_same_message_id_is_published_once(box: Box) -> None:
    first = box.mailer.send(article(message_id="<post-7.k1@stp.example.gov.vn>"))
    box.mailer.send(article(message_id=first))
    replies = box.replies()
    assert len(replies) == 1
    assert [r["kind"] for r in box.sb.records()] == ["mail", "desk-reply", "duplicate"]


def test_mail_without_x_publisher_post_is_not_an_article(box: Box) -> None:
    msg = article()
    del msg["X-Publisher-Post"]
    box.mailer.send(msg)
    assert box.replies() == [] and box.sb.desk.articles == {}


@pytest.mark.parametrize(
    ("fault", "kind", "replies"),
    [("desk:silent", "desk-silent", 0), ("desk:no-url", "desk-no-url", 1)],
)
def test_the_desks_faults(fault: str, kind: str, replies: int) -> None:
    b = Box(fault)
    try:
        b.mailer.send(article())
        found = b.replies()
        assert len(found) == replies
        if found:
            assert found[0].urls == () and "đã nhận bài" in found[0].text
        assert b.sb.records()[-1]["kind"] == kind
        assert httpx.get(f"{b.sb.url}/desk/portal_pbgdpl/1").status_code == 404
    finally:
        b.sb.stop()


def test_the_desks_delay_is_campaign_time_played_at_the_rehearsals_speed() -> None:
    b = Box(delay=timedelta(hours=2))
    try:
        desk = f"{b.sb.url}/_sandbox/desk"
        assert httpx.get(desk).json()["real_delay"] == 7200
        answer = httpx.post(desk, json={"speed": 14400.0}).json()  # 2 h of campaign: 0.5 s
        assert answer["speed"] == 14400 and answer["real_delay"] == 0.5
        assert httpx.post(desk, json={"speed": 0}).status_code == 400
        assert httpx.post(desk, json={"delay": "soon"}).status_code == 400
        b.mailer.send(article())
        assert b.sb.desk.settings()["waiting"] == 1
        assert len(wait_for(b.replies)) == 1
    finally:
        b.sb.stop()


def test_the_imap_endpoint_says_where_the_replies_are(box: Box) -> None:
    answer = httpx.get(f"{box.sb.url}/_sandbox/imap").json()
    assert answer == {
        "host": box.imap_host,
        "port": box.imap_port,
        "security": "none",
        "username": cred.MAIL_USER,
        "mailbox": "INBOX",
    }


def test_reset_forgets_the_articles_and_the_mailbox(box: Box) -> None:
    box.mailer.send(article())
    assert len(box.replies()) == 1
    box.sb.reset()
    assert box.replies() == [] and box.sb.desk.articles == {}


# -- the reader against the sandbox's IMAP server ----------------------------------------------


def test_check_logs_in_and_counts_the_unseen(box: Box) -> None:
    box.mailer.send(article())
    result = box.reader().check()
    assert result.ok and "INBOX: 1 unseen" in result.detail and "publisher" in result.detail
    assert len(box.replies()) == 1  # check marked nothing


def test_a_wrong_password_is_an_auth_error_without_it(box: Box) -> None:
    with pytest.raises(AuthError) as caught, box.reader("not-the-password").session():
        pass
    assert "not-the-password" not in caught.value.reason
    assert "AUTHENTICATIONFAILED" in caught.value.reason
    result = box.reader("not-the-password").check()
    assert not result.ok and result.reachable


def test_no_such_mailbox_is_a_setting_to_fix(box: Box) -> None:
    reader = box.reader(mailbox="Replies")
    with (
        pytest.raises(Permanent, match=r"no mailbox 'Replies'.*\[imap\] mailbox"),
        reader.session(),
    ):
        pass


def test_a_closed_port_is_unreachable() -> None:
    settings = ImapSettings(host="127.0.0.1", port=free_port(), security="none", username="u")
    result = ImapReader(settings, "secret-pw").check()
    assert not result.ok and not result.reachable and "cannot reach" in result.detail


def test_a_reply_is_marked_only_once_handled_and_a_crash_reads_it_again(box: Box) -> None:
    box.mailer.send(article("post-1"))
    box.mailer.send(article("post-2"))

    def crash(reply: Reply) -> Handled:
        raise RuntimeError("the database went away")

    report = poll_replies(box.reader(), crash)
    assert (report.read, report.failed) == (2, 2)
    seen: list[str] = []

    def handle(reply: Reply) -> Handled:
        seen.append(reply.in_reply_to)
        if len(seen) == 1:
            return Handled.confirmed(f"post 1 published at {reply.urls[0]}")
        return Handled.ignored("no handed-off post has this Message-ID")

    report = poll_replies(box.reader(), handle)
    assert (report.read, report.confirmed, report.ignored) == (2, 1, 1)
    assert "ignored: no handed-off post" in report.notes[1]
    assert box.replies() == []  # both marked processed
    assert poll_replies(box.reader(), handle).read == 0


def test_the_log_only_handler_leaves_replies_unseen_and_tells_once(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    box.mailer.send(article())
    poller = Poller(box.reader(), log_only)
    with caplog.at_level("INFO", logger="publisher.dispatch.replies"):
        assert poller.poll().later == 1
        assert poller.poll().later == 1
    told = [r for r in caplog.records if "no confirmation is wired in yet" in r.getMessage()]
    assert len(told) == 1 and "/desk/portal_pbgdpl/1" in told[0].getMessage()
    assert len(box.replies()) == 1


# -- the IMAP protocol as a client meets it ------------------------------------------------------


def test_the_protocols_corners_with_raw_imaplib(box: Box) -> None:
    box.mailer.send(article())
    imap = imaplib.IMAP4(box.imap_host, box.imap_port, timeout=5)
    try:
        assert "IMAP4REV1" in imap.capabilities
        imap.send(b"X1 SELECT INBOX\r\n")  # not logged in yet (imaplib would not send it)
        assert imap.readline().startswith(b"X1 NO")
        imap.literal = cred.MAIL_PASSWORD.encode()  # the password as a literal: {n} then bytes
        typ, _ = imap._simple_command("LOGIN", cred.MAIL_USER)
        assert typ == "OK"
        imap.state = "AUTH"  # as imaplib's login() sets it
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK" and data == [b"1"]
        assert imap.uid("STORE", "1", "+FLAGS", r"(\Seen)")[0] == "NO"  # read-only
        typ, data = imap.uid("FETCH", "1", "(RFC822)")
        assert typ == "OK" and b"In-Reply-To" in data[0][1]
        assert imap.uid("SEARCH", "UNSEEN")[1] == [b"1"]  # EXAMINE marks nothing
        imap.select("INBOX")
        typ, data = imap.fetch("1:*", "(UID RFC822.SIZE BODY[])")
        assert typ == "OK" and data[1] == b" FLAGS (\\Seen))"  # BODY[] without PEEK marks it
        assert imap.uid("SEARCH", "UNSEEN")[1] == [b""]
        typ, data = imap.uid("STORE", "1", "-FLAGS", r"(\Seen)")
        assert typ == "OK" and data == [b"1 (UID 1 FLAGS ())"]
        imap.send(b"X2 FROBNICATE now\r\n")
        assert imap.readline() == b"X2 BAD unknown command FROBNICATE\r\n"
        assert imap.noop()[0] == "OK"
    finally:
        imap.logout()


# -- the sandbox in the app's wiring -------------------------------------------------------------


def test_use_sandbox_reads_the_sandboxs_replies_never_the_real_mailbox(
    box: Box, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ImapSettings(host="imap.example.gov.vn", username="real", password_env="REAL_IMAP_PW")  # noqa: S106
    monkeypatch.delenv("REAL_IMAP_PW", raising=False)  # never read: no error for its absence
    cfg = Config(**{**config.__dict__, "imap": real})
    sandboxed, _secrets = use_sandbox(cfg, box.sb.url, box.sb.smtp_address)  # IMAP asked by URL
    assert sandboxed.imap is not None
    assert (sandboxed.imap.host, sandboxed.imap.port) == (box.imap_host, box.imap_port)
    reader = build_imap_reader(sandboxed)
    assert reader is not None and reader.check().ok
    bare = Config(**{**config.__dict__, "imap": None, "mail": None})
    monkeypatch.delenv("PUBLISHER_IMAP_URL", raising=False)
    monkeypatch.delenv("PUBLISHER_SMTP_URL", raising=False)
    assert use_sandbox(bare, box.sb.url, box.sb.smtp_address)[0].imap is None


def test_the_daemons_reply_thread_polls_and_survives_a_failing_poll(
    db: Any, config: Config
) -> None:
    from publisher.app import make_dispatcher
    from publisher.clock import SystemClock
    from publisher.dispatch.daemon import Daemon

    polled = threading.Event()
    calls: list[int] = []

    def poll() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Unreachable("cannot reach the IMAP server")  # logged, tried again
        polled.set()

    clock = SystemClock()
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    dispatcher = make_dispatcher(db, config, platforms, clock, worker="replies-test")  # type: ignore[arg-type]
    daemon = Daemon(db, dispatcher, clock, tick=0.2, replies=poll, replies_every=0.0)
    daemon.until = polled.is_set
    watchdog = threading.Timer(20, daemon.stop, args=("watchdog",))
    watchdog.start()
    daemon.run()
    watchdog.cancel()
    assert polled.is_set() and len(calls) >= 2
