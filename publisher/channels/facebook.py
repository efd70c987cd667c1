"""Facebook Page adapter (Graph API): publish text and pictures, find a post again by its
exact text, check the token.

Owns the Graph error codes → outcome classes and the usage-header pacing; never reads the
environment, never puts the Page token anywhere but the Authorization header.

What followers see is exactly the approved ``message``: no reconciliation marker is added.
A post whose answer was lost is found again by its text (``lookup``).

Pictures (``Outgoing.media``, the cover first), as the Graph API documents them
(developers.facebook.com/docs/graph-api/photo-uploads, …/reference/page/photos):

- none: ``POST /{page}/feed`` with ``message`` (and ``link``);
- one: ``POST /{page}/photos`` with ``caption`` = the message and the file as multipart
  ``source`` (or ``url`` for a picture that is only an address): the photo *is* the post;
- several: each uploaded with ``published=false`` (no story, nothing a follower sees), then
  ``POST /{page}/feed`` with ``message`` and ``attached_media[i]={"media_fbid":"<photo id>"}``
  form fields, one per photo, in order.

``link`` goes with text-only posts: a photo post shows its photos, not a link preview.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

from publisher.channels.base import (
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
    Unreachable,
    calling,
    retry_after_seconds,
)
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Channel, FacebookSettings, settings_as
from publisher.config.graph_metrics import BY_NAME, FIGURES, names_for
from publisher.metrics import Reading
from publisher.tokens import TokenStore

logger = logging.getLogger(__name__)

AUTH_CODES = frozenset({190, 102, 10, *range(200, 300)})
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 341})
UNKNOWN_CODES = frozenset({1, 2})  # "retry later": the request may still have been carried out
DUPLICATE_CODE = 506  # the same text was posted already, so the post probably exists: reconcile
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage")
DEFAULT_THROTTLE = timedelta(minutes=15)  # when no header says how long the block lasts
LOOKBACK = timedelta(minutes=5)  # published_posts ``since`` starts this long before the attempt
LOOKUP_PAGES = 5  # × 100 posts: far more than a Page publishes in a lookup window
SLOW_FROM = 80.0  # usage % from which pacing() asks the dispatcher to wait
# How long the ids of a post's unpublished photos are reused by its next attempts (see
# FacebookAdapter._unpublished); Graph documents no expiry for them, so this stays short.
PHOTO_REUSE = timedelta(hours=1)


def pacing_delay(usage: float) -> float:
    """Seconds to wait at ``usage`` % of a Graph limit: 0 below 80 %, then 5 s × 12^((u−80)/15),
    i.e. 80 % → 5 s, 85 % → 11 s, 90 % → 26 s, 95 % → 60 s, capped at 120 s from 98 % on."""
    if usage < SLOW_FROM:
        return 0.0
    return min(120.0, 5.0 * math.pow(12.0, (usage - SLOW_FROM) / 15.0))


class FacebookAdapter:
    """Publishes to one Page with its Page token (secret role ``page_token``)."""

    def __init__(
        self,
        channel: Channel,
        client: httpx.Client,
        secrets: Mapping[str, str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        tokens: TokenStore | None = None,  # unused: Page tokens do not rotate
    ) -> None:
        self.channel = channel
        self.client = client
        self.clock = clock
        s = settings_as(channel, FacebookSettings)
        self.page_id = s.page_id
        self.base_url = s.base_url
        version = s.api_version.strip("/")
        self.version = version  # "" → the app's default Graph version
        self.root = self.base_url.rstrip("/") + (f"/{version}" if version else "")
        self._token = secrets.get("page_token", "")
        self._usage = 0.0  # highest usage % in the latest response's headers
        self._warned = False
        # (idempotency key, picture) → (unpublished photo id, when uploaded): see _unpublished
        self._photos: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._photos_lock = threading.Lock()
        self._refused: set[str] = set()  # metric names this Graph version refused (#100)

    # -- the interface ---------------------------------------------------------------------

    def publish(self, post: Outgoing) -> Receipt:
        message = post.fields["message"]
        pictures = _pictures(post)
        if len(pictures) > 1:
            receipt = self._album(post, message, pictures)
        elif pictures:
            body = self._photo(pictures[0], caption=message)
            remote = body.get("post_id") or body.get("id")
            if not remote:
                raise Ambiguous("Facebook answered /photos without a post id; the post may exist")
            extra = {"photo_id": str(body["id"])} if body.get("id") else {}
            receipt = Receipt(str(remote), self._permalink(str(remote)), extra)
        else:
            data = {"message": message}
            if post.fields.get("link"):
                data["link"] = post.fields["link"]
            body = self._call("POST", f"{self.root}/{self.page_id}/feed", data=data)
            if not body.get("id"):
                raise Ambiguous("Facebook answered /feed without a post id; the post may exist")
            remote = str(body["id"])
            receipt = Receipt(remote, self._permalink(remote))
        logger.debug(
            "%s: published post %s as %s", self.channel.id, post.post_id, receipt.remote_id
        )
        return receipt

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        """The post published with exactly ``post``'s message since ``since`` − LOOKBACK, that
        no other post owns (``post.exclude``: the same slogan may go out twice).

        Texts are compared after NFC and with every run of whitespace as one space, ends
        trimmed: we assume Facebook keeps the words and their order but may trim trailing
        spaces, turn \\r\\n into \\n or fold blank lines. A photo post's ``message`` is its
        caption, so photo and multi-photo posts are found the same way. ``created_time`` is
        checked here as well as by Graph's ``since``; an item without one is trusted to Graph.
        """
        wanted = _same_text(post.fields.get("message", ""))
        if not wanted:
            logger.warning("%s: post %s has no text to look up", self.channel.id, post.post_id)
            return None
        start = since - LOOKBACK
        url: str | None = f"{self.root}/{self.page_id}/published_posts"
        params: dict[str, str] | None = {
            "fields": "id,message,created_time,permalink_url",
            "since": str(math.floor(start.timestamp())),
            "limit": "100",
        }
        for _ in range(LOOKUP_PAGES):
            if url is None:
                break
            body = self._call("GET", url, params=params)
            data = body.get("data")
            for item in data if isinstance(data, list) else []:
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                remote = str(item["id"])
                if remote in post.exclude or _created_before(item, start):
                    continue
                if _same_text(str(item.get("message") or "")) == wanted:
                    return Receipt(remote, item.get("permalink_url") or self._post_url(remote))
            url, params = self._next_page(body), None
        return None

    # -- pictures ----------------------------------------------------------------------------

    def _album(self, post: Outgoing, message: str, pictures: tuple[Media, ...]) -> Receipt:
        """Several pictures: unpublished photos, then one feed post that attaches them."""
        try:
            ids = [self._unpublished(post, picture) for picture in pictures]
            data = {"message": message}
            for n, photo in enumerate(ids):
                media = json.dumps({"media_fbid": photo}, separators=(",", ":"))
                data[f"attached_media[{n}]"] = media
            body = self._call("POST", f"{self.root}/{self.page_id}/feed", data=data)
        except Permanent:
            self._forget(post)  # whatever was wrong, the next approval starts afresh
            raise
        if not body.get("id"):
            raise Ambiguous("Facebook answered /feed without a post id; the post may exist")
        self._forget(post)
        remote = str(body["id"])
        return Receipt(remote, self._permalink(remote), {"photo_ids": ",".join(ids)})

    def _unpublished(self, post: Outgoing, picture: Media) -> str:
        """The id of ``picture`` uploaded with ``published=false`` for ``post``.

        An unpublished photo is no post: no follower sees it, and the post exists only once
        the feed call attaches it. So an upload whose answer was lost (network, 5xx, code
        1/2) is Temporary, not Ambiguous: there is nothing to look up, the post is simply
        tried again. That retry may leave one invisible, unattached photo on the Page per lost
        answer; we accept that. Photos whose upload was answered are not uploaded again: their
        ids are kept for this post's later attempts by this adapter for PHOTO_REUSE (kept in
        memory only: a restarted daemon uploads again, with the same invisible leftovers)."""
        key = (post.idempotency_key, _identity(picture))
        now = self.clock.now()
        with self._photos_lock:
            for old in [k for k, (_, at) in self._photos.items() if now - at >= PHOTO_REUSE]:
                del self._photos[old]
            kept = self._photos.get(key)
        if kept is not None:
            return kept[0]
        body = self._photo(picture, published=False)
        photo = body.get("id")
        if not photo:
            raise Temporary("Facebook answered an unpublished photo upload without its id")
        with self._photos_lock:
            self._photos[key] = (str(photo), now)
        return str(photo)

    def _photo(
        self, picture: Media, *, caption: str | None = None, published: bool = True
    ) -> dict[str, Any]:
        """``POST /{page}/photos`` for one picture: its bytes as multipart ``source`` (the
        approved file, already within Facebook's limits), or its ``url`` when it is only an
        address. An unpublished upload creates no post (``creates=False``: see _unpublished).

        Alt text goes as ``alt_text_custom``. Meta's Photo reference documents the field
        ("User provided accessible alternative description for an image",
        developers.facebook.com/docs/graph-api/reference/photo); the stored copy of the Page
        Photos reference does not show its upload parameters, but Meta's generated Business
        SDK lists ``alt_text_custom`` (string) among the parameters of ``POST
        /{page-id}/photos`` (facebook-python-business-sdk, facebook_business/adobjects/page.py,
        ``Page.create_photo``). A decorative picture (alt "") sends none."""
        data: dict[str, str] = {}
        if caption is not None:
            data["caption"] = caption
        if not published:
            data["published"] = "false"
        if picture.alt:
            data["alt_text_custom"] = picture.alt
        url = f"{self.root}/{self.page_id}/photos"
        if picture.is_file:
            name = picture.name or "photo"
            source = (name, picture.data, picture.mime or "application/octet-stream")
            return self._call("POST", url, data=data, files={"source": source}, creates=published)
        if not picture.url:
            raise Permanent(f"picture {picture.name or picture.role!r} has neither bytes nor URL")
        data["url"] = picture.url
        return self._call("POST", url, data=data, creates=published)

    def _forget(self, post: Outgoing) -> None:
        with self._photos_lock:
            for key in [k for k in self._photos if k[0] == post.idempotency_key]:
                del self._photos[key]

    # -- figures (publisher.metrics.MetricsReader) -----------------------------------------

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        """The post's lifetime figures: views, reactions by type and clicks from
        ``GET /{post-id}/insights?metric=…`` (names from config.graph_metrics, by version),
        comments and shares from ``GET /{post-id}?fields=shares,comments.summary(true)``.

        Graph leaves ``shares`` out of a post nobody shared (it omits fields without a value),
        so a post read without it has 0 shares; ``comments`` without its summary (the token
        lacks the permission to read them) is None, as is every figure whose metric this
        version refuses (#100) under all its names. Same token, error mapping and usage
        pacing as publishing: a read is one more Graph call."""
        insights = self._insights(remote_id)
        fields = self._call(
            "GET", f"{self.root}/{remote_id}", params={"fields": "shares,comments.summary(true)"}
        )
        shares_node = fields.get("shares")
        shares = _count(shares_node.get("count")) if isinstance(shares_node, dict) else 0
        comments_node = fields.get("comments")
        summary = comments_node.get("summary") if isinstance(comments_node, dict) else None
        comments = _count(summary.get("total_count")) if isinstance(summary, dict) else None
        by_type = insights.get("reactions")
        reactions_by_type = (
            {str(k): n for k, v in by_type.items() if (n := _count(v)) is not None}
            if isinstance(by_type, dict)
            else None
        )
        used = ", ".join(self._used(insights))
        version = self.version
        return Reading(
            views=_count(insights.get("views")),
            reactions=sum(reactions_by_type.values()) if reactions_by_type is not None else None,
            reactions_by_type=reactions_by_type,
            comments=comments,
            shares=shares,
            clicks=_count(insights.get("clicks")),
            source=f"Graph {version or 'default version'}: {used}, shares, comments",
        )

    def _insights(self, remote_id: str) -> dict[str, Any]:
        """figure → the value of its first metric name Graph accepts (figures it refuses under
        every name are left out); ``"names"`` → the names that answered, for the source."""
        wanted = {
            f: [n for n in names_for(self.version, f) if n not in self._refused] for f in FIGURES
        }
        first = [names[0] for names in wanted.values() if names]
        if not first:
            return {}
        try:
            return self._read_insights(remote_id, first)
        except Permanent as exc:
            if not _invalid_metric(exc):
                raise
        # Which name was refused, Graph does not say: ask for each figure alone, moving on to
        # its next name at each refusal (and remembering refusals for the next posts).
        found: dict[str, Any] = {"names": []}
        for names in wanted.values():
            for name in names:
                try:
                    one = self._read_insights(remote_id, [name])
                except Permanent as exc:
                    if not _invalid_metric(exc):
                        raise
                    logger.info("%s: Graph refuses metric %s", self.channel.id, name)
                    self._refused.add(name)
                    continue
                found["names"] += one.pop("names")
                found.update(one)
                break
        return found

    def _read_insights(self, remote_id: str, names: list[str]) -> dict[str, Any]:
        body = self._call(
            "GET", f"{self.root}/{remote_id}/insights", params={"metric": ",".join(names)}
        )
        found: dict[str, Any] = {"names": []}
        data = body.get("data")
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict) or item.get("name") not in names:
                continue
            values = item.get("values")
            last = values[-1] if isinstance(values, list) and values else None
            value = last.get("value") if isinstance(last, dict) else None
            found["names"].append(str(item["name"]))
            found.setdefault(BY_NAME[str(item["name"])].figure, value)
        return found

    @staticmethod
    def _used(insights: Mapping[str, Any]) -> list[str]:
        names = insights.get("names")
        return [str(n) for n in names] if isinstance(names, list) else []

    def check(self) -> CheckResult:
        if not self._token:
            return CheckResult(False, self._no_token())
        try:
            body = self._call("GET", f"{self.root}/{self.page_id}", params={"fields": "id,name"})
        except AuthError as exc:
            return CheckResult(
                False, f"the Page token is invalid or expired (code {exc.code}): {exc.reason}"
            )
        except ChannelError as exc:
            if exc.status is None:  # no answer at all
                reachable = not isinstance(exc, Unreachable)
                detail = f"cannot reach {self.base_url}: {exc.reason}"
                return CheckResult(False, detail, reachable=reachable)
            return CheckResult(False, f"{self.base_url} answered: {exc.reason}")
        name = body.get("name") or "?"
        return CheckResult(True, f"Page “{name}” ({body.get('id', self.page_id)}): token accepted")

    def pacing(self) -> float:
        return pacing_delay(self._usage)

    # -- the wire --------------------------------------------------------------------------

    def _call(
        self, method: str, url: str, *, creates: bool | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One Graph request → its JSON object, or the outcome exception for its answer.
        ``creates``: whether it may create a post (default: every request but a GET); a
        request that cannot turns a lost answer into Temporary instead of Ambiguous."""
        write = method != "GET" if creates is None else creates
        if not self._token:
            raise AuthError(self._no_token())
        headers = {"Authorization": f"Bearer {self._token}"}
        doing = "" if write or method == "GET" else "uploading an unpublished photo"
        with calling(creates=write, doing=doing):  # never sent → Unreachable
            response = self.client.request(method, url, headers=headers, **kwargs)
        self._note_usage(response)
        try:
            body = response.json()
        except ValueError as exc:
            if response.is_success:
                problem = f"Facebook answered HTTP {response.status_code} with no JSON"
                if write:
                    raise Ambiguous(problem + "; the post may exist") from exc
                raise Temporary(problem, status=response.status_code) from exc
            raise self._error(response, {}, write) from exc
        if not isinstance(body, dict):
            body = {}
        if response.is_success and "error" not in body:
            return body
        raise self._error(response, body, write)

    def _error(self, response: httpx.Response, body: dict[str, Any], write: bool) -> ChannelError:
        """Map a Graph error answer to its outcome class, by ``error.code`` before HTTP status."""
        status = response.status_code
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        code, sub = _int(error.get("code")), _int(error.get("error_subcode"))
        label = None if code is None else f"{code}/{sub}" if sub is not None else str(code)
        text = self._scrub(str(error.get("message") or "")[:300])
        head = f"Facebook error {label} (HTTP {status})" if code is not None else f"HTTP {status}"
        head = f"{head}: {text}" if text else f"{head} without a Graph error body"
        outcome: ChannelError
        if code in AUTH_CODES:
            outcome = AuthError(f"{head}; re-authorise the Page token", status=status, code=label)
        elif code in THROTTLE_CODES or (code is None and status == 429):
            until = self._throttled_until(response)
            reason = f"{head}; throttled until {until.isoformat()}"
            outcome = Throttled(reason, until=until, status=status, code=label)
        elif code == DUPLICATE_CODE:
            outcome = Ambiguous(f"{head}; the post probably exists", status=status, code=label)
        elif code in UNKNOWN_CODES or (status >= 500 and code not in (100, 368, 1609005)):
            outcome = Ambiguous(f"{head}; the post may exist", status=status, code=label)
        else:  # 100, 368, 1609005, other codes and error bodies Graph does not explain
            outcome = Permanent(head, status=status, code=label)
        if isinstance(outcome, Ambiguous) and not write:  # no post can have been made
            return Temporary(head, status=status, code=outcome.code)
        return outcome

    def _throttled_until(self, response: httpx.Response) -> datetime:
        now = self.clock.now()
        waits = [retry_after_seconds(response.headers.get("Retry-After"), now) or 0.0]
        for name in USAGE_HEADERS:
            for figures in self._usage_entries(response, name, page_only=True):
                minutes = figures.get("estimated_time_to_regain_access")
                if isinstance(minutes, int | float) and not isinstance(minutes, bool):
                    waits.append(float(minutes) * 60.0)
        wait = max(waits)
        return now + (timedelta(seconds=wait) if wait > 0 else DEFAULT_THROTTLE)

    def _note_usage(self, response: httpx.Response) -> None:
        """Remember the highest usage % of this response (0 when Graph sends no usage headers)."""
        usage = 0.0
        for name in USAGE_HEADERS:
            for figures in self._usage_entries(response, name, page_only=False):
                for key in ("call_count", "total_time", "total_cputime"):
                    value = figures.get(key)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        usage = max(usage, float(value))
        self._usage = usage
        if usage < SLOW_FROM:
            self._warned = False
        elif not self._warned:
            self._warned = True
            logger.warning(
                "%s: Graph API usage at %.0f%%; pacing requests %.0f s apart",
                self.channel.id,
                usage,
                pacing_delay(usage),
            )

    def _usage_entries(
        self, response: httpx.Response, name: str, *, page_only: bool
    ) -> list[dict[str, Any]]:
        """The figure dicts of one usage header; BUC entries of this Page first when asked."""
        raw = response.headers.get(name)
        if not raw:
            return []
        try:
            value = json.loads(raw)
        except ValueError:
            logger.debug("%s: unreadable %s header ignored", self.channel.id, name)
            return []
        if not isinstance(value, dict):
            return []
        if name != "X-Business-Use-Case-Usage":
            return [value]
        if page_only and self.page_id in value:
            value = {self.page_id: value[self.page_id]}
        entries = [e for group in value.values() if isinstance(group, list) for e in group]
        return [e for e in entries if isinstance(e, dict)]

    def _permalink(self, remote: str) -> str:
        """The post's permalink, asked for once; a failure keeps the constructed URL."""
        if self.pacing() > 0:  # near a limit: not worth a call
            return self._post_url(remote)
        try:
            body = self._call("GET", f"{self.root}/{remote}", params={"fields": "permalink_url"})
        except Exception as exc:  # the post is published: nothing here may turn that into an error
            reason = exc.reason if isinstance(exc, ChannelError) else type(exc).__name__
            logger.info("%s: no permalink for %s (%s)", self.channel.id, remote, reason)
            return self._post_url(remote)
        link = body.get("permalink_url")
        return link if isinstance(link, str) and link else self._post_url(remote)

    def _next_page(self, body: dict[str, Any]) -> str | None:
        """``paging.next`` without the token Graph puts in it, and only on our own host."""
        paging = body.get("paging")
        nxt = paging.get("next") if isinstance(paging, dict) else None
        if not isinstance(nxt, str) or not nxt or not body.get("data"):
            return None
        url, base = httpx.URL(nxt), httpx.URL(self.base_url)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            logger.warning("%s: paging.next leaves %s; not followed", self.channel.id, base.host)
            return None
        return str(url.copy_remove_param("access_token"))

    def _no_token(self) -> str:
        cid = self.channel.id
        return f"no Page token: set the variable named by [channels.{cid}.secrets] page_token"

    @staticmethod
    def _post_url(remote: str) -> str:
        return f"https://www.facebook.com/{remote}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text


def _int(value: object) -> int | None:
    """A Graph code as an int (Graph sends numbers; be lenient with numeric strings)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _count(value: object) -> int | None:
    """A figure Graph gave as a whole number ≥ 0 (else None: never an invented zero)."""
    number = _int(value)
    return number if number is not None and number >= 0 else None


def _invalid_metric(exc: ChannelError) -> bool:
    """Whether ``exc`` is Graph's #100 refusal of an insights metric name."""
    code = (exc.code or "").split("/")[0]
    return code == "100" and "valid insights metric" in exc.reason


def _pictures(post: Outgoing) -> tuple[Media, ...]:
    """The post's pictures, each once (the same file or address twice is one photo)."""
    seen: set[str] = set()
    unique = []
    for picture in post.media:
        if _identity(picture) not in seen:
            seen.add(_identity(picture))
            unique.append(picture)
    return tuple(unique)


def _identity(picture: Media) -> str:
    return picture.sha256 or picture.url or picture.name


def _same_text(text: str) -> str:
    """``text`` as lookups compare it: NFC, every run of whitespace one space, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _created_before(item: dict[str, Any], start: datetime) -> bool:
    """Whether the item's ``created_time`` (ISO 8601, "+0000") is before ``start``; an item
    without a readable one is left to Graph's ``since``."""
    raw = item.get("created_time")
    if not isinstance(raw, str) or not raw:
        return False
    try:
        created = datetime.fromisoformat(raw)
    except ValueError:
        return False
    return created.tzinfo is not None and created < start
