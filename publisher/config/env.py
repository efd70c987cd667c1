"""Secrets: resolved from the environment or the .env file config.toml names; never logged.

Only this module reads secret values. ``Redactor`` is a logging filter that blanks every known
secret in every log record, as a second line of defence behind "never log a token".
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from publisher.config.model import (
    ADAPTERS,
    IMAP_URL_ENV,
    SMTP_URL_ENV,
    Config,
    ImapSettings,
    MailSettings,
)
from publisher.errors import ConfigError
from publisher.i18n import _


@dataclass
class Secrets:
    """channel id → secret role → value, and a line per secret that could not be found."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def for_channel(self, channel: str) -> dict[str, str]:
        return self.values.get(channel, {})

    def all_values(self) -> list[str]:
        return [v for roles in self.values.values() for v in roles.values() if v]


_WARNED: set[Path] = set()
_WARNED_LOCK = threading.Lock()


def warn_if_shared(path: Path) -> None:
    """One line on stderr (once per process and file) when group or others may read or write
    ``path``: a secrets file is for the publisher user alone."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        said = _("warning: {path} is readable by other users: chmod 600 {path}")
    elif mode & (stat.S_IWGRP | stat.S_IWOTH):
        said = _("warning: {path} is writable by other users: chmod 600 {path}")
    else:
        return
    with _WARNED_LOCK:
        if path in _WARNED:
            return
        _WARNED.add(path)
    print(said.format(path=path), file=sys.stderr)


def read_env_file(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    from dotenv import dotenv_values

    warn_if_shared(path)

    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc}") from exc
    return {k: v for k, v in values.items() if v is not None}


def environment(config: Config, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables secrets are read from: the .env file config.toml names, overridden by the
    environment (``environ``, default the process's)."""
    env = dict(read_env_file(config.env_file))
    env.update(os.environ if environ is None else environ)
    return env


def resolve(config: Config, environ: Mapping[str, str] | None = None) -> Secrets:
    """Find every enabled channel's secrets; the environment wins over the .env file."""
    env = environment(config, environ)
    out = Secrets()
    where = config.env_file.name if config.env_file else "the environment"
    for cid, ch in config.channels.items():
        if not ch.enabled:
            continue
        roles: dict[str, str] = {}
        for role in ADAPTERS[ch.adapter].secrets:
            name = ch.secrets.get(role)
            if name is None:
                out.problems.setdefault(cid, []).append(
                    f"channels.{cid}.secrets.{role} is not set in {config.path.name} "
                    f"(name the environment variable that holds it)"
                )
            elif not env.get(name):
                out.problems.setdefault(cid, []).append(
                    f"the environment variable {name} ({role}) is empty or unset "
                    f"(export it, or add it to {where})"
                )
            elif problem := _secret_problem(ch.adapter, role, env[name]):
                out.problems.setdefault(cid, []).append(
                    f"the environment variable {name} ({role}) {problem}"
                )
            else:
                roles[role] = env[name]
        out.values[cid] = roles
    return out


@dataclass(frozen=True)
class MailAccess:
    """The mail server to send through and the password of its login ("" without a login)."""

    settings: MailSettings
    password: str = field(repr=False)


def mail_access(config: Config, environ: Mapping[str, str] | None = None) -> MailAccess | None:
    """How to send mail: ``[mail]``, its connection overridden by ``PUBLISHER_SMTP_URL`` (from
    the environment or the .env file, like every secret), with the password (the URL's, or the
    variable ``[mail] secrets.password`` names). None if neither configures mail. A ConfigError
    for a bad URL or a password that is not there (never quoting one)."""
    from publisher.config.parse import smtp_url

    env = environment(config, environ)
    url = env.get(SMTP_URL_ENV, "").strip()
    if url:
        return MailAccess(*smtp_url(url, config.mail, config.campaign.organisation))
    mail = config.mail
    if mail is None:
        return None
    password = _password(config, env, mail.password_env, "mail") if mail.password_env else ""
    return MailAccess(mail, password)


def _password(config: Config, env: Mapping[str, str], variable: str, table: str) -> str:
    """The value of ``variable`` (named by ``[table] secrets.password``); a ConfigError naming
    it when it is empty or unset."""
    password = env.get(variable, "")
    if not password:
        where = config.env_file.name if config.env_file else "the environment"
        raise ConfigError(
            str(config.path),
            f"{table}.secrets.password",
            f"the environment variable {variable} is empty or unset",
            f"export it, or add it to {where}",
        )
    return password


@dataclass(frozen=True)
class ImapAccess:
    """The mailbox to read replies from and the password of its login."""

    settings: ImapSettings
    password: str = field(repr=False)


def imap_access(config: Config, environ: Mapping[str, str] | None = None) -> ImapAccess | None:
    """Where to read the desks' replies: ``[imap]``, its connection overridden by
    ``PUBLISHER_IMAP_URL`` (from the environment or the .env file), with the password (the
    URL's, or the variable ``[imap] secrets.password`` names). None if neither configures IMAP.
    A ConfigError for a bad URL or a password that is not there (never quoting one)."""
    from publisher.config.parse import imap_url

    env = environment(config, environ)
    url = env.get(IMAP_URL_ENV, "").strip()
    if url:
        return ImapAccess(*imap_url(url, config.imap))
    imap = config.imap
    if imap is None:
        return None
    return ImapAccess(imap, _password(config, env, imap.password_env, "imap"))


def _secret_problem(adapter: str, role: str, value: str) -> str | None:
    """Why a secret's value cannot work (its format), or None; never quotes the value."""
    if adapter == "webhook" and role == "signing_secret":
        from publisher.signing import secret_problem

        return secret_problem(value)
    return None


class Redactor(logging.Filter):
    """Replaces every secret value in a log record's final message with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for s in self.secrets:
            redacted = redacted.replace(s, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
