"""The pages that read: calendar, post list, post, editor, status, audit trail, downloads,
the posts' pictures (by the SHA-256 of their bytes), and the login form. Each needs a live
session (else a redirect to /login?next=…)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from publisher.documents import (
    calendar_html,
    calendar_ics,
    preview,
    report_docx,
    report_text,
)
from publisher.documents.preview import WEEKDAYS_VI
from publisher.states import LABELS_VI, State
from publisher.store import audit, status
from publisher.web import actions, report_form, views
from publisher.web.auth import (
    LOGIN_COOKIE,
    Viewer,
    context,
    local_path,
    login_token,
    page_viewer,
    set_cookie,
    viewer,
)
from publisher.web.lang import _
from publisher.web.render import page

router = APIRouter()
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# The report page is the standalone document ``publisher report --format html`` writes: its own
# inline style, no script; its charts are data: pictures.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
Member = Annotated[Viewer, Depends(page_viewer)]
# A picture is named by the hash of its bytes: it can be kept for a year and never re-checked.
# asked again each time (a 304 by its ETag once the session is checked): a shared office
# computer must not show a logged-out member's unpublished pictures from its cache
MEDIA_CACHE = "private, no-cache"


def _choices(request: Request) -> dict[str, Any]:
    """What the filter bar offers and has chosen."""
    config = context(request).config
    filters = views.filters_of(config, request.query_params)
    return {
        "filters": filters,
        "channels": [(cid, ch.name) for cid, ch in config.channels.items()],
        "states": [(s.value, LABELS_VI.get(s, s.value)) for s in State],
        "kinds": [("slogan", _("Slogan")), ("article", _("Article"))],
    }


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    if viewer(request) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    token, cookie = login_token(request)
    response = page(request, "login.html", token=token, next=local_path(next), error="")
    if cookie:
        set_cookie(request, response, LOGIN_COOKIE, cookie)
    return response


@router.get("/", response_class=HTMLResponse)
def calendar(request: Request, member: Member, month: str = "") -> Response:
    ctx = context(request)
    chosen = _choices(request)
    year, mon = views.month_of(ctx.config, month, ctx.now().astimezone(ctx.config.tz).date())
    before, after = views.neighbour_months(year, mon)
    filters: views.Filters = chosen["filters"]
    values: dict[str, Any] = {
        **chosen,
        "weeks": views.month_grid(ctx, filters, year, mon),
        "weekdays": WEEKDAYS_VI,
        "title": _("Month %(m)s, %(y)s", m=mon, y=year),
        "month": f"{year:04d}-{mon:02d}",
        "before": before,
        "after": after,
        "unplanned": views.unplanned(ctx, filters),
    }
    name = "_grid.html" if request.headers.get("HX-Request") else "calendar.html"
    return page(request, name, **values)


@router.get("/posts", response_class=HTMLResponse)
def post_list(request: Request, member: Member) -> Response:
    ctx = context(request)
    chosen = _choices(request)
    filters: views.Filters = chosen["filters"]
    rows = views.cards(ctx, filters)
    name = "_list.html" if request.headers.get("HX-Request") else "posts.html"
    return page(request, name, **chosen, rows=rows, can_approve=member.may("approve"))


@router.get("/posts/{post_id}", response_class=HTMLResponse)
def post(request: Request, member: Member, post_id: int) -> Response:
    info = views.post_page(context(request), post_id)
    return page(request, "post.html", post=info)


@router.get("/messages/{target:path}/edit", response_class=HTMLResponse)
def editor(request: Request, member: Member, target: str) -> Response:
    ctx = context(request)
    path = actions.message_path(ctx, target)
    text = actions.read_file(path)
    return page(
        request,
        "edit.html",
        target=target,
        file=actions.shown_path(ctx.config, path),
        text=text,
        can_edit=member.may("edit"),
        saved=None,
        error="",
    )


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request, member: Member) -> Response:
    ctx = context(request)
    info = status.gather(ctx.db, ctx.config, ctx.now())
    paused = {b["channel"] for b in info["blocked"] if b["paused"]}
    values: dict[str, Any] = {
        "info": info,
        "reach": views.reach_rows(
            info["reach"], {cid: ch.name for cid, ch in ctx.config.channels.items()}
        ),
        "labels": LABELS_VI,
        "channels": [(cid, ch.name, cid in paused) for cid, ch in ctx.config.channels.items()],
        "can_pause": member.may("pause"),
        "can_resume": member.may("resume"),
    }
    name = "_status.html" if request.headers.get("HX-Request") else "status.html"
    return page(request, name, **values)


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request, member: Member, page_no: Annotated[int, Query(alias="page", ge=1)] = 1
) -> Response:
    rows, pages = views.audit_page(context(request), page_no)
    return page(request, "audit.html", rows=rows, page_no=page_no, pages=pages, verified=None)


@router.get("/audit/verify", response_class=HTMLResponse)
def audit_verify(request: Request, member: Member) -> Response:
    result = audit.verify(context(request).db)
    rows, pages = views.audit_page(context(request), 1)
    return page(request, "audit.html", rows=rows, page_no=1, pages=pages, verified=result)


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request, member: Member) -> Response:
    """The office's entries for the report (a form for editors and approvers) and downloads."""
    return page(request, "report.html", **report_form.page_values(context(request), member))


@router.get("/report.docx")
def report_word(request: Request, member: Member, date: str = "") -> Response:
    ctx = context(request)
    built = report_form.build(ctx, report_form.report_day(ctx, date))
    return _download(report_docx.docx_bytes(built), "bao-cao.docx", DOCX)


@router.get("/report.html")
def report_html(request: Request, member: Member, date: str = "") -> Response:
    ctx = context(request)
    built = report_form.build(ctx, report_form.report_day(ctx, date))
    return HTMLResponse(report_text.to_html(built), headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/report.md")
def report_markdown(request: Request, member: Member, date: str = "") -> Response:
    ctx = context(request)
    built = report_form.build(ctx, report_form.report_day(ctx, date))
    data = report_text.to_markdown(built).encode("utf-8")
    return _download(data, "bao-cao.md", "text/markdown; charset=utf-8")


@router.get("/calendar.ics")
def calendar_file(request: Request, member: Member) -> Response:
    ctx = context(request)
    entries = preview.items(ctx.db, ctx.config)
    extra = calendar_html.load_extra(ctx.db, [e.id for e in entries])
    data = calendar_ics.render_ics(entries, ctx.config, generated_at=ctx.now(), extra=extra)
    return _download(data, "lich-dang-bai.ics", "text/calendar; charset=utf-8")


@router.get("/media/{sha256}")
def media(request: Request, member: Member, sha256: str) -> Response:
    """A stored picture's bytes, by their SHA-256: what the posts that show it send."""
    found = views.media_file(context(request), sha256)
    return picture_response(request, found.data, found.mime, f'"{sha256}"', found.name)


@router.get("/media/{sha256}/thumb")
def media_thumb(request: Request, member: Member, sha256: str) -> Response:
    """A small copy of a stored picture, for the calendar's cards and the post list."""
    thumb = views.media_thumbnail(context(request), sha256)
    return picture_response(request, thumb.data, thumb.mime, f'"{sha256}-{thumb.width}"')


def picture_response(
    request: Request, data: bytes, mime: str, etag: str, name: str = ""
) -> Response:
    """Picture bytes named by their hash: they never change, so the browser keeps them (for
    this member only: ``private``) and asks again only with ``If-None-Match``."""
    headers = {
        "Cache-Control": MEDIA_CACHE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    safe = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "._-"))
    if safe:
        headers["Content-Disposition"] = f'inline; filename="{safe}"'
    return Response(data, media_type=picture_type(mime), headers=headers)


def picture_type(mime: str) -> str:
    """The Content-Type of a stored picture: JPEG or PNG, else bytes no browser renders."""
    return mime if mime in ("image/jpeg", "image/png") else "application/octet-stream"


def _download(data: bytes, name: str, media_type: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
