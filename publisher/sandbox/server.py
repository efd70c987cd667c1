"""The local sandbox server: one HTTP server on 127.0.0.1 imitating all four platforms at once,
an SMTP server beside it (``smtp``) standing in for the mail server, an IMAP server (``imap``)
holding the replies of the portal's editorial desk (``desk``), which publishes the articles
mailed to it.

Owns the sockets, the lock around all state, the control endpoints (``/_sandbox/…``) and the
page. It never calls out to the network and never logs a token.

It answers only requests whose ``Host`` is a loopback name (a web page elsewhere cannot reach it
through DNS rebinding), refuses control POSTs from a web page of another origin (CSRF), and
refuses bodies over ``MAX_BODY`` without reading them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import is_loopback
from publisher.errors import InputError
from publisher.sandbox import control, credentials
from publisher.sandbox.client import Held
from publisher.sandbox.desk import DESK_DELAY, Desk
from publisher.sandbox.facebook import Facebook
from publisher.sandbox.faults import FaultPlan
from publisher.sandbox.imap import ImapServer, Mailbox
from publisher.sandbox.record import Recorder
from publisher.sandbox.restore import births, freeze, restore
from publisher.sandbox.routing import Context, Request, Response, Router
from publisher.sandbox.smtp import MailServer
from publisher.sandbox.webhook import Webhook
from publisher.sandbox.wordpress import WordPress
from publisher.sandbox.zalo import Zalo
from publisher.sandbox.zalo_oauth import ZaloOAuth, ZaloTokens

logger = logging.getLogger(__name__)

# bytes: a webhook post carries its pictures in base64 (each ≤ 5 MB, so ≤ 6.7 MB encoded): four of
# them fit; an upload to WordPress, Facebook or Zalo is far smaller.
MAX_BODY = 32 * 1024 * 1024
_DRAIN = 1024 * 1024  # what a refusal reads of an unwanted body at most, so the answer arrives


class Sandbox:
    """Start with ``start()`` (or ``with Sandbox() as sb:``); ``url`` is then its base URL, and
    ``smtp_address`` its SMTP server's (host, port) — on ``smtp_port`` (0: any free one; None:
    no SMTP server) — and ``imap_address`` its IMAP server's, on ``imap_port`` likewise. The
    desk publishes an article mailed to the SMTP server ``desk_delay`` (campaign time) after it
    arrived and puts its reply in the IMAP mailbox."""

    def __init__(
        self,
        *,
        record_path: Path | None = None,
        seed: int = 0,
        faults: FaultPlan | None = None,
        access_token_ttl: float = 90000.0,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] = time.sleep,
        host: str = "127.0.0.1",
        port: int = 0,
        smtp_port: int | None = 0,
        imap_port: int | None = 0,
        desk_delay: timedelta = DESK_DELAY,
        wordpress_upload_limit: int | None = None,
    ) -> None:
        self.seed = seed
        self.wordpress_upload_limit = wordpress_upload_limit  # bytes: a multisite's fileupload_maxk
        self.access_token_ttl = access_token_ttl
        self._clock = clock
        self._sleep = sleep
        self._offset = timedelta(0)  # moved by POST /_sandbox/clock
        self._address = (host, port)
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.recorder = Recorder(record_path)
        self.ctx = Context(
            now=self.now,
            base_url=lambda: self.url,
            recorder=self.recorder,
            faults=faults or FaultPlan(seed=seed),
            seed=seed,
        )
        self.mail = (
            None
            if smtp_port is None
            else MailServer(self.ctx, self._lock, host=host, port=smtp_port, sleep=sleep)
        )
        self.mailbox = Mailbox(self._lock)
        self.imap = (
            None if imap_port is None else ImapServer(self.mailbox, host=host, port=imap_port)
        )
        self.desk = Desk(self.ctx, self._lock, self.mailbox, delay=desk_delay)
        if self.mail is not None:
            self.mail.on_mail = self.desk.receive
        self._build()

    def _build(self) -> None:
        self.ctx.media.clear()
        self.facebook = Facebook(self.ctx)
        self.tokens = ZaloTokens(self.ctx, self.access_token_ttl)
        self.zalo = Zalo(self.ctx, self.tokens)
        self.wordpress = WordPress(self.ctx, self.wordpress_upload_limit)
        self.webhook = Webhook(self.ctx)
        self.router = Router()
        self.router.add("GET", r"/(?:sandbox/?)?", lambda req, m: control.page(self))
        self.router.add(
            "*",
            r"/_sandbox/(?P<what>records|faults|reset|clock|media|smtp|imap|desk|stats|births|restore)",
            partial(control.control, self),
        )
        for method in ("GET", "HEAD"):
            self.router.add(method, control.PICTURE, partial(control.picture, self))
        for platform in (self.facebook, ZaloOAuth(self.ctx, self.tokens), self.zalo):
            platform.register(self.router)
        self.wordpress.register(self.router)
        self.webhook.register(self.router)
        self.desk.register(self.router)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Sandbox:
        try:
            if self.mail is not None:
                self.mail.start()
            if self.imap is not None:
                self.imap.start()
            if self._server is None:
                self._server = _Server(self._address, _Handler)
        except BaseException:
            self._stop_mail()
            raise
        if self._thread is None:
            assert self._server is not None  # noqa: S101 - made just above
            self._server.sandbox = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits at most this long
                name="publisher-sandbox",
                daemon=True,
            )
            self._thread.start()
            logger.info(
                "sandbox listening on %s (SMTP %s, IMAP %s)",
                self.url,
                self.smtp_address,
                self.imap_address,
            )
        return self

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def smtp_address(self) -> tuple[str, int] | None:
        """The SMTP server's (host, port) once started; None if this sandbox has none."""
        return None if self.mail is None else self.mail.address

    @property
    def imap_address(self) -> tuple[str, int] | None:
        """The IMAP server's (host, port) once started; None if this sandbox has none."""
        return None if self.imap is None else self.imap.address

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server, self._thread = None, None
        self._stop_mail()

    def _stop_mail(self) -> None:
        self.desk.reset()  # no article published after the stop
        if self.mail is not None:
            self.mail.stop()
        if self.imap is not None:
            self.imap.stop()

    def serve_forever(self) -> None:
        """Serve until Ctrl-C, then stop."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state -------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._clock.now() + self._offset

    def advance(self, seconds: float) -> None:
        """Move this sandbox's clock (``POST /_sandbox/clock``); the injected clock is untouched."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def follow(self, virtual_now: datetime, speed: float = 1.0) -> None:
        """Let the figures follow a rehearsal's clock: this instant is ``virtual_now``, and
        virtual time runs ``speed`` times faster (``POST /_sandbox/clock`` with ``virtual``).
        The items held keep the virtual births they had."""
        with self._lock:
            freeze(self)
            self.ctx.virtual.set(self.now(), virtual_now, speed)

    def restore(self, items: list[Held]) -> int:
        """Hold ``items``, published on an earlier sandbox, as the platforms would still hold
        them: their figures grown from their ``born`` (virtual time: call ``follow`` first, so
        their creation times read right), new items never taking their ids. Items already held
        are left alone; how many were put."""
        with self._lock:
            return restore(self, items)

    def births(self) -> dict[str, str]:
        """Each item's virtual birth as its figures count it (``GET /_sandbox/births``)."""
        with self._lock:
            return births(self)

    def records(self) -> list[dict[str, Any]]:
        """Every item accepted since start (or the last reset), oldest first."""
        return self.recorder.records()

    def set_faults(self, faults: FaultPlan | str | None, seed: int | None = None) -> FaultPlan:
        """Replace the fault plan (a spec string is parsed with ``seed``, default the sandbox's)."""
        if not isinstance(faults, FaultPlan):
            faults = FaultPlan.parse(faults, self.seed if seed is None else seed)
        with self._lock:
            self.ctx.faults = faults
        return faults

    def reset(self) -> None:
        """Forget every platform's items, spent tokens and the in-memory records (tests only)."""
        with self._lock:
            self.recorder.clear()
            self._build()
            if self.mail is not None:
                self.mail.reset()
            self.desk.reset()
            self.mailbox.clear()

    def handle(self, request: Request) -> Response:
        try:
            with self._lock:
                answer = self.router.dispatch(request) or Response.json(
                    {"error": "no_route", "message": f"nothing at {request.path}"}, 404
                )
        except Exception:
            logger.exception("sandbox: %s %s failed", request.method, request.path)
            answer = Response.json({"error": "sandbox_bug", "message": "see the log"}, 500)
        if answer.delay > 0:
            self._sleep(answer.delay)
        if answer.after is not None:
            with self._lock:
                answer.after()
        return answer


class _TooLarge(Exception):
    """A chunked body went past MAX_BODY."""


def _loopback_host(value: str | None) -> bool:
    """Whether a ``Host`` header names a loopback host (any port): ``127.0.0.1:8765``,
    ``localhost``, ``[::1]:80``. A missing or malformed one does not."""
    if not value:
        return False
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
    else:
        host, _, port = value.partition(":")
        rest = f":{port}" if port else ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return False
    return is_loopback(host)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a kept-alive connection must not hold stop() up
    # connections waiting to be accepted: socketserver's default of 5 refused some of a burst's
    # (4 channels × 32 calls at once) while the accepting thread was busy
    request_queue_size = 128
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    protocol_version = "HTTP/1.1"
    server_version = "publisher-sandbox"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path) or "/"
        refused = self._refusal(path)
        if refused is not None:
            self._refuse(*refused)
            return
        try:
            body = self._read_body()
        except _TooLarge:
            self._refuse(413, "too_large", f"request bodies over {MAX_BODY} bytes are refused")
            return
        request = Request(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        answer = self.server.sandbox.handle(request)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _refusal(self, path: str) -> tuple[int, str, str] | None:
        """Why this request is refused before its body is read (status, code, message), if so."""
        if not _loopback_host(self.headers.get("Host")):
            return (
                403,
                "forbidden_host",
                "the sandbox answers a loopback Host only (127.0.0.1, localhost, [::1])",
            )
        origin = self.headers.get("Origin")
        writes = self.command not in ("GET", "HEAD", "OPTIONS")
        if path.startswith("/_sandbox/") and writes and origin is not None:
            host = urlsplit(origin.strip()).hostname
            if not host or not is_loopback(host):
                return (
                    403,
                    "forbidden_origin",
                    "control requests from a web page of another origin are refused",
                )
        length = self.headers.get("Content-Length")
        if length is not None:
            if not length.strip().isdigit():
                return 400, "bad_length", "Content-Length is not a number of bytes"
            if int(length) > MAX_BODY:
                return 413, "too_large", f"request bodies over {MAX_BODY} bytes are refused"
        return None

    def handle_expect_100(self) -> bool:
        """Refuse before "100 Continue", so the client never sends a body that would be refused."""
        refused = self._refusal(unquote(urlsplit(self.path).path) or "/")
        if refused is not None:
            self._refuse(*refused)
            return False
        return super().handle_expect_100()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` and close the connection, leaving the rest of the body unread."""
        body = json.dumps({"error": code, "message": message}).encode()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            # End our side, then read a little of what is in flight, so closing does not reset
            # the connection before the client has read the answer.
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            drained = 0
            while drained < _DRAIN and (chunk := self.connection.recv(65536)):
                drained += len(chunk)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _TooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # the request line may carry an access_token in its query: log the path only
        logger.debug("sandbox %s %s", self.command, urlsplit(self.path).path)


def main_serve(
    port: int,
    record: Path | None,
    faults_spec: str | None,
    seed: int,
    smtp_port: int = 0,
    imap_port: int = 0,
    desk_delay: timedelta = DESK_DELAY,
) -> None:
    """Start the sandbox on ``port``, its SMTP server on ``smtp_port`` and its IMAP server on
    ``imap_port`` (0 = any free one), print where and how to use them, block."""
    faults = FaultPlan.parse(faults_spec, seed) if faults_spec else None
    sandbox = Sandbox(
        record_path=record,
        seed=seed,
        faults=faults,
        port=port,
        smtp_port=smtp_port,
        imap_port=imap_port,
        desk_delay=desk_delay,
    )
    try:
        sandbox.start()
    except OSError as exc:  # a port in use, most likely
        raise InputError(
            "--port, --smtp-port, --imap-port",
            f"cannot listen on 127.0.0.1 port {port} (HTTP), {smtp_port} (SMTP) and {imap_port} "
            f"(IMAP): {os.strerror(exc.errno) if exc.errno else exc}",
            "stop what uses the port, or give another one (0: any free one)",
        ) from None
    print("\n".join(_usage(sandbox, record, seed)), flush=True)
    _stop_on_signals()
    sandbox.serve_forever()


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM both stop the sandbox cleanly, whatever the process was
    started with: a shell script's background job inherits SIGINT ignored, and Python then
    leaves it ignored, so ``kill -INT`` did nothing and a benchmark waited 10 s before killing
    each sandbox (as uvicorn and others do, the server sets its own handlers)."""
    import signal

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def _usage(sandbox: Sandbox, record: Path | None, seed: int) -> list[str]:
    """What ``publisher sandbox`` prints: where each imitation listens and its credentials."""
    url = sandbox.url
    smtp_host, smtp_port = sandbox.smtp_address or ("", 0)
    imap_host, imap_port = sandbox.imap_address or ("", 0)
    delay = sandbox.desk.delay
    lines = [
        f"publisher sandbox at {url}   (Ctrl-C to stop)",
        f"  page:      {url}/sandbox",
        f"  wordpress: base_url={url}/wordpress  username={credentials.WORDPRESS_USER}"
        f"  password={credentials.WORDPRESS_PASSWORD!r}"
        f"  (user {credentials.WORDPRESS_CONTRIBUTOR!r}, same password, cannot publish)",
        f"  webhook:   url={url}/webhook/<channel>"
        f"  signing_secret={credentials.WEBHOOK_SIGNING_SECRET}",
        f"  facebook:  base_url={url}/facebook  page_id=<any number>"
        f"  page_token={credentials.FACEBOOK_PAGE_TOKEN}",
        f"  zalo:      api_base_url={url}/zalo/openapi  oauth_base_url={url}/zalo/oauth"
        f"  app_id=<any number>  app_secret={credentials.ZALO_APP_SECRET}"
        f"  refresh_token={credentials.ZALO_FIRST_REFRESH_TOKEN} (once per run)",
        f"  mail:      smtp://{smtp_host}:{smtp_port} (no TLS; AUTH PLAIN or LOGIN)"
        f"  username={credentials.MAIL_USER}  password={credentials.MAIL_PASSWORD}",
        f"  imap:      imap://{imap_host}:{imap_port}/INBOX (no TLS; LOGIN) the same user and"
        " password: the desk's replies",
        "  desk:      an article mailed with X-Publisher-Post is published at"
        f" {url}/desk/<channel>/<n> and answered {delay} (campaign time) later;"
        f" POST {url}/_sandbox/desk"
        ' {"speed": N} plays it N times faster',
        f"  pictures:  {url}/media/<sha256>.<jpg|png> (every picture accepted; GET or HEAD)",
        f"  faults:    {sandbox.ctx.faults.spec() or 'none'}   (seed {seed})",
        f"  record:    {record or 'not written (no --record)'}",
        f"  control:   GET {url}/_sandbox/records · POST {url}/_sandbox/faults · "
        f"POST {url}/_sandbox/clock · GET {url}/_sandbox/smtp · GET {url}/_sandbox/imap",
    ]
    return lines
