"""``publisher watch`` (the watchdog a systemd timer runs: one round of alerts, without the
daemon) and ``publisher alerts`` (the open causes, the alerts and the outbox)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.cli.common import (
    cli,
    config_option,
    open_queue,
    platforms,
    read_config,
    read_queue,
    sandbox_options,
    say,
)
from publisher.errors import InputError
from publisher.i18n import _

if TYPE_CHECKING:
    from publisher.clock import Clock
    from publisher.config import Config
    from publisher.store.db import Database


def campaign_clock(db: Database) -> Clock:
    """The clock of the queue's campaign time: a rehearsal's (its meta rows anchor it), else
    real time."""
    from sqlalchemy import select

    from publisher.clock import SYSTEM_CLOCK
    from publisher.store.models import MetaRow
    from publisher.store.status import ANCHOR_KEYS, clock_of

    with db.read() as s:
        meta = {
            r.key: r.value for r in s.scalars(select(MetaRow).where(MetaRow.key.in_(ANCHOR_KEYS)))
        }
    return clock_of(meta) if len(meta) == len(ANCHOR_KEYS) else SYSTEM_CLOCK


@cli.command()
@config_option
@sandbox_options
def watch(config_path: Path, sandbox: bool, sandbox_url: str | None) -> None:
    """One round of alerts, without the daemon (for a systemd timer): check the daemon's
    heartbeat and every other cause, mail what is new, reminded or resolved, send the
    outbox."""
    from publisher.app import alert_round

    config = read_config(config_path)
    if not config.alerts.enabled:
        raise InputError(
            config.path.name,
            _("alerts are off"),
            _("add an [alerts] table naming who gets which alert (see the README: Alerts)"),
        )
    db = open_queue(config)
    with platforms(config, sandbox, sandbox_url) as (cfg, secrets, _url):
        found = alert_round(cfg, db, campaign_clock(db), secrets)
        if found is None:
            raise InputError(
                config.path.name,
                _("alerts are on but no mail server is configured"),
                _("add a [mail] table or set PUBLISHER_SMTP_URL"),
            )
        evaluation, flushed = found()
    _report(cfg, db, evaluation, flushed)


def _report(config: Config, db: Database, evaluation: Any, flushed: Any) -> None:
    """``watch``'s lines: the daemon, the causes, the mail."""
    from publisher.store import outbox

    stale = next((c for c in evaluation.open if c.kind == "daemon_stale"), None)
    say(
        _("daemon: NOT RUNNING (alert daemon_stale open)")
        if stale is not None
        else _("daemon: ok (or nothing to publish)")
    )
    say(
        _(
            "causes open: {open}; alerts new: {new}, reminded: {reminded}, resolved: {resolved}"
        ).format(
            open=len(evaluation.open),
            new=len(evaluation.opened),
            reminded=len(evaluation.reminded),
            resolved=len(evaluation.resolved),
        )
    )
    box = outbox.state(db)
    say(
        _("mail: {sent} sent now, {waiting} waiting, {failed} refused for good").format(
            sent=flushed.sent, waiting=box.waiting, failed=box.failed
        )
    )
    for error in flushed.errors[:1]:
        say(_("warning: the mail server: {error}").format(error=error), err=True)
    for name in evaluation.failed_sources:
        say(_("warning: the cause source {name} failed (see the log)").format(name=name), err=True)
    if evaluation.failed_sources:
        sys.exit(1)


@cli.command("alerts")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Also list resolved alerts.")
def alerts_command(config_path: Path, show_all: bool) -> None:
    """The alerts open now (and with --all the resolved ones), and the outbox of mail."""
    from sqlalchemy import select

    from publisher.store import outbox
    from publisher.store.models import AlertRow

    config = read_config(config_path)
    db = read_queue(config)
    with db.read() as s:
        query = select(AlertRow).order_by(AlertRow.opened_at, AlertRow.id)
        if not show_all:
            query = query.where(AlertRow.resolved_at.is_(None))
        rows = list(s.scalars(query))
        lines = [_alert_line(config, r) for r in rows]
    for line in lines:
        click.echo(line)
    if not lines:
        say(_("No alert is open.") if not show_all else _("No alert yet."))
    box = outbox.state(db)
    oldest = _local(config, box.oldest_waiting) if box.oldest_waiting else "-"
    say(
        _(
            "outbox: {waiting} waiting (oldest {oldest}), {sent} sent, {failed} refused for good"
        ).format(waiting=box.waiting, oldest=oldest, sent=box.sent, failed=box.failed)
    )
    if box.waiting and box.last_error:
        say(_("  last error: {error}").format(error=box.last_error))
    if not config.alerts.enabled:
        say(_("Alerts are off ([alerts] in {file}).").format(file=config.path.name))


def _local(config: Config, t: datetime) -> str:
    return t.astimezone(config.tz).strftime("%d/%m/%Y %H:%M")


def _alert_line(config: Config, row: Any) -> str:
    from publisher.text import clean

    if row.resolved_at is not None:
        state = _("resolved {time}").format(time=_local(config, row.resolved_at))
    else:
        state = _("open since {time}, {n} reminder(s)").format(
            time=_local(config, row.opened_at), n=row.reminders
        )
    last = _("last mail {time}").format(time=_local(config, row.last_sent_at))
    return clean(f"{row.key}  {state}  ({last})")
