"""The open causes of alerts, derived from the database state alone.

A cause source is a function ``(session, context) → causes``: it reads, never writes, and
gives every cause of its kind that is open now, each with a stable ``key`` (the same cause
seen by another process, or in the next pass, has the same key) and the ``facts`` its mail
tells (JSON: ids, names, times as ISO 8601 UTC, the platform's reason cleaned). ``SOURCES``
is the list the engine asks; ``add_source`` adds one (a new kind of alert is one function,
its texts in ``texts`` and its kind in ``config.ALERT_KINDS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from publisher.config import Config
from publisher.states import PENDING, BlockKind, State
from publisher.store.handoffs import overdue
from publisher.store.history import last_causes
from publisher.store.models import ChannelState, ChannelTokenRow, DaemonRow, MessageRow, PostRow
from publisher.store.workers import process_gone
from publisher.text import clean

REASON_LENGTH = 400  # a platform's reason longer than this is cut in a mail
THROTTLE_ALERT = timedelta(hours=1)  # a throttle shorter than this is not worth a mail
# Zalo's tokens (platform-apis.md §2): the access token lives 25 h, the refresh token minted
# with it about three months; each refresh mints a new pair.
ZALO_ACCESS_LIFETIME = timedelta(seconds=90000)
ZALO_REFRESH_LIFETIME = timedelta(days=90)
DIGEST_POSTS = 30  # posts listed in one digest at most (the count says how many in all)
# The kinds whose cause is a one-off notice: mailed once, never reminded nor said resolved.
ONE_SHOT = frozenset({"digest"})


@dataclass(frozen=True)
class Cause:
    """Something wrong now: ``kind`` (one of ``config.ALERT_KINDS``), a stable ``key``."""

    key: str
    kind: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What a source may look at besides the database: the config, the campaign's time now
    (``now``: virtual in a rehearsal) and real time (``real_now``: heartbeats)."""

    config: Config
    now: datetime
    real_now: datetime


CauseSource = Callable[[Session, Context], Iterable[Cause]]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def reason(text: str | None) -> str:
    """A platform's or the dispatcher's reason as a mail may quote it: cleaned, one line, cut."""
    said = " ".join(clean(text or "").split())
    return said if len(said) <= REASON_LENGTH else said[: REASON_LENGTH - 1] + "…"


def _post_causes(s: Session, ctx: Context, state: State, kind: str) -> list[Cause]:
    rows = s.execute(
        select(PostRow, MessageRow.title)
        .join(MessageRow, PostRow.message_id == MessageRow.id)
        .where(PostRow.state == state, PostRow.channel.in_(list(ctx.config.channels)))
        .order_by(PostRow.id)
    ).all()
    causes = last_causes(s, [p.id for p, _title in rows])
    return [
        Cause(
            f"{kind}:{p.id}",
            kind,
            {
                "post": p.id,
                "channel": p.channel,
                "title": clean(title),
                "due_at": _iso(p.due_at),
                "reason": reason(causes.get(p.id) or p.last_error),
            },
        )
        for p, title in rows
    ]


def failed_posts(s: Session, ctx: Context) -> list[Cause]:
    """``post_failed``: a post the platform refused, or given up after its retries."""
    return _post_causes(s, ctx, State.FAILED, "post_failed")


def posts_to_review(s: Session, ctx: Context) -> list[Cause]:
    """``post_needs_review``: a send whose outcome stayed unclear: a person must look."""
    return _post_causes(s, ctx, State.NEEDS_REVIEW, "post_needs_review")


def missed_posts(s: Session, ctx: Context) -> list[Cause]:
    """``post_missed``: a post that fell due while nothing could publish it."""
    return _post_causes(s, ctx, State.MISSED, "post_missed")


def blocked_channels(s: Session, ctx: Context) -> list[Cause]:
    """``channel_blocked``: a channel stopped for its credentials, unreachable, or throttled
    for over an hour (a pause is a person's doing, not a cause)."""
    found = []
    for row in s.scalars(select(ChannelState).order_by(ChannelState.channel)):
        channel = ctx.config.channels.get(row.channel)
        if channel is None or not channel.enabled or row.block_kind is None:
            continue
        since = row.blocked_since or ctx.now
        if row.block_kind == BlockKind.THROTTLED and not (
            row.blocked_until is not None
            and row.blocked_until > ctx.now
            and ctx.now - since >= THROTTLE_ALERT
        ):
            continue
        facts = {
            "channel": row.channel,
            "block": str(row.block_kind),
            "reason": reason(row.block_reason),
            "since": _iso(since),
            "until": _iso(row.blocked_until),
        }
        found.append(Cause(f"channel_blocked:{row.channel}", "channel_blocked", facts))
    return found


def expiring_tokens(s: Session, ctx: Context) -> list[Cause]:
    """``token_expiring``: a Zalo refresh token that dies within ``[alerts] token_warning``.
    Its age is the stored pair's: it was minted with the access token, which lives 25 h.
    (Facebook's Page tokens from the documented flow never expire, and its ``debug_token``
    needs the app's secret, which publisher does not hold: a dead Page token is a
    ``channel_blocked`` cause instead.)"""
    found = []
    for cid, channel in ctx.config.channels.items():
        if channel.adapter != "zalo" or not channel.enabled:
            continue
        rows = s.scalars(
            select(ChannelTokenRow)
            .where(ChannelTokenRow.key.like(f"{cid}@%"), ChannelTokenRow.secret.is_not(None))
            .order_by(ChannelTokenRow.updated_at.desc())
        )
        row = next(iter(rows), None)
        if row is None or row.access_expires_at is None:
            continue  # never refreshed yet: the configured token's age is unknown
        minted = row.access_expires_at - ZALO_ACCESS_LIFETIME
        expires = minted + ZALO_REFRESH_LIFETIME
        if expires - ctx.now > ctx.config.alerts.token_warning:
            continue
        facts = {
            "channel": cid,
            "minted": _iso(minted),
            "expires": _iso(expires),
            "variable": channel.secrets.get("refresh_token", ""),
        }
        found.append(Cause(f"token_expiring:{cid}", "token_expiring", facts))
    return found


def stale_daemon(s: Session, ctx: Context) -> list[Cause]:
    """``daemon_stale``: posts are waiting to go out and no daemon is alive to send them — its
    heartbeat is older than ``[alerts] stale_after``, or its process on this host is gone
    without having said it stopped (killed)."""
    waiting = s.scalar(
        select(func.count()).select_from(PostRow).where(PostRow.state.in_(list(PENDING)))
    )
    if not waiting:
        return []
    rows = list(s.scalars(select(DaemonRow).order_by(DaemonRow.beat_at.desc())))
    stale_before = ctx.real_now - ctx.config.alerts.stale_after
    for row in rows:
        if row.stopped_at is None and row.beat_at >= stale_before and not process_gone(row.worker):
            return []  # one is alive
    last = rows[0] if rows else None
    recent = last is not None and last.beat_at >= stale_before
    if (
        recent
        and last is not None
        and (last.stopped_at is not None or not process_gone(last.worker))
    ):
        return []  # stopped (or restarting) just now: give it stale_after
    facts = {
        "waiting": int(waiting),
        "worker": last.worker if last else None,
        "last_beat": _iso(last.beat_at) if last else None,
        "stopped": _iso(last.stopped_at) if last else None,
        "gone": (process_gone(last.worker) if last and last.stopped_at is None else None),
    }
    return [Cause("daemon_stale", "daemon_stale", facts)]


def digest(s: Session, ctx: Context) -> list[Cause]:
    """``digest``: from ``[alerts] digest_at`` (local time) each day, the posts due in the next
    24 hours that are not approved yet (drafts, rejected), if there are any. Its key is the
    day's, so each day's digest goes once."""
    tz = ctx.config.tz
    local = ctx.now.astimezone(tz)
    if local.time().replace(tzinfo=None) < ctx.config.alerts.digest_at:
        return []
    rows = s.execute(
        select(PostRow, MessageRow.title)
        .join(MessageRow, PostRow.message_id == MessageRow.id)
        .where(
            PostRow.state.in_([State.DRAFT, State.REJECTED]),
            PostRow.due_at >= ctx.now,
            PostRow.due_at < ctx.now + timedelta(hours=24),
            PostRow.channel.in_(list(ctx.config.channels)),
        )
        .order_by(PostRow.due_at, PostRow.id)
    ).all()
    if not rows:
        return []
    posts = [
        {
            "post": p.id,
            "channel": p.channel,
            "title": clean(title),
            "due_at": _iso(p.due_at),
            "state": str(p.state),
        }
        for p, title in rows[:DIGEST_POSTS]
    ]
    facts = {"day": local.date().isoformat(), "count": len(rows), "posts": posts}
    return [Cause(f"digest:{local.date().isoformat()}", "digest", facts)]


def unconfirmed_handoffs(s: Session, ctx: Context) -> list[Cause]:
    """``handoff_unconfirmed``: a post mailed to a portal's editorial desk (an ``email``
    channel) that the desk has not confirmed within the channel's ``confirm_within``: it may
    not be on the portal. Gone once confirmed."""
    found = overdue(s, ctx.config, ctx.now)
    titles = dict(
        s.execute(
            select(PostRow.id, MessageRow.title)
            .join(MessageRow, PostRow.message_id == MessageRow.id)
            .where(PostRow.id.in_([h.post_id for h in found]))
        ).all()
    )
    return [
        Cause(
            f"handoff_unconfirmed:{h.post_id}",
            "handoff_unconfirmed",
            {
                "post": h.post_id,
                "channel": h.channel,
                "title": clean(titles.get(h.post_id, "")),
                "handed_off_at": _iso(h.handed_off_at),
                "deadline": _iso(h.deadline),
                "message_id": h.message_id,
            },
        )
        for h in found
    ]


# The sources the engine asks, in order. A kind of cause is one function here (and its kind
# in config.ALERT_KINDS, its texts in alerts.texts).
SOURCES: list[CauseSource] = [
    failed_posts,
    posts_to_review,
    missed_posts,
    blocked_channels,
    expiring_tokens,
    stale_daemon,
    unconfirmed_handoffs,
    digest,
]


def add_source(source: CauseSource) -> CauseSource:
    """Add ``source`` to the sources every evaluation asks (usable as a decorator)."""
    if source not in SOURCES:
        SOURCES.append(source)
    return source
