"""The sandbox's record of accepted items: one JSON line each, fsynced before the answer is sent.

Owns the record file and the in-memory list; must never hold a token, a password or a file's bytes
(a record names its pictures: role, url, alt, sha256, …).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SECRET_FIELDS = frozenset({"access_token", "appsecret_proof", "password", "secret_key"})
BYTES_FIELDS = frozenset({"data_base64"})  # a picture's bytes in a JSON body: kept as a length


def scrub(value: Any) -> Any:
    """``value`` without bytes: a file's bytes (or base64) become their length."""
    if isinstance(value, bytes | bytearray):
        return {"bytes": len(value)}
    if isinstance(value, dict):
        return {
            k: (f"<{len(str(v))} characters>" if k in BYTES_FIELDS and v else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


class Recorder:
    """Appends records to ``path`` (JSON Lines, UTF-8, text exactly as received) and keeps them."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def append(
        self,
        *,
        platform: str,
        channel: str,
        remote_id: str,
        time: datetime,
        text: str,
        title: str,
        fields: dict[str, Any],
        kind: str,
        media: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        item = {
            "platform": platform,
            "channel": channel,
            "remote_id": remote_id,
            "time": time.astimezone(UTC).isoformat(timespec="seconds"),
            "kind": kind,
            "title": title,
            "text": text,
            "fields": scrub({k: v for k, v in fields.items() if k not in SECRET_FIELDS}),
            "media": scrub(list(media or [])),
        }
        line = json.dumps(item, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    fh.write(line.encode("utf-8"))
                    fh.flush()
                    os.fsync(fh.fileno())  # a crash right after the answer must not lose it
            self._items.append(json.loads(line))
        return item

    def records(self) -> list[dict[str, Any]]:
        """This sandbox's records, oldest first (a copy)."""
        with self._lock:
            return [dict(item) for item in self._items]

    def clear(self) -> None:
        """Forget the in-memory records (the file keeps its lines)."""
        with self._lock:
            self._items.clear()
