"""The pages' Jinja environment (autoescaped, gettext from lang.py) and the two ways a response
is made from it: a page (``page``) and an error page (``error_page``)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from publisher.documents.calendar_html import PALETTE
from publisher.i18n import N_
from publisher.web import lang
from publisher.web.auth import FLASH_COOKIE, take_flash, viewer
from publisher.web.lang import _, ngettext


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("publisher.web", "templates"),
        autoescape=True,  # every text a page shows is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s: _(s), lambda s, p, n: ngettext(s, p, n), newstyle=True
    )
    env.globals["palette"] = PALETTE
    env.globals["card_html"] = card_html
    env.filters["local"] = local_iso
    env.filters["field_label"] = field_label
    return env


# A calendar card's HTML by everything it shows (``views.Card``): a month's page holds every
# card of the month (hundreds), and escaping each one's texts anew was most of the page's
# template time under load (bench/RESULTS.md, item 7). Emptied when full.
_CARDS: dict[tuple[Any, ...], Markup] = {}
_CARDS_MAX = 20_000


def card_html(c: Any) -> Markup:
    """The calendar card ``c`` (a ``views.Card``) as ``_card.html`` renders it."""
    cover = c.cover or {}
    key = (
        c.id,
        c.time,
        c.colour,
        c.state,
        c.tone,
        c.state_label,
        c.channel_name,
        c.kind,
        c.title,
        cover.get("thumb"),
        cover.get("width"),
        cover.get("height"),
    )
    found = _CARDS.get(key)
    if found is None:
        html = environment().get_template("_card.html").render(c=c)  # autoescaped
        found = Markup(html)  # noqa: S704 - the template escaped every text in it
        if len(_CARDS) >= _CARDS_MAX:
            _CARDS.clear()
        _CARDS[key] = found
    return found


# A rendered field's name as a page shows it (msgids); any other name is shown as it is.
FIELD_LABELS = {
    "title": N_("Title"),
    "body": N_("Body"),
    "message": N_("Message"),
    "content": N_("Content"),
    "excerpt": N_("Excerpt"),
    "description": N_("Description"),
    "author": N_("Author"),
    "link": N_("Link"),
    "url": N_("Address"),
    "slug": N_("Slug"),
    "status": N_("Status on the site"),
    "cover": N_("Cover image"),
    "photo_url": N_("Photo"),
    "media": N_("Pictures"),
    "subject": N_("Mail subject"),
    "html": N_("Article (HTML)"),
    "text": N_("Article (plain text)"),
}


def field_label(name: str) -> str:
    label = FIELD_LABELS.get(name)
    return _(label) if label else name


def local_iso(value: str | None) -> str:
    """An ISO local time (as ``status.gather`` gives them) as ``dd/mm/yyyy HH:MM``."""
    if not value:
        return ""
    try:
        return f"{datetime.fromisoformat(value):%d/%m/%Y %H:%M}"
    except ValueError:
        return value


def page(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Template ``name`` with the viewer, their CSRF token and the pending flash message."""
    who = viewer(request)
    flash = take_flash(request)
    html = (
        environment()
        .get_template(name)
        .render(
            request=request,
            viewer=who,
            csrf=who.csrf if who else "",
            flash=flash,
            lang=lang.language(),
            path=request.url.path,
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def error_page(
    request: Request, status: int, title: str, reason: str, detail: str = ""
) -> HTMLResponse:
    """A refusal: its title and one-line reason (a fragment for an htmx request)."""
    name = "_error.html" if request.headers.get("HX-Request") else "error.html"
    try:
        return page(request, name, status, title=title, reason=reason, detail=detail)
    except Exception:  # the session lookup itself failed (database down): a bare page
        return page_without_viewer(request, status, title, reason)


def page_without_viewer(request: Request, status: int, title: str, reason: str) -> HTMLResponse:
    request.scope["viewer"] = None
    html = (
        environment()
        .get_template("error.html")
        .render(
            request=request,
            viewer=None,
            csrf="",
            flash=None,
            lang=lang.language(),
            path=request.url.path,
            title=title,
            reason=reason,
            detail="",
        )
    )
    return HTMLResponse(html, status_code=status)
