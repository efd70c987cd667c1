"""The collector: which published posts to read when, reading them, recording the snapshots.

A round picks the published posts due a reading (never read, or last read ``[insights] every``
ago or more, while now is before the campaign's end plus ``[insights] after``), asks each
post's channel adapter for its figures and records them with ``store.metrics.record``: one
snapshot more, never one overwritten. It never disturbs publishing: no transaction is open
while a platform is asked, the readings are recorded a few at a time in one short transaction
(``BATCH``), a channel that cannot be read (stopped for its credentials, unreachable,
throttled, its token expired) is left alone until a later round, and a round given a
``budget`` (campaign time: a share of the time between two rounds, ``app.insights_budget``)
stops when it is spent, the posts it did not reach left due for the next round. Posts never
read come first, then the ones read longest ago: a round that stops early leaves the freshest
figures unread, never a post without any. (A rehearsal runs a month in minutes: reading every
post every campaign day would take the daemon's whole time; the budget keeps its rounds to a
share of it, and the rehearsal's last reading, after its daemon stopped, reads every post.)

- ``NoFigures``: the platform keeps none for the post (a WordPress site without a stats
  endpoint, a portal's desk): ONE snapshot with the reason as its note, and the post is never
  read again.
- a ``ChannelError``: logged; the post waits for the next round. ``Throttled``,
  ``Unreachable`` and ``AuthError`` stop reading that channel for this round.

Several daemons may collect on one queue: before recording, the post's last reading is looked
up again (its row locked on PostgreSQL, the write transaction exclusive on SQLite); when
another collector recorded it meanwhile, this reading is dropped, so two never both record.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from publisher.channels.base import AuthError, ChannelError, Throttled, Unreachable
from publisher.clock import Clock
from publisher.config import Config
from publisher.i18n import N_
from publisher.metrics import MetricsReader, NoFigures, Reading
from publisher.states import BlockKind, State
from publisher.store import metrics
from publisher.store.db import Database
from publisher.store.models import ChannelState, ChannelTokenRow, MetricRow, PostRow

logger = logging.getLogger(__name__)

# Zalo's tokens (platform-apis.md §2): the access token lives 25 h, the refresh token minted
# with it about three months (as publisher.alerts.causes reads them).
ZALO_ACCESS_LIFETIME = timedelta(seconds=90000)
ZALO_REFRESH_LIFETIME = timedelta(days=90)
MAX_PACING = 5.0  # real seconds: an adapter asking to wait longer is not read this round
BATCH = 20  # readings recorded in one transaction (a write holds SQLite's lock: keep it short)
NO_READER = N_("this channel's adapter reads no figures")


class Status(StrEnum):
    READ = "read"  # figures recorded
    NO_FIGURES = "no_figures"  # the platform keeps none: recorded once with the reason
    FAILED = "failed"  # the read failed; tried again next round
    SKIPPED = "skipped"  # its channel could not be read this round; tried again next round
    TAKEN = "taken"  # another collector recorded it meanwhile


@dataclass(frozen=True)
class Target:
    """A published post due a reading."""

    post_id: int
    channel: str
    remote_id: str
    url: str | None
    published_at: datetime | None
    last: datetime | None  # when it was last read, or None


@dataclass(frozen=True)
class Result:
    target: Target
    status: Status
    reading: Reading | None = None
    detail: str = ""
    taken_at: datetime | None = None  # when it was read (recorded or not)


@dataclass(frozen=True)
class _Read:
    """A reading taken, not yet recorded: figures, or (``note``) why the platform has none."""

    target: Target
    reading: Reading
    note: str | None
    status: Status
    taken_at: datetime


@dataclass
class Round:
    """What one round did: a result per post it considered, the channels it left alone."""

    at: datetime
    results: list[Result] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # channel → why
    left: int = 0  # posts due but not reached: the round's budget was spent

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)


def campaign_end(config: Config) -> datetime:
    """The end of the campaign's last day (its time zone), in UTC."""
    end = datetime.combine(config.campaign.end + timedelta(days=1), time(0), config.tz)
    return end.astimezone(UTC)


def reading_ends(config: Config) -> datetime:
    """When the daemon stops reading figures: the campaign's end plus ``[insights] after``."""
    return campaign_end(config) + config.insights.after


def no_more(s: Session) -> set[int]:
    """The posts recorded once as having no figures (a snapshot with a note): never read again."""
    return set(s.scalars(select(MetricRow.post_id).where(MetricRow.note.is_not(None)).distinct()))


def due(
    s: Session,
    config: Config,
    now: datetime,
    *,
    since: date | None = None,
    channels: Iterable[str] | None = None,
    force: bool = False,
) -> list[Target]:
    """The published posts due a reading at ``now``: never read, or last read ``every`` ago or
    more, while ``now`` is at most the campaign's end plus ``after``. ``since``: every post
    published on or after that day (local), however recently read and whenever; ``force``:
    every published post, however recently read (a rehearsal's last reading). Never a post
    recorded as having no figures, nor one published after ``now``. The posts never read
    come first (oldest published first), then the others, the one read longest ago first."""
    if since is None and not force and now > reading_ends(config):
        return []
    q = (
        select(
            PostRow.id,
            PostRow.channel,
            PostRow.remote_id,
            PostRow.remote_url,
            PostRow.published_at,
        )
        .where(PostRow.state == State.PUBLISHED)
        .where(PostRow.remote_id.is_not(None) | PostRow.remote_url.is_not(None))
        .order_by(PostRow.published_at, PostRow.id)
    )
    if channels is not None:
        q = q.where(PostRow.channel.in_(list(channels)))
    if since is not None:
        start = datetime.combine(since, time(0), config.tz).astimezone(UTC)
        q = q.where(PostRow.published_at >= start)
    last = metrics.last_taken(s)
    done = no_more(s)
    every = config.insights.every
    found = []
    for pid, channel, remote_id, remote_url, published_at in s.execute(q):
        if pid in done or (published_at is not None and published_at > now):
            continue
        taken = last.get(pid)
        if since is None and not force and taken is not None and now - taken < every:
            continue
        found.append(Target(pid, channel, remote_id or "", remote_url, published_at, taken))
    # never read first (oldest published first), then the ones read longest ago
    found.sort(key=lambda t: (t.last is not None, t.last or now))
    return found


def unreadable(s: Session, config: Config, now: datetime) -> dict[str, str]:
    """The channels not to read at ``now``, each with why: stopped for their credentials,
    unreachable, throttled (as the dispatcher's blocks say), or a Zalo channel whose refresh
    token has expired (as the alerts read it)."""
    found: dict[str, str] = {}
    for row in s.scalars(select(ChannelState)):
        if row.block_kind in (BlockKind.AUTH, BlockKind.OUTAGE):
            found[row.channel] = f"blocked ({row.block_kind}): {row.block_reason or ''}".strip()
        elif row.blocked_until is not None and row.blocked_until > now:
            found[row.channel] = f"blocked until {row.blocked_until.isoformat()}"
    for cid, channel in config.channels.items():
        if channel.adapter != "zalo" or cid in found:
            continue
        token = s.scalars(
            select(ChannelTokenRow)
            .where(ChannelTokenRow.key.like(f"{cid}@%"), ChannelTokenRow.secret.is_not(None))
            .order_by(ChannelTokenRow.updated_at.desc())
            .limit(1)
        ).first()
        if token is None or token.access_expires_at is None:
            continue
        expires = token.access_expires_at - ZALO_ACCESS_LIFETIME + ZALO_REFRESH_LIFETIME
        if expires <= now:
            found[cid] = f"its refresh token expired at {expires.isoformat()}"
    return found


class Collector:
    """Reads the due posts' figures through ``readers`` (the dispatcher's adapters, by channel:
    their tokens and rate-limit pacing are shared with publishing) on ``clock``. ``budget``:
    the campaign time a round may spend (None: every due post is read)."""

    def __init__(
        self,
        db: Database,
        config: Config,
        readers: Mapping[str, object],
        clock: Clock,
        *,
        stopping: threading.Event | None = None,
        record_no_figures: bool = True,
        budget: timedelta | None = None,
    ) -> None:
        self.db = db
        # False: a platform that says it has no figures is not believed for good (a sandbox
        # started afresh, which holds none of the posts): the post stays due, nothing recorded.
        self.record_no_figures = record_no_figures
        self.config = config
        self.readers = readers
        self.clock = clock
        self.budget = budget
        self.stopping = stopping or threading.Event()
        self._lock = threading.Lock()  # one round at a time in this process

    def run_once(
        self,
        *,
        since: date | None = None,
        channels: Iterable[str] | None = None,
        force: bool = False,
    ) -> Round:
        """One round: the due posts read (see ``due``) until the budget is spent, their
        snapshots recorded."""
        with self._lock:
            now = self.clock.now()
            with self.db.read() as s:
                targets = due(s, self.config, now, since=since, channels=channels, force=force)
                blocked = unreadable(s, self.config, now) if targets else {}
            report = Round(now)
            rounds = _round_hooks(self.readers.values(), "begin_round")
            try:
                self._read_all(targets, blocked, now, report)
            finally:
                _round_hooks(rounds, "end_round")
            self._log(report)
            return report

    def _read_all(
        self, targets: list[Target], blocked: Mapping[str, str], now: datetime, report: Round
    ) -> None:
        """Read ``targets`` in turn until the budget is spent, recording a batch at a time."""
        read: list[_Read] = []
        for i, t in enumerate(targets):
            if self.stopping.is_set():
                break
            if self.budget is not None and self.clock.now() - now >= self.budget:
                report.left = len(targets) - i
                break
            why = report.skipped.get(t.channel) or blocked.get(t.channel)
            if why is None and not hasattr(self.readers.get(t.channel), "metrics"):
                why = NO_READER if t.channel in self.readers else "the channel is not enabled"
            if why is not None:
                report.skipped.setdefault(t.channel, why)
                report.results.append(Result(t, Status.SKIPPED, detail=why))
                continue
            outcome = self._read(t, report)
            if isinstance(outcome, Result):
                report.results.append(outcome)
                continue
            read.append(outcome)
            if len(read) >= BATCH:
                report.results.extend(self._record(read))
                read = []
        report.results.extend(self._record(read))

    def _read(self, t: Target, report: Round) -> Result | _Read:
        """Read one post: what to record (figures, or that there are none), or why not."""
        reader = cast(MetricsReader, self.readers[t.channel])
        wait = _pacing(reader)
        if wait > MAX_PACING:
            why = f"the platform asks to slow down ({wait:.0f}s)"
            report.skipped[t.channel] = why
            return Result(t, Status.SKIPPED, detail=why)
        if wait > 0:
            self.clock.sleep(wait, self.stopping)
        try:
            reading = reader.metrics(t.remote_id, t.url)
        except NoFigures as exc:
            note = str(exc) or N_("no figures")
            if not self.record_no_figures:
                return Result(t, Status.FAILED, detail=note)
            return _Read(t, Reading(), note, Status.NO_FIGURES, self.clock.now())
        except (Throttled, Unreachable, AuthError) as exc:
            report.skipped[t.channel] = exc.reason
            logger.warning("insights: %s: %s; not read again this round", t.channel, exc.reason)
            return Result(t, Status.SKIPPED, detail=exc.reason)
        except ChannelError as exc:
            logger.warning("insights: post %s (%s): %s", t.post_id, t.channel, exc.reason)
            return Result(t, Status.FAILED, detail=exc.reason)
        except Exception as exc:  # a bug in a reader must not stop the round, nor the daemon
            logger.exception("insights: post %s (%s): the read failed", t.post_id, t.channel)
            return Result(t, Status.FAILED, detail=f"unexpected {type(exc).__name__}")
        if not isinstance(reading, Reading):
            return Result(t, Status.FAILED, detail="the reader gave no Reading")
        return _Read(t, reading, None, Status.READ, self.clock.now())

    def _record(self, read: list[_Read]) -> list[Result]:
        """Record the snapshots read in one short transaction, each unless another collector
        recorded its post since it was picked (then that reading is dropped)."""
        if not read:
            return []
        out = []
        with self.db.write() as s:
            for r in read:
                t = r.target
                s.execute(select(PostRow.id).where(PostRow.id == t.post_id).with_for_update())
                last = s.scalar(
                    select(func.max(MetricRow.taken_at)).where(MetricRow.post_id == t.post_id)
                )
                if last != t.last:
                    out.append(Result(t, Status.TAKEN, r.reading, "read meanwhile", r.taken_at))
                    continue
                metrics.record(s, t.post_id, r.reading, r.taken_at, note=r.note)
                out.append(Result(t, r.status, r.reading, r.note or "", r.taken_at))
        return out

    def _log(self, report: Round) -> None:
        if not report.results:
            return
        logger.info(
            "insights: %d read, %d without figures, %d failed, %d skipped, %d left for the "
            "next round",
            report.count(Status.READ),
            report.count(Status.NO_FIGURES),
            report.count(Status.FAILED),
            report.count(Status.SKIPPED),
            report.left,
        )

    def safe(self) -> Round | None:
        """A round that never raises (the daemon's job): a failure is logged, None returned."""
        try:
            return self.run_once()
        except Exception:
            logger.exception("insights: the round failed; the next one tries again")
            return None


def _round_hooks(readers: Iterable[object], hook: str) -> list[object]:
    """Call ``hook`` (``begin_round``/``end_round``: a reader keeping what a round shares, as
    Zalo's list pages) on each reader that has it; the readers that had it."""
    called = []
    for reader in readers:
        method = getattr(reader, hook, None)
        if callable(method):
            method()
            called.append(reader)
    return called


def _pacing(reader: object) -> float:
    pacing = getattr(reader, "pacing", None)
    if pacing is None:
        return 0.0
    try:
        return float(pacing())
    except Exception:
        return 0.0
