"""Mail through an SMTP server: the transport of ``publisher mail test``, and of the alerts and
the email channel that build on it (``[mail]``, or ``PUBLISHER_SMTP_URL``; see the README).

A ``Mailer`` opens one connection per message (``send``) or per login check (``check``):
connect, EHLO, STARTTLS or TLS from the first byte (the certificate and its host name always
verified, against ``[mail] ca_file`` if set, else the system's CAs), AUTH when a user is set.
Failures are the channels' outcome classes (``publisher.channels.base``):

- ``Unreachable``: nothing reached the server — refused, no such host, the TLS handshake or the
  certificate failed, no greeting in time;
- ``AuthError``: the login was refused (535), or the server wants one (530): the reason says
  which setting to fix;
- ``Temporary``: a 4xx reply, or the connection lost before the message was sent;
- ``Permanent``: a 5xx reply to MAIL, RCPT or DATA (naming the refused recipients);
- ``Ambiguous``: the connection lost or timed out once DATA started: the server may have taken
  the message, so a resend must carry the same ``Message-ID``.

A recipient refused aborts the whole message (RSET, nothing sent), so a message goes to all
its recipients or to none. No reason, log or exception ever holds the password.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import functools
import smtplib
import ssl
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from functools import cached_property

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    CheckResult,
    Permanent,
    Temporary,
    Unreachable,
    mail_tls,
    network_reason,
)
from publisher.config.model import MailSettings


class Mailer:
    """Sends messages through the server ``settings`` name, logging in with ``password``."""

    def __init__(self, settings: MailSettings, password: str = "") -> None:
        self.settings = settings
        self._password = password

    def __repr__(self) -> str:
        return f"Mailer({self.settings.endpoint})"

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def send(self, msg: EmailMessage) -> str:
        """Send ``msg`` to its To, Cc and Bcc (Bcc is not sent along); return its Message-ID.
        From, Date, Reply-To and Message-ID are set on ``msg`` when it has none (the
        Message-ID ``<…@from-domain>``). A ChannelError subclass if it was not sent."""
        self.complete(msg)
        recipients = envelope_recipients(msg)
        data = flatten(msg)
        with self._session() as smtp:
            self._transaction(smtp, recipients, data)
        return str(msg["Message-ID"])

    def check(self) -> CheckResult:
        """Connect, secure, log in, NOOP, QUIT: whether mail can be sent (nothing is)."""
        s = self.settings
        try:
            with self._session() as smtp:
                code, reply = self._step(smtp.noop, "NOOP")
                if code != 250:
                    raise self._refusal(code, reply, "NOOP")
                tls = self._tls_version(smtp)
        except ChannelError as exc:
            return CheckResult(False, exc.reason, reachable=not isinstance(exc, Unreachable))
        who = f"logged in as {s.username}" if s.username else "connected (no login set)"
        return CheckResult(True, f"{who} on {s.endpoint}, {tls}; nothing sent")

    def complete(self, msg: EmailMessage) -> None:
        """Set the headers ``msg`` lacks: From (``from_name <from_address>``), Reply-To (if
        set), Date (now) and Message-ID."""
        s = self.settings
        if "From" not in msg:
            if not s.from_address:
                raise Permanent(f"no sender address: {self._sender_hint()}")
            msg["From"] = Address(display_name=s.from_name, addr_spec=s.from_address)
        if "Reply-To" not in msg and s.reply_to:
            msg["Reply-To"] = s.reply_to
        if "Date" not in msg:
            msg["Date"] = email.utils.formatdate(localtime=True)
        if "Message-ID" not in msg:
            msg["Message-ID"] = email.utils.make_msgid(domain=self._domain(msg))

    # the session: connect, secure, log in; then close whatever happened

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        smtp = self._open()
        try:
            self._login(smtp)
            yield smtp
        finally:
            with suppress(OSError):
                smtp.quit()
            smtp.close()

    def _open(self) -> smtplib.SMTP:
        """A connection greeted, EHLO'd and secured as ``security`` says; Unreachable if not."""
        s = self.settings
        timeout = s.timeout.total_seconds()
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout, context=self._context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=timeout)
            smtp.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise Unreachable(
                        f"the mail server {s.endpoint} does not offer STARTTLS, so the password "
                        "and the mail would go in clear (check [mail] security and port: "
                        "ssl is port 465)"
                    )
                smtp.starttls(context=self._context)
                smtp.ehlo()
        except OSError as exc:  # smtplib's errors, TLS, DNS and timeouts are all OSErrors
            if smtp is not None:
                smtp.close()
            raise Unreachable(
                f"cannot reach the mail server {s.endpoint}: {self._network(exc)}"
            ) from exc
        except Unreachable:
            if smtp is not None:
                smtp.close()
            raise
        return smtp

    @cached_property
    def _context(self) -> ssl.SSLContext:
        return mail_tls(self.settings.ca_file)

    def _login(self, smtp: smtplib.SMTP) -> None:
        s = self.settings
        if not s.username:
            return
        if not smtp.has_extn("auth"):
            raise AuthError(
                f"the mail server {s.endpoint} offers no login (AUTH) on this connection "
                f"({self._fix()}: no username if it needs none)"
            )
        try:
            if (s.username + self._password).isascii():
                smtp.login(s.username, self._password)
            else:
                self._login_utf8(smtp)
        except smtplib.SMTPAuthenticationError as exc:
            said = self._said(exc.smtp_code, exc.smtp_error)
            raise AuthError(
                f"the mail server refused the login of {s.username!r} ({said}): {self._fix()}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise AuthError(f"the mail server {s.endpoint} offers no login: {self._fix()}") from exc
        except smtplib.SMTPResponseException as exc:
            raise self._refusal(exc.smtp_code, exc.smtp_error, "AUTH") from exc
        except smtplib.SMTPException as exc:  # no mechanism both sides speak
            raise AuthError(
                f"the mail server {s.endpoint} offers no login method publisher speaks "
                f"(PLAIN, LOGIN, CRAM-MD5): {self._safe(str(exc))}; {self._fix()}"
            ) from exc
        except OSError as exc:
            raise Temporary(
                f"the mail server {s.endpoint} closed the connection during the login: "
                f"{self._network(exc)}"
            ) from exc

    def _login_utf8(self, smtp: smtplib.SMTP) -> None:
        """AUTH PLAIN (else LOGIN) with a user or password beyond ASCII, sent as UTF-8 (RFC
        4616), which ``smtplib.login`` cannot send."""
        user, password = self.settings.username.encode(), self._password.encode()
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in offered:
            code, reply = smtp.docmd("AUTH", "PLAIN " + _b64(b"\0" + user + b"\0" + password))
        elif "LOGIN" in offered:
            code, reply = smtp.docmd("AUTH", "LOGIN " + _b64(user))
            if code == 334:
                code, reply = smtp.docmd(_b64(password))
        else:
            raise smtplib.SMTPException("no login method for a password beyond ASCII")
        if code not in (235, 503):  # 503: already logged in
            raise smtplib.SMTPAuthenticationError(code, reply)

    # the transaction: MAIL, RCPT for each, then DATA

    def _transaction(self, smtp: smtplib.SMTP, recipients: list[str], data: bytes) -> None:
        s = self.settings
        options = ["BODY=8BITMIME"] if not data.isascii() and smtp.has_extn("8bitmime") else []
        code, reply = self._step(lambda: smtp.mail(s.from_address, options), "MAIL")
        if code != 250:
            raise self._refusal(code, reply, f"MAIL FROM:<{s.from_address}> (the sender)")
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in recipients:
            code, reply = self._step(functools.partial(smtp.rcpt, rcpt), "RCPT")
            if code not in (250, 251):
                refused[rcpt] = (code, reply)
        if refused:
            with suppress(OSError):
                smtp.rset()
            raise self._recipients_refused(refused)
        try:
            code, reply = smtp.data(data)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing was sent
            raise self._refusal(exc.smtp_code, exc.smtp_error, "DATA") from exc
        except OSError as exc:
            raise Ambiguous(
                f"the connection to the mail server {s.endpoint} was lost after DATA: "
                f"{self._network(exc)}; the server may have taken the message"
            ) from exc
        if code != 250:
            raise self._refusal(code, reply, "the message")

    def _step(self, call: Callable[[], tuple[int, bytes]], command: str) -> tuple[int, bytes]:
        """One command before DATA: a lost connection is Temporary (nothing was sent)."""
        try:
            code, reply = call()
        except OSError as exc:
            raise Temporary(
                f"the connection to the mail server {self.settings.endpoint} was lost at "
                f"{command}, before the message was sent: {self._network(exc)}"
            ) from exc
        return int(code), reply

    # what the server said, as an outcome

    def _refusal(self, code: int, reply: bytes | str, what: str) -> ChannelError:
        said = self._said(code, reply)
        if code == 530:
            return AuthError(
                f"the mail server requires a login ({said}): {self._fix(login_missing=True)}"
            )
        if code == 535:
            return AuthError(f"the mail server refused the login ({said}): {self._fix()}")
        if 500 <= code < 600:
            return Permanent(f"the mail server refused {what}: {said}", status=code)
        return Temporary(f"the mail server deferred {what}: {said}", status=code)

    def _recipients_refused(self, refused: dict[str, tuple[int, bytes]]) -> ChannelError:
        codes = [code for code, _ in refused.values()]
        if any(code in (530, 535) for code in codes):
            code, reply = next(v for v in refused.values() if v[0] in (530, 535))
            return self._refusal(code, reply, "RCPT")
        listed = "; ".join(f"{r}: {self._said(c, text)}" for r, (c, text) in refused.items())
        if all(400 <= code < 500 for code in codes):
            return Temporary(f"the mail server deferred the recipient(s) {listed}", status=codes[0])
        permanent = next(code for code in codes if not 400 <= code < 500)
        return Permanent(
            f"the mail server refused the recipient(s) {listed}; nothing was sent",
            status=permanent,
        )

    def _said(self, code: int, reply: bytes | str) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        return self._safe(f"{code} {' '.join(text.split())}".strip())

    def _network(self, exc: BaseException) -> str:
        """A network failure in a few words, and what to fix for a certificate."""
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._said(exc.smtp_code, exc.smtp_error)
        timeout = self.settings.timeout.total_seconds()
        return network_reason(exc, table="mail", timeout=timeout, safe=self._safe)

    def _fix(self, *, login_missing: bool = False) -> str:
        """Which setting holds the login, to say what to check."""
        s = self.settings
        if s.origin != "[mail]":
            return f"check the user and password in {s.origin}"
        if login_missing:
            return 'set [mail] username and secrets = { password = "PUBLISHER_SMTP_PASSWORD" }'
        return f"check [mail] username and the password in {s.password_env or 'its variable'}"

    def _sender_hint(self) -> str:
        if self.settings.origin != "[mail]":
            return f"set [mail] from_address, or ?from=ADDRESS in {self.settings.origin}"
        return "set [mail] from_address"

    def _safe(self, text: str) -> str:
        """``text`` without the password, raw or in the forms AUTH sends it (base64)."""
        password = self._password
        if len(password) < 3:
            return text
        user = self.settings.username.encode()
        forms = {
            password,
            _b64(password.encode()),
            _b64(b"\0" + user + b"\0" + password.encode()),
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "[redacted]")
        return text

    def _domain(self, msg: EmailMessage) -> str:
        """The domain of the sender, for Message-IDs."""
        addresses = email.utils.getaddresses([str(v) for v in msg.get_all("From", [])])
        sender = addresses[0][1] if addresses else self.settings.from_address
        return sender.rpartition("@")[2] or self.settings.host

    @staticmethod
    def _tls_version(smtp: smtplib.SMTP) -> str:
        sock = smtp.sock
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        return version or "no TLS (loopback)"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_recipients(msg: EmailMessage) -> list[str]:
    """The addresses of To, Cc and Bcc, each once, in order; Permanent if there is none or
    one is not a plain ASCII address."""
    values = [str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
    found: list[str] = []
    for _name, address in email.utils.getaddresses(values):
        if not address or "@" not in address or not address.isascii():
            raise Permanent(f"{address!r} is not a mail address publisher can send to")
        if address not in found:
            found.append(address)
    if not found:
        raise Permanent("the message has no recipient (To, Cc or Bcc)")
    return found


def flatten(msg: EmailMessage) -> bytes:
    """``msg`` as SMTP sends it: CRLF line ends, Bcc left out, headers RFC 2047 encoded."""
    copied = copy.copy(msg)
    del copied["Bcc"]
    encode_headers(copied)
    policy = msg.policy
    if isinstance(policy, EmailPolicy):  # what encode_headers wrote goes out as it is
        policy = policy.clone(refold_source="none")
    return copied.as_bytes(policy=policy.clone(linesep="\r\n"))


_TEXT_HEADERS = ("subject", "comments", "keywords")
_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to", "sender")


def encode_headers(msg: EmailMessage) -> None:
    """Encode ``msg``'s text and address headers that are not ASCII (RFC 2047) here, with
    ``email.header.Header``, which keeps every space inside its encoded words, and store them as
    they are: the email package's own folding loses or adds spaces between encoded words when
    it folds a long header (CPython gh-92081, still so in Python 3.11), so "Sở Tư pháp tỉnh Bắc
    Giang" would arrive as "Sở Tư pháp tỉnhBắc Giang"."""
    for name in dict.fromkeys(msg.keys()):
        kind = name.lower()
        values = msg.get_all(name, [])
        if kind not in _TEXT_HEADERS + _ADDRESS_HEADERS or all(str(v).isascii() for v in values):
            continue
        if kind in _TEXT_HEADERS:
            encoded = [_encoded(name, str(v)) for v in values]
        else:
            encoded = [_encoded_addresses(name, v) for v in values]
        del msg[name]
        for value in encoded:
            msg.set_raw(name, value)


def _encoded(name: str, text: str) -> str:
    return Header(text, "utf-8", maxlinelen=76, header_name=name).encode(linesep="\r\n")


def _encoded_addresses(name: str, header: object) -> str:
    """An address header with each non-ASCII display name encoded, one address a line."""
    addresses = getattr(header, "addresses", None)
    if addresses is None:
        return _encoded(name, str(header))
    parts = []
    for a in addresses:
        if a.display_name.isascii():
            parts.append(email.utils.formataddr((a.display_name, a.addr_spec)))
        else:
            parts.append(f"{_encoded(name, a.display_name)}\r\n <{a.addr_spec}>")
    return ",\r\n ".join(parts)


def text_message(to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message (NFC; the body base64-encoded UTF-8, so any server carries it)."""
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = " ".join(unicodedata.normalize("NFC", subject).split())
    msg.set_content(unicodedata.normalize("NFC", body), cte="base64")
    return msg
