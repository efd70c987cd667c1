"""``publisher check``: every problem in content, templates, renders and the plan, at once.

Reads files, and the queue (read-only) if there is one to compare approvals with; never the
network.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from publisher import report_entries
from publisher.channels.zalo_quotas import MODERATION_MINUTES, broadcast_problems
from publisher.config import Config
from publisher.config.graph_versions import version_note
from publisher.content import read_messages
from publisher.editorial.load import demands_for, holds_approval, read_report_file, render_all
from publisher.errors import PublisherError
from publisher.i18n import _
from publisher.plan import PostKey, plan, rules_from_config
from publisher.render import Render, Renderer, template_problem, template_where
from publisher.states import State
from publisher.store.db import Database
from publisher.store.models import PostRow


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # approvals today's render no longer matches
    warnings: list[str] = field(default_factory=list)  # worth acting on, but not a problem


def stale_approvals(db: Database, renders: dict[tuple[str, str], Render]) -> list[str]:
    """Standing approvals whose text, rendered now, differs from the text that was approved."""
    out = []
    with db.read() as s:
        rows = s.scalars(
            select(PostRow)
            .options(joinedload(PostRow.message))
            .where(PostRow.state.in_([State.APPROVED, State.HELD]))
            .order_by(PostRow.id)
        )
        for p in rows:
            if not holds_approval(p):
                continue
            render = renders.get((p.message.key, p.channel))
            if render is None or render.hash != p.approved_hash:
                why = "its message is gone" if render is None else "the render changed"
                out.append(
                    f"post {p.id} ({p.message.key} on {p.channel}): approval by {p.approved_by} "
                    f"no longer matches ({why}); 'publisher load' revokes it"
                )
    return out


def _template_syntax(config: Config) -> list[PublisherError]:
    """Compile every template file of every enabled channel, used by content or not."""
    problems: list[PublisherError] = []
    seen: set[str] = set()
    for ch in config.channels.values():
        folder = config.templates_dir / ch.templates
        if not ch.enabled or ch.templates in seen:
            continue
        seen.add(ch.templates)
        env = jinja2.Environment(autoescape=True)  # parsing only: escaping is irrelevant
        for path in sorted(folder.glob("*.j2")):
            try:
                env.parse(path.read_text(encoding="utf-8"))
            except MemoryError:
                raise
            except Exception as exc:  # syntax, encoding, nesting: named as the renderer names it
                problems.append(template_problem(template_where(config, path), exc))
    return problems


def version_warnings(config: Config, today: date) -> list[str]:
    """Enabled Facebook channels whose Graph API version ends before the campaign or soon."""
    out = []
    for cid, ch in config.channels.items():
        if ch.enabled and ch.adapter == "facebook":
            note = version_note(str(ch.setting("api_version", "")), today, config.campaign.end)
            if note is not None:
                out.append(f"{config.path}: channels.{cid}.api_version: {note.text}")
    return out


def alert_warnings(config: Config) -> list[str]:
    """``[alerts]`` on with no mail server to send them (``[mail]`` or PUBLISHER_SMTP_URL)."""
    from publisher.config import SMTP_URL_ENV
    from publisher.config.env import environment

    if not config.alerts.enabled or config.mail is not None:
        return []
    if environment(config).get(SMTP_URL_ENV, "").strip():
        return []
    return [
        f"{config.path}: alerts: alerts are on but no mail server is configured, so none is "
        f"sent (add a [mail] table, or set {SMTP_URL_ENV})"
    ]


def report_warnings(config: Config) -> list[str]:
    """A plan the report cites with places still to fill ("…/KH-STP ngày …/4/2024"): the
    report would print them as they stand."""
    return [
        f"{config.path}: report.plans: {plan!r} has places still to fill (…): write in the "
        "plan's number and date once it is signed"
        for plan in config.report.plans
        if "…" in plan or "..." in plan
    ]


def quota_warnings(config: Config, times: Mapping[PostKey, datetime]) -> list[str]:
    """Zalo channels that broadcast more than their OA's package lets followers receive, or
    broadcast from an OA that is not verified (``zalo_quotas``), by the planned times."""
    out = []
    for cid, ch in config.channels.items():
        if not (ch.enabled and ch.adapter == "zalo" and ch.setting("broadcast")):
            continue
        months = Counter(
            when.astimezone(config.tz).strftime("%Y-%m")
            for (_m, channel, _o), when in times.items()
            if channel == cid
        )
        package, verified = str(ch.setting("package")), bool(ch.setting("verified"))
        for problem in broadcast_problems(package, verified, months):
            out.append(f"{config.path}: channels.{cid}: {problem}")
        if months:
            out.append(
                f"{config.path}: channels.{cid}: Zalo moderates each broadcast for about "
                f"{MODERATION_MINUTES} minutes: followers get it that much after the post's time"
            )
    return out


def mail_problems(config: Config) -> list[str]:
    """Enabled email channels with no mail server to send through (neither ``[mail]`` nor
    ``PUBLISHER_SMTP_URL``)."""
    from publisher.config import SMTP_URL_ENV
    from publisher.config.env import environment

    email = [cid for cid, ch in config.channels.items() if ch.enabled and ch.adapter == "email"]
    if not email or config.mail is not None or environment(config).get(SMTP_URL_ENV, "").strip():
        return []
    return [
        _(
            "{path}: channels.{cid}: is an email channel, and no mail server is configured to "
            "send through (add a [mail] table to config.toml (README: Mail) or set "
            "PUBLISHER_SMTP_URL)"
        ).format(path=config.path, cid=cid)
        for cid in email
    ]


def run_check(config: Config, db: Database | None = None, *, today: date) -> CheckResult:
    """Every problem, plus warnings; ``today`` (the caller's clock) dates the version warnings."""
    result = CheckResult(warnings=version_warnings(config, today))
    messages, content_problems = read_messages(config)
    problems: list[PublisherError] = [*content_problems, *_template_syntax(config)]
    renders, render_problems = render_all(config, messages, Renderer(config))
    problems += [p for p in render_problems if p.line() not in {q.line() for q in problems}]
    demands = demands_for(config, messages)
    entries, entry_problems = read_report_file(config)
    problems += entry_problems
    result.problems = [p.line() for p in problems] + mail_problems(config)
    fitted = plan(rules_from_config(config), demands)
    for u in fitted.unplaced:
        d = u.demand
        result.problems.append(
            f"{d.message} on {d.channel} (#{d.occurrence}) does not fit: {u.reason}"
        )
    result.warnings += quota_warnings(config, fitted.times)
    result.warnings += report_warnings(config)
    if db is not None:
        result.revoked = stale_approvals(db, renders)
    enabled = [cid for cid, ch in config.channels.items() if ch.enabled]
    result.summary = [
        _("config: {path} ({n} enabled channels: {channels})").format(
            path=config.path, n=len(enabled), channels=", ".join(enabled)
        ),
        _("content: {n} messages read, {bad} bad file(s)").format(
            n=len(messages), bad=len(content_problems)
        ),
        _("renders: {n} (message × channel), {bad} problem(s)").format(
            n=len(renders), bad=len(render_problems)
        ),
        _("plan: {fit} of {n} posts fit the calendar").format(
            fit=len(fitted.times), n=len(demands)
        ),
    ]
    if entries is not None:
        result.summary.insert(  # before the plan's line, which ends the summary
            -1,
            _("report: {n} of {all} entries filled in {file}").format(
                n=len(entries), all=len(report_entries.ENTRIES), file=report_entries.FILE
            ),
        )
    return result
