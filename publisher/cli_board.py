"""The board's bulk and control commands: ``publisher queue import`` (a CSV of posts), the
``pause``/``resume`` kill switch and the ``audit`` trail. Registered on the main group.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from publisher.cli import (
    _authorize,
    _config,
    _database,
    _now,
    _print,
    _print_json,
    _read_database,
    actor_option,
    cli,
    config_option,
)
from publisher.cli_queue import _print_load, queue
from publisher.errors import InputError


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

    from publisher.errors import Problems
    from publisher.intake import import_csv

    config = _config(config_path)
    who = _authorize(config, actor, "import")
    db = _database(config)
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("Checking rows", total=None)
            result = import_csv(
                db,
                config,
                csv_file,
                actor=who,
                now=_now(),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                convert_legacy=convert_legacy,
            )
    except Problems as exc:
        for problem in exc.problems:
            _print(f"error: {problem.line()}", err=True)
        _print(f"{len(exc.problems)} bad row(s): nothing was imported.", err=True)
        sys.exit(1)
    _print(
        f"Imported {len(result.files)} message(s) from {csv_file.name} as {who}: "
        f"{result.report.created} post(s) created."
    )
    _print_load(result.report)


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
        from publisher import editorial

        config = _config(config_path)
        who = _authorize(config, actor, name)
        db = _database(config)
        done = editorial.pause(db, config, channel, actor=who, now=_now(), paused=paused)
        verb = "Paused" if paused else "Resumed"
        _print(f"{verb} {', '.join(done)} ({who}).")


_pause_command(True)
_pause_command(False)


def _expected_head(value: str) -> tuple[int, str]:
    m = re.fullmatch(r"(\d+):([0-9a-fA-F]{64})", value.strip())
    if m is None:
        raise InputError(
            "--expect",
            f"{value!r} is not ID:HASH",
            "a head as the daemon logs it: the entry id, a colon and its 64-character hash",
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
    from publisher import audit

    heads = [_expected_head(v) for v in expect]
    config = _config(config_path)
    db = _read_database(config)
    if verify or heads:
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
            _print(f"error: audit: {problem}", err=True)
        if not result.ok:
            sys.exit(1)
        if as_json:
            return
        _print(
            f"Audit trail intact: {result.entries} entries, head entry {result.head_id} "
            f"{result.head[:16]}… ({result.scheme})"
        )
        if result.scheme != audit.HMAC_SHA256:
            _print(
                "warning: audit: the trail is not keyed yet (no PUBLISHER_AUDIT_KEY): whoever "
                "can write the database could rewrite it; the next command that changes the "
                "queue creates a key",
                err=True,
            )
        return
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
        _print_json(data)
        return
    for e in rows:
        post = f" post {e.post_id}" if e.post_id else ""
        what = f" {e.subject}" if e.subject else ""
        detail = f": {e.detail}" if e.detail else ""
        _print(
            f"{e.id:>5} {e.at.astimezone(tz):%Y-%m-%d %H:%M:%S} "
            f"{e.actor} {e.action}{post}{what}{detail}"
        )
