"""Graph API values as the sandbox imitates them: the Page post, times, booleans, cursors, fields.

Pure: no HTTP, no clock (``now`` is a parameter).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
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
            "full_picture": self.picture,
            "from": {"id": self.page, "name": f"Sandbox Page {self.page}"},
        }
        return {f: values[f] for f in fields if values.get(f) is not None}


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
