"""Validation of a parsed config.toml into ``publisher.config``'s dataclasses: every error
names the file, the key path and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.config.model import (
    ADAPTERS,
    ALERT_KINDS,
    DATABASE_URL_ENV,
    ENV_NAME,
    HHMM,
    ID,
    IMAP_POLL,
    IMAP_PORTS,
    IMAP_SECURITY,
    IMAP_URL_ENV,
    KINDS,
    MAIL_PORTS,
    MAIL_SECURITY,
    MAIL_TIMEOUT,
    ROLES,
    SMTP_URL_ENV,
    URL_SETTINGS,
    WORDPRESS_STATS,
    ZALO_PACKAGES,
    AdapterSpec,
    AlertSettings,
    ApprovalRules,
    Campaign,
    Channel,
    Config,
    DaemonSettings,
    ImapSettings,
    InsightsSettings,
    KeyDate,
    KindRules,
    MailSettings,
    MediaSettings,
    Member,
    QuietHours,
    ReportSettings,
    WebSettings,
    is_loopback,
    member_key,
    parse_duration,
    resolve_database_url,
    url_problem,
)
from publisher.errors import ConfigError
from publisher.text import nfc


class _Table:
    """Reads one TOML table, remembering the key path; ``done()`` rejects unknown keys."""

    def __init__(self, path: str, key: str, data: Any) -> None:
        self.path, self.key = path, key
        if not isinstance(data, dict):
            raise ConfigError(path, key, f"must be a table, not {_kind(data)}")
        self.data: dict[str, Any] = dict(data)
        self.allowed: list[str] = []

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def err(self, name: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(self.path, self.sub(name), problem, hint)

    def get(self, name: str, default: Any = ..., *, types: tuple[type, ...] = ()) -> Any:
        self.allowed.append(name)
        if name not in self.data:
            if default is ...:
                import difflib  # only for a mistake: not on every config's path

                typo = difflib.get_close_matches(name, [k for k in self.data if isinstance(k, str)])
                if typo:
                    raise self.err(typo[0], "is not a known key", f"did you mean '{name}'?")
                raise self.err(name, "is missing")
            return default
        value = self.data.pop(name)
        wrong_bool = isinstance(value, bool) and bool not in types
        if types and (not isinstance(value, types) or wrong_bool):
            expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise self.err(name, f"must be {expected}, not {_kind(value)}")
        return value

    def text(self, name: str, default: Any = ...) -> str:
        value = self.get(name, default, types=(str,))
        if default is ... and not value.strip():
            raise self.err(name, "must not be empty")
        return str(value)

    def table(self, name: str, default: Any = ...) -> _Table:
        return _Table(self.path, self.sub(name), self.get(name, default))

    def done(self) -> None:
        if self.data:
            name = sorted(self.data)[0]
            allowed = ", ".join(self.allowed) or "none"
            raise self.err(name, "is not a known key", f"allowed here: {allowed}")


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}


def _kind(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def parse_hhmm(value: Any, where: ConfigError) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if isinstance(value, str) and (m := HHMM.match(value.strip())):
        return time(int(m.group(1)), int(m.group(2)))
    raise where


def _date(t: _Table, name: str) -> date:
    value = t.get(name)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise t.err(name, f"{value!r} is not a date", "write it as 2024-06-01")


def _time(t: _Table, key: str, value: Any) -> time:
    problem = f"{value!r} is not a time"
    return parse_hhmm(value, t.err(key, problem, "write local times as 'HH:MM', e.g. '08:00'"))


def _positive_int(t: _Table, name: str, default: Any = ..., minimum: int = 1) -> int:
    value = t.get(name, default, types=(int,))
    if value < minimum:
        raise t.err(name, f"must be at least {minimum}, not {value}")
    return int(value)


def _board(t: _Table) -> tuple[dict[str, Member], tuple[str, ...], ApprovalRules]:
    """The members (by ``member_key`` of each name and alias), the service accounts and the
    approval rules."""
    members = t.get("members", [], types=(list,))
    accounts = t.get("service_accounts", [], types=(list,))
    rules = _approval(t)
    t.done()
    out: dict[str, Member] = {}
    os_users: dict[str, Member] = {}
    for i, raw in enumerate(members):
        m = _Table(t.path, f"board.members[{i}]", raw)
        name = " ".join(nfc(m.text("name")).split())
        role = m.text("role")
        if role not in ROLES:
            raise m.err("role", f"{role!r} is not a role", "one of: " + ", ".join(ROLES))
        aliases = m.get("aliases", [], types=(list,))
        if not all(isinstance(a, str) and a.strip() for a in aliases):
            raise m.err("aliases", "must be a list of names")
        os_user = m.get("os_user", None, types=(str,))
        if os_user is not None:
            os_user = os_user.strip()
            if not os_user:
                raise m.err("os_user", "must not be empty", 'their OS login name, e.g. "tuanla"')
            if os_user in os_users:
                raise m.err(
                    "os_user",
                    f"{os_user!r} is mapped twice (to {os_users[os_user].name} and {name})",
                    "one OS user is one member",
                )
        title, email = m.text("title", ""), _member_email(m)
        member = Member(name, role, title, tuple(a.strip() for a in aliases), os_user, email)
        m.done()
        if os_user is not None:
            os_users[os_user] = member
        for key in (name, *member.aliases):
            if member_key(key) in out:
                raise m.err("name", f"{key!r} is given twice on the board")
            out[member_key(key)] = member
    seen: set[str] = set()
    for i, account in enumerate(accounts):
        where = f"service_accounts[{i}]"
        if not isinstance(account, str) or not account.strip():
            raise t.err(where, "must be an OS user name", 'e.g. service_accounts = ["publisher"]')
        account = account.strip()
        if account in seen:
            raise t.err(where, f"{account!r} is given twice")
        if account in os_users:
            raise t.err(
                where,
                f"{account!r} is {os_users[account].name}'s os_user",
                "an OS user is either one member or a service account",
            )
        seen.add(account)
    if seen and not os_users:
        raise t.err(
            "service_accounts",
            "has no effect while no member has an os_user",
            'map members to their OS users first (os_user = "…" in [board] members)',
        )
    return out, tuple(a.strip() for a in accounts), rules


def _member_email(m: _Table) -> str:
    """A member's ``email`` (where their alerts go): a bare address, or ""."""
    email = m.text("email", "").strip()
    if email and (problem := mail_address_problem(email)):
        raise m.err("email", problem, "their bare address, e.g. 'tuan.la@example.gov.vn'")
    return email


STEP_ROLES = ROLES[1:]  # a drafter writes; editors and approvers approve


def _approval(t: _Table) -> ApprovalRules:
    """``four_eyes`` and ``approval_steps`` of ``[board]``: the steps are roles that may
    approve, each once, in the board's order (an editor's step before an approver's)."""
    defaults = ApprovalRules()
    four_eyes = t.get("four_eyes", defaults.four_eyes, types=(bool,))
    steps = t.get("approval_steps", list(defaults.steps), types=(list,))
    example = 'e.g. approval_steps = ["editor", "approver"]'
    if not steps:
        raise t.err("approval_steps", "must list at least one step", example)
    for i, step in enumerate(steps):
        if not isinstance(step, str) or step not in STEP_ROLES:
            shown = repr(step) if isinstance(step, str) else _kind(step)
            raise t.err(
                f"approval_steps[{i}]",
                f"{shown} is not a role that approves",
                "each step is one of: " + ", ".join(STEP_ROLES),
            )
        if step in steps[:i]:
            raise t.err(f"approval_steps[{i}]", f"{step!r} is given twice", "each role once")
        if i and ROLES.index(step) < ROLES.index(steps[i - 1]):
            raise t.err(
                f"approval_steps[{i}]",
                f"the {step} step comes after the {steps[i - 1]} step",
                "order the steps from the lower role to the higher: " + example,
            )
    return ApprovalRules(four_eyes=four_eyes, steps=tuple(steps))


def _duration(t: _Table, name: str, default: timedelta) -> timedelta:
    value = t.get(name, None, types=(str,))
    if value is None:
        return default
    parsed = parse_duration(value)
    if parsed is None or parsed <= timedelta(0):
        raise t.err(name, f"{value!r} is not a duration", "e.g. '90s', '15m', '2h', '1d'")
    return parsed


def _channel(path: str, cid: str, data: Any) -> Channel:
    """The ``[channels.<cid>]`` table: its rules, secrets and adapter settings."""
    if not ID.match(cid):
        raise ConfigError(path, f"channels.{cid}", "is not a valid channel id", "use a-z, 0-9, _")
    t = _Table(path, f"channels.{cid}", data)
    adapter = t.text("adapter")
    if adapter not in ADAPTERS:
        raise t.err(
            "adapter", f"{adapter!r} is not a known adapter", "one of: " + ", ".join(ADAPTERS)
        )
    spec = ADAPTERS[adapter]
    name = t.text("name")
    enabled = t.get("enabled", True, types=(bool,))
    templates = t.text("templates", cid)
    raw_slots = t.get("slots", types=(list,))
    if not raw_slots:
        raise t.err("slots", "must list at least one posting time", "e.g. slots = ['08:00']")
    slots = tuple(sorted({_time(t, f"slots[{i}]", s) for i, s in enumerate(raw_slots)}))
    daily_cap = _positive_int(t, "daily_cap", len(slots))
    concurrency = _positive_int(t, "concurrency", 1)
    quiet = _quiet_hours(t, raw_slots)
    repeats = _repeats(t.table("repeats", {}))
    secrets = _secrets(t.table("secrets", {}), adapter, spec)
    settings = _settings(t, adapter, spec)
    t.done()
    return Channel(
        cid,
        name,
        enabled,
        adapter,
        templates,
        slots,
        daily_cap,
        quiet,
        repeats,
        spec.settings(**settings),
        secrets,
        concurrency,
    )


def _quiet_hours(t: _Table, raw_slots: list[Any]) -> QuietHours | None:
    """A channel's ``quiet_hours`` (None if it has none), which none of its slots may fall in."""
    quiet = None
    if "quiet_hours" in t.data:
        q = t.table("quiet_hours")
        quiet = QuietHours(_time(q, "start", q.get("start")), _time(q, "end", q.get("end")))
        q.done()
        if quiet.start == quiet.end:
            raise t.err("quiet_hours", "start and end are equal", "omit quiet_hours for none")
    else:
        t.allowed.append("quiet_hours")
    for i, s in enumerate(raw_slots):
        slot = _time(t, f"slots[{i}]", s)
        if quiet and quiet.contains(slot):
            raise t.err(f"slots[{i}]", f"{slot:%H:%M} falls in the quiet hours {quiet}")
    return quiet


def _repeats(rep: _Table) -> dict[str, int]:
    """A channel's ``repeats``: how many times a message of each kind goes out on it."""
    repeats = {}
    for kind in list(rep.data):
        if kind not in KINDS:
            raise rep.err(kind, "is not a content kind", "one of: " + ", ".join(KINDS))
        repeats[kind] = _positive_int(rep, kind, minimum=0)
    return repeats


def _secrets(sec: _Table, adapter: str, spec: AdapterSpec) -> dict[str, str]:
    """A channel's ``secrets``: the environment variable holding each of its adapter's."""
    secrets: dict[str, str] = {}
    for role in list(sec.data):
        if role not in spec.secrets:
            allowed = ", ".join(spec.secrets)
            raise sec.err(role, f"is not a secret of the {adapter} adapter", f"allowed: {allowed}")
        env_name = sec.text(role)
        if not ENV_NAME.match(env_name):
            raise sec.err(
                role,
                "must name an environment variable, never hold the secret itself",
                "e.g. PUBLISHER_FACEBOOK_PAGE_TOKEN",
            )
        secrets[role] = env_name
    return secrets


def _settings(t: _Table, adapter: str, spec: AdapterSpec) -> dict[str, Any]:
    """A channel's settings for its adapter: the required ones, then the optional ones with
    their defaults; URLs checked, and Zalo's author and default cover."""
    if adapter == "email":
        return _email_settings(t)
    settings: dict[str, Any] = {}
    for key in spec.required:
        settings[key] = t.get(key, types=(str,))
    for key, default in spec.optional.items():
        if isinstance(default, tuple):  # a TOML array of whole numbers (category_ids)
            value = t.get(key, [], types=(list,))
            whole = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
            digits = [v for v in value if isinstance(v, str) and v.strip().isdigit()]
            if len(whole) + len(digits) != len(value):  # "3" is taken as 3, as it always was
                raise t.err(key, "must be a list of whole numbers", f"e.g. {key} = [3, 7]")
            settings[key] = tuple(int(v) for v in value)
        else:
            settings[key] = t.get(key, default, types=(type(default),))
    for key in URL_SETTINGS:
        value = settings.get(key)
        problem = url_problem(str(value)) if value else None
        if problem:
            raise t.err(key, *problem)
    if adapter == "zalo" and len(settings["author"]) > 50:
        raise t.err("author", "is longer than Zalo's 50 characters")
    if adapter == "wordpress" and settings["max_upload_bytes"] < 200_000:
        raise t.err(
            "max_upload_bytes",
            f"is {settings['max_upload_bytes']}: too small for a picture",
            "the site's upload limit in bytes, e.g. 1500000 (a multisite's default 1500 KB)",
        )
    if adapter == "wordpress" and settings["stats"] not in WORDPRESS_STATS:
        raise t.err("stats", f"is {settings['stats']!r}", "one of: " + ", ".join(WORDPRESS_STATS))
    if adapter == "zalo" and settings["package"] not in ZALO_PACKAGES:
        raise t.err("package", f"is {settings['package']!r}", "one of: " + ", ".join(ZALO_PACKAGES))
    cover = settings.get("default_cover") if adapter == "zalo" else ""
    if cover and not str(cover).startswith("https://"):
        raise t.err(
            "default_cover",
            f"{cover!r} is not an https:// URL",
            "Zalo takes covers as public https:// image URLs (JPEG or PNG, at most 1 MB)",
        )
    return settings


def _email_settings(t: _Table) -> dict[str, Any]:
    """An ``email`` channel's settings: the desk's addresses (``to``, ``cc``), the portal's
    public address (``site``), how long the desk has to confirm and the link works."""
    settings: dict[str, Any] = {
        "to": _addresses(t, "to", required=True),
        "cc": _addresses(t, "cc", required=False),
        "site": t.text("site").strip(),
        "confirm_within": _duration(t, "confirm_within", timedelta(hours=24)),
        "link_valid": _duration(t, "link_valid", timedelta(days=14)),
        "any_url": t.get("any_url", False, types=(bool,)),
    }
    if problem := url_problem(settings["site"]):
        raise t.err("site", *problem)
    return settings


def _addresses(t: _Table, name: str, *, required: bool) -> tuple[str, ...]:
    """A list of mail addresses (a single string is taken as a list of one)."""
    value = t.get(name, ... if required else [], types=(list, str))
    values = [value] if isinstance(value, str) else value
    example = f'e.g. {name} = ["toasoan@pbgdpl.example.gov.vn"]'
    if required and not values:
        raise t.err(name, "must list at least one address", example)
    out: list[str] = []
    for i, item in enumerate(values):
        if not isinstance(item, str) or (problem := mail_address_problem(item.strip())):
            what = problem if isinstance(item, str) else f"is {_kind(item)}, not an address"
            raise t.err(f"{name}[{i}]", str(what), example)
        if item.strip() not in out:
            out.append(item.strip())
    return tuple(out)


# Long on purpose: one step per table of config.toml, then the Config they make, in one place.
def parse(raw: Mapping[str, Any], p: Path) -> Config:
    """A parsed config.toml read from ``p`` as a Config; a ConfigError names the first
    problem (the file, the key path and what is allowed)."""
    where = str(p)
    base = p.resolve().parent
    top = _Table(where, "", raw)

    campaign = _campaign(top.table("campaign"))
    report = _report(top.table("report", {}))

    paths = top.table("paths", {})
    messages_dir, templates_dir = (base / paths.text(k, k) for k in ("messages", "templates"))
    paths.done()

    db = top.table("database", {})
    url = db.text("url", "sqlite:///publisher.db")
    url = os.environ.get(DATABASE_URL_ENV) or url
    db.done()

    board, service_accounts, approval = _board(top.table("board", {}))
    daemon = _daemon(top.table("daemon", {}))
    web = _web(top.table("web", {}))
    mail, alerts = _mail(top, campaign.organisation, base), _alerts(top.table("alerts", {}), board)
    imap = _imap(top, base)
    insights = _insights(top.table("insights", {}))
    media_table = top.table("media", {})

    env = top.table("environment", {})
    env_name = env.text("file", "")
    env.done()

    ch = top.table("channels")
    if not ch.data:
        raise ch.err("", "must define at least one channel")
    channels = {cid: _channel(where, cid, ch.data[cid]) for cid in ch.data}

    key_dates = _key_dates(top.table("key_dates", {}), campaign.start, campaign.end)
    kinds = _kinds(top.table("kinds", {}), channels)
    media = _media(media_table, channels)
    top.done()

    return Config(
        path=p,
        campaign=campaign,
        channels=channels,
        kinds=kinds,
        key_dates=key_dates,
        database_url=resolve_database_url(url, base),
        messages_dir=messages_dir,
        templates_dir=templates_dir,
        env_file=(base / env_name) if env_name else None,
        daemon=daemon,
        web=web,
        media=media,
        board=board,
        approval=approval,
        service_accounts=service_accounts,
        report=report,
        mail=mail,
        imap=imap,
        alerts=alerts,
        insights=insights,
        raw=raw,
    )


def _campaign(c: _Table) -> Campaign:
    """The ``[campaign]`` table: who runs it, its window, its time zone and hashtags."""
    name, theme = c.text("name"), c.text("theme")
    organisation = c.text("organisation")
    parent = c.text("parent_organisation", "")
    start, end = _date(c, "start"), _date(c, "end")
    if end < start:
        raise c.err(
            "end", f"{end} is before the start {start}", "the window end must not precede it"
        )
    tz_name = c.text("timezone", "Asia/Ho_Chi_Minh")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise c.err(
            "timezone", f"{tz_name!r} is not a known time zone", "e.g. Asia/Ho_Chi_Minh"
        ) from None
    tags = c.get("hashtags", [], types=(list,))
    if not all(isinstance(h, str) and h.strip() for h in tags):
        raise c.err("hashtags", "must be a list of non-empty strings")
    c.done()
    return Campaign(name, theme, organisation, parent, start, end, tz, tuple(tags))


def _lines(rp: _Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list of lines of ``[report]``, each stripped."""
    items = rp.get(key, list(default), types=(list,))
    if not all(isinstance(i, str) and i.strip() for i in items):
        raise rp.err(key, "must be a list of non-empty strings", "one line each")
    return tuple(i.strip() for i in items)


def _report(rp: _Table) -> ReportSettings:
    """The ``[report]`` table: the report's letterhead and closing, defaults where omitted."""
    rd = ReportSettings()
    if "basis" in rp.data:
        raise rp.err(
            "basis",
            "is no longer used: the opening is written from the plans",
            'list the plans the report executes instead: plans = ["Kế hoạch số …", …]',
        )
    report = ReportSettings(
        authority=rp.text("authority", rd.authority),
        issuer=rp.text("issuer", rd.issuer),
        symbol=rp.text("symbol", rd.symbol),
        number=rp.text("number", rd.number),
        place=rp.text("place", rd.place),
        plans=_lines(rp, "plans", rd.plans),
        proposals=_lines(rp, "proposals", rd.proposals),
        recipients=_lines(rp, "recipients", rd.recipients),
        signature=_lines(rp, "signature", rd.signature),
        signer=rp.text("signer", rd.signer),
    )
    rp.done()
    return report


def _daemon(dm: _Table) -> DaemonSettings:
    """The ``[daemon]`` table: its timings and attempts, defaults where omitted."""
    defaults = DaemonSettings()
    daemon = DaemonSettings(
        grace=_duration(dm, "grace", defaults.grace),
        tick=_duration(dm, "tick", defaults.tick),
        lease=_duration(dm, "lease", defaults.lease),
        max_attempts=_positive_int(dm, "max_attempts", defaults.max_attempts),
        max_lateness=_duration(dm, "max_lateness", defaults.max_lateness),
        rehearsal_grace=_duration(dm, "rehearsal_grace", defaults.rehearsal_grace),
    )
    dm.done()
    return daemon


INSIGHTS_EVERY_MIN = timedelta(hours=1)  # a platform's figures are not worth reading more often


def _insights(t: _Table) -> InsightsSettings:
    """The ``[insights]`` table: whether the daemon reads the published posts' figures, how
    often each post is read, and for how long after the campaign's end."""
    d = InsightsSettings()
    enabled = t.get("enabled", d.enabled, types=(bool,))
    every = _duration(t, "every", d.every)
    if every < INSIGHTS_EVERY_MIN:
        raise t.err(
            "every",
            f"{every.total_seconds():g}s is too often to ask the platforms for figures",
            "at least '1h'; e.g. '1d'",
        )
    after = _duration(t, "after", d.after)
    t.done()
    return InsightsSettings(enabled, every, after)


def _media(t: _Table, channels: Mapping[str, Channel]) -> MediaSettings:
    """The ``[media]`` table (``MediaSettings``): paths and addresses checked, the host a
    WordPress channel."""
    cover = nfc(t.text("default_cover", "").strip())
    if cover.startswith("http://"):
        raise t.err("default_cover", f"{cover!r} is not https://", "platforms fetch https only")
    if cover and not cover.startswith("https://") and not cover.startswith("media/"):
        raise t.err(
            "default_cover",
            f"{cover!r} is not a file under media/ nor an https:// address",
            "e.g. 'media/thang-hanh-dong.png' (in the messages folder)",
        )
    alt = t.get("default_cover_alt", None, types=(str,))
    base = t.text("public_base_url", "").strip()
    if base:
        problem = url_problem(base)
        if problem:
            raise t.err("public_base_url", *problem)
        base = base.rstrip("/") + "/"
    host = t.text("host", "").strip()
    if host:
        if host not in channels:
            known = ", ".join(c.id for c in channels.values() if c.adapter == "wordpress")
            raise t.err("host", f"{host!r} is not a channel", f"a WordPress channel: {known}")
        if not channels[host].enabled:
            raise t.err(
                "host",
                f"{host!r} is disabled (enabled = false)",
                "enable it, or set [media] public_base_url instead",
            )
        if channels[host].adapter != "wordpress":
            raise t.err(
                "host",
                f"{host!r} is a {channels[host].adapter} channel",
                "a WordPress channel, whose media library publishes the pictures",
            )
    t.done()
    return MediaSettings(cover, None if alt is None else nfc(alt), base, host)


def _alerts(t: _Table, board: Mapping[str, Member]) -> AlertSettings:
    """The ``[alerts]`` table: whether alerts are sent, each kind's recipients (members by name
    or alias, or roles: each with an email) and the timings."""
    d = AlertSettings()
    enabled = t.get("enabled", bool(t.data), types=(bool,))
    to = _alert_routes(t.table("to", {}), board)
    remind_every = _duration(t, "remind_every", d.remind_every)
    digest_at = _time(t, "digest_at", t.get("digest_at", f"{d.digest_at:%H:%M}"))
    stale_after = _duration(t, "stale_after", d.stale_after)
    if stale_after < timedelta(seconds=30):
        raise t.err(
            "stale_after",
            f"{stale_after.total_seconds():g}s is shorter than a heartbeat may take (30 s)",
            "e.g. '10m'",
        )
    token_warning = _duration(t, "token_warning", d.token_warning)
    t.done()
    if enabled and not any(to.values()):
        raise t.err("to", "names nobody to alert", 'e.g. to = { post_failed = ["editor"] }')
    return AlertSettings(enabled, to, remind_every, digest_at, stale_after, token_warning)


def _alert_routes(t: _Table, board: Mapping[str, Member]) -> dict[str, tuple[str, ...]]:
    """``[alerts] to``: alert kind → the addresses of the members it names (a role names each
    of its members who has an email)."""
    example = 'e.g. post_failed = ["editor", "tuan.la"]'
    routes: dict[str, tuple[str, ...]] = {}
    for kind in list(t.data):
        if kind not in ALERT_KINDS:
            raise t.err(kind, "is not a kind of alert", "one of: " + ", ".join(ALERT_KINDS))
        names = t.get(kind, types=(list,))
        addresses: list[str] = []
        for i, name in enumerate(names):
            where = f"{kind}[{i}]"
            if not isinstance(name, str) or not name.strip():
                raise t.err(where, "must be a member's name or alias, or a role", example)
            for address in _alert_recipients(t, where, name.strip(), board):
                if address not in addresses:
                    addresses.append(address)
        routes[kind] = tuple(addresses)
    t.done()
    return routes


def _alert_recipients(t: _Table, where: str, name: str, board: Mapping[str, Member]) -> list[str]:
    """The addresses ``name`` (a role, or a member's name or alias) stands for."""
    fix = 'add email = "…" to their entry in [board] members'
    if name in ROLES:
        members = {m.name: m for m in board.values() if m.role == name}
        if not members:
            raise t.err(where, f"no member of the board is a {name}", "name members or roles")
        addresses = [m.email for m in members.values() if m.email]
        if not addresses:
            raise t.err(where, f"no {name} on the board has an email", fix)
        return addresses  # the role's members who have an address
    member = board.get(member_key(name))
    if member is None:
        known = ", ".join(sorted({m.name for m in board.values()})) or "none"
        raise t.err(
            where,
            f"{name!r} is neither a member of the board nor a role",
            f"roles: {', '.join(ROLES)}; members: {known}",
        )
    if not member.email:
        raise t.err(where, f"{member.name} has no email", fix)
    return [member.email]


def _web(w: _Table) -> WebSettings:
    """The ``[web]`` table: where ``publisher web`` listens, its sessions and cookies."""
    defaults = WebSettings()
    host = w.text("host", defaults.host).strip()
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise w.err("host", f"{host!r} is not a host name or address", "e.g. '127.0.0.1'")
    port = _positive_int(w, "port", defaults.port)
    if port > 65535:
        raise w.err("port", f"must be at most 65535, not {port}", "e.g. 8080")
    idle = _duration(w, "idle", defaults.idle)
    secure = w.get("secure_cookies", defaults.secure_cookies, types=(bool,))
    base_url = w.text("base_url", defaults.base_url).strip().rstrip("/")
    if base_url and not re.match(r"^https?://[^/\s]+(/\S*)?$", base_url):
        raise w.err(
            "base_url", f"{base_url!r} is not an http(s) address", "e.g. 'https://lich.example.vn'"
        )
    w.done()
    return WebSettings(host, port, idle, secure, base_url)


def _key_dates(kd: _Table, start: date, end: date) -> dict[str, KeyDate]:
    """The ``[key_dates]`` table: each key date named and inside the window ``start..end``."""
    key_dates: dict[str, KeyDate] = {}
    for kid in list(kd.data):
        k = kd.table(kid)
        day = _date(k, "date")
        if not start <= day <= end:
            raise k.err("date", f"{day} is outside the campaign window {start}..{end}")
        key_dates[kid] = KeyDate(kid, day, k.text("name"))
        k.done()
    return key_dates


def _kinds(kt: _Table, channels: Mapping[str, Channel]) -> dict[str, KindRules]:
    """The ``[kinds]`` table: every content kind's repeats and default channels."""
    kinds: dict[str, KindRules] = {}
    for kind in list(kt.data):
        if kind not in KINDS:
            raise kt.err(kind, "is not a content kind", "one of: " + ", ".join(KINDS))
    for kind in KINDS:
        k = kt.table(kind, {})
        repeats = _positive_int(k, "repeats", 1, minimum=0)
        default_channels = k.get("channels", [], types=(list,))
        for i, cid in enumerate(default_channels):
            if cid not in channels:
                raise k.err(
                    f"channels[{i}]",
                    f"{cid!r} is not a channel",
                    "channels defined: " + ", ".join(channels),
                )
        kinds[kind] = KindRules(repeats, tuple(default_channels))
        k.done()
    return kinds


# An address of letters, digits and ._%+- around one @, with no dot at either end of a part nor
# two together: what ``Address`` takes as it is (tests/test_mail_config.py checks), found without
# importing the email package (which alone took a tenth of a preview's time, bench/RESULTS.md).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def mail_address_problem(value: str) -> str | None:
    """Why ``value`` is not a plain ASCII mail address (``name@example.gov.vn``), or None."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return None
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    if not value.isascii():
        return f"{value!r} is not an ASCII mail address"
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, HeaderParseError):
        return f"{value!r} is not a mail address"
    if address.addr_spec != value or not address.username or not address.domain:
        return f"{value!r} is not a mail address"
    return None


def _mail_host(host: str) -> tuple[str, str] | None:
    """Why ``host`` is not an SMTP server's name or address (problem, hint), or None."""
    import ipaddress

    if not host or any(c.isspace() or c in "/@" for c in host):
        return f"{host!r} is not a host name or address", "e.g. 'smtp.example.gov.vn'"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not a host name or address", "give the port as port = 587"
    return None


@dataclass(frozen=True)
class _Protocol:
    """What ``_server`` checks a mail protocol's table against, and the words of its errors."""

    name: str  # "SMTP"
    securities: tuple[str, ...]  # the first is the default
    ports: Mapping[str, int]
    carried: str  # what would go in clear: "the mail to {host}"
    host_example: str
    security_hint: str
    use_instead: str  # "'starttls' or 'ssl'"


SMTP_SERVER = _Protocol(
    "SMTP",
    ("starttls", *[x for x in MAIL_SECURITY if x != "starttls"]),
    MAIL_PORTS,
    "the mail to {host}",
    "",
    "one of: starttls (port 587), ssl (port 465), none (localhost only)",
    "'starttls' or 'ssl'",
)
IMAP_SERVER = _Protocol(
    "IMAP",
    ("ssl", *[x for x in IMAP_SECURITY if x != "ssl"]),
    IMAP_PORTS,
    "the replies from {host}",
    "e.g. 'imap.example.gov.vn'",
    "one of: ssl (port 993), starttls (port 143), none (localhost only)",
    "'ssl' or 'starttls'",
)


def _server(t: _Table, proto: _Protocol) -> tuple[str, str, int]:
    """A mail server's ``host``, ``security`` and ``port`` in table ``t``, each checked: no
    password in clear off loopback, a port that exists (its protocol's usual one by default)."""
    host = t.text("host").strip().removeprefix("[").removesuffix("]")
    if problem := _mail_host(host):
        raise t.err("host", problem[0], proto.host_example or problem[1])
    security = t.text("security", proto.securities[0]).strip().lower()
    if security not in proto.securities:
        raise t.err(
            "security", f"{security!r} is not a way to secure {proto.name}", proto.security_hint
        )
    if security == "none" and not is_loopback(host):
        raise t.err(
            "security",
            f"'none' would send the password and {proto.carried.format(host=host)} in clear",
            f"use {proto.use_instead} ('none' is allowed only on localhost, 127.0.0.1 or ::1)",
        )
    default = proto.ports[security]
    port = _positive_int(t, "port", default)
    if port > 65535:
        secure = proto.securities[0]
        raise t.err(
            "port", f"must be at most 65535, not {port}", f"e.g. {proto.ports[secure]} for {secure}"
        )
    return host, security, port


def _mail(top: _Table, organisation: str, base: Path) -> MailSettings | None:
    """The ``[mail]`` table (``MailSettings``; None without one): the server, how to secure it
    (no password ever crosses a network in clear), the login, the sender and the CA bundle,
    each checked."""
    table = top.get("mail", None)
    if table is None:
        return None
    t = _Table(top.path, "mail", table)
    host, security, port = _server(t, SMTP_SERVER)
    username = t.text("username", "").strip()
    password_env = _mail_password(t, username)
    from_address = _address(t, "from_address", required=True)
    from_name = " ".join(nfc(t.text("from_name", organisation)).split())
    reply_to = _address(t, "reply_to", required=False)
    timeout = _duration(t, "timeout", MAIL_TIMEOUT)
    ca_file = _ca_file(t, base)
    t.done()
    return MailSettings(
        host=host,
        from_address=from_address,
        port=port,
        security=security,
        username=username,
        password_env=password_env,
        from_name=from_name,
        reply_to=reply_to,
        timeout=timeout,
        ca_file=ca_file,
    )


def _mail_password(t: _Table, username: str) -> str:
    """``[mail] secrets``: the environment variable holding the password, which a login
    (``username``) needs and only a login may have."""
    sec = t.table("secrets", {})
    for role in list(sec.data):
        if role != "password":
            raise sec.err(role, "is not a secret of [mail]", "allowed: password")
    env_name = sec.text("password", "")
    sec.done()
    example = 'e.g. secrets = { password = "PUBLISHER_SMTP_PASSWORD" }'
    if env_name and not ENV_NAME.match(env_name):
        raise sec.err(
            "password", "must name an environment variable, never hold the secret itself", example
        )
    if username and not env_name:
        raise t.err(
            "secrets",
            f"names no password for the login {username!r}",
            f"name the environment variable that holds it: {example}",
        )
    if env_name and not username:
        raise t.err(
            "username", "is missing: a password needs the login it belongs to", "e.g. 'publisher'"
        )
    return env_name


def _address(t: _Table, name: str, *, required: bool) -> str:
    value = (t.text(name) if required else t.text(name, "")).strip()
    if value and (problem := mail_address_problem(value)):
        raise t.err(name, problem, "write the bare address, e.g. 'publisher@example.gov.vn'")
    return value


def _ca_file(t: _Table, base: Path) -> Path | None:
    """``[mail] ca_file``: a PEM bundle of CA certificates (relative to the config file) that
    loads into a TLS context, or None."""
    name = t.text("ca_file", "").strip()
    if not name:
        return None
    import ssl  # only for a bundle: not on every config's path

    path = base / name
    if not path.is_file():
        raise t.err("ca_file", f"{name!r} is not a file", "a PEM bundle, relative to config.toml")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise t.err(
            "ca_file",
            f"{name!r} is not a PEM bundle of CA certificates ({type(exc).__name__})",
            "the CA's certificate, -----BEGIN CERTIFICATE----- …",
        ) from None
    return path


def smtp_url(url: str, mail: MailSettings | None, organisation: str) -> tuple[MailSettings, str]:
    """``PUBLISHER_SMTP_URL`` over ``[mail]`` (``mail``, or None): the settings with its
    connection (host, port, security, login) and its password. ``smtp://user:pass@host:port``
    (plain, loopback only), ``smtp://…?starttls=1``, ``smtps://…`` (TLS from the first byte);
    ``?from=`` sets the sender. A bad URL is a ConfigError that never quotes the password (nor
    any part of the URL it might be in)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    def err(problem: str, hint: str = _URL_HINT) -> ConfigError:
        return ConfigError(SMTP_URL_ENV, "", problem, hint)

    try:
        parts = urlsplit(url.strip())
        port = parts.port
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise err("is not a URL with a host and a port number") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise err("is not an smtp:// or smtps:// URL")
    host = parts.hostname or ""
    if _mail_host(host) or parts.path not in ("", "/") or parts.fragment:
        raise err("has no host, or more than a host and a port")
    options = dict(query)
    if len(options) != len(query) or set(options) - {"starttls", "from"}:
        raise err("takes only ?starttls=1 and ?from=ADDRESS")
    starttls = options.get("starttls", "0")
    if starttls not in ("0", "1", "true", "false"):
        raise err("?starttls= must be 1 or 0")
    security = "ssl" if scheme == "smtps" else "none"
    if starttls in ("1", "true"):
        if scheme == "smtps":
            raise err("smtps:// is TLS already: ?starttls=1 is for smtp://")
        security = "starttls"
    if security == "none" and not is_loopback(host):
        raise err(
            f"smtp:// without ?starttls=1 would send the password and the mail to {host} in clear",
            "use smtps://… or smtp://…?starttls=1 (plain smtp:// is allowed only on localhost)",
        )
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if password and not username:
        raise err("has a password but no user name")
    if username and not password:
        raise err("has a user name but no password")
    sender = options.get("from", mail.from_address if mail else "").strip()
    if sender and (problem := mail_address_problem(sender)):
        raise err(f"?from=: {problem}", "e.g. ?from=publisher@example.gov.vn")
    base = mail or MailSettings(host, "", from_name=organisation)
    settings = replace(
        base,
        host=host,
        port=port or MAIL_PORTS[security],
        security=security,
        username=username,
        password_env=SMTP_URL_ENV if password else "",
        from_address=sender,
        origin=SMTP_URL_ENV,
    )
    return settings, password


_URL_HINT = (
    "e.g. smtps://user:password@smtp.example.gov.vn:465 or "
    "smtp://user:password@smtp.example.gov.vn:587?starttls=1; percent-encode @ : / ? # % in the "
    "user and password"
)


def _imap(top: _Table, base: Path) -> ImapSettings | None:
    """The ``[imap]`` table (``ImapSettings``; None without one): the mailbox the desks' replies
    arrive in, how to secure the connection (no password in clear across a network), the
    login (always: IMAP has no anonymous mailbox), the folders and how often to read."""
    table = top.get("imap", None)
    if table is None:
        return None
    t = _Table(top.path, "imap", table)
    host, security, port = _server(t, IMAP_SERVER)
    username = t.text("username").strip()
    password_env = _imap_password(t)
    mailbox = _folder(t, "mailbox", "INBOX")
    processed = _folder(t, "processed", "")
    if processed and processed.upper() == mailbox.upper():
        raise t.err("processed", "is the mailbox itself", "name another folder, e.g. 'Processed'")
    settings = ImapSettings(
        host=host,
        username=username,
        port=port,
        security=security,
        password_env=password_env,
        mailbox=mailbox,
        processed=processed,
        poll_every=_duration(t, "poll_every", IMAP_POLL),
        timeout=_duration(t, "timeout", MAIL_TIMEOUT),
        ca_file=_ca_file(t, base),
    )
    t.done()
    return settings


def _imap_password(t: _Table) -> str:
    """``[imap] secrets``: the environment variable holding the login's password."""
    example = 'e.g. secrets = { password = "PUBLISHER_IMAP_PASSWORD" }'
    if "secrets" not in t.data:
        raise t.err("secrets", "names no password for the login", example)
    sec = t.table("secrets")
    for role in list(sec.data):
        if role != "password":
            raise sec.err(role, "is not a secret of [imap]", "allowed: password")
    env_name = sec.text("password")
    sec.done()
    if not ENV_NAME.match(env_name):
        raise sec.err(
            "password", "must name an environment variable, never hold the secret itself", example
        )
    return env_name


def folder_problem(name: str) -> str | None:
    """Why ``name`` cannot be an IMAP folder publisher names (printable ASCII, no quotes or
    wildcards: a folder beyond ASCII is modified UTF-7 on the wire), or None."""
    if not name.strip() or name != name.strip():
        return f"{name!r} is empty or starts or ends with a space"
    if not name.isascii() or not name.isprintable() or any(c in name for c in '"\\*%'):
        return f'{name!r} is not a folder name publisher can use (plain ASCII letters, no " * %)'
    return None


def _folder(t: _Table, name: str, default: str) -> str:
    value = t.text(name, default)
    if value and (problem := folder_problem(value)):
        raise t.err(name, problem, "e.g. 'INBOX' or 'Processed' (as the mail client shows it)")
    return value


def imap_url(url: str, imap: ImapSettings | None) -> tuple[ImapSettings, str]:
    """``PUBLISHER_IMAP_URL`` over ``[imap]`` (``imap``, or None): the settings with its
    connection and mailbox, and its password. ``imaps://user:pass@host:993/INBOX`` (TLS from
    the first byte), ``imap://…?starttls=1``, ``imap://…`` (plain, loopback only);
    ``?processed=FOLDER`` moves handled replies there. A bad URL is a ConfigError that never
    quotes the password (nor any part of the URL it might be in)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    def err(problem: str, hint: str = _IMAP_URL_HINT) -> ConfigError:
        return ConfigError(IMAP_URL_ENV, "", problem, hint)

    try:
        parts = urlsplit(url.strip())
        port = parts.port
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise err("is not a URL with a host and a port number") from None
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise err("is not an imap:// or imaps:// URL")
    host = parts.hostname or ""
    if _mail_host(host) or parts.fragment:
        raise err("has no host, or a #fragment")
    options = dict(query)
    if len(options) != len(query) or set(options) - {"starttls", "processed"}:
        raise err("takes only ?starttls=1 and ?processed=FOLDER")
    security = _imap_url_security(scheme, options.get("starttls", "0"), host, err)
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not username or not password:
        raise err("needs a user name and a password (imaps://user:password@host/INBOX)")
    mailbox = unquote(parts.path.strip("/")) or (imap.mailbox if imap else "INBOX")
    processed = options.get("processed", imap.processed if imap else "")
    for what, name in (("the mailbox (the path)", mailbox), ("?processed=", processed)):
        if name and (problem := folder_problem(name)):
            raise err(f"{what}: {problem}", "e.g. imaps://user:password@host/INBOX")
    base = imap or ImapSettings(host, username)
    settings = replace(
        base,
        host=host,
        port=port or IMAP_PORTS[security],
        security=security,
        username=username,
        password_env=IMAP_URL_ENV,
        mailbox=mailbox,
        processed=processed,
        origin=IMAP_URL_ENV,
    )
    return settings, password


def _imap_url_security(scheme: str, starttls: str, host: str, err: Any) -> str:
    if starttls not in ("0", "1", "true", "false"):
        raise err("?starttls= must be 1 or 0")
    security = "ssl" if scheme == "imaps" else "none"
    if starttls in ("1", "true"):
        if scheme == "imaps":
            raise err("imaps:// is TLS already: ?starttls=1 is for imap://")
        security = "starttls"
    if security == "none" and not is_loopback(host):
        raise err(
            f"imap:// without ?starttls=1 would send the password and the replies from {host} "
            "in clear",
            "use imaps://… or imap://…?starttls=1 (plain imap:// is allowed only on localhost)",
        )
    return security


_IMAP_URL_HINT = (
    "e.g. imaps://user:password@imap.example.gov.vn:993/INBOX or "
    "imap://user:password@imap.example.gov.vn:143/INBOX?starttls=1; percent-encode @ : / ? # % "
    "in the user and password"
)
