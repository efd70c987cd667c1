"""``publisher mail test``: a test message through the mail server (``[mail]``, or
``PUBLISHER_SMTP_URL`` over it), and the mail row of ``publisher channels check``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from publisher.cli.common import (
    cli,
    config_option,
    now,
    platforms,
    read_config,
    sandbox_options,
    say,
)
from publisher.errors import InputError
from publisher.i18n import _

if TYPE_CHECKING:
    from email.message import EmailMessage

    from publisher.channels.base import CheckResult
    from publisher.channels.smtp import Mailer
    from publisher.config import Config


@cli.group()
def mail() -> None:
    """Send mail through the server of [mail] or PUBLISHER_SMTP_URL."""


@mail.command("test")
@click.argument("address")
@config_option
@sandbox_options
def mail_test(address: str, config_path: Path, sandbox: bool, sandbox_url: str | None) -> None:
    """Send a short test message to ADDRESS and say whether the server took it (under
    --sandbox or --sandbox-url: the sandbox's SMTP server, which delivers nothing)."""
    from publisher.channels.base import ChannelError
    from publisher.config.parse import mail_address_problem

    config = read_config(config_path)
    address = address.strip()
    if mail_address_problem(address):
        raise InputError(
            "ADDRESS",
            _("{address!r} is not a mail address").format(address=address),
            _("e.g. tuan.la@example.gov.vn"),
        )
    try:
        with platforms(config, sandbox, sandbox_url) as (cfg, _secrets, _url):
            mailer = configured_mailer(cfg)
            message_id = mailer.send(trial_message(cfg, mailer, address))
    except ChannelError as exc:
        say(
            _("error: mail: the test message to {address} was not sent: {reason}").format(
                address=address, reason=exc.reason
            ),
            err=True,
        )
        sys.exit(1)
    say(
        _("Sent a test message to {address} through {server} (Message-ID {message_id}).").format(
            address=address, server=mailer.endpoint, message_id=message_id
        )
    )


def configured_mailer(config: Config) -> Mailer:
    """The mail transport, or one line saying what to set up."""
    from publisher.app import build_mailer

    mailer = build_mailer(config)
    if mailer is None:
        raise InputError(
            config.path.name,
            _("no mail server is configured"),
            _("add a [mail] table (see the commented example) or set PUBLISHER_SMTP_URL"),
        )
    if not mailer.settings.from_address:
        raise InputError(
            config.path.name,
            _("no sender address for mail"),
            _("set [mail] from_address, or ?from=ADDRESS in PUBLISHER_SMTP_URL"),
        )
    return mailer


def trial_message(config: Config, mailer: Mailer, address: str) -> EmailMessage:
    """The test message: a Vietnamese subject and body (in the interface's language), saying
    who sent it, when and through which server."""
    from publisher.channels.smtp import text_message

    when = now().astimezone(config.tz).strftime("%H:%M %d/%m/%Y")
    subject = _("publisher: test message from {organisation}").format(
        organisation=config.campaign.organisation
    )
    lines = [
        _(
            "This is a test message from publisher, the scheduled publisher of {organisation}."
        ).format(organisation=config.campaign.organisation),
        "",
        _("It was sent at {time} through {server} to {address}.").format(
            time=when, server=mailer.endpoint, address=address
        ),
        _("If you can read it, mail from publisher reaches this address; no reply is needed."),
    ]
    return text_message(address, subject, "\n".join(lines) + "\n")


def mail_check(config: Config) -> tuple[str, CheckResult] | None:
    """``channels check``'s mail row: the server and its login check (the sandbox's under
    ``use_sandbox``); None when no mail is configured."""
    from publisher.app import build_mailer
    from publisher.channels.base import CheckResult
    from publisher.config import SMTP_URL_ENV
    from publisher.errors import ConfigError

    try:
        mailer = build_mailer(config)
    except ConfigError as exc:  # a bad PUBLISHER_SMTP_URL, a password not there
        where = config.mail.endpoint if config.mail else SMTP_URL_ENV
        return where, CheckResult(False, exc.line())
    if mailer is None:
        return None
    return mailer.endpoint, mailer.check()
