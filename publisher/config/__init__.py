"""config.toml → frozen dataclasses (``model``), validated once at load (the rules: ``parse``).

Every error names the file, the key path and what is allowed. Secrets are never read here (they
come from the environment or a .env file: ``env``); the config only names the variables that
hold them. The board's members and who may do what: ``board``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from publisher.config.model import (
    ADAPTERS,
    ALERT_KINDS,
    DATABASE_URL_ENV,
    ENV_NAME,
    HHMM,
    ID,
    IMAP_URL_ENV,
    KINDS,
    MAIL_PORTS,
    MAIL_SECURITY,
    ROLES,
    SMTP_URL_ENV,
    URL_SETTINGS,
    WORDPRESS_STATS,
    ZALO_PACKAGES,
    AdapterSettings,
    AdapterSpec,
    AlertSettings,
    ApprovalRules,
    Campaign,
    Channel,
    Config,
    DaemonSettings,
    EmailSettings,
    FacebookSettings,
    ImapSettings,
    InsightsSettings,
    KeyDate,
    KindRules,
    MailSettings,
    MediaSettings,
    Member,
    QuietHours,
    ReportSettings,
    WebhookSettings,
    WebSettings,
    WordPressSettings,
    ZaloSettings,
    is_loopback,
    member_key,
    parse_duration,
    resolve_database_url,
    settings_as,
    url_problem,
)
from publisher.errors import ConfigError

__all__ = [
    "ADAPTERS",
    "ALERT_KINDS",
    "DATABASE_URL_ENV",
    "ENV_NAME",
    "HHMM",
    "ID",
    "IMAP_URL_ENV",
    "KINDS",
    "MAIL_PORTS",
    "MAIL_SECURITY",
    "ROLES",
    "SMTP_URL_ENV",
    "URL_SETTINGS",
    "WORDPRESS_STATS",
    "ZALO_PACKAGES",
    "AdapterSettings",
    "AdapterSpec",
    "AlertSettings",
    "ApprovalRules",
    "Campaign",
    "Channel",
    "Config",
    "DaemonSettings",
    "EmailSettings",
    "FacebookSettings",
    "ImapSettings",
    "InsightsSettings",
    "KeyDate",
    "KindRules",
    "MailSettings",
    "MediaSettings",
    "Member",
    "QuietHours",
    "ReportSettings",
    "WebSettings",
    "WebhookSettings",
    "WordPressSettings",
    "ZaloSettings",
    "is_loopback",
    "load_config",
    "member_key",
    "parse_config",
    "parse_duration",
    "resolve_database_url",
    "settings_as",
    "url_problem",
]


def load_config(path: str | os.PathLike[str] = "config.toml") -> Config:
    """Read and validate ``path``; raise ConfigError naming the first bad key."""
    p = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(where, "", "does not exist", "pass --config PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, "", f"cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, "", f"is not valid TOML: {exc}") from exc
    return parse_config(raw, p)


def parse_config(raw: Mapping[str, Any], p: Path) -> Config:
    """Validate a parsed config.toml (``p`` names it in errors and anchors relative paths)."""
    from publisher.config.parse import parse

    return parse(raw, p)
