"""The sandbox's Zalo OA Open API (``/zalo/openapi``): articles, verify, broadcast and getoa.

Errors are HTTP 200 with a negative ``error`` (§2 of platform-apis.md), except injected 5xx faults.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from publisher.sandbox.faults import Fired
from publisher.sandbox.media import LIMITS
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router
from publisher.sandbox.zalo_oauth import ERROR_PAGE, ZaloTokens
from publisher.sandbox.zalo_store import Article, check_article

OA_ID = "2000000000000000000"
RATE_LIMIT = 4000  # calls per minute, as X-RateLimit-Limit says
MESSAGES = {
    -32: "Your application reached limit call api",
    -100: "An unknown error occurred",
    -201: "{} is invalid!",
    -209: "Not supported this api",
    -210: "Parameter exceeds allowable limit: {}",
    -214: "Article is being processed",
    -216: "Access token is invalid",
    -220: "access_token is expired or removed",
    -240: "MessageV2 API has been shut down, please switch to MessageV3",
}
PROFILE = {
    "oaid": OA_ID,
    "name": "OA Sandbox Sở Tư pháp",
    "description": "Zalo OA of the local sandbox",
    "is_verified": True,
    "oa_type": 4,  # government
    "cate_name": "Cơ quan nhà nước",
    "num_follower": 1000,
    "avatar": "",
    "cover": "",
}
Endpoint = Callable[[Request, Fired], Response]


def fail(code: int, what: str = "") -> Response:
    return Response.json({"error": code, "message": MESSAGES[code].format(what)})


def ok(data: dict[str, Any] | None = None) -> Response:
    return Response.json({"error": 0, "message": "Success", "data": data or {}})


class Zalo:
    def __init__(self, ctx: Context, tokens: ZaloTokens) -> None:
        self.ctx = ctx
        self.tokens = tokens
        self.articles: dict[str, Article] = {}
        self.seq = 0
        self._calls: deque[float] = deque()

    def register(self, router: Router) -> None:
        base = r"/zalo/openapi/v2\.0"
        for method, path, op, endpoint in (
            ("POST", "/article/create", "create", self.create),
            ("POST", "/article/verify", "verify", self.verify),
            ("GET", "/article/getslice", "read", self.getslice),  # reads: only read-fail
            ("GET", "/article/getdetail", "read", self.getdetail),
            ("POST", "/article/remove", None, self.remove),
            ("POST", "/oa/message", "broadcast", self.broadcast),
            ("GET", "/oa/getoa", None, lambda req, fired: ok(dict(PROFILE))),
        ):
            router.add(method, base + path, self.guarded(op, endpoint))
        router.add("*", r"/zalo/openapi(?:/.*)?", lambda req, m: fail(-209))

    def guarded(self, op: str | None, endpoint: Endpoint) -> Callable[..., Response]:
        """Token check, then for writes (``op``) the faults; rate headers and slowness after."""

        def run(req: Request, _: dict[str, str]) -> Response:
            now = time.monotonic()
            self._calls.append(now)
            while self._calls and self._calls[0] < now - 60:
                self._calls.popleft()
            code = self.tokens.check(req.header("access_token") or req.arg("access_token"))
            fired = self.ctx.faults.draw("zalo", op) if op and not code else Fired()
            if not code and "token-expiry" in fired:
                self.tokens.expire()
                code = -216
            if code:
                answer = fail(code)
            elif "read-fail" in fired:
                how = fired.arg("read-fail", "error")
                if how == "token-expiry":
                    self.tokens.expire()
                answer = fail({"throttle": -32, "token-expiry": -216}.get(str(how), -100))
            elif "throttle" in fired:
                answer = fail(-32)
            elif "error-before" in fired:
                answer = Response.html(ERROR_PAGE.replace("500 Internal", "503 Service"), 503)
            else:
                answer = endpoint(req, fired)
                answer.delay = fired.seconds("slow", 1.0) if "slow" in fired else 0.0
            remain = str(max(0, RATE_LIMIT - len(self._calls)))
            answer.headers += [
                ("X-RateLimit-Limit", str(RATE_LIMIT)),
                ("X-RateLimit-Remain", remain),
            ]
            return answer

        return run

    def payload(self, req: Request) -> dict[str, Any] | None:
        """The JSON (or form) body, completed by query parameters; None if unparseable."""
        try:
            data = req.form()
        except BadBody:
            return None
        query = {k: v[-1] for k, v in req.query.items() if k != "access_token"}
        return query | data

    def create(self, req: Request, fired: Fired) -> Response:
        data = self.payload(req)
        if data is None:
            return fail(-201, "body")
        faults = self.ctx.faults
        strict = faults.strict("zalo")
        cover = strict or faults.flag("zalo", "require-cover") is not None
        problem = check_article(data, strict, cover, self.judge)
        if problem is not None:
            return fail(*problem)
        self.seq += 1
        token, now = secrets.token_hex(20), self.ctx.now()
        article = Article(secrets.token_hex(16), token, self.seq, data, now)
        self.articles[article.id] = article
        if "processing" in fired and "create-then-fail" not in fired:
            article.pending = int(fired.seconds("processing", 2))
        else:
            self.publish(article)
        if "create-then-fail" in fired:
            return Response.html(ERROR_PAGE, 500)
        return ok({"token": article.token})

    def judge(self, url: str) -> bool | None:
        """A picture URL on the sandbox: whether a JPEG or PNG of at most 1 MB is served there
        (Zalo answers -201 otherwise); None for a URL elsewhere."""
        if not self.ctx.media.own(url):
            return None
        found = self.ctx.media.find(url)
        return found is not None and found.size <= LIMITS["zalo"]

    def publish(self, article: Article) -> None:
        """Processing is over: the article is listed, visible and recorded (once)."""
        if not article.published:
            article.published = True
            where = ("zalo", OA_ID, article.id)
            media = [ref | self.described(ref["url"]) for ref in article.pictures()]
            self.ctx.record(
                where, article.title, article.text, fields=article.body, kind="article", media=media
            )

    def described(self, url: str) -> dict[str, Any]:
        found = self.ctx.media.find(url)
        return found.describe() if found is not None else {}

    def verify(self, req: Request, fired: Fired) -> Response:
        token = str((self.payload(req) or {}).get("token", ""))
        article = next((a for a in self.articles.values() if a.token == token), None)
        if article is None or article.removed:
            return fail(-201, "token")
        if "create-then-fail" in fired:
            self.publish(article)
            article.pending = 0
            code = self.ctx.faults.choice((-32, -100, 502))
            return Response.html(ERROR_PAGE, 502) if code > 0 else fail(code)
        if article.pending > 0:
            article.pending -= 1
            return fail(-214)
        self.publish(article)
        return ok({"id": article.id})

    def getslice(self, req: Request, fired: Fired) -> Response:
        try:
            offset = max(0, int(req.arg("offset") or 0))
            limit = min(10, max(1, int(req.arg("limit") or 10)))
        except ValueError:
            return fail(-201, "offset/limit")
        live = [a for a in self.articles.values() if a.published and not a.removed]
        items = [] if req.arg("type") == "video" else sorted(live, key=lambda a: -a.seq)
        base = self.ctx.base_url()
        medias = [a.summary(base, self.reach(a)) for a in items[offset : offset + limit]]
        return ok({"medias": medias, "total": len(items)})

    def reach(self, article: Article) -> dict[str, int]:
        return self.ctx.figures("zalo", article.id, article.created)

    def getdetail(self, req: Request, fired: Fired) -> Response:
        article = self.articles.get(req.arg("id") or "")
        if article is None or not article.published or article.removed:
            return fail(-201, "id")
        # getdetail's documented fields carry no totals (platform-apis.md §2.3): the reader
        # finds them in getslice, as it must with Zalo
        summary = article.summary(self.ctx.base_url())
        del summary["total_view"], summary["total_share"]
        return ok({**article.body, **summary, "cite": {"url": "", "label": ""}})

    def remove(self, req: Request, fired: Fired) -> Response:
        article = self.articles.get(str((self.payload(req) or {}).get("id", "")))
        if article is None or article.removed:
            return fail(-201, "id")
        article.removed = True
        return ok()

    def broadcast(self, req: Request, fired: Fired) -> Response:
        data = self.payload(req) or {}
        recipient = data.get("recipient")
        if not isinstance(recipient, dict) or "target" not in recipient:
            return fail(-240)
        try:
            elements = data["message"]["attachment"]["payload"]["elements"]
            ids = [str(e["attachment_id"]) for e in elements]
        except (KeyError, TypeError):
            return fail(-201, "message")
        found = [self.articles.get(i) for i in ids]
        articles = [a for a in found if a is not None and a.published and not a.removed]
        if not ids or len(ids) > 5 or len(articles) != len(ids):
            return fail(-201, "attachment_id")
        message_id = secrets.token_hex(16)
        titles = " | ".join(a.title for a in articles)
        self.ctx.record(("zalo", OA_ID, message_id), titles, "", fields=data, kind="broadcast")
        if "create-then-fail" in fired:
            return Response.html(ERROR_PAGE, 500)
        return ok({"message_id": message_id})
