"""The receiving side of publisher's signed JSON webhook (docs/webhook.md): ``/webhook/<channel>``.

Checks the signature and the Idempotency-Key rules; stores items per channel. Never records secrets.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from publisher.sandbox import credentials
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router

MAX_SKEW = 300.0  # seconds between X-Publisher-Timestamp and the receiver's clock


@dataclass
class Item:
    id: str
    key: str
    channel: str
    body: dict[str, Any]
    done: bool = False  # False while the first request is still being answered

    def answer(self, base: str) -> dict[str, str]:
        return {"id": self.id, "url": f"{base}/sandbox#webhook-{self.id}"}


def signature(timestamp: str, body: bytes) -> str:
    key = credentials.WEBHOOK_SIGNING_SECRET.encode()
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def problem(status: int, code: str, message: str) -> Response:
    return Response.json({"error": code, "message": message}, status)


class Webhook:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.items: dict[tuple[str, str], Item] = {}  # (channel, idempotency key) → item
        self.next_id = 1001

    def register(self, router: Router) -> None:
        router.add("POST", r"/webhook/(?P<channel>[^/]+)/?", self.create)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/?", self.check)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/(?P<key>[^/]+)/?", self.lookup)
        router.add("*", r"/webhook(?:/.*)?", lambda req, m: problem(405, "method", "not supported"))

    def unsigned(self, req: Request) -> Response | None:
        """401 unless the timestamp is fresh and the signature matches (constant-time compare)."""
        stamp = (req.header("x-publisher-timestamp") or "").strip()
        given = (req.header("x-publisher-signature") or "").strip().lower()
        if not stamp or not given:
            return problem(
                401, "unsigned", "X-Publisher-Timestamp and X-Publisher-Signature needed"
            )
        try:
            skew = abs(self.ctx.now().timestamp() - float(stamp))
        except ValueError:
            return problem(401, "bad_timestamp", "X-Publisher-Timestamp is not UNIX seconds")
        if skew > MAX_SKEW:
            return problem(401, "stale_timestamp", f"timestamp is {skew:.0f} s from the clock")
        if not hmac.compare_digest(given.encode(), signature(stamp, req.body).encode()):
            return problem(401, "bad_signature", "X-Publisher-Signature does not match the body")
        return None

    def check(self, req: Request, m: dict[str, str]) -> Response:
        return self.unsigned(req) or Response.json({"ok": True})

    def lookup(self, req: Request, m: dict[str, str]) -> Response:
        denied = self.unsigned(req)
        if denied is not None:
            return denied
        item = self.items.get((m["channel"], m["key"]))
        if item is None:
            return problem(404, "not_found", "no item was created with this Idempotency-Key")
        return Response.json(item.answer(self.ctx.base_url()))

    def create(self, req: Request, m: dict[str, str]) -> Response:
        denied = self.unsigned(req)
        if denied is not None:
            return denied
        key = (req.header("idempotency-key") or "").strip()
        if not key:
            return problem(400, "missing_idempotency_key", "Idempotency-Key header is required")
        try:
            body = req.json()
        except BadBody as exc:
            return problem(400, "malformed", str(exc))
        missing = [f for f in ("title", "body_html") if not isinstance(body, dict) or f not in body]
        if missing or not isinstance(body, dict):
            return problem(400, "malformed", "body must be a JSON object with title and body_html")
        if str(body.get("id", key)) != key:
            return problem(400, "malformed", "body id differs from the Idempotency-Key")
        channel = m["channel"]
        item = self.items.get((channel, key))
        if item is not None:
            if item.body != body:
                return problem(422, "key_reused", "this Idempotency-Key came with another body")
            if not item.done:
                return problem(409, "in_progress", "the first request with this key is running")
            return Response.json(item.answer(self.ctx.base_url()), 200)
        fired = self.ctx.faults.draw("webhook", "create")
        if "throttle" in fired:
            answer = problem(429, "too_many_requests", "slow down")
            answer.headers.append(("Retry-After", "1"))
            return answer
        if "error-before" in fired:
            return problem(503, "unavailable", "the CMS is unavailable")
        item = Item(str(self.next_id), key, channel, body)
        self.next_id += 1
        self.items[(channel, key)] = item
        title, text = str(body.get("title", "")), str(body.get("body_html", ""))
        self.ctx.record(
            ("webhook", channel, item.id), title, text, fields=body, kind=body.get("kind")
        )
        answer = Response.json(item.answer(self.ctx.base_url()), 201)
        if "create-then-fail" in fired:
            answer = problem(500, "internal", "the CMS failed after saving")
        answer.delay = fired.seconds("slow", 1.0) if "slow" in fired else 0.0

        def finished() -> None:
            item.done = True

        answer.after = finished
        return answer
