"""``publisher insights``: read the published posts' figures now (what the daemon does daily),
and say per post what was read; registered on the main group like the other commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher.cli.common import (
    cli,
    config_option,
    date_arg,
    now,
    platforms,
    read_config,
    read_queue,
    sandbox_options,
    say,
)
from publisher.clock import RehearsalClock
from publisher.errors import InputError
from publisher.i18n import _

if TYPE_CHECKING:
    from publisher.clock import Clock
    from publisher.config import Config
    from publisher.insights.collect import Result, Round
    from publisher.store.db import Database


@cli.command()
@config_option
@click.option(
    "--since",
    callback=date_arg("--since"),
    metavar="DATE",
    help="Read every post published since this local date, however recently it was read.",
)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    metavar="NAME",
    help="Read only this channel's posts (may be given more than once).",
)
@sandbox_options
def insights(
    config_path: Path,
    since: date | None,
    channels: tuple[str, ...],
    sandbox: bool,
    sandbox_url: str | None,
) -> None:
    """Read the published posts' figures (views, reactions, comments, shares, clicks) now."""
    from publisher.app import build_adapters, make_collector

    if sandbox and sandbox_url:
        raise InputError("--sandbox", _("give --sandbox or --sandbox-url, not both"))
    config = read_config(config_path)
    wanted = _channels(config, channels)
    db = read_queue(config)
    timeline = _rehearsal_timeline(db, config)
    _check_target(db, timeline, sandbox, sandbox_url)
    from publisher.app import sandbox_seed

    seed = sandbox_seed(db) if timeline is not None else 0
    with platforms(config, sandbox, sandbox_url, seed=seed) as (cfg, secrets, url):
        adapters = build_adapters(cfg, secrets, db)
        from publisher.clock import SYSTEM_CLOCK

        clock: Clock = SYSTEM_CLOCK
        holds = True
        if timeline is not None and url is not None:
            clock, holds = _go_on(db, cfg, url, timeline)
        # a sandbox that may not hold the posts: its "no figures" is not believed for good
        collector = make_collector(db, cfg, adapters, clock, record_no_figures=holds)
        report = collector.run_once(since=since, channels=wanted)
    _say_round(config, report)


def _channels(config: Config, names: tuple[str, ...]) -> list[str] | None:
    """The channels named by ``--channel`` (None: all); one line for a name that is not an
    enabled channel."""
    if not names:
        return None
    enabled = [cid for cid, ch in config.channels.items() if ch.enabled]
    for name in names:
        if name not in enabled:
            raise InputError(
                "--channel",
                _("{name!r} is not an enabled channel").format(name=name),
                _("one of: {names}").format(names=", ".join(enabled)),
            )
    return list(names)


@dataclass(frozen=True)
class _Timeline:
    """A rehearsal's campaign time: where it goes on from, how fast, and its own clock while
    its daemon runs (None once it stopped)."""

    start: datetime
    speed: float
    running: RehearsalClock | None


def _rehearsal_timeline(db: Database, config: Config) -> _Timeline | None:
    """On a rehearsal's database, where its campaign time goes on from and how fast: its time
    at its last heartbeat or its last reading of figures, whichever is later (a finished
    rehearsal read its figures once more after its daemon stopped), and its speed; else None."""
    from sqlalchemy import func, select

    from publisher.states import RunMode
    from publisher.store.models import MetaRow, MetricRow
    from publisher.store.status import ANCHOR_KEYS, clock_of, rehearsal_now
    from publisher.store.workers import daemon_alive

    with db.read() as s:
        at = rehearsal_now(s, now())
        if at is None:
            return None
        meta = {
            m.key: m.value for m in s.scalars(select(MetaRow).where(MetaRow.key.in_(ANCHOR_KEYS)))
        }
        last = s.scalar(select(func.max(MetricRow.taken_at)))
    if last is not None:
        at = max(at, last if last.tzinfo is not None else last.replace(tzinfo=UTC))
    clock = clock_of(meta)
    alive = any(d.mode == RunMode.REHEARSE for d in daemon_alive(db, config.daemon.tick))
    return _Timeline(at, clock.speed, clock if alive else None)


def next_reading(last: datetime, config: Config) -> datetime:
    """When a finished rehearsal's next reading is taken on its timeline: one ``every`` after
    ``last`` (where it stopped), or the end of the reading period if that comes first (never
    before ``last``)."""
    from publisher.insights.collect import reading_ends

    return max(last, min(last + config.insights.every, reading_ends(config)))


def _go_on(db: Database, config: Config, url: str, timeline: _Timeline) -> tuple[Clock, bool]:
    """Go on with a finished rehearsal's timeline for this reading: the sandbox at ``url`` is
    told its time (the items it holds keep their births) and given the rehearsal's published
    posts it does not hold (a sandbox started afresh holds none), born where the rehearsal's
    sandbox had them. The reading is the timeline's next one: one ``[insights] every`` after
    where it stopped, never past the reading period (``reading_ends``), whatever real time has
    passed, so the figures go on growing as the platforms' would and the same database read again
    gives the same answer on any machine. While the rehearsal runs, its own clock, which its
    sandbox follows already. False with it: the sandbox may not hold the posts."""
    from publisher.app import sandbox_holdings
    from publisher.sandbox.client import restore_sandbox, tell_virtual_clock

    clock: Clock
    if timeline.running is not None:
        clock, told = timeline.running, True
    else:
        at = next_reading(timeline.start, config)
        # Real time during the reading itself (seconds): nothing moves at campaign speed.
        told = tell_virtual_clock(url, at, 1.0)
        clock = RehearsalClock(datetime.now(UTC), at, 1.0)
    held = sandbox_holdings(db, config)
    holds = told and (not held or restore_sandbox(url, held) is not None)
    if not holds:
        say(
            _(
                "warning: the sandbox at {url} did not take the rehearsal's clock or posts: "
                "the figures of the posts it does not hold cannot be read"
            ).format(url=url),
            err=True,
        )
    return clock, holds


def _check_target(
    db: Database, timeline: _Timeline | None, sandbox: bool, sandbox_url: str | None
) -> None:
    """Refuse to store a sandbox's figures in the real queue, or to ask the real platforms for
    a rehearsal's posts (which live on a sandbox)."""
    if (sandbox or sandbox_url) and timeline is None:
        raise InputError(
            "--sandbox" if sandbox else "--sandbox-url",
            _(
                "{db} is not a rehearsal's database: the sandbox's figures would be stored as "
                "the real posts'"
            ).format(db=db.url_safe),
            _(
                "set PUBLISHER_DATABASE_URL to the rehearsal's database (its summary names it), "
                "or leave out --sandbox to read the real platforms"
            ),
        )
    if timeline is not None and not (sandbox or sandbox_url):
        raise InputError(
            "--sandbox",
            _("{db} is a rehearsal's database: its posts are on a sandbox").format(db=db.url_safe),
            _("add --sandbox (or --sandbox-url URL)"),
        )


def _say_round(config: Config, report: Round) -> None:
    """A line per post read (or not), then the counts."""
    from publisher.insights.collect import Status

    for result in report.results:
        say(_result_line(config, result))
    if not report.results:
        say(_("No post is due a reading (use --since DATE to read posts again)."))
        return
    say(
        _(
            "Figures: {read} post(s) read, {none} without figures, {failed} failed, "
            "{skipped} left for later."
        ).format(
            read=report.count(Status.READ),
            none=report.count(Status.NO_FIGURES),
            failed=report.count(Status.FAILED),
            skipped=report.count(Status.SKIPPED) + report.count(Status.TAKEN),
        )
    )


def _result_line(config: Config, r: Result) -> str:
    from publisher.insights.collect import Status
    from publisher.store.metrics import Snapshot
    from publisher.store.reach import no_figures_label, note_text, summary

    head = _("post {id} ({channel})").format(id=r.target.post_id, channel=r.target.channel)
    if r.status == Status.READ and r.reading is not None:
        snap = Snapshot(r.target.post_id, r.taken_at or now(), r.reading, None)
        return f"{head}: {summary(snap, config.tz)}"
    if r.status == Status.NO_FIGURES:
        return f"{head}: {no_figures_label()} ({note_text(r.detail)})"
    if r.status == Status.FAILED:
        return _("{head}: not read: {reason} (tried again later)").format(
            head=head, reason=r.detail
        )
    if r.status == Status.TAKEN:
        return _("{head}: read meanwhile by another process").format(head=head)
    return _("{head}: left for later: {reason}").format(head=head, reason=r.detail)
