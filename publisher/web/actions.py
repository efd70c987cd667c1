"""What the board's buttons do: thin calls of ``publisher.editorial`` (never re-implemented),
each one short transaction, so the app runs beside the daemon on one SQLite file."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from publisher.config import Config
from publisher.content import MEDIA_DIR, read_message, read_text
from publisher.documents.pictures import pictures_of, thumbnail
from publisher.editorial import actions, intake
from publisher.editorial.confirm import Confirmed
from publisher.editorial.confirm import confirm as confirm_handoff
from publisher.editorial.load import ApproveReport, LoadReport, approve
from publisher.errors import InputError
from publisher.render import FIELDS, Render, Renderer
from publisher.store.models import PostRow
from publisher.text import nfc
from publisher.web.auth import Refused, Viewer
from publisher.web.context import WebContext
from publisher.web.lang import _
from publisher.web.views import bad_field, picture_view, stored_pictures


def approve_posts(ctx: WebContext, viewer: Viewer, ids: list[int]) -> ApproveReport:
    """The one place the app approves: by the board's rules (four eyes, approval steps), the
    member taking the step their account's role reaches."""
    who = viewer.authorize("approve")
    return approve(
        ctx.db,
        ids,
        everything=False,
        actor=who,
        now=ctx.now(),
        rules=ctx.config.approval,
        role=viewer.account.role,
    )


def post_action(
    ctx: WebContext, viewer: Viewer, post_id: int, action: str, reason: str
) -> actions.Outcome:
    """Hold, release, reject (a reason needed) or cancel one post."""
    who = viewer.authorize(action)
    now = ctx.now()
    reason = nfc(reason).strip()
    if action == "reject" and not reason:
        raise bad_field("reason", _("a rejection needs a reason; write why in the box"))
    if len(reason) > 500:
        raise bad_field("reason", _("at most 500 characters"))
    if action == "hold":
        return actions.hold(ctx.db, [post_id], actor=who, now=now, reason=reason)
    if action == "release":
        return actions.release(ctx.db, [post_id], actor=who, now=now)
    if action == "reject":
        return actions.reject(ctx.db, [post_id], actor=who, now=now, reason=reason)
    if action == "cancel":
        return actions.cancel(ctx.db, [post_id], actor=who, now=now, reason=reason)
    raise Refused(404, _("Not found"), _("There is no such action."))


def confirm(ctx: WebContext, viewer: Viewer, post_id: int, url: str) -> Confirmed:
    """An editor confirms a handed-off post with its live address (as ``queue confirm``)."""
    who = viewer.authorize("confirm")
    with ctx.db.write() as s:
        return confirm_handoff(s, ctx.config, post_id, url, by=who, via="web", now=ctx.now())


def parse_local(config: Config, value: str) -> datetime:
    """An ``<input type="datetime-local">`` value (campaign time) as an aware datetime."""
    try:
        return datetime.strptime(value.strip()[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=config.tz)
    except ValueError:
        raise bad_field("when", _("give a date and time like 15/06/2024 09:00")) from None


def reschedule(ctx: WebContext, viewer: Viewer, post_id: int, when: str, force: bool) -> str:
    """Move a post to ``when`` (local); the planner's refusals come back as InputError."""
    who = viewer.authorize("reschedule")
    at = parse_local(ctx.config, when)
    return actions.reschedule(
        ctx.db, ctx.config, post_id, at, actor=who, now=ctx.now(), force=force
    )


def pause(ctx: WebContext, viewer: Viewer, channel: str, paused: bool) -> list[str]:
    who = viewer.authorize("pause" if paused else "resume")
    if channel not in ctx.config.channels:
        raise bad_field("channel", _("no such channel; choose one from the list"))
    return actions.pause(ctx.db, ctx.config, channel, actor=who, now=ctx.now(), paused=paused)


# -- editing a content file ---------------------------------------------------------------------


def message_path(ctx: WebContext, target: str) -> Path:
    """A post id or a message key (``articles/02-quyen-tre-em``) → its content file, inside
    messages/, which must exist; else Refused(404)."""
    config = ctx.config
    if target.isdigit():
        with ctx.db.read() as s:
            post = s.get(PostRow, int(target))
            if post is None:
                raise Refused(404, _("Not found"), _("No post has id %(id)s.", id=target))
            key = post.message.key
    else:
        key = target.removesuffix(".md").removeprefix("messages/")
    try:
        path = intake.inside(config, config.messages_dir / f"{key}.md", "edit")
    except InputError as exc:
        raise Refused(404, _("Not found"), str(exc)) from exc
    if not path.is_file():
        raise Refused(404, _("Not found"), _("%(key)s has no content file.", key=key))
    return path


def shown_path(config: Config, path: Path) -> str:
    """``messages/articles/02-quyen-tre-em.md``: the file as the board knows it."""
    return f"{config.messages_dir.name}/{key_of(config, path)}.md"


def key_of(config: Config, path: Path) -> str:
    return path.resolve().relative_to(config.messages_dir.resolve()).with_suffix("").as_posix()


def read_file(path: Path) -> str:
    return read_text(path, str(path))


@dataclass(frozen=True)
class ChannelRender:
    channel: str
    name: str
    fields: list[tuple[str, str]]
    pictures: list[dict[str, Any]] = field(default_factory=list)  # views.picture_view


def render_pictures(render: Render, stored: set[str]) -> list[dict[str, Any]]:
    """The pictures of an unsaved render as the preview shows them: one the queue keeps
    (``stored``) from the app, which the browser caches; any other file's thumbnail as a
    ``data:`` address (its bytes are in no database yet), made once per picture."""
    prepared = {p.sha256: p for p in render.pictures if p.data}
    out = []
    for p in pictures_of(render.fields):
        if p.sha256 in stored:
            out.append(picture_view(p))
            continue
        file = prepared.get(p.sha256)
        thumb = thumbnail(p.sha256, file.data) if file is not None else None
        view = picture_view(p, thumb)
        if p.is_file and thumb is None:
            view["thumb"] = None
        out.append(view)
    return out


def preview_text(ctx: WebContext, path: Path, text: str) -> list[ChannelRender]:
    """Each enabled channel's render of ``text`` as the content of ``path``, without saving it:
    the checks of ``intake`` and the ``Renderer``; a bad file raises its PublisherError."""
    config = ctx.config
    text = nfc(text)
    intake.validate(config, path, text, shown_path(config, path))
    key = key_of(config, path)
    with tempfile.TemporaryDirectory(prefix="publisher-preview-") as tmp:
        staged = Path(tmp) / f"{key}.md"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(text, encoding="utf-8")
        media = config.messages_dir / MEDIA_DIR
        if media.is_dir() and not (Path(tmp) / MEDIA_DIR).exists():
            (Path(tmp) / MEDIA_DIR).symlink_to(media.resolve(), target_is_directory=True)
        message = read_message(staged, Path(tmp), config)  # pictures: the real media/ linked
    message = replace(message, key=key, path=shown_path(config, path))
    renderer = Renderer(config)
    renders = [
        (cid, renderer.render(message, cid))
        for cid in message.channels
        if config.channels[cid].enabled
    ]
    with ctx.db.read() as s:
        stored = stored_pictures(s, (p.sha256 for _c, r in renders for p in r.pictures if p.data))
    out = []
    for cid, render in renders:
        ch = config.channels[cid]
        names = [spec.name for spec in FIELDS[ch.adapter]]
        shown = [(n, render.fields[n]) for n in names if render.fields.get(n)]
        out.append(ChannelRender(cid, ch.name, shown, render_pictures(render, stored)))
    return out


def save_text(ctx: WebContext, viewer: Viewer, path: Path, text: str) -> LoadReport | None:
    """Write and load the file (``intake.edit``: one transaction, the file put back if it
    fails); None when nothing changed."""
    who = viewer.authorize("edit")
    if len(text) > 1_000_000:
        raise bad_field("text", _("the file is too long"))
    text = nfc(text).replace("\r\n", "\n")
    if text == read_file(path):
        return None
    return intake.edit(ctx.db, ctx.config, path, text, actor=who, now=ctx.now())
