"""The editorial board's commands: ``publisher queue …`` (list, show, add, edit, hold, approve …).

Thin over ``editorial.actions``, ``editorial.intake`` and ``store.audit``; registered on the
command group.
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.cli.common import (
    actor_option,
    authorize,
    cli,
    config_option,
    date_arg,
    kind_label,
    now,
    open_queue,
    read_config,
    read_queue,
    say,
    say_json,
    state_label,
)
from publisher.cli.main import approve
from publisher.errors import InputError
from publisher.i18n import N_, _
from publisher.states import State

if TYPE_CHECKING:
    from publisher.config import Config

STATE_CHOICES = tuple(s.value for s in State)  # the states a filter may name


@cli.group()
def queue() -> None:
    """The editorial queue: list, show, add, edit, approve, reject, hold, release, cancel,
    reschedule and import posts."""


queue.add_command(approve, "approve")


# What the board's commands on post ids say: the posts done, and each post refused.
DONE = {
    "hold": N_("Held {n} post(s) as {who}: {ids}."),
    "release": N_("Released {n} post(s) as {who}: {ids}."),
    "cancel": N_("Cancelled {n} post(s) as {who}: {ids}."),
    "reject": N_("Rejected {n} post(s) as {who}: {ids}."),
}
REFUSED = {
    "hold": N_("post {id} not held: {why}"),
    "release": N_("post {id} not released: {why}"),
    "cancel": N_("post {id} not cancelled: {why}"),
    "reject": N_("post {id} not rejected: {why}"),
}


def _report(done: list[int], refused: list[tuple[int, str]], action: str, who: str) -> None:
    if done:
        say(_(DONE[action]).format(n=len(done), who=who, ids=", ".join(map(str, done))))
    for pid, why in refused:
        say(_(REFUSED[action]).format(id=pid, why=why), err=True)
    if refused:
        sys.exit(1)


@queue.command("list")
@config_option
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATE_CHOICES),
    help="Only posts in this state (repeatable).",
)
@click.option("--channel", metavar="ID", help="Only this channel.")
@click.option("--kind", type=click.Choice(["slogan", "article"]), help="Only slogans or articles.")
@click.option(
    "--from", "start", callback=date_arg("--from"), metavar="DATE", help="From this local date."
)
@click.option(
    "--to", "end", callback=date_arg("--to"), metavar="DATE", help="Up to this local date."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array (as preview --format json).")
def queue_list(
    config_path: Path,
    states: tuple[str, ...],
    channel: str | None,
    kind: str | None,
    start: date | None,
    end: date | None,
    as_json: bool,
) -> None:
    """List posts, filtered by state, channel, kind and date range."""
    from rich.console import Console

    from publisher.documents import preview as pv

    config = read_config(config_path)
    if channel and channel not in config.channels:
        raise InputError(
            "--channel",
            _("{channel!r} is not a channel").format(channel=channel),
            _("one of: {channels}").format(channels=", ".join(config.channels)),
        )
    db = read_queue(config)
    entries = pv.items(db, config, channel=channel, start=start, end=end, states=states, kind=kind)
    if as_json:
        click.echo(pv.to_json(entries, config), nl=False)
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    pv.render_table(entries, config, console)


def _post_or_fail(db: Any, post_id: int) -> Any:
    from publisher.store.models import PostRow

    with db.read() as s:
        post = s.get(PostRow, post_id)
        if post is None:
            raise InputError(
                "queue",
                _("no post has id {id}").format(id=post_id),
                _("see 'publisher queue list'"),
            )
        post.message  # noqa: B018 - load it before the session closes
        post.events  # noqa: B018
        return post


@queue.command("show")
@config_option
@click.argument("post_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def queue_show(config_path: Path, post_id: int, as_json: bool) -> None:
    """Show one post: its render for its channel, its history and its approval."""
    config = read_config(config_path)
    db = read_queue(config)
    p = _post_or_fail(db, post_id)
    info = _post_info(config, db, p)
    if as_json:
        say_json(info)
        return
    _print_post(config, p, info)


def _approval(config: Config, p: Any) -> dict[str, Any] | None:
    """Who approved post ``p``, when, which text, and whether that is still its render."""
    from publisher.editorial.load import RenderCheck

    current = RenderCheck(config)(p)
    if not p.approved_by:
        return None
    return {
        "by": p.approved_by,
        "at": p.approved_at.astimezone(config.tz).isoformat() if p.approved_at else None,
        "hash": p.approved_hash,
        "matches_current_render": p.approved_hash == current,
    }


def _steps(config: Config, db: Any, p: Any) -> dict[str, Any]:
    """The approval steps the config asks for, those taken for the current text, those
    pending (none once the post is approved)."""
    from publisher.store.approvals import read_progress

    progress = read_progress(db, p.id, config.approval.steps)
    done = progress.done if progress else ()
    awaiting = p.state == "draft" or (p.state == "held" and p.held_from != "approved")
    return {
        "required": list(config.approval.steps),
        "done": [
            {"step": a.step, "by": a.actor, "at": a.at.astimezone(config.tz).isoformat()}
            for a in done
        ],
        "pending": list(progress.pending) if progress and awaiting else [],
    }


def _post_info(config: Config, db: Any, p: Any) -> dict[str, Any]:
    """``queue show``'s record of post ``p``: as printed by --json, times in local time."""
    from publisher.documents.pictures import pictures_of
    from publisher.store import audit

    tz = config.tz
    approval = _approval(config, p)
    return {
        "id": p.id,
        "message": p.message.key,
        "file": p.message.source_path,
        "kind": p.message.kind,
        "channel": p.channel,
        "occurrence": p.occurrence,
        "state": p.state,
        "due_at": p.due_at.astimezone(tz).isoformat() if p.due_at else None,
        "due_source": p.due_source,
        "fields": dict(p.fields),
        "pictures": [picture.as_json() for picture in pictures_of(p.fields)],
        "render_hash": p.render_hash,
        "approval": approval,
        "steps": _steps(config, db, p),
        "remote": {"id": p.remote_id, "url": p.remote_url} if p.remote_id else None,
        "figures": _figures(db, p, tz),
        "attempts": p.attempt,
        "last_error": p.last_error,
        "history": [
            {
                "at": e.at.astimezone(tz).isoformat(),
                "actor": e.actor,
                "from": e.from_state,
                "to": e.to_state,
                "cause": e.cause,
            }
            for e in p.events
        ],
        "audit": [
            {
                "id": a.id,
                "at": a.at.astimezone(tz).isoformat(),
                "actor": a.actor,
                "action": a.action,
                "detail": a.detail,
            }
            for a in audit.entries(db, post_id=p.id)
        ],
    }


def _figures(db: Any, p: Any, tz: Any) -> dict[str, Any] | None:
    """A published post's latest figures (``store.reach.as_dict``; ``available`` false when
    none was read); None for a post not published."""
    from publisher.states import State
    from publisher.store.reach import as_dict, figures_of

    if p.state != State.PUBLISHED:
        return None
    with db.read() as s:
        return as_dict(figures_of(s, p.id), tz)


def _print_post(config: Config, p: Any, info: dict[str, Any]) -> None:
    """``queue show``'s text: a heading, the approval, the outcome, each field, the pictures and
    the history."""
    from publisher.documents.pictures import text_fields

    name = config.channels[p.channel].name if p.channel in config.channels else p.channel
    say(
        _("Post {id} · {channel} · {kind} · {state} · {due}").format(
            id=p.id,
            channel=name,
            kind=kind_label(p.message.kind),
            state=state_label(p.state),
            due=info["due_at"] or _("no time"),
        )
    )
    say(
        _("Message: {key} ({file}), occurrence {occurrence}").format(
            key=p.message.key, file=p.message.source_path, occurrence=p.occurrence
        )
    )
    approval = info["approval"]
    if approval:
        ok = (
            _("matches the current render")
            if approval["matches_current_render"]
            else _("DOES NOT match the current render")
        )
        say(
            _("Approved by {who} at {at} ({match})").format(
                who=approval["by"], at=approval["at"], match=ok
            )
        )
    _print_steps(p, info["steps"])
    if p.remote_id:
        say(_("Published: {id} {url}").format(id=p.remote_id, url=p.remote_url or ""))
    if info["figures"] is not None:
        say(_("Figures: {figures}").format(figures=_figures_line(config, info["figures"])))
    if p.last_error:
        say(_("Last error: {error}").format(error=p.last_error))
    for field_name, value in text_fields(info["fields"]).items():
        if value:
            say(f"--- {field_name} ---", value)
    _print_pictures(info["fields"])
    say(_("--- history ---"))
    for h in info["history"]:
        moved = f"{state_label(h['from']) if h['from'] else '∅'} → {state_label(h['to'])}"
        say(f"{h['at']}  {h['actor']}: {moved}  {h['cause']}")


def _figures_line(config: Config, figures: dict[str, Any]) -> str:
    """``queue show``'s line of figures: each one read, and when; "không có số liệu" if none."""
    from publisher.store.reach import figure_names, no_figures_label, note_text, number

    if not figures["available"]:
        note = f" ({note_text(figures['note'])})" if figures["note"] else ""
        return no_figures_label() + note
    names = figure_names()
    read = [f"{names[k]} {number(figures[k])}" for k in names if figures[k] is not None]
    when = figures["taken_at"][:16].replace("T", " ")
    return _("{figures} (read {when})").format(figures=", ".join(read), when=when)


# A picture's role as ``queue show`` names it (msgids).
PICTURE_ROLES = {"cover": N_("Cover image"), "image": N_("Picture")}


def _print_pictures(fields: dict[str, Any]) -> None:
    """Each picture of a post: its role, file (or address), size and alternative text."""
    from publisher.documents.pictures import pictures_of, size_text
    from publisher.i18n import current_language

    pictures = pictures_of(fields)
    if not pictures:
        return
    decimal = "," if current_language() == "vi" else "."
    say(_("--- pictures ---"))
    for pic in pictures:
        role = PICTURE_ROLES.get(pic.role)
        size = size_text(pic.size, decimal) if pic.size else ""
        about = [pic.name or pic.src, pic.dimensions, size]
        if pic.name and pic.url:
            about.append(pic.url)
        alt = pic.alt or _("no alternative text (a decorative picture)")
        say(f"{_(role) if role else pic.role}: {' · '.join(a for a in about if a)}")
        say(f"  {alt}")


def _print_steps(p: Any, steps: dict[str, Any]) -> None:
    """The approval steps of the current text, and what it waits for (if anything)."""
    from publisher.config.board import role_label

    of = len(steps["required"])
    for a in steps["done"]:
        number = steps["required"].index(a["step"]) + 1
        say(
            _("Approval step {number} of {of} ({step}): {who} at {at}").format(
                number=number, of=of, step=role_label(a["step"]), who=a["by"], at=a["at"]
            )
        )
    if steps["pending"]:
        pending = ", ".join(role_label(r) for r in steps["pending"])
        say(_("Waiting for: {roles} (approval steps of the current text)").format(roles=pending))


def _editor_text(initial: str) -> str:
    import shlex
    import subprocess
    import tempfile

    from publisher.content import read_text

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise InputError("edit", _("no editor: set $EDITOR or give --file FILE"))
    command = shlex.split(editor)
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as fh:
        fh.write(initial)
        name = fh.name
    try:
        code = subprocess.call([*command, name])  # noqa: S603 - the user's own editor
        if code != 0:
            raise InputError(
                "edit",
                _("the editor exited with status {code}; nothing changed").format(code=code),
            )
        return read_text(Path(name), f"the text saved in the editor ({command[0]})")
    finally:
        Path(name).unlink(missing_ok=True)


def _message_path(config: Config, db: Any, target: str) -> Path:
    """A post id or a message key (``articles/02-quyen-tre-em``) → its content file, which must
    be inside messages/ (after following links and ``..``)."""
    from publisher.editorial.intake import inside

    if target.isdigit():
        post = _post_or_fail(db, int(target))
        key = str(post.message.key)
    else:
        key = target.removesuffix(".md").removeprefix("messages/")
    path = inside(config, config.messages_dir / f"{key}.md", "edit")
    if not path.exists():
        raise InputError(
            "edit",
            _("{key!r} has no content file ({path} does not exist)").format(key=key, path=path),
        )
    return path


def print_load(report: Any) -> None:
    if report.revoked:
        ids = ", ".join(map(str, report.revoked))
        say(
            _("Approval revoked, the text changed: posts {ids} need a new approval.").format(
                ids=ids
            )
        )
    for pid, reason in report.unplaced:
        say(
            _("warning: post {id} did not fit the calendar: {reason}").format(
                id=pid, reason=reason
            ),
            err=True,
        )


@queue.command("edit")
@config_option
@actor_option
@click.argument("target", metavar="POST_ID|MESSAGE")
@click.option(
    "--file",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The new content file (front matter and body).",
)
@click.option(
    "--convert-legacy", is_flag=True, help="Convert TCVN3/VNI text pasted from old documents."
)
def queue_edit(
    config_path: Path, actor: str | None, target: str, source: Path | None, convert_legacy: bool
) -> None:
    """Edit a post's message (its content file) from FILE or in $EDITOR, then load it."""
    from publisher.content import read_text
    from publisher.editorial.intake import edit

    config = read_config(config_path)
    who = authorize(config, actor, "edit")
    new_text = read_text(source, str(source)) if source else None  # refused before any change
    db = open_queue(config)
    path = _message_path(config, db, target)
    old = read_text(path, str(path))
    new = new_text if new_text is not None else _editor_text(old)
    new = _legacy(new, str(source or path), convert_legacy)
    if new == old:
        say(_("No change."))
        return
    report = edit(db, config, path, new, actor=who, now=now())
    say(
        _("Edited {file} as {who}: {n} post(s) re-rendered.").format(
            file=path.name, who=who, n=report.rerendered
        )
    )
    print_load(report)


def _legacy(text: str, where: str, convert: bool) -> str:
    from publisher.vietnamese import check_text

    return check_text(text, where, convert=convert)


@queue.command("add")
@config_option
@actor_option
@click.option(
    "--file",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A content file to add (front matter and body).",
)
@click.option("--kind", type=click.Choice(["slogan", "article"]), help="Without --file: the kind.")
@click.option("--title", help="Without --file: the title.")
@click.option("--summary", help="Without --file: the summary (articles).")
@click.option("--text", "body", help="Without --file: the body text (Markdown).")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    metavar="ID",
    help="A channel (repeatable; default: the kind's channels).",
)
@click.option(
    "--at",
    "at",
    metavar="'YYYY-MM-DD HH:MM'",
    help="A time set by hand (local), instead of planning.",
)
@click.option("--pinned", metavar="DATE", help="Pin to a day (a date or a key date id).")
@click.option(
    "--convert-legacy", is_flag=True, help="Convert TCVN3/VNI text pasted from old documents."
)
def queue_add(
    config_path: Path,
    actor: str | None,
    source: Path | None,
    kind: str | None,
    title: str | None,
    summary: str | None,
    body: str | None,
    channels: tuple[str, ...],
    at: str | None,
    pinned: str | None,
    convert_legacy: bool,
) -> None:
    """Add a message (a one-off post with --at, or one the planner places) and load it."""
    from publisher.content import read_text, split_front_matter
    from publisher.editorial.intake import add

    config = read_config(config_path)
    who = authorize(config, actor, "add")
    meta: dict[str, Any]
    if source:
        if any((kind, title, summary, body, channels, at, pinned)):
            raise InputError("add", _("give --file or the content flags, not both"))
        where = str(source)
        meta, text = split_front_matter(
            _legacy(read_text(source, where).lstrip("\ufeff"), where, convert_legacy), where
        )
    else:
        if not kind or not body:
            raise InputError(
                "add",
                _("give --file FILE, or at least --kind and --text"),
                _("e.g. --kind slogan --text '…'"),
            )
        meta = {
            "kind": kind,
            "title": title,
            "summary": summary,
            "channels": list(channels) or None,
            "pinned": pinned,
            "at": at,
            "draft": True,
        }
        meta = {
            k: _legacy(v, f"--{k}", convert_legacy) if isinstance(v, str) else v
            for k, v in meta.items()
        }
        text = _legacy(body, "--text", convert_legacy)
    db = open_queue(config)
    path, report = add(db, config, meta, text, actor=who, now=now())
    say(
        _("Added {file} as {who}: {n} post(s) created.").format(
            file=path.relative_to(config.messages_dir.parent), who=who, n=report.created
        )
    )
    print_load(report)


IDS_HELP = {
    "hold": "Hold posts back: nothing goes out until they are released.",
    "release": "Release held posts to where they were.",
    "cancel": "Cancel posts that have not gone out (they stay in the history).",
    "reject": "Reject posts, with --reason; editing the content makes them drafts again.",
}


def _ids_command(name: str, action: str, needs_reason: bool = False) -> None:
    @queue.command(name, help=IDS_HELP[action])
    @config_option
    @actor_option
    @click.argument("post_ids", nargs=-1, type=int, required=True, metavar="POST_ID...")
    @click.option(
        "--reason",
        default="",
        help="Why (recorded in the history and audit trail)."
        + (" Required." if needs_reason else ""),
    )
    def command(
        config_path: Path, actor: str | None, post_ids: tuple[int, ...], reason: str
    ) -> None:
        from publisher.editorial import actions as editorial

        config = read_config(config_path)
        who = authorize(config, actor, action)
        db = open_queue(config)
        fn = getattr(editorial, action)
        kwargs: dict[str, Any] = {"actor": who, "now": now()}
        if action != "release":
            kwargs["reason"] = reason
        out = fn(db, post_ids, **kwargs)
        _report(out.done, out.refused, action, who)


_ids_command("hold", "hold")
_ids_command("release", "release")
_ids_command("cancel", "cancel")
_ids_command("reject", "reject", needs_reason=True)


@queue.command("confirm")
@config_option
@actor_option
@click.argument("post_id", type=int)
@click.argument("url")
def queue_confirm(config_path: Path, actor: str | None, post_id: int, url: str) -> None:
    """Confirm that the portal's desk published POST (handed off by mail) at URL: the post
    becomes published with that address (again with the same URL: nothing changes)."""
    from publisher.editorial.confirm import confirm

    config = read_config(config_path)
    who = authorize(config, actor, "confirm")
    db = open_queue(config)
    with db.write() as s:
        done = confirm(s, config, post_id, url, by=who, via="cli", now=now())
    if done.changed:
        say(
            _("Post {id} ({channel}) confirmed as published at {url} by {who}.").format(
                id=done.post_id, channel=done.channel, url=done.url, who=who
            )
        )
    else:
        say(
            _("Post {id} was already confirmed at {url}; nothing changed.").format(
                id=done.post_id, url=done.url
            )
        )


@queue.command("reschedule")
@config_option
@actor_option
@click.argument("post_id", type=int)
@click.argument("when", metavar="'YYYY-MM-DD HH:MM'")
@click.option(
    "--force", is_flag=True, help="Allow a time off the channel's slots or over its daily cap."
)
def queue_reschedule(
    config_path: Path, actor: str | None, post_id: int, when: str, force: bool
) -> None:
    """Move a post to WHEN (local time), checked against the window, slots and quiet hours."""
    from publisher.editorial import actions as editorial

    config = read_config(config_path)
    who = authorize(config, actor, "reschedule")
    try:
        moment = datetime.fromisoformat(when.strip().replace("T", " "))
    except ValueError:
        raise InputError(
            "WHEN",
            _("{when!r} is not a date and time").format(when=when),
            _("e.g. '2024-06-15 08:00'"),
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=config.tz)
    db = open_queue(config)
    state = editorial.reschedule(db, config, post_id, moment, actor=who, now=now(), force=force)
    say(
        _("Post {id} rescheduled to {when} by {who} ({state}).").format(
            id=post_id,
            when=f"{moment.astimezone(config.tz):%d/%m/%Y %H:%M}",
            who=who,
            state=state_label(state),
        )
    )
