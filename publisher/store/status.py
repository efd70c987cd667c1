"""``publisher status``: what the queue and the daemon are doing, from the database alone.

On a rehearsal's database (its meta rows hold the rehearsal's clock) blocks are compared on
the rehearsal's clock: its campaign time now while a rehearsal daemon runs, else the campaign
time of the last heartbeat (when it stopped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from publisher.clock import RehearsalClock
from publisher.config import Config
from publisher.states import PENDING, RunMode, State
from publisher.store.db import Database
from publisher.store.handoffs import handoffs
from publisher.store.history import last_causes
from publisher.store.models import ChannelState, DaemonRow, MetaRow, PostRow
from publisher.store.reach import reach_as_dict, totals
from publisher.store.workers import daemon_alive
from publisher.text import clean_all

# The meta rows a rehearsal's copy holds: its clock's anchor (written by dispatch.rehearsal).
ANCHOR_KEYS = ("rehearsal.real_start", "rehearsal.virtual_start", "rehearsal.speed")


def clock_of(meta: dict[str, str]) -> RehearsalClock:
    """The clock a rehearsal's meta rows anchor."""
    return RehearsalClock(
        datetime.fromisoformat(meta["rehearsal.real_start"]),
        datetime.fromisoformat(meta["rehearsal.virtual_start"]),
        float(meta["rehearsal.speed"]),
    )


def gather(
    db: Database, config: Config, now: datetime, *, upcoming: int = 5, unfinished: bool = False
) -> dict[str, Any]:
    """What ``publisher status`` shows; ``unfinished`` also lists every post still owed an
    outcome (approved, sending, retrying, unconfirmed) with why, as a rehearsal's summary.
    Every string in it is safe to print (``text.clean``)."""
    tz = config.tz
    alive = {r.worker: r for r in daemon_alive(db, config.daemon.tick)}
    with db.read() as s:
        now, rehearsal = _rehearsal(s, alive, now, tz)
        counts, channels = _counts(s, config)
        nxt = _next_posts(s, upcoming)
        problems = _posts_in(s, [State.FAILED, State.NEEDS_REVIEW, State.MISSED])
        owed = _posts_in(s, list(PENDING)) if unfinished else []
        causes = last_causes(s, [p.id for p in [*problems, *owed]])
        blocks = list(s.scalars(select(ChannelState)))
        daemons = list(s.scalars(select(DaemonRow).order_by(DaemonRow.beat_at.desc()).limit(5)))
        waiting = handoffs(s, config)
        reach = totals(s, channels=config.channels)
        upcoming_list = [_upcoming_row(p, tz) for p in nxt]
        problem_list = [_owed_row(p, causes, tz) for p in problems]
        owed_list = [_owed_row(p, causes, tz) for p in owed]
    info: dict[str, Any] = {
        "counts": counts,
        "channels": channels,
        "next": upcoming_list,
        "problems": problem_list,
        "blocked": _blocked(blocks, now, tz),
        # posts mailed to a portal's desk, awaiting its confirmation; overdue past the deadline
        "handed_off": [
            {
                "id": h.post_id,
                "channel": h.channel,
                "handed_off_at": _local(h.handed_off_at, tz),
                "deadline": _local(h.deadline, tz),
                "overdue": h.overdue(now),
            }
            for h in waiting
        ],
        "daemon": {
            "alive": bool(alive),
            "workers": [_worker_row(d, alive, tz) for d in daemons],
        },
        "rehearsal": rehearsal,
        # each channel's reach: its published posts' latest figures summed (None: no figures)
        "reach": {cid: reach_as_dict(r, tz) for cid, r in reach.items()},
    }
    if unfinished:
        info["unfinished"] = owed_list
    # Stored strings quote platforms and files: cleaned again, for rows older than the cleaning.
    return clean_all(info)


def _local(t: datetime | None, tz: ZoneInfo) -> str | None:
    """``t`` as an ISO local time in ``tz``; None if there is no time."""
    return t.astimezone(tz).isoformat() if t else None


def _rehearsal(
    s: Session, alive: Mapping[str, DaemonRow], now: datetime, tz: ZoneInfo
) -> tuple[datetime, dict[str, Any] | None]:
    """The time blocks are compared on and the rehearsal's summary: on a rehearsal's database
    its campaign time (now while a rehearsal daemon runs, else at the last heartbeat); else
    ``now`` unchanged and None."""
    meta = {m.key: m.value for m in s.scalars(select(MetaRow).where(MetaRow.key.in_(ANCHOR_KEYS)))}
    if len(meta) != len(ANCHOR_KEYS):
        return now, None
    clock = clock_of(meta)
    running = any(r.mode == RunMode.REHEARSE for r in alive.values())
    last = s.scalar(select(func.max(DaemonRow.beat_at)))
    now = clock.now() if running or last is None else clock.at(last)
    return now, {"campaign_time": now.astimezone(tz).isoformat(), "running": running}


def rehearsal_now(s: Session, now: datetime) -> datetime | None:
    """On a rehearsal's database, its campaign time at its last heartbeat (close to now while
    its daemon runs; ``now`` mapped onto its clock if none ever beat); None on any other."""
    meta = {m.key: m.value for m in s.scalars(select(MetaRow).where(MetaRow.key.in_(ANCHOR_KEYS)))}
    if len(meta) != len(ANCHOR_KEYS):
        return None
    clock = clock_of(meta)
    last = s.scalar(select(func.max(DaemonRow.beat_at)))
    return clock.at(last if last is not None else now)


def _counts(s: Session, config: Config) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Posts by state, in all and per channel (every configured channel listed)."""
    counts = {state.value: 0 for state in State}
    channels: dict[str, dict[str, int]] = {cid: {} for cid in config.channels}
    for channel, state, n in s.execute(
        select(PostRow.channel, PostRow.state, func.count()).group_by(
            PostRow.channel, PostRow.state
        )
    ):
        counts[state] = counts.get(state, 0) + n
        channels.setdefault(channel, {})[state] = n
    return counts, channels


def _next_posts(s: Session, upcoming: int) -> Sequence[PostRow]:
    """The first ``upcoming`` posts waiting to go out, by their next attempt or due time."""
    return s.scalars(
        select(PostRow)
        .options(joinedload(PostRow.message))
        .where(PostRow.state.in_([State.APPROVED, State.RETRYING, State.UNCONFIRMED]))
        .order_by(func.coalesce(PostRow.next_attempt_at, PostRow.due_at))
        .limit(upcoming)
    ).all()


def _posts_in(s: Session, states: list[State]) -> Sequence[PostRow]:
    """Every post in one of ``states``, with its message, by due time."""
    return (
        s.scalars(
            select(PostRow)
            .options(joinedload(PostRow.message))
            .where(PostRow.state.in_(states))
            .order_by(PostRow.due_at, PostRow.id)
        )
        .unique()
        .all()
    )


def _upcoming_row(p: PostRow, tz: ZoneInfo) -> dict[str, Any]:
    """One post of ``next``: when it goes out (its due time, or its next attempt's)."""
    return {
        "id": p.id,
        "channel": p.channel,
        "title": p.message.title,
        "state": p.state,
        "at": _local(p.next_attempt_at if p.state != State.APPROVED else p.due_at, tz),
    }


def _owed_row(p: PostRow, causes: Mapping[int, str], tz: ZoneInfo) -> dict[str, Any]:
    """One post of ``problems`` or ``unfinished``, with the reason it is there."""
    return {
        "id": p.id,
        "channel": p.channel,
        "title": p.message.title,
        "state": p.state,
        "due_at": _local(p.due_at, tz),
        "reason": causes.get(p.id) or p.last_error or "",
    }


def _blocked(blocks: Iterable[ChannelState], now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The channels paused or blocked at ``now``."""
    return [
        {
            "channel": b.channel,
            "paused": b.paused,
            "kind": b.block_kind,
            "since": _local(b.blocked_since, tz),
            "until": _local(b.blocked_until, tz),
            "reason": b.block_reason or ("paused" if b.paused else ""),
        }
        for b in blocks
        if b.paused
        or b.block_kind in ("auth", "outage")  # until a check says otherwise
        or (b.blocked_until and b.blocked_until > now)
    ]


def _worker_row(d: DaemonRow, alive: Mapping[str, DaemonRow], tz: ZoneInfo) -> dict[str, Any]:
    """One daemon's heartbeat row: its mode, whether it is alive, its last beat and stop."""
    return {
        "worker": d.worker,
        "mode": d.mode,
        "alive": d.worker in alive,
        "last_beat": _local(d.beat_at, tz),
        "stopped_at": _local(d.stopped_at, tz),
    }
