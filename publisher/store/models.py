"""The queue's tables (SQLAlchemy 2): messages, posts and the post history.

Times are aware datetimes in Python and UTC in the database. Rows are never deleted: a removed
message is marked removed and its unpublished posts cancelled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from publisher.states import BlockKind, DueSource, RunMode, State

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E], Generic[E]):
    """A ``str`` enum stored as its value in a plain string column (no database enum type, so
    the schema stays as it was); read back as the enum. An unknown value is refused both ways."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes only; stored as UTC (naive on SQLite, timestamptz elsewhere)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: publisher stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}  # noqa: RUF012 - SQLAlchemy reads it from the class


class MessageRow(Base):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    channels: Mapped[list[str]] = mapped_column(JSON)
    pinned: Mapped[date | None] = mapped_column(Date)
    cover: Mapped[str | None] = mapped_column(Text)  # the cover's src (see pictures)
    # {"cover": {"src", "alt"} | null, "images": [{"src", "alt"}…]}; null: only ``cover`` (0006)
    pictures: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | removed
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    posts: Mapped[list[PostRow]] = relationship(back_populates="message")


class MediaFile(Base):
    """The bytes of a picture a post sends (after any resizing), by their SHA-256: what goes
    out is the bytes approved, never a later copy. (The file in messages/media/ must stay in
    place unchanged all the same: each send re-renders the post to check its approval.)"""

    __tablename__ = "media_file"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class PostRow(Base):
    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("message_id", "channel", "occurrence", name="uq_post_occurrence"),
        Index("ix_post_state_due", "state", "due_at"),
        Index("ix_post_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"))
    channel: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[int] = mapped_column(Integer)
    state: Mapped[State] = mapped_column(EnumText(State, 20))
    due_at: Mapped[datetime | None]
    due_source: Mapped[DueSource] = mapped_column(EnumText(DueSource, 16), default=DueSource.PLAN)
    plan_note: Mapped[str | None] = mapped_column(Text)  # why the planner could not place it
    text: Mapped[str] = mapped_column(Text)  # the main field of the render
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)  # every rendered field
    render_hash: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(255))
    approved_at: Mapped[datetime | None]
    approved_hash: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(36), unique=True)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    remote_url: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    # when the post was mailed to a portal's editorial desk (handed_off; 0009): its deadline for
    # confirmation runs from here (``editorial.confirm.overdue_handoffs``)
    handed_off_at: Mapped[datetime | None]
    cancel_cause: Mapped[str | None] = mapped_column(Text)
    held_from: Mapped[State | None] = mapped_column(EnumText(State, 20))  # where a release returns
    # Dispatch: sends made, claims made (the fencing token), unclear lookups of the last send.
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lookups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None]
    claim_mode: Mapped[str | None] = mapped_column(String(8))  # send | lookup
    sent_at: Mapped[datetime | None]  # when the last send started: lookups search from here
    last_error: Mapped[str | None] = mapped_column(Text)
    # Who last changed its text (the one whose load created or re-rendered it): four eyes
    # refuse them its approval.
    text_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    message: Mapped[MessageRow] = relationship(back_populates="posts")
    events: Mapped[list[PostEvent]] = relationship(back_populates="post", order_by="PostEvent.id")


class PostEvent(Base):
    """Append-only history: every state change, time change and approval of a post."""

    __tablename__ = "post_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    from_state: Mapped[State | None] = mapped_column(EnumText(State, 20))
    to_state: Mapped[State] = mapped_column(EnumText(State, 20))
    cause: Mapped[str] = mapped_column(Text)

    post: Mapped[PostRow] = relationship(back_populates="events")


class ChannelTokenRow(Base):
    """A channel's rotating OAuth tokens (Zalo OA), encrypted at rest; see channels.tokens.

    ``secret`` is a Fernet token (no plaintext token is ever stored); ``seed_hash`` is the
    SHA-256 of the first refresh token the operator configured; the lease serialises refreshes
    across processes.
    """

    __tablename__ = "channel_token"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # "<channel>@<oauth url>"
    secret: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    seed_hash: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ChannelState(Base):
    """Whether a channel may publish: paused by a person, or blocked (throttled, auth) until."""

    __tablename__ = "channel_state"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_by: Mapped[str | None] = mapped_column(String(255))
    blocked_until: Mapped[datetime | None]
    block_kind: Mapped[BlockKind | None] = mapped_column(EnumText(BlockKind, 16))
    block_reason: Mapped[str | None] = mapped_column(Text)
    blocked_since: Mapped[datetime | None]  # when the current block began
    probes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # failed probes
    updated_at: Mapped[datetime]


class DaemonRow(Base):
    """A running (or stopped) daemon's heartbeat, so ``status`` can say whether one is alive."""

    __tablename__ = "daemon"

    worker: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    mode: Mapped[RunMode] = mapped_column(EnumText(RunMode, 16))
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class MetaRow(Base):
    """Small facts about this database, e.g. a rehearsal's clock anchor."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """The append-only audit trail; each entry's hash covers its fields and the previous hash."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32), index=True)
    post_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject: Mapped[str] = mapped_column(Text, default="")  # message key, channel, file …
    content_hash: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last entry's id and hash, so a removed tail is detected and appends queue up."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    # "sha256" (unkeyed, the first release) or "hmac-sha256" (keyed; key_id names the key).
    scheme: Mapped[str] = mapped_column(String(16), default="sha256", server_default="sha256")
    key_id: Mapped[str | None] = mapped_column(String(16))


class Approval(Base):
    """One step of a post's approval (``[board] approval_steps``): who approved which text as
    which step. Only approvals of the post's current text count."""

    __tablename__ = "approval"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"), index=True)
    step: Mapped[str] = mapped_column(String(16))  # a role: editor | approver
    actor: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class UserRow(Base):
    """A board member's account for the web app and the API (``publisher user``)."""

    __tablename__ = "board_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255), unique=True)  # config.member_key(name)
    role: Mapped[str] = mapped_column(String(16))  # drafter | editor | approver
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id; None: cannot log in
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebSession(Base):
    """A logged-in browser: the cookie holds a random token, the database only its hash."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie token
    user_id: Mapped[int] = mapped_column(ForeignKey("board_user.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ApiToken(Base):
    """A member's token for /api/v1 (``publisher user token``); the database keeps its hash."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("board_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A refused login, for the rate limits per account and per address."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_key: Mapped[str] = mapped_column(String(255), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]


class AlertRow(Base):
    """One cause the board was alerted of (``publisher.alerts``), by its stable key (e.g.
    ``post_failed:12``): the key is unique, so however many daemons or watchdogs see a cause,
    it is alerted once. A cause that returns after it was resolved opens the same row again.
    ``facts``: what the alert said (the resolved mail says it again)."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    opened_at: Mapped[datetime]
    last_sent_at: Mapped[datetime]  # the alert or its last reminder
    reminders: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resolved_at: Mapped[datetime | None]
    # How many times it was opened: a guard for the conditional updates that make each mail once.
    episode: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class OutboxRow(Base):
    """A mail waiting to be sent, or sent (``publisher.alerts.sender``): queued in the same
    transaction as what it tells of, claimed by one sender at a time (``claimed_by`` until
    ``claim_until``), retried with backoff while the mail server is down."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    alert_key: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claim_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # refused for good (a 5xx), not retried
    last_error: Mapped[str | None] = mapped_column(Text)


class MetricRow(Base):
    """One dated snapshot of a published post's figures (``publisher.metrics.Reading``), as
    the platform reported them at ``taken_at``: rows are only added, never overwritten, so the
    report can draw reach growing day by day. A figure the platform does not report is NULL;
    ``note`` says why a snapshot has none at all (e.g. the site exposes no statistics)."""

    __tablename__ = "metric"
    __table_args__ = (Index("ix_metric_post_taken", "post_id", "taken_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))
    taken_at: Mapped[datetime]
    views: Mapped[int | None] = mapped_column(Integer)
    reactions: Mapped[int | None] = mapped_column(Integer)
    reactions_by_type: Mapped[dict[str, int] | None] = mapped_column(JSON)
    comments: Mapped[int | None] = mapped_column(Integer)
    shares: Mapped[int | None] = mapped_column(Integer)
    clicks: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, int] | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text, default="", server_default="")
    note: Mapped[str | None] = mapped_column(Text)


class ReportEntryRow(Base):
    """A figure or a passage of text the office enters for the report (§2.4, §2.5, the
    assessment, the proposals), by a stable key; ``source`` is "file" (report.toml, loaded by
    ``publisher load``) or "web" (the web app's form), ``set_by`` who entered it."""

    __tablename__ = "report_entry"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    set_by: Mapped[str | None] = mapped_column(String(255))
    set_at: Mapped[datetime]
