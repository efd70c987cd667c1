"""The daemon's commands: ``publisher run`` (and rehearsals), ``status``, ``channels check``
and ``sandbox``; registered on the main group like the board's commands.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.cli.common import (
    cli,
    config_option,
    now,
    open_queue,
    platforms,
    read_config,
    read_queue,
    sandbox_options,
    say,
    state_label,
)
from publisher.errors import InputError
from publisher.i18n import _

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from publisher.alerts.watch import Round
    from publisher.channels.base import Adapter, CheckResult
    from publisher.clock import Clock
    from publisher.config import Config
    from publisher.config.env import Secrets
    from publisher.dispatch.dispatcher import Dispatcher
    from publisher.dispatch.outcomes import PassReport
    from publisher.dispatch.rehearsal import Rehearsal
    from publisher.store.db import Database


@cli.group()
def channels() -> None:
    """Check the channels' credentials and reachability."""


@channels.command("check")
@config_option
@sandbox_options
def channels_check(config_path: Path, sandbox: bool, sandbox_url: str | None) -> None:
    """Check every enabled channel's credentials and reachability, and the mail server's
    login ([mail] or PUBLISHER_SMTP_URL); say what to fix."""
    from rich.console import Console
    from rich.table import Table

    from publisher.app import build_adapter, cover_check
    from publisher.channels import endpoint
    from publisher.channels.base import ChannelError, CheckResult
    from publisher.config.graph_versions import version_note
    from publisher.errors import ConfigError

    config = read_config(config_path)
    today = now().astimezone(config.tz).date()
    db = open_queue(config)
    failed = 0
    table = Table(title=_("Channels"), title_justify="left")
    for column in (_("channel"), _("adapter"), _("endpoint"), _("result")):
        table.add_column(column)
    with platforms(config, sandbox, sandbox_url) as (cfg, secrets, _url):
        for cid, ch in cfg.channels.items():
            if not ch.enabled:
                table.add_row(cid, ch.adapter, endpoint(ch), _("disabled"))
                continue
            problems = secrets.problems.get(cid)
            if problems:
                result = CheckResult(False, "; ".join(problems))
            else:
                try:
                    adapter = build_adapter(cfg, ch, secrets.for_channel(cid), db, secrets)
                    result = adapter.check()
                except ChannelError as exc:
                    result = CheckResult(False, exc.reason)
                except ConfigError as exc:  # an email channel's mail: a password not there
                    result = CheckResult(False, exc.line())
            if ch.adapter == "zalo" and result.ok:  # Zalo fetches its covers by address
                cover = cover_check(cfg, ch, secrets)
                if cover is not None:
                    result = CheckResult(cover.ok, f"{result.detail}; {cover.detail}")
            if ch.adapter == "facebook":  # a Graph API version that ends soon, or has ended
                version = str(ch.setting("api_version", ""))
                note = version_note(version, today, config.campaign.end)
                if note is not None:
                    warn = "" if note.dead else _("warning: ")
                    detail = f"{result.detail}; {warn}{note.text}"
                    result = CheckResult(result.ok and not note.dead, detail)
            failed += not result.ok
            table.add_row(cid, ch.adapter, endpoint(ch), _mark(result))
        failed += _mail_row(table, cfg)
        failed += _imap_row(table, cfg)
        _alerts_warning(cfg)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
    if failed:
        say(_("{n} channel(s) failed the check.").format(n=failed), err=True)
        sys.exit(1)


def _mark(result: CheckResult) -> str:
    """A check's result cell: ok or FAILED (in colour), then the detail."""
    mark = "[green]" + _("ok") + "[/green]" if result.ok else "[red]" + _("FAILED") + "[/red]"
    return f"{mark}: {result.detail}"


def _mail_row(table: Any, config: Config) -> int:
    """The ``mail`` row (when mail is configured): the SMTP login check; 1 if it failed."""
    from publisher.cli.mail import mail_check

    found = mail_check(config)
    if found is None:
        return 0
    where, result = found
    table.add_row("mail", "smtp", where, _mark(result))
    return int(not result.ok)


def _imap_row(table: Any, config: Config) -> int:
    """The ``imap`` row (when IMAP is configured): the login and the mailbox; 1 if it failed."""
    from publisher.app import build_imap_reader
    from publisher.channels.base import CheckResult
    from publisher.config import IMAP_URL_ENV
    from publisher.errors import ConfigError

    try:
        reader = build_imap_reader(config)
    except ConfigError as exc:  # a bad PUBLISHER_IMAP_URL, a password not there
        where = config.imap.endpoint if config.imap else IMAP_URL_ENV
        table.add_row("imap", "imap", where, _mark(CheckResult(False, exc.line())))
        return 1
    if reader is None:
        return 0
    result = reader.check()
    table.add_row("imap", "imap", reader.endpoint, _mark(result))
    return int(not result.ok)


def _alerts_warning(config: Config) -> None:
    """One warning line when ``[alerts]`` is on but no mail is configured to send them (the
    mail row says what is wrong with a mail server that is configured)."""
    from publisher.app import build_mailer
    from publisher.errors import ConfigError

    if not config.alerts.enabled:
        return
    try:
        if build_mailer(config) is not None:
            return
    except ConfigError:
        return
    said = _(
        "alerts are on ([alerts]) but no mail server is configured, so none is sent: add "
        "a [mail] table or set PUBLISHER_SMTP_URL"
    )
    say(_("alerts: {said}").format(said=said))  # a note: stderr is for what failed


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--smtp-port",
    type=click.IntRange(0, 65535),
    default=8025,
    show_default=True,
    help="The port of the sandbox's SMTP server (0: any free one).",
)
@click.option(
    "--imap-port",
    type=click.IntRange(0, 65535),
    default=8143,
    show_default=True,
    help="The port of the sandbox's IMAP server, where its desk's replies wait (0: any free one).",
)
@click.option(
    "--desk-delay",
    metavar="DURATION",
    default="30m",
    show_default=True,
    help="How long (campaign time) the sandbox's desk takes to publish and answer an article "
    "mailed to it; 0 at once.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every accepted item to FILE (JSON lines).",
)
@click.option(
    "--faults",
    metavar="SPEC",
    help="Inject faults, e.g. 'facebook:create-then-fail=0.1,*:slow=0.05:2'.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault injection.")
def sandbox(
    port: int,
    smtp_port: int,
    imap_port: int,
    desk_delay: str,
    record: Path | None,
    faults: str | None,
    seed: int,
) -> None:
    """Serve local imitations of Facebook, Zalo OA, WordPress, the webhook, a mail server (SMTP
    and IMAP) and a portal's editorial desk on 127.0.0.1."""
    from publisher.config import parse_duration
    from publisher.sandbox.server import main_serve

    delay = timedelta(0) if desk_delay.strip() in ("0", "0s") else parse_duration(desk_delay)
    if delay is None:
        raise InputError(
            "--desk-delay",
            _("{value!r} is not a duration").format(value=desk_delay),
            _("e.g. 90s, 3m, 1h"),
        )
    main_serve(port, record, faults, seed, smtp_port, imap_port, delay)


def _logging(secrets: list[str], console: Any = None, level: int = logging.INFO) -> None:
    """One place configures logging: to stderr (or the live view), secrets redacted."""
    from publisher.config.env import Redactor

    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "mail.log"):  # mail.log: aiosmtpd's
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _report_date(config: Config) -> str:
    """The rehearsed report's ``--date``: the day after the campaign, as its report would be
    dated in production (nothing while that day is still to come: the default, today, then)."""
    day = config.campaign.end + timedelta(days=1)
    if day > now().astimezone(config.tz).date():
        return ""
    return f" --date {day.day:02d}/{day.month:02d}/{day.year}"


@cli.command()
@config_option
@click.option("--once", is_flag=True, help="Publish what is due now, then exit.")
@click.option(
    "--rehearse",
    metavar="DURATION",
    help="Map the campaign window onto DURATION (e.g. 3m), starting now, on a copy of the queue.",
)
@click.option(
    "--rehearsal-db",
    metavar="PATH|URL",
    help="Keep the rehearsal's copy at PATH (or in the empty database at URL); "
    "given again, resume it.",
)
@sandbox_options
@click.option(
    "--seed", type=int, default=None, help="Seed the retry jitter (for reproducible runs)."
)
def run(
    config_path: Path,
    once: bool,
    rehearse: str | None,
    rehearsal_db: str | None,
    sandbox: bool,
    sandbox_url: str | None,
    seed: int | None,
) -> None:
    """Run the publishing daemon (until SIGTERM/SIGINT), or one pass, or a rehearsal."""
    from publisher.dispatch.daemon import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread: a month-long process stays small
    duration = _run_options(once, rehearse, rehearsal_db, sandbox, sandbox_url)
    config = read_config(config_path)
    source = open_queue(config)
    with platforms(config, sandbox, sandbox_url) as (cfg, secrets, url):
        if duration is not None:
            _rehearse(cfg, source, secrets, duration, rehearsal_db, url, seed)
            return
        _publish(cfg, source, secrets, once, seed)


def _run_options(
    once: bool,
    rehearse: str | None,
    rehearsal_db: str | None,
    sandbox: bool,
    sandbox_url: str | None,
) -> timedelta | None:
    """Refuse ``run``'s options that do not go together (one line each, in this order); return
    the rehearsal's duration, or None when it is not a rehearsal."""
    from publisher.config import parse_duration

    if (sandbox or sandbox_url) and not rehearse:
        raise InputError(
            "--sandbox" if sandbox else "--sandbox-url",
            _(
                "without --rehearse it would publish the real queue's posts to the sandbox and "
                "mark them published"
            ),
            _("add --rehearse DURATION, e.g. --rehearse 3m, which works on a copy of the queue"),
        )
    if rehearsal_db and not rehearse:
        raise InputError("--rehearsal-db", _("goes with --rehearse DURATION"))
    if once and rehearse:
        raise InputError("--once", _("give --once or --rehearse, not both"))
    if not rehearse:
        return None
    duration = parse_duration(rehearse)
    if duration is None:
        raise InputError(
            "--rehearse",
            _("{value!r} is not a duration").format(value=rehearse),
            _("e.g. 90s, 3m, 1h"),
        )
    if not (sandbox or sandbox_url):
        raise InputError(
            "--rehearse",
            _("a rehearsal publishes to the channels it is pointed at"),
            _("add --sandbox (or --sandbox-url URL) so nothing reaches the real platforms"),
        )
    return duration


def _publish(
    config: Config, source: Database, secrets: Secrets, once: bool, seed: int | None
) -> None:
    """Publish the queue on the real clock: one pass (``--once``), or the daemon until
    SIGTERM/SIGINT."""
    from publisher.app import build_adapters, make_dispatcher
    from publisher.clock import SystemClock
    from publisher.dispatch.daemon import Daemon, worker_name
    from publisher.store import audit

    _logging(secrets.all_values())
    adapters = build_adapters(config, secrets, source)
    clock: Clock = SystemClock()
    if once:  # as the daemon does at start: a missing or wrong audit key stops us before
        audit.ensure_keyed(source, clock.now())  # a post is sent that can't be recorded
    dispatcher = make_dispatcher(source, config, adapters, clock, worker=worker_name(), seed=seed)
    alerts = _alerts(config, source, clock, secrets)
    if once:
        report = dispatcher.run_once()
        dispatcher.drain(None, report)  # the calls that outlived the pass
        dispatcher.close()
        if alerts is not None:
            alerts.safe()
        say(
            _(
                "One pass: {claimed} claimed, {published} published, {retrying} retrying, "
                "{unconfirmed} unconfirmed, {failed} failed, {missed} missed, "
                "{needs_review} need review."
            ).format(
                claimed=report.claimed,
                published=report.published,
                retrying=report.retrying,
                unconfirmed=report.unconfirmed,
                failed=report.failed,
                missed=report.missed,
                needs_review=report.needs_review,
            )
        )
        return
    replies, every = _replies(config, clock, source)
    tick = config.daemon.tick.total_seconds()
    insights, insights_every = _insights(config, source, adapters, clock, dispatcher)
    Daemon(
        source,
        dispatcher,
        clock,
        tick=tick,
        replies=replies,
        replies_every=every,
        chores=alerts.safe if alerts is not None else None,
        chores_every=max(tick, ALERTS_EVERY),
        insights=insights,
        insights_every=insights_every,
    ).run()


def _insights(
    config: Config,
    db: Database,
    adapters: Mapping[str, Adapter],
    clock: Clock,
    dispatcher: Dispatcher,
) -> tuple[Callable[[], object] | None, float]:
    """The daemon's round of reading figures through the dispatcher's adapters (None when
    ``[insights] enabled = false``) and the real seconds between two rounds."""
    from publisher.app import insights_budget, insights_every, make_collector

    if not config.insights.enabled:
        return None, 0.0
    budget = insights_budget(config, clock)
    collector = make_collector(db, config, adapters, clock, dispatcher=dispatcher, budget=budget)
    return collector.safe, insights_every(config, clock)


def _replies(
    config: Config, clock: Clock, db: Database
) -> tuple[Callable[[], object] | None, float]:
    """The daemon's poll of the desks' replies (None without IMAP) and its interval in real
    seconds (``[imap] poll_every`` on ``clock``: a rehearsal polls as often in campaign time)."""
    from publisher.app import reply_handler, reply_poller
    from publisher.config.model import IMAP_POLL

    poller = reply_poller(config, reply_handler(db, config, clock))
    if poller is None:
        return None, 0.0
    every = config.imap.poll_every if config.imap is not None else IMAP_POLL
    return poller.poll, clock.real_seconds(every)


ALERTS_EVERY = 30.0  # real seconds between the daemon's rounds of alerts (a rehearsal: 1 s)


def _alerts(config: Config, db: Database, clock: Any, secrets: Secrets) -> Round | None:
    """The daemon's round of alerts, or None (said in the log) when alerts are off or have
    no mail server."""
    from publisher.app import alert_round
    from publisher.errors import ConfigError

    try:
        found = alert_round(config, db, clock, secrets)
    except ConfigError as exc:  # the mail settings: publishing goes on without alerts
        logging.getLogger("publisher.alerts").error("alerts: none is sent: %s", exc.line())
        return None
    if found is None and config.alerts.enabled:
        logging.getLogger("publisher.alerts").warning(
            "alerts are on but no mail server is configured: none is sent "
            "(add a [mail] table or set PUBLISHER_SMTP_URL)"
        )
    return found


def _rehearse(
    config: Config,
    source: Database,
    secrets: Secrets,
    duration: timedelta,
    path: str | None,
    sandbox_url: str | None,
    seed: int | None,
) -> None:
    """Rehearse the campaign on a copy of the queue at ``path`` (made, or resumed), its window
    mapped onto ``duration``, with a progress bar; then its summary, and exit 1 if it reached
    its end with posts still owed an outcome."""
    from rich.console import Console

    from publisher.app import build_adapters, make_dispatcher, tell_sandbox_speed
    from publisher.dispatch.daemon import worker_name
    from publisher.dispatch.rehearsal import prepare

    r = prepare(config, source, duration, path)
    console = Console(stderr=True)
    _logging(secrets.all_values(), console=console)  # one line per attempt, above the bar
    total = _to_publish(r.db)
    _announce(config, r, duration, sandbox_url, total)
    adapters = build_adapters(config, secrets, r.db)
    dispatcher = make_dispatcher(r.db, config, adapters, r.clock, worker=worker_name(), seed=seed)
    deadline = r.virtual_end + dispatcher.policy.max_lateness
    if sandbox_url:  # the sandbox's desk answers in campaign time, as fast as the rehearsal,
        tell_sandbox_speed(sandbox_url, r.clock.speed)  # and its figures grow with its days
        _sandbox_follows(config, r, sandbox_url)
    alerts = _alerts(config, r.db, r.clock, secrets)
    _play(config, r, dispatcher, adapters, total, deadline, console, alerts)
    _last_reading(config, r, adapters)
    if sandbox_url:  # where its posts were born, for a sandbox restored later (insights)
        from publisher.app import keep_births

        keep_births(r.db, sandbox_url)
    owed = _summary(config, r.db, r.path)
    _unconfirmed(config, r.db)
    if owed and r.clock.now() > deadline:
        say(
            _(
                "error: the rehearsal reached its end with {n} post(s) still owed an outcome "
                "(listed above); resume it to settle them: --rehearsal-db {path}"
            ).format(n=owed, path=r.path),
            err=True,
        )
        sys.exit(1)
    if owed:
        say(_("Stopped before its end with {n} post(s) to go; resume it to go on.").format(n=owed))


def _sandbox_follows(config: Config, r: Rehearsal, url: str) -> None:
    """The sandbox follows the rehearsal's clock; a resumed rehearsal's sandbox is given the
    posts it published before (a sandbox started afresh holds none: their figures go on as
    on the first, and new posts never take their ids)."""
    from publisher.app import sandbox_holdings
    from publisher.sandbox.client import restore_sandbox, tell_virtual_clock

    tell_virtual_clock(url, r.clock.now(), r.clock.speed)
    if r.resumed:
        held = sandbox_holdings(r.db, config)
        if held:
            restore_sandbox(url, held)


def _to_publish(db: Database) -> int:
    """How many posts the rehearsal is to settle: all but drafts and cancelled ones."""
    from sqlalchemy import func, select

    from publisher.states import State
    from publisher.store.models import PostRow

    with db.read() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(PostRow)
                .where(PostRow.state.not_in([State.DRAFT, State.CANCELLED]))
            )
            or 0
        )


def _pending(db: Database) -> int:
    """How many posts are still owed an outcome (in a pending state)."""
    from sqlalchemy import func, select

    from publisher.states import PENDING
    from publisher.store.models import PostRow

    with db.read() as s:
        return (
            s.scalar(
                select(func.count()).select_from(PostRow).where(PostRow.state.in_(list(PENDING)))
            )
            or 0
        )


# A rehearsal waits for a handed-off post's confirmation for its channel's confirm_within of
# campaign time, and never less than this much real time (the desk's delay is real).
HANDOFF_FLOOR = timedelta(seconds=30)


def _awaited(db: Database, config: Config, clock: Any) -> int:
    """How many handed-off posts a rehearsal still waits for: those whose desk may still
    confirm them (within confirm_within, at least HANDOFF_FLOOR of real time)."""
    from publisher.store.handoffs import handoffs

    now, floor = clock.now(), clock.virtual(HANDOFF_FLOOR)
    with db.read() as s:
        waiting = handoffs(s, config)
    return sum(now <= max(h.deadline, h.handed_off_at + floor) for h in waiting)


def _unconfirmed(config: Config, db: Database) -> None:
    """After a rehearsal: the handed-off posts its desk did not confirm (they stay handed_off,
    not published), each with its deadline."""
    from publisher.store.handoffs import handoffs

    with db.read() as s:
        waiting = handoffs(s, config)
    for h in waiting:
        say(
            _(
                "  post {id} ({channel}) handed off as {message_id}: no confirmation from the "
                "editorial desk (deadline {deadline})"
            ).format(
                id=h.post_id,
                channel=h.channel,
                message_id=h.message_id,
                deadline=f"{h.deadline.astimezone(config.tz):%d/%m %H:%M}",
            )
        )
    if waiting:
        say(
            _(
                "warning: {n} post(s) were mailed to an editorial desk and not confirmed: they "
                "stay handed_off, not published (confirm each with 'publisher queue confirm "
                "POST URL' on the rehearsal database)"
            ).format(n=len(waiting)),
            err=True,
        )


def _announce(
    config: Config, r: Rehearsal, duration: timedelta, sandbox_url: str | None, total: int
) -> None:
    """Say what is rehearsed (or resumed), where, how fast, and if there is nothing to publish."""
    said = (
        _("Resuming {campaign}: {start}–{end} in {duration} (×{speed}), on {path}")
        if r.resumed
        else _("Rehearsing {campaign}: {start}–{end} in {duration} (×{speed}), on {path}")
    )
    say(
        said.format(
            campaign=config.campaign.name,
            start=f"{config.campaign.start:%d/%m}",
            end=f"{config.campaign.end:%d/%m}",
            duration=duration,
            speed=f"{r.clock.speed:,.0f}",
            path=r.path,
        )
    )
    if sandbox_url:
        say(_("Sandbox: {url}/ (what a follower sees)").format(url=sandbox_url))
    if total == 0:
        say(
            _("No approved posts to publish: approve them first (publisher approve --all)."),
            err=True,
        )


def _last_reading(config: Config, r: Rehearsal, adapters: Mapping[str, Adapter]) -> None:
    """A rehearsal's last reading of figures, once its daemon stopped: every published post
    read once more (the ones whose platform keeps none excepted), so it ends with figures;
    none once its clock is past the reading period (``[insights] after``), as the daemon."""
    from publisher.app import make_collector
    from publisher.insights.collect import reading_ends

    # a rehearsal resumed long after its end: its clock is far past the reading period
    if not config.insights.enabled or r.clock.now() > reading_ends(config):
        return
    collector = make_collector(r.db, config, adapters, r.clock)
    try:
        collector.run_once(force=True)
    except Exception:  # the rehearsal's outcome is told whatever happened to its figures
        logging.getLogger("publisher.insights").exception("insights: the last reading failed")


def _play(
    config: Config,
    r: Rehearsal,
    dispatcher: Dispatcher,
    adapters: Mapping[str, Adapter],
    total: int,
    deadline: datetime,
    console: Any,
    alerts: Round | None = None,
) -> None:
    """Run the rehearsal's daemon until no post is pending or its clock passes ``deadline``,
    a progress bar (the campaign day, the posts settled, the outcomes so far) following it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from publisher.dispatch.daemon import Daemon
    from publisher.states import PENDING, RunMode

    db, clock = r.db, r.clock
    with Progress(
        TextColumn("[bold]{task.fields[day]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("rehearsal", total=total, day="", detail="")

        def on_pass(_report: PassReport) -> None:
            counts = _state_counts(db)
            done = total - sum(counts.get(st, 0) for st in PENDING)
            virtual = clock.now().astimezone(config.tz)
            detail = _outcomes(counts)
            progress.update(task, completed=done, day=f"{virtual:%d/%m %H:%M}", detail=detail)

        replies, every = _replies(config, clock, db)
        insights, insights_every = _insights(config, db, adapters, clock, dispatcher)
        daemon = Daemon(
            db,
            dispatcher,
            clock,
            tick=min(1.0, config.daemon.tick.total_seconds()),
            mode=RunMode.REHEARSE,
            until=_finished(config, db, clock, deadline, lambda: daemon.passes),
            on_pass=on_pass,
            replies=replies,
            replies_every=every,
            chores=alerts.safe if alerts is not None else None,
            chores_every=1.0,
            insights=insights,
            insights_every=insights_every,
        )
        daemon.run()


def _finished(
    config: Config, db: Database, clock: Clock, deadline: datetime, passes: Callable[[], int]
) -> Callable[[], bool]:
    """When a rehearsal's daemon is done: nothing is owed any more, or a whole pass began past
    ``deadline`` (``passes``: the daemon's count). A pass that began before the deadline and
    ended after it (a few real ms are hours of campaign time) may have left unsettled the posts
    whose last chance lay in between: the next pass settles them."""
    seen_past: list[int] = []  # the daemon's passes when the deadline was first seen past

    def finished() -> bool:
        if _pending(db) == 0 and not _awaited(db, config, clock):
            return True
        if not seen_past:
            if clock.now() <= deadline:
                return False
            seen_past.append(passes())
        return passes() >= seen_past[0] + 2  # the pass after the one running then has ended

    return finished


def _state_counts(db: Database) -> dict[Any, int]:
    """How many posts are in each state (the states no post is in left out)."""
    from sqlalchemy import func, select

    from publisher.store.models import PostRow

    with db.read() as s:
        return dict(s.execute(select(PostRow.state, func.count()).group_by(PostRow.state)).all())


def _outcomes(counts: dict[Any, int]) -> str:
    """The progress bar's detail: the number of posts in each outcome any post has reached."""
    from publisher.states import State

    return ", ".join(
        f"{counts[st]} {state_label(st)}"
        for st in (
            State.PUBLISHED,
            State.HANDED_OFF,
            State.RETRYING,
            State.UNCONFIRMED,
            State.FAILED,
            State.MISSED,
            State.NEEDS_REVIEW,
        )
        if counts.get(st)
    )


def _summary(config: Config, db: Database, path: str) -> int:
    """Print the rehearsal's outcome; return how many posts are still owed an outcome."""
    from rich.console import Console

    from publisher.store.status import gather

    info = gather(db, config, now(), unfinished=True)
    table = _state_table(_("Rehearsal summary"), info)
    console = Console()
    console.print(table)
    for p in [*info["problems"], *info["unfinished"]]:
        console.print(
            _("  post {id} ({channel}) {state}: {reason}").format(
                id=p["id"], channel=p["channel"], state=state_label(p["state"]), reason=p["reason"]
            ),
            markup=False,
            highlight=False,
        )
    console.print(_reach_table(config, db))
    from publisher.store.db import safe_url

    shown = safe_url(path) if "://" in path else path
    say(
        _(
            "Rehearsal database: {db}\n  resume it: --rehearsal-db {db}\n"
            "  inspect it: PUBLISHER_DATABASE_URL={url} publisher status\n"
            "  open it in the board's web app: PUBLISHER_DATABASE_URL={url} publisher web"
        ).format(db=shown, url=db.url_safe)
    )
    say(
        _(
            "  build its report: PUBLISHER_DATABASE_URL={url} publisher report --format docx{date}"
            " -o bao-cao.docx"
        ).format(url=db.url_safe, date=_report_date(config))
    )
    if db.engine.url.password or shown != path:
        say(_("  (the password is hidden as ***: put it back in to use these)"))
    return len(info["unfinished"])


@cli.command()
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON object (counts maps each state to its number).",
)
def status(config_path: Path, as_json: bool) -> None:
    """Counts per state and channel, next posts, problems with reasons, blocks, daemon heartbeat."""
    import json

    from publisher.store.status import gather

    config = read_config(config_path)
    db = read_queue(config)
    info = gather(db, config, now())
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    table = _state_table(_("Posts by state and channel"), info)
    table.add_row(_("all"), *[str(n) for n in info["counts"].values() if n], style="bold")
    console.print(table)
    if any(r["published"] for r in info["reach"].values()):
        console.print(_reach_rows(info["reach"]))
    for n in info["next"]:
        console.print(
            _("next: post {id} {channel} {state} at {at}: {title}").format(
                id=n["id"],
                channel=n["channel"],
                state=state_label(n["state"]),
                at=n["at"],
                title=n["title"],
            ),
            markup=False,
            highlight=False,
        )
    for p in info["problems"]:
        console.print(
            _("{state}: post {id} {channel} (due {due}): {reason}").format(
                state=state_label(p["state"]),
                id=p["id"],
                channel=p["channel"],
                due=p["due_at"],
                reason=p["reason"],
            ),
            markup=False,
            highlight=False,
        )
    for b in info["blocked"]:
        console.print(_blocked(b), markup=False, highlight=False)
    _say_handoffs(info["handed_off"])
    if info["rehearsal"]:
        r = info["rehearsal"]
        how = _("running") if r["running"] else _("stopped; at its last heartbeat")
        say(
            _(
                "rehearsal database: campaign time {time} ({how}); "
                "blocks are on the rehearsal's clock"
            ).format(time=r["campaign_time"], how=how)
        )
    _say_daemon(info["daemon"])


def _say_handoffs(waiting: list[dict[str, Any]]) -> None:
    """``status``'s lines on posts mailed to a portal's desk: each overdue one, and how many
    others wait for the desk's confirmation."""
    overdue = [h for h in waiting if h["overdue"]]
    for h in overdue:
        say(
            _(
                "overdue hand-off: post {id} {channel} mailed to the editorial desk at {at}, "
                "not confirmed by {deadline}: ask the desk, then "
                "'publisher queue confirm {id} URL'"
            ).format(
                id=h["id"], channel=h["channel"], at=h["handed_off_at"], deadline=h["deadline"]
            )
        )
    if len(waiting) > len(overdue):
        say(
            _("{n} post(s) handed off to an editorial desk, awaiting its confirmation.").format(
                n=len(waiting) - len(overdue)
            )
        )


def _blocked(b: dict[str, Any]) -> str:
    """``status``'s line for a channel that is paused or blocked."""
    since = b["since"] or "?"
    if b["paused"]:
        what = _("paused")
    elif b["kind"] == "outage":
        what = _("unreachable since {since} (next probe at {until})")
    elif b["kind"] == "auth":
        what = _("stopped since {since} (credentials; next check at {until})")
    else:
        what = _("blocked until {until}")
    return _("channel {channel} {what}: {reason}").format(
        channel=b["channel"], what=what.format(since=since, until=b["until"]), reason=b["reason"]
    )


def _say_daemon(d: dict[str, Any]) -> None:
    """``status``'s last line: whether a daemon is alive on the queue."""
    w = next((w for w in d["workers"] if w["alive"]), None)
    if d["alive"] and w is not None:
        say(
            _("daemon: alive ({worker}, {mode}, last beat {beat})").format(
                worker=w["worker"], mode=w["mode"], beat=w["last_beat"]
            )
        )
    elif d["workers"]:
        w = d["workers"][0]
        say(
            _("daemon: NOT RUNNING (last seen {beat}, {worker})").format(
                beat=w["last_beat"], worker=w["worker"]
            )
        )
    else:
        say(_("daemon: NOT RUNNING (never started on this database)"))


def _state_table(title: str, info: dict[str, Any]) -> Any:
    """A table of ``store.status.gather``'s counts: a row per channel, a column per state any post
    is in (in the order of the states)."""
    from rich.table import Table

    states = [st for st, n in info["counts"].items() if n]

    table = Table(title=title, title_justify="left")
    table.add_column(_("channel"))
    for st in states:
        table.add_column(state_label(st), justify="right")
    for cid, counts in info["channels"].items():
        table.add_row(cid, *[str(counts.get(st, 0)) for st in states])
    return table


def _reach_table(config: Config, db: Database) -> Any:
    """A table of each channel's reach (the rehearsal's summary)."""
    from publisher.store.reach import reach_as_dict, totals

    with db.read() as s:
        reach = totals(s, channels=config.channels)
    reach_info = {cid: reach_as_dict(r, config.tz) for cid, r in reach.items()}
    return _reach_rows(reach_info, figures=("views",), when=False)


def _reach_rows(
    reach: dict[str, dict[str, Any]],
    figures: tuple[str, ...] = ("views", "reactions", "shares"),
    *,
    when: bool = True,
) -> Any:
    """A table of each channel's reach (``status --json``'s "reach"): its published posts, how
    many have figures, the ``figures`` read ("không có số liệu" where no post of it has any),
    and when they were last read (``when``)."""
    from rich.table import Table

    from publisher.store.reach import figure_names, number

    names = figure_names()
    table = Table(title=_("Reach (latest figures)"), title_justify="left")
    table.add_column(_("channel"))
    table.add_column(_("published"), justify="right")
    table.add_column(_("with figures"), justify="right")
    for name in figures:
        table.add_column(names[name], justify="right")
    if when:
        table.add_column(_("last read"))
    for cid, r in reach.items():
        cells = [cid, str(r["published"]), str(r["read"]), *[number(r[f]) for f in figures]]
        if when:
            cells.append(r["taken_at"][:16].replace("T", " ") if r["taken_at"] else "-")
        table.add_row(*cells)
    return table
