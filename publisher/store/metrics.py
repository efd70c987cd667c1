"""Dated snapshots of published posts' figures (``metric`` rows): added, never overwritten.

``record`` adds one; ``latest`` gives each post's newest as of a moment (what the report, the
web app and ``status`` show); ``snapshots`` gives every one in order (reach growing day by day);
``last_taken`` says when each post was last read (what the collector reads next).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from publisher.metrics import FIGURES, Reading
from publisher.store.models import MetricRow


@dataclass(frozen=True)
class Snapshot:
    """One stored reading of one post."""

    post_id: int
    taken_at: datetime  # aware (UTC)
    reading: Reading
    note: str | None  # why it has no figures at all (the platform keeps none), or None

    @property
    def available(self) -> bool:
        return not self.reading.empty


def record(
    s: Session, post_id: int, reading: Reading, taken_at: datetime, *, note: str | None = None
) -> MetricRow:
    """Add a snapshot of ``post_id`` in ``s``'s transaction."""
    if taken_at.tzinfo is None:
        raise ValueError("record needs an aware datetime")
    row = MetricRow(
        post_id=post_id,
        taken_at=taken_at,
        **{name: getattr(reading, name) for name in FIGURES},
        reactions_by_type=dict(reading.reactions_by_type) if reading.reactions_by_type else None,
        extra=dict(reading.extra) or None,
        source=reading.source,
        note=note,
    )
    s.add(row)
    return row


def _snapshot(row: MetricRow) -> Snapshot:
    reading = Reading(
        **{name: getattr(row, name) for name in FIGURES},
        reactions_by_type=row.reactions_by_type,
        source=row.source or "",
        extra=row.extra or {},
    )
    return Snapshot(row.post_id, row.taken_at, reading, row.note)


def latest(
    s: Session, post_ids: Iterable[int] | None = None, *, until: datetime | None = None
) -> dict[int, Snapshot]:
    """Each post's newest snapshot taken at or before ``until`` (default: any), by post id;
    only ``post_ids`` when given. A post never read is absent."""
    newest = select(MetricRow.post_id, func.max(MetricRow.id).label("id")).group_by(
        MetricRow.post_id
    )
    if until is not None:
        newest = newest.where(MetricRow.taken_at <= until)
    if post_ids is not None:
        ids = list(post_ids)
        if not ids:
            return {}
        newest = newest.where(MetricRow.post_id.in_(ids))
    sub = newest.subquery()
    rows = s.scalars(select(MetricRow).join(sub, MetricRow.id == sub.c.id))
    return {row.post_id: _snapshot(row) for row in rows}


def snapshots(
    s: Session, post_ids: Iterable[int] | None = None, *, until: datetime | None = None
) -> list[Snapshot]:
    """Every snapshot (of ``post_ids`` when given), ordered by post then time taken."""
    q = select(MetricRow).order_by(MetricRow.post_id, MetricRow.taken_at, MetricRow.id)
    if until is not None:
        q = q.where(MetricRow.taken_at <= until)
    if post_ids is not None:
        q = q.where(MetricRow.post_id.in_(list(post_ids)))
    return [_snapshot(row) for row in s.scalars(q)]


def last_taken(s: Session) -> Mapping[int, datetime]:
    """When each post that has snapshots was last read, by post id."""
    q = select(MetricRow.post_id, func.max(MetricRow.taken_at)).group_by(MetricRow.post_id)
    return {post_id: at for post_id, at in s.execute(q)}
