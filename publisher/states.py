"""Post states, the moves allowed between them, which are final, and their Vietnamese labels;
and every other status publisher stores or decides on (claim modes, outcomes, channel blocks,
where a due time came from, how a daemon runs), as ``str`` enums. Pure.

draft → approved → sending → published        (held ⇄ draft/approved; draft → rejected → draft)
                      ↘ handed_off → published    (mailed to a portal's editorial desk, which
                                                   confirms the live URL: ``editorial.confirm``)
                      ↘ retrying → sending …         (temporary failure, throttling)
                      ↘ unconfirmed → sending(lookup) (outcome unclear: look it up first)
                                    ↘ needs_review    (still unclear: a person must look)
                      ↘ failed                        (refused, or retries exhausted)
approved → missed   (due while nothing could publish it, past the grace window)
any unpublished → cancelled
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    DRAFT = "draft"  # planned, awaiting approval
    APPROVED = "approved"  # a person approved this exact render; due for publishing
    HELD = "held"  # an editor holds it back: nothing goes out until released
    REJECTED = "rejected"  # an approver refused it (with a reason); an edit makes it a draft
    SENDING = "sending"  # claimed by a dispatcher under a lease
    RETRYING = "retrying"  # a temporary failure; next_attempt_at says when
    UNCONFIRMED = "unconfirmed"  # the outcome was unclear; it is looked up before any resend
    NEEDS_REVIEW = "needs_review"  # still unclear after lookups: a person must check
    # mailed to a portal's editorial desk (the email channel; SMTP 250): never resent, it waits
    # for the desk's confirmation of the live URL, which makes it published
    HANDED_OFF = "handed_off"
    PUBLISHED = "published"
    FAILED = "failed"  # refused by the platform or given up, with the reason
    MISSED = "missed"  # fell due while nothing could publish it, past the grace window
    CANCELLED = "cancelled"


S = State
# Every allowed move, as one table: ``store.history.transition`` refuses any other. A move to the
# same state records an event that keeps it (a reschedule).
MOVES: dict[State, frozenset[State]] = {
    # the board: approve, hold, reject, cancel; a reschedule keeps the state
    S.DRAFT: frozenset({S.DRAFT, S.APPROVED, S.HELD, S.REJECTED, S.CANCELLED}),
    # the board as above, or a changed text revokes the approval (to draft); the dispatcher
    # claims it, misses it past the grace window, or sets it waiting for an unreachable channel
    S.APPROVED: frozenset(
        {S.APPROVED, S.DRAFT, S.HELD, S.REJECTED, S.CANCELLED, S.SENDING, S.MISSED, S.RETRYING}
    ),
    # a release returns to where it was held from (an approval only if the text is unchanged)
    S.HELD: frozenset({S.HELD, S.DRAFT, S.APPROVED, S.RETRYING, S.REJECTED, S.CANCELLED}),
    # an edit (or the loader, on a changed file) makes a rejected post a draft again
    S.REJECTED: frozenset({S.REJECTED, S.DRAFT, S.HELD, S.CANCELLED}),
    # what the call's answer decides; a claim released unstarted goes back (approved, retrying,
    # or unconfirmed for a lookup)
    S.SENDING: frozenset(
        {S.PUBLISHED, S.HANDED_OFF, S.RETRYING, S.UNCONFIRMED, S.NEEDS_REVIEW, S.FAILED, S.APPROVED}
    ),
    # only a confirmation of the live URL (by the desk or an editor) takes it further
    # confirmed by the desk with its live address; or withdrawn by an editor (the desk refused
    # it, or will never say): the mail is not unsent, the desk is told by the editor
    S.HANDED_OFF: frozenset({S.PUBLISHED, S.CANCELLED}),
    # claimed again, given up, its approval revoked at the claim, held, cancelled, rescheduled
    S.RETRYING: frozenset({S.SENDING, S.FAILED, S.DRAFT, S.APPROVED, S.HELD, S.CANCELLED}),
    # only a lookup claim (which may resend) takes an unclear outcome further
    S.UNCONFIRMED: frozenset({S.SENDING}),
    S.NEEDS_REVIEW: frozenset(),
    S.PUBLISHED: frozenset(),
    # a reschedule gives a failed or missed post a new time (approved again only if it was)
    S.FAILED: frozenset({S.APPROVED, S.DRAFT, S.CANCELLED}),
    S.MISSED: frozenset({S.APPROVED, S.DRAFT, S.CANCELLED}),
    # the loader revives a post it cancelled when the content wants it again
    S.CANCELLED: frozenset({S.DRAFT}),
}
del S


class IllegalMove(ValueError):
    """A state change the table of MOVES does not allow: a bug, never a user's mistake."""


def check_move(before: State | None, after: State) -> None:
    """Raise IllegalMove unless ``before`` → ``after`` is in MOVES (``None``: a new post, which
    starts as a draft)."""
    allowed = frozenset({State.DRAFT}) if before is None else MOVES[State(before)]
    if State(after) not in allowed:
        raise IllegalMove(f"a post cannot move from {before} to {after}")


class Mode(StrEnum):
    """What a claim does: send the post, or look up whether an unclear send went out."""

    SEND = "send"
    LOOKUP = "lookup"


class Outcome(StrEnum):
    """What the dispatcher decided from a call's answer (logged, and counted in a pass)."""

    PUBLISHED = "published"
    NOT_FOUND_YET = "not-found-yet"  # a lookup found nothing yet: look again later
    UNREACHABLE = "unreachable"  # nothing reached the platform: the channel waits
    THROTTLED = "throttled"
    AUTH = "auth"  # credentials refused: the channel stops until they work
    NEEDS_REVIEW = "needs-review"
    LOOKUP_FAILED = "lookup-failed"
    PERMANENT = "permanent"  # refused by the platform
    AMBIGUOUS = "ambiguous"  # unclear: looked up before any resend
    HANDED_OFF = "handed-off"  # mailed to an editorial desk: awaits its confirmation
    FAILED = "failed"  # retries exhausted
    TEMPORARY = "temporary"  # retried with backoff


class BlockKind(StrEnum):
    """Why a channel may not publish for now (``channel_state.block_kind``)."""

    THROTTLED = "throttled"
    AUTH = "auth"
    OUTAGE = "outage"


class DueSource(StrEnum):
    """Where a post's time came from: the planner, or a person (kept by every re-plan)."""

    PLAN = "plan"
    MANUAL = "manual"


class RunMode(StrEnum):
    """How a daemon runs (``daemon.mode``)."""

    RUN = "run"
    REHEARSE = "rehearse"
    ONCE = "once"


# A post in these states has not gone out and may be re-rendered, re-planned or cancelled.
UNPUBLISHED = frozenset({State.DRAFT, State.APPROVED, State.HELD, State.REJECTED})
# The planner may move a post only in this state (and only if its time was not set by hand).
MOVABLE = frozenset({State.DRAFT})
# Nothing more happens to these without a person.
FINAL = frozenset(
    {State.PUBLISHED, State.FAILED, State.MISSED, State.CANCELLED, State.NEEDS_REVIEW}
)
# The daemon still owes these an outcome.
PENDING = frozenset({State.APPROVED, State.SENDING, State.RETRYING, State.UNCONFIRMED})
# Sent, but not yet known to be published: a person (the desk, an editor) confirms these.
AWAITING = frozenset({State.HANDED_OFF})

LABELS_VI: dict[str, str] = {
    State.DRAFT: "Nháp",
    State.APPROVED: "Đã duyệt",
    State.HELD: "Tạm giữ",
    State.REJECTED: "Bị từ chối",
    State.SENDING: "Đang đăng",
    State.RETRYING: "Chờ thử lại",
    State.UNCONFIRMED: "Chưa xác nhận",
    State.NEEDS_REVIEW: "Cần kiểm tra",
    State.HANDED_OFF: "Đã gửi ban biên tập",
    State.PUBLISHED: "Đã đăng",
    State.FAILED: "Thất bại",
    State.MISSED: "Bị lỡ",
    State.CANCELLED: "Đã hủy",
}

# What a state means for the board, said before the recorded cause: the dispatcher's technical
# words or the platform's own (English), or who acted and why (a person's own words).
MEANING_VI: dict[str, str] = {
    State.HELD: "Bài đang bị tạm giữ, chưa đăng",
    State.REJECTED: "Lãnh đạo không duyệt bài",
    State.RETRYING: "Đăng chưa thành công; hệ thống sẽ tự thử lại",
    State.UNCONFIRMED: "Chưa rõ bài đã lên kênh hay chưa; hệ thống kiểm tra lại trước khi đăng lại",
    State.NEEDS_REVIEW: "Chưa xác định được bài đã lên kênh hay chưa; cần kiểm tra trực tiếp",
    State.HANDED_OFF: "Bài đã được gửi qua thư tới ban biên tập của cổng; "
    "chờ ban biên tập xác nhận địa chỉ bài đã đăng",
    State.FAILED: "Nền tảng từ chối bài hoặc đã hết số lần thử lại",
    State.MISSED: "Đến giờ đăng nhưng hệ thống không đăng được trong thời gian cho phép; "
    "bài không được đăng muộn",
    State.CANCELLED: "Bài đã bị hủy, sẽ không được đăng",
}


def explain_vi(state: str, cause: str | None) -> str | None:
    """Why a post is in ``state``, for the board: the state's meaning, then the recorded cause;
    None for the states that need no explaining (draft, approved, sending, published)."""
    meaning = MEANING_VI.get(state)
    if meaning is None:
        return None
    return f"{meaning}. Chi tiết: {cause}" if cause else meaning


KIND_LABELS_VI = {"slogan": "Khẩu hiệu", "article": "Bài viết"}
