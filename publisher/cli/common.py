"""What every ``publisher`` command shares: the command group (one line on stderr and exit 1
for a PublisherError), the --config and --as options, who acts, the queue opened for writing or
reading, the clock, and printing that never passes a control code through.

Heavy modules are imported inside functions so ``publisher --help`` starts fast.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from publisher import __version__
from publisher.errors import InputError, PublisherError
from publisher.i18n import LanguageError, _, current_language

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.config.env import Secrets
    from publisher.store.db import Database
F = TypeVar("F", bound=Callable[..., Any])


# Each command, by the module of publisher.cli that defines it: a command's module is imported
# when it runs (``publisher preview`` needs none of the daemon's, the mail's or the web app's),
# every module when they are all listed (``publisher --help``). tests/test_cli.py checks it.
COMMANDS = {
    **dict.fromkeys(("load", "check", "preview", "approve", "report"), "main"),
    **dict.fromkeys(("watch", "alerts"), "alerts"),
    "queue": "queue",
    **dict.fromkeys(("pause", "resume", "audit"), "board"),
    "insights": "insights",
    "mail": "mail",
    **dict.fromkeys(("channels", "sandbox", "run", "status"), "run"),
    "user": "users",
    "web": "web",
}
# A group's subcommands defined in another module than the group's own, by group.
PARTS = {"queue": ("board",)}  # queue import


class _Group(click.Group):
    """Turns every PublisherError (and database failure) into one line on stderr, exit 1;
    imports a command's module when the command is looked up (``COMMANDS``)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            for module in (COMMANDS[cmd_name], *PARTS.get(cmd_name, ())):
                import_module(f"publisher.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(COMMANDS.values())):
            import_module(f"publisher.cli.{module}")
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LanguageError as exc:  # PUBLISHER_LANG itself: said in English
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except PublisherError as exc:
            click.echo(_("error: {problem}").format(problem=exc.line()), err=True)
            sys.exit(1)
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):  # a failure publisher.store.db did not translate
                from publisher.store.db import scrub

                said = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""]
                url = os.environ.get("PUBLISHER_DATABASE_URL")
                said_line = scrub(said[0], url)
                click.echo(_("error: database: {problem}").format(problem=said_line), err=True)
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


def os_user() -> str:
    """The calling OS user, from the password database by effective uid — never $USER,
    $LOGNAME or getpass, which anyone can set."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no account (a container): its number
        return str(uid)


def actor_of(config: Config, name: str | None) -> str:
    """Who acts: see ``board.identify`` (--as, $PUBLISHER_AS, the OS user and its mapping)."""
    from publisher.config.board import identify

    return identify(config, name, os.environ.get("PUBLISHER_AS"), os_user())


def authorize(config: Config, actor: str | None, action: str) -> str:
    """The acting member's name, or a one-line refusal saying who may."""
    from publisher.config import board

    return board.authorize(config, actor_of(config, actor), action)


def read_config(path: Path) -> Config:
    from publisher.config import load_config

    return load_config(path)


def open_queue(config: Config) -> Database:
    """The queue for a command that writes: created or upgraded if need be, with the audit key
    from the environment / .env file; an unkeyed trail first appended to with no key at all
    gets a new key in the .env file."""
    from publisher.store import audit_key
    from publisher.store.db import open_database

    def make() -> bytes:
        key, path, made = audit_key.create(config)
        if made:
            click.echo(
                _(
                    "publisher: created the audit key {name} in {path}; keep a copy "
                    "somewhere safe and offline: without it the audit trail cannot be verified"
                ).format(name=audit_key.KEY_ENV, path=path),
                err=True,
            )
        return key

    db = open_database(
        config.database_url,
        audit_key=audit_key.from_environment(config),
        audit_key_maker=make,
    )
    warn_exposure(db.file)
    return db


def read_queue(config: Config) -> Database:
    """The queue for a command that only reads: one line, and nothing created, if none is
    there (an SQLite file that does not exist, a database without the schema). It carries the
    audit key if there is one (``audit --verify`` needs it), but never makes one."""
    from publisher.store import audit_key
    from publisher.store.db import open_existing

    db = open_existing(config.database_url, audit_key=audit_key.from_environment(config))
    warn_exposure(db.file)
    return db


def warn_exposure(file: Path | None) -> None:
    """One line on stderr if the SQLite queue ``file`` is readable by other users (its mode is
    the operator's to change: a group may share it on purpose)."""
    try:
        mode = file.stat().st_mode if file is not None else 0
    except OSError:
        return
    if mode & 0o004:
        click.echo(
            _(
                "warning: {file} is readable by other users (mode {mode}): "
                "chmod 600 {file} and its -wal and -shm"
            ).format(file=file, mode=f"{mode & 0o777:o}"),
            err=True,
        )


def existing_queue(config: Config) -> Database | None:
    """The queue if there is one at the current schema, opened without changing anything (a
    missing SQLite file is not created, an older schema not upgraded); else None."""
    from publisher.store.db import SCHEMA_HEAD, Database

    url = config.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        db = Database(url)
        version = db.schema_version()
    except PublisherError:
        return None
    return db if version == SCHEMA_HEAD else None


def now() -> datetime:
    return datetime.now(UTC)


def date_arg(option: str) -> Callable[[click.Context, click.Parameter, str | None], date | None]:
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
        raise click.BadParameter(
            _("{value!r} is not a date (use 2024-06-12 or 12/6/2024)").format(value=value)
        )

    return parse


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="publisher")
def cli() -> None:
    """Scheduled publishing of a campaign to portals, a Facebook Page and a Zalo OA."""
    current_language()  # a PUBLISHER_LANG publisher does not speak stops every command here


def state_label(state: str) -> str:
    """A post state as the user reads it: its identifier in English, the board's word for it
    (``states.LABELS_VI``, the calendar's and the report's, in lower case) in Vietnamese."""
    from publisher.states import LABELS_VI

    if current_language() == "en":
        return state
    label = LABELS_VI.get(state)
    return label[:1].lower() + label[1:] if label else state


def kind_label(kind: str) -> str:
    """A message kind ("slogan", "article") as the user reads it, as ``state_label``."""
    from publisher.states import KIND_LABELS_VI

    if current_language() == "en":
        return kind
    label = KIND_LABELS_VI.get(kind)
    return label.lower() if label else kind


def say(*lines: str, err: bool = False) -> None:
    """Print lines that may quote stored text: never a control code or bidi override."""
    from publisher.text import clean

    for line in lines:
        click.echo(clean(line), err=err)


def say_json(data: Any) -> None:
    """Print stored data as indented JSON, every string cleaned (``text.clean``)."""
    import json

    from publisher.text import clean_all

    click.echo(json.dumps(clean_all(data), ensure_ascii=False, indent=2))


def write_file(path: Path, data: str | bytes) -> None:
    """Write an -o FILE, or say in one line why it cannot be written."""
    try:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise InputError(
            str(path), _("cannot be written: {reason}").format(reason=exc.strerror)
        ) from exc


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
        help="Start a local sandbox of every platform and point every enabled channel, and the "
        "mail, at it.",
    )(func)


@contextmanager
def platforms(
    config: Config, sandbox: bool, sandbox_url: str | None, *, seed: int = 0
) -> Iterator[tuple[Config, Secrets, str | None]]:
    """The config and secrets to talk to: the real platforms and mail server, or a sandbox's
    (started if asked, its figures drawn from ``seed``), and the sandbox's URL."""
    from publisher.app import use_sandbox
    from publisher.config.env import resolve

    if sandbox and sandbox_url:
        raise InputError("--sandbox", _("give --sandbox or --sandbox-url, not both"))
    if sandbox_url:
        if not sandbox_url.startswith(("http://", "https://")):
            raise InputError(
                "--sandbox-url", _("{url!r} is not an http(s) URL").format(url=sandbox_url)
            )
        yield (*use_sandbox(config, sandbox_url), sandbox_url)
    elif sandbox:
        from publisher.sandbox.server import Sandbox

        with Sandbox(seed=seed) as box:
            sandboxed = use_sandbox(config, box.url, box.smtp_address, imap=box.imap_address)
            yield (*sandboxed, box.url)
    else:
        yield config, resolve(config), None
