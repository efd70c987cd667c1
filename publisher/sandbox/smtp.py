"""The sandbox's SMTP server (aiosmtpd) on 127.0.0.1: where every mail goes in a rehearsal.

Plain SMTP on loopback (no TLS: nothing leaves the machine), AUTH PLAIN or LOGIN with the
sandbox's credentials (``credentials.MAIL_USER`` / ``MAIL_PASSWORD``; a wrong password is 535),
required before MAIL (530). It delivers nothing anywhere: each message it accepts is recorded like
the other platforms' items (``platform: "mail"``, see ``mailbox``), a second one with a
Message-ID already seen as ``kind: "duplicate"``.

Faults (``mail:…``, drawn once per message at MAIL FROM, and at AUTH for ``token-expiry``):
``throttle`` 451 4.7.1 to MAIL FROM; ``error-before`` 451 4.3.0 to the message, not kept;
``policy-block`` 554 5.7.1 to the message, not kept; ``create-then-fail`` the message kept and
recorded, then the connection dropped before the reply; ``slow`` the reply ``arg`` seconds late;
``token-expiry`` the right password refused (535) for the whole connection, as after a
password change.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from publisher.sandbox import credentials
from publisher.sandbox.faults import Fired
from publisher.sandbox.mailbox import Mail, read_mail
from publisher.sandbox.routing import Context

HOSTNAME = "localhost"  # the greeting's name; never looked up (socket.getfqdn may hang on DNS)


class _Deprecation(logging.Filter):
    """Drops aiosmtpd 1.4's warning, logged at every successful login, about an attribute it
    sets itself (``Session.login_data``): nothing the sandbox or its user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_AIOSMTPD_LOG = logging.getLogger("mail.log")  # aiosmtpd's logger
if not any(isinstance(f, _Deprecation) for f in _AIOSMTPD_LOG.filters):
    _AIOSMTPD_LOG.addFilter(_Deprecation())


class MailServer:
    """Start with ``start()``; ``address`` is then its (host, port). Records through ``ctx``,
    holding ``lock`` (the sandbox's) while it does."""

    def __init__(
        self,
        ctx: Context,
        lock: AbstractContextManager[Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        self._lock = lock
        self._bind = (host, port)
        self._sleep = sleep
        self._controller: _Controller | None = None
        self._ids = itertools.count(1)
        self._refused: weakref.WeakKeyDictionary[Session, bool] = weakref.WeakKeyDictionary()
        self.seen: set[str] = set()  # the Message-IDs accepted since start (or the last reset)
        # called with each message accepted (not a duplicate), after its record: the desk
        self.on_mail: Callable[[Mail], object] | None = None

    def start(self) -> MailServer:
        if self._controller is None:
            sock = _listening(self._bind)
            controller = _Controller(
                _Hooks(self),
                sock,
                authenticator=self._authenticate,
                auth_require_tls=False,  # loopback only: nothing crosses a network
                server_hostname=HOSTNAME,
                ident="publisher sandbox",
                ready_timeout=10.0,
            )
            try:
                controller.start()
            except BaseException:
                sock.close()
                raise
            self._controller = controller
        return self

    @property
    def address(self) -> tuple[str, int]:
        if self._controller is None:
            raise RuntimeError("the sandbox's SMTP server is not started")
        return self._controller.hostname, self._controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reset(self) -> None:
        """Forget the Message-IDs seen (``Sandbox.reset``)."""
        with self._lock:
            self.seen.clear()

    def accept(self, envelope: Envelope) -> Mail:
        """Record the message of ``envelope`` (fsynced before the reply, as every record)."""
        content = envelope.original_content or b""
        fallback = f"<sandbox-{next(self._ids)}-{time.time_ns()}@{HOSTNAME}>"
        mail = read_mail(envelope.mail_from or "", list(envelope.rcpt_tos), content, fallback)
        with self._lock:
            kind = "duplicate" if mail.message_id in self.seen else "mail"
            self.seen.add(mail.message_id)
            where = ("mail", mail.channel, mail.message_id)
            self.ctx.record(where, mail.subject, mail.text, fields=mail.fields, kind=kind)
        if kind == "mail" and self.on_mail is not None:
            self.on_mail(mail)
        return mail

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == credentials.MAIL_USER.encode()
            and data.password == credentials.MAIL_PASSWORD.encode()
        )
        if ok and session not in self._refused:  # drawn once a connection (smtplib tries
            fired = self.ctx.faults.draw("mail", "login")  # PLAIN, then LOGIN)
            self._refused[session] = "token-expiry" in fired
        if ok and self._refused.get(session):
            ok = False  # as if the password had been changed on the server
        return AuthResult(success=ok, handled=False)


class _Hooks:
    """aiosmtpd's handler: the login before MAIL, the faults, the record."""

    def __init__(self, box: MailServer) -> None:
        self.box = box
        self._fired: weakref.WeakKeyDictionary[Session, Fired] = weakref.WeakKeyDictionary()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        fired = self.box.ctx.faults.draw("mail", "create")
        if "throttle" in fired:
            return "451 4.7.1 Too many messages: try again later (sandbox fault)"
        self._fired[session] = fired
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fired = self._fired.pop(session, Fired())
        if "error-before" in fired:
            return "451 4.3.0 The message was not accepted: try again later (sandbox fault)"
        if "policy-block" in fired:
            return "554 5.7.1 The message was refused by policy (sandbox fault)"
        mail = await asyncio.to_thread(self.box.accept, envelope)
        if "slow" in fired:
            await asyncio.to_thread(self.box._sleep, fired.seconds("slow", 1.0))
        if "create-then-fail" in fired and isinstance(server.transport, asyncio.WriteTransport):
            server.transport.abort()  # kept and recorded, but the client hears no reply
        return f"250 2.0.0 Accepted {mail.message_id}"


def _listening(address: tuple[str, int]) -> socket.socket:
    """A listening TCP socket on ``address``, made with protocol ``IPPROTO_TCP`` rather than
    ``socket.create_server``'s 0: asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on
    connections whose socket says TCP, and with it on, EHLO's answer of several lines, written
    line by line, waited for the client's delayed ACK: 40 ms every mail."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket bound beforehand (so port 0 works, and the
    address is known before the first connection)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)
