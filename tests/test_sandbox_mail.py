"""The sandbox's SMTP server over real SMTP on loopback, driven by publisher's own transport
(``publisher.channels.smtp.Mailer``): the login, the record of each message (Vietnamese headers
and text intact, attachments described, never kept), the faults as the transport's outcomes,
the follower page's Mail section and ``GET /_sandbox/smtp``."""

from __future__ import annotations

import json
import smtplib
import socket
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.channels.base import Ambiguous, AuthError, Permanent, Temporary
from publisher.channels.smtp import Mailer, text_message
from publisher.clock import FakeClock
from publisher.config import MailSettings
from publisher.errors import InputError
from publisher.sandbox import credentials as cred
from publisher.sandbox.faults import FaultPlan, FaultSpecError
from publisher.sandbox.server import Sandbox, main_serve
from tests.mailserver import free_port

NOW = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
SENDER = "publisher@stp.example.gov.vn"
DESK = "toasoan@pbgdpl.example.gov.vn"
SUBJECT = unicodedata.normalize(
    "NFC", "Tháng hành động vì trẻ em năm 2024: “Quyền được bảo vệ” – bài gửi Ban biên tập"
)
BODY = unicodedata.normalize(
    "NFC",
    "Kính gửi Ban biên tập Cổng PBGDPL,\n\n"
    "Trẻ em có quyền được bảo vệ khỏi mọi hình thức bạo lực, xâm hại.\n"
    "Trân trọng,\nSở Tư pháp tỉnh Bắc Giang\n",
)


class Box:
    """A started sandbox with a record file, a fake clock and the sleeps it asked for."""

    def __init__(self, tmp: Path, faults: str = "") -> None:
        self.record = tmp / "record.jsonl"
        self.sleeps: list[float] = []
        self.sb = Sandbox(
            record_path=self.record,
            seed=7,
            faults=FaultPlan.parse(faults, seed=7),
            clock=FakeClock(NOW),
            sleep=self.sleeps.append,
        ).start()
        assert self.sb.smtp_address is not None
        self.host, self.port = self.sb.smtp_address

    def settings(self, **changes: Any) -> MailSettings:
        base = MailSettings(
            host=self.host,
            port=self.port,
            security="none",
            username=cred.MAIL_USER,
            from_address=SENDER,
            from_name="Sở Tư pháp tỉnh Bắc Giang",
            timeout=timedelta(seconds=5),
            origin="the sandbox",
        )
        return replace(base, **changes)

    def mailer(self, password: str = cred.MAIL_PASSWORD, **changes: Any) -> Mailer:
        return Mailer(self.settings(**changes), password)

    def lines(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text("utf-8").splitlines()]


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    b.sb.stop()


def article(to: str = DESK) -> EmailMessage:
    msg = text_message(to, SUBJECT, BODY)
    msg.add_alternative(f"<p>{BODY}</p>", subtype="html")
    msg.add_attachment(
        b"\xff\xd8\xff" + bytes(997), maintype="image", subtype="jpeg", filename="bìa-tháng-6.jpg"
    )
    msg.add_attachment(
        b"PK\x03\x04" + bytes(96),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="Bài viết.docx",
    )
    return msg


# -- what arrives, and what the record keeps ------------------------------------------------------


def test_a_vietnamese_message_arrives_intact_in_the_record(box: Box) -> None:
    message_id = box.mailer().send(article())
    (item,) = box.sb.records()
    assert box.lines() == [item]  # one JSON line, fsynced before the reply
    assert (item["platform"], item["channel"], item["kind"]) == (
        "mail",
        "pbgdpl.example.gov.vn",
        "mail",
    )
    assert item["remote_id"] == message_id and message_id.endswith("@stp.example.gov.vn>")
    assert item["title"] == SUBJECT and item["text"] == BODY
    assert datetime.fromisoformat(item["time"]) == NOW
    fields = item["fields"]
    assert fields["recipients"] == [DESK] and fields["mail_from"] == SENDER
    assert fields["from"] == f"Sở Tư pháp tỉnh Bắc Giang <{SENDER}>"
    assert fields["to"] == DESK and fields["message_id"] == message_id
    assert fields["html"] == f"<p>{BODY}</p>\n"
    assert [(a["name"], a["size"]) for a in fields["attachments"]] == [
        ("bìa-tháng-6.jpg", 1000),
        ("Bài viết.docx", 100),
    ]
    assert fields["attachments"][0]["content_type"] == "image/jpeg"
    raw = box.record.read_bytes()
    assert SUBJECT.encode("utf-8") in raw and BODY.encode("utf-8")[:40] in raw
    assert (
        b"PK\\u0003" not in raw and bytes(96) not in raw and cred.MAIL_PASSWORD.encode() not in raw
    )


def test_every_recipient_is_recorded_and_none_is_delivered(box: Box) -> None:
    msg = text_message("Lê Anh Tuấn <tuan.la@stp.example.gov.vn>", "Cảnh báo", "Nội dung.\n")
    msg["Cc"] = "vanphong@stp.example.gov.vn"
    msg["Bcc"] = "luu@stp.example.gov.vn"
    box.mailer().send(msg)
    (item,) = box.sb.records()
    assert item["fields"]["recipients"] == [
        "tuan.la@stp.example.gov.vn",
        "vanphong@stp.example.gov.vn",
        "luu@stp.example.gov.vn",
    ]
    assert item["fields"]["to"] == "Lê Anh Tuấn <tuan.la@stp.example.gov.vn>"
    assert "bcc" not in item["fields"]


def test_a_sender_may_name_its_channel(box: Box) -> None:
    msg = text_message(DESK, "Bài 1", "Nội dung.\n")
    msg["X-Publisher-Channel"] = "portal_pbgdpl"
    box.mailer().send(msg)
    assert box.sb.records()[0]["channel"] == "portal_pbgdpl"


def test_a_resend_with_the_same_message_id_is_recorded_as_a_duplicate(box: Box) -> None:
    msg = text_message(DESK, "Bài 1", "Nội dung.\n")
    first = box.mailer().send(msg)
    again = box.mailer().send(msg)  # Message-ID already set: kept
    assert first == again
    assert [r["kind"] for r in box.sb.records()] == ["mail", "duplicate"]
    box.sb.reset()
    box.mailer().send(msg)
    assert [r["kind"] for r in box.sb.records()] == ["mail"]


def test_a_message_without_a_message_id_gets_one(box: Box) -> None:
    with smtplib.SMTP(box.host, box.port, timeout=5) as smtp:
        smtp.login(cred.MAIL_USER, cred.MAIL_PASSWORD)
        smtp.sendmail(SENDER, [DESK], b"Subject: raw\r\n\r\nplain ascii body\r\n")
    (item,) = box.sb.records()
    assert item["remote_id"].startswith("<sandbox-") and item["text"] == "plain ascii body\n"


# -- the login ----------------------------------------------------------------------------------


def test_the_login_is_checked(box: Box) -> None:
    result = box.mailer().check()
    assert result.ok, result.detail
    assert result.detail == (
        f"logged in as publisher on {box.host}:{box.port} (none), no TLS (loopback); nothing sent"
    )


def test_a_wrong_password_is_refused_with_535(box: Box) -> None:
    with pytest.raises(AuthError, match=r"refused the login of 'publisher' \(535 5\.7\.8"):
        box.mailer("not-the-password").send(text_message(DESK, "x", "y\n"))
    assert not box.mailer("not-the-password").check().ok
    assert box.sb.records() == []


def test_mail_without_a_login_is_refused_with_530(box: Box) -> None:
    with pytest.raises(AuthError, match="requires a login"):
        box.mailer(password="", username="").send(text_message(DESK, "x", "y\n"))
    assert box.sb.records() == []


# -- faults, as the transport's outcomes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "outcome", "recorded"),
    [
        ("mail:error-before=x1", Temporary, 0),
        ("mail:throttle=x1", Temporary, 0),
        ("mail:policy-block=x1", Permanent, 0),
        ("mail:create-then-fail=x1", Ambiguous, 1),
        ("*:create-then-fail=x1", Ambiguous, 1),
        ("mail:token-expiry=x1", AuthError, 0),
    ],
)
def test_faults_are_the_transports_outcomes(
    box: Box, spec: str, outcome: type[Exception], recorded: int
) -> None:
    box.sb.set_faults(spec)
    msg = text_message(DESK, SUBJECT, BODY)
    with pytest.raises(outcome):
        box.mailer().send(msg)
    assert len(box.sb.records()) == recorded
    box.mailer().send(msg)  # the next one goes through: the same Message-ID, once more
    kinds = [r["kind"] for r in box.sb.records()]
    assert kinds == (["mail", "duplicate"] if recorded else ["mail"])


def test_a_slow_reply_waits_after_the_record(box: Box) -> None:
    box.sb.set_faults("mail:slow=x1:2.5")
    box.mailer().send(text_message(DESK, "x", "y\n"))
    assert box.sleeps == [2.5] and len(box.sb.records()) == 1


def test_a_refused_login_fault_lasts_the_whole_connection(box: Box) -> None:
    """smtplib tries PLAIN, then LOGIN: both are refused on the faulty connection."""
    box.sb.set_faults("mail:token-expiry=x1")
    assert not box.mailer().check().ok
    assert box.mailer().check().ok


def test_the_fault_grammar_knows_mail() -> None:
    assert FaultPlan.parse("mail:throttle=0.5,mail:slow=x2:1").spec() == (
        "mail:throttle=0.5,mail:slow=x2:1"
    )
    with pytest.raises(FaultSpecError, match="applies only to"):
        FaultPlan.parse("mail:processing=x1")


# -- the page and the control API -----------------------------------------------------------------


def test_the_page_shows_the_mail_escaped(box: Box) -> None:
    msg = text_message(
        DESK, '<script>alert("s")</script> Thư gửi', 'Nội dung <img src="https://x.test/a.png">\n'
    )
    msg.add_attachment(b"1234", maintype="text", subtype="plain", filename="<b>ghi-chú</b>.txt")
    box.mailer().send(msg)
    page = httpx.get(box.sb.url + "/sandbox", timeout=10)
    assert page.status_code == 200
    body = page.text.split("<body>")[1]
    mail = body.split('<section id="mail">')[1]
    assert mail.startswith("<h2>Mail (1)</h2>")
    assert "&lt;script&gt;alert(&quot;s&quot;)&lt;/script&gt; Thư gửi" in mail
    assert "Nội dung &lt;img src=&quot;https://x.test/a.png&quot;&gt;" in mail
    assert f"To: {DESK}" in mail and f"From: Sở Tư pháp tỉnh Bắc Giang &lt;{SENDER}&gt;" in mail
    assert "<li>&lt;b&gt;ghi-chú&lt;/b&gt;.txt (text/plain, 4 bytes)</li>" in mail
    assert "<script" not in body and "<img" not in body and "<b>" not in body
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_the_control_api_says_where_the_smtp_server_listens(box: Box) -> None:
    answer = httpx.get(box.sb.url + "/_sandbox/smtp", timeout=10).json()
    assert answer == {
        "host": "127.0.0.1",
        "port": box.port,
        "security": "none",
        "username": cred.MAIL_USER,
    }


def test_a_sandbox_without_smtp_says_so() -> None:
    with Sandbox(smtp_port=None) as sb:
        assert sb.smtp_address is None
        answer = httpx.get(sb.url + "/_sandbox/smtp", timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "no_smtp"


def test_the_smtp_port_is_the_one_asked_and_freed_on_stop() -> None:
    port = free_port()
    with Sandbox(smtp_port=port) as sb:
        assert sb.smtp_address == ("127.0.0.1", port)
    with Sandbox(smtp_port=port) as again:  # the port was released
        assert again.smtp_address == ("127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError), smtplib.SMTP("127.0.0.1", port, timeout=2):
        pass


def test_a_busy_smtp_port_is_one_line() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(InputError) as refused:
            main_serve(0, None, None, 0, port)
    assert refused.value.line() == (
        f"--port, --smtp-port, --imap-port: cannot listen on 127.0.0.1 port 0 (HTTP), {port} "
        "(SMTP) and 0 (IMAP): Address already in use (stop what uses the port, or give another one (0: any free one))"
    )
