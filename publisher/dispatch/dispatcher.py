"""The dispatcher: claims due posts with a lease, publishes them, records the outcome.

One pass (``run_once``) is: claim what is due per channel (within each channel's concurrency)
and call the adapters with no transaction open, then check blocked channels whose time has
come, recover expired leases and settle what waited too long (the pass's bookkeeping, after
the calls have started), and, as calls answer, record their outcomes (each fenced on its claim
number) and claim the next due posts in one short transaction, so a burst streams through each
channel with its calls always busy and one commit per round instead of one per post. Its
collaborators (database, adapters, clock, policy, random source) are arguments; it never reads
the environment. What each answer does to its post (retry, look up, give up, block the
channel) is ``publisher.dispatch.outcomes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, joinedload

from publisher.channels.base import Adapter, CheckResult, Media, Outgoing, Receipt
from publisher.clock import Clock
from publisher.dispatch.blocks import CHECKED, ChannelRules
from publisher.dispatch.outcomes import Claim, OutcomeRules, PassReport, read_states
from publisher.dispatch.retry import RetryPolicy
from publisher.dispatch.settings import DispatchSettings
from publisher.render import MEDIA_FIELD, fields_hash
from publisher.states import BlockKind, Mode, Outcome, State
from publisher.store import approvals, audit, workers
from publisher.store import media as media_files
from publisher.store.db import Database
from publisher.store.history import SYSTEM, transition
from publisher.store.models import ChannelState, MediaFile, PostRow
from publisher.text import clean

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """A claim's call and its answer: a receipt, or the error it raised."""

    claim: Claim
    receipt: Receipt | None
    error: BaseException | None
    seconds: float  # how long the call took
    at: datetime  # when it answered, on the dispatcher's clock


class Dispatcher(OutcomeRules, ChannelRules):
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, Adapter],
        clock: Clock,
        *,
        worker: str,
        policy: RetryPolicy | None = None,
        settings: DispatchSettings | None = None,
        rng: random.Random | None = None,
        on_outcome: Callable[[PostRow, str], None] | None = None,
        render_check: Callable[[PostRow], str | None] | None = None,
    ) -> None:
        self.db = db
        self.adapters = dict(adapters)
        self.clock = clock
        self.worker = worker
        self.policy = policy or RetryPolicy()
        self.settings = settings or DispatchSettings()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.on_outcome = on_outcome
        self.render_check = render_check  # the current render's hash; None = cannot render
        self.started: datetime | None = None  # the first pass, on this dispatcher's clock
        self._lock = threading.Lock()
        # Set on shutdown: claimed calls not yet started are released.
        self.stopping = threading.Event()
        # Set when the daemon stops without waiting for calls still in flight: their answers
        # are not recorded (as after kill -9); the next start looks them up.
        self.abandoned = threading.Event()
        # The calls, and a thread per channel for the probes of blocked channels.
        self._pool = ThreadPoolExecutor(max_workers=self._total_concurrency() + len(self.adapters))
        self._running: set[Future[Attempt]] = set()  # calls not recorded yet (under _lock)
        self._posts: dict[Future[Attempt], int] = {}  # each of those calls' post
        self._probing: dict[str, tuple[BlockKind, Future[CheckResult]]] = {}  # checks in flight
        self.on_answer: Callable[[], None] | None = None  # a call answered: record it soon
        # Done when something may have fallen due while a pass streams answers (``poke``: the
        # waker's time came): the stream claims at once instead of at its next answer, so a
        # slow call on one channel does not hold up a post due on another.
        self._poked: Future[None] = Future()
        # Called when a pass starts waiting for calls, and after each round a poke asked for:
        # the daemon arms its wake-up for the next post due meanwhile (``Daemon._arm``).
        self.on_stream: Callable[[], None] | None = None
        workers.register(worker)

    def _total_concurrency(self) -> int:
        return sum(self._limit(c) for c in self.adapters)

    def _limit(self, channel: str) -> int:
        return self.settings.concurrency.get(channel, self.settings.default_concurrency)

    def abandon(self) -> None:
        self.stopping.set()
        self.abandoned.set()

    def poke(self) -> None:
        """Something may be due now: a pass streaming answers claims at once (never waits)."""
        with suppress(InvalidStateError):  # already poked
            self._poked.set_result(None)

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
        workers.unregister(self.worker)

    # -- one pass -------------------------------------------------------------------------

    def run_once(self) -> PassReport:
        """Do everything that is due now; return what happened. Never raises for one post.

        A pass streams for ``pass_budget`` real seconds at most: calls still in flight then
        go on while the pass ends (a slow platform must not hold up the other channels, nor
        the grace window); a later pass records their answers (``on_answer`` says when).
        """
        report = PassReport()
        if not self._lock.acquire(blocking=False):
            return report  # a pass is already running
        try:
            self._poked = Future()  # this pass claims what is due now: earlier pokes are met
            now = self.clock.now()
            if self.started is None:
                self.started = now
            # The claim comes first and its calls start at once: a post due now does not wait
            # for the pass's bookkeeping. It claims only what that bookkeeping would leave
            # claimable at ``now`` (nothing past the grace window or ``max_lateness``, nothing
            # of a channel waiting for its check), so the order changes no outcome.
            with self.db.write() as s:
                claims = self._claim(s, now, report, within_windows=True)
            self._submit(claims)
            probed = self._probe_blocks()
            self._recover(now, report)
            self._expire(now, report)
            # a channel its check unblocked, and what a dead worker left (looked up before
            # any resend), go on in this very pass
            if probed or report.recovered:
                with self.db.write() as s:
                    claims = self._claim(s, now, report, within_windows=True)
                self._submit(claims)
            self._stream([], report, self.settings.pass_budget)
        finally:
            self._lock.release()
        return report

    def drain(self, timeout: float | None = None, report: PassReport | None = None) -> bool:
        """Wait up to ``timeout`` real seconds (None: for ever) for the calls in flight and
        record their answers, claiming nothing more; True when none is left."""
        if not self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            self._stream([], report or PassReport(), timeout, refill=False)
            return not self._running
        finally:
            self._lock.release()

    def _submit(self, claims: list[Claim]) -> None:
        for c in claims:
            future = self._pool.submit(self._attempt, c)
            if self.on_answer is not None:
                future.add_done_callback(lambda _f: self.on_answer and self.on_answer())
            self._running.add(future)
            self._posts[future] = c.post_id

    def _stream(
        self, claims: list[Claim], report: PassReport, budget: float | None, *, refill: bool = True
    ) -> None:
        """Call the platforms for ``claims``; as calls answer (these, or earlier passes'),
        record their outcomes and claim what has fallen due since on the channels that have
        room, in one transaction a round, for ``budget`` real seconds (None: until none is
        left in flight)."""
        started = time.monotonic()
        self._submit(claims)
        if self._running and refill:
            self._armed()
        while self._running:
            left = None if budget is None else max(0.0, budget - (time.monotonic() - started))
            poked = self._poked
            waiting: set[Future[Any]] = {*self._running, poked}
            done, _ = wait(waiting, timeout=left, return_when=FIRST_COMPLETED)
            if self.abandoned.is_set():
                return  # the daemon stopped without us: the next start reconciles them
            if poked in done:
                self._poked = Future()  # before the clock is read: a later poke is not lost
            elif not done:
                return  # the budget is spent: calls still in flight are recorded later
            calls = {f for f in self._running if f in done}
            self._running -= calls
            for f in calls:
                self._posts.pop(f, None)
            answered = [f.result() for f in calls]
            more_wanted = refill and not self.stopping.is_set() and left != 0.0
            if not answered and not more_wanted:
                continue  # a poke while draining: nothing to record, nothing to claim
            more: list[Claim] = []
            with self.db.write() as s:
                states = read_states(s, self.adapters)  # every channel's row, read once
                recorded = self._complete(s, answered, report, states) if answered else []
                if more_wanted:
                    try:
                        with s.begin_nested():
                            # every channel: one with no call in flight may have a post due now
                            more = self._claim(s, self.clock.now(), report, states=states)
                    except Exception:  # the outcomes above still count; the next pass claims
                        logger.exception("could not claim more posts in this pass")
                        more = []
            self._submit(more)  # the next calls first: their claims are committed
            for attempt, p, outcome in recorded:
                self._log(attempt, p, outcome)
                report.outcomes.append((p.id, p.channel, outcome))
                if self.on_outcome:
                    self.on_outcome(p, outcome)
            if not answered:
                self._armed()  # the waker's time was met: ask for the next one

    def _armed(self) -> None:
        """Tell the daemon this pass waits for calls (``on_stream``): it wakes us, by a poke,
        when the next post falls due meanwhile. Its failure never stops the pass."""
        if self.on_stream is None:
            return
        try:
            self.on_stream()
        except Exception:
            logger.exception("could not plan the next wake-up while calls are in flight")

    def _recover(self, now: datetime, report: PassReport) -> None:
        """Claims of a dead worker (``publisher.store.workers``), or whose lease expired: the worker
        died mid-call and the post may exist, so it is looked up (in this very pass) before
        any resend. A live worker's claims are never touched before their lease ends."""
        with self.db.write() as s:
            others = s.scalars(
                select(PostRow.claimed_by)
                .where(PostRow.state == State.SENDING, PostRow.claimed_by != self.worker)
                .distinct()
            )
            dead = workers.dead_workers(
                s, [w for w in others if w], datetime.now(UTC), self.settings.tick
            )
            # this dispatcher's own calls still in flight are not stale, whatever their lease
            # says (a slow call on a rehearsal's fast clock): their answers are recorded as
            # they come, and taking them over would look them up before they exist
            mine = set(self._posts.values())
            stale = s.scalars(
                select(PostRow)
                .where(
                    PostRow.state == State.SENDING,
                    or_(PostRow.lease_until < now, PostRow.claimed_by.in_(list(dead))),
                )
                .with_for_update(skip_locked=True)
            )
            for p in stale:
                if p.claimed_by == self.worker and p.id in mine:
                    continue
                why = dead.get(p.claimed_by or "")
                cause = (
                    f"worker {p.claimed_by} is dead ({why}) mid-call"
                    if why
                    else f"lease of {p.claimed_by} expired mid-call"
                )
                p.next_attempt_at = now
                p.claims += 1
                transition(
                    s, p, State.UNCONFIRMED, now, f"{cause}; looking it up before any resend"
                )
                report.recovered += 1

    def _claim(
        self,
        s: Session,
        now: datetime,
        report: PassReport,
        *,
        within_windows: bool = False,
        states: dict[str, ChannelState | None] | None = None,
    ) -> list[Claim]:
        """Claim, in ``s``, what is due on each channel, up to its room (its concurrency less
        the calls in flight, whichever worker made them). ``within_windows``: not a
        never-tried post past the grace window, nor a retry past ``max_lateness`` (what
        ``_expire`` settles), as at a pass's start, before ``_expire`` has run. ``states``:
        every channel's row as already read (and changed) in ``s`` (``read_states``)."""
        claims: list[Claim] = []
        send = and_(PostRow.state == State.APPROVED, PostRow.due_at <= now)
        retry = and_(PostRow.state == State.RETRYING, PostRow.next_attempt_at <= now)
        if within_windows:
            send = and_(send, PostRow.due_at >= now - self.settings.grace)
            retry = and_(retry, PostRow.due_at >= now - self.policy.max_lateness)
        lookup = and_(PostRow.state == State.UNCONFIRMED, PostRow.next_attempt_at <= now)
        blocked = self._blocked(s, now, states)
        open_ = [c for c in self.adapters if c not in blocked]
        # in one query: each channel's calls in flight (whichever worker made them), and
        # whether it has something due; only the channels with both room and a post due are
        # then locked and read
        sending = PostRow.state == State.SENDING
        in_flight = dict.fromkeys(self.adapters, 0)
        due: set[str] = set()
        for cid, calls, waiting in s.execute(
            select(
                PostRow.channel,
                func.sum(case((sending, 1), else_=0)),
                func.sum(case((sending, 0), else_=1)),
            )
            .where(or_(sending, and_(PostRow.channel.in_(open_), or_(send, retry, lookup))))
            .group_by(PostRow.channel)
        ):
            if cid in in_flight:
                in_flight[cid] = int(calls or 0)
                if waiting:
                    due.add(cid)
        for channel in open_:
            room = self._limit(channel) - in_flight[channel]
            if room <= 0 or channel not in due:
                continue
            rows = s.scalars(
                select(PostRow)
                .options(joinedload(PostRow.message))
                .where(PostRow.channel == channel, or_(send, retry, lookup))
                .order_by(PostRow.due_at, PostRow.id)
                .limit(room)
                .with_for_update(skip_locked=True, of=PostRow)
            ).unique()
            for p in rows:
                claim = self._claim_one(s, p, now)
                if claim:
                    claims.append(claim)
        report.claimed += len(claims)
        return claims

    def _claim_one(self, s: Session, p: PostRow, now: datetime) -> Claim | None:
        assert p.due_at is not None  # noqa: S101 - approved posts always have a time
        # the pictures' bytes, read once: checked against their approved hashes, then sent
        files = media_files.files(s, picture_shas(p.fields))
        if p.state in (State.APPROVED, State.RETRYING):  # a send: only the approved bytes
            refused = self._unapproved(s, p, files)
            if refused is not None:
                cause, found = refused
                transition(s, p, State.DRAFT, now, cause, audit_as="revoke", content_hash=found)
                approvals.revoke(s, p, SYSTEM, now)  # every step must approve it anew
                return None
        mode = Mode.LOOKUP if p.state == State.UNCONFIRMED else Mode.SEND
        was = State(p.state)
        p.claims += 1
        p.lease_until = now + self.settings.lease
        p.claimed_by = self.worker
        p.claimed_at = now
        p.claim_mode = mode
        since = p.sent_at
        if mode == Mode.SEND:
            p.attempt += 1
            p.sent_at = now
        transition(
            s, p, State.SENDING, now, f"claimed by {self.worker} ({mode}, attempt {p.attempt})"
        )
        exclude: frozenset[str] = frozenset()
        if mode == Mode.LOOKUP:  # ids other posts own: a lookup by content must skip them
            owned = select(PostRow.remote_id).where(
                PostRow.channel == p.channel, PostRow.id != p.id, PostRow.remote_id.is_not(None)
            )
            exclude = frozenset(str(r) for r in s.scalars(owned))
        return Claim(p.id, p.claims, mode, p.channel, outgoing_of(p, exclude, files), since, was)

    def _unapproved(
        self, s: Session, p: PostRow, files: Mapping[str, MediaFile]
    ) -> tuple[str, str | None] | None:
        """Why ``p`` may not be sent (its cause and the hash found), or None: the fields it
        would send must hash to the approved hash, the audit trail must hold that approval,
        its pictures' stored bytes (``files``) must be those approved, and the current render
        must still be that text."""
        stored = fields_hash(p.fields)
        if stored != p.approved_hash:
            p.render_hash = stored  # truthful again: the next load re-renders it from its file
            return (
                f"{audit.ALTERED}: the stored text no longer matches the approved text; nothing "
                "was sent (find out who changed the database, then approve it again)"
            ), stored
        if not audit.approves(s, p.id, stored):
            return (
                f"{audit.ALTERED}: the audit trail holds no approval of this text; nothing was "
                "sent (find out who changed the database, then approve it again)"
            ), stored
        missing = _missing_picture(p.fields, files)
        if missing:
            return (
                f"{audit.ALTERED}: the approved picture {missing} is not in the database as it "
                "was approved; nothing was sent (load again, then approve it again)"
            ), stored
        current = self.render_check(p) if self.render_check else p.render_hash
        if current is None or current != p.approved_hash:
            return (
                "approval revoked: the text it would send now differs from the approved text "
                "(content, template or config changed); approve it again"
            ), current
        return None

    # -- the call, outside any transaction ------------------------------------------------

    def _attempt(self, claim: Claim) -> Attempt:
        adapter = self.adapters[claim.channel]
        if self.stopping.is_set():
            return Attempt(claim, None, _Released(), 0.0, self.clock.now())
        started = time.monotonic()
        receipt: Receipt | None = None
        error: BaseException | None = None
        try:
            if claim.mode == Mode.LOOKUP:
                receipt = adapter.lookup(claim.outgoing, claim.since or claim.outgoing.due_at)
            else:
                receipt = adapter.publish(claim.outgoing)
        except Exception as exc:
            error = exc
        return Attempt(claim, receipt, error, time.monotonic() - started, self.clock.now())

    # -- completion, fenced ---------------------------------------------------------------

    def _complete(
        self,
        s: Session,
        answered: list[Attempt],
        report: PassReport,
        states: dict[str, ChannelState | None] | None = None,
    ) -> list[tuple[Attempt, PostRow, Outcome]]:
        """Record each answer in ``s`` (one savepoint each): only if its post still carries
        the claim; a claim lost to lease expiry meanwhile is another worker's now."""
        ids = [a.claim.post_id for a in answered]
        rows = {
            p.id: p
            for p in s.scalars(
                select(PostRow).where(PostRow.id.in_(ids)).with_for_update(of=PostRow)
            )
        }
        recorded = []
        if states is None:
            states = read_states(s, (a.claim.channel for a in answered))
        for a in answered:
            claim = a.claim
            p = rows.get(claim.post_id)
            if p is None or p.claims != claim.claims or p.state != State.SENDING:
                report.fenced_off += 1
                logger.warning(
                    "post %s: claim %s lost its lease before completing; not recording",
                    claim.post_id,
                    claim.claims,
                )
                continue
            try:
                with s.begin_nested():
                    if isinstance(a.error, _Released):
                        self._release(s, p, claim, a.at)
                        continue
                    outcome = self._apply(s, p, claim, a.receipt, a.error, a.at, report, states)
            except Exception:
                states.pop(claim.channel, None)  # its row may be rolled back: read it again
                # A bug recording one post must not lose the others' outcomes: this one stays
                # "sending" and is looked up once its lease expires.
                logger.exception("post %s: could not record its outcome", claim.post_id)
                continue
            recorded.append((a, p, outcome))
        return recorded

    def _log(self, a: Attempt, p: PostRow, outcome: str) -> None:
        logger.info(
            "attempt post=%s channel=%s mode=%s attempt=%s outcome=%s remote_id=%s seconds=%.3f%s",
            p.id,
            p.channel,
            a.claim.mode,
            p.attempt,
            outcome,
            clean(a.receipt.remote_id) if a.receipt else "-",
            a.seconds,
            f" reason={clean(str(a.error))}" if a.error else "",
        )

    # -- scheduling help ------------------------------------------------------------------

    def next_wake(self) -> datetime | None:
        """The earliest time anything could become due (for the waker). Posts of a blocked or
        paused channel count from the block's end (or its next probe), not from their own
        time: a post waiting for its channel must not wake the daemon again and again."""
        with self.db.read() as s:
            blocked = self._blocked(s, self.clock.now())
            # a channel at its concurrency (calls in flight, whichever worker made them) claims
            # nothing until one answers, which wakes its daemon (on_answer) or ends in a lease
            sending = Counter(
                s.scalars(select(PostRow.channel).where(PostRow.state == State.SENDING))
            )
            free = [c for c in self.adapters if c not in blocked and sending[c] < self._limit(c)]
            due = s.scalars(
                select(PostRow.due_at)
                .where(PostRow.state == State.APPROVED, PostRow.channel.in_(free))
                .order_by(PostRow.due_at)
                .limit(1)
            ).first()
            retry = s.scalars(
                select(PostRow.next_attempt_at)
                .where(
                    PostRow.state.in_([State.RETRYING, State.UNCONFIRMED]),
                    PostRow.channel.in_(free),
                )
                .order_by(PostRow.next_attempt_at)
                .limit(1)
            ).first()
            lease = s.scalars(
                select(PostRow.lease_until)
                .where(PostRow.state == State.SENDING)
                .order_by(PostRow.lease_until)
                .limit(1)
            ).first()
            now = self.clock.now()
            blocks = [  # an ended throttle is no reason to wake; a due check is
                r.blocked_until
                for r in s.scalars(select(ChannelState))
                if r.blocked_until is not None
                and r.channel in self.adapters
                and r.channel not in self._probing  # its answer wakes us (on_answer)
                and not r.paused
                and (r.blocked_until > now or r.block_kind in CHECKED)
            ]
        times = [t for t in (due, retry, lease, *blocks) if t is not None]
        return min(times) if times else None


def picture_entries(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A post's pictures as its stored fields name them (``publisher.media.Prepared.entry``)."""
    raw = fields.get(MEDIA_FIELD)
    entries = json.loads(raw) if isinstance(raw, str) and raw else []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def picture_shas(fields: Mapping[str, Any]) -> list[str]:
    return [str(e["sha256"]) for e in picture_entries(fields) if e.get("sha256")]


def _missing_picture(fields: Mapping[str, Any], files: Mapping[str, MediaFile]) -> str | None:
    """The name of a picture of ``fields`` whose bytes are not among the stored ``files`` as
    approved, or None."""
    for e in (e for e in picture_entries(fields) if e.get("sha256")):
        f = files.get(str(e["sha256"]))
        if f is None or hashlib.sha256(f.data).hexdigest() != e["sha256"]:
            return str(e.get("name") or e.get("src") or e["sha256"])
    return None


def media_of(fields: Mapping[str, Any], files: Mapping[str, MediaFile]) -> tuple[Media, ...]:
    """The pictures an adapter sends for a post: each entry of its fields, with its bytes."""
    out = []
    for e in picture_entries(fields):
        f = files.get(str(e.get("sha256") or ""))
        out.append(
            Media(
                role=str(e.get("role", "image")),
                alt=str(e.get("alt", "")),
                mime=str(e.get("mime", "")),
                name=str(e.get("name", "")),
                sha256=str(e.get("sha256", "")),
                data=f.data if f is not None else b"",
                url=str(e.get("url", "")),
                width=int(e.get("width", 0)),
                height=int(e.get("height", 0)),
            )
        )
    return tuple(out)


def outgoing_of(
    p: PostRow,
    exclude: frozenset[str] = frozenset(),
    files: Mapping[str, MediaFile] | None = None,
) -> Outgoing:
    """What an adapter gets of post ``p`` (its message loaded): its rendered fields and keys,
    and its pictures with the bytes of ``files`` (by SHA-256)."""
    assert p.due_at is not None  # noqa: S101 - a post due for sending has a time
    return Outgoing(
        post_id=p.id,
        idempotency_key=p.idempotency_key,
        channel=p.channel,
        kind=p.message.kind,
        fields=dict(p.fields),
        due_at=p.due_at,
        exclude=exclude,
        media=media_of(p.fields, files or {}),
    )


class _Released(Exception):
    """Marks a claim that was given back without calling the platform."""
