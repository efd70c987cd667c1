"""The imitation's HTTP server: one threaded server on 127.0.0.1 with every platform under one
base URL (the layout of ``publisher.channels.use_sandbox``), the faults applied around each
platform's answer, outages that really stop listening, and a control endpoint.

Control (loopback Host only): ``GET /_imitation/records``, ``GET /_imitation/stats``,
``POST /_imitation/faults`` (body: a fault spec, see ``core.GRAMMAR``; replaces the plan),
``POST /_imitation/outage`` (JSON ``{"seconds": N, "after": M}``), ``POST /_imitation/inject``
(JSON ``{"fault": "throttle"|"token-expiry"|"upload-fail", "platform": "zalo"|"*", "after": M,
"hold": S}``: after M seconds, throttle each platform's next request (for S seconds), kill Zalo's
current access token, or make WordPress store its next picture upload and answer 500),
``GET /_imitation/health``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from tests.imitation.core import (
    Dice,
    FaultError,
    FaultPlan,
    Recorder,
    Request,
    Response,
    Stats,
    json_response,
    text_response,
    utcnow,
)

logger = logging.getLogger("imitation")
# bytes; anything larger is refused with 413 before it is read (a 5 MB webhook picture is
# 6.7 MB in base64)
MAX_BODY = 8 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class Platform(Protocol):
    name: str

    def handle(self, req: Request) -> Response: ...

    def server_error(self, req: Request) -> Response:
        """This platform's answer when it fails before doing anything (a 5xx)."""
        ...

    def throttled(self, req: Request, seconds: float) -> Response:
        """This platform's throttling answer, with its own kind of retry hint."""
        ...

    def throttles(self, req: Request) -> bool:
        """Whether this endpoint can be throttled (OAuth endpoints are not)."""
        ...

    def expire_token(self, req: Request) -> bool:
        """Kill the access token ``req`` carries, if the platform has such tokens."""
        ...

    def expire_all(self) -> int:
        """Kill every live access token that has served a call; how many died."""
        ...


class Imitation:
    """Every platform, its state, the fault plan and the record, served on one port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record: Path | None = None,
        faults: str = "",
        seed: int = 0,
        webhook_scheme: str = "auto",
        webhook_get: str = "path",
        facebook_pages: dict[str, str] | None = None,
        zalo_app_id: str = "1000000000000000000",
        zalo_oa_id: str = "2000000000000000000",
    ) -> None:
        from tests.imitation.facebook import Facebook
        from tests.imitation.webhook import Webhook
        from tests.imitation.wordpress import WordPress
        from tests.imitation.zalo import Zalo

        self.host, self.port = host, port
        self.plan = FaultPlan.parse(faults)
        self.dice = Dice(seed)
        self.seed = seed
        self.recorder = Recorder(record)
        self.stats = Stats()
        self.platforms: dict[str, Platform] = {
            "facebook": Facebook(self, facebook_pages),
            "zalo": Zalo(self, zalo_app_id, zalo_oa_id),
            "wordpress": WordPress(self),
            "webhook": Webhook(self, webhook_scheme, webhook_get),
        }
        self._throttle_until: dict[str, float] = {}  # platform → monotonic end of its throttle
        self._hint_until: dict[str, float] = {}  # platform → when its last hint said to return
        self._pending: dict[str, float] = {}  # platform → hold of an injected throttle to come
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.down = threading.Event()  # set while an outage lasts

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Imitation:
        self._listen()
        for after, seconds in self.plan.outages:
            self.outage(seconds, after=after)
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._close()

    def __enter__(self) -> Imitation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def outage(self, seconds: float, *, after: float = 0.0) -> None:
        """From ``after`` seconds on, refuse every connection for ``seconds``, then listen
        again on the same port with every platform's state as it was."""

        def run() -> None:
            if self._stopped.wait(after):
                return
            began = utcnow()
            self._close()
            self.down.set()
            self._stopped.wait(seconds)
            if not self._stopped.is_set():
                self._listen()
            self.down.clear()
            self.stats.outages.append(
                {"start": began.isoformat(), "end": utcnow().isoformat(), "seconds": str(seconds)}
            )

        threading.Thread(target=run, name="imitation-outage", daemon=True).start()

    def inject(
        self, fault: str, platform: str = "*", *, after: float = 0.0, hold: float = 0.0
    ) -> None:
        """After ``after`` seconds: throttle the next request of ``platform`` (``*``: of each),
        keeping it throttled for ``hold`` seconds; or kill its current access tokens; or
        (``upload-fail``, WordPress) store the next picture upload and answer PHP's 500."""
        if fault not in ("throttle", "token-expiry", "upload-fail"):
            raise FaultError(f"inject {fault!r}: throttle, token-expiry or upload-fail")
        if fault == "upload-fail" and platform != "wordpress":
            raise FaultError("inject upload-fail: a WordPress fault (platform wordpress)")
        names = list(self.platforms) if platform == "*" else [platform]
        if any(n not in self.platforms for n in names):
            raise FaultError(f"inject: unknown platform {platform!r}")

        def run() -> None:
            if self._stopped.wait(after):
                return
            for name in names:
                if fault == "throttle":
                    with self._lock:
                        self._pending[name] = hold
                elif fault == "upload-fail":
                    self.platforms[name].fail_next_uploads += 1  # type: ignore[attr-defined]
                else:
                    killed = self.platforms[name].expire_all()
                    self.stats.add(name, "fault:token-expiry", killed)

        if after <= 0:
            run()  # at once, before this returns
            return
        threading.Thread(target=run, name="imitation-inject", daemon=True).start()

    def set_faults(self, spec: str) -> None:
        self.plan = FaultPlan.parse(spec)
        with self._lock:
            self._throttle_until.clear()
        for after, seconds in self.plan.outages:
            self.outage(seconds, after=after)

    def records(self) -> list[dict[str, Any]]:
        return self.recorder.items()

    def _listen(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpd = _Server((self.host, self.port), _Handler, self)
                break
            except OSError as exc:  # the old socket may linger for a moment
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        with self._lock:
            self._httpd, self._thread = httpd, thread
        thread.start()

    def _close(self) -> None:
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()  # the listening socket is gone: new connections are refused
        httpd.drop_connections()  # and kept-alive ones are cut, as a dead host cuts them

    # -- one request ----------------------------------------------------------------------------

    def serve(self, req: Request) -> Response:
        path = req.path
        if path == "/_imitation" or path.startswith("/_imitation/"):
            return self._control(req)
        for prefix in ("/facebook", "/zalo", "/wordpress", "/webhook"):
            if path == prefix or path.startswith(prefix + "/"):
                req.path = path[len(prefix) :] or "/"
                return self._platform(self.platforms[prefix[1:]], req)
        if path == "/":
            return text_response(200, self._front_page(), "text/plain")
        return json_response(404, {"error": f"no platform at {path}"})

    def _platform(self, platform: Platform, req: Request) -> Response:
        name, plan, stats = platform.name, self.plan, self.stats
        stats.add(name, "requests")
        now = time.monotonic()
        if now < self._hint_until.get(name, 0.0):
            stats.add(name, "requests-before-hint")
        slow = plan.fault(name, "slow")
        if slow and self.dice.roll("slow", name, req) < slow.rate:
            stats.add(name, "fault:slow")
            time.sleep(slow.arg if slow.arg is not None else 1.0)
        left = self._throttle_until.get(name, 0.0) - time.monotonic()
        if left > 0 and platform.throttles(req):
            stats.add(name, "throttled")
            return self._hinted(name, platform.throttled(req, left), left)
        fault = plan.fault(name, "5xx")
        if fault and self.dice.roll("5xx", name, req) < fault.rate:
            stats.add(name, "fault:5xx")
            return platform.server_error(req)
        fault = plan.fault(name, "throttle")
        with self._lock:
            injected = self._pending.pop(name, None) if platform.throttles(req) else None
        if injected is not None or (
            fault and platform.throttles(req) and self.dice.roll("throttle", name, req) < fault.rate
        ):
            hold = injected if injected is not None else (fault.arg if fault else None) or 0.0
            with self._lock:
                self._throttle_until[name] = time.monotonic() + hold
            stats.add(name, "fault:throttle")
            stats.add(name, "throttled")
            return self._hinted(name, platform.throttled(req, hold), hold)
        fault = plan.fault(name, "token-expiry")
        if (
            fault
            and self.dice.roll("token-expiry", name, req) < fault.rate
            and platform.expire_token(req)
        ):
            stats.add(name, "fault:token-expiry")
        answer = platform.handle(req)
        if answer.headers.pop("X-Imitation-Refused", None) or answer.status in (401, 403):
            stats.add(name, "refused")
        if answer.created:
            stats.add(name, "created")
            fault = plan.fault(name, "ambiguous")
            if fault and self.dice.roll("ambiguous", name, req) < fault.rate:
                stats.add(name, "fault:ambiguous")
                if self.dice.choice("ambiguous", name, req, [True, False]):
                    return Response(0, drop=True)
                return platform.server_error(req)
        return answer

    def _hinted(self, name: str, answer: Response, hold: float) -> Response:
        """Note when the hint of a throttling answer says to come back."""
        hint = answer.headers.pop("X-Imitation-Hint", None)
        wait = float(hint) if hint is not None else hold
        with self._lock:
            self._hint_until[name] = max(self._hint_until.get(name, 0.0), time.monotonic() + wait)
        return answer

    # -- control --------------------------------------------------------------------------------

    def _control(self, req: Request) -> Response:
        host = (req.header("Host") or "").rsplit(":", 1)[0] if req.header("Host") else ""
        if host not in LOOPBACK:
            return json_response(403, {"error": "the control endpoint answers loopback only"})
        what = req.path.removeprefix("/_imitation").strip("/")
        if req.method == "GET" and what == "records":
            return json_response(200, {"records": self.records()})
        if req.method == "GET" and what == "stats":
            return json_response(200, self.stats.snapshot())
        if req.method == "GET" and what == "health":
            return json_response(200, {"ok": True, "faults": self.plan.spec})
        if req.method == "POST" and what == "faults":
            body = req.json()
            spec = body.get("spec", "") if isinstance(body, dict) else req.body.decode()
            try:
                self.set_faults(str(spec))
            except FaultError as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, {"faults": self.plan.spec})
        if req.method == "POST" and what == "inject":
            body = req.json() if isinstance(req.json(), dict) else {}
            try:
                self.inject(
                    str(body.get("fault")),
                    str(body.get("platform", "*")),
                    after=max(0.0, float(body.get("after", 0))),
                    hold=max(0.0, float(body.get("hold", 0))),
                )
            except (FaultError, TypeError, ValueError) as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(202, {"injected": body})
        if req.method == "POST" and what == "outage":
            body = req.json() if isinstance(req.json(), dict) else {}
            seconds, after = float(body.get("seconds", 10)), float(body.get("after", 0.1))
            if not (math.isfinite(seconds) and math.isfinite(after) and seconds >= 0 <= after):
                return json_response(400, {"error": "seconds and after are numbers ≥ 0"})
            self.outage(seconds, after=max(after, 0.05))  # after this answer has left
            return json_response(202, {"outage": seconds, "after": after})
        return json_response(404, {"error": f"no control {req.method} /_imitation/{what}"})

    def _front_page(self) -> str:
        lines = [f"publisher's platform imitation at {self.url} (faults: {self.plan.spec!r})"]
        for item in self.records():
            lines.append(
                f"{item['time']} {item['event']} {item['platform']}/{item['channel']} "
                f"{item['remote_id']}: {item['title'] or item['text'][:60]!r}"
            )
        return "\n".join(lines) + "\n"


# -- HTTP plumbing ------------------------------------------------------------------------------


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, app: Imitation) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended badly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._answer(json_response(411, {"error": "send a Content-Length"}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._answer(json_response(413, {"error": f"bodies up to {MAX_BODY} bytes"}), True)
            return
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=unquote(split.path),
            full_path=self.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            answer = self.server.app.serve(req)
        except Exception:
            logger.exception("the imitation failed on %s %s", self.command, self.path)
            answer = json_response(500, {"error": "the imitation itself failed; see its log"})
        if answer.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(answer)

    def _answer(self, answer: Response, close: bool = False) -> None:
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def answer_json(answer: Response) -> Any:
    """A test helper: an answer's body as JSON."""
    return json.loads(answer.body.decode("utf-8"))
