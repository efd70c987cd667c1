"""``publisher user``: the board's accounts for the web app and the API (add, passwd, disable,
enable, list, token). Whoever runs these has the server's shell and so the queue; the audit
trail records them under the acting name (--as, $PUBLISHER_AS or the OS user)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from publisher.cli.common import (
    actor_of,
    cli,
    config_option,
    now,
    open_queue,
    read_config,
    read_queue,
    say,
    say_json,
)
from publisher.config.board import role_label
from publisher.errors import InputError
from publisher.i18n import _


@cli.group()
def user() -> None:
    """The board's accounts for `publisher web` and the API."""


def _password(stdin: bool, name: str) -> str:
    """The password from one line of standard input (--password-stdin), or asked twice at
    the terminal without echo."""
    if stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise InputError(
            "password",
            _("no terminal to ask for the password"),
            _("pass it on standard input with --password-stdin"),
        )
    first = getpass.getpass(_("Password for {name}: ").format(name=name))
    if getpass.getpass(_("Again: ")) != first:
        raise InputError("password", _("the two passwords differ"), _("type the same one twice"))
    return first


password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from one line of standard input."
)


@user.command("add")
@config_option
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["drafter", "editor", "approver"]),
    default=None,
    help="The account's role (default: the board member's role in config.toml).",
)
@password_stdin
@click.option("--no-password", is_flag=True, help="Create it without a password (set it later).")
@click.option("--as", "actor", default=None, metavar="NAME", help="Who does this (audit trail).")
def user_add(
    config_path: Path,
    name: str,
    role: str | None,
    password_stdin: bool,
    no_password: bool,
    actor: str | None,
) -> None:
    """Create an account for NAME (a board member's name or alias when config.toml has a board).

    Example: printf '%s\n' "$TUANLA_PASSWORD" | publisher user add tuan.la --password-stdin"""
    from publisher.store.users import add_user, check_password

    config = read_config(config_path)
    who = actor_of(config, actor)
    password = None if no_password else check_password(_password(password_stdin, name))
    db = open_queue(config)
    try:
        account = add_user(db, config, name, role, password, actor=who, now=now())
    finally:
        db.close()
    say(
        _("Account {name} created ({role}).").format(
            name=account.name, role=role_label(account.role)
        )
    )


@user.command("passwd")
@config_option
@click.argument("name")
@password_stdin
@click.option("--as", "actor", default=None, metavar="NAME", help="Who does this (audit trail).")
def user_passwd(config_path: Path, name: str, password_stdin: bool, actor: str | None) -> None:
    """Set NAME's password; their open sessions end.

    Example: publisher user passwd tuan.la"""
    from publisher.store.users import check_password, set_password

    config = read_config(config_path)
    who = actor_of(config, actor)
    password = check_password(_password(password_stdin, name))
    db = open_queue(config)
    try:
        account = set_password(db, config, name, password, actor=who, now=now())
    finally:
        db.close()
    say(_("Password of {name} changed; their sessions ended.").format(name=account.name))


def _switch(disabled: bool) -> None:
    verb = "disable" if disabled else "enable"

    @user.command(verb)
    @config_option
    @click.argument("name")
    @click.option("--as", "actor", default=None, metavar="NAME", help="Who (audit trail).")
    def command(config_path: Path, name: str, actor: str | None) -> None:
        from publisher.store.users import set_disabled

        config = read_config(config_path)
        who = actor_of(config, actor)
        db = open_queue(config)
        try:
            account = set_disabled(db, config, name, actor=who, now=now(), disabled=disabled)
        finally:
            db.close()
        done = _("Account {name} disabled.") if disabled else _("Account {name} enabled.")
        say(done.format(name=account.name))

    command.help = (
        "Disable NAME: no login, sessions ended, API tokens refused. "
        "Example: publisher user disable vanphong"
        if disabled
        else "Enable NAME again. Example: publisher user enable vanphong"
    )


_switch(True)
_switch(False)


@user.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(config_path: Path, as_json: bool) -> None:
    """The accounts, their roles and whether they can log in.

    Example: publisher user list"""
    from rich.console import Console
    from rich.table import Table

    from publisher.store.users import list_users

    config = read_config(config_path)
    db = read_queue(config)
    try:
        accounts = list_users(db)
    finally:
        db.close()
    if as_json:
        say_json(
            [
                {
                    "name": a.name,
                    "role": a.role,
                    "disabled": a.disabled,
                    "has_password": a.has_password,
                }
                for a in accounts
            ]
        )
        return
    if not accounts:
        say(_("No accounts yet: publisher user add NAME --password-stdin"))
        return
    table = Table(_("Name"), _("Role"), _("Can log in"))
    for a in accounts:
        state = _("disabled") if a.disabled else _("yes") if a.has_password else _("no password")
        table.add_row(a.name, role_label(a.role), state)
    Console().print(table)


@user.command("token")
@config_option
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown in the audit trail).")
@click.option("--revoke", is_flag=True, help="Revoke every API token of NAME instead.")
@click.option("--as", "actor", default=None, metavar="NAME", help="Who does this (audit trail).")
def user_token(config_path: Path, name: str, label: str, revoke: bool, actor: str | None) -> None:
    """Make an API token for NAME (printed once: keep it secret), or revoke theirs.

    Example: publisher user token tuan.la --label "báo cáo tự động\""""
    from publisher.store.users import new_token, revoke_tokens

    config = read_config(config_path)
    who = actor_of(config, actor)
    db = open_queue(config)
    try:
        if revoke:
            n = revoke_tokens(db, config, name, actor=who, now=now())
            say(_("{n} API token(s) of {name} revoked.").format(n=n, name=name))
            return
        token = new_token(db, config, name, actor=who, now=now(), label=label)
    finally:
        db.close()
    click.echo(token)
