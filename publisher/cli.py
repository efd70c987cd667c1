"""The ``publisher`` command line: a thin shell over the library.

Only this module (and later the daemon) reads the clock or prints. Heavy modules are imported
inside commands so ``publisher --help`` starts fast. User mistakes print one line, exit 1.
"""

from __future__ import annotations

import getpass
import io
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from publisher import __version__
from publisher.errors import InputError, PublisherError

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.db import Database
    from publisher.secrets import Secrets

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """Turns every PublisherError (and database failure) into one line on stderr, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            click.echo(f"error: {exc.line()}", err=True)
            sys.exit(1)
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                click.echo(f"error: database: {first}", err=True)
                sys.exit(1)
            raise


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        default="config.toml",
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The campaign's config file.",
    )(func)


def actor_option(func: F) -> F:
    return click.option(
        "--as",
        "actor",
        default=None,
        metavar="NAME",
        help="Who does this (a board member; recorded in the history and audit trail); "
        "default: $PUBLISHER_AS, else the OS user.",
    )(func)


def _actor(name: str | None) -> str:
    """--as NAME, else $PUBLISHER_AS, else the OS user."""
    name = name or os.environ.get("PUBLISHER_AS")
    if name:
        return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _authorize(config: Config, actor: str | None, action: str) -> str:
    """The acting member's name, or a one-line refusal saying who may."""
    from publisher.board import authorize

    return authorize(config, _actor(actor), action)


def _config(path: Path) -> Config:
    from publisher.config import load_config

    return load_config(path)


def _database(config: Config) -> Database:
    from publisher.db import open_database

    return open_database(config.database_url)


def _existing_database(config: Config) -> Database | None:
    """The queue if there is one (a missing SQLite file is not created), else None."""
    from publisher.db import Database

    url = config.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    db = Database(url)
    try:
        version = db.schema_version()
    except PublisherError:
        return None
    return db if version else None


def _now() -> datetime:
    return datetime.now(UTC)


def _date_arg(option: str) -> Callable[[click.Context, click.Parameter, str | None], date | None]:
    def parse(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
        if value is None:
            return None
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value.strip())
        try:
            if m:
                return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
        raise click.BadParameter(f"{value!r} is not a date (use 2024-06-12 or 12/6/2024)")

    return parse


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="publisher")
def cli() -> None:
    """Scheduled publishing of a campaign to portals, a Facebook Page and a Zalo OA."""


def _print(*lines: str, err: bool = False) -> None:
    for line in lines:
        click.echo(line, err=err)


@cli.command()
@config_option
@actor_option
@click.option(
    "--convert-legacy",
    is_flag=True,
    help="Convert files typed in TCVN3/VNI (old fonts) to Unicode, rewriting them.",
)
def load(config_path: Path, actor: str | None, convert_legacy: bool) -> None:
    """Read messages/ into the queue and plan the calendar (one transaction).

    Running it twice changes nothing. An edited file updates its unpublished posts (an
    approved post whose text changed goes back to draft); a removed file cancels them.
    """
    from publisher.outbox import load as do_load

    config = _config(config_path)
    who = _authorize(config, actor, "load")
    db = _database(config)
    report = do_load(db, config, _now(), who, convert_legacy=convert_legacy)
    for path in report.converted:
        _print(f"Converted {path} from a legacy Vietnamese encoding to Unicode.")
    files = len(report.added) + len(report.updated) + report.unchanged
    _print(
        f"Loaded {files} content files from {config.messages_dir.name}/: "
        f"{len(report.added)} new, {len(report.updated)} changed, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged."
    )
    if not report.changed:
        _print("Nothing changed in the queue.")
    else:
        _print(
            f"Posts: {report.created} created, {report.rerendered} re-rendered, "
            f"{report.moved} (re)planned, {report.revived} restored, "
            f"{len(report.cancelled)} cancelled."
        )
    for pid, cause in report.cancelled:
        _print(f"  cancelled post {pid}: {cause.removeprefix('load: ')}")
    if report.revoked:
        ids = ", ".join(map(str, report.revoked))
        _print(
            f"Approval revoked, the text changed: posts {ids} are drafts again; approve them anew."
        )
    for pid, reason in report.unplaced:
        _print(f"warning: post {pid} did not fit the calendar: {reason}", err=True)


@cli.command()
@config_option
def check(config_path: Path) -> None:
    """Validate config, content and templates; render and plan every post; list all problems."""
    from publisher.check import run_check

    config = _config(config_path)
    result = run_check(config, _existing_database(config))
    for problem in result.problems:
        _print(f"error: {problem}", err=True)
    for line in result.revoked:
        _print(f"warning: {line}", err=True)
    for line in result.summary:
        _print(line)
    if result.problems:
        _print(f"{len(result.problems)} problem(s) found.", err=True)
        sys.exit(1)
    _print("OK: no problems found.")


@cli.command()
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "html", "ics"]),
    default="table",
    show_default=True,
    help="A table grouped by day; a JSON array (one object per post); a standalone HTML "
    "month calendar; an iCalendar (RFC 5545) file.",
)
@click.option("--channel", metavar="ID", help="Only this channel.")
@click.option(
    "--from", "start", callback=_date_arg("--from"), metavar="DATE", help="From this local date."
)
@click.option(
    "--to", "end", callback=_date_arg("--to"), metavar="DATE", help="Up to this local date."
)
@click.option("--include-cancelled", is_flag=True, help="Also list cancelled posts.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
def preview(
    config_path: Path,
    fmt: str,
    channel: str | None,
    start: date | None,
    end: date | None,
    include_cancelled: bool,
    output: Path | None,
) -> None:
    """Show the posting calendar from the queue, rendered per channel. No network is used."""
    from publisher import preview as pv

    config = _config(config_path)
    if channel and channel not in config.channels:
        raise InputError(
            "--channel", f"{channel!r} is not a channel", "one of: " + ", ".join(config.channels)
        )
    if start and end and end < start:
        raise InputError("--to", f"{end} is before --from {start}")
    filters: dict[str, Any] = {
        "channel": channel,
        "start": start,
        "end": end,
        "include_cancelled": include_cancelled,
    }
    # The table and JSON read an SQLite queue without SQLAlchemy, whose import alone would
    # take longer than the whole command should; html and ics also read the posts' history.
    entries = pv.items_sqlite(config, **filters) if fmt in ("table", "json") else None
    db = None
    if entries is None:
        db = _database(config)
        entries = pv.items(db, config, **filters)
    if fmt == "json":
        text = pv.to_json(entries, config)
        if output:
            _write(output, text)
        else:
            click.echo(text, nl=False)
        return
    if fmt in ("html", "ics"):
        from publisher import calendar_ics, calendar_page

        if db is None:
            db = _database(config)
        extra = calendar_page.load_extra(db, [e.id for e in entries])
        generated = _now()
        if fmt == "html":
            page = calendar_page.render_calendar(
                entries, config, generated_at=generated, extra=extra
            )
            data = page.encode("utf-8")
        else:
            data = calendar_ics.render_ics(entries, config, generated_at=generated, extra=extra)
        if output:
            _write(output, data)
            _print(f"Wrote {output} ({len(entries)} posts).")
        else:
            sys.stdout.buffer.write(data)
        return
    from rich.console import Console

    if not entries and not (channel or start or end):
        _print("The queue is empty: run 'publisher load' first.", err=True)
    if output:
        buffer = io.StringIO()
        pv.render_table(entries, config, Console(file=buffer, width=160, color_system=None))
        _write(output, buffer.getvalue())
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
        pv.render_table(entries, config, console)


def _write(path: Path, data: str | bytes) -> None:
    """Write an -o FILE, or say in one line why it cannot be written."""
    try:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise InputError(str(path), f"cannot be written: {exc.strerror}") from exc


@cli.command()
@config_option
@actor_option
@click.argument("post_ids", nargs=-1, type=int, metavar="POST_ID...")
@click.option("--all", "everything", is_flag=True, help="Approve every draft that has a time.")
def approve(
    config_path: Path, actor: str | None, post_ids: tuple[int, ...], everything: bool
) -> None:
    """Approve posts for publishing, recording who approved which exact text and when."""
    from publisher.outbox import approve as do_approve

    if bool(post_ids) == everything:
        raise InputError(
            "approve", "give POST_ID... or --all (not both)", "e.g. publisher approve 3 4"
        )
    config = _config(config_path)
    who = _authorize(config, actor, "approve")
    db = _database(config)
    report = do_approve(db, post_ids, everything=everything, actor=who, now=_now())
    _print(f"Approved {len(report.approved)} post(s) as {who}.")
    for pid, why in report.refused:
        _print(f"post {pid} not approved: {why}", err=True)
    if report.refused and not everything:
        sys.exit(1)


def sandbox_options(func: F) -> F:
    func = click.option(
        "--sandbox-url",
        metavar="URL",
        help="Use the sandbox already running at URL (see 'publisher sandbox').",
    )(func)
    return click.option(
        "--sandbox",
        "sandbox",
        is_flag=True,
        help="Start a local sandbox of every platform and point every enabled channel at it.",
    )(func)


@contextmanager
def _platforms(
    config: Config, sandbox: bool, sandbox_url: str | None
) -> Iterator[tuple[Config, Secrets, str | None]]:
    """The config and secrets to talk to: the real platforms, or a sandbox (started if asked)."""
    from publisher.channels import use_sandbox
    from publisher.secrets import resolve

    if sandbox and sandbox_url:
        raise InputError("--sandbox", "give --sandbox or --sandbox-url, not both")
    if sandbox_url:
        if not sandbox_url.startswith(("http://", "https://")):
            raise InputError("--sandbox-url", f"{sandbox_url!r} is not an http(s) URL")
        yield (*use_sandbox(config, sandbox_url), sandbox_url)
    elif sandbox:
        from publisher.sandbox.server import Sandbox

        with Sandbox() as box:
            yield (*use_sandbox(config, box.url), box.url)
    else:
        yield config, resolve(config), None


@cli.group()
def channels() -> None:
    """Check the channels' credentials and reachability."""


@channels.command("check")
@config_option
@sandbox_options
def channels_check(config_path: Path, sandbox: bool, sandbox_url: str | None) -> None:
    """Check every enabled channel's credentials and reachability; say what to fix."""
    from rich.console import Console
    from rich.table import Table

    from publisher.channels import build, endpoint
    from publisher.channels.base import ChannelError, CheckResult
    from publisher.tokens import DatabaseTokenStore

    config = _config(config_path)
    db = _database(config)
    failed = 0
    table = Table(title="Channels", title_justify="left")
    for column in ("channel", "adapter", "endpoint", "result"):
        table.add_column(column)
    with _platforms(config, sandbox, sandbox_url) as (cfg, secrets, _url):
        for cid, ch in cfg.channels.items():
            if not ch.enabled:
                table.add_row(cid, ch.adapter, endpoint(ch), "disabled")
                continue
            problems = secrets.problems.get(cid)
            if problems:
                result = CheckResult(False, "; ".join(problems))
            else:
                values = secrets.for_channel(cid)
                tokens = None
                if ch.adapter == "zalo":
                    tokens = DatabaseTokenStore(db, key_material=values["app_secret"])
                try:
                    result = build(ch, values, tokens=tokens).check()
                except ChannelError as exc:
                    result = CheckResult(False, exc.reason)
            failed += not result.ok
            mark = "[green]ok[/green]" if result.ok else "[red]FAILED[/red]"
            table.add_row(cid, ch.adapter, endpoint(ch), f"{mark}: {result.detail}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
    if failed:
        _print(f"{failed} channel(s) failed the check.", err=True)
        sys.exit(1)


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
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
def sandbox(port: int, record: Path | None, faults: str | None, seed: int) -> None:
    """Serve local imitations of Facebook, Zalo OA, WordPress and the webhook on 127.0.0.1."""
    from publisher.sandbox.server import main_serve

    main_serve(port, record, faults, seed)


def _logging(secrets: list[str], console: Any = None, level: int = logging.INFO) -> None:
    """One place configures logging: to stderr (or the live view), secrets redacted."""
    from publisher.secrets import Redactor

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
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _adapters(config: Config, secrets: Secrets, db: Database) -> dict[str, Any]:
    from publisher.channels import build
    from publisher.tokens import DatabaseTokenStore

    missing = [f"{cid}: {p}" for cid, ps in secrets.problems.items() for p in ps]
    if missing:
        raise InputError(
            "secrets", missing[0], f"{len(missing)} missing; see 'publisher channels check'"
        )
    adapters = {}
    for cid, ch in config.channels.items():
        if not ch.enabled:
            continue
        values = secrets.for_channel(cid)
        tokens = (
            DatabaseTokenStore(db, key_material=values["app_secret"])
            if ch.adapter == "zalo"
            else None
        )
        adapters[cid] = build(ch, values, tokens=tokens)
    return adapters


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
    from publisher.clock import Clock, SystemClock
    from publisher.config import parse_duration
    from publisher.daemon import Daemon, make_dispatcher, worker_name

    if rehearsal_db and not rehearse:
        raise InputError("--rehearsal-db", "goes with --rehearse DURATION")
    if once and rehearse:
        raise InputError("--once", "give --once or --rehearse, not both")
    duration = None
    if rehearse:
        duration = parse_duration(rehearse)
        if duration is None:
            raise InputError("--rehearse", f"{rehearse!r} is not a duration", "e.g. 90s, 3m, 1h")
        if not (sandbox or sandbox_url):
            raise InputError(
                "--rehearse",
                "a rehearsal publishes to the channels it is pointed at",
                "add --sandbox (or --sandbox-url URL) so nothing reaches the real platforms",
            )
    config = _config(config_path)
    source = _database(config)
    with _platforms(config, sandbox, sandbox_url) as (cfg, secrets, url):
        if duration is not None:
            _rehearse(cfg, source, secrets, duration, rehearsal_db, url, seed)
            return
        _logging(secrets.all_values())
        adapters = _adapters(cfg, secrets, source)
        clock: Clock = SystemClock()
        dispatcher = make_dispatcher(source, cfg, adapters, clock, worker=worker_name(), seed=seed)
        if once:
            report = dispatcher.run_once()
            dispatcher.close()
            _print(
                f"One pass: {report.claimed} claimed, {report.published} published, "
                f"{report.retrying} retrying, {report.unconfirmed} unconfirmed, "
                f"{report.failed} failed, {report.missed} missed, "
                f"{report.needs_review} need review."
            )
            return
        Daemon(source, dispatcher, clock, tick=cfg.daemon.tick.total_seconds()).run()


def _rehearse(
    config: Config,
    source: Database,
    secrets: Secrets,
    duration: timedelta,
    path: str | None,
    sandbox_url: str | None,
    seed: int | None,
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import func, select

    from publisher.daemon import Daemon, make_dispatcher, worker_name
    from publisher.dispatch import PassReport
    from publisher.models import PostRow
    from publisher.rehearsal import prepare
    from publisher.states import PENDING, State

    r = prepare(config, source, duration, path)
    db, clock = r.db, r.clock
    console = Console(stderr=True)
    _logging(secrets.all_values(), console=console, level=logging.WARNING)
    with db.read() as s:
        total = (
            s.scalar(
                select(func.count())
                .select_from(PostRow)
                .where(PostRow.state.not_in([State.DRAFT, State.CANCELLED]))
            )
            or 0
        )
    verb = "Resuming" if r.resumed else "Rehearsing"
    _print(
        f"{verb} {config.campaign.name}: {config.campaign.start:%d/%m}–"
        f"{config.campaign.end:%d/%m} in {duration} (×{clock.speed:,.0f}), on {r.path}"
    )
    if sandbox_url:
        _print(f"Sandbox: {sandbox_url}/ (what a follower sees)")
    if total == 0:
        _print(
            "No approved posts to publish: approve them first (publisher approve --all).", err=True
        )
    adapters = _adapters(config, secrets, db)
    dispatcher = make_dispatcher(db, config, adapters, clock, worker=worker_name(), seed=seed)
    deadline = r.virtual_end + dispatcher.policy.max_lateness

    def pending() -> int:
        with db.read() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(PostRow)
                    .where(PostRow.state.in_(list(PENDING)))
                )
                or 0
            )

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
            with db.read() as s:
                counts = dict(
                    s.execute(select(PostRow.state, func.count()).group_by(PostRow.state)).all()
                )
            done = total - sum(counts.get(st, 0) for st in PENDING)
            virtual = clock.now().astimezone(config.tz)
            detail = ", ".join(
                f"{counts[st]} {st}"
                for st in (
                    State.PUBLISHED,
                    State.RETRYING,
                    State.UNCONFIRMED,
                    State.FAILED,
                    State.MISSED,
                    State.NEEDS_REVIEW,
                )
                if counts.get(st)
            )
            progress.update(task, completed=done, day=f"{virtual:%d/%m %H:%M}", detail=detail)

        daemon = Daemon(
            db,
            dispatcher,
            clock,
            tick=min(1.0, config.daemon.tick.total_seconds()),
            mode="rehearse",
            until=lambda: pending() == 0 or clock.now() > deadline,
            on_pass=on_pass,
        )
        daemon.run()
    _summary(config, db, r.path)


def _summary(config: Config, db: Database, path: str) -> None:
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    from publisher.states import State
    from publisher.status import gather

    info = gather(db, config, datetime.now(UTC))
    table = Table(title="Rehearsal summary", title_justify="left")
    table.add_column("channel")
    states = [s for s in State if any(info["channels"].get(c, {}).get(s) for c in info["channels"])]
    for st in states:
        table.add_column(st, justify="right")
    for cid, counts in info["channels"].items():
        table.add_row(cid, *[str(counts.get(st, 0)) for st in states])
    console = Console()
    console.print(table)
    for p in info["problems"]:
        console.print(
            f"  post {p['id']} ({p['channel']}) {p['state']}: {p['reason']}",
            markup=False,
            highlight=False,
        )
    _print(
        f"Rehearsal database: {path}\n  resume it: --rehearsal-db {path}\n"
        f"  inspect it: PUBLISHER_DATABASE_URL={db.url} publisher status"
    )


@cli.command()
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["docx", "html", "md", "json"]),
    default="docx",
    show_default=True,
    help="Word (administrative layout), standalone HTML, Markdown or JSON.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
def report(config_path: Path, fmt: str, output: Path | None) -> None:
    """The results report for Sở LĐ-TB&XH, from the delivery records (a progress report
    before the campaign window ends)."""
    from rich.console import Console
    from rich.progress import Progress

    from publisher.report import build_report, render

    config = _config(config_path)
    if fmt == "docx" and output is None:
        raise InputError("--format docx", "needs -o FILE", "e.g. -o bao-cao.docx")
    db = _database(config)
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("Báo cáo", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        data = render(build_report(db, config, _now(), progress=step), fmt, progress=step)
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    _write(output, data)
    _print(f"Wrote {output}.")


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
    from datetime import UTC, datetime

    from publisher.status import gather

    config = _config(config_path)
    db = _database(config)
    info = gather(db, config, datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    states = [st for st, n in info["counts"].items() if n]
    table = Table(title="Posts by state and channel", title_justify="left")
    table.add_column("channel")
    for st in states:
        table.add_column(st, justify="right")
    for cid, counts in info["channels"].items():
        table.add_row(cid, *[str(counts.get(st, 0)) for st in states])
    table.add_row("all", *[str(info["counts"][st]) for st in states], style="bold")
    console.print(table)
    for n in info["next"]:
        console.print(
            f"next: post {n['id']} {n['channel']} {n['state']} at {n['at']}: {n['title']}",
            markup=False,
            highlight=False,
        )
    for p in info["problems"]:
        console.print(
            f"{p['state']}: post {p['id']} {p['channel']} (due {p['due_at']}): {p['reason']}",
            markup=False,
            highlight=False,
        )
    for b in info["blocked"]:
        what = "paused" if b["paused"] else f"blocked until {b['until']}"
        console.print(
            f"channel {b['channel']} {what}: {b['reason']}", markup=False, highlight=False
        )
    d = info["daemon"]
    if d["alive"]:
        w = next(w for w in d["workers"] if w["alive"])
        _print(f"daemon: alive ({w['worker']}, {w['mode']}, last beat {w['last_beat']})")
    elif d["workers"]:
        w = d["workers"][0]
        _print(f"daemon: NOT RUNNING (last seen {w['last_beat']}, {w['worker']})")
    else:
        _print("daemon: NOT RUNNING (never started on this database)")


def main() -> None:
    cli(prog_name="publisher")


from publisher import cli_queue  # noqa: E402, F401 - registers the board's commands on ``cli``
