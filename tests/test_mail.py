"""The mail transport (``publisher.channels.smtp``) against a real SMTP server on loopback
(aiosmtpd: STARTTLS or TLS from the first byte, AUTH LOGIN/PLAIN only over TLS), what arrived
parsed with the ``email`` package; every failure is its outcome class, and no message, log or
exception holds the password."""

from __future__ import annotations

import email.utils
import logging
import traceback
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    Permanent,
    Temporary,
    Unreachable,
)
from publisher.channels.smtp import Mailer, flatten, text_message
from publisher.config import MailSettings
from tests.mailserver import Server, free_port, mail_server, silent_port

USER = "publisher@stp.example.vn"
SUBJECT = "Thông báo: Tháng hành động vì trẻ em năm 2024 — bài đăng đã lên lịch"
BODY = (
    "Kính gửi Ban biên tập,\n\n"
    "Bài “Phòng, chống xâm hại trẻ em” đã được đăng trên Cổng TTĐT Sở Tư pháp.\n"
    "Trân trọng.\n"
)


def password() -> str:
    """A password-shaped value made at run time (no secret in the tracked files)."""
    return "Pw-" + "".join(chr(c) for c in (0x71, 0x37, 0x58, 0x21, 0x6B, 0x33)) + "-ẞ1"


def settings_for(server: Server, **changes: object) -> MailSettings:
    base = MailSettings(
        host=server.host,
        from_address=USER,
        port=server.port,
        security="starttls",
        username=USER,
        password_env="PUBLISHER_SMTP_PASSWORD",  # noqa: S106  (the variable's name)
        from_name="Sở Tư pháp tỉnh Bắc Giang",
        reply_to="vanphong@stp.example.vn",
        timeout=timedelta(seconds=5),
        ca_file=server.ca_file,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def secret() -> str:
    return password()


@pytest.fixture
def server(tmp_path: Path, secret: str) -> Iterator[Server]:
    with mail_server(tmp_path, security="starttls", user=USER, password=secret) as s:
        yield s


def vietnamese(to: str = "tuan.la@stp.example.vn") -> EmailMessage:
    # typed in decomposed Unicode (NFD), as some keyboards do: it arrives composed (NFC)
    return text_message(
        to, unicodedata.normalize("NFD", SUBJECT), unicodedata.normalize("NFD", BODY)
    )


def never_shows(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
        assert secret[:8] not in text


def everything_said(exc: BaseException) -> str:
    """An exception as a log would show it: its traceback and every chained cause."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_a_message_over_starttls_with_a_login_arrives_whole(server: Server, secret: str) -> None:
    mailer = Mailer(settings_for(server), secret)
    msg = vietnamese()
    message_id = mailer.send(msg)

    (envelope, got), *more = server.received
    assert not more
    assert envelope.mail_from == USER and envelope.rcpt_tos == ["tuan.la@stp.example.vn"]
    assert message_id == got["Message-ID"] == msg["Message-ID"]
    assert message_id.startswith("<") and message_id.endswith("@stp.example.vn>")
    assert got["Subject"] == SUBJECT  # NFC, intact through RFC 2047
    raw = bytes(envelope.original_content or b"")
    assert b"Subject: =?utf-8?" in raw and raw.isascii()
    assert got.get_content() == BODY
    assert unicodedata.is_normalized("NFC", got.get_content())
    sender = got["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Sở Tư pháp tỉnh Bắc Giang", USER)
    assert str(got["To"]) == "tuan.la@stp.example.vn"
    assert str(got["Reply-To"]) == "vanphong@stp.example.vn"
    assert email.utils.parsedate_to_datetime(str(got["Date"])).tzinfo is not None
    assert server.auth is not None and server.auth.tries  # logged in (after STARTTLS)
    assert server.handler.commands.count("EHLO") == 2  # before and after STARTTLS


LONG = (
    "Phòng Phổ biến, giáo dục pháp luật và Theo dõi thi hành pháp luật — Sở Tư pháp tỉnh Bắc "
    "Giang: Tháng hành động vì trẻ em năm 2024, “Hành động thiết thực, ưu tiên nguồn lực cho "
    "trẻ em”"
)


def rfc2047(value: str) -> str:
    """A header decoded as RFC 2047 says (the space between two encoded words is folding, not
    text), whitespace runs made one space. The email package's parser of address headers adds a
    space there instead, so addresses are read with this."""
    from email.header import decode_header, make_header

    return " ".join(str(make_header(decode_header(value))).split())


def test_vietnamese_headers_of_any_length_keep_every_space() -> None:
    """The email package's own folding drops or adds spaces between encoded words (CPython
    gh-92081): "Sở Tư pháp tỉnh Bắc Giang" would arrive as "…tỉnhBắc Giang". Every length of
    subject and display name, folded at every place, arrives as it was."""
    import email
    import email.policy

    for end in range(1, len(LONG) + 1):
        text = LONG[:end].strip()
        msg = text_message("Tuấn <tuan.la@stp.example.vn>", text, BODY)
        msg["From"] = email.utils.formataddr((text, USER))
        msg["Cc"] = f"{email.utils.formataddr((text, 'a@stp.example.vn'))}, b@stp.example.vn"
        raw = flatten(msg)
        assert raw.isascii() and all(len(line) <= 78 for line in raw.split(b"\r\n"))
        got = email.message_from_bytes(raw, policy=email.policy.default)
        assert got["Subject"] == " ".join(text.split()), raw
        headers = dict(got.raw_items())
        if text.isascii():  # quoted, not encoded
            assert got["From"].addresses[0].display_name == text
            continue
        assert rfc2047(headers["From"]) == f"{text} <{USER}>", raw
        assert rfc2047(headers["Cc"]) == f"{text} <a@stp.example.vn>, b@stp.example.vn", raw
        assert rfc2047(headers["To"]) == "Tuấn <tuan.la@stp.example.vn>"


@pytest.mark.parametrize("ascii_only", [True, False], ids=["ascii", "utf-8"])
@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_each_login_method(tmp_path: Path, mechanism: str, ascii_only: bool) -> None:
    """smtplib sends ASCII logins; publisher sends the others itself, in UTF-8."""
    secret = password()
    secret = secret.encode("ascii", "ignore").decode() if ascii_only else secret
    with mail_server(tmp_path, user=USER, password=secret, mechanisms=(mechanism,)) as server:
        Mailer(settings_for(server), secret).send(vietnamese())
        assert server.auth is not None and server.auth.tries == [mechanism]
        assert len(server.received) == 1


def test_tls_from_the_first_byte(tmp_path: Path, secret: str) -> None:
    with mail_server(tmp_path, security="ssl", user=USER, password=secret) as server:
        mailer = Mailer(settings_for(server, security="ssl"), secret)
        assert mailer.check().ok
        mailer.send(vietnamese())
        ((_, got),) = server.received
        assert got["Subject"] == SUBJECT and got.get_content() == BODY


def test_plain_smtp_on_loopback_without_a_login(tmp_path: Path) -> None:
    with mail_server(tmp_path, security="none") as server:
        mailer = Mailer(settings_for(server, security="none", username="", password_env=""))
        result = mailer.check()
        assert result.ok and "no TLS" in result.detail
        mailer.send(vietnamese())
        assert len(server.received) == 1


def test_headers_given_are_kept_and_bcc_is_not_sent_along(server: Server, secret: str) -> None:
    msg = vietnamese()
    msg["Cc"] = "bientap@stp.example.vn"
    msg["Bcc"] = "luu@stp.example.vn"
    msg["Message-ID"] = "<post-12.3f2a@stp.example.vn>"
    msg["Reply-To"] = "pbgdpl@stp.example.vn"
    msg["From"] = "Phòng PB&TDTHPL <pbgdpl@stp.example.vn>"
    assert Mailer(settings_for(server), secret).send(msg) == "<post-12.3f2a@stp.example.vn>"
    ((envelope, got),) = server.received
    assert envelope.rcpt_tos == [
        "tuan.la@stp.example.vn",
        "bientap@stp.example.vn",
        "luu@stp.example.vn",
    ]
    assert envelope.mail_from == USER  # the envelope sender is the account's
    assert "Bcc" not in got and b"luu@" not in bytes(envelope.original_content or b"")
    assert got["Message-ID"] == "<post-12.3f2a@stp.example.vn>"
    assert str(got["Reply-To"]) == "pbgdpl@stp.example.vn"
    assert got["From"].addresses[0].display_name == "Phòng PB&TDTHPL"


def test_check_logs_in_and_sends_nothing(server: Server, secret: str) -> None:
    result = Mailer(settings_for(server), secret).check()
    assert result.ok, result.detail
    assert result.detail.startswith(
        f"logged in as {USER} on localhost:{server.port} (starttls), TLS"
    )
    assert result.detail.endswith("nothing sent")
    assert "NOOP" in server.handler.commands and "MAIL" not in server.handler.commands
    assert not server.received


def test_a_wrong_password_is_an_auth_error_that_never_shows_a_password(
    server: Server, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = secret[::-1] + "-wrong"
    mailer = Mailer(settings_for(server), wrong)
    with pytest.raises(AuthError) as info:
        mailer.send(vietnamese())
    reason = info.value.reason
    assert reason.startswith(f"the mail server refused the login of '{USER}' (535")
    assert reason.endswith("check [mail] username and the password in PUBLISHER_SMTP_PASSWORD"), (
        reason
    )
    result = mailer.check()
    assert not result.ok and result.reachable and "refused the login" in result.detail
    never_shows(wrong, everything_said(info.value), result.detail, caplog.text, repr(mailer))
    never_shows(secret, everything_said(info.value), result.detail, caplog.text)
    assert not server.received


def test_the_url_is_named_when_it_holds_the_login(server: Server, secret: str) -> None:
    url = "PUBLISHER_SMTP_URL"
    settings = settings_for(server, origin=url, password_env=url)
    with pytest.raises(AuthError, match="check the user and password in PUBLISHER_SMTP_URL$"):
        Mailer(settings, "not-" + secret).send(vietnamese())


def test_a_server_that_wants_a_login_says_how_to_give_one(tmp_path: Path, secret: str) -> None:
    with mail_server(tmp_path, user=USER, password=secret, auth_required=True) as server:
        mailer = Mailer(settings_for(server, username="", password_env=""))
        with pytest.raises(AuthError, match=r"requires a login \(530 .*set \[mail\] username"):
            mailer.send(vietnamese())
        assert not server.received


def test_a_closed_port_is_unreachable(server: Server, secret: str) -> None:
    mailer = Mailer(settings_for(server, port=free_port()), secret)
    with pytest.raises(
        Unreachable,
        match=r"cannot reach the mail server localhost:\d+ \(starttls\): ConnectionRefusedError",
    ):
        mailer.send(vietnamese())
    result = mailer.check()
    assert not result.ok and not result.reachable


def test_an_unknown_host_is_unreachable(server: Server, secret: str) -> None:
    mailer = Mailer(settings_for(server, host="mail.nonexistent.invalid"), secret)
    with pytest.raises(Unreachable, match="cannot reach the mail server mail.nonexistent.invalid"):
        mailer.send(vietnamese())


def test_a_server_that_never_greets_is_unreachable_after_the_timeout(
    server: Server, secret: str
) -> None:
    with silent_port() as port:
        mailer = Mailer(settings_for(server, port=port, timeout=timedelta(seconds=1)), secret)
        with pytest.raises(Unreachable, match="cannot reach the mail server"):
            mailer.send(vietnamese())


def test_an_untrusted_certificate_is_refused_and_names_ca_file(
    tmp_path: Path, server: Server, secret: str
) -> None:
    mailer = Mailer(settings_for(server, ca_file=None), secret)  # the system's CAs only
    with pytest.raises(Unreachable, match=r"certificate is not trusted .*set \[mail\] ca_file"):
        mailer.send(vietnamese())
    assert not server.received and server.auth is not None and not server.auth.tries


def test_a_certificate_for_another_host_is_refused(tmp_path: Path, secret: str) -> None:
    with mail_server(tmp_path, user=USER, password=secret, names=("mail.other.vn",)) as server:
        with pytest.raises(Unreachable, match="certificate is not trusted .*[Hh]ostname mismatch"):
            Mailer(settings_for(server), secret).send(vietnamese())
        assert server.auth is not None and not server.auth.tries


def test_starttls_missing_is_refused_rather_than_sending_in_clear(
    tmp_path: Path, secret: str
) -> None:
    with mail_server(tmp_path, security="none") as server:
        with pytest.raises(Unreachable, match="does not offer STARTTLS"):
            Mailer(settings_for(server), secret).send(vietnamese())
        assert "MAIL" not in server.handler.commands


def test_a_refused_recipient_is_permanent_and_nothing_is_sent(server: Server, secret: str) -> None:
    server.handler.refuse["khong-co@stp.example.vn"] = (
        "550 5.1.1 <khong-co@stp.example.vn>: no such user"
    )
    msg = vietnamese()
    msg["Cc"] = "khong-co@stp.example.vn"
    with pytest.raises(Permanent) as info:
        Mailer(settings_for(server), secret).send(msg)
    assert info.value.reason == (
        "the mail server refused the recipient(s) khong-co@stp.example.vn: 550 5.1.1 "
        "<khong-co@stp.example.vn>: no such user; nothing was sent"
    )
    assert info.value.status == 550
    assert not server.received  # not even to the recipient it took


def test_a_deferred_recipient_is_temporary(server: Server, secret: str) -> None:
    server.handler.refuse["tuan.la@stp.example.vn"] = "450 4.2.1 mailbox busy, try later"
    with pytest.raises(Temporary, match="deferred the recipient.*450 4.2.1 mailbox busy"):
        Mailer(settings_for(server), secret).send(vietnamese())


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("451 4.3.0 queue full", Temporary), ("554 5.6.0 message refused as spam", Permanent)],
)
def test_the_reply_to_the_message_decides(
    server: Server, secret: str, reply: str, outcome: type[ChannelError]
) -> None:
    server.handler.data_reply = reply
    with pytest.raises(outcome) as info:
        Mailer(settings_for(server), secret).send(vietnamese())
    assert type(info.value) is outcome and reply in info.value.reason


def test_a_connection_lost_after_data_is_ambiguous_and_a_resend_keeps_the_message_id(
    server: Server, secret: str
) -> None:
    mailer = Mailer(settings_for(server), secret)
    msg = vietnamese()
    server.handler.drop_after_data = True
    with pytest.raises(Ambiguous, match="lost after DATA.*may have taken the message"):
        mailer.send(msg)
    server.handler.drop_after_data = False
    again = mailer.send(msg)
    first, second = (got for _, got in server.received)
    assert first["Message-ID"] == second["Message-ID"] == again


def test_no_reply_after_data_within_the_timeout_is_ambiguous(server: Server, secret: str) -> None:
    server.handler.stall_after_data = 3
    mailer = Mailer(settings_for(server, timeout=timedelta(seconds=1)), secret)
    with pytest.raises(Ambiguous, match="lost after DATA"):
        mailer.send(vietnamese())
    assert len(server.received) == 1  # the server had it: exactly why it is ambiguous


def test_a_message_without_a_recipient_or_sender_is_permanent(server: Server, secret: str) -> None:
    msg = text_message("x@stp.example.vn", "s", "b")
    del msg["To"]
    with pytest.raises(Permanent, match="no recipient"):
        Mailer(settings_for(server), secret).send(msg)
    mailer = Mailer(settings_for(server, from_address=""), secret)
    with pytest.raises(Permanent, match=r"no sender address: set \[mail\] from_address"):
        mailer.send(vietnamese())
