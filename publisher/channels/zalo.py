"""Zalo Official Account adapter: article create → verify → optional broadcast, and OAuth v4.

Owns the Zalo wire format and the OAuth v4 refresh call; ``channels.tokens.TokenRotator`` makes
the refresh single-flight and durable. Never reads the environment, never logs a token.

Pictures: Zalo takes an article's cover and its image blocks only as public addresses it fetches
itself (its own upload call answers "API is not support" for articles, platform-apis.md §7). A
picture with a ``url`` is sent as it is; a file gets its address from the ``MediaHost`` (once per
distinct file and attempt, before any request to Zalo). The media host's failures are the
post's, never the Zalo channel's (see ``_hosted``).
"""

from __future__ import annotations

import html
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    CheckResult,
    Media,
    MediaHost,
    Outgoing,
    Permanent,
    Receipt,
    Temporary,
    Throttled,
    Unreachable,
    calling,
    retry_after_seconds,
    until,
)
from publisher.channels.tokens import InMemoryTokenStore, TokenRotator
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Channel, ZaloSettings, is_loopback, settings_as
from publisher.i18n import N_
from publisher.metrics import NoFigures, Reading
from publisher.render import FIELDS
from publisher.tokens import RotatingTokenStore, Tokens, TokenStore

logger = logging.getLogger(__name__)

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
# Zalo's field limits (characters, on NFC text): the same table the renderer checks against.
LIMITS = {f.name: f.limit for f in FIELDS["zalo"] if f.limit is not None}
WHY = {f.name: f.why for f in FIELDS["zalo"] if f.why}
VERIFY_DELAYS = (2.0, 4.0, 8.0, 16.0)  # five verify calls, about 30 s in all
LOOKUP_PAGES, PAGE_SIZE = 3, 10  # getslice allows about 10 a page
FIGURE_PAGES = 30  # getslice pages searched for an article's figures: its 300 latest articles
THROTTLE_S = 60.0  # -32 carries no reset time
QUOTA_S = 6 * 3600.0  # -223 article quota: Zalo gives no reset time; believed to be daily
DEFAULT_EXPIRES_S = 90000  # 25 h, Zalo's documented access-token lifetime
REAUTHORISE = (
    "re-authorise the OA and put the new refresh token in the channel's refresh_token secret"
)
NO_HOST = (
    "set [media] public_base_url (where the files are served over https) or [media] host (the "
    "portal channel to upload them to)"
)


class ZaloAdapter:
    """Publishes articles to a Zalo OA; ``tokens`` must be durable (DatabaseTokenStore) in use."""

    def __init__(
        self,
        channel: Channel,
        client: httpx.Client,
        secrets: Mapping[str, str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        tokens: TokenStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        media_host: MediaHost | None = None,
    ) -> None:
        s = settings_as(channel, ZaloSettings)
        self.channel, self.client, self.clock, self._sleep = channel, client, clock, sleep
        self.api = s.api_base_url.rstrip("/")
        self.oauth = s.oauth_base_url.rstrip("/")
        self.app_id = s.app_id
        self.oa_id = s.oa_id
        self.author = s.author
        self.broadcast = s.broadcast
        self.media_host = media_host
        self._pages: dict[int, list[Any] | None] | None = None  # a reading round's getslice pages
        # Zalo fetches pictures over the internet: https only, except for a sandbox on loopback.
        self._plain_http_ok = is_loopback(urlsplit(self.api).hostname or "")
        self._app_secret = secrets.get("app_secret", "")
        if tokens is None:
            logger.warning("Zalo tokens of %s are kept in memory only", channel.id)
            tokens = InMemoryTokenStore()
        if not isinstance(tokens, RotatingTokenStore):
            raise TypeError(
                "the Zalo adapter needs a RotatingTokenStore (publisher.channels.tokens)"
            )
        self.tokens = TokenRotator(
            tokens,
            f"{channel.id}@{self.oauth}",  # sandbox tokens never overwrite real ones
            self._oauth_refresh,
            seed=secrets.get("refresh_token"),
            hint=REAUTHORISE,
            clock=clock,
            sleep=sleep,
        )
        self._pace = 0.0

    # -- the interface ------------------------------------------------------------------------

    def publish(self, post: Outgoing) -> Receipt:
        article = self._article(post)  # limits and pictures are settled before Zalo is asked
        data = self._request("POST", "/v2.0/article/create", op="create", json=article)
        process = data.get("token")
        if not process:
            raise Ambiguous("Zalo accepted the article without a process token; look it up")
        article_id = self._verify(str(process))
        extra: dict[str, str] = {}
        if self.broadcast:
            extra["broadcast"] = self._broadcast(article_id)
        logger.info("zalo %s: post %s is article %s", self.channel.id, post.post_id, article_id)
        return Receipt(article_id, self._link(article_id), extra)

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        title = _nfc(post.fields.get("title", "")).strip()
        earliest = since - timedelta(minutes=5)
        for page in range(LOOKUP_PAGES):
            params = {"offset": page * PAGE_SIZE, "limit": PAGE_SIZE, "type": "normal"}
            data = self._request("GET", "/v2.0/article/getslice", op="read", params=params)
            items = data.get("medias") or data.get("articles") or []
            if not isinstance(items, list):
                return None
            for item in items:
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                if str(item["id"]) in post.exclude:  # another post's article (a repeat)
                    continue
                created = _created(item)  # an article without a date cannot be proven ours
                if created is None or created < earliest:
                    continue
                if title and _nfc(str(item.get("title", ""))).strip() == title:
                    link = item.get("link_view") or item.get("link")
                    return Receipt(str(item["id"]), str(link) if link else None)
            if len(items) < PAGE_SIZE:
                return None
        return None

    def check(self) -> CheckResult:
        try:
            data = self._request("GET", "/v2.0/oa/getoa", op="read")
        except ChannelError as exc:
            return CheckResult(False, exc.reason, reachable=not isinstance(exc, Unreachable))
        name = str(data.get("name") or "?")
        oaid = str(data.get("oaid") or data.get("oa_id") or "")
        if self.oa_id and oaid and oaid != self.oa_id:
            return CheckResult(
                False, f"the token is for OA {oaid} ({name}), not oa_id {self.oa_id}: authorise it"
            )
        detail = f"Zalo OA '{name}' reachable"
        tokens = self.tokens.current()
        if tokens:
            detail += f"; access token valid until {tokens.access_expires_at:%Y-%m-%d %H:%M} UTC"
        if self.media_host is not None:  # its pictures go out through the host: it too
            host = self.media_host.check()
            if not host.ok:
                return CheckResult(
                    False, f"{detail}; its media host: {host.detail}", host.reachable
                )
        return CheckResult(True, detail)

    def pacing(self) -> float:
        return self._pace

    # -- figures (publisher.metrics.MetricsReader) ----------------------------------------------

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        """The article's ``total_view`` and ``total_share``: from ``article/getdetail`` when it
        gives them (not documented), else from the article's entry in ``article/getslice``
        (documented with both, platform-apis.md §2.3 and §7), paged 10 at a time. Same tokens
        (a rejected one refreshed once) and rate-limit pacing as publishing."""
        try:
            one = {"id": remote_id}
            detail = self._request("GET", "/v2.0/article/getdetail", op="read", params=one)
        except Permanent as exc:  # an id getdetail does not take: the list is the judge
            logger.info("zalo %s: getdetail %s: %s", self.channel.id, remote_id, exc.reason)
            detail = {}
        if _int(detail.get("total_view")) is not None:
            return _reading(detail, "getdetail")
        for page in range(FIGURE_PAGES):
            items = self._figure_page(page)
            if items is None:
                break
            for item in items:
                if isinstance(item, dict) and str(item.get("id")) == remote_id:
                    return _reading(item, "getslice")
            if len(items) < PAGE_SIZE:
                break
        raise NoFigures(N_("Zalo lists no such article among the OA's latest (removed, or older)"))

    def begin_round(self) -> None:
        """A round of readings begins (``insights.collect``): the ``getslice`` pages read in it
        are kept and shared by its posts, so a round of n articles asks for each page once,
        not once an article (every post it reads was published before it began)."""
        self._pages = {}

    def end_round(self) -> None:
        self._pages = None

    def _figure_page(self, page: int) -> list[Any] | None:
        """``getslice``'s page ``page`` (10 articles), from this round's pages when kept; None
        when Zalo answers no list."""
        kept = self._pages
        if kept is not None and page in kept:
            return kept[page]
        params = {"offset": page * PAGE_SIZE, "limit": PAGE_SIZE, "type": "normal"}
        data = self._request("GET", "/v2.0/article/getslice", op="read", params=params)
        items = data.get("medias") or data.get("articles") or []
        found = items if isinstance(items, list) else None
        if kept is not None:
            kept[page] = found
        return found

    # -- publishing -----------------------------------------------------------------------------

    def _article(self, post: Outgoing) -> dict[str, Any]:
        f = {k: _nfc(v or "").strip() for k, v in post.fields.items()}
        values = {
            "title": f.get("title", ""),
            "author": f.get("author") or _nfc(self.author).strip(),
            "description": f.get("description", ""),
        }
        for name, value in values.items():
            if len(value) > LIMITS[name]:
                why = f" ({WHY[name]})" if name in WHY else ""
                raise Permanent(
                    f"{name} has {len(value)} characters; Zalo allows at most {LIMITS[name]}{why}",
                    code="limit",
                )
        paragraphs = _paragraphs(f.get("body", ""))
        if not values["title"] or not paragraphs:
            raise Permanent("a Zalo article needs a title and a body", code="empty")
        if self.media_host is not None and any(m.is_file and not m.url for m in post.media):
            # Zalo's own credentials before the media host is asked: a channel that cannot
            # post asks the portal nothing (it would be asked at every retry)
            self.tokens.access_token()
        cover, images = self._pictures(post)
        article: dict[str, Any] = {"type": "normal", "title": values["title"]}
        if values["author"]:
            article["author"] = values["author"]
        if cover:
            article["cover"] = {"cover_type": "photo", "photo_url": cover, "status": "show"}
        if values["description"]:
            article["description"] = values["description"]
        article["body"] = [{"type": "text", "content": f"<p>{p}</p>"} for p in paragraphs]
        article["body"] += images
        article.update(status="show", comment="show")
        return article

    # -- pictures -------------------------------------------------------------------------------

    def _pictures(self, post: Outgoing) -> tuple[str, list[dict[str, str]]]:
        """The cover's address and the image blocks, each picture resolved once (a file used
        twice, e.g. as the cover and an image, asks the media host once)."""
        resolved: dict[str, str] = {}  # sha256 → public address, for this attempt

        def address(media: Media, what: str) -> str:
            if media.url:
                return self._public(media.url, what)
            if not media.is_file:
                raise Permanent(f"{what} has neither a file nor an address", code="picture")
            if media.sha256 not in resolved:
                resolved[media.sha256] = self._hosted(media, what)
            return resolved[media.sha256]

        cover = post.cover  # none: sent without one, for Zalo to refuse (check refuses it first)
        cover_url = address(cover, _label("the cover", cover)) if cover is not None else ""
        blocks = []
        for n, image in enumerate(post.images, 1):
            block = {"type": "image", "url": address(image, _label(f"picture {n}", image))}
            if caption := _nfc(image.alt).strip():
                block["caption"] = caption
            blocks.append(block)
        return cover_url, blocks

    def _hosted(self, media: Media, what: str) -> str:
        """The public address of the file ``media`` from the media host.

        A host that refuses the file makes the post Permanent. The host's other failures are
        the Zalo channel's, as its pictures cannot go out without the host, and none spends a
        post's tries (a portal down or rate-limiting for hours would otherwise use them all
        up): rate-limiting makes the channel wait as long (Throttled), a host that cannot be
        reached or refuses our credentials stops it (Unreachable, AuthError) until ``check``
        — which asks the host too — passes. A failure that may have left the file there
        (Ambiguous) or is passing (Temporary) makes the post wait, retried with backoff; the
        host looks the file up by its slug before any re-upload.
        """
        if self.media_host is None:
            raise Permanent(
                f"{what} is a file and Zalo takes pictures only as public addresses: {NO_HOST}",
                code="media-host",
            )
        try:
            url = self.media_host.public_url(media)
        except Permanent as exc:
            raise Permanent(
                f"the media host refused {what}: {exc.reason}", status=exc.status, code="media-host"
            ) from exc
        except Throttled as exc:
            raise Throttled(
                f"{what} has no public address yet; the media host: {exc.reason}",
                until=exc.until,
                status=exc.status,
                code="media-host",
            ) from exc
        except (Unreachable, AuthError) as exc:
            said = f"{what} has no public address: the media host: {exc.reason}"
            raise type(exc)(said, status=exc.status, code="media-host") from exc
        except ChannelError as exc:
            wait = exc.retry_after if isinstance(exc, Temporary) else None
            raise Temporary(
                f"{what} has no public address yet; the media host: {exc.reason}",
                retry_after=wait,
                status=exc.status,
                code="media-host",
            ) from exc
        return self._public(url, what)

    def _public(self, url: str, what: str) -> str:
        """``url`` if Zalo can fetch it: https://, or http:// when the API itself is a sandbox
        on loopback."""
        url = url.strip()
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if parts.hostname and (scheme == "https" or (scheme == "http" and self._plain_http_ok)):
            return url
        raise Permanent(
            f"{what} is at {url[:120]!r}, not a public https:// address: Zalo fetches pictures "
            "itself, over https",
            code="picture",
        )

    def _verify(self, process: str) -> str:
        """Turn create's process token into the article id; the article exists from here on."""
        for delay in (*VERIFY_DELAYS, None):
            try:
                data = self._request(
                    "POST", "/v2.0/article/verify", op="read", json={"token": process}
                )
            except ChannelError as exc:
                if exc.code == "-214" and delay is not None:
                    self._sleep(delay)
                    continue
                raise Ambiguous(
                    f"the article was created but not verified ({exc.reason}); look it up",
                    status=exc.status,
                    code=exc.code,
                ) from exc
            article_id = data.get("id") or data.get("article_id")
            if not article_id:
                raise Ambiguous("Zalo verified the article without an id; look it up")
            return str(article_id)
        raise AssertionError("unreachable")  # the last try has no delay and raises

    def _link(self, article_id: str) -> str | None:
        try:
            data = self._request(
                "GET", "/v2.0/article/getdetail", op="read", params={"id": article_id}
            )
        except ChannelError as exc:
            logger.warning("zalo %s: no link for article %s: %s", self.channel.id, article_id, exc)
            return None
        link = data.get("link") or data.get("link_view")
        return str(link) if link else None

    def _broadcast(self, article_id: str) -> str:
        """Send the article to followers; a failure here never un-publishes the article."""
        element = {"media_type": "article", "attachment_id": article_id}
        payload = {"template_type": "media", "elements": [element]}
        body = {
            "recipient": {"target": {}},  # no target key means everyone
            "message": {"attachment": {"type": "template", "payload": payload}},
        }
        try:
            self._request("POST", "/v2.0/oa/message", op="create", json=body)
        except ChannelError as exc:
            logger.warning(
                "zalo %s: article %s not broadcast: %s", self.channel.id, article_id, exc
            )
            return f"failed: {exc.reason}"
        return "sent"

    # -- requests -------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        op: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One API call; ``op`` "create" may create something, so unclear failures are ambiguous.

        A rejected access token is refreshed once (single-flight) and the call retried once.
        """
        token = self.tokens.access_token()
        body, resp = self._send(method, path, token, op=op, json=json, params=params)
        code = _code(body)
        if code in (-216, -220):
            logger.info("zalo %s: access token rejected (%s); refreshing", self.channel.id, code)
            token = self.tokens.access_token(rejected=token)
            body, resp = self._send(method, path, token, op=op, json=json, params=params)
            code = _code(body)
            if code in (-216, -220):
                raise AuthError(
                    f"Zalo rejects a freshly refreshed access token ({code}): {REAUTHORISE}",
                    code=str(code),
                )
        if code:
            raise self._error(code, body, resp, op=op)
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def _send(
        self, method: str, path: str, token: str, *, op: str, json: Any, params: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        with calling(creates=op != "read"):
            resp = self.client.request(
                method, self.api + path, json=json, params=params, headers={"access_token": token}
            )
        self._note_rate(resp)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and _code(body) is not None:
            return body, resp  # Zalo's verdict is in the body, whatever the HTTP status
        status, now = resp.status_code, self.clock.now()
        wait = retry_after_seconds(resp.headers.get("Retry-After"), now)
        said = f"Zalo answered HTTP {status} without an error code"
        if status == 429:
            raise Throttled(said, until=until(now, wait or THROTTLE_S), status=status)
        if status >= 500 or 200 <= status < 300:
            if op == "create":
                raise Ambiguous(f"{said}; it may have acted", status=status)
            raise Temporary(said, retry_after=wait, status=status)
        if status in (401, 403):
            raise AuthError(f"{said}: check the app's permissions", status=status)
        raise Permanent(f"{said}: check api_base_url {self.api}", status=status)

    def _error(
        self, code: int, body: Mapping[str, Any], resp: httpx.Response, *, op: str
    ) -> ChannelError:
        message = " ".join(str(body.get("message") or "").split())[:200]
        said = f"Zalo error {code}" + (f": {message}" if message else "")
        now, c = self.clock.now(), str(code)
        if code == -32:
            wait = retry_after_seconds(resp.headers.get("Retry-After"), now) or THROTTLE_S
            return Throttled(said, until=until(now, wait), code=c)
        if code == -223:
            return Throttled(
                f"{said}; waiting {QUOTA_S / 3600:.0f} h", until=until(now, QUOTA_S), code=c
            )
        if code == -234:
            return Temporary(f"{said}; not before 06:00", retry_after=_until_morning(now), code=c)
        if code == -214:
            return Temporary(said, retry_after=VERIFY_DELAYS[0], code=c)
        if code in (-100, -200):
            if op == "create":
                return Ambiguous(f"{said}; it may have been created", code=c)
            return Temporary(said, code=c)
        return Permanent(said, code=c)

    def _note_rate(self, resp: httpx.Response) -> None:
        limit = _int(resp.headers.get("X-RateLimit-Limit"))
        remain = _int(resp.headers.get("X-RateLimit-Remain"))
        if remain is None:
            return
        if remain <= 0:
            self._pace = 60.0  # the limit is per minute
        elif limit and remain < limit / 10:
            self._pace = 60.0 / remain
        else:
            self._pace = 0.0

    # -- tokens ---------------------------------------------------------------------------------

    def _oauth_refresh(self, refresh_token: str) -> Tokens:
        if not self._app_secret:
            raise AuthError("the channel's app_secret secret is empty: set it")
        form = {
            "refresh_token": refresh_token,
            "app_id": self.app_id,
            "grant_type": "refresh_token",
        }
        # Nothing is created: if Zalo rotated meanwhile and the answer was lost, the next refresh
        # is refused and asks for re-authorisation.
        with calling(creates=False, doing="refreshing the Zalo access token"):
            resp = self.client.post(
                self.oauth + "/v4/oa/access_token",
                data=form,
                headers={"secret_key": self._app_secret},
            )
        try:
            body = resp.json()
        except ValueError:
            body = None
        status = resp.status_code
        if not isinstance(body, dict):
            raise Temporary(f"Zalo's token endpoint answered HTTP {status} without JSON")
        code = _code(body)
        if code:
            name = " ".join(str(body.get("error_name") or body.get("message") or "").split())
            if -15000 < code <= -14000:
                raise AuthError(
                    f"Zalo refused the refresh token ({code}): {REAUTHORISE}", code=str(code)
                )
            raise Temporary(f"Zalo's token endpoint answered {code} {name[:120]}", code=str(code))
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            raise Temporary(f"Zalo's token endpoint answered HTTP {status} without a token pair")
        seconds = _int(body.get("expires_in")) or DEFAULT_EXPIRES_S  # a string in Zalo's docs
        return Tokens(access, refresh, self.clock.now() + timedelta(seconds=seconds))


def _reading(item: Mapping[str, Any], call: str) -> Reading:
    """An article's figures as Zalo gave them; a missing or unreadable one is None."""
    views, shares = _int(item.get("total_view")), _int(item.get("total_share"))
    return Reading(
        views=views if views is not None and views >= 0 else None,
        shares=shares if shares is not None and shares >= 0 else None,
        source=f"Zalo article/{call}: total_view, total_share",
    )


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _label(what: str, media: Media) -> str:
    """How messages name a picture: "the cover bia-3f2a9c1d0b7e.jpg", "picture 2"."""
    return f"{what} {media.name}" if media.name else what


def _paragraphs(body: str) -> list[str]:
    """Blank-line-separated paragraphs, HTML-escaped, single newlines as <br>."""
    parts = re.split(r"\n[ \t]*\n", body.replace("\r\n", "\n"))
    out = []
    for part in parts:
        lines = [html.escape(line.strip(), quote=False) for line in part.strip().split("\n")]
        if any(lines):
            out.append("<br>".join(lines))
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _code(body: Mapping[str, Any]) -> int | None:
    return _int(body.get("error"))


def _created(item: Mapping[str, Any]) -> datetime | None:
    """``create_date``/``created_date`` in ms or s since the epoch, or ISO text (local if naive)."""
    value = item.get("create_date", item.get("created_date"))
    if (isinstance(value, int | float) and not isinstance(value, bool)) or _int(value) is not None:
        n = float(value)
        return datetime.fromtimestamp(n / 1000 if n > 1e11 else n, UTC)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=VIETNAM)
    return None


def _until_morning(now: datetime) -> float:
    """Seconds until the next 06:00 in Vietnam (Zalo refuses some sends from 22:00 to 06:00)."""
    local = now.astimezone(VIETNAM)
    morning = local.replace(hour=6, minute=0, second=0, microsecond=0)
    if morning <= local:
        morning += timedelta(days=1)
    return (morning - local).total_seconds()
