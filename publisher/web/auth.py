"""Who is at the keyboard: sessions, CSRF and the cookies that carry them.

* The session cookie ``publisher_session`` holds a random token (the database keeps its SHA-256,
  ``store.users``): HttpOnly, SameSite=Lax, Path=/, no Max-Age (it ends with the browser, and
  the server ends it after ``[web] idle`` unused). It is Secure when ``[web] secure_cookies`` is
  true or the request came over https. Behind a reverse proxy, uvicorn believes
  ``X-Forwarded-Proto``/``X-Forwarded-For`` only from the addresses in ``--forwarded-allow-ips``
  (default 127.0.0.1, i.e. an nginx on the same machine): then ``request.url.scheme`` is the
  browser's scheme and ``request.client.host`` its address (the login rate limit's key).
* CSRF: each session has its own token (``SessionInfo.csrf``); every form carries it in a
  hidden ``csrf_token`` field and every htmx request in an ``X-CSRF-Token`` header (``hx-headers``
  on ``<body>``). A POST, PUT, PATCH or DELETE without it is refused with 403.
* The login form, before any session, is protected by a signed double-submit token: a random
  value in the ``publisher_login`` cookie (with its HMAC under the app's secret) that the form
  must repeat; another site can neither read it nor set a valid one.
* Flash messages (what an action did) travel in a signed, short-lived cookie to the page the
  action redirects to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from publisher.config.board import NotAllowed, authorize_account, role_label
from publisher.i18n import N_
from publisher.store import users
from publisher.web.context import WebContext
from publisher.web.lang import _

SESSION_COOKIE = "publisher_session"
LOGIN_COOKIE = "publisher_login"
FLASH_COOKIE = "publisher_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# Roles and actions as a page names them (msgids, marked for the catalog; see lang.py).
ACTION_LABELS = {
    "load": N_("loading content"),
    "add": N_("adding posts"),
    "edit": N_("editing posts"),
    "import": N_("importing a CSV"),
    "reschedule": N_("rescheduling posts"),
    "hold": N_("holding posts"),
    "release": N_("releasing held posts"),
    "cancel": N_("cancelling posts"),
    "reject": N_("rejecting posts"),
    "pause": N_("pausing channels"),
    "resume": N_("resuming channels"),
    "approve": N_("approving posts"),
    "confirm": N_("confirming handed-off posts"),
    "report": N_("editing the report's entries"),
}


def csrf_reason() -> str:
    return _(
        "csrf_token: the form's security token is missing or out of date; "
        "reload the page and try again."
    )


class LoginNeeded(Exception):
    """No live session: a page answers with a redirect to /login?next=…"""


class Refused(Exception):
    """A request answered with an error page: ``status``, a title and a one-line reason."""

    def __init__(self, status: int, title: str, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.title = title
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Viewer:
    """The logged-in member of this request."""

    ctx: WebContext
    account: users.Account
    csrf: str
    token: str

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def role(self) -> str:
        return self.account.role

    def may(self, action: str) -> bool:
        try:
            authorize_account(self.ctx.config, self.name, self.role, action)
        except NotAllowed:
            return False
        return True

    def authorize(self, action: str) -> str:
        """The name to act as, or Refused(403) saying why this member may not."""
        try:
            return authorize_account(self.ctx.config, self.name, self.role, action)
        except NotAllowed as exc:
            reason = _(
                "%(name)s (%(role)s) may not do this: %(action)s.",
                name=self.name,
                role=role_label(self.role),
                action=_(ACTION_LABELS.get(action, action)),
            )
            raise Refused(403, _("Not allowed"), reason, str(exc)) from exc


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def secret(request: Request) -> bytes:
    key: bytes = request.app.state.secret
    return key


def client_address(request: Request) -> str:
    """The browser's address (the proxy's, unless uvicorn trusts its X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


def is_secure(request: Request) -> bool:
    return context(request).config.web.secure_cookies or request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, **extra: Any) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
        path="/",
        **extra,
    )


def viewer(request: Request) -> Viewer | None:
    """The live session of this request's cookie (looked up once per request)."""
    if "viewer" in request.scope:
        found: Viewer | None = request.scope["viewer"]
        return found
    ctx = context(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    info = users.session_of(ctx.db, token, now=ctx.now(), idle=ctx.config.web.idle)
    found = Viewer(ctx, info.account, info.csrf, token) if info else None
    request.scope["viewer"] = found
    return found


def page_viewer(request: Request) -> Viewer:
    """For a page: the viewer, or LoginNeeded (a redirect to the login form)."""
    found = viewer(request)
    if found is None:
        raise LoginNeeded
    return found


async def sent_token(request: Request) -> str:
    """The CSRF token the request carries: its header, else its form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def acting_viewer(request: Request) -> Viewer:
    """For an action: the viewer, whose request must carry the session's CSRF token (403)."""
    found = viewer(request)
    sent = await sent_token(request)
    if found is None:
        raise Refused(
            403, _("Not logged in"), _("Your session has ended: log in again, then retry.")
        )
    if not sent or not hmac.compare_digest(sent.encode(), found.csrf.encode()):
        raise Refused(403, _("Request refused"), csrf_reason())
    return found


def _sign(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def login_token(request: Request) -> tuple[str, str | None]:
    """The login form's token, and the cookie to set (None: the browser's is still good)."""
    key = secret(request)
    held = request.cookies.get(LOGIN_COOKIE, "")
    value, _, signature = held.partition(".")
    if value and hmac.compare_digest(signature, _sign(key, value)):
        return value, None
    value = secrets.token_urlsafe(24)
    return value, f"{value}.{_sign(key, value)}"


def login_token_ok(request: Request, sent: str) -> bool:
    key = secret(request)
    value, _, signature = request.cookies.get(LOGIN_COOKIE, "").partition(".")
    return bool(
        value
        and sent
        and hmac.compare_digest(signature, _sign(key, value))
        and hmac.compare_digest(sent.encode(), value.encode())
    )


def flash(request: Request, response: Response, kind: str, lines: list[str]) -> None:
    """Say ``lines`` (``kind``: ok, warn or bad) on the next page shown."""
    data = base64.urlsafe_b64encode(
        json.dumps({"kind": kind, "lines": lines}, ensure_ascii=False).encode()
    ).decode()
    set_cookie(
        request, response, FLASH_COOKIE, f"{data}.{_sign(secret(request), data)}", max_age=60
    )


def take_flash(request: Request) -> dict[str, Any] | None:
    """The flash message the previous response left, if its signature holds."""
    data, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not data or not hmac.compare_digest(signature, _sign(secret(request), data)):
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(data.encode()))
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("lines"), list):
        return None
    return {"kind": str(found.get("kind", "ok")), "lines": [str(x) for x in found["lines"]]}


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site (``/…``, not ``//host`` or ``/\\host``), else /."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(c in target for c in "\r\n\t\\")
    ):
        return "/"
    return target
