"""The ``publisher`` command line: a thin shell over the library.

Only this module (and later the daemon) reads the clock or prints. Heavy modules are imported
inside commands so ``publisher --help`` starts fast. User mistakes print one line, exit 1.
"""

from __future__ import annotations

import io
import os
import pwd
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from publisher import __version__
from publisher.errors import InputError, PublisherError

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.db import Database

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

            if isinstance(exc, SQLAlchemyError):  # a failure publisher.db did not translate
                from publisher.db import scrub

                said = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""]
                url = os.environ.get("PUBLISHER_DATABASE_URL")
                click.echo(f"error: database: {scrub(said[0], url)}", err=True)
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
        "default: $PUBLISHER_AS, else the OS user. When the config maps OS users to members, "
        "you act as your own member and NAME may only name them.",
    )(func)


def _os_user() -> str:
    """The calling OS user, from the password database by effective uid — never $USER,
    $LOGNAME or getpass, which anyone can set."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no account (a container): its number
        return str(uid)


def _actor(config: Config, name: str | None) -> str:
    """Who acts: see ``board.identify`` (--as, $PUBLISHER_AS, the OS user and its mapping)."""
    from publisher.board import identify

    return identify(config, name, os.environ.get("PUBLISHER_AS"), _os_user())


def _authorize(config: Config, actor: str | None, action: str) -> str:
    """The acting member's name, or a one-line refusal saying who may."""
    from publisher.board import authorize

    return authorize(config, _actor(config, actor), action)


def _config(path: Path) -> Config:
    from publisher.config import load_config

    return load_config(path)


def _database(config: Config) -> Database:
    """The queue for a command that writes: created or upgraded if need be, with the audit key
    from the environment / .env file; an unkeyed trail first appended to with no key at all
    gets a new key in the .env file."""
    from publisher import audit_key
    from publisher.db import open_database

    def make() -> bytes:
        key, path, made = audit_key.create(config)
        if made:
            click.echo(
                f"publisher: created the audit key {audit_key.KEY_ENV} in {path}; keep a copy "
                "somewhere safe and offline: without it the audit trail cannot be verified",
                err=True,
            )
        return key

    db = open_database(
        config.database_url,
        audit_key=audit_key.from_environment(config),
        audit_key_maker=make,
    )
    _warn_exposure(db.file)
    return db


def _read_database(config: Config) -> Database:
    """The queue for a command that only reads: one line, and nothing created, if none is
    there (an SQLite file that does not exist, a database without the schema). It carries the
    audit key if there is one (``audit --verify`` needs it), but never makes one."""
    from publisher import audit_key
    from publisher.db import open_existing

    db = open_existing(config.database_url, audit_key=audit_key.from_environment(config))
    _warn_exposure(db.file)
    return db


def _warn_exposure(file: Path | None) -> None:
    """One line on stderr if the SQLite queue ``file`` is readable by other users (its mode is
    the operator's to change: a group may share it on purpose)."""
    try:
        mode = file.stat().st_mode if file is not None else 0
    except OSError:
        return
    if mode & 0o004:
        click.echo(
            f"warning: {file} is readable by other users (mode {mode & 0o777:o}): "
            f"chmod 600 {file} and its -wal and -shm",
            err=True,
        )


def _existing_database(config: Config) -> Database | None:
    """The queue if there is one at the current schema, opened without changing anything (a
    missing SQLite file is not created, an older schema not upgraded); else None."""
    from publisher.db import SCHEMA_HEAD, Database

    url = config.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        db = Database(url)
        version = db.schema_version()
    except PublisherError:
        return None
    return db if version == SCHEMA_HEAD else None


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
    """Print lines that may quote stored text: never a control code or bidi override."""
    from publisher.text import clean

    for line in lines:
        click.echo(clean(line), err=err)


def _print_json(data: Any) -> None:
    """Print stored data as indented JSON, every string cleaned (``text.clean``)."""
    import json

    from publisher.text import clean_all

    click.echo(json.dumps(clean_all(data), ensure_ascii=False, indent=2))


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
    today = _now().astimezone(config.tz).date()
    result = run_check(config, _existing_database(config), today=today)
    for problem in result.problems:
        _print(f"error: {problem}", err=True)
    for line in [*result.revoked, *result.warnings]:
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
    if fmt in ("html", "ics"):  # they also read the posts' links and history
        from publisher import calendar_ics, calendar_page

        db = _read_database(config)
        entries = pv.items(db, config, **filters)
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
    # The table and JSON read an SQLite queue without SQLAlchemy, whose import alone would
    # take longer than the whole command should.
    fast = pv.items_sqlite(config, **filters)
    if fast is not None:
        _warn_exposure(pv.sqlite_path(config))
    entries = fast if fast is not None else pv.items(_read_database(config), config, **filters)
    if fmt == "json":
        text = pv.to_json(entries, config)
        if output:
            _write(output, text)
        else:
            click.echo(text, nl=False)
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
    db = _read_database(config)
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


def main() -> None:
    cli(prog_name="publisher")


from publisher import cli_board, cli_queue, cli_run  # noqa: E402, F401 - register commands
