"""The queue as the board and the loader change it: load content, approve posts.

Each operation is one write transaction; the current time and the actor are parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from publisher import report_entries
from publisher.config import Config
from publisher.config.model import ApprovalRules, member_key
from publisher.content import Message, Picture, read_messages, write_atomic
from publisher.errors import ContentError, InputError, Problems, PublisherError
from publisher.plan import Demand, Fixed, PostKey, plan, rules_from_config
from publisher.render import Render, Renderer, fields_hash
from publisher.states import MOVABLE, UNPUBLISHED, DueSource, State
from publisher.store import approvals, audit
from publisher.store import media as media_files
from publisher.store.db import Database, exclusive
from publisher.store.history import created, noted, transition
from publisher.store.models import MessageRow, PostRow
from publisher.store.report_entries import entries as stored_entries
from publisher.store.report_entries import lock as lock_entries
from publisher.store.report_entries import put as put_entry

DEFAULT_RULES = ApprovalRules()  # one step, by an approver; four eyes
LOADER = "load"  # cancel causes written by the loader start with this, so it may revive them


@dataclass
class LoadReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    created: int = 0
    rerendered: int = 0
    moved: int = 0
    cancelled: list[tuple[int, str]] = field(default_factory=list)  # (post id, cause)
    revived: int = 0
    revoked: list[int] = field(default_factory=list)  # approvals revoked: the text changed
    unplaced: list[tuple[int, str]] = field(default_factory=list)  # (post id, reason)
    converted: list[str] = field(default_factory=list)  # files rewritten from TCVN3/VNI
    entries: int = 0  # the report's entries set or cleared from messages/report.toml

    @property
    def changed(self) -> bool:
        return bool(
            self.added
            or self.updated
            or self.removed
            or self.created
            or self.rerendered
            or self.moved
            or self.cancelled
            or self.revived
            or self.revoked
            or self.entries
        )


def render_all(
    config: Config, messages: Sequence[Message], renderer: Renderer
) -> tuple[dict[tuple[str, str], Render], list[PublisherError]]:
    """Render every message for each of its enabled channels; collect every problem."""
    renders: dict[tuple[str, str], Render] = {}
    problems: list[PublisherError] = []
    with renderer.batch():  # each picture file read once, not once a post
        for m in messages:
            for cid in m.channels:
                if not config.channels[cid].enabled:
                    continue
                try:
                    renders[(m.key, cid)] = renderer.render(m, cid)
                except PublisherError as exc:
                    if exc.line() not in {p.line() for p in problems}:
                        problems.append(exc)
    return renders, problems


def demands_for(config: Config, messages: Iterable[Message]) -> list[Demand]:
    """One demand per (message, enabled channel, occurrence), in a stable order."""
    order = list(config.channels)
    # most messages name the same channels and kinds: each set ordered and counted once
    enabled: dict[tuple[str, ...], list[str]] = {}
    repeats: dict[tuple[str, str], int] = {}
    out = []
    for m in sorted(messages, key=lambda m: m.key):
        cids = enabled.get(m.channels)
        if cids is None:
            cids = enabled[m.channels] = [
                cid for cid in sorted(m.channels, key=order.index) if config.channels[cid].enabled
            ]
        for cid in cids:
            times = repeats.get((cid, m.kind))
            if times is None:
                times = repeats[(cid, m.kind)] = config.repeats(cid, m.kind)
            for occ in range(1, times + 1):
                out.append(Demand(m.key, cid, occ, m.kind, m.pinned))
    return out


def read_and_render(
    config: Config, *, convert_legacy: bool = False
) -> tuple[list[Message], dict[tuple[str, str], Render]]:
    """Every message and its renders, or Problems listing every bad file and template."""
    messages, content_problems = read_messages(config, convert_legacy=convert_legacy)
    if content_problems:
        raise Problems(list(content_problems))
    renders, render_problems = render_all(config, messages, Renderer(config))
    if render_problems:
        raise Problems(render_problems)
    return messages, renders


def load(
    db: Database,
    config: Config,
    now: datetime,
    actor: str,
    *,
    action: str = "load",
    convert_legacy: bool = False,
) -> LoadReport:
    """Read messages/ into the queue in one transaction; nothing is written on any problem.

    The files are read while the write lock is held, so two loads (e.g. two editors' edits at
    once) serialise and the later one sees both files: no edit is lost.
    """
    report = LoadReport()
    with db.write() as s:
        exclusive(s, "load")
        messages, renders = read_and_render(config, convert_legacy=convert_legacy)
        values, problems = read_report_file(config)
        if problems:
            raise Problems(list(problems))
        _sync(s, config, messages, renders, now, actor, report, action)
        if values is not None:
            report.entries = _sync_entries(s, values, now, actor)
    for m in messages:  # committed: now the files themselves become Unicode
        if m.converted is not None:
            path = config.messages_dir / f"{m.key}.md"
            try:
                write_atomic(path, m.converted)
            except OSError as exc:
                raise InputError(
                    m.path,
                    f"loaded in Unicode, but the file could not be rewritten: {exc.strerror}",
                    "make it writable and run 'publisher load --convert-legacy' again",
                ) from exc
            report.converted.append(m.path)
    return report


def read_report_file(config: Config) -> tuple[dict[str, str] | None, list[ContentError]]:
    """The office's entries in messages/report.toml (None: there is no such file) and the
    problems found in it."""
    path = config.messages_dir / report_entries.FILE
    if not path.is_file():
        return None, []
    where = f"{config.messages_dir.name}/{report_entries.FILE}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ContentError(where, f"cannot be read: {exc}", "save it as UTF-8 text")]
    return report_entries.parse(text, where)


def _sync_entries(s: Session, values: dict[str, str], now: datetime, actor: str) -> int:
    """Set the file's entries; clear those it set before and no longer has (a value entered
    in the web app's form stays). How many changed."""
    changed = 0
    lock_entries(s)
    for key, value in values.items():
        changed += put_entry(s, key, value, source="file", by=actor, now=now)
    for key, entry in stored_entries(s).items():
        if key not in values and entry.source == "file":
            changed += put_entry(s, key, "", source="file", by=actor, now=now)
    return changed


def _sync(
    s: Session,
    config: Config,
    messages: list[Message],
    renders: dict[tuple[str, str], Render],
    now: datetime,
    actor: str,
    report: LoadReport,
    action: str = "load",
) -> None:
    """Bring the queue in line with the files, phase by phase: the messages, the posts no
    longer wanted, the posts wanted (new, revived, re-rendered), the times set in the files,
    and the plan of the rest."""
    rows = _sync_messages(s, messages, now, actor, report, action)
    by_key = {m.key: m for m in messages}
    demands = demands_for(config, messages)
    posts: dict[PostKey, PostRow] = {
        (row.key, p.channel, p.occurrence): p for row in rows.values() for p in row.posts
    }
    wanted = {d.key for d in demands}
    for key, p in posts.items():
        if key not in wanted and p.state in UNPUBLISHED:
            cause = _unwanted(config, key, rows, by_key)
            p.cancel_cause = cause
            transition(s, p, State.CANCELLED, now, cause, actor, audit_as="cancel")
            report.cancelled.append((p.id, cause))
    for d in demands:
        render = renders[(d.message, d.channel)]
        existing = posts.get(d.key)
        if existing is None:
            posts[d.key] = _new_post(s, d, rows[d.message], render, now, actor)
            report.created += 1
        else:
            _rerender(s, existing, render, now, actor, report)
    media_files.keep(s, (p for r in renders.values() for p in r.pictures), now)
    s.flush()
    _hand_times(s, messages, posts, now, actor, report)
    _replan(s, config, demands, posts, now, actor, report)


def _sync_messages(
    s: Session, messages: list[Message], now: datetime, actor: str, report: LoadReport, action: str
) -> dict[str, MessageRow]:
    """The message rows: added, changed, restored or removed as the files are (audited)."""
    rows = {r.key: r for r in s.scalars(select(MessageRow).options(selectinload(MessageRow.posts)))}
    keys = {m.key for m in messages}
    for m in messages:
        row = rows.get(m.key)
        if row is None:
            row = rows[m.key] = MessageRow(key=m.key, created_at=now, status="active")
            s.add(row)
            report.added.append(m.path)
            change = "added"
        elif (
            row.content_hash != m.content_hash
            or row.status != "active"
            or row.source_path != m.path
        ):
            report.updated.append(m.path)
            change = "changed" if row.status == "active" else "restored"
        else:
            report.unchanged += 1
            continue
        row.kind, row.title, row.summary, row.body = m.kind, m.title, m.summary, m.body
        row.channels, row.pinned, row.draft = list(m.channels), m.pinned, m.draft
        row.cover, row.pictures = m.cover.src if m.cover else None, pictures_json(m)
        row.content_hash, row.source_path, row.status = m.content_hash, m.path, "active"
        row.updated_at = now
        detail = f"{m.path} {change}"
        audit.record(
            s,
            at=now,
            actor=actor,
            action=action,
            subject=m.key,
            content_hash=m.content_hash,
            detail=detail,
        )
    for key, row in rows.items():
        if key not in keys and row.status != "removed":
            row.status, row.updated_at = "removed", now
            report.removed.append(row.source_path)
            detail = f"{row.source_path} removed"
            audit.record(
                s,
                at=now,
                actor=actor,
                action=action,
                subject=key,
                content_hash=row.content_hash,
                detail=detail,
            )
    s.flush()
    return rows


def _unwanted(
    config: Config, key: PostKey, rows: dict[str, MessageRow], by_key: dict[str, Message]
) -> str:
    """Why the content no longer wants the post ``key`` (its cancellation's cause)."""
    mkey, cid, _occurrence = key
    message = by_key.get(mkey)
    if message is None:
        return f"{LOADER}: {rows[mkey].source_path} was removed"
    if cid not in message.channels:
        return f"{LOADER}: {cid} was removed from the message's channels"
    if not config.channels[cid].enabled:
        return f"{LOADER}: channel {cid} is disabled in the config"
    return f"{LOADER}: {cid} repeats a {message.kind} fewer times"


def _new_post(
    s: Session, d: Demand, row: MessageRow, render: Render, now: datetime, actor: str
) -> PostRow:
    p = PostRow(
        message=row,
        channel=d.channel,
        occurrence=d.occurrence,
        state=State.DRAFT,
        due_source=DueSource.PLAN,
        text=render.text,
        fields=dict(render.fields),
        render_hash=render.hash,
        idempotency_key=str(uuid.uuid4()),
        text_by=actor,
        created_at=now,
        updated_at=now,
    )
    s.add(p)
    created(s, p, now, f"{LOADER}: created from {row.source_path}", actor)
    return p


def _rerender(
    s: Session, p: PostRow, render: Render, now: datetime, actor: str, report: LoadReport
) -> None:
    """A wanted post that exists: revived if the loader cancelled it; given the new render if
    it has not gone out, which revokes an approval (whole or of some steps) of a different text
    and makes ``actor`` the one who changed its text last (four eyes)."""
    if p.state == State.CANCELLED and (p.cancel_cause or "").startswith(LOADER):
        p.cancel_cause = None
        transition(s, p, State.DRAFT, now, f"{LOADER}: wanted again by the content", actor)
        report.revived += 1
    if p.state not in UNPUBLISHED or p.render_hash == render.hash:
        return
    p.text, p.fields, p.render_hash, p.updated_at = (
        render.text,
        dict(render.fields),
        render.hash,
        now,
    )
    p.text_by = actor
    report.rerendered += 1
    revoked_steps = approvals.revoke(s, p, actor, now)
    if p.state == State.REJECTED:
        transition(s, p, State.DRAFT, now, f"{LOADER}: edited after its rejection", actor)
    if holds_approval(p) and p.state == State.HELD and p.approved_hash != render.hash:
        p.held_from = State.DRAFT  # its release will need a new approval
        report.revoked.append(p.id)
    if p.state == State.APPROVED and p.approved_hash != render.hash:
        cause = f"{LOADER}: approval revoked, the text changed"
        transition(s, p, State.DRAFT, now, cause, actor, audit_as="revoke")
        report.revoked.append(p.id)
    elif revoked_steps and p.state == State.DRAFT:
        cause = f"{LOADER}: the approval steps taken so far revoked, the text changed"
        noted(s, p, now, cause, actor)
        report.revoked.append(p.id)


def _hand_times(
    s: Session,
    messages: list[Message],
    posts: dict[PostKey, PostRow],
    now: datetime,
    actor: str,
    report: LoadReport,
) -> None:
    """A time set by hand in a file: kept, never planned."""
    for m in messages:
        if m.at is None:
            continue
        for cid in m.channels:
            hand = posts.get((m.key, cid, 1))
            if hand is None or hand.state not in UNPUBLISHED:
                continue
            if hand.due_at != m.at or hand.due_source != DueSource.MANUAL:
                hand.due_at, hand.due_source, hand.plan_note = m.at, DueSource.MANUAL, None
                hand.updated_at = now
                noted(
                    s, hand, now, f"{LOADER}: time set in the file: {m.at:%Y-%m-%d %H:%M %z}", actor
                )
                report.moved += 1


def _replan(
    s: Session,
    config: Config,
    demands: list[Demand],
    posts: dict[PostKey, PostRow],
    now: datetime,
    actor: str,
    report: LoadReport,
) -> None:
    """Plan the drafts whose time no person set, around the posts whose time is fixed."""
    live = [(d, posts[d.key]) for d in demands if posts[d.key].state != State.CANCELLED]
    movable = [(d, p) for d, p in live if p.state in MOVABLE and p.due_source != DueSource.MANUAL]
    moving = {d.key for d, _ in movable}  # a set: "in movable" made large loads quadratic
    fixed = [
        Fixed(d.message, d.channel, d.occurrence, d.kind, p.due_at)
        for d, p in live
        if d.key not in moving and p.due_at is not None
    ]
    preferred = {d.key: p.due_at for d, p in movable if p.due_at is not None}
    result = plan(rules_from_config(config), [d for d, _ in movable], fixed, preferred)
    reasons = {u.demand.key: u.reason for u in result.unplaced}
    for d, p in movable:
        due = result.times.get(d.key)
        if due != p.due_at:
            when = f"planned for {due:%Y-%m-%d %H:%M} UTC" if due else "not planned"
            noted(s, p, now, f"{LOADER}: {when}", actor)
            p.due_at, p.updated_at = due, now
            report.moved += 1
        note = reasons.get(d.key)
        if note != p.plan_note:
            p.plan_note = note
        if note:
            report.unplaced.append((p.id, note))


@dataclass(frozen=True)
class StepTaken:
    """One step of a post's approval recorded, the post still a draft awaiting the next step."""

    post_id: int
    step: str  # the role whose step it was
    number: int  # its place in the order, from 1
    of: int  # how many steps there are
    waiting_for: str  # the role of the next step

    def __str__(self) -> str:
        return (
            f"approved as {self.step} (step {self.number} of {self.of}), "
            f"waiting for the {self.waiting_for} step"
        )


@dataclass
class ApproveReport:
    approved: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (post id, why)
    steps: list[StepTaken] = field(default_factory=list)  # steps recorded, not yet approved


def approve(
    db: Database,
    ids: Sequence[int],
    *,
    everything: bool,
    actor: str,
    now: datetime,
    rules: ApprovalRules = DEFAULT_RULES,
    role: str | None = None,
) -> ApproveReport:
    """Approve drafts: records who, when and the hash of the exact text approved.

    ``rules`` (``config.approval``): with ``four_eyes``, a post whose text ``actor`` changed
    last is refused; with several ``steps``, each call records the first pending step of a
    post (if ``role``, the actor's role, reaches it; None: any step) and the post is approved
    only once every step has approved its current text, each by another member."""
    report = ApproveReport()
    # The posts are locked (PostgreSQL), in id order: two members approving the same post at
    # once take their steps one after the other, the second seeing the first's.
    query = select(PostRow).order_by(PostRow.id).with_for_update()
    with db.write() as s:
        if everything:
            posts = list(s.scalars(query.where(PostRow.state == State.DRAFT)))
        else:
            found = {p.id: p for p in s.scalars(query.where(PostRow.id.in_(ids)))}
            missing = [i for i in ids if i not in found]
            if missing:
                raise InputError(
                    "approve", f"no post has id {missing[0]}", "see 'publisher preview'"
                )
            posts = [found[i] for i in dict.fromkeys(ids)]
        for p in posts:
            if p.state != State.DRAFT:
                report.refused.append((p.id, f"it is {p.state}, only a draft can be approved"))
            elif p.due_at is None:
                report.refused.append((p.id, f"it has no time: {p.plan_note or 'not planned'}"))
            else:
                _approve_one(s, p, rules, actor, role, now, report)
    return report


def _approve_one(
    s: Session,
    p: PostRow,
    rules: ApprovalRules,
    actor: str,
    role: str | None,
    now: datetime,
    report: ApproveReport,
) -> None:
    """Take the next step of draft ``p``'s approval as ``actor``, or say in ``report`` why not."""
    if rules.four_eyes and p.text_by and member_key(p.text_by) == member_key(actor):
        why = f"{p.text_by} changed its text last, so another member must approve it (four eyes)"
        report.refused.append((p.id, why))
        return
    state = approvals.of_post(s, p, rules.steps)
    if state.next_step is None:  # every step stands, yet a draft: the approval was revoked
        approvals.revoke(s, p, actor, now)
        state = approvals.of_post(s, p, rules.steps)
    refusal = _step_refusal(state, actor, role)
    if refusal:
        report.refused.append((p.id, refusal))
        return
    step = state.pending[0]
    n, of = state.number(step), len(rules.steps)
    # the hash of the very bytes stored, which the approver sees and which are sent
    content_hash = fields_hash(p.fields)
    approvals.record(s, p, step, actor, now)
    if len(state.pending) > 1:
        taken = StepTaken(p.id, step, n, of, state.pending[1])
        noted(s, p, now, f"{taken} — by {actor}", actor)
        detail = f"approved as {step} (step {n} of {of}) by {actor}"
        audit.record(
            s,
            at=now,
            actor=actor,
            action="approve_step",
            post_id=p.id,
            subject=p.channel,
            content_hash=content_hash,
            detail=detail,
        )
        report.steps.append(taken)
        return
    p.approved_by, p.approved_at, p.approved_hash = actor, now, content_hash
    cause = f"approved by {actor}" + ("" if of == 1 else f" as {step} (step {n} of {of})")
    detail = "" if of == 1 else f"step {n} of {of}"
    transition(
        s,
        p,
        State.APPROVED,
        now,
        cause,
        actor,
        audit_as="approve",
        detail=detail,
        content_hash=content_hash,
    )
    report.approved.append(p.id)


def _step_refusal(state: approvals.Progress, actor: str, role: str | None) -> str | None:
    """Why ``actor`` (of ``role``) may not take the next step of ``state``, or None."""
    step = state.pending[0]
    of = len(state.steps)
    mine = next((a for a in state.done if member_key(a.actor) == member_key(actor)), None)
    if mine is not None:
        return (
            f"{actor} already approved it as {mine.step} (step {state.number(mine.step)} of "
            f"{of}); another member must take the {step} step"
        )
    if not approvals.reaches(role, step):
        number = state.number(step)
        return f"it waits for the {step} step ({number} of {of}): the {role} role cannot take it"
    return None


def pictures_json(m: Message) -> dict[str, Any] | None:
    """A message's pictures as its row keeps them (None: none)."""
    if m.cover is None and not m.images:
        return None
    return {
        "cover": m.cover.as_json() if m.cover else None,
        "images": [i.as_json() for i in m.images],
    }


def message_of(row: MessageRow) -> Message:
    pictures: dict[str, Any] = row.pictures or {}
    cover: dict[str, str] | None = pictures.get("cover")
    if row.pictures is None and row.cover:  # kept before pictures had alt texts (0006)
        cover = {"src": row.cover, "alt": ""}
    return Message(
        row.key,
        row.source_path,
        row.kind,
        row.title,
        row.summary,
        row.body,
        tuple(row.channels),
        row.pinned,
        Picture(cover["src"], cover["alt"]) if cover else None,
        row.draft,
        images=tuple(Picture(i["src"], i["alt"]) for i in pictures.get("images", [])),
    )


def holds_approval(p: PostRow) -> bool:
    """Whether ``p`` still stands on its approval (approved, or held back from approved): the
    approvals a changed render revokes."""
    return p.state == State.APPROVED or (p.state == State.HELD and p.held_from == State.APPROVED)


class RenderCheck:
    """The hash of what would be sent now, from the stored message and today's templates."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.renderer = Renderer(config)

    def __call__(self, post: PostRow) -> str | None:
        try:
            return self.renderer.render(message_of(post.message), post.channel).hash
        except PublisherError:
            return None
