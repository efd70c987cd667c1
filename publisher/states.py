"""Post states and which transitions each actor may make. Pure."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    DRAFT = "draft"  # planned, awaiting approval
    APPROVED = "approved"  # a person approved this exact render; due for publishing
    PUBLISHED = "published"
    CANCELLED = "cancelled"


# A post in these states has not gone out and may be re-rendered, re-planned or cancelled.
UNPUBLISHED = frozenset({State.DRAFT, State.APPROVED})
# The planner may move a post only in this state (and only if its time was not set by hand).
MOVABLE = frozenset({State.DRAFT})

LABELS_VI: dict[str, str] = {
    State.DRAFT: "Nháp",
    State.APPROVED: "Đã duyệt",
    State.PUBLISHED: "Đã đăng",
    State.CANCELLED: "Đã hủy",
}

KIND_LABELS_VI = {"slogan": "Khẩu hiệu", "article": "Bài viết"}
