"""Graph API values as the sandbox imitates them: the Page post, the photo, times, booleans,
cursors, fields.

Pure: no HTTP, no clock (``now`` is a parameter).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class FbPost:
    id: str
    page: str
    seq: int
    message: str
    link: str | None
    created: datetime
    published: bool
    scheduled: datetime | None
    status_type: str
    picture: str | None = None
    deleted: bool = False
    images: list[dict[str, Any]] = field(default_factory=list)  # its photos: id, url, alt, …

    def live(self, now: datetime) -> bool:
        due = self.scheduled is not None and self.scheduled <= now
        return not self.deleted and (self.published or due)

    def to_json(self, fields: tuple[str, ...], base: str, now: datetime) -> dict[str, Any]:
        """The requested ``fields`` that have a value (Graph leaves empty ones out)."""
        values: dict[str, Any] = {
            "id": self.id,
            "message": self.message or None,
            "created_time": fb_time(self.created),
            "updated_time": fb_time(self.created),
            "permalink_url": f"{base}/sandbox#facebook-{self.id}",
            "is_published": self.live(now),
            "scheduled_publish_time": int(self.scheduled.timestamp()) if self.scheduled else None,
            "status_type": self.status_type,
            "link": self.link,
            "full_picture": self.images[0]["url"] if self.images else self.picture,
            "attachments": self.attachments(),
            "from": {"id": self.page, "name": f"Sandbox Page {self.page}"},
        }
        return {f: values[f] for f in fields if values.get(f) is not None}

    def attachments(self) -> dict[str, Any] | None:
        """The ``attachments`` edge of a post with photos: one photo, or an album of them."""
        media = [
            {
                "type": "photo",
                "media": {
                    "image": {"src": i["url"], "width": i.get("width"), "height": i.get("height")}
                },
                "target": {"id": i["id"]},
                "description": i.get("alt") or None,
            }
            for i in self.images
        ]
        if not media:
            return None
        if len(media) == 1:
            return {"data": media}
        return {"data": [{"type": "album", "subattachments": {"data": media}}]}


@dataclass
class FbPhoto:
    """A photo of a Page: published (with a post) or not (to be attached to a feed post)."""

    id: str
    page: str
    url: str  # where the picture is: the sandbox's /media/… for an uploaded file
    caption: str
    alt: str  # alt_text_custom
    created: datetime
    published: bool
    described: dict[str, Any]  # sha256, mime, size, width, height when the sandbox holds it
    post_id: str | None = None
    deleted: bool = False

    def reference(self) -> dict[str, Any]:
        """What a record keeps of it."""
        return {"role": "image", "url": self.url, "alt": self.alt, "id": self.id} | self.described

    def to_json(self, fields: tuple[str, ...]) -> dict[str, Any]:
        width, height = self.described.get("width"), self.described.get("height")
        values: dict[str, Any] = {
            "id": self.id,
            "name": self.caption or None,
            "alt_text_custom": self.alt or None,
            "created_time": fb_time(self.created),
            "updated_time": fb_time(self.created),
            "images": [{"source": self.url, "width": width, "height": height}],
            "width": width,
            "height": height,
            "page_story_id": self.post_id,
            "from": {"id": self.page, "name": f"Sandbox Page {self.page}"},
        }
        return {f: values[f] for f in fields if values.get(f) is not None}


def attached_ids(params: dict[str, Any]) -> list[str | None]:
    """The ``media_fbid`` of each ``attached_media[i]`` (form: a JSON object per index; JSON body: a
    list), in index order; None where one cannot be read."""
    given: list[Any] = []
    listed = params.get("attached_media")
    if isinstance(listed, str):
        try:
            listed = json.loads(listed)
        except ValueError:
            listed = [listed]
    if isinstance(listed, list):
        given += listed
    indexed = [
        (int(m[1]), v)
        for k, v in params.items()
        if (m := re.fullmatch(r"attached_media\[(\d+)\]", k))
    ]
    given += [v for _, v in sorted(indexed, key=lambda kv: kv[0])]
    ids: list[str | None] = []
    for value in given:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        fbid = value.get("media_fbid") if isinstance(value, dict) else None
        ids.append(str(fbid) if isinstance(fbid, str | int) and str(fbid).isdigit() else None)
    return ids


def fb_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_time(value: Any) -> datetime | None:
    """UNIX seconds or ISO 8601 (``+0000`` offsets too); ``None`` if it is neither."""
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC)
        when = datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text))
    except (ValueError, OverflowError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "1": True, "false": False, "0": False}.get(str(value).strip().lower())


def cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def uncursor(text: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return int(raw.removeprefix("seq:"))
    except ValueError:
        return None


def split_fields(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    """``fields=a,b{c},d`` → ("a", "b", "d"); nested selections are ignored."""
    if not value:
        return default
    text = re.sub(r"\{[^{}]*\}", "", str(value))
    return tuple(f.strip() for f in text.split(",") if f.strip())
