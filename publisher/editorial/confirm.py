"""Confirming a hand-off: a post mailed to a portal's editorial desk (``handed_off``) becomes
published with the live address the desk gives.

One function, ``confirm``, serves every path: an editor's ``publisher queue confirm POST URL``
(``via="cli"``), the signed link in the mail that opens the web app's confirm form
(``via="link"``), and the reader of the desk's replies (``via="reply"``), which finds the post
a reply answers with ``post_for_message_id``. ``overdue_handoffs`` lists the posts whose desk
has not confirmed them within the channel's ``confirm_within``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.channels.email_desk import key_of_message_id
from publisher.config import Config, EmailSettings
from publisher.errors import InputError
from publisher.i18n import _
from publisher.states import State
from publisher.store import handoffs
from publisher.store.handoffs import Handoff
from publisher.store.history import transition
from publisher.store.models import PostRow
from publisher.text import clean

VIAS = ("cli", "link", "reply", "web", "api")  # how a confirmation came


@dataclass(frozen=True)
class Confirmed:
    """A confirmation's result: ``changed`` is False when the post already had this address
    (a repeated confirmation is a no-op)."""

    post_id: int
    channel: str
    url: str
    changed: bool


def confirm(
    s: Session,
    config: Config,
    post_id: int,
    url: str,
    *,
    by: str,
    via: str,
    now: datetime,
) -> Confirmed:
    """Move the handed-off post ``post_id`` to published with its live address ``url``,
    recording who confirmed it and how (``via``: cli, link, reply…) in its history and the
    audit trail, in session ``s`` (the caller's transaction). Confirming a published post
    again with the same address changes nothing; another address, an address outside the
    channel's ``site``, or a post that was not handed off is refused (InputError, one line
    naming the fix)."""
    if via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(VIAS)}, not {via!r}")
    # populate_existing: the row as the lock finds it, not as this session may have loaded it
    # before (two daemons confirming one reply at once: the second sees it published)
    p = s.scalars(
        select(PostRow)
        .where(PostRow.id == post_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if p is None:
        raise InputError("POST", _("no post has id {id}").format(id=post_id), _HINT_LIST)
    address = live_url(config, p.channel, url)
    if p.state == State.PUBLISHED and p.handed_off_at is not None:
        if p.remote_url == address:
            return Confirmed(p.id, p.channel, address, changed=False)
        raise InputError(
            "URL",
            _("post {id} was already confirmed as published at {url}").format(
                id=p.id, url=p.remote_url or "?"
            ),
            _("a post keeps the first address confirmed; give that one, or none"),
        )
    if p.state != State.HANDED_OFF:
        raise InputError(
            "POST",
            _("post {id} is {state}, not handed off to an editorial desk").format(
                id=p.id, state=p.state.value
            ),
            _("only a post mailed to a portal's desk (handed_off) is confirmed"),
        )
    cause = f"confirmed by {by} ({via}): published at {address}"
    p.remote_url, p.published_at = address, now
    transition(s, p, State.PUBLISHED, now, cause, actor=by, audit_as="confirm", detail=cause)
    return Confirmed(p.id, p.channel, address, changed=True)


_HINT_LIST = "see 'publisher queue list --state handed_off'"


def live_url(config: Config, channel: str, url: str) -> str:
    """``url`` as a confirmed live address of a post on ``channel``: an http(s) address with a
    host, under the channel's ``site`` unless its ``any_url`` is set; InputError otherwise."""
    address = url.strip()
    parts = urlsplit(address)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or address != clean(address)
        or any(c.isspace() for c in address)
        or len(address) > 2000
    ):
        raise InputError(
            "URL",
            _("{url!r} is not a web address").format(url=address[:200]),
            _("give the published article's address, e.g. https://pbgdpl.example.gov.vn/…"),
        )
    ch = config.channels.get(channel)
    settings = ch.settings if ch is not None else None
    if not isinstance(settings, EmailSettings) or settings.any_url:
        return address
    if not under(address, settings.site):
        raise InputError(
            "URL",
            _("{url} is not on the portal {site}").format(url=address, site=settings.site),
            _(
                "give the article's address on {site}, or set any_url = true in "
                "[channels.{channel}] if the portal publishes elsewhere"
            ).format(site=settings.site, channel=channel),
        )
    return address


def under(url: str, site: str) -> bool:
    """Whether ``url`` lies under ``site``: the same host (and port), a path inside the site's,
    and https unless the site itself is plain http."""
    a, b = urlsplit(url), urlsplit(site)
    if (a.hostname or "").lower() != (b.hostname or "").lower() or a.port != b.port:
        return False
    if a.scheme.lower() != "https" and a.scheme.lower() != b.scheme.lower():
        return False
    base = b.path.rstrip("/") + "/"
    return (a.path.rstrip("/") + "/").startswith(base)


def post_for_message_id(s: Session, message_id: str) -> int | None:
    """The post whose hand-off mail had ``message_id`` (as a reply's In-Reply-To or References
    quotes it, ``<…>``), in any state; None if it is no post's. The reader of replies then calls
    ``confirm(..., via="reply")``, which refuses a post that is not handed off."""
    key = key_of_message_id(message_id)
    query = select(PostRow.id)
    if key is not None:
        found = s.scalar(query.where(PostRow.idempotency_key == key))
        if found is not None:
            return int(found)
    found = s.scalar(query.where(PostRow.remote_id == message_id.strip()).limit(1))
    return None if found is None else int(found)


def overdue_handoffs(s: Session, config: Config, now: datetime) -> list[Handoff]:
    """The handed-off posts not confirmed within their channel's ``confirm_within`` at
    ``now`` (post id, channel, when handed off, deadline), the oldest deadline first."""
    return handoffs.overdue(s, config, now)
