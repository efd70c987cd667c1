"""What an alert mail says: short and factual — what happened, why (the platform's reason,
cleaned), what to do, the link — in the interface's language (Vietnamese unless
``PUBLISHER_LANG=en``). Pure: the config and a cause's facts in, a subject and a text out.

Subjects read ``[publisher] Bài đăng thất bại: Trang Facebook Sở Tư pháp — 05/06 07:30``; a
reminder's says ``Nhắc lại:`` and a resolved cause's ``Đã khắc phục:`` before the same title.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from publisher.config import Config
from publisher.i18n import N_, _

OPEN, REMINDER, RESOLVED = "open", "reminder", "resolved"
PHASES = (OPEN, REMINDER, RESOLVED)

STATE_WORDS = {
    "draft": N_("draft"),
    "rejected": N_("rejected"),
}
BLOCK_WORDS = {
    "auth": N_("its credentials were refused"),
    "outage": N_("it cannot be reached"),
    "throttled": N_("the platform is throttling it"),
}


def web_base(config: Config) -> str:
    """The web app's address for links: ``[web] base_url``, else where it listens."""
    web = config.web
    return web.base_url or f"http://{web.host}:{web.port}"


def post_link(config: Config, post: int) -> str:
    return f"{web_base(config)}/posts/{post}"


def _when(config: Config, iso: str | None, fmt: str = "%d/%m %H:%M") -> str:
    if not iso:
        return "?"
    return datetime.fromisoformat(iso).astimezone(config.tz).strftime(fmt)


def _channel(config: Config, cid: str) -> str:
    channel = config.channels.get(cid)
    return channel.name if channel else cid


def _post(config: Config, f: Mapping[str, Any], title: str, what: str, todo: str) -> Text:
    channel = _channel(config, f["channel"])
    due = _when(config, f.get("due_at"))
    head = title.format(channel=channel, due=due)
    lines = [
        what.format(id=f["post"], title=f["title"], channel=channel, due=due),
        _("Reason: {reason}").format(reason=f.get("reason") or "?"),
        _("What to do: {todo}").format(todo=todo.format(id=f["post"])),
        _("The post: {link}").format(link=post_link(config, f["post"])),
    ]
    return head, lines


Text = tuple[str, list[str]]  # a title (the subject after "[publisher] ") and the body's lines


def post_failed(config: Config, f: Mapping[str, Any]) -> Text:
    return _post(
        config,
        f,
        _("Post failed: {channel} — {due}"),
        _('Post #{id} "{title}" on {channel}, due {due}, was not published.'),
        _(
            "fix what the reason says, then reschedule the post (on its page, or publisher "
            "queue reschedule {id} 'YYYY-MM-DD HH:MM') or cancel it."
        ),
    )


def post_needs_review(config: Config, f: Mapping[str, Any]) -> Text:
    return _post(
        config,
        f,
        _("Post needs checking: {channel} — {due}"),
        _('Whether post #{id} "{title}" went out on {channel} (due {due}) is unclear.'),
        _("look on the channel whether it is there, then settle it on its page."),
    )


def post_missed(config: Config, f: Mapping[str, Any]) -> Text:
    return _post(
        config,
        f,
        _("Post missed: {channel} — {due}"),
        _('Post #{id} "{title}" on {channel} fell due at {due} and could not go out in time.'),
        _(
            "reschedule it if it should still go out (publisher queue reschedule {id} "
            "'YYYY-MM-DD HH:MM'), or cancel it; it is never posted late by itself."
        ),
    )


def channel_blocked(config: Config, f: Mapping[str, Any]) -> Text:
    channel = _channel(config, f["channel"])
    block = f.get("block", "")
    why = _(BLOCK_WORDS[block]) if block in BLOCK_WORDS else block
    todo = {
        "auth": _(
            "renew the channel's credentials (publisher channels check says which); publisher "
            "checks again by itself and resumes."
        ),
        "outage": _(
            "publisher retries by itself; if it lasts, check the platform's status and the network."
        ),
    }.get(
        block,
        _("publisher resumes by itself when the platform allows; if it lasts, post less often."),
    )
    lines = [
        _("{channel} has not been publishing since {since}: {why}.").format(
            channel=channel, since=_when(config, f.get("since")), why=why
        ),
        _("Reason: {reason}").format(reason=f.get("reason") or "?"),
        _("What to do: {todo}").format(todo=todo),
        _("Status: {link}").format(link=f"{web_base(config)}/status"),
    ]
    return _("Channel blocked: {channel}").format(channel=channel), lines


def token_expiring(config: Config, f: Mapping[str, Any]) -> Text:
    channel = _channel(config, f["channel"])
    expires = _when(config, f.get("expires"), "%d/%m/%Y")
    lines = [
        _(
            "The refresh token of {channel} was issued on {minted} and expires around "
            "{expires} (Zalo's refresh tokens live about three months)."
        ).format(
            channel=channel, minted=_when(config, f.get("minted"), "%d/%m/%Y"), expires=expires
        ),
        _(
            "What to do: a refresh renews it (any Zalo post, or publisher channels check); if it "
            "has expired, authorise the Official Account again and put the new refresh token in "
            "{variable}."
        ).format(variable=f.get("variable") or "?"),
        _("Status: {link}").format(link=f"{web_base(config)}/status"),
    ]
    return _("Token expires soon: {channel} — {expires}").format(
        channel=channel, expires=expires
    ), lines


def daemon_stale(config: Config, f: Mapping[str, Any]) -> Text:
    if f.get("last_beat"):
        seen = _("Its last heartbeat was at {beat} ({worker}).").format(
            beat=_when(config, f["last_beat"], "%d/%m/%Y %H:%M"), worker=f.get("worker")
        )
    else:
        seen = _("No daemon has ever run on this queue.")
    lines = [
        _("No publishing daemon is running while {n} post(s) wait to go out.").format(
            n=f.get("waiting", 0)
        ),
        seen,
        _(
            "What to do: start it again (systemctl restart publisher, or publisher run) and "
            "read its log for why it stopped."
        ),
        _("Status: {link}").format(link=f"{web_base(config)}/status"),
    ]
    return _("The publishing daemon is not running"), lines


def digest(config: Config, f: Mapping[str, Any]) -> Text:
    day = datetime.fromisoformat(f["day"]).strftime("%d/%m")
    lines = [
        _("{n} post(s) due in the next 24 hours are not approved yet:").format(n=f["count"]),
        "",
    ]
    for p in f.get("posts", []):
        state = p.get("state", "")
        lines.append(
            _("- {due} {channel}: {title} (#{id}, {state}) {link}").format(
                due=_when(config, p.get("due_at")),
                channel=_channel(config, p["channel"]),
                title=p["title"],
                id=p["post"],
                state=_(STATE_WORDS[state]) if state in STATE_WORDS else state,
                link=post_link(config, p["post"]),
            )
        )
    if f["count"] > len(f.get("posts", [])):
        lines.append(_("… and {n} more.").format(n=f["count"] - len(f.get("posts", []))))
    lines += [
        "",
        _(
            "What to do: approve them (in the web app, or publisher approve), or they will not "
            "go out."
        ),
    ]
    return _("{n} post(s) due in 24 h not approved yet — {day}").format(
        n=f["count"], day=day
    ), lines


def handoff_unconfirmed(config: Config, f: Mapping[str, Any]) -> Text:
    channel = _channel(config, f["channel"])
    lines = [
        _(
            'Post #{id} "{title}" was mailed to the editorial desk of {channel} at {sent}; the '
            "desk has not confirmed it is published (the deadline was {deadline})."
        ).format(
            id=f["post"],
            title=f.get("title") or "?",
            channel=channel,
            sent=_when(config, f.get("handed_off_at")),
            deadline=_when(config, f.get("deadline")),
        ),
        _("The mail's Message-ID: {mid}").format(mid=f.get("message_id") or "?"),
        _(
            "What to do: ask the desk whether it is on the portal; when it is, confirm it with "
            "its address (on its page, or publisher queue confirm {id} URL)."
        ).format(id=f["post"]),
        _("The post: {link}").format(link=post_link(config, f["post"])),
    ]
    return _("Not confirmed by the desk: {channel} — post #{id}").format(
        channel=channel, id=f["post"]
    ), lines


# The texts of each kind (config.ALERT_KINDS); a new kind of cause adds its function here.
KINDS: dict[str, Callable[[Config, Mapping[str, Any]], Text]] = {
    "post_failed": post_failed,
    "post_needs_review": post_needs_review,
    "post_missed": post_missed,
    "channel_blocked": channel_blocked,
    "token_expiring": token_expiring,
    "daemon_stale": daemon_stale,
    "handoff_unconfirmed": handoff_unconfirmed,
    "digest": digest,
}


def compose(
    config: Config, kind: str, phase: str, facts: Mapping[str, Any], at: datetime
) -> tuple[str, str]:
    """The subject and plain text of ``kind``'s mail in ``phase`` (open, reminder, resolved),
    from the cause's ``facts``; ``at``: when (for a resolved cause, when it was found gone)."""
    title, lines = KINDS[kind](config, facts)
    when = at.astimezone(config.tz).strftime("%H:%M %d/%m/%Y")
    if phase == REMINDER:
        subject = _("Reminder: {title}").format(title=title)
        lines = [_("Still so at {time}:").format(time=when), "", *lines]
    elif phase == RESOLVED:
        subject = _("Resolved: {title}").format(title=title)
        lines = [
            _("Resolved at {time}: this is no longer so.").format(time=when),
            "",
            _("What the alert said:"),
            *lines,
        ]
    else:
        subject = title
    footer = _(
        "publisher, {organisation}. You get this mail because [alerts] of config.toml names you "
        "for this kind of alert ({kind})."
    ).format(organisation=config.campaign.organisation, kind=kind)
    return f"[publisher] {subject}", "\n".join([*lines, "", "-- ", footer]) + "\n"
