"""The ``publisher`` command line: a thin shell over the library.

Only this module (and later the daemon) reads the clock or prints. Heavy modules are imported
inside commands so ``publisher --help`` starts fast. User mistakes print one line, exit 1.
"""

from __future__ import annotations

import getpass
import os
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
        help="Who does this (recorded in the history); default: the OS user.",
    )(func)


def _actor(name: str | None) -> str:
    if name:
        return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _config(path: Path) -> Config:
    from publisher.config import load_config

    return load_config(path)


def _database(config: Config) -> Database:
    from publisher.db import open_database

    return open_database(config.database_url)


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
def load(config_path: Path, actor: str | None) -> None:
    """Read messages/ into the queue and plan the calendar (one transaction).

    Running it twice changes nothing. An edited file updates its unpublished posts (an
    approved post whose text changed goes back to draft); a removed file cancels them.
    """
    from publisher.outbox import load as do_load

    config = _config(config_path)
    db = _database(config)
    report = do_load(db, config, _now(), _actor(actor))
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
    result = run_check(config)
    for problem in result.problems:
        _print(f"error: {problem}", err=True)
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
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table grouped by day, or a JSON array with one object per post.",
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
    db = _database(config)
    entries = pv.items(
        db, config, channel=channel, start=start, end=end, include_cancelled=include_cancelled
    )
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
        with _open(output) as fh:
            pv.render_table(entries, config, Console(file=fh, width=160, color_system=None))
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
        pv.render_table(entries, config, console)


def _open(path: Path) -> Any:
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot be written: {exc.strerror}") from exc


def _write(path: Path, text: str) -> None:
    with _open(path) as fh:
        fh.write(text)


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
    db = _database(config)
    who = _actor(actor)
    report = do_approve(db, post_ids, everything=everything, actor=who, now=_now())
    _print(f"Approved {len(report.approved)} post(s) as {who}.")
    for pid, why in report.refused:
        _print(f"post {pid} not approved: {why}", err=True)
    if report.refused and not everything:
        sys.exit(1)


def main() -> None:
    cli(prog_name="publisher")
