"""What a platform says of a published post's reach: one reading of its figures.

A reading is taken by an adapter (``MetricsReader.metrics``), stored as a dated snapshot by
``publisher.store.metrics`` (never overwritten) and shown by the report, ``status`` and the web
app. A figure the platform does not report is ``None`` — shown as "không có số liệu", never as an
invented zero. Pure: no clock, network or database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

FIGURES = ("views", "reactions", "comments", "shares", "clicks")


@dataclass(frozen=True)
class Reading:
    """One post's figures as the platform reported them at one moment (totals to date)."""

    views: int | None = None  # people reached / views (Facebook: post_total_media_view_unique)
    reactions: int | None = None  # every reaction, all types together
    reactions_by_type: Mapping[str, int] | None = None  # e.g. {"like": 12, "love": 3}
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    # The platform's own names of what was read, for the record and the report's notes
    # (e.g. "Graph v23.0: post_total_media_view_unique, post_reactions_by_type_total").
    source: str = ""
    extra: Mapping[str, int] = field(default_factory=dict)  # anything else read, by name

    def __post_init__(self) -> None:
        for name in FIGURES:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a count ≥ 0 or None, not {value!r}")

    @property
    def empty(self) -> bool:
        """True when the platform reported no figure at all."""
        return all(getattr(self, name) is None for name in FIGURES)


class NoFigures(Exception):
    """The platform keeps no figures for this post, or does not expose them (a WordPress site
    without a stats endpoint, a portal's desk reached by mail): the report says "không có số
    liệu". Not a failure: nothing is retried. ``str(exc)`` says why, for the record."""


class MetricsReader(Protocol):
    """An adapter that can read a published post's figures.

    Raises ``NoFigures`` when the platform has none, or a ``channels.base.ChannelError``
    subclass when the read failed (the collector tries again at its next round; publishing is
    never disturbed).
    """

    def metrics(self, remote_id: str, url: str | None) -> Reading: ...
