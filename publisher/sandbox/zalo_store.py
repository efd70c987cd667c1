"""Zalo OA article values as the sandbox imitates them: the article, its checks and list shape.

Pure: no HTTP, no clock. Limits from §2.3 of platform-apis.md (title, author, description, images
of at most 1 MB) and what §7 adds from practice: a cover is required, and a title of exactly 150
characters is refused. Pictures are URLs Zalo fetches: https ones elsewhere are taken as given (the
sandbox fetches nothing from the network); one on the sandbox itself (which stands in for the
public host in a rehearsal, so it may be http) is judged by what the sandbox serves there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A picture URL → True: the sandbox serves an acceptable picture there; False: it would be refused
# (nothing there, or too big); None: not the sandbox's (an address elsewhere).
Judge = Callable[[str], bool | None]

LIMITS = {"title": 150, "author": 50, "description": 300}  # as documented (lenient)
STRICT_LIMITS = {**LIMITS, "title": 149}  # as Zalo behaves: 150 characters were refused
BLOCK_TYPES = ("text", "image", "video", "product")
SHOW_HIDE = ("show", "hide")


@dataclass
class Article:
    id: str
    token: str  # the process token create answers; verify turns it into the id
    seq: int
    body: dict[str, Any]  # the create request's JSON, as received
    created: datetime
    pending: int = 0  # verifies still answered -214
    published: bool = False
    removed: bool = False

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))

    @property
    def text(self) -> str:
        """The text blocks' contents, joined by newlines, exactly as received."""
        blocks = self.body.get("body")
        return "\n".join(
            str(b.get("content", ""))
            for b in (blocks if isinstance(blocks, list) else [])
            if isinstance(b, dict) and b.get("type") == "text"
        )

    def summary(self, base: str, reach: dict[str, int] | None = None) -> dict[str, Any]:
        """One ``getslice`` entry; dates are UNIX seconds; ``reach``: its figures now."""
        cover = self.body.get("cover")
        got = reach or {}
        return {
            "id": self.id,
            "type": "normal",
            "title": self.title,
            "status": self.body.get("status", "show"),
            "total_view": got.get("views", 0),
            "total_share": got.get("shares", 0),
            "create_date": int(self.created.timestamp()),
            "update_date": int(self.created.timestamp()),
            "thumb": cover.get("photo_url", "") if isinstance(cover, dict) else "",
            "link_view": f"{base}/sandbox#zalo-{self.id}",
        }

    def pictures(self) -> list[dict[str, Any]]:
        """References to what the article shows: its cover, then its image blocks (a block's
        caption standing for the alternative text Zalo has no field for)."""
        refs: list[dict[str, Any]] = []
        cover = self.body.get("cover")
        if isinstance(cover, dict) and cover.get("photo_url"):
            refs.append({"role": "cover", "url": str(cover["photo_url"]), "alt": ""})
        blocks = self.body.get("body")
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "image" and block.get("url"):
                alt = str(block.get("caption") or "")
                refs.append({"role": "image", "url": str(block["url"]), "alt": alt})
        return refs


def check_article(
    data: dict[str, Any],
    strict: bool = True,
    require_cover: bool | None = None,
    judge: Judge = lambda url: None,
) -> tuple[int, str] | None:
    """None if ``data`` is a valid normal article, else (error code, what is wrong).

    ``strict`` (the default) refuses what Zalo refuses in practice; lenient keeps the documented
    limits and the shape checks only. ``require_cover`` defaults to ``strict``. ``judge`` says
    whether a picture URL on the sandbox is acceptable (in both modes: the 1 MB is documented).
    """
    if data.get("type", "normal") != "normal":
        return -201, "type"
    for name, limit in (STRICT_LIMITS if strict else LIMITS).items():
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            return -201, name
        if len(value or "") > limit:
            return -210, f"{name} (max {limit} characters)"
    if not str(data.get("title") or "").strip():
        return -201, "title"
    body = data.get("body")
    if not isinstance(body, list) or not body or not all(isinstance(b, dict) for b in body):
        return -201, "body"
    for block in body:
        if block.get("type") not in BLOCK_TYPES:
            return -201, "body.type"
        if block["type"] == "image" and not _fetchable(block.get("url"), strict, judge):
            return -201, "body.url"
    cover = data.get("cover")
    if cover not in (None, "") and not isinstance(cover, dict):
        return -201, "cover"
    has_cover = isinstance(cover, dict) and bool(cover.get("photo_url") or cover.get("video_id"))
    if (strict if require_cover is None else require_cover) and not has_cover:
        return -201, "cover"
    photo = cover.get("photo_url") if isinstance(cover, dict) else None
    if photo and not _fetchable(photo, strict, judge):
        return -201, "cover"
    if strict:
        return _strict(data, cover if isinstance(cover, dict) else None)
    return None


def _fetchable(url: Any, strict: bool, judge: Judge) -> bool:
    """Whether Zalo could fetch a picture at ``url``: one on the sandbox as ``judge`` says; one
    elsewhere if it is https (strict) or anything at all (lenient)."""
    if not isinstance(url, str) or not url.strip():
        return False
    verdict = judge(url)
    if verdict is not None:
        return verdict
    return url.startswith("https://") or not strict


def _strict(data: dict[str, Any], cover: dict[str, Any] | None) -> tuple[int, str] | None:
    """The values Zalo accepts for what publisher sends: a photo cover has a URL (checked
    above), covers are photos or videos shown or hidden, the article shown or hidden."""
    if cover is not None:
        kind = cover.get("cover_type", "photo")
        if kind == "photo" and not cover.get("photo_url"):
            return -201, "cover"
        if kind not in ("photo", "video") or cover.get("status", "show") not in SHOW_HIDE:
            return -201, "cover"
    for name in ("status", "comment"):
        if data.get(name, "show") not in SHOW_HIDE:
            return -201, name
    return None
