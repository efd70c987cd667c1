"""The posting calendar as an RFC 5545 iCalendar file (one event per planned post).

Pure: values in, bytes out; no clock, no network, no database. A post's UID depends only on its
message key, channel and occurrence, so re-importing (even after a database rebuild) updates the
events instead of duplicating them, and SEQUENCE grows whenever the post changed.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event  # type: ignore[import-untyped]  # ships no py.typed

from publisher.config import Config
from publisher.documents.calendar_html import PostExtra, live_url
from publisher.documents.preview import Item
from publisher.states import KIND_LABELS_VI, LABELS_VI, explain_vi

PRODID = "-//publisher//Lich dang bai//VI"
DURATION = timedelta(minutes=30)
DESCRIPTION_CHARS = 500
# An arbitrary fixed namespace: UIDs are uuid5(namespace, "<message key>|<channel>|<occurrence>").
UID_NAMESPACE = uuid.UUID("6f0b8a52-3c1e-4e8e-9d3a-6a1f2b7c9d40")
# VEVENT STATUS has three values; every other state maps to TENTATIVE (not known to go out).
CONFIRMED = frozenset(
    {"approved", "sending", "retrying", "unconfirmed", "handed_off", "published", "needs_review"}
)
_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|h[1-6]|li|blockquote)>|<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]+")


def post_uid(item: Item, extra: PostExtra | None) -> str:
    """The event's UID: stable for a post's whole life and across database rebuilds."""
    if extra is not None and extra.occurrence is not None:
        name = f"{item.message}|{item.channel}|{extra.occurrence}"
        return f"post-{uuid.uuid5(UID_NAMESPACE, name)}@publisher"
    # Without the occurrence, the post id keeps it unique (stable within one database).
    return f"post-{item.id}-{uuid.uuid5(UID_NAMESPACE, f'{item.message}|{item.channel}')}@publisher"


def plain_text(text: str) -> str:
    """A render's main text without HTML tags or entities, paragraphs kept."""
    text = _TAG.sub("", _BLOCK_END.sub("\n\n", text))
    lines = [_SPACES.sub(" ", line).strip() for line in html.unescape(text).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def shorten(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    inside_word = not (head[-1:].isspace() or text[limit - 1].isspace())
    if inside_word and any(c.isspace() for c in head):
        head = head.rsplit(None, 1)[0]
    return head.rstrip(" ,.;:\n") + "…"


def event_status(state: str) -> str:
    if state == "cancelled":
        return "CANCELLED"
    return "CONFIRMED" if state in CONFIRMED else "TENTATIVE"


def _description(item: Item, config: Config, more: PostExtra, url: str | None) -> str:
    channel = config.channels.get(item.channel)
    parts = [shorten(plain_text(item.text))]
    kind = KIND_LABELS_VI.get(item.kind, item.kind)
    parts.append(
        f"Kênh: {channel.name if channel else item.channel} · {kind} · "
        f"Trạng thái: {LABELS_VI.get(item.state, item.state)}"
    )
    if url:
        parts.append(f"Bài đã đăng: {url}")
    why = explain_vi(item.state, more.reason or more.last_error)
    if why:
        parts.append(f"Lý do: {why}")
    parts.append(f"Mã bài: {item.id} · {item.message}")
    return "\n\n".join(p for p in parts if p)


def render_ics(
    entries: Sequence[Item],
    config: Config,
    *,
    generated_at: datetime,
    extra: Mapping[int, PostExtra] | None = None,
) -> bytes:
    """One VEVENT per post that has a time, in the campaign's time zone (unplanned: left out).

    ``extra`` (from ``calendar_html.load_extra``) gives each post's occurrence (for the UID), its
    last change (SEQUENCE, LAST-MODIFIED) and its live link; without it UIDs fall back to the id.
    """
    tz, camp, extra = config.tz, config.campaign, extra or {}
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", camp.name)
    cal.add("x-wr-caldesc", f"Lịch đăng bài · {camp.organisation} · {camp.theme}")
    cal.add("x-wr-timezone", tz.key)
    stamp = generated_at.astimezone(UTC)
    for item in entries:
        if item.due_at is None:
            continue
        more = extra.get(item.id, PostExtra())
        channel = config.channels.get(item.channel)
        url = live_url(more.remote_url) if item.state == "published" else None
        ev = Event()
        ev.add("uid", post_uid(item, extra.get(item.id)))
        ev.add("dtstamp", stamp)
        ev.add("dtstart", item.due_at.astimezone(tz))
        ev.add("duration", DURATION)
        ev.add("summary", f"[{channel.name if channel else item.channel}] {item.title}")
        ev.add("description", _description(item, config, more, url))
        ev.add("categories", [item.channel, item.kind])
        ev.add("status", event_status(item.state))
        ev.add("transp", "TRANSPARENT")  # a post does not make anyone busy
        if more.updated_at is not None:
            # Seconds since the epoch: grows with every change, so a re-import replaces the event.
            ev.add("sequence", int(more.updated_at.timestamp()))
            ev.add("last-modified", more.updated_at.astimezone(UTC))
        else:
            ev.add("sequence", 0)
        if url:
            ev.add("url", url)
        cal.add_component(ev)
    cal.add_missing_timezones()  # the VTIMEZONE for every TZID used, from zoneinfo
    return bytes(cal.to_ical())
