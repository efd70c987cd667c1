"""The receiving side of publisher's signed JSON webhook (docs/webhook.md): ``/webhook/<channel>``.

Verifies Standard Webhooks signatures (a POST's over its body, a GET's over ``"GET <path>"``, so
neither can be replayed to another path), deduplicates by ``webhook-id`` across every path,
refuses a body whose ``channel`` is not the path's, and keeps the Idempotency-Key rules. Never
records secrets.

A body may carry pictures: ``media: [{role, name, mime, sha256, alt, width, height, url?,
data_base64?}]``. A file in ``data_base64`` must be the JPEG or PNG of at most 5 MB its ``sha256``,
``mime`` and dimensions describe; a ``url`` must be https (or a picture on the sandbox). Anything
else is 400 naming the picture and the problem. Files are kept (and served) by the sandbox; the
record keeps references, never the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.sandbox import credentials
from publisher.sandbox.media import LIMITS, Picture, Refusal, inspect
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router
from publisher.signing import sign, signing_key

MAX_SKEW = 300.0  # seconds between webhook-timestamp and the receiver's clock
ROLES = ("cover", "image")


class BadMedia(ValueError):
    """A picture of a webhook body the portal refuses; the message names it and the problem."""


@dataclass
class Item:
    id: str
    key: str
    channel: str
    body: dict[str, Any]
    done: bool = False  # False while the first request is still being answered
    created: datetime | None = None

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
        self.stats = True  # answers the stats lookup (POST /_sandbox/stats)
        self.items: dict[str, Item] = {}  # webhook-id (= idempotency key) → item, any channel
        self.next_id = 1001

    def register(self, router: Router) -> None:
        router.add("POST", r"/webhook/(?P<channel>[^/]+)/?", self.create)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/?", self.check)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/(?P<key>[^/]+)/?", self.lookup)
        router.add("GET", r"/webhook/(?P<channel>[^/]+)/stats/(?P<id>[^/]+)/?", self.figures)
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

    def figures(self, req: Request, m: dict[str, str]) -> Response:
        """The signed stats lookup (docs/webhook.md): ``{"views": n, "reactions": null, …}``
        for an item of this channel; 404 when the receiver keeps no figures (``stats`` off,
        POST /_sandbox/stats) or has no such item."""
        denied = self.unsigned(req)
        if denied is not None:
            return denied
        if not self.stats:
            return problem(404, "no_stats", "this portal keeps no figures")
        fired = self.ctx.faults.draw("webhook", "read")
        how = fired.arg("read-fail", "error") if "read-fail" in fired else None
        if how == "throttle":
            answer = problem(429, "too_many_requests", "slow down")
            answer.headers.append(("Retry-After", "1"))
            return answer
        if how == "token-expiry":
            return problem(401, "bad_signature", "the signing secret was rotated")
        if how is not None:
            return problem(503, "unavailable", "the CMS is unavailable")
        found = [i for i in self.items.values() if i.id == m["id"] and i.channel == m["channel"]]
        if not found or found[0].created is None:
            return problem(404, "not_found", "no item with this id")
        views = self.ctx.figures("webhook", found[0].id, found[0].created).get("views", 0)
        nothing = dict.fromkeys(("reactions", "comments", "shares", "clicks"))
        return Response.json({"views": views, **nothing})

    def create(self, req: Request, m: dict[str, str]) -> Response:
        denied = self.unsigned(req)
        if denied is not None:
            return denied
        key = (req.header("webhook-id") or "").strip()  # the message id is the idempotency key
        channel = m["channel"]
        body = _body(req, key, channel)
        if isinstance(body, Response):
            return body
        item = self.items.get(key)  # any channel: a message id is used once
        if item is not None:
            if item.body != body or item.channel != channel:
                return problem(422, "key_reused", "this webhook-id came with another body")
            if not item.done:
                return problem(409, "in_progress", "the first request with this id is running")
            return Response.json(item.answer(self.ctx.base_url()), 200)
        try:
            pictures = self.pictures(body.get("media"))
        except BadMedia as exc:
            return problem(400, "bad_media", str(exc))  # 422 is a reused key (docs/webhook.md)
        fired = self.ctx.faults.draw("webhook", "create")
        if "throttle" in fired:
            answer = problem(429, "too_many_requests", "slow down")
            answer.headers.append(("Retry-After", "1"))
            return answer
        if "error-before" in fired:
            return problem(503, "unavailable", "the CMS is unavailable")
        item = Item(str(self.next_id), key, channel, body, created=self.ctx.now())
        self.next_id += 1
        self.items[key] = item
        title, text = str(body.get("title", "")), str(body.get("body_html", ""))
        refs = [self.keep(entry, picture) for entry, picture in pictures]
        where = ("webhook", channel, item.id)
        self.ctx.record(where, title, text, fields=body, kind=body.get("kind"), media=refs)
        answer = Response.json(item.answer(self.ctx.base_url()), 201)
        if "create-then-fail" in fired:
            answer = problem(500, "internal", "the CMS failed after saving")
        answer.delay = fired.seconds("slow", 1.0) if "slow" in fired else 0.0

        def finished() -> None:
            item.done = True

        answer.after = finished
        return answer

    def pictures(self, media: Any) -> list[tuple[dict[str, Any], Picture | None]]:
        """Each entry of a body's ``media`` and the picture its ``data_base64`` holds (None for
        a URL picture); BadMedia for the first one the portal refuses."""
        if media is None:
            return []
        if not isinstance(media, list):
            raise BadMedia("media must be a list of pictures")
        return [self.picture(i, entry) for i, entry in enumerate(media)]

    def picture(self, i: int, entry: Any) -> tuple[dict[str, Any], Picture | None]:
        where = f"media[{i}]"
        if not isinstance(entry, dict):
            raise BadMedia(f"{where} is not an object")
        if entry.get("role") not in ROLES or not isinstance(entry.get("alt", ""), str):
            raise BadMedia(f"{where}: role must be cover or image, alt a string")
        data, url = entry.get("data_base64"), entry.get("url")
        if data is None:
            if not isinstance(url, str) or not url:
                raise BadMedia(f"{where} has neither data_base64 nor url")
            if self.ctx.media.own(url):
                if self.ctx.media.find(url) is None:
                    raise BadMedia(f"{where}: the sandbox serves no picture at {url}")
            elif not url.startswith("https://"):
                raise BadMedia(f"{where}: url must be an https address of the picture")
            return entry, None
        try:
            raw = base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadMedia(f"{where}: data_base64 is not base64") from exc
        try:
            picture = inspect(raw, LIMITS["webhook"])
        except Refusal as exc:
            raise BadMedia(f"{where}: {exc}") from exc
        _agrees(where, entry, picture)
        return entry, picture

    def keep(self, entry: dict[str, Any], picture: Picture | None) -> dict[str, Any]:
        """A picture's reference for the record; its file kept and served by the sandbox."""
        ref = {
            k: entry.get(k) for k in ("role", "name", "alt", "mime", "sha256", "width", "height")
        }
        if picture is None:
            found = self.ctx.media.find(str(entry.get("url")))
            return ref | (found.describe() if found is not None else {}) | {"url": entry.get("url")}
        return ref | picture.describe() | {"url": self.ctx.media.keep(picture)}


def _body(req: Request, key: str, channel: str) -> dict[str, Any] | Response:
    """A create request's JSON body, or the 400 its headers or shape deserve."""
    given_key = (req.header("idempotency-key") or "").strip()
    if given_key and given_key != key:
        return problem(400, "malformed", "Idempotency-Key differs from webhook-id")
    try:
        body = req.json()
    except BadBody as exc:
        return problem(400, "malformed", str(exc))
    if not isinstance(body, dict) or any(f not in body for f in ("title", "body_html")):
        return problem(400, "malformed", "body must be a JSON object with title and body_html")
    if str(body.get("id", key)) != key:
        return problem(400, "malformed", "body id differs from webhook-id")
    if body.get("channel") != channel:
        return problem(
            400, "wrong_channel", f"the body's channel is not {channel!r}, this endpoint's"
        )
    return body


def _agrees(where: str, entry: dict[str, Any], picture: Picture) -> None:
    """BadMedia unless ``entry`` describes ``picture``: its sha256, mime and (when given)
    dimensions."""
    sha = str(entry.get("sha256") or "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise BadMedia(f"{where}: sha256 must be the 64 hex digits of the file's SHA-256")
    if sha != picture.sha256:
        raise BadMedia(f"{where}: sha256 does not match data_base64 (the file is {picture.sha256})")
    if entry.get("mime") != picture.mime:
        raise BadMedia(f"{where}: mime says {entry.get('mime')!r}, the file is {picture.mime}")
    size = (entry.get("width"), entry.get("height"))
    given = all(isinstance(n, int) and n > 0 for n in size)  # 0 or none: not said
    if given and size != (picture.width, picture.height):
        actual = f"{picture.width}×{picture.height}"
        raise BadMedia(f"{where}: width×height say {size[0]}×{size[1]}, the file is {actual}")
