"""Post states, which are final, and their Vietnamese labels. Pure.

draft → approved → sending → published        (held ⇄ draft/approved; draft → rejected → draft)
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
    PUBLISHED = "published"
    FAILED = "failed"  # refused by the platform or given up, with the reason
    MISSED = "missed"  # fell due while nothing could publish it, past the grace window
    CANCELLED = "cancelled"


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

LABELS_VI: dict[str, str] = {
    State.DRAFT: "Nháp",
    State.APPROVED: "Đã duyệt",
    State.HELD: "Tạm giữ",
    State.REJECTED: "Bị từ chối",
    State.SENDING: "Đang đăng",
    State.RETRYING: "Chờ thử lại",
    State.UNCONFIRMED: "Chưa xác nhận",
    State.NEEDS_REVIEW: "Cần kiểm tra",
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
