"""Posts handed off to a portal's editorial desk (the email channel) and their deadlines for
confirmation: ``[channels.<id>] confirm_within`` after the mail was taken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.config import Config, EmailSettings
from publisher.states import State
from publisher.store.models import PostRow

DEFAULT_CONFIRM_WITHIN = timedelta(hours=24)  # a channel no longer configured as email


@dataclass(frozen=True)
class Handoff:
    """One post waiting for its desk's confirmation."""

    post_id: int
    channel: str
    handed_off_at: datetime
    deadline: datetime  # handed_off_at + the channel's confirm_within
    message_id: str  # the hand-off mail's Message-ID

    def overdue(self, now: datetime) -> bool:
        return now > self.deadline


def confirm_within(config: Config, channel: str) -> timedelta:
    """How long ``channel``'s desk has to confirm a post (its ``confirm_within``)."""
    ch = config.channels.get(channel)
    if ch is not None and isinstance(ch.settings, EmailSettings):
        return ch.settings.confirm_within
    return DEFAULT_CONFIRM_WITHIN


def handoffs(s: Session, config: Config) -> list[Handoff]:
    """Every handed-off post, by its deadline."""
    rows = s.execute(
        select(
            PostRow.id,
            PostRow.channel,
            PostRow.handed_off_at,
            PostRow.updated_at,
            PostRow.remote_id,
        ).where(PostRow.state == State.HANDED_OFF)
    ).all()
    out = []
    for post_id, channel, handed, updated, remote_id in rows:
        at = handed or updated  # handed_off_at is set with the state; updated_at as a fallback
        deadline = at + confirm_within(config, channel)
        out.append(Handoff(post_id, channel, at, deadline, remote_id or ""))
    return sorted(out, key=lambda h: (h.deadline, h.post_id))


def overdue(s: Session, config: Config, now: datetime) -> list[Handoff]:
    """The handed-off posts whose deadline has passed at ``now``."""
    return [h for h in handoffs(s, config) if h.overdue(now)]
