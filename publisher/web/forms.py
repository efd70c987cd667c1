"""What the board does: login, logout and every button. Each POST needs the session's CSRF token
(``auth.acting_viewer``; the login form its own signed token) and answers with a redirect and a
flash message, or a page naming the one-line reason it was refused."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from publisher.config.board import role_label
from publisher.editorial.load import ApproveReport
from publisher.errors import InputError, PublisherError
from publisher.i18n import N_
from publisher.store import users
from publisher.web import actions, report_form
from publisher.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Refused,
    Viewer,
    acting_viewer,
    client_address,
    context,
    csrf_reason,
    flash,
    local_path,
    login_token,
    login_token_ok,
    set_cookie,
)
from publisher.web.lang import _
from publisher.web.render import page

router = APIRouter()
Actor = Annotated[Viewer, Depends(acting_viewer)]
DONE = {  # msgids: what a page says after each button
    "hold": N_("Post #%(id)s held."),
    "release": N_("Post #%(id)s released."),
    "reject": N_("Post #%(id)s rejected."),
    "cancel": N_("Post #%(id)s cancelled."),
}


def back(request: Request, url: str, kind: str, lines: list[str]) -> Response:
    response = RedirectResponse(url, status_code=303)
    flash(request, response, kind, lines)
    return response


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=255)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=255)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if not login_token_ok(request, csrf_token):
        raise Refused(403, _("Request refused"), csrf_reason())
    ctx = context(request)
    address = client_address(request)
    try:
        account = users.login(
            ctx.db, ctx.config, username, password, address=address, now=ctx.now()
        )
    except users.LoginRefused as exc:
        many = exc.problem.startswith("too many")
        error = (
            _("Too many failed logins: wait 15 minutes, then try again.")
            if many
            else _("Wrong name or password, or the account is disabled.")
        )
        token, cookie = login_token(request)
        response = page(
            request,
            "login.html",
            429 if many else 401,
            token=token,
            next=local_path(next),
            error=error,
            username=username,
        )
        if cookie:
            set_cookie(request, response, LOGIN_COOKIE, cookie)
        return response
    token = users.open_session(ctx.db, account, address=address, now=ctx.now())
    done = RedirectResponse(local_path(next), status_code=303)
    set_cookie(request, done, SESSION_COOKIE, token)
    done.delete_cookie(LOGIN_COOKIE, path="/")
    return done


@router.post("/logout")
def logout(request: Request, member: Actor) -> Response:
    ctx = context(request)
    users.close_session(ctx.db, member.token, now=ctx.now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _approved_lines(report: ApproveReport) -> list[str]:
    lines = []
    if report.approved:
        lines.append(_("Approved: %(ids)s.", ids=", ".join(f"#{i}" for i in report.approved)))
    lines += [
        _(
            "Post #%(id)s: approved as %(step)s (step %(number)s of %(of)s); "
            "it now waits for the %(next)s step.",
            id=t.post_id,
            step=role_label(t.step),
            number=t.number,
            of=t.of,
            next=role_label(t.waiting_for),
        )
        for t in report.steps
    ]
    lines += [_("Post #%(id)s not approved: %(why)s", id=i, why=why) for i, why in report.refused]
    return lines or [_("Nothing was approved.")]


@router.post("/posts/{post_id}/approve")
def approve_one(request: Request, member: Actor, post_id: int) -> Response:
    report = actions.approve_posts(context(request), member, [post_id])
    kind = "bad" if report.refused else "ok"
    return back(request, f"/posts/{post_id}", kind, _approved_lines(report))


@router.post("/posts/approve")
async def approve_many(request: Request, member: Actor) -> Response:
    form = await request.form()
    raw = [v for v in form.getlist("ids") if isinstance(v, str)]
    if not raw:
        raise Refused(400, _("Bad request"), _("ids: tick at least one post, then approve."))
    if not all(v.isdigit() and len(v) < 10 for v in raw):
        raise Refused(400, _("Bad request"), _("ids: post ids are whole numbers."))
    report = actions.approve_posts(context(request), member, [int(v) for v in raw])
    kind = "warn" if report.refused else "ok"
    target = local_path(str(form.get("back") or "/posts"))
    return back(request, target, kind, _approved_lines(report))


@router.post("/posts/{post_id}/reschedule")
def reschedule(
    request: Request,
    member: Actor,
    post_id: int,
    when: Annotated[str, Form(max_length=40)] = "",
    force: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    url = f"/posts/{post_id}"
    try:
        actions.reschedule(context(request), member, post_id, when, bool(force))
    except InputError as exc:
        if exc.where != "reschedule":
            raise
        return back(request, url, "bad", [_("Not rescheduled: %(why)s", why=exc.problem)])
    return back(request, url, "ok", [_("Rescheduled to %(when)s.", when=when.replace("T", " "))])


@router.post("/posts/{post_id}/confirm")
def confirm(
    request: Request,
    member: Actor,
    post_id: int,
    url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = f"/posts/{post_id}"
    try:
        done = actions.confirm(context(request), member, post_id, url)
    except InputError as exc:
        return back(request, target, "bad", [_("Not confirmed: %(why)s", why=exc.problem)])
    return back(request, target, "ok", [_("Confirmed: published at %(url)s.", url=done.url)])


@router.post("/posts/{post_id}/{action}")
def act(
    request: Request,
    member: Actor,
    post_id: int,
    action: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if action not in DONE:
        raise Refused(404, _("Not found"), _("There is no such action."))
    outcome = actions.post_action(context(request), member, post_id, action, reason)
    if outcome.done:
        line = _(DONE[action], id=post_id)
        return back(request, f"/posts/{post_id}", "ok", [line])
    lines = [_("Refused: %(why)s", why=why) for _i, why in outcome.refused]
    return back(request, f"/posts/{post_id}", "bad", lines)


@router.post("/messages/{target:path}/preview", response_class=HTMLResponse)
def preview(
    request: Request,
    member: Actor,
    target: str,
    text: Annotated[str, Form(max_length=1_000_000)] = "",
) -> Response:
    ctx = context(request)
    path = actions.message_path(ctx, target)
    try:
        renders = actions.preview_text(ctx, path, text)
    except PublisherError as exc:
        return page(request, "_preview.html", renders=[], error=str(exc))
    return page(request, "_preview.html", renders=renders, error="")


@router.post("/messages/{target:path}/edit", response_class=HTMLResponse)
def save(
    request: Request,
    member: Actor,
    target: str,
    text: Annotated[str, Form(max_length=1_000_000)] = "",
) -> Response:
    ctx = context(request)
    path = actions.message_path(ctx, target)
    values: dict[str, Any] = {
        "target": target,
        "file": actions.shown_path(ctx.config, path),
        "can_edit": True,
    }
    try:
        report = actions.save_text(ctx, member, path, text)
    except PublisherError as exc:
        return page(request, "edit.html", 400, text=text, saved=None, error=str(exc), **values)
    return page(
        request, "edit.html", text=actions.read_file(path), saved=report, error="", **values
    )


@router.post("/status/pause")
def pause(
    request: Request,
    member: Actor,
    channel: Annotated[str, Form(max_length=64)] = "",
    paused: Annotated[str, Form(max_length=1)] = "1",
) -> Response:
    stop = paused != "0"
    actions.pause(context(request), member, channel, stop)
    line = (
        _("Channel %(ch)s paused.", ch=channel)
        if stop
        else _("Channel %(ch)s resumed.", ch=channel)
    )
    return back(request, "/status", "ok", [line])


@router.post("/report", response_class=HTMLResponse)
async def report_entries(request: Request, member: Actor) -> Response:
    """Save the office's entries: all of them checked first, then the changed ones stored and
    audited; a wrong field comes back in the form (400, or 409 if someone changed it meanwhile)
    with the one-line reason naming it and every value as typed."""
    ctx = context(request)
    form = await request.form()
    typed = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        changed = report_form.save(ctx, member, typed)
    except report_form.EntryError as exc:
        values = report_form.page_values(
            ctx,
            member,
            fields=report_form.fields(ctx, typed),
            error=exc.reason,
            error_key=exc.key,
        )
        return page(request, "report.html", exc.status, **values)
    if not changed:
        return back(request, "/report", "ok", [_("No change.")])
    line = _("Saved %(n)s entry(ies) for the report.", n=len(changed))
    return back(request, "/report", "ok", [line])
