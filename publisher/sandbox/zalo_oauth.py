"""The sandbox's Zalo OAuth v4 (``/zalo/oauth``) and its table of rotating OA tokens.

Refresh tokens are single-use and self-verifying (``sbx-rt-<run>-<n>-<hmac>``), so one issued by an
earlier run is accepted once; only the newest access token lives. Never logs or records a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from publisher.sandbox import credentials
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router

INVALID = -216  # "Access token is invalid": unknown, rotated out, or declared expired
EXPIRED = -220  # "access_token is expired or removed": older than the ttl
ERROR_PAGE = "<html><body><h1>500 Internal Server Error</h1></body></html>"


def _sign(body: str) -> str:
    key = credentials.ZALO_APP_SECRET.encode()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:16]


class ZaloTokens:
    """Which refresh tokens were spent in this process, and the one access token alive now."""

    def __init__(self, ctx: Context, ttl: float) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self.run = secrets.token_hex(4)  # keeps this run's tokens apart from earlier runs'
        self.counter = 0
        self.used: set[str] = set()
        self.current: str | None = None
        self.issued_at: datetime | None = None

    def genuine(self, token: str) -> bool:
        if token == credentials.ZALO_FIRST_REFRESH_TOKEN:
            return True
        head, _, sig = token.rpartition("-")
        return head.startswith("sbx-rt-") and hmac.compare_digest(sig, _sign(head))

    def spend(self, token: str) -> bool:
        """Accept ``token`` once: True if it is genuine and unused (it is used from now on)."""
        if token in self.used or not self.genuine(token):
            return False
        self.used.add(token)
        return True

    def mint(self) -> tuple[str, str]:
        """A new access/refresh pair; the previous access token dies."""
        self.counter += 1
        self.current = f"sbx-at-{self.run}-{self.counter}-{secrets.token_hex(8)}"
        self.issued_at = self.ctx.now()
        head = f"sbx-rt-{self.run}-{self.counter}"
        return self.current, f"{head}-{_sign(head)}"

    def check(self, token: str | None) -> int:
        """0 if ``token`` is the live access token, else the Zalo error code to answer."""
        if not token or self.current is None or self.issued_at is None:
            return INVALID
        if not hmac.compare_digest(token.encode(), self.current.encode()):
            return INVALID
        if (self.ctx.now() - self.issued_at).total_seconds() >= self.ttl:
            return EXPIRED
        return 0

    def expire(self) -> None:
        """The token-expiry fault: the live access token dies now."""
        self.current = None


def oauth_error(code: int, name: str) -> Response:
    body = {
        "error": code,
        "error_name": name,
        "error_description": name + ".",
        "error_reason": "",
        "ref_doc": "https://developers.zalo.me/docs/official-account",
    }
    return Response.json(body)


class ZaloOAuth:
    def __init__(self, ctx: Context, tokens: ZaloTokens) -> None:
        self.ctx = ctx
        self.tokens = tokens

    def register(self, router: Router) -> None:
        router.add("POST", r"/zalo/oauth/v4/oa/access_token", self.access_token)
        router.add("*", r"/zalo/oauth(?:/.*)?", self.unknown)

    def unknown(self, req: Request, _: dict[str, str]) -> Response:
        return Response.json({"error": -14000, "error_name": "Unknown endpoint"}, 404)

    def access_token(self, req: Request, _: dict[str, str]) -> Response:
        secret = req.header("secret_key") or ""
        if not hmac.compare_digest(secret.encode(), credentials.ZALO_APP_SECRET.encode()):
            return oauth_error(-14004, "Invalid secret key")
        try:
            body = req.form()
        except BadBody:
            body = {}
        form = {k: v[-1] for k, v in req.query.items()} | {k: str(v) for k, v in body.items()}
        if not form.get("app_id", "").strip().isdigit():
            return oauth_error(-14002, "Invalid appId")
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            return oauth_error(-14005, "Invalid code")
        if grant != "refresh_token":
            return oauth_error(-14018, "Invalid grant_type")
        if not self.tokens.genuine(form.get("refresh_token", "")):
            return oauth_error(-14014, "Invalid refresh token")
        fired = self.ctx.faults.draw("zalo", "refresh")
        if "refresh-expired" in fired or not self.tokens.spend(form.get("refresh_token", "")):
            return oauth_error(-14014, "Invalid refresh token")
        access, refresh = self.tokens.mint()
        if "refresh-then-fail" in fired:
            return Response.html(ERROR_PAGE, 500)
        ttl = f"{int(self.tokens.ttl)}"
        return Response.json({"access_token": access, "refresh_token": refresh, "expires_in": ttl})
