"""A portal's webhook receiver: Standard Webhooks signatures (standardwebhooks.com), or today's
``X-Publisher-Signature`` scheme, with idempotency by key (IETF idempotency-key draft).

Paths are relative to ``/webhook``: ``POST /<channel>`` creates, ``GET /<channel>/<key>`` looks a
post up, ``GET /<channel>`` checks the signature. Answers: 201 created, 200 replay of the first
answer, 400 malformed, 401 bad signature, 409 still processing, 422 key reused with another body.

Standard Webhooks: headers ``webhook-id``, ``webhook-timestamp`` (UNIX seconds, ±5 min) and
``webhook-signature`` (space-separated ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``); the
key is the base64 after ``whsec_``. A GET has no body: what it signs in the body's place is
pluggable (``get_content``); by default ``GET <path>`` (the path as requested), as publisher's
new docs/webhook.md is to say.

A post's pictures come inside the signed body (publisher's contract, docs/webhook.md): ``media``
entries with ``role`` (one ``cover`` at most, then ``image``s), ``alt``, and a file's bytes as
``data_base64`` (a JPEG or PNG of at most 5,000,000 bytes whose SHA-256 is ``sha256``) and/or a
``url``. A file is kept once by its SHA-256, however many posts carry it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from publisher.sandbox import credentials
from tests.imitation.core import Request, Response, json_response

if TYPE_CHECKING:
    from tests.imitation.server import Imitation

TOLERANCE = 300  # seconds either side of our clock
MAX_PICTURE = 5_000_000  # bytes a picture
MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
SCHEMES = ("auto", "standard", "legacy")


@dataclass
class Entry:
    digest: str
    done: bool = False
    answer: dict[str, Any] | None = None


def signing_keys(secret: str) -> list[bytes]:
    """The HMAC keys a secret may stand for. ``whsec_<base64>`` is the spec's form (the key is
    the decoded bytes); any other string is tried both as its UTF-8 bytes and, like the
    reference libraries do, as base64."""
    if secret.startswith("whsec_"):
        try:
            return [base64.b64decode(secret.removeprefix("whsec_"), validate=True)]
        except (binascii.Error, ValueError):
            return []
    keys = [secret.encode("utf-8")]
    try:
        decoded = base64.b64decode(secret)
    except (binascii.Error, ValueError):
        return keys
    return keys + ([decoded] if decoded and decoded not in keys else [])


def get_path(req: Request) -> list[bytes]:
    return [b"GET " + urlsplit(req.full_path).path.encode()]


def get_empty(req: Request) -> list[bytes]:
    return [b""]


GET_CONTENT: dict[str, Callable[[Request], list[bytes]]] = {
    "path": get_path,
    "empty": get_empty,
    "either": lambda req: get_path(req) + get_empty(req),
}


class Webhook:
    name = "webhook"

    def __init__(self, env: Imitation, scheme: str = "auto", get: str = "path") -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"webhook scheme {scheme!r}: one of {', '.join(SCHEMES)}")
        self.env = env
        self.scheme = scheme
        self.get_content: Callable[[Request], list[bytes]] = GET_CONTENT[get]
        self.entries: dict[tuple[str, str], Entry] = {}
        self.files: dict[str, bytes] = {}  # sha256 → the picture, kept once
        self._n = 0
        self._lock = threading.Lock()

    # -- the fault hooks -----------------------------------------------------------------------

    def throttles(self, req: Request) -> bool:
        return True

    def expire_token(self, req: Request) -> bool:
        return False

    def expire_all(self) -> int:
        return 0

    def server_error(self, req: Request) -> Response:
        status = self.env.dice.choice("hook-5xx", self.name, req, [500, 502, 503])
        return json_response(status, {"error": "the portal failed; try again later"})

    def throttled(self, req: Request, seconds: float) -> Response:
        wait = max(1, math.ceil(seconds))
        return json_response(
            429,
            {"error": "too many requests"},
            {"Retry-After": str(wait), "X-Imitation-Hint": str(wait)},
        )

    # -- requests --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if not parts or len(parts) > 2:
            return json_response(404, {"error": "no such webhook"})
        channel = parts[0]
        if req.method == "POST" and len(parts) == 1:
            refused = self._verify(req, [req.body])
            return refused or self._create(req, channel)
        if req.method == "GET":
            refused = self._verify(req, None)
            if refused:
                return refused
            if len(parts) == 1:
                return json_response(200, {"ok": True})
            with self._lock:
                entry = self.entries.get((channel, parts[1]))
            if entry is None:
                return json_response(404, {"error": "no post with this key"})
            if not entry.done:
                return json_response(409, {"error": "still processing"}, {"Retry-After": "1"})
            return json_response(200, entry.answer)
        return json_response(405, {"error": f"{req.method} is not allowed here"})

    def _create(self, req: Request, channel: str) -> Response:
        key = req.header("Idempotency-Key")
        wid = req.header("webhook-id")
        if key and wid and key != wid:
            return json_response(400, {"error": "Idempotency-Key and webhook-id differ"})
        key = key or wid
        if not key:
            return json_response(400, {"error": "missing Idempotency-Key"})
        body = req.json()
        if not isinstance(body, dict):
            return json_response(400, {"error": "the body is not a JSON object"})
        if body.get("id") != key:
            return json_response(400, {"error": "the body's id differs from the Idempotency-Key"})
        if body.get("channel", channel) != channel:
            return json_response(400, {"error": f"this post is for {body.get('channel')!r}"})
        title, html = body.get("title"), body.get("body_html")
        if not isinstance(title, str) or not title.strip() or not isinstance(html, str):
            return json_response(400, {"error": "title and body_html are required"})
        pictures = _pictures(body.get("media", []))
        if isinstance(pictures, str):
            return json_response(400, {"error": f"media: {pictures}"})
        digest = hashlib.sha256(req.body).hexdigest()
        with self._lock:
            entry = self.entries.get((channel, key))
            if entry is not None:
                if entry.digest != digest:
                    return json_response(422, {"error": "this key was used with another body"})
                if not entry.done:
                    return json_response(409, {"error": "still processing"}, {"Retry-After": "1"})
                return json_response(200, entry.answer)
            entry = self.entries[(channel, key)] = Entry(digest)
            self._n += 1
            remote = str(5000 + self._n)
        processing = self.env.plan.processing.get(self.name)
        if processing:
            time.sleep(processing)  # another request for this key meanwhile gets 409
        slug = str(body.get("slug") or remote)
        answer = {"id": remote, "url": f"https://{channel}.portal.example/tin-tuc/{slug}"}
        self._keep(pictures)
        self.env.recorder.created(
            self.name,
            channel,
            remote,
            title=title,
            text=html,
            kind=str(body.get("kind", "")),
            slug=slug,
            key=key,
            media=[
                {k: p[k] for k in ("role", "name", "sha256", "alt", "url") if k in p}
                for p, _data in pictures
            ],
        )
        with self._lock:
            entry.answer, entry.done = answer, True
        created = json_response(201, answer)
        created.created = True
        return created

    def _keep(self, pictures: list[tuple[dict[str, Any], bytes]]) -> None:
        with self._lock:
            for entry, data in pictures:
                if not data:
                    continue
                known = entry["sha256"] in self.files
                self.files.setdefault(entry["sha256"], data)
                self.env.stats.add(self.name, "media:reused" if known else "media:stored")

    # -- signatures ------------------------------------------------------------------------------

    def _verify(self, req: Request, contents: list[bytes] | None) -> Response | None:
        """None if one of ``contents`` (a GET's: see ``get_content``) is signed with the shared
        secret, else a 401. Today's scheme signs a GET as an empty body."""
        if self.env.plan.flag(self.name, "bad-credentials"):
            return _refused("the signature does not match the portal's secret")
        standard = req.header("webhook-signature") is not None
        if self.scheme == "standard" or (self.scheme == "auto" and standard):
            self.env.stats.add(self.name, "scheme:standard")
            problem = self._standard(req, self.get_content(req) if contents is None else contents)
        else:
            self.env.stats.add(self.name, "scheme:legacy")
            problem = self._legacy(req, [b""] if contents is None else contents)
        return None if problem is None else _refused(problem)

    def _standard(self, req: Request, contents: list[bytes]) -> str | None:
        wid, ts = req.header("webhook-id"), req.header("webhook-timestamp")
        sig = req.header("webhook-signature")
        if not (wid and ts and sig):
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        problem = _fresh(ts)
        if problem:
            return problem
        given = []
        for entry in sig.split():
            version, _, value = entry.partition(",")
            if version == "v1":
                try:
                    given.append(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    continue
        keys = signing_keys(credentials.WEBHOOK_SIGNING_SECRET)  # read now: its form may change
        for key in keys:
            for content in contents:
                mac = hmac.new(key, f"{wid}.{ts}.".encode() + content, "sha256").digest()
                if any(hmac.compare_digest(mac, g) for g in given):
                    return None
        return "no v1 signature matches"

    def _legacy(self, req: Request, contents: list[bytes]) -> str | None:
        ts, sig = req.header("X-Publisher-Timestamp"), req.header("X-Publisher-Signature")
        if not (ts and sig and sig.startswith("sha256=")):
            return "missing X-Publisher-Timestamp or X-Publisher-Signature"
        problem = _fresh(ts)
        if problem:
            return problem
        key = credentials.WEBHOOK_SIGNING_SECRET.encode("utf-8")
        for content in contents:
            mac = hmac.new(key, ts.encode() + b"." + content, "sha256").hexdigest()
            if hmac.compare_digest("sha256=" + mac, sig):
                return None
        return "the signature does not match"


def _pictures(media: Any) -> list[tuple[dict[str, Any], bytes]] | str:
    """The body's pictures with their decoded bytes, or what is wrong with them."""
    if not isinstance(media, list):
        return "not a list"
    out = []
    for n, entry in enumerate(media, 1):
        if not isinstance(entry, dict):
            return f"entry {n} is not an object"
        data = _picture_bytes(entry)
        if isinstance(data, str):
            return f"entry {n}: {data}"
        out.append((entry, data))
    if [e["role"] for e, _ in out].count("cover") > 1:
        return "more than one cover"
    return out


def _picture_bytes(entry: dict[str, Any]) -> bytes | str:
    if entry.get("role") not in ("cover", "image"):
        return "role is neither cover nor image"
    if not isinstance(entry.get("alt"), str):
        return "alt is not text"
    url, encoded = entry.get("url"), entry.get("data_base64")
    if url is not None and not (
        isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc
    ):
        return "url is not an http(s) address"
    if encoded is None:
        return b"" if url else "neither data_base64 nor url"
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return "data_base64 is not base64"
    if len(data) > MAX_PICTURE:
        return f"{len(data)} bytes; at most {MAX_PICTURE}"
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        return "sha256 does not match the bytes"
    magic = MAGIC.get(str(entry.get("mime")))
    if magic is None or not data.startswith(magic):
        return "not a JPEG or PNG as its mime says"
    if not (isinstance(entry.get("name"), str) and entry["name"]):
        return "a file without a name"
    return data


def _fresh(ts: str) -> str | None:
    try:
        when = int(ts)
    except ValueError:
        return "the timestamp is not UNIX seconds"
    if abs(time.time() - when) > TOLERANCE:
        return f"the timestamp is more than {TOLERANCE} s from our clock"
    return None


def _refused(problem: str) -> Response:
    return json_response(401, {"error": f"invalid signature: {problem}"})
