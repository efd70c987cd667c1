"""What the sandbox's SMTP server makes of a message it accepted: a record like the other
platforms' (``platform: "mail"``), read with the email package.

Pure: the envelope and the message's bytes in, the record's parts out. Headers are decoded (RFC
2047 encoded words, RFC 2231 file names); the text is the plain-text part; attachments are
described by name, type, size and SHA-256, never kept. A message the email package cannot make
sense of is still recorded, with what could be read.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

CHANNEL_HEADER = "X-Publisher-Channel"  # a sender may name its channel (the email adapter will)
POST_HEADER = "X-Publisher-Post"  # a post's idempotency key: an article for the desk (``desk``)
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Mail:
    """One accepted message, as the record keeps it."""

    message_id: str  # with its angle brackets, as in the header
    channel: str
    subject: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)


def read_mail(mail_from: str, recipients: list[str], content: bytes, fallback_id: str) -> Mail:
    """The record of a message sent by ``mail_from`` to ``recipients`` (the envelope); its
    ``Message-ID``, or ``fallback_id`` when it has none (as a receiving server adds one)."""
    msg = BytesParser(policy=email.policy.default).parsebytes(content)
    message_id = (_header(msg, "Message-ID") or "").strip() or fallback_id
    text_part = _body(msg, "plain")
    html_part = _body(msg, "html")
    fields: dict[str, Any] = {
        "recipients": list(recipients),
        "mail_from": mail_from,
        "message_id": message_id,
        "size": len(content),
    }
    for name in ("From", "To", "Cc", "Reply-To", "Date", "In-Reply-To", "References", POST_HEADER):
        value = _header(msg, name)
        if value:
            fields[name.lower().replace("-", "_")] = value
    if html_part is not None:
        fields["html"] = _content(html_part)
    fields["attachments"] = [
        _attachment(part)
        for part in msg.walk()
        if not part.is_multipart() and part is not text_part and part is not html_part
    ]
    return Mail(
        message_id=message_id,
        channel=_channel(msg, recipients),
        subject=_header(msg, "Subject") or "",
        text=_content(text_part) if text_part is not None else "",
        fields=fields,
    )


def _header(msg: EmailMessage, name: str) -> str | None:
    """A header decoded (RFC 2047), whitespace folded to single spaces; None if absent."""
    try:
        value = msg.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser chokes on
        raw = msg.get_all(name, failobj=[])
        value = str(raw[0]) if raw else None
    return None if value is None else " ".join(str(value).split())


def _body(msg: EmailMessage, subtype: str) -> Message | None:
    """The message's body of ``text/<subtype>`` (an alternative, or the whole message)."""
    try:
        return msg.get_body(preferencelist=(subtype,))
    except (KeyError, ValueError):
        return None


def _content(part: Message) -> str:
    """A text part's text, decoded from its transfer encoding and charset, with the wire's CRLF
    line ends as ``\n``."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def _attachment(part: Message) -> dict[str, Any]:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return {
        "name": part.get_filename() or "",
        "content_type": part.get_content_type(),
        "disposition": part.get_content_disposition() or "",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _channel(msg: EmailMessage, recipients: list[str]) -> str:
    """The sender's ``X-Publisher-Channel`` when it names one, else the first recipient's
    domain, else ``mail``."""
    named = (_header(msg, CHANNEL_HEADER) or "").lower()
    if _CHANNEL.fullmatch(named):
        return named
    for rcpt in recipients:
        domain = email.utils.parseaddr(rcpt)[1].rpartition("@")[2].lower()
        if domain:
            return domain
    return "mail"
