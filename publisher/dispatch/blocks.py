"""Channels that cannot publish, and the posts that wait for them.

A channel is paused by a person, or blocked: throttled (until the platform's time), stopped
for its credentials (re-checked now and then), or unreachable (an outage: probed with backoff
in real time until a request reaches it). The rules here, mixed into the dispatcher: the
probes, the grace window and lateness, and why a post that was never sent is missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from publisher.channels.base import Adapter, ChannelError, CheckResult, Unreachable
from publisher.clock import Clock
from publisher.dispatch.outcomes import PassReport, auth_recheck, end_outage, probe_wait, waits_for
from publisher.dispatch.retry import RetryPolicy
from publisher.states import BlockKind, State
from publisher.store import workers
from publisher.store.db import Database
from publisher.store.history import transition
from publisher.store.models import ChannelState, DaemonRow, PostRow

if TYPE_CHECKING:
    from publisher.dispatch.settings import DispatchSettings

logger = logging.getLogger(__name__)

CHECKED = (BlockKind.AUTH, BlockKind.OUTAGE)  # blocks that only a successful check ends
PROBE_WAIT = 1.0  # real seconds a pass waits for its channels' checks before going on


class ChannelRules:
    """Mixed into the dispatcher, which owns these."""

    db: Database
    adapters: Mapping[str, Adapter]
    clock: Clock
    policy: RetryPolicy
    settings: DispatchSettings
    worker: str
    started: datetime | None  # this dispatcher's first pass, on its clock
    _pool: ThreadPoolExecutor
    _probing: dict[str, tuple[BlockKind, Future[CheckResult]]]  # channel → (block kind, its check)
    on_answer: Callable[[], None] | None

    def _blocked(
        self, s: Session, now: datetime, states: Mapping[str, ChannelState | None] | None = None
    ) -> dict[str, ChannelState]:
        """Channels that may not publish now. One stopped for its credentials or unreachable
        stays blocked until its check succeeds, whatever its ``blocked_until`` (the time of
        that check) says: a pass that streams past it must not claim a post before the check.
        ``states``: every channel's row as already read in ``s`` (None: read them here)."""
        rows: Iterable[ChannelState]
        if states is not None and all(c in states for c in self.adapters):
            rows = [r for c, r in states.items() if r is not None and c in self.adapters]
        else:
            rows = s.scalars(
                select(ChannelState).where(ChannelState.channel.in_(list(self.adapters)))
            )
        return {
            r.channel: r
            for r in rows
            if r.paused
            or r.block_kind in CHECKED
            or (r.blocked_until is not None and r.blocked_until > now)
        }

    # -- probes -----------------------------------------------------------------------------

    def _probe_blocks(self) -> bool:
        """Check the channels whose credentials were refused, or which were unreachable, once
        their time comes (in parallel, no transaction open): ok → they go on in this pass.
        True when a check's answer was recorded (a channel may have been unblocked).
        A check that takes longer than PROBE_WAIT goes on while the pass does (a slow or
        hanging channel must not hold up the others); a later pass records its answer, and
        ``on_answer`` asks for that pass as soon as it comes."""
        now = self.clock.now()
        with self.db.read() as s:
            due = [
                (r.channel, r.block_kind)
                for r in s.scalars(select(ChannelState).where(ChannelState.block_kind.in_(CHECKED)))
                if r.block_kind is not None
                and r.blocked_until is not None
                and r.blocked_until <= now
                and r.channel in self.adapters
                and r.channel not in self._probing
                and not r.paused
            ]
        for cid, kind in due:
            future = self._pool.submit(self._check, cid)
            if self.on_answer is not None:
                future.add_done_callback(lambda _f: self.on_answer and self.on_answer())
            self._probing[cid] = (kind, future)
        if not self._probing:
            return False
        recorded = False
        wait([f for _k, f in self._probing.values()], timeout=PROBE_WAIT)
        for channel, (kind, future) in list(self._probing.items()):
            if not future.done():
                continue
            del self._probing[channel]
            recorded = True
            result = future.result()
            now = self.clock.now()
            with self.db.write() as s:
                row = s.get(ChannelState, channel)
                if row is None or row.block_kind != kind:
                    continue  # settled meanwhile (a published post, a person)
                if kind == BlockKind.OUTAGE:
                    self._after_probe(row, result, now)
                elif result.ok:
                    logger.info("channel %s: credentials work again, unblocked", channel)
                    row.blocked_until, row.block_kind, row.block_reason = None, None, None
                    row.blocked_since = None
                else:
                    row.blocked_until = now + auth_recheck(self.clock)
                    row.block_reason = f"auth: {result.detail}"
                row.updated_at = now
        return recorded

    def _after_probe(self, row: ChannelState, result: CheckResult, now: datetime) -> None:
        if result.reachable:  # whatever it said, a request reached the platform
            end_outage(row, now)
            return
        row.probes += 1
        row.blocked_until = now + probe_wait(self.clock, row.probes)
        row.block_reason = f"outage: {result.detail}"

    def _check(self, channel: str) -> CheckResult:
        try:
            return self.adapters[channel].check()
        except Unreachable as exc:
            return CheckResult(False, exc.reason, reachable=False)
        except ChannelError as exc:
            return CheckResult(False, exc.reason)
        except Exception as exc:
            logger.exception("channel %s: its check failed", channel)
            return CheckResult(False, f"unexpected {type(exc).__name__}: {exc}")

    # -- the grace window and lateness --------------------------------------------------------

    def _expire(self, now: datetime, report: PassReport) -> None:
        """Posts that wait too long: a never-tried post due longer ago than the grace window is
        missed (with why), not posted late; on an unreachable channel posts wait for it
        instead (one history row each), up to ``max_lateness`` past their time, then fail."""
        grace = self.settings.grace
        with self.db.write() as s:
            states = {
                r.channel: r
                for r in s.scalars(
                    select(ChannelState).where(ChannelState.channel.in_(list(self.adapters)))
                )
            }
            self._give_up_late(s, now, states, report)
            down = {c: r for c, r in states.items() if r.block_kind == BlockKind.OUTAGE}
            if down:
                self._wait_for_channels(s, now, down, report)
            late = s.scalars(
                select(PostRow)
                .where(
                    PostRow.state == State.APPROVED,
                    PostRow.channel.in_([c for c in self.adapters if c not in down]),
                    PostRow.due_at < now - grace,
                )
                .order_by(PostRow.due_at, PostRow.id)
                .with_for_update(skip_locked=True)
            )
            for p in late:
                assert p.due_at is not None  # noqa: S101 - filtered on it
                why = self._why_missed(s, p, now, states.get(p.channel))
                transition(
                    s,
                    p,
                    State.MISSED,
                    now,
                    f"due {_ago(now - p.due_at)} ago, past the {_ago(grace)} grace window: "
                    f"{why}; reschedule it to publish",
                )
                p.last_error = f"missed: {why}"
                report.missed += 1

    def _wait_for_channels(
        self, s: Session, now: datetime, down: dict[str, ChannelState], report: PassReport
    ) -> None:
        """Due never-tried posts of unreachable channels wait for them (one history row
        each), as retries: only lateness ends their wait, not the grace window."""
        waiting = s.scalars(
            select(PostRow)
            .where(
                PostRow.channel.in_(list(down)),
                PostRow.state == State.APPROVED,
                PostRow.due_at <= now,
            )
            .order_by(PostRow.due_at, PostRow.id)
            .with_for_update(skip_locked=True)
        )
        for p in waiting:
            row = down[p.channel]
            p.next_attempt_at = row.blocked_until or now
            transition(s, p, State.RETRYING, now, waits_for(row))

    def _give_up_late(
        self, s: Session, now: datetime, states: dict[str, ChannelState], report: PassReport
    ) -> None:
        """Retries end ``max_lateness`` past the post's time, also when no attempt fails
        then (its channel unreachable, stopped or throttled): never sent that late."""
        lateness = self.policy.max_lateness
        late = s.scalars(
            select(PostRow)
            .where(
                PostRow.state == State.RETRYING,
                PostRow.channel.in_(list(self.adapters)),
                PostRow.due_at < now - lateness,
            )
            .order_by(PostRow.due_at, PostRow.id)
            .with_for_update(skip_locked=True)
        )
        hours = lateness.total_seconds() / 3600
        for p in late:
            row = states.get(p.channel)
            if row is not None and row.block_kind == BlockKind.OUTAGE:
                why = f"{waits_for(row)} in vain"
            elif row is not None and row.block_kind and row.blocked_until:
                why = f"channel {p.channel} stopped: {row.block_reason or row.block_kind}"
            elif p.last_error:
                why = f"last: {p.last_error}"
            else:  # it waited its turn, never tried again: say what held it
                why = self._busy(s, p) or "no pass claimed it in time (the daemon fell behind)"
            transition(
                s, p, State.FAILED, now, f"gave up: more than {hours:g} h past its time; {why}"
            )
            report.failed += 1

    def _why_missed(self, s: Session, p: PostRow, now: datetime, row: ChannelState | None) -> str:
        """What truly kept never-tried post ``p`` from going out in its grace window."""
        assert p.due_at is not None  # noqa: S101
        if row is not None and row.paused:
            return f"channel {p.channel} paused by {row.paused_by or 'an editor'}"
        if (
            row is not None
            and row.block_kind
            and row.blocked_until
            and (row.block_kind in CHECKED or row.blocked_until > p.due_at)
        ):
            reason = row.block_reason or row.block_kind
            if row.blocked_until > now or row.block_kind in CHECKED:
                return f"channel {p.channel} stopped: {reason}"
            until = f"{row.blocked_until:%Y-%m-%d %H:%M} UTC"
            return f"channel {p.channel} was blocked until {until}: {reason}"
        started = self.started or now
        if p.due_at < started and not self._daemon_ran_at(s, p.due_at, now):
            return (
                "no daemon was running when it fell due "
                f"(this one started {started:%Y-%m-%d %H:%M} UTC)"
            )
        return self._busy(s, p) or "no pass claimed it in time (the daemon fell behind)"

    def _busy(self, s: Session, p: PostRow) -> str | None:
        """ "channel … was busy with N earlier post(s)" if posts due before ``p`` (or in flight)
        held its channel, else None."""
        assert p.due_at is not None  # noqa: S101
        ahead = (
            s.scalar(
                select(func.count())
                .select_from(PostRow)
                .where(
                    PostRow.channel == p.channel,
                    PostRow.id != p.id,
                    (PostRow.state == State.SENDING)
                    | (
                        PostRow.state.in_([State.APPROVED, State.RETRYING, State.UNCONFIRMED])
                        & (PostRow.due_at < p.due_at)
                    ),
                )
            )
            or 0
        )
        if not ahead:
            return None
        limit = self.settings.concurrency.get(p.channel, self.settings.default_concurrency)
        return f"channel {p.channel} was busy with {ahead} earlier post(s) (concurrency {limit})"

    def _daemon_ran_at(self, s: Session, due: datetime, now: datetime) -> bool:
        """Whether another daemon was alive when ``due`` (on this clock) came. Heartbeats are
        real time: ``due`` is mapped to the real instant it fell at."""
        real_now = datetime.now(UTC)
        real_due = real_now - timedelta(seconds=self.clock.real_seconds(now - due))
        slack = workers.heartbeat_timeout(self.settings.tick)
        for r in s.scalars(select(DaemonRow).where(DaemonRow.worker != self.worker)):
            end = r.stopped_at or min(r.beat_at + slack, real_now)
            if r.started_at <= real_due <= end:
                return True
        return False


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s"
