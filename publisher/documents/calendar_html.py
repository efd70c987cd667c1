"""The posting calendar as one standalone HTML page: month grids, cards and per-channel previews.

``render_calendar`` is pure (values in, a string out; it reads only its own template files);
``load_extra`` is the one database read it needs. The page itself loads nothing from the network.
"""

from __future__ import annotations

import base64
import calendar as stdlib_calendar
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import select

from publisher.config import Config
from publisher.documents.pictures import (
    Shown,
    Thumb,
    load_thumbnails,
    pictures_of,
    size_text,
    text_fields,
)
from publisher.documents.preview import WEEKDAYS_VI, Item
from publisher.states import KIND_LABELS_VI, LABELS_VI, explain_vi
from publisher.store.db import Database
from publisher.store.history import last_causes
from publisher.store.models import PostRow

# Calm, print-safe colours with enough contrast for white text; assigned in config order.
PALETTE = ("#1f5fa8", "#0f7b6c", "#a85d12", "#6b4aa5", "#a3364c", "#4d6a1e", "#2d6e8e", "#7a5230")
# How a state looks on a card: neutral, info, good, warn, bad or muted.
STATE_TONES = {
    "draft": "neutral",
    "approved": "info",
    "held": "warn",
    "rejected": "bad",
    "sending": "info",
    "retrying": "warn",
    "unconfirmed": "warn",
    "needs_review": "warn",
    "handed_off": "handoff",  # mailed to a portal's desk, awaiting its confirmation
    "published": "good",
    "failed": "bad",
    "missed": "bad",
    "cancelled": "muted",
}
# Which mock-up previews a channel's post: the adapter decides what the post looks like.
PREVIEW_FAMILY = {
    "facebook": "facebook",
    "zalo": "zalo",
    "wordpress": "portal",
    "webhook": "portal",
    "email": "portal",  # the article the desk is mailed is the portal's article
}
UNPLANNED = "Chưa xếp được lịch"
_CHUNK = 500  # ids per IN (...) query


@dataclass(frozen=True)
class PostExtra:
    """What the calendar shows of a post beyond ``preview.Item``, read from the queue."""

    remote_url: str | None = None
    published_at: datetime | None = None
    last_error: str | None = None
    reason: str | None = None  # the cause recorded with the post's last state change
    occurrence: int | None = None
    updated_at: datetime | None = None


def load_extra(db: Database, ids: Iterable[int]) -> dict[int, PostExtra]:
    """Live links, errors, last causes and identity of the posts ``ids``, in one read."""
    wanted = sorted(set(ids))
    out: dict[int, PostExtra] = {}
    with db.read() as s:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            causes = last_causes(s, chunk)
            for p in s.scalars(select(PostRow).where(PostRow.id.in_(chunk))):
                out[p.id] = PostExtra(
                    remote_url=p.remote_url,
                    published_at=p.published_at,
                    last_error=p.last_error,
                    reason=causes.get(p.id),
                    occurrence=p.occurrence,
                    updated_at=p.updated_at,
                )
    return out


def load_pictures(db: Database, entries: Iterable[Item]) -> dict[str, Thumb]:
    """A thumbnail of each stored picture ``entries`` show, by SHA-256: each made once, however
    many posts show it (the campaign's banner is on every post)."""
    return load_thumbnails(db, (p.sha256 for i in entries for p in pictures_of(i.fields)))


def live_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) address, else None (never a ``javascript:`` link)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


@dataclass(frozen=True)
class _Channel:
    name: str
    colour: int  # index into PALETTE
    family: str | None  # which preview mock-up: facebook, zalo, portal (None: plain text)


@dataclass
class _Card:
    id: int
    channel: str
    ch: int  # the channel's palette index
    channel_name: str
    time: str
    kind: str
    title: str
    state: str
    state_label: str
    tone: str
    live_url: str | None
    reason: str | None
    published: str | None


@dataclass
class _Day:
    day: date
    in_month: bool
    in_window: bool
    today: bool
    key_name: str | None
    cards: list[_Card] = field(default_factory=list)


@dataclass
class _Month:
    title: str
    weeks: list[list[_Day]]


def _mix_white(colour: str, share: float) -> str:
    """``colour`` blended with white, keeping ``share`` of the colour: a soft background."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * share):02x}" for c in rgb)


def _when(t: datetime) -> str:
    return f"{WEEKDAYS_VI[t.weekday()]}, {t:%d/%m/%Y} lúc {t:%H:%M}"


def _reason(item: Item, extra: PostExtra) -> str | None:
    if item.due_at is None:
        return item.note or "Không còn chỗ trống phù hợp trong lịch."
    return explain_vi(item.state, extra.reason or extra.last_error or item.note)


def _state_rank(state: str) -> int:
    order = list(STATE_TONES)
    return order.index(state) if state in order else len(order)


def _months(first: date, last: date) -> list[tuple[int, int]]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@cache
def _asset(name: str) -> str:
    return (resources.files("publisher.documents") / "templates" / name).read_text(encoding="utf-8")


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,  # every text the page shows is escaped; only our own CSS/JS is |safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(_asset("calendar.html.j2"))


def _json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment or an entity."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_calendar(
    entries: Sequence[Item],
    config: Config,
    *,
    generated_at: datetime,
    extra: Mapping[int, PostExtra] | None = None,
    pictures: Mapping[str, Thumb] | None = None,
) -> str:
    """The calendar of ``entries`` as one self-contained HTML document (Vietnamese labels);
    ``pictures`` (from ``load_pictures``) are the thumbnails its previews show, each embedded
    once as a ``data:`` address."""
    tz, camp = config.tz, config.campaign
    now = generated_at.astimezone(tz)
    channels = _channels(entries, config)
    cards, posts = _lay_out(entries, channels, tz, extra or {})
    thumbs = pictures or {}
    shown = {p["thumb"] for post in posts.values() for p in post["pictures"] if p["thumb"]}
    embedded = {
        sha: {"src": thumbs[sha].data_uri(), "width": thumbs[sha].width}
        for sha in sorted(shown)
        if sha in thumbs
    }
    for post in posts.values():  # a picture not stored (or unreadable) shows as its name only
        for p in post["pictures"]:
            p["thumb"] = p["thumb"] if p["thumb"] in embedded else None
    states = Counter(i.state for i in entries)
    kinds = Counter(i.kind for i in entries)
    script = _asset("calendar.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return _template().render(
        campaign=camp,
        tz_name=tz.key,
        generated=f"{now:%H:%M} ngày {now:%d/%m/%Y}",
        weekdays=WEEKDAYS_VI,
        months=_month_grids(cards, config, now.date()),
        unplanned=cards.get(None, []),
        unplanned_title=UNPLANNED,
        legend=_legend(entries, channels, config),
        palette=[(i, c, _mix_white(c, 0.1)) for i, c in enumerate(PALETTE)],
        total=len(entries),
        kinds=[(KIND_LABELS_VI.get(k, k), n) for k, n in sorted(kinds.items())],
        states=[
            (LABELS_VI.get(s, s), STATE_TONES.get(s, "neutral"), n)
            for s, n in sorted(states.items(), key=lambda kv: _state_rank(kv[0]))
        ],
        key_dates=sorted(config.key_dates.values(), key=lambda k: k.date),
        data=_json_for_script(
            {"organisation": camp.organisation, "posts": posts, "pictures": embedded}
        ),
        style=_asset("calendar.css"),
        script=script,
        script_hash=f"sha256-{digest}",
    )


def _channels(entries: Sequence[Item], config: Config) -> dict[str, _Channel]:
    """The configured channels in config order, then any channel since removed that has posts."""
    channels = {
        cid: _Channel(ch.name, i % len(PALETTE), PREVIEW_FAMILY.get(ch.adapter))
        for i, (cid, ch) in enumerate(config.channels.items())
    }
    for cid in sorted({i.channel for i in entries} - set(channels)):  # a channel since removed
        channels[cid] = _Channel(cid, len(channels) % len(PALETTE), None)
    return channels


def _lay_out(
    entries: Sequence[Item],
    channels: Mapping[str, _Channel],
    tz: ZoneInfo,
    extra: Mapping[int, PostExtra],
) -> tuple[dict[date | None, list[_Card]], dict[str, dict[str, Any]]]:
    """Each entry's card under its local day (None: unplanned), and its preview data by id."""
    cards: dict[date | None, list[_Card]] = {}
    posts: dict[str, dict[str, Any]] = {}
    for item in entries:
        local = item.due_at.astimezone(tz) if item.due_at else None
        ch = channels[item.channel]
        card = _card(item, ch, local, extra.get(item.id, PostExtra()), tz)
        cards.setdefault(local.date() if local else None, []).append(card)
        posts[str(item.id)] = _preview(item, ch, card, local)
    return cards, posts


def _card(item: Item, ch: _Channel, local: datetime | None, more: PostExtra, tz: ZoneInfo) -> _Card:
    """The card of ``item`` due at ``local`` (None: unplanned) on channel ``ch``."""
    published = more.published_at.astimezone(tz) if more.published_at else None
    return _Card(
        id=item.id,
        channel=item.channel,
        ch=ch.colour,
        channel_name=ch.name,
        time=f"{local:%H:%M}" if local else "",
        kind=KIND_LABELS_VI.get(item.kind, item.kind),
        title=item.title,
        state=item.state,
        state_label=LABELS_VI.get(item.state, item.state),
        tone=STATE_TONES.get(item.state, "neutral"),
        live_url=live_url(more.remote_url),
        reason=_reason(item, more),
        published=f"{published:%H:%M %d/%m/%Y}" if published else None,
    )


def _preview(item: Item, ch: _Channel, card: _Card, local: datetime | None) -> dict[str, Any]:
    """What the page's script needs to preview ``item`` as its channel would show it."""
    return {
        "id": item.id,
        "channel": item.channel,
        "family": ch.family,
        "title": item.title,
        "kind": card.kind,
        "when": _when(local) if local else UNPLANNED,
        "date": f"{local.day} tháng {local.month} lúc {local:%H:%M}" if local else "",
        "state": card.state_label,
        "tone": card.tone,
        "text": item.text,
        "fields": {k: v for k, v in text_fields(item.fields).items() if isinstance(v, str)},
        "pictures": [_picture(p) for p in pictures_of(item.fields)],
        "reason": card.reason,
        "live": card.live_url,
        "published": card.published,
    }


def _picture(p: Shown) -> dict[str, Any]:
    """What a preview shows of one picture (its thumbnail is ``data.pictures[thumb]``)."""
    about = [x for x in (p.dimensions, size_text(p.size) if p.size else "") if x]
    return {
        "role": p.role,
        "label": p.role_vi,
        "alt": p.alt,
        "name": p.name or p.src,
        "about": ", ".join(about),
        "url": live_url(p.url) or (live_url(p.src) if not p.is_file else None),
        "thumb": p.sha256 or None,
    }


def _month_grids(
    cards: Mapping[date | None, list[_Card]], config: Config, today: date
) -> list[_Month]:
    """Monday-first grids of every month from the campaign's start, or an earlier planned card,
    to its end, or a later one; each day holds its cards."""
    camp = config.campaign
    planned = [d for d in cards if d is not None]
    first, last = min([camp.start, *planned]), max([camp.end, *planned])
    grid = stdlib_calendar.Calendar(firstweekday=0)
    return [
        _Month(
            f"Tháng {m} năm {y}",
            [
                [
                    _Day(
                        day=d,
                        in_month=d.month == m,
                        in_window=camp.start <= d <= camp.end,
                        today=d == today,
                        key_name=k.name if (k := config.key_date_on(d)) else None,
                        cards=cards.get(d, []) if d.month == m else [],
                    )
                    for d in week
                ]
                for week in grid.monthdatescalendar(y, m)
            ],
        )
        for y, m in _months(first, last)
    ]


def _legend(
    entries: Sequence[Item], channels: Mapping[str, _Channel], config: Config
) -> list[dict[str, Any]]:
    """The channels with posts, or enabled in the config, and how many posts each has."""
    used = Counter(i.channel for i in entries)
    return [
        {"id": cid, "name": c.name, "ch": c.colour, "count": used[cid]}
        for cid, c in channels.items()
        if used[cid] or (cid in config.channels and config.channels[cid].enabled)
    ]
