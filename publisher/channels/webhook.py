"""Signed JSON webhook adapter for portals that are not WordPress (contract: docs/webhook.md).

Owns the body, the signature (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; a GET signs ``"GET <path>"`` in the body's place, binding its path) and
the answer mapping; never reads the environment. A post's pictures travel inside the signed
body (``media``: each file's bytes in base64, a URL picture's address).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx

from publisher.channels.base import (
    USER_AGENT,
    Ambiguous,
    AuthError,
    ChannelError,
    CheckResult,
    Media,
    Outgoing,
    Permanent,
    Receipt,
    Temporary,
    Throttled,
    calling,
    retry_after_seconds,
    unreachable,
    until,
)
from publisher.channels.wordpress import post_slug
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Channel, WebhookSettings, settings_as
from publisher.i18n import N_
from publisher.media import LIMITS
from publisher.metrics import FIGURES, NoFigures, Reading
from publisher.signing import sign, signing_key
from publisher.text import nfc
from publisher.tokens import TokenStore

logger = logging.getLogger(__name__)

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_BUSY_RETRY = 30.0  # 409: the receiver is still processing the same key
_DEFAULT_THROTTLE = 60.0
MAX_PICTURE_BYTES = LIMITS["webhook"].max_bytes  # per file (docs/webhook.md); resized to fit


def body_bytes(post: Outgoing) -> bytes:
    """The request body, serialised once: the signature covers exactly these bytes.

    ``media`` is there only when the post has pictures, so a post without any sends the bytes
    earlier releases sent (a retry across an upgrade is the same body, not a 422)."""
    fields = post.fields
    body: dict[str, Any] = {
        "id": post.idempotency_key,
        "channel": post.channel,
        "kind": post.kind,
        "title": nfc(fields.get("title", "")),
        "excerpt": nfc(fields.get("excerpt", "")),
        "body_html": nfc(fields.get("content", "")),
        "slug": post_slug(post),
        "publish_at": post.due_at.astimezone(VIETNAM).isoformat(timespec="seconds"),
        "tags": [],  # the portal fields carry no tags yet
    }
    if post.media:
        body["media"] = [_picture(m) for m in post.media]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _picture(media: Media) -> dict[str, Any]:
    """One ``media`` entry: the picture's description, its public address when it has one, and
    a file's bytes (standard base64, padded)."""
    if len(media.data) > MAX_PICTURE_BYTES:
        raise Permanent(
            f"the picture {media.name} has {len(media.data)} bytes; the webhook takes at most "
            f"{MAX_PICTURE_BYTES} a picture (resize it)",
            code="picture",
        )
    entry: dict[str, Any] = {
        "role": media.role,
        "name": media.name,
        "mime": media.mime,
        "sha256": media.sha256,
        "alt": nfc(media.alt),
        "width": media.width,
        "height": media.height,
    }
    if media.url:
        entry["url"] = media.url
    if media.is_file:
        entry["data_base64"] = base64.b64encode(media.data).decode("ascii")
    return entry


def get_content(url: str) -> bytes:
    """What a signed GET signs in the body's place: ``"GET <path>"``, the path as sent."""
    return f"GET {urlsplit(url).path or '/'}".encode()


class WebhookAdapter:
    """POSTs each post, signed, to one URL; the receiver deduplicates by ``Idempotency-Key``."""

    def __init__(
        self,
        channel: Channel,
        client: httpx.Client,
        secrets: Mapping[str, str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        tokens: TokenStore | None = None,
    ) -> None:
        self.channel = channel
        self.client = client
        self.clock = clock
        s = settings_as(channel, WebhookSettings)
        self.url = s.url.rstrip("/")
        self.public_base_url = s.public_base_url
        self.stats = s.stats
        self._key = signing_key(secrets["signing_secret"])

    def publish(self, post: Outgoing) -> Receipt:
        body = body_bytes(post)
        headers = self._signed(post.idempotency_key, body)
        headers["Content-Type"] = "application/json; charset=utf-8"
        headers["Idempotency-Key"] = post.idempotency_key  # the same as webhook-id
        with calling(creates=True):
            resp = self.client.post(self.url, content=body, headers=headers)
        if resp.status_code >= 500:
            raise Ambiguous(
                f"the webhook answered {resp.status_code}; the post may exist",
                status=resp.status_code,
            )
        if resp.status_code in (200, 201):
            receipt = self._receipt(resp, replay=resp.status_code == 200)
            if receipt is None:
                raise Ambiguous(
                    f"the webhook answered {resp.status_code} without an id; the post may exist",
                    status=resp.status_code,
                )
            return receipt
        raise self._failure(resp)

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        # The key names the post, so a match is ours whenever it was made.
        url = f"{self.url}/{post.idempotency_key}"
        with calling(creates=False):  # a GET creates nothing
            resp = self.client.get(url, headers=self._signed_get(url))
        if resp.status_code == 404:
            return None
        if resp.status_code == 200:
            receipt = self._receipt(resp, replay=False)
            if receipt is None:
                raise Temporary("the webhook lookup answered 200 without an id", status=200)
            return receipt
        raise self._failure(resp)  # 5xx is temporary here: a GET creates nothing

    def check(self) -> CheckResult:
        try:
            with calling(creates=False):
                resp = self.client.get(self.url, headers=self._signed_get(self.url))
        except ChannelError as exc:
            return unreachable(self.url, exc)
        if resp.status_code == 200:
            return CheckResult(True, f"{self.url} accepted the signature")
        if resp.status_code == 401:
            return CheckResult(
                False,
                f"the signing secret was refused by {self.url}: give the portal the same secret "
                "(or check this machine's clock: ±300 s)",
            )
        return CheckResult(False, self._failure(resp).reason)

    def pacing(self) -> float:
        return 0.0

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        """The receiver's figures for the post: the signed ``GET <url>/stats/<remote_id>``
        (docs/webhook.md, "Stats lookup"), when the channel says the receiver has it
        (``stats = true``); its JSON ``{"views": n, …}``, each figure a count or null. A 404:
        the receiver keeps none for this post."""
        if not self.stats:
            raise NoFigures(N_("the portal reports no figures (stats = false)"))
        where = f"{self.url}/stats/{remote_id}"
        with calling(creates=False):
            resp = self.client.get(where, headers=self._signed_get(where))
        if resp.status_code == 404:
            raise NoFigures(N_("the portal keeps no figures for this post"))
        if resp.status_code != 200:
            raise self._failure(resp)
        try:
            answer = resp.json()
        except ValueError as exc:
            raise Temporary("the stats lookup answered 200 without JSON", status=200) from exc
        if not isinstance(answer, dict):
            raise Temporary("the stats lookup answered 200 without a JSON object", status=200)
        counts = {name: _count(answer.get(name)) for name in FIGURES}
        by_type = answer.get("reactions_by_type")
        kinds = (
            {str(k): n for k, v in by_type.items() if (n := _count(v)) is not None}
            if isinstance(by_type, dict)
            else None
        )
        return Reading(
            views=counts["views"],
            reactions=counts["reactions"],
            reactions_by_type=kinds,
            comments=counts["comments"],
            shares=counts["shares"],
            clicks=counts["clicks"],
            source="webhook stats: " + ", ".join(n for n, v in counts.items() if v is not None),
        )

    def _signed(self, msg_id: str, content: bytes) -> dict[str, str]:
        timestamp = int(self.clock.now().timestamp())
        return {
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, msg_id, timestamp, content),
        }

    def _signed_get(self, url: str) -> dict[str, str]:
        """A GET is a message of its own (a fresh id), signed over its path."""
        return self._signed(f"msg_{uuid.uuid4().hex}", get_content(url))

    def _receipt(self, resp: httpx.Response, *, replay: bool) -> Receipt | None:
        try:
            answer: Any = resp.json()
            remote_id = answer.get("id")
            url = answer.get("url")
        except (ValueError, AttributeError):
            return None
        if remote_id in (None, ""):
            return None
        if url and self.public_base_url:
            url = urljoin(self.public_base_url.rstrip("/") + "/", str(url))
        extra = {"replay": "true"} if replay else {}
        return Receipt(str(remote_id), str(url) if url else None, extra)

    def _failure(self, resp: httpx.Response) -> ChannelError:
        """Map any answer other than 200/201/5xx to one outcome (docs/webhook.md's table)."""
        status = resp.status_code
        said = f"{status}: {_said(resp)}"
        now = self.clock.now()
        wait = retry_after_seconds(resp.headers.get("Retry-After"), now)
        if status in (401, 403):
            what = "the signing secret was refused" if status == 401 else "the portal refused us"
            return AuthError(f"{what} ({said})", status=status)
        if status == 409:
            return Temporary(
                f"the portal is still processing this post ({said})",
                retry_after=_BUSY_RETRY if wait is None else wait,
                status=status,
            )
        if status == 422:
            return Permanent(
                "the portal already holds this post with a different body (it changed after a "
                f"first attempt; publish it as a new post) ({said})",
                status=status,
            )
        if status == 429:
            return Throttled(
                f"the portal is rate-limiting ({said})",
                until=until(now, _DEFAULT_THROTTLE if wait is None else wait),
                status=status,
            )
        if status >= 500:
            return Temporary(f"the portal answered {said}", retry_after=wait, status=status)
        if status == 404:
            return Permanent(f"no webhook at {self.url} ({said}): correct the url", status=status)
        return Permanent(f"the portal refused the post ({said})", status=status)


def _count(value: object) -> int | None:
    """A figure the receiver gave as a whole number ≥ 0; anything else is None (not zero)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _said(resp: httpx.Response) -> str:
    """The receiver's own words, shortened to one line."""
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        for key in ("error", "message", "detail"):
            if answer.get(key):
                return " ".join(str(answer[key]).split())[:200]
    return " ".join(resp.text.split())[:200] or resp.reason_phrase
