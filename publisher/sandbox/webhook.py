"""The receiving side of publisher's signed JSON webhook (docs/webhook.md): ``/webhook/<channel>``.

Verifies Standard Webhooks signatures (a POST's over its body, a GET's over ``"GET <path>"``, so
neither can be replayed to another path), deduplicates by ``webhook-id`` across every path,
refuses a body whose ``channel`` is not the path's, and keeps the Idempotency-Key rules. Never
records secrets.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from publisher.sandbox import credentials
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router
from publisher.signing import sign, signing_key

MAX_SKEW = 300.0  # seconds between webhook-timestamp and the receiver's clock


@dataclass
class Item:
    id: str
    key: str
    channel: str
    body: dict[str, Any]
    done: bool = False  # False while the first request is still being answered

    def answer(self, base: str) -> dict[str, str]:
        return {"id": self.id, "url": f"{base}/sandbox#webhook-{self.id}"}


def signed_content(req: Request) -> bytes:
    """What the request's signature covers: a POST's raw body; a GET's ``"GET <path>"``."""
    return req.body if req.method != "GET" else f"GET {req.path}".encode()


def problem(status: int, code: str, message: str) -> Response:
    return Response.json({"error": code, "message": message}, status)


class Webhook:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.items: dict[str, Item] = {}  # webhook-id (= idempotency key) → item, any channel
        self.next_id = 1001

    def register(self, router: Router) -> None:
        router.add("POST", r"/webhook/(?P<channel>[^/]+)/?", self.create)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/?", self.check)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/(?P<key>[^/]+)/?", self.lookup)
        router.add("*", r"/webhook(?:/.*)?", lambda req, m: problem(405, "method", "not supported"))

    def unsigned(self, req: Request) -> Response | None:
        """401 unless the timestamp is fresh and a v1 signature matches (constant-time compare)."""
        msg_id = (req.header("webhook-id") or "").strip()
        stamp = (req.header("webhook-timestamp") or "").strip()
        given = (req.header("webhook-signature") or "").split()
        if not msg_id or not stamp or not given:
            return problem(
                401, "unsigned", "webhook-id, webhook-timestamp and webhook-signature needed"
            )
        try:
            timestamp = int(stamp)
        except ValueError:
            return problem(401, "bad_timestamp", "webhook-timestamp is not UNIX seconds")
        skew = abs(self.ctx.now().timestamp() - timestamp)
        if skew > MAX_SKEW:
            return problem(401, "stale_timestamp", f"timestamp is {skew:.0f} s from the clock")
        key = signing_key(credentials.WEBHOOK_SIGNING_SECRET)
        expected = sign(key, msg_id, timestamp, signed_content(req)).encode()
        if not any(hmac.compare_digest(expected, g.encode()) for g in given):
            what = "the body" if req.method != "GET" else f"GET {req.path}"
            return problem(401, "bad_signature", f"webhook-signature does not match {what}")
        return None

    def check(self, req: Request, m: dict[str, str]) -> Response:
        return self.unsigned(req) or Response.json({"ok": True})

    def lookup(self, req: Request, m: dict[str, str]) -> Response:
        denied = self.unsigned(req)
        if denied is not None:
            return denied
        item = self.items.get(m["key"])
        if item is None or item.channel != m["channel"]:
            return problem(404, "not_found", "no item was created with this Idempotency-Key")
        return Response.json(item.answer(self.ctx.base_url()))

    def create(self, req: Request, m: dict[str, str]) -> Response:
        denied = self.unsigned(req)
        if denied is not None:
            return denied
        key = (req.header("webhook-id") or "").strip()  # the message id is the idempotency key
        given_key = (req.header("idempotency-key") or "").strip()
        if given_key and given_key != key:
            return problem(400, "malformed", "Idempotency-Key differs from webhook-id")
        try:
            body = req.json()
        except BadBody as exc:
            return problem(400, "malformed", str(exc))
        missing = [f for f in ("title", "body_html") if not isinstance(body, dict) or f not in body]
        if missing or not isinstance(body, dict):
            return problem(400, "malformed", "body must be a JSON object with title and body_html")
        if str(body.get("id", key)) != key:
            return problem(400, "malformed", "body id differs from webhook-id")
        channel = m["channel"]
        if body.get("channel") != channel:
            return problem(
                400, "wrong_channel", f"the body's channel is not {channel!r}, this endpoint's"
            )
        item = self.items.get(key)  # any channel: a message id is used once
        if item is not None:
            if item.body != body or item.channel != channel:
                return problem(422, "key_reused", "this webhook-id came with another body")
            if not item.done:
                return problem(409, "in_progress", "the first request with this id is running")
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
        self.items[key] = item
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
