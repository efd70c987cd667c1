"""Replies by mail: the desks' answers read from an IMAP mailbox (``[imap]``, or
``PUBLISHER_IMAP_URL``; see the README), as ``Reply`` records.

An ``ImapReader`` opens one connection per poll (``session``) or per login check (``check``):
connect with TLS from the first byte (``ssl``), or upgrade with STARTTLS, or in clear on
loopback only (``none``); the certificate and its host name always verified (against ``ca_file``
if set, else the system's CAs); LOGIN (AUTHENTICATE PLAIN in UTF-8 for a login beyond ASCII);
SELECT the mailbox. A session lists the unseen messages (``UID SEARCH UNSEEN``), fetches each
without marking it seen (``BODY.PEEK[]``) and parses it (``parse_reply``); a message is marked
processed (``\\Seen``, and moved to the ``processed`` folder if one is set) only when the caller
says it was handled (``Session.processed``), so a crash in between reads it again.

Failures are the channels' outcome classes (``publisher.channels.base``): ``Unreachable``
(nothing reached the server: refused, DNS, TLS, no greeting in time), ``AuthError`` (the login
refused), ``Permanent`` (no such mailbox: a setting to fix), ``Temporary`` (the connection lost
or a command refused midway). No reason, log or exception ever holds the password.
"""

from __future__ import annotations

import base64
import email.policy
import email.utils
import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from functools import cached_property
from html.parser import HTMLParser

from publisher.channels.base import (
    AuthError,
    ChannelError,
    CheckResult,
    Permanent,
    Temporary,
    Unreachable,
    mail_tls,
    network_reason,
)
from publisher.config.model import ImapSettings

MAX_PER_POLL = 200  # unseen messages read in one session; the rest wait for the next poll
TEXT_LIMIT = 4000  # characters of a reply's own text kept in ``Reply.text``


@dataclass(frozen=True)
class Reply:
    """One message of the mailbox, as the poller hands it to its handler.

    ``uid``: its IMAP UID (valid within the session that read it). ``message_id``,
    ``in_reply_to`` and each of ``references``: with their angle brackets, as in the headers
    (``in_reply_to`` "" when absent). ``sender``: the bare address of From. ``urls``: the
    http(s) addresses in the reply's own text, in order, each once — quoted lines, the quoted
    original and the addresses the reader was told to exclude (our own confirm links) left out.
    ``text``: the reply's own text (without the quoted original), at most TEXT_LIMIT characters.
    """

    uid: int
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    sender: str
    subject: str
    urls: tuple[str, ...]
    text: str = ""
    date: datetime | None = None

    @property
    def thread(self) -> tuple[str, ...]:
        """The Message-IDs this reply answers, nearest first: In-Reply-To, then References from
        the last (the parent) to the first (the thread's start), each once."""
        ids = [self.in_reply_to, *reversed(self.references)]
        return tuple(dict.fromkeys(i for i in ids if i))


class ImapReader:
    """Reads the mailbox ``settings`` names, logging in with ``password``; ``exclude``: address
    prefixes never reported as a reply's URL (the web app's own links, e.g. the confirm link
    the desk got in the article's mail)."""

    def __init__(
        self, settings: ImapSettings, password: str, *, exclude: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        self._password = password
        self.exclude = tuple(p for p in exclude if p)

    def __repr__(self) -> str:
        return f"ImapReader({self.endpoint})"

    @property
    def endpoint(self) -> str:
        return f"{self.settings.endpoint} {self.settings.mailbox}"

    def check(self) -> CheckResult:
        """Connect, secure, log in, EXAMINE the mailbox (read-only), LOGOUT: whether replies
        can be read (nothing is marked)."""
        s = self.settings
        try:
            with self.session(readonly=True) as session:
                unseen = len(session.unseen())
                tls = session.tls
        except ChannelError as exc:
            return CheckResult(False, exc.reason, reachable=not isinstance(exc, Unreachable))
        return CheckResult(
            True,
            f"logged in as {s.username} on {s.endpoint}, {tls}; {s.mailbox}: {unseen} unseen",
        )

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A logged-in connection with the mailbox selected; logged out whatever happens."""
        imap = self._open()
        try:
            self._login(imap)
            self._select(imap, readonly)
            yield Session(self, imap)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise self._lost(exc) from exc
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                imap.logout()
            with suppress(OSError):
                imap.shutdown()

    # the connection: connect, secure, log in, select

    def _open(self) -> imaplib.IMAP4:
        s = self.settings
        timeout = s.timeout.total_seconds()
        imap: imaplib.IMAP4 | None = None
        try:
            if s.security == "ssl":
                imap = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=self._context, timeout=timeout)
            else:
                imap = imaplib.IMAP4(s.host, s.port, timeout=timeout)
            if s.security == "starttls":
                if "STARTTLS" not in imap.capabilities:
                    raise Unreachable(
                        f"the mail server {s.endpoint} does not offer STARTTLS, so the password "
                        "and the replies would go in clear (check [imap] security and port: "
                        "ssl is port 993)"
                    )
                imap.starttls(ssl_context=self._context)
        except (OSError, imaplib.IMAP4.error) as exc:
            self._close(imap)
            raise Unreachable(
                f"cannot reach the IMAP server {s.endpoint}: {self._network(exc)}"
            ) from exc
        except Unreachable:
            self._close(imap)
            raise
        return imap

    @staticmethod
    def _close(imap: imaplib.IMAP4 | None) -> None:
        if imap is not None:
            with suppress(OSError):
                imap.shutdown()

    @cached_property
    def _context(self) -> ssl.SSLContext:
        return mail_tls(self.settings.ca_file)

    def _login(self, imap: imaplib.IMAP4) -> None:
        s = self.settings
        try:
            if (s.username + self._password).isascii():
                imap.login(s.username, self._password)
            elif "AUTH=PLAIN" in imap.capabilities:
                token = b"\0" + s.username.encode() + b"\0" + self._password.encode()
                imap.authenticate("PLAIN", lambda _challenge: token)
            else:
                raise AuthError(
                    f"the IMAP server {s.endpoint} cannot take a login or password beyond ASCII "
                    f"(it offers no AUTH=PLAIN): {self._fix()}"
                )
        except imaplib.IMAP4.abort as exc:
            raise Temporary(
                f"the IMAP server {s.endpoint} closed the connection during the login: "
                f"{self._safe(str(exc))}"
            ) from exc
        except imaplib.IMAP4.error as exc:
            raise AuthError(
                f"the IMAP server refused the login of {s.username!r} "
                f"({self._said(exc)}): {self._fix()}"
            ) from exc

    def _select(self, imap: imaplib.IMAP4, readonly: bool) -> None:
        s = self.settings
        typ, data = imap.select(quote(s.mailbox), readonly=readonly)
        if typ != "OK":
            raise Permanent(
                f"the IMAP server has no mailbox {s.mailbox!r} for {s.username!r} "
                f"({self._said(data)}): check [imap] mailbox (e.g. 'INBOX')"
            )

    # what went wrong, in a few words, without the password

    def _lost(self, exc: BaseException) -> ChannelError:
        return Temporary(
            f"the connection to the IMAP server {self.settings.endpoint} failed midway: "
            f"{self._network(exc)}"
        )

    def _network(self, exc: BaseException) -> str:
        timeout = self.settings.timeout.total_seconds()
        return network_reason(exc, table="imap", timeout=timeout, safe=self._safe)

    def _said(self, said: object) -> str:
        """What the server said (a reply's data, or an imaplib error), on one line."""
        if isinstance(said, BaseException):
            said = said.args[0] if said.args else ""
        if isinstance(said, list):
            said = b" ".join(x for x in said if isinstance(x, bytes))
        if isinstance(said, bytes):
            said = said.decode("utf-8", "replace")
        return self._safe(" ".join(str(said).split()) or "no reason given")

    def _fix(self) -> str:
        s = self.settings
        if s.origin != "[imap]":
            return f"check the user and password in {s.origin}"
        return f"check [imap] username and the password in {s.password_env or 'its variable'}"

    def _safe(self, text: str) -> str:
        """``text`` without the password, raw or in the form AUTHENTICATE PLAIN sends it."""
        password = self._password
        if len(password) < 3:
            return text
        user = self.settings.username.encode()
        plain = base64.b64encode(b"\0" + user + b"\0" + password.encode()).decode()
        for form in sorted({password, plain}, key=len, reverse=True):
            text = text.replace(form, "[redacted]")
        return text


class Session:
    """One logged-in connection with the mailbox selected (``ImapReader.session``)."""

    def __init__(self, reader: ImapReader, imap: imaplib.IMAP4) -> None:
        self.reader = reader
        self.imap = imap

    @property
    def tls(self) -> str:
        sock = self.imap.sock
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        return version or "no TLS (loopback)"

    def unseen(self) -> list[int]:
        """The UIDs of the unseen messages, oldest first (at most MAX_PER_POLL)."""
        typ, data = self.imap.uid("SEARCH", "UNSEEN")
        if typ != "OK":
            raise Temporary(f"the IMAP server refused to search the mailbox: {self._said(data)}")
        found = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return sorted(int(u) for u in found if u.isdigit())[:MAX_PER_POLL]

    def replies(self) -> Iterator[Reply]:
        """Each unseen message as a Reply, oldest first; none is marked seen."""
        for uid in self.unseen():
            raw = self.fetch(uid)
            if raw is not None:  # gone meanwhile (another client moved it)
                yield parse_reply(uid, raw, self.reader.exclude)

    def fetch(self, uid: int) -> bytes | None:
        """The whole message ``uid`` (without setting ``\\Seen``); None if it is gone."""
        typ, data = self.imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if typ != "OK":
            raise Temporary(f"the IMAP server refused to fetch message {uid}: {self._said(data)}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    def processed(self, uid: int) -> None:
        """Mark message ``uid`` handled: ``\\Seen``, then moved to ``processed`` if set."""
        typ, data = self.imap.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")
        if typ != "OK":
            raise Temporary(f"the IMAP server refused to mark message {uid}: {self._said(data)}")
        folder = self.reader.settings.processed
        if folder:
            self._move(uid, folder)

    def _move(self, uid: int, folder: str) -> None:
        """MOVE (RFC 6851) when offered, else COPY and ``\\Deleted`` (then UID EXPUNGE when
        UIDPLUS is offered); the folder made once if the server says it is missing."""
        caps = self.imap.capabilities
        command = "MOVE" if "MOVE" in caps else "COPY"
        typ, data = self.imap.uid(command, str(uid), quote(folder))
        if typ != "OK" and "TRYCREATE" in self._said(data).upper():
            self.imap.create(quote(folder))
            typ, data = self.imap.uid(command, str(uid), quote(folder))
        if typ != "OK":
            raise Permanent(
                f"the IMAP server would not put message {uid} in {folder!r} "
                f"({self._said(data)}): check [imap] processed"
            )
        if command == "COPY":
            self.imap.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
            if "UIDPLUS" in caps:
                self.imap.uid("EXPUNGE", str(uid))

    def _said(self, said: object) -> str:
        return self.reader._said(said)


def quote(name: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- parsing -------------------------------------------------------------------------------------

_ID = re.compile(r"<[^<>\s]+>")
_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"»”’)]>*_"
# A line where the quoted original starts, in the clients desks use (English and Vietnamese):
# Gmail's attribution, Outlook's separator and header block, Thunderbird's.
_QUOTE_START = re.compile(
    r"^\s*(?:"
    r"-{2,}\s*(?:original message|forwarded message|thư gốc|tin nhắn gốc|thư chuyển tiếp)"
    r"\s*-{2,}"
    r"|_{5,}"
    r"|on\b.{0,200}\bwrote:"
    r"|vào\b.{0,200}\bđã viết:"
    r"|(?:from|từ|người gửi):\s.*@.*"
    r")\s*$",
    re.IGNORECASE,
)


def parse_reply(uid: int, raw: bytes, exclude: Sequence[str] = ()) -> Reply:
    """A message's ``Reply``: its headers decoded, its own text (text/plain, else the HTML
    made text) without the quoted original, and the http(s) URLs in it."""
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    plain, html = _part(msg, "plain"), _part(msg, "html")
    if plain is not None:
        text = own_text(_decoded(plain))
        urls = find_urls(text)
    elif html is not None:
        text, urls = html_text(_decoded(html))
    else:
        text, urls = "", []
    kept = tuple(u for u in dict.fromkeys(urls) if not any(u.startswith(p) for p in exclude))
    return Reply(
        uid=uid,
        message_id=_first_id(_header(msg, "Message-ID")),
        in_reply_to=_first_id(_header(msg, "In-Reply-To")),
        references=tuple(_ID.findall(_header(msg, "References"))),
        sender=email.utils.parseaddr(_header(msg, "From"))[1],
        subject=_header(msg, "Subject"),
        urls=kept,
        text=text[:TEXT_LIMIT],
        date=_date(_header(msg, "Date")),
    )


def own_text(text: str) -> str:
    """A plain-text reply without what it quotes: lines starting with ``>`` left out, and
    everything from the line where a quoted original starts."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_START.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def find_urls(text: str) -> list[str]:
    """The http(s) URLs in ``text``, in order, without the punctuation that ends a sentence
    (a closing parenthesis is kept when the URL opened one)."""
    found = []
    for match in _URL.finditer(text):
        url = match.group(0)
        while url and url[-1] in _TRAILING:
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        if "://" in url and url.split("://", 1)[1]:
            found.append(url)
    return found


class _HtmlText(HTMLParser):
    """An HTML reply's own text and links, in document order: ``blockquote`` and the quote
    containers of Gmail, Outlook and Thunderbird skipped, ``script``/``style`` ignored."""

    _QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted")
    _QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")
    _VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.urls: list[str] = []
        self.skip: list[str] = []  # open elements whose content is skipped
        self.stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        a = {k: (v or "") for k, v in attrs}
        if self.skip:
            if tag not in self._VOID:
                self.skip.append(tag)
            return
        classes = a.get("class", "").lower().split()
        if a.get("id", "").lower() in self._QUOTE_IDS:
            self.stopped = True  # Outlook: the rest of the message is the original
            return
        if tag in ("blockquote", "script", "style") or any(
            c in classes for c in self._QUOTE_CLASSES
        ):
            self.skip.append(tag)
            return
        if tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3", "hr"):
            self.parts.append("\n")
        href = a.get("href", "")
        if tag == "a" and href.lower().startswith(("http://", "https://")):
            self.urls.extend(find_urls(href) or [href])

    def handle_endtag(self, tag: str) -> None:
        if self.skip and not self.stopped:
            self.skip.pop()

    def handle_data(self, data: str) -> None:
        if not self.stopped and not self.skip:
            self.parts.append(data)
            self.urls.extend(find_urls(data))


def html_text(html: str) -> tuple[str, list[str]]:
    """An HTML reply's own text and its URLs (links, then addresses written in the text, in
    document order), the quoted original left out."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    own = own_text("\n".join(line for line in lines if line))
    if own != "\n".join(line for line in lines if line):  # a plain-text quote start inside
        return own, find_urls(own)
    return own, parser.urls


def _part(msg: EmailMessage, subtype: str) -> Message | None:
    try:
        return msg.get_body(preferencelist=(subtype,))
    except (KeyError, ValueError):
        return None


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, TypeError, IndexError):
        raw = msg.get_all(name, failobj=[])
        value = str(raw[0]) if raw else None
    return "" if value is None else " ".join(str(value).split())


def _first_id(value: str) -> str:
    found = _ID.search(value)
    return found.group(0) if found else value.strip()


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None  # "-0000": no zone known
    return parsed.astimezone(UTC)
