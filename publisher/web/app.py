"""The board's web app: ``create_app(ctx)`` builds the FastAPI application that ``publisher web``
serves (server-rendered Jinja pages, htmx vendored in static/, no CDN, no external font).

Routes: pages.py (what is read), forms.py (what is done); auth.py (sessions, CSRF, cookies).
The JSON API (api.py) is a FastAPI sub-app of its own, mounted at /api/v1."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from publisher.errors import PublisherError
from publisher.store.models import DaemonRow
from publisher.web import confirm, forms, pages
from publisher.web.api import create_api
from publisher.web.auth import LoginNeeded, Refused
from publisher.web.context import WebContext
from publisher.web.lang import _
from publisher.web.render import error_page

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# The pages load only their own script and style; no frame may hold them.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def create_app(ctx: WebContext) -> FastAPI:
    """The web app over ``ctx`` (its config, queue and clock)."""
    app = FastAPI(title="publisher", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.state.secret = secrets.token_bytes(32)  # signs the login form's token and flashes
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/api/v1", create_api(ctx))  # its own schema: /api/v1/openapi.json
    app.include_router(pages.router)
    app.include_router(forms.router)
    app.include_router(confirm.router)  # the desk's signed link: no session
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    _handlers(app)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _handlers(app: FastAPI) -> None:
    """Every refusal as a Vietnamese page with its one-line reason; never a traceback."""

    async def login_needed(request: Request, exc: Exception) -> Response:
        from urllib.parse import quote

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = "/login" + (f"?next={quote(target, safe='/')}" if target != "/" else "")
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        exc = cast(Refused, exc)
        return error_page(request, exc.status, exc.title, exc.reason, exc.detail)

    async def publisher_error(request: Request, exc: Exception) -> Response:
        return error_page(request, 400, _("Refused"), str(exc))

    async def invalid(request: Request, exc: Exception) -> Response:
        exc = cast(RequestValidationError, exc)
        where = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors() if isinstance(e, dict))
        reason = _("%(field)s: missing or not valid; check it and send again.", field=where)
        return error_page(request, 400, _("Bad request"), reason)

    async def http_error(request: Request, exc: Exception) -> Response:
        exc = cast(HTTPException, exc)
        if request.url.path.startswith("/api/"):  # a path the API's mount did not match
            return JSONResponse({"error": f"no such API path: {request.url.path}"}, 404)
        if exc.status_code == 404:
            return error_page(request, 404, _("Not found"), _("There is no such page."))
        return error_page(request, exc.status_code, _("Refused"), str(exc.detail))

    async def database_error(request: Request, exc: Exception) -> Response:
        log.error("web request failed on the database: %s", database_reason(exc))
        reason = _("The database cannot be reached just now; try again in a moment.")
        return error_page(request, 503, _("Unavailable"), reason)

    app.add_exception_handler(LoginNeeded, login_needed)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(PublisherError, publisher_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(SQLAlchemyError, database_error)


def database_reason(exc: BaseException) -> str:
    """What a log says of a database error: its type and the driver's first line (SQLite's
    "database is locked", PostgreSQL's "could not serialize access …"), never the statement
    or its parameters (the DETAIL lines that may quote values are left out)."""
    orig = getattr(exc, "orig", None)
    said = str(orig if orig is not None else "").strip().splitlines()
    first = said[0][:200] if said else ""
    name = type(orig if orig is not None else exc).__name__
    return f"{name}: {first}" if first else name


def healthz(request: Request) -> JSONResponse:
    """200 ``{"ok": true, …}`` with the schema head and the daemon's last heartbeat; 503 when the
    database cannot be read. No login needed; nothing secret in it."""
    ctx: WebContext = request.app.state.ctx
    try:
        schema = ctx.db.schema_version()
        with ctx.db.read() as s:
            beat = s.scalar(select(func.max(DaemonRow.beat_at)))
    except (SQLAlchemyError, PublisherError) as exc:
        log.warning("healthz: the database is unreachable (%s)", type(exc).__name__)
        return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
    age = (ctx.now() - beat).total_seconds() if beat else None
    return JSONResponse(
        {
            "ok": True,
            "database": "ok",
            "schema": schema,
            "daemon_heartbeat_age_seconds": round(age, 1) if age is not None else None,
        }
    )
