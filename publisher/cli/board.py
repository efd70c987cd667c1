"""The board's bulk and control commands: ``publisher queue import`` (a CSV of posts), the
``pause``/``resume`` kill switch and the ``audit`` trail. Registered on the main group.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher.cli.common import (
    actor_option,
    authorize,
    cli,
    config_option,
    now,
    open_queue,
    read_config,
    read_queue,
    say,
    say_json,
)
from publisher.cli.queue import print_load, queue
from publisher.errors import InputError
from publisher.i18n import _

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.store.db import Database


@queue.command("import")
@config_option
@actor_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--convert-legacy", is_flag=True, help="Convert TCVN3/VNI text to Unicode.")
def queue_import(
    config_path: Path, actor: str | None, csv_file: Path, convert_legacy: bool
) -> None:
    """Import messages from a CSV (UTF-8; columns: kind, title, summary, body, channels,
    pinned, at, cover). One transaction: any bad row and nothing is written."""
    from rich.progress import Progress

    from publisher.editorial.intake import import_csv
    from publisher.errors import Problems

    config = read_config(config_path)
    who = authorize(config, actor, "import")
    db = open_queue(config)
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task(_("Checking rows"), total=None)
            result = import_csv(
                db,
                config,
                csv_file,
                actor=who,
                now=now(),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                convert_legacy=convert_legacy,
            )
    except Problems as exc:
        for problem in exc.problems:
            say(_("error: {problem}").format(problem=problem.line()), err=True)
        say(_("{n} bad row(s): nothing was imported.").format(n=len(exc.problems)), err=True)
        sys.exit(1)
    say(
        _("Imported {n} message(s) from {file} as {who}: {created} post(s) created.").format(
            n=len(result.files), file=csv_file.name, who=who, created=result.report.created
        )
    )
    print_load(result.report)


def _pause_command(paused: bool) -> None:
    name = "pause" if paused else "resume"
    text = (
        "The kill switch: CHANNEL (or every channel) publishes nothing until resumed."
        if paused
        else "Let CHANNEL (or every channel) publish again."
    )

    @cli.command(name, help=text)
    @config_option
    @actor_option
    @click.argument("channel", required=False)
    def command(config_path: Path, actor: str | None, channel: str | None) -> None:
        from publisher.editorial import actions as editorial

        config = read_config(config_path)
        who = authorize(config, actor, name)
        db = open_queue(config)
        done = editorial.pause(db, config, channel, actor=who, now=now(), paused=paused)
        said = _("Paused {channels} ({who}).") if paused else _("Resumed {channels} ({who}).")
        say(said.format(channels=", ".join(done), who=who))


_pause_command(True)
_pause_command(False)


def _expected_head(value: str) -> tuple[int, str]:
    m = re.fullmatch(r"(\d+):([0-9a-fA-F]{64})", value.strip())
    if m is None:
        raise InputError(
            "--expect",
            _("{value!r} is not ID:HASH").format(value=value),
            _("a head as the daemon logs it: the entry id, a colon and its 64-character hash"),
        )
    return int(m.group(1)), m.group(2).lower()


@cli.command("audit")
@config_option
@click.option("--post", "post_id", type=int, help="Only this post's entries.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option(
    "--verify",
    is_flag=True,
    help="Check the keyed hash chain and the approved posts; name the first bad entry.",
)
@click.option(
    "--expect",
    "expect",
    multiple=True,
    metavar="ID:HASH",
    help="With --verify: a head the daemon logged ('audit head: entry ID … HASH'); entry ID "
    "must still be there with that hash. Repeatable.",
)
def audit_command(
    config_path: Path, post_id: int | None, as_json: bool, verify: bool, expect: tuple[str, ...]
) -> None:
    """The audit trail: who did what, when, to which content (hash-chained, append-only)."""
    heads = [_expected_head(v) for v in expect]
    config = read_config(config_path)
    db = read_queue(config)
    if verify or heads:
        _verify_audit(db, heads, as_json)
        return
    _list_audit(config, db, post_id, as_json)


def _verify_audit(db: Database, heads: list[tuple[int, str]], as_json: bool) -> None:
    """Check the trail (and that each of ``heads`` is still in it); say so, or name each problem
    and exit 1. A trail without a key passes with a warning."""
    from publisher.store import audit

    result = audit.verify(db, heads)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "entries": result.entries,
                    "problems": result.problems,
                    "head": result.head,
                    "head_id": result.head_id,
                    "scheme": result.scheme,
                    "key_id": result.key_id,
                },
                ensure_ascii=False,
            )
        )
    for problem in result.problems if not as_json else []:
        say(_("error: audit: {problem}").format(problem=problem), err=True)
    if not result.ok:
        sys.exit(1)
    if as_json:
        return
    say(
        _("Audit trail intact: {n} entries, head entry {id} {hash}… ({scheme})").format(
            n=result.entries, id=result.head_id, hash=result.head[:16], scheme=result.scheme
        )
    )
    if result.scheme != audit.HMAC_SHA256:
        say(
            _(
                "warning: audit: the trail is not keyed yet (no PUBLISHER_AUDIT_KEY): whoever "
                "can write the database could rewrite it; the next command that changes the "
                "queue creates a key"
            ),
            err=True,
        )


def _list_audit(config: Config, db: Database, post_id: int | None, as_json: bool) -> None:
    """The trail's entries (only post ``post_id``'s, if given) in order, in local time: a
    line each, or a JSON array."""
    from publisher.store import audit

    tz = config.tz
    rows = audit.entries(db, post_id=post_id)
    if as_json:
        data = [
            {
                "id": e.id,
                "at": e.at.astimezone(tz).isoformat(),
                "actor": e.actor,
                "action": e.action,
                "post": e.post_id,
                "subject": e.subject,
                "content_hash": e.content_hash,
                "detail": e.detail,
                "hash": e.hash,
            }
            for e in rows
        ]
        say_json(data)
        return
    for e in rows:
        post = _(" post {id}").format(id=e.post_id) if e.post_id else ""
        what = f" {e.subject}" if e.subject else ""
        detail = f": {e.detail}" if e.detail else ""
        say(
            f"{e.id:>5} {e.at.astimezone(tz):%Y-%m-%d %H:%M:%S} "
            f"{e.actor} {e.action}{post}{what}{detail}"
        )
