"""The pipeline's own commands: ``load``, ``check``, ``preview``, ``approve`` and ``report``.

Only the command line (and the daemon) reads the clock or prints. User mistakes print one line,
exit 1 (see ``common``).
"""

from __future__ import annotations

import io
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.cli.common import (
    actor_option,
    authorize,
    cli,
    config_option,
    date_arg,
    existing_queue,
    now,
    open_queue,
    read_config,
    read_queue,
    say,
    warn_exposure,
    write_file,
)
from publisher.errors import InputError
from publisher.i18n import _

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.documents.preview import Item


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
    from publisher.editorial.load import load as do_load

    config = read_config(config_path)
    who = authorize(config, actor, "load")
    db = open_queue(config)
    report = do_load(db, config, now(), who, convert_legacy=convert_legacy)
    for path in report.converted:
        say(_("Converted {path} from a legacy Vietnamese encoding to Unicode.").format(path=path))
    files = len(report.added) + len(report.updated) + report.unchanged
    say(
        _(
            "Loaded {files} content files from {folder}/: {new} new, {changed} changed, "
            "{removed} removed, {unchanged} unchanged."
        ).format(
            files=files,
            folder=config.messages_dir.name,
            new=len(report.added),
            changed=len(report.updated),
            removed=len(report.removed),
            unchanged=report.unchanged,
        )
    )
    _say_entries(report.entries, config)
    if not report.changed:
        say(_("Nothing changed in the queue."))
    else:
        say(
            _(
                "Posts: {created} created, {rerendered} re-rendered, {moved} (re)planned, "
                "{revived} restored, {cancelled} cancelled."
            ).format(
                created=report.created,
                rerendered=report.rerendered,
                moved=report.moved,
                revived=report.revived,
                cancelled=len(report.cancelled),
            )
        )
    for pid, cause in report.cancelled:
        say(_("  cancelled post {id}: {cause}").format(id=pid, cause=cause.removeprefix("load: ")))
    if report.revoked:
        ids = ", ".join(map(str, report.revoked))
        say(
            _(
                "Approval revoked, the text changed: posts {ids} are drafts again; "
                "approve them anew."
            ).format(ids=ids)
        )
    _say_unplaced(report.unplaced)


def _say_unplaced(unplaced: list[tuple[int, str]]) -> None:
    for pid, reason in unplaced:
        say(
            _("warning: post {id} did not fit the calendar: {reason}").format(
                id=pid, reason=reason
            ),
            err=True,
        )


def _say_entries(n: int, config: Config) -> None:
    if n:
        say(
            _("Report entries: {n} set or cleared from {folder}/report.toml.").format(
                n=n, folder=config.messages_dir.name
            )
        )


@cli.command()
@config_option
def check(config_path: Path) -> None:
    """Validate config, content and templates; render and plan every post; list all problems."""
    from publisher.editorial.check import alert_warnings, run_check

    config = read_config(config_path)
    today = now().astimezone(config.tz).date()
    result = run_check(config, existing_queue(config), today=today)
    result.warnings += alert_warnings(config)  # it reads the environment: not run_check's
    for problem in result.problems:
        say(_("error: {problem}").format(problem=problem), err=True)
    for line in [*result.revoked, *result.warnings]:
        say(_("warning: {problem}").format(problem=line), err=True)
    for line in result.summary:
        say(line)
    if result.problems:
        say(_("{n} problem(s) found.").format(n=len(result.problems)), err=True)
        sys.exit(1)
    say(_("OK: no problems found."))


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
    "--from", "start", callback=date_arg("--from"), metavar="DATE", help="From this local date."
)
@click.option(
    "--to", "end", callback=date_arg("--to"), metavar="DATE", help="Up to this local date."
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
    from publisher.documents import preview as pv

    config = read_config(config_path)
    if channel and channel not in config.channels:
        raise InputError(
            "--channel",
            _("{channel!r} is not a channel").format(channel=channel),
            _("one of: {channels}").format(channels=", ".join(config.channels)),
        )
    if start and end and end < start:
        raise InputError("--to", _("{end} is before --from {start}").format(end=end, start=start))
    filters: dict[str, Any] = {
        "channel": channel,
        "start": start,
        "end": end,
        "include_cancelled": include_cancelled,
    }
    if fmt in ("html", "ics"):  # they also read the posts' links and history
        _preview_calendar(config, fmt, filters, output)
        return
    entries = _preview_items(config, filters)
    if fmt == "json":
        text = pv.to_json(entries, config)
        if output:
            write_file(output, text)
        else:
            click.echo(text, nl=False)
        return
    if not entries and not (channel or start or end):
        say(_("The queue is empty: run 'publisher load' first."), err=True)
    _preview_table(config, entries, output)


def _preview_calendar(
    config: Config, fmt: str, filters: dict[str, Any], output: Path | None
) -> None:
    """The posts as a standalone HTML month calendar or an iCalendar file, to ``output`` (saying
    so) or to stdout."""
    from publisher.documents import calendar_html, calendar_ics
    from publisher.documents import preview as pv

    db = read_queue(config)
    entries = pv.items(db, config, **filters)
    extra = calendar_html.load_extra(db, [e.id for e in entries])
    generated = now()
    if fmt == "html":
        pictures = calendar_html.load_pictures(db, entries)
        page = calendar_html.render_calendar(
            entries, config, generated_at=generated, extra=extra, pictures=pictures
        )
        data = page.encode("utf-8")
    else:
        data = calendar_ics.render_ics(entries, config, generated_at=generated, extra=extra)
    if output:
        write_file(output, data)
        say(_("Wrote {file} ({n} posts).").format(file=output, n=len(entries)))
    else:
        sys.stdout.buffer.write(data)


def _preview_items(config: Config, filters: dict[str, Any]) -> list[Item]:
    """The posts for the table and JSON, read from an SQLite queue without SQLAlchemy (whose
    import alone would take longer than the whole command should), else through it."""
    from publisher.documents import preview as pv

    fast = pv.items_sqlite(config, **filters)
    if fast is not None:
        warn_exposure(pv.sqlite_path(config))
    return fast if fast is not None else pv.items(read_queue(config), config, **filters)


def _preview_table(config: Config, entries: list[Item], output: Path | None) -> None:
    """The posts as a table grouped by day: to ``output`` (plain, 160 columns) or the terminal.

    Without colours (a file, a pipe) ``plain_table`` lays it out when it can, as rich would."""
    from publisher.documents import preview as pv

    colours = any(os.environ.get(v) for v in ("FORCE_COLOR", "TTY_COMPATIBLE", "JUPYTER_COLUMNS"))
    if output or not (colours or sys.stdout.isatty()):
        text = pv.plain_table(entries, config)
        if text is not None:
            if output:
                write_file(output, text)
            else:
                sys.stdout.write(text)
            return

    from rich.console import Console

    if output:
        buffer = io.StringIO()
        pv.render_table(entries, config, Console(file=buffer, width=160, color_system=None))
        write_file(output, buffer.getvalue())
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
        pv.render_table(entries, config, console)


@cli.command()
@config_option
@actor_option
@click.argument("post_ids", nargs=-1, type=int, metavar="POST_ID...")
@click.option("--all", "everything", is_flag=True, help="Approve every draft that has a time.")
def approve(
    config_path: Path, actor: str | None, post_ids: tuple[int, ...], everything: bool
) -> None:
    """Approve posts for publishing, recording who approved which exact text and when."""
    from publisher.config.board import role_label, role_of
    from publisher.editorial.load import approve as do_approve

    if bool(post_ids) == everything:
        raise InputError(
            "approve", _("give POST_ID... or --all (not both)"), _("e.g. publisher approve 3 4")
        )
    config = read_config(config_path)
    who = authorize(config, actor, "approve")
    db = open_queue(config)
    report = do_approve(
        db,
        post_ids,
        everything=everything,
        actor=who,
        now=now(),
        rules=config.approval,
        role=role_of(config, who),
    )
    say(_("Approved {n} post(s) as {who}.").format(n=len(report.approved), who=who))
    if not everything:  # each post named: say what became of each
        for pid in report.approved:
            say(_("  post {id}: approved").format(id=pid))
    if report.steps:
        say(
            _("Recorded {n} approval step(s) as {who}, not yet approved:").format(
                n=len(report.steps), who=who
            )
        )
    for taken in report.steps:
        say(
            _(
                "  post {id}: approved as {step} (step {number} of {of}), "
                "waiting for the {next} step"
            ).format(
                id=taken.post_id,
                step=role_label(taken.step),
                number=taken.number,
                of=taken.of,
                next=role_label(taken.waiting_for),
            )
        )
    for pid, why in report.refused:
        say(_("post {id} not approved: {why}").format(id=pid, why=why), err=True)
    if report.refused and not everything:
        sys.exit(1)


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
    "--date",
    "day",
    callback=date_arg("--date"),
    metavar="DATE",
    help="The report's date (default: today): figures up to the end of that day.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
def report(config_path: Path, fmt: str, day: date | None, output: Path | None) -> None:
    """The report for Sở LĐ-TB&XH on the whole plan: posts, reach and the office's entries
    (messages/report.toml); a progress report before the campaign window ends."""
    from rich.console import Console
    from rich.progress import Progress

    from publisher.documents.report import build_report
    from publisher.documents.report_text import render

    config = read_config(config_path)
    if fmt == "docx" and output is None:
        raise InputError("--format docx", _("needs -o FILE"), _("e.g. -o bao-cao.docx"))
    at = now()
    today = at.astimezone(config.tz).date()
    if day is not None and day > today:
        raise InputError(
            "--date",
            _("{day} is after today").format(day=day.strftime("%d/%m/%Y")),
            _("a report is dated today or earlier"),
        )
    db = read_queue(config)
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(_("Report"), total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        built = build_report(db, config, at, day=day, progress=step)
        data = render(built, fmt, progress=step)
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    write_file(output, data)
    say(_("Wrote {file}.").format(file=output))
