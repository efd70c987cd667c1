"""The editorial board's operations on the queue: hold, release, reject, cancel, reschedule,
pause and resume. Each is one short write transaction; every change enters the post's history
and the audit trail (``store.history``). Time and actor are parameters. (Loading, editing and
importing content go through files: see ``load`` and ``intake``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from publisher.config import Config
from publisher.errors import InputError
from publisher.states import DueSource, State
from publisher.store import approvals, audit
from publisher.store.db import Database, locked_row
from publisher.store.history import transition
from publisher.store.models import ChannelState, PostRow

HOLDABLE = frozenset({State.DRAFT, State.APPROVED, State.RETRYING, State.REJECTED})
CANCELLABLE = frozenset(
    {
        State.DRAFT,
        State.APPROVED,
        State.HELD,
        State.REJECTED,
        State.RETRYING,
        State.FAILED,
        State.MISSED,
        State.HANDED_OFF,  # the desk refused it or never answers: withdrawn (see MOVES)
    }
)
RESCHEDULABLE = frozenset(
    {
        State.DRAFT,
        State.APPROVED,
        State.HELD,
        State.REJECTED,
        State.RETRYING,
        State.FAILED,
        State.MISSED,
    }
)


@dataclass
class Outcome:
    done: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def _posts(s: Session, ids: Sequence[int], command: str) -> list[PostRow]:
    found = {
        p.id: p
        for p in s.scalars(
            select(PostRow).where(PostRow.id.in_(ids)).order_by(PostRow.id).with_for_update()
        )
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise InputError(command, f"no post has id {missing[0]}", "see 'publisher queue list'")
    return [found[i] for i in dict.fromkeys(ids)]


def _each(
    db: Database,
    ids: Sequence[int],
    command: str,
    allowed: frozenset[State],
    refusal: str,
    act: Callable[[Session, PostRow], None],
) -> Outcome:
    """Apply ``act`` to each post in an allowed state, in one transaction; refuse the rest."""
    out = Outcome()
    with db.write() as s:
        for p in _posts(s, ids, command):
            if p.state in allowed:
                act(s, p)
                out.done.append(p.id)
            else:
                out.refused.append((p.id, f"it is {p.state}; {refusal}"))
    return out


def _because(actor: str, verb: str, reason: str) -> str:
    return f"{verb} by {actor}" + (f": {reason}" if reason else "")


def hold(
    db: Database, ids: Sequence[int], *, actor: str, now: datetime, reason: str = ""
) -> Outcome:
    """Hold posts back: nothing goes out until they are released."""

    def act(s: Session, p: PostRow) -> None:
        p.held_from = p.state
        cause = _because(actor, "held", reason)
        transition(s, p, State.HELD, now, cause, actor, audit_as="hold", detail=reason)

    refusal = "only a draft, approved, rejected or retrying post can be held"
    return _each(db, ids, "hold", HOLDABLE, refusal, act)


def release(db: Database, ids: Sequence[int], *, actor: str, now: datetime) -> Outcome:
    """Release held posts to where they were (an approval still needs to match the text)."""

    def act(s: Session, p: PostRow) -> None:
        back = p.held_from or State.DRAFT
        if back == State.APPROVED and p.approved_hash != p.render_hash:
            back = State.DRAFT
        if back == State.RETRYING:
            p.next_attempt_at = now
        p.held_from = None
        cause = f"released by {actor}"
        transition(s, p, back, now, cause, actor, audit_as="release", detail=f"back to {back}")

    return _each(db, ids, "release", frozenset({State.HELD}), "only a held post", act)


def reject(db: Database, ids: Sequence[int], *, actor: str, now: datetime, reason: str) -> Outcome:
    """Refuse posts, with the reason; editing the content makes them drafts again."""
    if not reason.strip():
        raise InputError(
            "--reason", "a rejection needs a reason", 'e.g. --reason "sai số hiệu văn bản"'
        )

    def act(s: Session, p: PostRow) -> None:
        p.approved_by = p.approved_at = p.approved_hash = None
        p.held_from = None
        approvals.revoke(s, p, actor, now)  # the steps taken so far too
        cause = _because(actor, "rejected", reason)
        transition(s, p, State.REJECTED, now, cause, actor, audit_as="reject", detail=reason)

    allowed = frozenset({State.DRAFT, State.APPROVED, State.HELD})
    refusal = "only a draft, approved or held post can be rejected"
    return _each(db, ids, "reject", allowed, refusal, act)


def cancel(
    db: Database, ids: Sequence[int], *, actor: str, now: datetime, reason: str = ""
) -> Outcome:
    """Cancel posts that have not gone out; they stay in the history."""

    def act(s: Session, p: PostRow) -> None:
        p.cancel_cause = _because(actor, "cancelled", reason)
        transition(
            s, p, State.CANCELLED, now, p.cancel_cause, actor, audit_as="cancel", detail=reason
        )

    return _each(db, ids, "cancel", CANCELLABLE, "it cannot be cancelled", act)


def check_time(config: Config, channel: str, when: datetime, *, force: bool) -> list[str]:
    """Why ``when`` is not a good time for a post on ``channel`` (empty: it is)."""
    ch = config.channels[channel]
    local = when.astimezone(config.tz)
    problems = []
    camp = config.campaign
    if not camp.start <= local.date() <= camp.end:
        problems.append(
            f"{local:%d/%m/%Y} is outside the campaign window "
            f"{camp.start:%d/%m}–{camp.end:%d/%m/%Y}"
        )
    if ch.quiet_hours and ch.quiet_hours.contains(local.time().replace(tzinfo=None)):
        problems.append(f"{local:%H:%M} falls in {channel}'s quiet hours {ch.quiet_hours}")
    slot = local.time().replace(tzinfo=None, second=0, microsecond=0)
    if not force and (slot not in ch.slots or local.second or local.microsecond):
        slots = ", ".join(f"{t:%H:%M}" for t in ch.slots)
        problems.append(
            f"{local:%H:%M} is not one of {channel}'s slots ({slots}); add --force to use it anyway"
        )
    return problems


def reschedule(
    db: Database,
    config: Config,
    post_id: int,
    when: datetime,
    *,
    actor: str,
    now: datetime,
    force: bool = False,
) -> str:
    """Move one post to ``when`` (kept by every later re-plan); returns its new state."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=config.tz)
    with db.write() as s:
        (p,) = _posts(s, [post_id], "reschedule")
        if p.state not in RESCHEDULABLE:
            raise InputError("reschedule", f"post {p.id} is {p.state}; it cannot be rescheduled")
        problems = check_time(config, p.channel, when, force=force)
        local = when.astimezone(config.tz)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        same_day = (
            s.scalar(
                select(func.count())
                .select_from(PostRow)
                .where(
                    PostRow.channel == p.channel,
                    PostRow.id != p.id,
                    PostRow.state.not_in([State.CANCELLED]),
                    PostRow.due_at >= day_start,
                    PostRow.due_at < day_start + timedelta(days=1),
                )
            )
            or 0
        )
        cap = config.channels[p.channel].daily_cap
        if same_day >= cap and not force:
            problems.append(
                f"{p.channel} already has {same_day} posts on {local:%d/%m} (daily cap {cap}); "
                "add --force to exceed it"
            )
        if problems:
            raise InputError("reschedule", problems[0])
        old = p.due_at
        p.due_at, p.due_source, p.plan_note = when, DueSource.MANUAL, None
        was = old.astimezone(config.tz).strftime("%d/%m/%Y %H:%M") if old else "no time"
        to = p.state
        if p.state in (State.MISSED, State.FAILED, State.RETRYING):
            p.attempt, p.lookups, p.next_attempt_at, p.last_error = 0, 0, None, None
            approved = p.approved_hash is not None and p.approved_hash == p.render_hash
            to = State.APPROVED if approved else State.DRAFT
        cause = f"rescheduled by {actor} to {local:%d/%m/%Y %H:%M}"
        detail = f"{was} → {local:%d/%m/%Y %H:%M}"
        transition(s, p, to, now, cause, actor, audit_as="reschedule", detail=detail)
        return str(p.state)


def pause(
    db: Database,
    config: Config,
    channel: str | None,
    *,
    actor: str,
    now: datetime,
    paused: bool = True,
) -> list[str]:
    """The kill switch: a paused channel publishes nothing until resumed. None = every channel."""
    if channel is not None and channel not in config.channels:
        raise InputError(
            "channel", f"{channel!r} is not a channel", "one of: " + ", ".join(config.channels)
        )
    targets = [channel] if channel else list(config.channels)
    with db.write() as s:
        for cid in targets:
            row = locked_row(s, ChannelState, {"channel": cid, "paused": False, "updated_at": now})
            row.paused, row.paused_by, row.updated_at = paused, actor if paused else None, now
            audit.record(
                s, at=now, actor=actor, action="pause" if paused else "resume", subject=cid
            )
    return targets
