"""``publisher status``: what the queue and the daemon are doing, from the database alone.

On a rehearsal's database (its meta rows hold the rehearsal's clock) blocks are compared on
the rehearsal's clock: its campaign time now while a rehearsal daemon runs, else the campaign
time of the last heartbeat (when it stopped).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from publisher.clock import RehearsalClock
from publisher.config import Config
from publisher.states import PENDING, RunMode, State
from publisher.store.db import Database
from publisher.store.history import last_causes
from publisher.store.models import ChannelState, DaemonRow, MetaRow, PostRow
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
        meta = {
            m.key: m.value for m in s.scalars(select(MetaRow).where(MetaRow.key.in_(ANCHOR_KEYS)))
        }
        rehearsal: dict[str, Any] | None = None
        if len(meta) == len(ANCHOR_KEYS):
            clock = clock_of(meta)
            running = any(r.mode == RunMode.REHEARSE for r in alive.values())
            last = s.scalar(select(func.max(DaemonRow.beat_at)))
            now = clock.now() if running or last is None else clock.at(last)
            rehearsal = {"campaign_time": now.astimezone(tz).isoformat(), "running": running}
        counts = {state.value: 0 for state in State}
        channels: dict[str, dict[str, int]] = {cid: {} for cid in config.channels}
        for channel, state, n in s.execute(
            select(PostRow.channel, PostRow.state, func.count()).group_by(
                PostRow.channel, PostRow.state
            )
        ):
            counts[state] = counts.get(state, 0) + n
            channels.setdefault(channel, {})[state] = n
        nxt = s.scalars(
            select(PostRow)
            .options(joinedload(PostRow.message))
            .where(PostRow.state.in_([State.APPROVED, State.RETRYING, State.UNCONFIRMED]))
            .order_by(func.coalesce(PostRow.next_attempt_at, PostRow.due_at))
            .limit(upcoming)
        ).all()
        problems = (
            s.scalars(
                select(PostRow)
                .options(joinedload(PostRow.message))
                .where(PostRow.state.in_([State.FAILED, State.NEEDS_REVIEW, State.MISSED]))
                .order_by(PostRow.due_at, PostRow.id)
            )
            .unique()
            .all()
        )
        owed = (
            s.scalars(
                select(PostRow)
                .options(joinedload(PostRow.message))
                .where(PostRow.state.in_(list(PENDING)))
                .order_by(PostRow.due_at, PostRow.id)
            )
            .unique()
            .all()
            if unfinished
            else []
        )
        causes = last_causes(s, [p.id for p in [*problems, *owed]])
        blocks = list(s.scalars(select(ChannelState)))
        daemons = list(s.scalars(select(DaemonRow).order_by(DaemonRow.beat_at.desc()).limit(5)))

        def local(t: datetime | None) -> str | None:
            return t.astimezone(tz).isoformat() if t else None

        upcoming_list = [
            {
                "id": p.id,
                "channel": p.channel,
                "title": p.message.title,
                "state": p.state,
                "at": local(p.next_attempt_at if p.state != State.APPROVED else p.due_at),
            }
            for p in nxt
        ]
        problem_list = [
            {
                "id": p.id,
                "channel": p.channel,
                "title": p.message.title,
                "state": p.state,
                "due_at": local(p.due_at),
                "reason": causes.get(p.id) or p.last_error or "",
            }
            for p in problems
        ]
        owed_list = [
            {
                "id": p.id,
                "channel": p.channel,
                "title": p.message.title,
                "state": p.state,
                "due_at": local(p.due_at),
                "reason": causes.get(p.id) or p.last_error or "",
            }
            for p in owed
        ]
    blocked = [
        {
            "channel": b.channel,
            "paused": b.paused,
            "kind": b.block_kind,
            "since": local(b.blocked_since),
            "until": local(b.blocked_until),
            "reason": b.block_reason or ("paused" if b.paused else ""),
        }
        for b in blocks
        if b.paused
        or b.block_kind in ("auth", "outage")  # until a check says otherwise
        or (b.blocked_until and b.blocked_until > now)
    ]
    info: dict[str, Any] = {
        "counts": counts,
        "channels": channels,
        "next": upcoming_list,
        "problems": problem_list,
        "blocked": blocked,
        "daemon": {
            "alive": bool(alive),
            "workers": [
                {
                    "worker": d.worker,
                    "mode": d.mode,
                    "alive": d.worker in alive,
                    "last_beat": local(d.beat_at),
                    "stopped_at": local(d.stopped_at),
                }
                for d in daemons
            ],
        },
        "rehearsal": rehearsal,
    }
    if unfinished:
        info["unfinished"] = owed_list
    # Stored strings quote platforms and files: cleaned again, for rows older than the cleaning.
    return clean_all(info)
