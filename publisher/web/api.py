"""The board's JSON API under /api/v1: a FastAPI sub-application the web app mounts.

Callers authenticate with ``Authorization: Bearer <token>`` (``publisher user token NAME``);
every action is checked with ``config.board.authorize_account`` and done by the editorial
layer as the token's member, so it enters the post's history and the audit trail under their
name. Every error is one JSON line, ``{"error": "...", "field": "..."}``: 401 without a valid
token, 403 for a role that may not, 404 for an unknown post or channel, 409 for a post whose
state refuses the action, 422 for bad input (FastAPI's validation errors included). Error
texts are English (machines read them); a refusal's reason from the editorial layer is passed
through as it is.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name
# aliases local to the functions that define them.

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.exceptions import HTTPException as StarletteHTTPException

from publisher.config import Config
from publisher.config.board import PERMISSIONS, NotAllowed, authorize_account
from publisher.documents import preview
from publisher.documents.pictures import pictures_of
from publisher.editorial import actions
from publisher.editorial import load as editorial_load
from publisher.errors import DatabaseError, InputError, PublisherError
from publisher.states import State
from publisher.store import audit, reach, status
from publisher.store.audit_key import AuditKeyError
from publisher.store.models import MediaFile, PostRow
from publisher.store.users import Account, token_account
from publisher.text import clean, nfc
from publisher.web.context import WebContext

MAX_ID = 2**31 - 1  # ids are 32-bit in every backend: larger ones are no post's
MAX_LIMIT = 500
MAX_BULK = 500
REASON_MAX = 1000
PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="The post's id.", examples=[12])]
Sha256 = Annotated[
    str,
    Path(
        pattern="^[0-9a-f]{64}$",
        description="SHA-256 of the picture's bytes, in lower-case hex.",
        examples=["2c21a4e5df10" + "0" * 52],
    ),
]
OCTETS = "application/octet-stream"
PICTURE_RESPONSE: dict[str, Any] = {
    "description": "The picture's bytes (JPEG or PNG), as the posts that show it send them.",
    "content": {
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    },
}
ChannelId = Annotated[
    str, Path(min_length=1, max_length=64, description="The channel's id.", examples=["facebook"])
]


# -- errors -----------------------------------------------------------------------------------


class ApiError(Exception):
    """A refusal of the API: its status, the one-line error and the field it concerns."""

    def __init__(
        self,
        status_code: int,
        error: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status_code, self.error, self.field, self.headers = status_code, error, field, headers


class ErrorOut(BaseModel):
    error: str = Field(description="What is wrong and how to fix it, on one line.")
    field: str | None = Field(None, description="The field, parameter or header concerned.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "reason: a rejection needs a reason"}]}
    )


def _error_response(
    status_code: int,
    error: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": " ".join(clean(error).split()) or "error"}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status_code, headers=headers)


def _validation_line(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first validation error as one line, and the field it names (``ids.3``, ``from``)."""
    errors = exc.errors()
    if not errors:
        return "the request is invalid", None
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else ""
    name = ".".join(loc[1:]) or where or None
    if where == "body" and first.get("type") == "json_invalid":
        return "the body is not valid JSON", "body"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return (f"{name}: {message}" if name else message), name


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
        return _error_response(exc.status_code, exc.error, exc.field, exc.headers)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
        return _error_response(422, *_validation_line(exc))

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
        if exc.status_code == 400:  # FastAPI's own: a body it could not even decode
            return _error_response(422, "the body is not valid JSON (in UTF-8)", "body")
        return _error_response(exc.status_code, str(exc.detail), None, exc.headers)

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PublisherError)  # noqa: S101 - registered for it only
        if isinstance(exc, NotAllowed):
            return _error_response(403, str(exc))
        if isinstance(exc, (DatabaseError, AuditKeyError)):  # the server's setup, not the input
            return _error_response(503, str(exc))
        return _error_response(422, str(exc))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(PublisherError, refused)


def _described(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _described("No valid API token (a `WWW-Authenticate: Bearer` header says so)."),
    403: _described("The token's member may not do this (the reason names the role needed)."),
    404: _described("No such post or channel."),
    409: _described("The post's state refuses the action (the reason says why)."),
    422: _described("Invalid input: the field and the fix."),
    503: _described("The database is unreachable or busy for too long: try again."),
}


# -- models -----------------------------------------------------------------------------------


class PictureOut(BaseModel):
    """One picture of a post, as its render names it: the cover first, then the images."""

    role: Literal["cover", "image"] = Field(description="`cover`: the post's main picture.")
    alt: str = Field(description="Its alternative text (Vietnamese); empty: decorative.")
    src: str = Field(description="As the content file names it: `media/…` or an https address.")
    name: str | None = Field(description="The file sent (null for an address).")
    mime: str | None = Field(description="`image/jpeg` or `image/png` (null for an address).")
    width: int | None = Field(description="In pixels, as sent (null for an address).")
    height: int | None
    size: int | None = Field(description="Bytes sent (null for an address).")
    sha256: str | None = Field(description="SHA-256 of the bytes sent (null for an address).")
    url: str | None = Field(description="Its public https address, if it has one.")
    media_url: str | None = Field(
        description="Where this API serves the bytes (`GET`, the same token): null for an "
        "address, which the platforms fetch themselves."
    )


class PostSummary(BaseModel):
    id: int
    channel: str
    channel_name: str
    kind: str = Field(examples=["article"])
    message: str = Field(description="The message's key (its content file under messages/).")
    title: str
    state: State
    due_at: str | None = Field(description="When it goes out, UTC ISO 8601 (null: unplanned).")
    due_local: str | None = Field(description="The same moment in the campaign's time zone.")
    text: str = Field(description="The main field of the render, as it will be sent.")
    note: str | None = Field(description="Why the planner could not place it, if it could not.")
    pictures: list[PictureOut] = Field(
        description="Its pictures, cover first (parsed from the field `media`)."
    )


class PostPage(BaseModel):
    total: int = Field(description="Posts matching the filters, on every page.")
    limit: int
    offset: int
    items: list[PostSummary]


class Approval(BaseModel):
    by: str
    at: str | None = Field(description="UTC ISO 8601.")
    at_local: str | None
    hash: str | None = Field(description="SHA-256 of the exact fields approved.")
    matches_current_render: bool


class HistoryItem(BaseModel):
    at: str
    at_local: str
    actor: str
    from_state: str | None
    to_state: str
    cause: str


class AuditItem(BaseModel):
    id: int
    at: str
    at_local: str
    actor: str
    action: str
    subject: str
    detail: str


class FiguresOut(BaseModel):
    """A published post's latest figures read from its platform (``publisher insights`` and the
    daemon read them daily): null where the platform gives none — "không có số liệu", never 0."""

    available: bool = Field(description="False when no figure was read (or the platform has none).")
    taken_at: str | None = Field(description="When they were read, UTC ISO 8601.")
    taken_local: str | None = Field(description="The same moment in the campaign's time zone.")
    note: str | None = Field(
        description="Why the platform keeps no figures for it, if it does not."
    )
    views: int | None
    reactions: int | None
    comments: int | None
    shares: int | None
    clicks: int | None
    reactions_by_type: dict[str, int] | None = None
    label: str = Field(description="The figures in a line, in the interface's language.")


class PostDetail(PostSummary):
    file: str
    occurrence: int
    due_source: str
    fields: dict[str, Any] = Field(description="Every field exactly as it will be sent.")
    render_hash: str
    approval: Approval | None
    remote_id: str | None
    remote_url: str | None
    published_at: str | None
    figures: FiguresOut | None = Field(
        default=None, description="Its latest figures; null unless it is published."
    )
    attempts: int
    last_error: str | None
    history: list[HistoryItem]
    audit: list[AuditItem]


class Done(BaseModel):
    id: int
    state: State


class Rescheduled(Done):
    due_at: str
    due_local: str


class Refusal(BaseModel):
    id: int
    reason: str


class StepOut(BaseModel):
    """One step of a post's approval taken ([board] approval_steps); the post is still a draft
    awaiting ``waiting_for``."""

    id: int
    step: str
    number: int
    of: int
    waiting_for: str


class BulkOut(BaseModel):
    approved: list[int]
    refused: list[Refusal]
    steps: list[StepOut] = []


def _reason(value: str) -> str:
    return nfc(clean(value)).strip()


class BulkApproveIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=MAX_BULK, description="The posts to approve.", examples=[[3, 4]]
    )


class RejectIn(BaseModel):
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX,
        description="Why: recorded in the history and the audit trail.",
        examples=["sai số hiệu văn bản"],
    )

    @field_validator("reason")
    @classmethod
    def _clean(cls, value: str) -> str:
        value = _reason(value)
        if not value:
            raise ValueError("a rejection needs a reason (some words, not only spaces)")
        return value


class ReasonIn(BaseModel):
    reason: str = Field(
        "",
        max_length=REASON_MAX,
        description="Why (optional): recorded in the history and the audit trail.",
        examples=["chờ ý kiến lãnh đạo"],
    )

    @field_validator("reason")
    @classmethod
    def _clean(cls, value: str) -> str:
        return _reason(value)


class RescheduleIn(BaseModel):
    at: str = Field(
        min_length=1,
        max_length=64,
        description="ISO 8601 date and time: with an offset, or else in the campaign's time zone.",
        examples=["2024-06-01T08:00:00+07:00", "2024-06-01 08:00"],
    )
    force: bool = Field(False, description="Allow a time off the channel's slots or over its cap.")


class ChannelOut(BaseModel):
    channel: str
    paused: bool


class MeOut(BaseModel):
    name: str
    role: str
    may: list[str] = Field(description="The actions this account may take.")


# -- helpers ----------------------------------------------------------------------------------


def _utc(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t else None


def _local(t: datetime | None, config: Config) -> str | None:
    return t.astimezone(config.tz).isoformat() if t else None


def _channel_name(config: Config, cid: str) -> str:
    ch = config.channels.get(cid)
    return ch.name if ch is not None else cid


def _pictures(fields: Mapping[str, Any], root: str) -> list[PictureOut]:
    """A post's pictures; ``root`` is the path this API is mounted at (``/api/v1``)."""
    return [
        PictureOut(
            role="cover" if p.role == "cover" else "image",
            alt=p.alt,
            src=p.src,
            name=p.name or None,
            mime=p.mime or None,
            width=p.width or None,
            height=p.height or None,
            size=p.size or None,
            sha256=p.sha256 or None,
            url=p.url or None,
            media_url=f"{root}/media/{p.sha256}" if p.is_file else None,
        )
        for p in pictures_of(fields)
    ]


def _summary(config: Config, i: preview.Item, root: str) -> PostSummary:
    return PostSummary(
        id=i.id,
        channel=i.channel,
        channel_name=_channel_name(config, i.channel),
        kind=i.kind,
        message=i.message,
        title=i.title,
        state=State(i.state),
        due_at=_utc(i.due_at),
        due_local=_local(i.due_at, config),
        text=i.text,
        note=i.note,
        pictures=_pictures(i.fields, root),
    )


def _approval(config: Config, p: PostRow) -> Approval | None:
    if not p.approved_by:
        return None
    current = editorial_load.RenderCheck(config)(p)
    return Approval(
        by=p.approved_by,
        at=_utc(p.approved_at),
        at_local=_local(p.approved_at, config),
        hash=p.approved_hash,
        matches_current_render=p.approved_hash is not None and p.approved_hash == current,
    )


def _detail(ctx: WebContext, p: PostRow, root: str) -> PostDetail:
    """Post ``p`` (its message and events loaded) as ``GET /posts/{id}`` shows it."""
    config = ctx.config
    tz = config.tz
    history = [
        HistoryItem(
            at=e.at.astimezone(UTC).isoformat(),
            at_local=e.at.astimezone(tz).isoformat(),
            actor=e.actor,
            from_state=e.from_state,
            to_state=e.to_state,
            cause=e.cause,
        )
        for e in p.events
    ]
    entries = [
        AuditItem(
            id=a.id,
            at=a.at.astimezone(UTC).isoformat(),
            at_local=a.at.astimezone(tz).isoformat(),
            actor=a.actor,
            action=a.action,
            subject=a.subject,
            detail=a.detail,
        )
        for a in audit.entries(ctx.db, post_id=p.id)
    ]
    item = preview.Item(
        p.id,
        p.due_at,
        p.channel,
        p.message.key,
        p.message.kind,
        p.message.title,
        p.text,
        dict(p.fields),
        p.state,
        p.plan_note,
    )
    return PostDetail(
        **_summary(config, item, root).model_dump(),
        file=p.message.source_path,
        occurrence=p.occurrence,
        due_source=p.due_source,
        fields=dict(p.fields),
        render_hash=p.render_hash,
        approval=_approval(config, p),
        remote_id=p.remote_id,
        remote_url=p.remote_url,
        published_at=_utc(p.published_at),
        figures=_figures(ctx, p),
        attempts=p.attempt,
        last_error=p.last_error,
        history=history,
        audit=entries,
    )


def _figures(ctx: WebContext, p: PostRow) -> FiguresOut | None:
    """Post ``p``'s latest figures (None unless it is published)."""
    if p.state != State.PUBLISHED:
        return None
    tz = ctx.config.tz
    with ctx.db.read() as s:
        snap = reach.figures_of(s, p.id)
    if snap is None:
        return FiguresOut(
            available=False,
            taken_at=None,
            taken_local=None,
            note=None,
            views=None,
            reactions=None,
            comments=None,
            shares=None,
            clicks=None,
            label=reach.summary(None, tz),
        )
    r = snap.reading
    return FiguresOut(
        available=snap.available,
        taken_at=_utc(snap.taken_at),
        taken_local=_local(snap.taken_at, ctx.config),
        note=snap.note,
        views=r.views,
        reactions=r.reactions,
        comments=r.comments,
        shares=r.shares,
        clicks=r.clicks,
        reactions_by_type=dict(r.reactions_by_type) if r.reactions_by_type else None,
        label=reach.summary(snap, tz),
    )


def _load_post(ctx: WebContext, post_id: int) -> PostRow:
    """Post ``post_id`` with its message and history, or 404."""
    query = (
        select(PostRow)
        .options(selectinload(PostRow.message), selectinload(PostRow.events))
        .where(PostRow.id == post_id)
    )
    with ctx.db.read() as s:
        post = s.scalar(query)
    if post is None:
        raise ApiError(404, f"no post has id {post_id}", "id")
    return post


def _state_of(ctx: WebContext, post_id: int) -> State:
    with ctx.db.read() as s:
        state = s.scalar(select(PostRow.state).where(PostRow.id == post_id))
    if state is None:
        raise ApiError(404, f"no post has id {post_id}", "id")
    return State(state)


def _existing(ctx: WebContext, ids: Sequence[int]) -> set[int]:
    with ctx.db.read() as s:
        return set(s.scalars(select(PostRow.id).where(PostRow.id.in_(list(ids)))))


def _moment(ctx: WebContext, text: str) -> datetime:
    """``at`` as an aware datetime: its own offset, or else the campaign's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ctx.config.tz)
        moment.astimezone(UTC)  # a moment out of range on the way to UTC is refused here
    except (ValueError, OverflowError):
        raise ApiError(
            422,
            f"at: {text[:64]!r} is not an ISO 8601 date and time",
            "at",
        ) from None
    return moment


def approve_posts(ctx: WebContext, account: Account, ids: Sequence[int]) -> BulkOut:
    """Approve ``ids`` as ``account``: the one call into ``editorial.load.approve`` (posts that
    do not exist are refused here, the rest approved or refused by the editorial layer)."""
    who = authorize_account(ctx.config, account.name, account.role, "approve")
    known = _existing(ctx, ids)
    wanted = [i for i in dict.fromkeys(ids) if i in known]
    refused = [
        Refusal(id=i, reason=f"no post has id {i}") for i in dict.fromkeys(ids) if i not in known
    ]
    report = editorial_load.ApproveReport()
    if wanted:
        report = editorial_load.approve(
            ctx.db,
            wanted,
            everything=False,
            actor=who,
            now=ctx.now(),
            rules=ctx.config.approval,
            role=account.role,
        )
    refused += [Refusal(id=i, reason=why) for i, why in report.refused]
    steps = [
        StepOut(id=t.post_id, step=t.step, number=t.number, of=t.of, waiting_for=t.waiting_for)
        for t in report.steps
    ]
    return BulkOut(approved=report.approved, refused=refused, steps=steps)


def _one(ctx: WebContext, post_id: int, outcome: Any) -> Done:
    """The answer to an action on one post: its new state, or 409 with the refusal."""
    if outcome.refused:
        raise ApiError(409, f"post {post_id} not changed: {outcome.refused[0][1]}")
    return Done(id=post_id, state=_state_of(ctx, post_id))


# -- routes -----------------------------------------------------------------------------------


def _authentication(ctx: WebContext) -> Callable[..., Account]:
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="token",
        description="An API token from `publisher user token NAME`.",
    )

    def account(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Account:
        found = None
        if credentials is not None:
            found = token_account(ctx.db, credentials.credentials, now=ctx.now())
        if found is None:
            error = "a valid API token is needed: Authorization: Bearer <token>"
            if credentials is not None:
                error = "the API token is unknown, revoked, or its account disabled"
            headers = {"WWW-Authenticate": "Bearer"}
            raise ApiError(401, error, "Authorization", headers)
        return found

    return account


def _reading_routes(app: FastAPI, ctx: WebContext, who: Callable[..., Account]) -> None:
    Me = Annotated[Account, Depends(who)]

    @app.get("/me", response_model=MeOut, responses=ERRORS, summary="The token's account")
    def me(account: Me) -> MeOut:
        may = sorted(PERMISSIONS.get(account.role, frozenset()))
        return MeOut(name=account.name, role=account.role, may=may)

    @app.get("/posts", response_model=PostPage, responses=ERRORS, summary="Posts, filtered")
    def posts(
        request: Request,
        account: Me,
        channel: Annotated[str | None, Query(max_length=64, examples=["facebook"])] = None,
        state: Annotated[State | None, Query()] = None,
        kind: Annotated[Literal["slogan", "article"] | None, Query()] = None,
        start: Annotated[
            date | None, Query(alias="from", description="Local date, inclusive.")
        ] = None,
        end: Annotated[date | None, Query(alias="to", description="Local date, inclusive.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> PostPage:
        config = ctx.config
        if channel is not None and channel not in config.channels:
            choices = ", ".join(config.channels)
            raise ApiError(
                422, f"channel: {channel[:64]!r} is not a channel (one of: {choices})", "channel"
            )
        for name, day in (("from", start), ("to", end)):
            if day is not None and not 1970 <= day.year <= 9000:
                raise ApiError(422, f"{name}: give a date between 1970 and 9000", name)
        if start and end and start > end:
            raise ApiError(422, "from: it is after 'to'", "from")
        total, found = preview.page(  # only the page's posts are read whole
            ctx.db,
            config,
            offset,
            limit,
            channel=channel,
            start=start,
            end=end,
            states=[state] if state else None,
            kind=kind,
            fields=False,  # a summary shows the text, not every field
        )
        root = request.scope.get("root_path", "")
        page = [_summary(config, i, root) for i in found]
        return PostPage(total=total, limit=limit, offset=offset, items=page)

    @app.get("/posts/{post_id}", response_model=PostDetail, responses=ERRORS, summary="One post")
    def post(request: Request, account: Me, post_id: PostId) -> PostDetail:
        return _detail(ctx, _load_post(ctx, post_id), request.scope.get("root_path", ""))

    @app.get("/status", response_model=dict[str, Any], responses=ERRORS, summary="The queue")
    def queue_status(account: Me) -> dict[str, Any]:
        return status.gather(ctx.db, ctx.config, ctx.now())


def _media_route(app: FastAPI, ctx: WebContext, who: Callable[..., Account]) -> None:
    Me = Annotated[Account, Depends(who)]

    @app.get(
        "/media/{sha256}",
        response_class=Response,
        responses={**ERRORS, 200: PICTURE_RESPONSE},
        summary="A picture's bytes",
    )
    def media(account: Me, sha256: Sha256) -> Response:
        """The bytes of a picture a post sends (its `pictures[].media_url`), by their SHA-256:
        they never change, so a client may keep them."""
        with ctx.db.read() as s:
            found = s.get(MediaFile, sha256)
        if found is None:
            raise ApiError(404, f"no picture is stored with sha256 {sha256}", "sha256")
        mime = found.mime if found.mime in ("image/jpeg", "image/png") else OCTETS
        headers = {
            "Cache-Control": "private, no-cache",  # revalidated: the token is checked each time
            "ETag": f'"{sha256}"',
            "X-Content-Type-Options": "nosniff",
        }
        return Response(found.data, media_type=mime, headers=headers)


def _post_actions(app: FastAPI, ctx: WebContext, who: Callable[..., Account]) -> None:
    Me = Annotated[Account, Depends(who)]

    def allowed(account: Account, action: str) -> str:
        return authorize_account(ctx.config, account.name, account.role, action)

    @app.post("/posts/approve", response_model=BulkOut, responses=ERRORS, summary="Approve many")
    def approve_many(account: Me, body: BulkApproveIn) -> BulkOut:
        return approve_posts(ctx, account, body.ids)

    @app.post("/posts/{post_id}/approve", response_model=Done, responses=ERRORS)
    def approve_one(account: Me, post_id: PostId) -> Done:
        _state_of(ctx, post_id)
        out = approve_posts(ctx, account, [post_id])
        return _one(
            ctx, post_id, actions.Outcome(out.approved, [(r.id, r.reason) for r in out.refused])
        )

    @app.post("/posts/{post_id}/reject", response_model=Done, responses=ERRORS)
    def reject(account: Me, post_id: PostId, body: RejectIn) -> Done:
        actor = allowed(account, "reject")
        _state_of(ctx, post_id)
        out = actions.reject(ctx.db, [post_id], actor=actor, now=ctx.now(), reason=body.reason)
        return _one(ctx, post_id, out)

    @app.post("/posts/{post_id}/hold", response_model=Done, responses=ERRORS)
    def hold(account: Me, post_id: PostId, body: Annotated[ReasonIn | None, Body()] = None) -> Done:
        actor = allowed(account, "hold")
        _state_of(ctx, post_id)
        reason = body.reason if body else ""
        return _one(
            ctx, post_id, actions.hold(ctx.db, [post_id], actor=actor, now=ctx.now(), reason=reason)
        )

    @app.post("/posts/{post_id}/release", response_model=Done, responses=ERRORS)
    def release(account: Me, post_id: PostId) -> Done:
        actor = allowed(account, "release")
        _state_of(ctx, post_id)
        return _one(ctx, post_id, actions.release(ctx.db, [post_id], actor=actor, now=ctx.now()))

    @app.post("/posts/{post_id}/cancel", response_model=Done, responses=ERRORS)
    def cancel(
        account: Me, post_id: PostId, body: Annotated[ReasonIn | None, Body()] = None
    ) -> Done:
        actor = allowed(account, "cancel")
        _state_of(ctx, post_id)
        reason = body.reason if body else ""
        out = actions.cancel(ctx.db, [post_id], actor=actor, now=ctx.now(), reason=reason)
        return _one(ctx, post_id, out)


def _reschedule_route(app: FastAPI, ctx: WebContext, who: Callable[..., Account]) -> None:
    Me = Annotated[Account, Depends(who)]

    @app.post("/posts/{post_id}/reschedule", response_model=Rescheduled, responses=ERRORS)
    def reschedule(account: Me, post_id: PostId, body: RescheduleIn) -> Rescheduled:
        actor = authorize_account(ctx.config, account.name, account.role, "reschedule")
        if _state_of(ctx, post_id) not in actions.RESCHEDULABLE:
            raise ApiError(
                409, f"post {post_id} is {_state_of(ctx, post_id)}; it cannot be rescheduled"
            )
        when = _moment(ctx, body.at)
        try:
            state = actions.reschedule(
                ctx.db, ctx.config, post_id, when, actor=actor, now=ctx.now(), force=body.force
            )
        except InputError as exc:
            why = exc.problem.replace("add --force", 'set "force": true')
            raise ApiError(422, why, "at") from None
        return Rescheduled(
            id=post_id,
            state=State(state),
            due_at=when.astimezone(UTC).isoformat(),
            due_local=when.astimezone(ctx.config.tz).isoformat(),
        )


def _channel_routes(app: FastAPI, ctx: WebContext, who: Callable[..., Account]) -> None:
    Me = Annotated[Account, Depends(who)]

    def switch(account: Account, channel: str, paused: bool) -> ChannelOut:
        actor = authorize_account(
            ctx.config, account.name, account.role, "pause" if paused else "resume"
        )
        if channel not in ctx.config.channels:
            raise ApiError(404, f"no channel has id {channel[:64]!r}", "channel_id")
        actions.pause(ctx.db, ctx.config, channel, actor=actor, now=ctx.now(), paused=paused)
        return ChannelOut(channel=channel, paused=paused)

    @app.post("/channels/{channel_id}/pause", response_model=ChannelOut, responses=ERRORS)
    def pause(account: Me, channel_id: ChannelId) -> ChannelOut:
        return switch(account, channel_id, True)

    @app.post("/channels/{channel_id}/resume", response_model=ChannelOut, responses=ERRORS)
    def resume(account: Me, channel_id: ChannelId) -> ChannelOut:
        return switch(account, channel_id, False)


def create_api(ctx: WebContext) -> FastAPI:
    """The API, to be mounted at ``/api/v1`` (its schema then at ``/api/v1/openapi.json``)."""
    app = FastAPI(
        title="publisher API",
        version="1",
        description=__doc__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    _install_error_handlers(app)
    who = _authentication(ctx)
    _reading_routes(app, ctx, who)
    _media_route(app, ctx, who)
    _post_actions(app, ctx, who)
    _reschedule_route(app, ctx, who)
    _channel_routes(app, ctx, who)
    return app
