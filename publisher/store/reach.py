"""Reach as it is shown: a post's latest figures, and each channel's totals as of a moment.

Read from the snapshots ``publisher.store.metrics`` keeps (``status``, ``queue show``, the web
app and the API show these). A figure no snapshot has is None — "không có số liệu", never an
invented zero: a channel's total of a figure is None unless at least one of its posts has it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.i18n import _
from publisher.metrics import FIGURES
from publisher.states import State
from publisher.store.metrics import Snapshot, latest
from publisher.store.models import PostRow


def no_figures_label() -> str:
    """What is shown where there are no figures (Vietnamese: "không có số liệu")."""
    return _("no figures")


def figures(
    s: Session, post_ids: Iterable[int], *, until: datetime | None = None
) -> dict[int, Snapshot]:
    """Each of ``post_ids``' latest snapshot taken at or before ``until``; a post never read
    is absent."""
    return latest(s, list(post_ids), until=until)


def figures_of(s: Session, post_id: int, *, until: datetime | None = None) -> Snapshot | None:
    """One post's latest snapshot, or None if it was never read."""
    return latest(s, [post_id], until=until).get(post_id)


@dataclass
class ChannelReach:
    """One channel's reach as of a moment: its published posts, how many have figures, and the
    sum of each figure over the posts that report it (None where none does)."""

    channel: str
    published: int = 0
    read: int = 0  # posts with at least one figure
    without: int = 0  # posts read whose platform keeps no figures (a note)
    totals: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(FIGURES))
    taken_at: datetime | None = None  # the newest snapshot counted

    def add(self, snap: Snapshot) -> None:
        if snap.taken_at is not None and (self.taken_at is None or snap.taken_at > self.taken_at):
            self.taken_at = snap.taken_at
        if not snap.available:
            self.without += 1
            return
        self.read += 1
        for name in FIGURES:
            value = getattr(snap.reading, name)
            if value is not None:
                self.totals[name] = (self.totals[name] or 0) + value


def totals(
    s: Session, *, until: datetime | None = None, channels: Iterable[str] | None = None
) -> dict[str, ChannelReach]:
    """Each channel's reach as of ``until`` (default: now, every snapshot), from its published
    posts' latest snapshots; every channel of ``channels`` is listed, even with no post."""
    found = {cid: ChannelReach(cid) for cid in channels or ()}
    q = select(PostRow.channel, PostRow.id).where(PostRow.state == State.PUBLISHED)
    if until is not None:
        q = q.where(PostRow.published_at <= until)
    posts = list(s.execute(q))
    for channel, _post in posts:
        found.setdefault(channel, ChannelReach(channel)).published += 1
    snaps = latest(s, [p for _c, p in posts], until=until)
    for channel, post in posts:
        if post in snaps:
            found[channel].add(snaps[post])
    return found


def as_dict(snap: Snapshot | None, tz: ZoneInfo) -> dict[str, Any]:
    """A snapshot as JSON (``status --json``, ``queue show``, the API): every figure (None where
    the platform gave none), when it was taken (local ISO time), its note and whether it has
    any figure at all; a post never read: ``available`` false and no ``taken_at``."""
    if snap is None:
        return {"available": False, "taken_at": None, "note": None, **dict.fromkeys(FIGURES)}
    out: dict[str, Any] = {
        "available": snap.available,
        "taken_at": snap.taken_at.astimezone(tz).isoformat(),
        "note": snap.note,
        **{name: getattr(snap.reading, name) for name in FIGURES},
    }
    if snap.reading.reactions_by_type:
        out["reactions_by_type"] = dict(snap.reading.reactions_by_type)
    if snap.reading.source:
        out["source"] = snap.reading.source
    return out


def reach_as_dict(r: ChannelReach, tz: ZoneInfo) -> dict[str, Any]:
    """A channel's reach as JSON (``status --json`` "reach")."""
    return {
        "published": r.published,
        "read": r.read,
        "without_figures": r.without,
        "taken_at": r.taken_at.astimezone(tz).isoformat() if r.taken_at else None,
        **r.totals,
    }


def note_text(note: str) -> str:
    """Why a post has no figures, in the reader's language: the adapters' reasons are msgids
    (``N_``), stored in English as the record; any other note is shown as stored."""
    return _(note)


def summary(snap: Snapshot | None, tz: ZoneInfo) -> str:
    """One line for a person: "1.234 lượt xem, 56 cảm xúc, … (đo lúc 30/06/2024 08:00)", or
    "không có số liệu" (with the platform's reason when it keeps none)."""
    if snap is None:
        return no_figures_label()
    if not snap.available:
        return f"{no_figures_label()} ({note_text(snap.note)})" if snap.note else no_figures_label()
    parts = [
        label.format(n=number(value))
        for name, label in _labels().items()
        if (value := getattr(snap.reading, name)) is not None
    ]
    when = f"{snap.taken_at.astimezone(tz):%d/%m/%Y %H:%M}"
    return _("{figures} (read {when})").format(figures=", ".join(parts), when=when)


def _labels() -> dict[str, str]:
    return {
        "views": _("{n} views"),
        "reactions": _("{n} reactions"),
        "comments": _("{n} comments"),
        "shares": _("{n} shares"),
        "clicks": _("{n} clicks"),
    }


def figure_names() -> dict[str, str]:
    """Each figure's column heading, as the user reads it."""
    return {
        "views": _("views"),
        "reactions": _("reactions"),
        "comments": _("comments"),
        "shares": _("shares"),
        "clicks": _("clicks"),
    }


def number(value: int | None) -> str:
    """A count as the user reads it (Vietnamese: 1.234; English: 1,234); None: "không có số
    liệu"."""
    from publisher.i18n import current_language

    if value is None:
        return no_figures_label()
    text = f"{value:,}"
    return text.replace(",", ".") if current_language() == "vi" else text
