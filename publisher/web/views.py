"""What the pages show, read from the queue: filters, the month grid, the post list and one
post's record. No HTML here (templates/), no writes (actions.py)."""

from __future__ import annotations

import calendar as stdlib_calendar
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from publisher.config import Config
from publisher.config.board import role_label
from publisher.documents import preview
from publisher.documents.calendar_html import (
    PALETTE,
    PREVIEW_FAMILY,
    STATE_TONES,
    PostExtra,
    live_url,
    load_extra,
)
from publisher.documents.pictures import (
    MEDIA_FIELD,
    THUMB_WIDTH,
    Shown,
    Thumb,
    cached_thumbnail,
    is_sha256,
    pictures_of,
    size_text,
    text_fields,
    thumbnail,
)
from publisher.editorial.load import RenderCheck
from publisher.i18n import N_
from publisher.render import FIELDS, fields_hash
from publisher.states import KIND_LABELS_VI, LABELS_VI, State, explain_vi
from publisher.store import approvals, audit, reach
from publisher.store.history import last_causes
from publisher.store.models import AuditEntry, MediaFile, PostRow
from publisher.web.auth import Refused
from publisher.web.context import WebContext
from publisher.web.lang import _, language

KINDS = ("slogan", "article")
# A picture's role as a page names it (msgids).
PICTURE_ROLES = {"cover": N_("Cover image"), "image": N_("Picture")}
AUDIT_PAGE = 50


@dataclass(frozen=True)
class Filters:
    """The query string's channel, state and kind (empty: all)."""

    channel: str = ""
    state: str = ""
    kind: str = ""

    def query(self, **more: str) -> str:
        from urllib.parse import urlencode

        pairs = {"channel": self.channel, "state": self.state, "kind": self.kind, **more}
        return urlencode({k: v for k, v in pairs.items() if v})


def bad_field(name: str, problem: str) -> Refused:
    return Refused(400, _("Bad request"), f"{name}: {problem}")


def filters_of(config: Config, params: Mapping[str, str]) -> Filters:
    """The filters a query string asks for, or Refused(400) naming the bad one."""
    channel = params.get("channel", "").strip()
    state = params.get("state", "").strip()
    kind = params.get("kind", "").strip()
    if channel and channel not in config.channels:
        raise bad_field("channel", _("no such channel; choose one from the list"))
    if state and state not in {s.value for s in State}:
        raise bad_field("state", _("no such state; choose one from the list"))
    if kind and kind not in KINDS:
        raise bad_field("kind", _("must be slogan or article"))
    return Filters(channel, state, kind)


def month_of(config: Config, value: str, today: date) -> tuple[int, int]:
    """``YYYY-MM`` from the query string, else this month inside the campaign, else its first."""
    if value:
        try:
            year, month = (int(x) for x in value.split("-", 1))
            date(year, month, 1)
        except ValueError:
            raise bad_field("month", _("must be a month like 2024-06")) from None
        if not 2000 <= year <= 2100:
            raise bad_field("month", _("must be a month like 2024-06"))
        return year, month
    camp = config.campaign
    pick = today if camp.start <= today <= camp.end else camp.start
    return pick.year, pick.month


def channel_colours(config: Config) -> dict[str, int]:
    """Each channel's colour (an index into the calendar's palette), in config order."""
    return {cid: i % len(PALETTE) for i, cid in enumerate(config.channels)}


@dataclass
class Card:
    id: int
    time: str
    date: str
    channel: str
    channel_name: str
    colour: int
    kind: str
    title: str
    state: str
    state_label: str
    tone: str
    cover: dict[str, Any] | None = None  # its cover (else first picture), as ``picture_view``
    pictures: int = 0  # how many it has


@dataclass
class Day:
    day: date
    in_month: bool
    in_window: bool
    today: bool
    key_name: str | None
    cards: list[Card] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def _cover(media: str, lang: str) -> tuple[dict[str, Any] | None, int]:
    """A card's cover (as ``picture_view``) and picture count, from its ``media`` field, in the
    language ``lang`` (a page of a month reads the same few pictures hundreds of times)."""
    pictures = sorted(pictures_of({MEDIA_FIELD: media}), key=lambda p: p.role != "cover")
    return (picture_view(pictures[0]) if pictures else None), len(pictures)


def _card(item: preview.Item, config: Config, colours: Mapping[str, int]) -> Card:
    local = item.due_at.astimezone(config.tz) if item.due_at else None
    ch = config.channels.get(item.channel)
    media = item.fields.get(MEDIA_FIELD)
    cover, count = _cover(media, language()) if isinstance(media, str) else (None, 0)
    return Card(
        id=item.id,
        time=f"{local:%H:%M}" if local else "",
        date=f"{local:%d/%m/%Y}" if local else "",
        channel=item.channel,
        channel_name=ch.name if ch else item.channel,
        colour=colours.get(item.channel, 0),
        kind=KIND_LABELS_VI.get(item.kind, item.kind),
        title=item.title,
        state=item.state,
        state_label=LABELS_VI.get(item.state, item.state),
        tone=STATE_TONES.get(item.state, "neutral"),
        cover=cover,
        pictures=count,
    )


def picture_view(p: Shown, preview: Thumb | None = None) -> dict[str, Any]:
    """What a page shows of picture ``p``: its role, alt text, file, size, public address, and
    where its thumbnail is (``preview``'s ``data:`` address for a render not yet stored, else
    /media/<sha256>/thumb; None for an address, which a page never loads)."""
    width = min(THUMB_WIDTH, p.width) if p.width else 0
    height = round(p.height * width / p.width) if p.width and p.height else 0
    thumb = f"/media/{p.sha256}/thumb" if p.is_file else None
    if preview is not None:
        thumb, width, height = preview.data_uri(), preview.width, preview.height
    label = PICTURE_ROLES.get(p.role)
    decimal = "," if language() == "vi" else "."
    return {
        "role": p.role,
        "label": _(label) if label else p.role,
        "alt": p.alt,
        "name": p.name or p.src,
        "dimensions": p.dimensions,
        "size": size_text(p.size, decimal) if p.size else "",
        "url": live_url(p.url) or (None if p.is_file else live_url(p.src)),
        "thumb": thumb,
        "full": f"/media/{p.sha256}" if p.is_file and preview is None else None,
        "width": width,
        "height": height,
    }


def cards(
    ctx: WebContext,
    filters: Filters,
    start: date | None = None,
    end: date | None = None,
    *,
    unplanned: bool = False,
) -> list[Card]:
    """The posts matching ``filters`` (between local dates ``start`` and ``end``; ``unplanned``:
    only those without a time) as cards. A card shows no text: none is read."""
    config = ctx.config
    entries = preview.items(
        ctx.db,
        config,
        channel=filters.channel or None,
        start=start,
        end=end,
        states=[filters.state] if filters.state else None,
        kind=filters.kind or None,
        include_cancelled=filters.state == State.CANCELLED,
        unplanned=unplanned,
        bare=True,
    )
    colours = channel_colours(config)
    return [_card(i, config, colours) for i in entries]


def month_grid(ctx: WebContext, filters: Filters, year: int, month: int) -> list[list[Day]]:
    """The Monday-first weeks of ``month``, each day with its cards."""
    config = ctx.config
    weeks = stdlib_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    first, last = weeks[0][0], weeks[-1][-1]
    by_day: dict[str, list[Card]] = {}
    for c in cards(ctx, filters, first, last):
        by_day.setdefault(c.date, []).append(c)
    today = ctx.now().astimezone(config.tz).date()
    camp = config.campaign
    return [
        [
            Day(
                day=d,
                in_month=d.month == month,
                in_window=camp.start <= d <= camp.end,
                today=d == today,
                key_name=k.name if (k := config.key_date_on(d)) else None,
                cards=by_day.get(f"{d:%d/%m/%Y}", []),
            )
            for d in week
        ]
        for week in weeks
    ]


def unplanned(ctx: WebContext, filters: Filters) -> list[Card]:
    return cards(ctx, filters, unplanned=True)  # in SQL: the whole queue is not read again


def neighbour_months(year: int, month: int) -> tuple[str, str]:
    before = (year - 1, 12) if month == 1 else (year, month - 1)
    after = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{before[0]:04d}-{before[1]:02d}", f"{after[0]:04d}-{after[1]:02d}"


def local_text(t: datetime | None, config: Config) -> str:
    """``dd/mm/yyyy HH:MM`` in the campaign's time zone ('' without a time)."""
    return f"{t.astimezone(config.tz):%d/%m/%Y %H:%M}" if t else ""


def _shown_fields(channel_adapter: str, stored: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each rendered field as the platform takes it: name, text, and a link if it is one."""
    stored = text_fields(stored)  # the pictures are shown as pictures (``post_page``)
    names = [s.name for s in FIELDS.get(channel_adapter, ())] or list(stored)
    names += [k for k in stored if k not in names]
    out = []
    for name in names:
        value = stored.get(name)
        if value in (None, ""):
            continue
        text = str(value)
        out.append({"name": name, "text": text, "url": live_url(text)})
    return out


def _pictures(s: Session, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pictures of a post's ``fields``; a file whose bytes are not stored shows no image."""
    pictures = pictures_of(fields)
    stored = stored_pictures(s, (p.sha256 for p in pictures if p.is_file))
    out = []
    for p in pictures:
        view = picture_view(p)
        if p.is_file and p.sha256 not in stored:
            view["thumb"] = view["full"] = None
        out.append(view)
    return out


def stored_pictures(s: Session, shas: Iterable[str]) -> set[str]:
    """Which of the pictures ``shas`` (SHA-256) the queue keeps: the app can serve them."""
    wanted = sorted(set(shas))
    if not wanted:
        return set()
    return set(s.scalars(select(MediaFile.sha256).where(MediaFile.sha256.in_(wanted))))


def _approval(ctx: WebContext, p: PostRow) -> dict[str, Any] | None:
    if not p.approved_by:
        return None
    current = RenderCheck(ctx.config)(p)
    return {
        "by": p.approved_by,
        "at": local_text(p.approved_at, ctx.config),
        "matches": p.approved_hash == fields_hash(p.fields) and p.approved_hash == current,
    }


def _steps(ctx: WebContext, s: Session, p: PostRow) -> list[dict[str, Any]]:
    """A draft's approval steps (``[board] approval_steps`` of more than one): each step, who
    took it and when, or pending. Empty for a one-step board or a post past its approval."""
    steps = ctx.config.approval.steps
    if len(steps) < 2 or p.state != State.DRAFT:
        return []
    done = {a.step: a for a in approvals.of_post(s, p, steps).done}
    return [
        {
            "number": n,
            "role": role_label(step),
            "who": done[step].actor if step in done else None,
            "at": local_text(done[step].at, ctx.config) if step in done else None,
        }
        for n, step in enumerate(steps, 1)
    ]


def post_figures(s: Session, p: PostRow, config: Config) -> dict[str, Any] | None:
    """A published post's latest figures as the post page shows them: each figure read (label,
    number), when, and the platform's reason when it keeps none; None unless published."""
    if p.state != State.PUBLISHED:
        return None
    snap = reach.figures_of(s, p.id)
    names = reach.figure_names()
    if snap is None or not snap.available:
        return {
            "available": False,
            "rows": [],
            "when": local_text(snap.taken_at, config) if snap else "",
            "note": reach.note_text(snap.note) if snap and snap.note else None,
            "none": reach.no_figures_label(),
        }
    items = [
        {"name": names[k], "value": reach.number(v)}
        for k in names
        if (v := getattr(snap.reading, k)) is not None
    ]
    return {
        "available": True,
        "rows": items,
        "when": local_text(snap.taken_at, config),
        "note": None,
        "none": reach.no_figures_label(),
    }


def reach_rows(
    reach_info: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The status page's reach table: a row per channel (``status.gather``'s "reach"), named as
    the board knows it, every number as the user reads it ("không có số liệu" where none)."""
    return [
        {
            "channel": names.get(cid, cid),
            "published": r["published"],
            "read": r["read"],
            "views": reach.number(r["views"]),
            "reactions": reach.number(r["reactions"]),
            "shares": reach.number(r["shares"]),
            "when": r["taken_at"],
        }
        for cid, r in reach_info.items()
    ]


def post_page(ctx: WebContext, post_id: int) -> dict[str, Any]:
    """Everything the post page shows of post ``post_id``, or Refused(404)."""
    config = ctx.config
    with ctx.db.read() as s:
        p = s.get(PostRow, post_id)
        if p is None:
            raise Refused(404, _("Not found"), _("No post has id %(id)s.", id=post_id))
        ch = config.channels.get(p.channel)
        adapter = ch.adapter if ch else ""
        cause = last_causes(s, [p.id]).get(p.id)
        info = {
            "id": p.id,
            "key": p.message.key,
            "file": p.message.source_path,
            "kind": KIND_LABELS_VI.get(p.message.kind, p.message.kind),
            "title": p.message.title,
            "channel": p.channel,
            "channel_name": ch.name if ch else p.channel,
            "colour": channel_colours(config).get(p.channel, 0),
            "family": PREVIEW_FAMILY.get(adapter, "portal"),
            "state": p.state,
            "state_label": LABELS_VI.get(p.state, p.state),
            "tone": STATE_TONES.get(p.state, "neutral"),
            "explain": explain_vi(p.state, cause or p.last_error or p.plan_note),
            "due": local_text(p.due_at, config),
            "due_input": f"{p.due_at.astimezone(config.tz):%Y-%m-%dT%H:%M}" if p.due_at else "",
            "fields": _shown_fields(adapter, p.fields),
            "pictures": _pictures(s, p.fields),
            "approval": _approval(ctx, p),
            "steps": _steps(ctx, s, p),
            "last_error": p.last_error,
            "live": live_url(p.remote_url),
            "published": local_text(p.published_at, config),
            "figures": post_figures(s, p, config),
            "history": [
                {
                    "at": local_text(e.at, config),
                    "actor": e.actor,
                    "from": LABELS_VI.get(e.from_state, e.from_state) if e.from_state else "",
                    "to": LABELS_VI.get(e.to_state, e.to_state),
                    "cause": e.cause,
                }
                for e in p.events
            ],
        }
    info["audit"] = [_audit_row(a, config) for a in audit.entries(ctx.db, post_id=post_id)]
    return info


def _audit_row(a: AuditEntry, config: Config) -> dict[str, Any]:
    return {
        "id": a.id,
        "at": local_text(a.at, config),
        "actor": a.actor,
        "action": a.action,
        "post_id": a.post_id,
        "subject": a.subject,
        "detail": a.detail,
    }


def audit_page(ctx: WebContext, page: int) -> tuple[list[dict[str, Any]], int]:
    """Page ``page`` (1 = the newest) of the audit trail, and how many pages there are."""
    with ctx.db.read() as s:
        total = int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)
        rows = s.scalars(
            select(AuditEntry)
            .order_by(AuditEntry.id.desc())
            .offset((page - 1) * AUDIT_PAGE)
            .limit(AUDIT_PAGE)
        )
        out = [_audit_row(a, ctx.config) for a in rows]
    return out, max(1, -(-total // AUDIT_PAGE))


def extra_of(ctx: WebContext, ids: Sequence[int]) -> dict[int, PostExtra]:
    return load_extra(ctx.db, ids)


def media_file(ctx: WebContext, sha256: str) -> MediaFile:
    """The stored picture whose bytes have SHA-256 ``sha256``, or Refused(404)."""
    found = None
    if is_sha256(sha256):
        with ctx.db.read() as s:
            found = s.get(MediaFile, sha256)
    if found is None:
        raise Refused(404, _("Not found"), _("No picture is stored under this address."))
    return found


def media_thumbnail(ctx: WebContext, sha256: str) -> Thumb:
    """The thumbnail of the stored picture ``sha256`` (made once, then cached), or
    Refused(404): for a picture not stored, or one Pillow cannot read."""
    thumb = None
    if is_sha256(sha256):
        with ctx.db.read() as s:
            known = s.scalar(select(MediaFile.sha256).where(MediaFile.sha256 == sha256))
            if known is not None:
                thumb = cached_thumbnail(sha256)
                if thumb is None:
                    data = s.scalar(select(MediaFile.data).where(MediaFile.sha256 == sha256))
                    thumb = thumbnail(sha256, data or b"")
    if thumb is None:
        raise Refused(404, _("Not found"), _("No picture is stored under this address."))
    return thumb
