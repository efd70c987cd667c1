"""The confirm form a hand-off mail's signed link opens (``/confirm/<token>``): the portal's
editorial desk, which has no account, confirms there the live address of the one post the link
names (``editorial.confirm``, ``via="link"``).

The link itself authorises it: its token is signed with a key derived from the audit key
(``signing.link_key``) and expires (``[channels.<id>] link_valid``); a tampered link is refused
with 403, an expired one with 410. The form carries a signed double-submit token, as the login
form does, so another site cannot submit it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.responses import Response

from publisher.editorial.confirm import confirm
from publisher.errors import InputError
from publisher.signing import LinkError, link_key, read_link_token
from publisher.store.models import MessageRow, PostRow
from publisher.web.auth import (
    LOGIN_COOKIE,
    Refused,
    context,
    csrf_reason,
    login_token,
    login_token_ok,
    set_cookie,
)
from publisher.web.lang import _
from publisher.web.render import page

router = APIRouter()


def _post(request: Request, token: str) -> dict[str, Any]:
    """The post the link's token authorises, or Refused (403 tampered, 410 expired)."""
    ctx = context(request)
    key = ctx.db.audit_key
    if not key:
        raise Refused(404, _("Not found"), _("Confirmation links are not enabled on this server."))
    try:
        post_id, idem = read_link_token(link_key(key), token, int(ctx.now().timestamp()))
    except LinkError as exc:
        if exc.expired:
            raise Refused(
                410,
                _("Link expired"),
                _("This confirmation link has expired: reply to the mail with the address."),
            ) from None
        raise Refused(403, _("Link refused"), _("This confirmation link is not valid.")) from None
    with ctx.db.read() as s:
        row = s.execute(
            select(PostRow, MessageRow.title)
            .join(MessageRow, PostRow.message_id == MessageRow.id)
            .where(PostRow.id == post_id)
        ).first()
    if row is None or row[0].idempotency_key != idem:
        raise Refused(403, _("Link refused"), _("This confirmation link is not valid."))
    p, title = row
    ch = ctx.config.channels.get(p.channel)
    return {
        "post_id": p.id,
        "channel": p.channel,
        "channel_name": ch.name if ch else p.channel,
        "site": str(ch.setting("site", "")) if ch else "",
        "title": title,
        "state": p.state,
        "live": p.remote_url if p.state == "published" else None,
        "token_path": token,
    }


def _form(request: Request, info: dict[str, Any], status: int = 200, **values: Any) -> Response:
    csrf, cookie = login_token(request)
    response = page(request, "confirm.html", status, csrf_form=csrf, **info, **values)
    if cookie:
        set_cookie(request, response, LOGIN_COOKIE, cookie)
    return response


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_form(request: Request, token: str) -> Response:
    info = _post(request, token)
    if info["live"]:
        done = _("Already confirmed: published at %(url)s.", url=info["live"])
        return _form(request, info, done=done)
    if info["state"] != "handed_off":
        raise Refused(409, _("Cannot confirm"), _("This post is not waiting for confirmation."))
    return _form(request, info, done="", error="")


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_post(
    request: Request,
    token: str,
    url: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    if not login_token_ok(request, csrf_token):
        raise Refused(403, _("Request refused"), csrf_reason())
    info = _post(request, token)
    ctx = context(request)
    try:
        with ctx.db.write() as s:
            done = confirm(
                s,
                ctx.config,
                info["post_id"],
                url,
                by=f"desk:{info['channel']}",
                via="link",
                now=ctx.now(),
            )
    except InputError as exc:
        return _form(request, info, 400, done="", error=str(exc), url=url)
    said = _(
        "Thank you: post #%(id)s is recorded as published at %(url)s.",
        id=done.post_id,
        url=done.url,
    )
    return _form(request, {**info, "live": done.url}, done=said)
