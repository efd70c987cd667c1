"""The sandbox's small HTTP vocabulary: a parsed request, a response, a regex router, the context.

No sockets here (the server owns them) and no platform rules (each platform module owns its own).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from publisher.sandbox.faults import FaultPlan
from publisher.sandbox.figures import VirtualClock, figures
from publisher.sandbox.media import MediaStore, Picture
from publisher.sandbox.record import Recorder


class BadBody(ValueError):
    """The request body could not be parsed as its content type says."""


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart body: its name, declared type and bytes."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadBody(f"body is not UTF-8 JSON: {exc}") from exc

    def form(self) -> dict[str, Any]:
        """The body as a mapping, whatever its encoding (JSON object, urlencoded, multipart)."""
        if not self.body.strip():
            return {}
        ctype = self.content_type
        if ctype == "multipart/form-data":
            return _multipart(self.header("content-type") or "", self.body)
        if ctype == "application/x-www-form-urlencoded" or (
            ctype != "application/json" and not self.body.lstrip().startswith((b"{", b"["))
        ):
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadBody("form body is not UTF-8") from exc
            return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
        data = self.json()
        if not isinstance(data, dict):
            raise BadBody("JSON body is not an object")
        return data

    def files(self) -> dict[str, Upload]:
        """The file parts of a multipart body by field name (none for any other body)."""
        if self.content_type != "multipart/form-data" or not self.body.strip():
            return {}
        return {
            name: value
            for name, value in _parts(self.header("content-type") or "", self.body)
            if isinstance(value, Upload)
        }


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart body's fields; files are described (name, type, size), never kept here."""
    out: dict[str, Any] = {}
    for name, value in _parts(content_type, body):
        if isinstance(value, Upload):
            out[name] = {
                "filename": value.filename,
                "content_type": value.content_type,
                "size": len(value.data),
            }
        else:
            out[name] = value
    return out


def _parts(content_type: str, body: bytes) -> list[tuple[str, str | Upload]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise BadBody("multipart body without parts")
    out: list[tuple[str, str | Upload]] = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            out.append((name, data.decode("utf-8", errors="replace")))
        else:
            out.append((name, Upload(filename, part.get_content_type(), data)))
    return out


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering (the "slow" fault)
    after: Callable[[], None] | None = None  # runs after the delay, before the answer is sent

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return cls(status, body, headers=list(headers or []))

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), "text/html; charset=utf-8")

    @classmethod
    def picture(cls, picture: Picture) -> Response:
        """A picture file as a web server sends one (its bytes never change: cache them)."""
        headers = [
            ("ETag", f'"{picture.sha256}"'),
            ("Cache-Control", "public, max-age=31536000, immutable"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        return cls(200, picture.data, picture.mime, headers=headers)


Handler = Callable[[Request, dict[str, str]], Response]


class Router:
    """First matching (method, full-path regex) wins; method ``*`` matches any method."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def dispatch(self, request: Request) -> Response | None:
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(request.path)
            if m and method in ("*", request.method):
                return handler(request, {k: v or "" for k, v in m.groupdict().items()})
        return None


@dataclass
class Context:
    """What every platform module shares: time, the public URL, the record, the fault plan and
    the pictures."""

    now: Callable[[], datetime]
    base_url: Callable[[], str]
    recorder: Recorder
    faults: FaultPlan
    seed: int = 0
    media: MediaStore = field(init=False)
    virtual: VirtualClock = field(default_factory=VirtualClock)  # a rehearsal's clock (figures)
    # (platform, remote id) → virtual birth, for good: the items restored from an earlier sandbox
    born: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.media = MediaStore(self.base_url)

    def birth(self, platform: str, remote_id: str, created: datetime) -> datetime:
        """The virtual instant an item's figures count from: its restored birth, else its
        creation (sandbox time) on the virtual clock."""
        fixed = self.born.get((platform, remote_id))
        return fixed if fixed is not None else self.virtual.at(created)

    def figures(self, platform: str, remote_id: str, created: datetime) -> dict[str, int]:
        """An item's reach figures now (``sandbox.figures``), by its age on the virtual clock."""
        age = self.virtual.at(self.now()) - self.birth(platform, remote_id, created)
        return figures(self.seed, platform, remote_id, age)

    def record(self, where: tuple[str, str, str], title: str, text: str, **more: Any) -> None:
        """Record an accepted item: ``where`` = (platform, channel, remote id); ``more``: fields,
        kind, media (references to its pictures: role, url, alt, …; never bytes). Written and
        fsynced now, before the answer is sent."""
        platform, channel, remote_id = where
        self.recorder.append(
            platform=platform,
            channel=channel,
            remote_id=remote_id,
            time=self.now(),
            title=title,
            text=text,
            fields=dict(more.get("fields") or {}),
            kind=str(more.get("kind") or "item"),
            media=list(more.get("media") or []),
        )
