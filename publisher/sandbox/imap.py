"""The sandbox's IMAP server (asyncio, IMAP4rev1 as RFC 3501 says, the part a reader needs) on
127.0.0.1: the mailbox the desk's replies land in (``desk``), read by publisher's IMAP reader.

Plain IMAP on loopback (no TLS: nothing leaves the machine). One mailbox, ``INBOX``, for the
sandbox's mail login (``credentials.MAIL_USER`` / ``MAIL_PASSWORD``, the SMTP server's).
Commands: CAPABILITY, NOOP, LOGOUT, LOGIN, SELECT, EXAMINE, CLOSE, CHECK, SEARCH and UID SEARCH
(ALL, SEEN, UNSEEN, DELETED, UNDELETED), FETCH and UID FETCH (UID, FLAGS, RFC822, RFC822.SIZE,
RFC822.HEADER, BODY[], BODY.PEEK[], INTERNALDATE; BODY[] and RFC822 set ``\\Seen`` in a mailbox
opened with SELECT), STORE and UID STORE (FLAGS, +FLAGS, -FLAGS, each .SILENT), EXPUNGE. Client
literals (``{n}``) are read after a ``+`` continuation; message bodies go out as literals.
Anything else is answered ``BAD``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from publisher.sandbox import credentials

FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
MAX_LINE = 64 * 1024
MAX_LITERAL = 1024 * 1024


@dataclass
class Stored:
    uid: int
    data: bytes
    received: datetime
    flags: set[str] = field(default_factory=set)


class Mailbox:
    """INBOX: the messages in order of arrival, each with its UID and flags."""

    def __init__(self, lock: AbstractContextManager[Any]) -> None:
        self.lock = lock
        self.validity = 1
        self.messages: list[Stored] = []
        self._uids = itertools.count(1)

    def append(self, data: bytes, received: datetime) -> Stored:
        with self.lock:
            stored = Stored(
                next(self._uids), data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), received
            )
            self.messages.append(stored)
            return stored

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.validity += 1


class ImapServer:
    """Start with ``start()``; ``address`` is then its (host, port)."""

    def __init__(self, box: Mailbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.box = box
        self._bind = (host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    def start(self) -> ImapServer:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failed: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._connection, *self._bind, limit=MAX_LINE)
                )
                sock = self._server.sockets[0].getsockname()
                self._address = (str(sock[0]), int(sock[1]))
            except BaseException as exc:  # a port in use: start() raises it
                failed.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="publisher-sandbox-imap", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failed:
            self._thread = None
            raise failed[0]
        return self

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the sandbox's IMAP server is not started")
        return self._address

    def stop(self) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if server is not None:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        thread.join(5)
        self._loop = self._server = self._thread = None
        self._address = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self.box, reader, writer)
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


class _Bad(Exception):
    """A command the server cannot parse or does not know: ``BAD``."""


class _Literal(bytes):
    """A literal's bytes (the tokenizer's mark that it came as ``{n}``)."""


_ATOM = re.compile(rb"[^\s()\"{}\[\]]+(?:\[[^\]]*\](?:<[\d.]+>)?)?")


class _Session:
    """One client's connection: the state (not authenticated, authenticated, selected)."""

    def __init__(
        self, box: Mailbox, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.box = box
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.selected = False
        self.readonly = False

    async def run(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1] publisher sandbox IMAP ready")
        await self.writer.drain()
        while True:
            line = await self.read_command()
            if line is None:
                return
            tag, _, rest = line.partition(b" ")
            if not tag or not rest:
                self.send(b"* BAD no command")
                continue
            try:
                done = self.dispatch(tag, rest)
            except _Bad as exc:
                self.send(tag + b" BAD " + str(exc).encode())
                done = False
            await self.writer.drain()
            if done:
                return

    async def read_command(self) -> bytes | None:
        """A command line with its literals inlined (each kept as ``{n}\\r\\n<bytes>``)."""
        parts: list[bytes] = []
        while True:
            line = await self.reader.readline()
            if not line:
                return None
            m = re.search(rb"\{(\d+)\}\r?\n$", line)
            if not m:
                parts.append(line.rstrip(b"\r\n"))
                return b"".join(parts)
            size = int(m.group(1))
            if size > MAX_LITERAL:
                self.send(b"* BAD literal too large")
                return None
            self.send(b"+ Ready for literal data")
            await self.writer.drain()
            data = await self.reader.readexactly(size)
            parts.append(line[: m.start()] + b"{" + m.group(1) + b"}\r\n" + data)

    def send(self, line: bytes) -> None:
        self.writer.write(line + b"\r\n")

    # -- commands ------------------------------------------------------------------------------

    def dispatch(self, tag: bytes, rest: bytes) -> bool:
        """Answer one command; True when the connection ends (LOGOUT)."""
        args = _tokens(rest)
        if not args or not isinstance(args[0], bytes):
            raise _Bad("no command")
        name = args[0].upper().decode("ascii", "replace")
        params = args[1:]
        uid = False
        if name == "UID":
            if not params or not isinstance(params[0], bytes):
                raise _Bad("UID what?")
            uid, name, params = True, params[0].upper().decode("ascii", "replace"), params[1:]
            if name not in ("FETCH", "SEARCH", "STORE"):
                raise _Bad(f"UID {name} is not supported here")
        if name == "LOGOUT":
            self.send(b"* BYE publisher sandbox IMAP closing")
            self.send(tag + b" OK LOGOUT completed")
            return True
        handler = getattr(self, f"_{name.lower()}", None)
        if handler is None or name not in _COMMANDS:
            raise _Bad(f"unknown command {name}")
        needs = _COMMANDS[name]
        if (needs == "auth" and self.user is None) or (needs == "selected" and not self.selected):
            self.send(
                tag
                + b" NO "
                + ("log in first" if self.user is None else "select a mailbox first").encode()
            )
            return False
        answer: bytes = handler(params, uid) if needs == "selected" else handler(params)
        self.send(tag + b" " + answer)
        return False

    def _capability(self, params: list[Any]) -> bytes:
        self.send(b"* CAPABILITY IMAP4rev1")
        return b"OK CAPABILITY completed"

    def _noop(self, params: list[Any]) -> bytes:
        if self.selected:
            self._exists()
        return b"OK NOOP completed"

    def _login(self, params: list[Any]) -> bytes:
        if len(params) != 2 or not all(isinstance(p, bytes) for p in params):
            raise _Bad("LOGIN user password")
        user, password = (bytes(p) for p in params)
        ok = user == credentials.MAIL_USER.encode() and password == (
            credentials.MAIL_PASSWORD.encode()
        )
        if not ok:
            return b"NO [AUTHENTICATIONFAILED] Authentication failed (sandbox)"
        self.user = user.decode()
        return b"OK [CAPABILITY IMAP4rev1] LOGIN completed"

    def _select(self, params: list[Any], readonly: bool = False) -> bytes:
        if len(params) != 1 or not isinstance(params[0], bytes):
            raise _Bad("SELECT mailbox")
        self.selected = False
        if bytes(params[0]).upper() != b"INBOX":
            return b"NO [NONEXISTENT] no such mailbox (the sandbox has INBOX only)"
        self.selected, self.readonly = True, readonly
        with self.box.lock:
            self.send(b"* FLAGS (" + " ".join(FLAGS).encode() + b")")
            self.send(b"* OK [PERMANENTFLAGS (" + " ".join(FLAGS).encode() + b")] flags")
            self._exists()
            self.send(b"* 0 RECENT")
            self.send(f"* OK [UIDVALIDITY {self.box.validity}] UIDs valid".encode())
            uidnext = (self.box.messages[-1].uid + 1) if self.box.messages else 1
            self.send(f"* OK [UIDNEXT {uidnext}] predicted next UID".encode())
        mode = b"READ-ONLY" if readonly else b"READ-WRITE"
        return b"OK [" + mode + b"] " + (b"EXAMINE" if readonly else b"SELECT") + b" completed"

    def _examine(self, params: list[Any]) -> bytes:
        return self._select(params, readonly=True)

    def _close(self, params: list[Any], uid: bool) -> bytes:
        if not self.readonly:
            self._expunge_deleted(announce=False)
        self.selected = False
        return b"OK CLOSE completed"

    def _check(self, params: list[Any], uid: bool) -> bytes:
        return b"OK CHECK completed"

    def _expunge(self, params: list[Any], uid: bool) -> bytes:
        if self.readonly:
            return b"NO the mailbox is read-only (EXAMINE)"
        self._expunge_deleted(announce=True)
        return b"OK EXPUNGE completed"

    def _search(self, params: list[Any], uid: bool) -> bytes:
        keys = [bytes(p).upper() for p in params if isinstance(p, bytes)]
        if keys[:2] == [b"CHARSET", b"UTF-8"] or keys[:2] == [b"CHARSET", b"US-ASCII"]:
            keys = keys[2:]
        tests: dict[bytes, Callable[[Stored], bool]] = {
            b"ALL": lambda m: True,
            b"SEEN": lambda m: "\\Seen" in m.flags,
            b"UNSEEN": lambda m: "\\Seen" not in m.flags,
            b"DELETED": lambda m: "\\Deleted" in m.flags,
            b"UNDELETED": lambda m: "\\Deleted" not in m.flags,
        }
        if not keys or any(k not in tests for k in keys):
            raise _Bad("SEARCH takes ALL, SEEN, UNSEEN, DELETED or UNDELETED here")
        with self.box.lock:
            found = [
                (m.uid if uid else n)
                for n, m in enumerate(self.box.messages, 1)
                if all(tests[k](m) for k in keys)
            ]
        self.send(b"* SEARCH" + b"".join(b" %d" % x for x in found))
        return b"OK SEARCH completed"

    def _fetch(self, params: list[Any], uid: bool) -> bytes:
        if len(params) != 2 or not isinstance(params[0], bytes):
            raise _Bad("FETCH set items")
        items = params[1] if isinstance(params[1], list) else [params[1]]
        names = [bytes(i).upper() for i in items if isinstance(i, bytes)]
        names = _MACROS.get(names[0], names) if len(names) == 1 else names
        if not names or any(n not in _FETCH_ITEMS for n in names):
            raise _Bad(
                "FETCH takes UID, FLAGS, RFC822, RFC822.SIZE, RFC822.HEADER, BODY[], "
                "BODY.PEEK[], INTERNALDATE here"
            )
        with self.box.lock:
            for n, m in self._matching(bytes(params[0]), uid):
                self.send(self._fetched(n, m, names, uid))
        return b"OK FETCH completed"

    def _fetched(self, n: int, m: Stored, names: list[bytes], uid: bool) -> bytes:
        marks = not self.readonly and any(x in (b"RFC822", b"BODY[]") for x in names)
        if marks and "\\Seen" not in m.flags:
            m.flags.add("\\Seen")
            if b"FLAGS" not in names:
                names = [*names, b"FLAGS"]
        if uid and b"UID" not in names:
            names = [b"UID", *names]
        out: list[bytes] = []
        for name in names:
            out.append(_FETCH_ITEMS[name](m))
        return b"* %d FETCH (" % n + b" ".join(out) + b")"

    def _store(self, params: list[Any], uid: bool) -> bytes:
        if self.readonly:
            return b"NO the mailbox is read-only (EXAMINE)"
        if len(params) != 3 or not all(isinstance(p, bytes) for p in params[:2]):
            raise _Bad("STORE set +FLAGS (flags)")
        how = bytes(params[1]).upper()
        silent = how.endswith(b".SILENT")
        how = how.removesuffix(b".SILENT")
        if how not in (b"FLAGS", b"+FLAGS", b"-FLAGS"):
            raise _Bad("STORE takes FLAGS, +FLAGS or -FLAGS")
        given = params[2] if isinstance(params[2], list) else [params[2]]
        flags = {_flag(bytes(f)) for f in given if isinstance(f, bytes)}
        with self.box.lock:
            for n, m in self._matching(bytes(params[0]), uid):
                if how == b"FLAGS":
                    m.flags = set(flags)
                elif how == b"+FLAGS":
                    m.flags |= flags
                else:
                    m.flags -= flags
                if not silent:
                    self.send(self._fetched(n, m, [b"FLAGS"], uid))
        return b"OK STORE completed"

    # -- helpers -------------------------------------------------------------------------------

    def _exists(self) -> None:
        self.send(b"* %d EXISTS" % len(self.box.messages))

    def _matching(self, spec: bytes, uid: bool) -> Iterable[tuple[int, Stored]]:
        """The (sequence number, message) pairs a sequence set names (UIDs with ``uid``)."""
        messages = self.box.messages
        if not messages:
            return []
        top = messages[-1].uid if uid else len(messages)
        wanted = _sequence_set(spec, top)
        return [(n, m) for n, m in enumerate(messages, 1) if (m.uid if uid else n) in wanted]

    def _expunge_deleted(self, *, announce: bool) -> None:
        with self.box.lock:
            for n in range(len(self.box.messages), 0, -1):
                if "\\Deleted" in self.box.messages[n - 1].flags:
                    del self.box.messages[n - 1]
                    if announce:
                        self.send(b"* %d EXPUNGE" % n)


_COMMANDS = {
    "CAPABILITY": "any",
    "NOOP": "any",
    "LOGIN": "any",
    "SELECT": "auth",
    "EXAMINE": "auth",
    "CLOSE": "selected",
    "CHECK": "selected",
    "EXPUNGE": "selected",
    "SEARCH": "selected",
    "FETCH": "selected",
    "STORE": "selected",
}


def _flags(m: Stored) -> bytes:
    return b"FLAGS (" + " ".join(f for f in FLAGS if f in m.flags).encode() + b")"


def _literal(name: bytes, data: bytes) -> bytes:
    return name + b" {%d}\r\n" % len(data) + data


def _header_of(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 4]


def _internaldate(m: Stored) -> bytes:
    return (
        b'INTERNALDATE "'
        + m.received.astimezone(UTC).strftime("%d-%b-%Y %H:%M:%S +0000").encode()
        + b'"'
    )


_FETCH_ITEMS: dict[bytes, Callable[[Stored], bytes]] = {
    b"UID": lambda m: b"UID %d" % m.uid,
    b"FLAGS": _flags,
    b"RFC822": lambda m: _literal(b"RFC822", m.data),
    b"RFC822.SIZE": lambda m: b"RFC822.SIZE %d" % len(m.data),
    b"RFC822.HEADER": lambda m: _literal(b"RFC822.HEADER", _header_of(m.data)),
    b"BODY[]": lambda m: _literal(b"BODY[]", m.data),
    b"BODY.PEEK[]": lambda m: _literal(b"BODY[]", m.data),
    b"INTERNALDATE": _internaldate,
}
_MACROS = {
    b"ALL": [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"],
    b"FAST": [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"],
}


def _flag(raw: bytes) -> str:
    text = raw.decode("ascii", "replace")
    for known in FLAGS:
        if text.lower() == known.lower():
            return known
    return text


def _sequence_set(spec: bytes, top: int) -> set[int]:
    """``1:3,7,9:*`` → the numbers it names, ``*`` being ``top``."""
    out: set[int] = set()
    try:
        for part in spec.split(b","):
            first, _, last = part.partition(b":")
            a = top if first == b"*" else int(first)
            b = a if not last else top if last == b"*" else int(last)
            lo, hi = min(a, b), max(a, b)
            out.update(range(lo, min(hi, top) + 1))
    except ValueError:
        raise _Bad("not a sequence set") from None
    return out


def _tokens(line: bytes) -> list[Any]:
    """A command's arguments: atoms, quoted strings and literals as bytes, parenthesised
    lists as lists."""
    stack: list[list[Any]] = [[]]
    i = 0
    while i < len(line):
        c = line[i : i + 1]
        if c == b" ":
            i += 1
        elif c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            if len(stack) == 1:
                raise _Bad("unbalanced parenthesis")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif c == b'"':
            value, i = _quoted(line, i + 1)
            stack[-1].append(value)
        elif c == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", line[i:])
            if not m:
                raise _Bad("malformed literal")
            start = i + m.end()
            size = int(m.group(1))
            stack[-1].append(_Literal(line[start : start + size]))
            i = start + size
        else:
            m = _ATOM.match(line, i)
            if not m:
                raise _Bad("unexpected character")
            stack[-1].append(m.group(0))
            i = m.end()
    if len(stack) != 1:
        raise _Bad("unbalanced parenthesis")
    return stack[0]


def _quoted(line: bytes, i: int) -> tuple[bytes, int]:
    out = bytearray()
    while i < len(line):
        c = line[i]
        if c == 0x5C and i + 1 < len(line):  # backslash
            out.append(line[i + 1])
            i += 2
        elif c == 0x22:  # closing quote
            return bytes(out), i + 1
        else:
            out.append(c)
            i += 1
    raise _Bad("unterminated quoted string")
