"""Zalo Official Account: the Article API and OAuth v4 (platform-apis.md §2, §7).

Paths are relative to ``/zalo``: ``/openapi/...`` ≙ openapi.zalo.me, ``/oauth/...`` ≙
oauth.zaloapp.com. Every answer is HTTP 200 with ``error`` 0 or negative (the gateway's own 5xx
excepted). Refresh tokens are single-use and rotate; a refresh also kills the previous access
token. Articles are created asynchronously: ``create`` gives a process token, ``verify`` answers
-214 while the article is processed, then its id.

Pictures are addresses Zalo fetches itself (its upload call answers -209 for articles, §7): the
cover's ``photo_url`` and each image block's ``url`` must be https:// (this imitation fetches
nothing, so any https address passes), or an address on this imitation itself, which stands in
for the public internet (the portal imitation's uploads); an image block's ``caption`` is
optional text.
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from publisher.sandbox import credentials
from tests.imitation.core import Request, Response, json_response, text_response, utcnow

if TYPE_CHECKING:
    from tests.imitation.server import Imitation

ACCESS_LIFETIME = 90000  # seconds (25 h), sent as the string "90000"
REFRESH_LIFETIME = 90 * 86400
TITLE_BELOW = 150  # a title of 150 characters is refused in practice: fewer than 150
AUTHOR_MAX, DESCRIPTION_MAX = 50, 300
PAGE_MAX = 10  # getslice gives at most 10 a call
PROCESSING_S = 1.0  # real seconds an article stays "being processed" unless the plan says
RATE_LIMIT = 4000  # calls a minute (X-RateLimit-Limit)
REF_DOC = (
    "https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new"
)


@dataclass
class Article:
    id: str
    token: str
    title: str
    author: str
    description: str
    cover: dict[str, Any]
    body: list[dict[str, Any]]
    status: str
    comment: str
    created_ms: int
    ready_at: float  # time.time() from which verify gives the id
    removed: bool = False


@dataclass
class Access:
    token: str
    expires_at: float
    alive: bool = True
    used: bool = False  # a token dies early only after it has served a call


@dataclass
class ZaloState:
    refresh: dict[str, float] = field(default_factory=dict)  # live refresh token → expiry
    access: dict[str, Access] = field(default_factory=dict)


def ok(data: Any = None) -> Response:
    body: dict[str, Any] = {"error": 0, "message": "Success"}
    if data is not None:
        body["data"] = data
    return json_response(200, body)


def fail(code: int, message: str) -> Response:
    return json_response(200, {"error": code, "message": message})


def oauth_fail(code: int, name: str, description: str = "") -> Response:
    body = {
        "error": code,
        "error_name": name,
        "error_description": description or name,
        "error_reason": "",
        "ref_doc": REF_DOC,
    }
    answer = json_response(200, body)
    answer.headers["X-Imitation-Refused"] = "1"
    return answer


class Zalo:
    name = "zalo"

    def __init__(self, env: Imitation, app_id: str, oa_id: str) -> None:
        self.env = env
        self.app_id, self.oa_id = app_id, oa_id
        self.app_secret = credentials.ZALO_APP_SECRET
        self.state = ZaloState()
        self.state.refresh[credentials.ZALO_FIRST_REFRESH_TOKEN] = time.time() + REFRESH_LIFETIME
        self.articles: dict[str, Article] = {}  # id → article
        self.by_token: dict[str, Article] = {}  # process token → article
        self.order: list[Article] = []
        self.minute: list[float] = []
        self._n = 0
        self._lock = threading.Lock()

    # -- the fault hooks -----------------------------------------------------------------------

    def throttles(self, req: Request) -> bool:
        return req.path.startswith("/openapi/")

    def expire_token(self, req: Request) -> bool:
        token = _access_token(req)
        with self._lock:
            access = self.state.access.get(token or "")
            if access is None or not access.alive or not access.used:
                return False
            access.alive = False  # dies early, as Zalo's tokens do when revoked
            return True

    def expire_all(self) -> int:
        with self._lock:
            live = [a for a in self.state.access.values() if a.alive and a.used]
            for access in live:
                access.alive = False
        return len(live)

    def server_error(self, req: Request) -> Response:
        status = self.env.dice.choice("zalo-5xx", self.name, req, [502, 503, 504])
        return text_response(status, f"<html><body><h1>{status} Gateway error</h1></body></html>")

    def throttled(self, req: Request, seconds: float) -> Response:
        answer = fail(-32, "Your OA reached limit call api")
        answer.headers.update({"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remain": "0"})
        return answer  # -32 carries no time: a client picks its own wait

    # -- requests --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/")
        if path == "/oauth/v4/oa/access_token" and req.method == "POST":
            return self._oauth(req)
        if not path.startswith("/openapi/"):
            return fail(-209, "API is not support")
        with self._lock:
            now = time.time()
            self.minute = [t for t in self.minute if t > now - 60] + [now]
            answer = self._api(req, path.removeprefix("/openapi"))
            remain = max(0, RATE_LIMIT - len(self.minute))
        answer.headers.update(
            {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remain": str(remain)}
        )
        return answer

    def _oauth(self, req: Request) -> Response:
        form = req.form()
        if str(form.get("app_id", "")) != self.app_id:
            return oauth_fail(-14002, "Invalid appId")
        if (
            self.env.plan.flag(self.name, "bad-credentials")
            or req.header("secret_key") != self.app_secret
        ):
            return oauth_fail(-14004, "Invalid secret key")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return oauth_fail(-14005, "Invalid code", "the imitation grants no authorization codes")
        if grant != "refresh_token":
            return oauth_fail(-14018, "Invalid grant_type")
        old = str(form.get("refresh_token", ""))
        with self._lock:
            expiry = self.state.refresh.pop(old, None)  # single use: gone whatever follows
            if expiry is None or expiry < time.time():
                self.env.stats.add(self.name, "refresh-refused")
                self.env.stats.event(self.name, f"refresh with {old[:10]}… refused: -14014")
                return oauth_fail(-14014, "Invalid refresh token.")
            for access in self.state.access.values():  # the previous access token dies too
                access.alive = False
            access = Access(_new("at"), time.time() + ACCESS_LIFETIME)
            self.state.access[access.token] = access
            refresh = _new("rt")
            self.state.refresh[refresh] = time.time() + REFRESH_LIFETIME
        self.env.stats.add(self.name, "refreshes")
        self.env.stats.event(self.name, f"refresh with {old[:10]}… gave {refresh[:10]}…", "refresh")
        return json_response(
            200,
            {
                "access_token": access.token,
                "refresh_token": refresh,
                "expires_in": str(ACCESS_LIFETIME),
                "refresh_token_expires_in": str(REFRESH_LIFETIME),
            },
        )

    def _api(self, req: Request, path: str) -> Response:
        refused = self._refuse_token(req)
        if refused is not None:
            refused.headers["X-Imitation-Refused"] = "1"
            return refused
        if self.env.plan.flag(self.name, "bad-credentials"):
            return self._refused(-216, "Access token is invalid")
        body = req.json() if req.method == "POST" else None
        body = body if isinstance(body, dict) else {}
        match (req.method, path):
            case ("POST", "/v2.0/article/create"):
                return self._create(body, req.host_base())
            case ("POST", "/v2.0/article/verify"):
                return self._verify(body)
            case ("GET", "/v2.0/article/getslice"):
                return self._slice(req)
            case ("GET", "/v2.0/article/getdetail"):
                return self._detail(req.q("id") or "")
            case ("POST", "/v2.0/article/remove"):
                return self._remove(str(body.get("id", "")))
            case ("GET", "/v2.0/oa/getoa"):
                return ok(
                    {
                        "oaid": self.oa_id,
                        "name": "Sở Tư pháp tỉnh Bắc Giang (imitation)",
                        "description": "Official Account imitation",
                        "is_verified": True,
                        "oa_type": 4,
                        "num_follower": 2400,
                    }
                )
            case ("POST", "/v2.0/oa/message"):
                return self._broadcast(body)
        return fail(-209, "API is not support")

    def _refuse_token(self, req: Request) -> Response | None:
        token = _access_token(req)
        if not token:
            return fail(-216, "Access token is invalid")
        access = self.state.access.get(token)
        if access is None or not access.alive:
            return fail(-216, "Access token is invalid")
        if access.expires_at < time.time():
            return fail(-220, "Access token is expired")
        access.used = True
        return None

    @staticmethod
    def _refused(code: int, message: str) -> Response:
        answer = fail(code, message)
        answer.headers["X-Imitation-Refused"] = "1"
        return answer

    def _create(self, b: dict[str, Any], own: str = "") -> Response:
        if b.get("type", "normal") != "normal":
            return fail(-201, "type is invalid")
        title = _nfc(b.get("title"))
        author, description = _nfc(b.get("author")), _nfc(b.get("description"))
        if not title.strip():
            return fail(-201, "title is invalid")
        if len(title) >= TITLE_BELOW:
            return fail(-210, f"Parameter exceeds allowable limit: title ({len(title)} characters)")
        if len(author) > AUTHOR_MAX:
            return fail(
                -210, f"Parameter exceeds allowable limit: author ({len(author)} characters)"
            )
        if len(description) > DESCRIPTION_MAX:
            return fail(
                -210, f"Parameter exceeds allowable limit: description ({len(description)})"
            )
        cover = b.get("cover")
        if not _valid_cover(cover, own):
            return fail(-201, "cover is invalid")
        body = b.get("body")
        if not _valid_body(body, own):
            return fail(-201, "body is invalid")
        for key in ("status", "comment"):
            if b.get(key, "show") not in ("show", "hide"):
                return fail(-201, f"{key} is invalid")
        self._n += 1
        processing = self.env.plan.processing.get(self.name, self.env.plan.processing.get("*"))
        article = Article(
            id=_id(self.env.seed, "article", self._n),
            token=_new("pt"),
            title=title,
            author=author,
            description=description,
            cover=dict(cover),  # type: ignore[arg-type]
            body=list(body),  # type: ignore[arg-type]
            status=str(b.get("status", "hide")),
            comment=str(b.get("comment", "show")),
            created_ms=int(utcnow().timestamp() * 1000),
            ready_at=time.time() + (PROCESSING_S if processing is None else processing),
        )
        self.articles[article.id] = article
        self.by_token[article.token] = article
        self.order.append(article)
        text = "\n\n".join(
            str(part.get("content", "")) for part in article.body if part.get("type") == "text"
        )
        self.env.recorder.created(
            self.name,
            self.oa_id,
            article.id,
            title=title,
            text=text,
            kind="article",
            author=author,
            description=description,
            cover=article.cover.get("photo_url", ""),
            images=[
                {"url": part["url"], "caption": part.get("caption", "")}
                for part in article.body
                if part.get("type") == "image"
            ],
        )
        answer = ok({"token": article.token})
        answer.created = True
        return answer

    def _verify(self, b: dict[str, Any]) -> Response:
        article = self.by_token.get(str(b.get("token", "")))
        if article is None:
            return fail(-201, "token is invalid")
        if time.time() < article.ready_at:
            return fail(-214, "Article is being processed")
        return ok({"id": article.id})

    def _slice(self, req: Request) -> Response:
        try:
            offset = max(0, int(req.q("offset") or 0))
            limit = min(PAGE_MAX, max(1, int(req.q("limit") or PAGE_MAX)))
        except ValueError:
            return fail(-201, "offset or limit is invalid")
        kind = req.q("type") or "normal"
        rows = [a for a in reversed(self.order) if not a.removed and kind == "normal"]
        medias = [
            {
                "id": a.id,
                "type": "normal",
                "title": a.title,
                "status": a.status,
                "total_view": 0,
                "total_share": 0,
                "create_date": a.created_ms,
                "update_date": a.created_ms,
                "thumb": a.cover.get("photo_url", ""),
                "link_view": _link(a),
            }
            for a in rows[offset : offset + limit]
        ]
        return ok({"medias": medias, "total": len(rows)})

    def _detail(self, article_id: str) -> Response:
        a = self.articles.get(article_id)
        if a is None or a.removed:
            return fail(-201, "id is invalid")
        return ok(
            {
                "id": a.id,
                "type": "normal",
                "title": a.title,
                "author": a.author,
                "description": a.description,
                "cover": a.cover,
                "body": a.body,
                "status": a.status,
                "comment": a.comment,
                "create_date": a.created_ms,
                "link": _link(a),
                "cite": {},
            }
        )

    def _remove(self, article_id: str) -> Response:
        a = self.articles.get(article_id)
        if a is None or a.removed:
            return fail(-201, "id is invalid")
        a.removed = True
        self.env.recorder.deleted(self.name, self.oa_id, a.id)
        return ok()

    def _broadcast(self, b: dict[str, Any]) -> Response:
        try:
            elements = b["message"]["attachment"]["payload"]["elements"]
            ids = [str(e["attachment_id"]) for e in elements]
        except (KeyError, TypeError):
            return fail(-201, "message is invalid")
        if not ids or len(ids) > 5 or any(i not in self.articles for i in ids):
            return fail(-201, "attachment_id is invalid")
        self._n += 1
        message_id = _id(self.env.seed, "message", self._n)
        self.env.recorder.created(
            self.name, self.oa_id, message_id, title="", text=",".join(ids), kind="broadcast"
        )
        answer = ok({"message_id": message_id})
        answer.created = True
        return answer


def _id(seed: int, kind: str, n: int) -> str:
    """A 32-hex-digit id, the same for the same seed and rank."""
    return hashlib.sha256(f"{seed}|{kind}|{n}".encode()).hexdigest()[:32]


def _access_token(req: Request) -> str | None:
    return req.header("access_token") or req.q("access_token")


def _new(prefix: str) -> str:
    import secrets

    return f"{prefix}-{secrets.token_urlsafe(24)}"


def _nfc(value: Any) -> str:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else ""


def _valid_cover(cover: Any, own: str = "") -> bool:
    """A photo cover at a public https URL (Zalo fetches it), or a video cover with its id."""
    if not isinstance(cover, dict) or cover.get("status", "show") not in ("show", "hide"):
        return False
    if cover.get("cover_type") == "video":
        return bool(cover.get("video_id"))
    return cover.get("cover_type") == "photo" and _https(cover.get("photo_url"), own)


def _valid_body(body: Any, own: str = "") -> bool:
    if not isinstance(body, list) or not body:
        return False
    return all(_valid_part(part, own) for part in body)


def _valid_part(part: Any, own: str = "") -> bool:
    if not isinstance(part, dict):
        return False
    kind = part.get("type")
    if kind == "text":
        return bool(str(part.get("content") or "").strip())
    if kind == "image":
        caption = part.get("caption", "")
        return _https(part.get("url"), own) and isinstance(caption, str)
    if kind == "video":
        return _https(part.get("url"))
    return kind == "product" and bool(part.get("id"))


def _https(url: Any, own: str = "") -> bool:
    """An https address — or one on this imitation itself (``own``, its ``http://host:port``),
    which stands in for the public internet: the portal imitation's uploads are there."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if own and url.startswith(own + "/"):
        return True
    return parts.scheme == "https" and bool(parts.hostname)


def _link(a: Article) -> str:
    return f"https://zalo.me/oa/article/{a.id}"
