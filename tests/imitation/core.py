"""The imitation's plumbing: requests and answers, the fault plan, the record and the counters.

Nothing here knows a platform; the platform modules build on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

PLATFORMS = ("facebook", "zalo", "wordpress", "webhook")


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- requests and answers ------------------------------------------------------------------


@dataclass
class Request:
    """One HTTP request as the imitation sees it. ``path`` is relative to the platform's root
    (``/v21.0/123/feed`` for Facebook); ``full_path`` is what the client asked for."""

    method: str
    path: str
    full_path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError):
            return None

    def form(self) -> dict[str, Any]:
        """Body parameters: urlencoded, multipart (text parts) or a JSON object."""
        kind = self.content_type
        if kind == "application/x-www-form-urlencoded":
            text = self.body.decode("utf-8", errors="replace")
            return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        if kind == "multipart/form-data":
            head = f"Content-Type: {self.header('Content-Type')}\r\n\r\n".encode()
            msg = BytesParser(policy=HTTP).parsebytes(head + self.body)
            out: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if isinstance(name, str):
                    payload = part.get_payload(decode=True)
                    if part.get_filename():
                        out[name] = payload or b""
                    else:
                        out[name] = (payload or b"").decode("utf-8", errors="replace")
            return out
        body = self.json()
        return body if isinstance(body, dict) else {}

    def host_base(self) -> str:
        """``http://host:port`` as the client addressed us (for links and paging URLs)."""
        return f"http://{self.header('Host') or '127.0.0.1'}"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    created: bool = False  # this answer reports an item just made (ambiguous faults apply)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return Response(
        status, body, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
    )


def text_response(status: int, text: str, kind: str = "text/html") -> Response:
    return Response(status, text.encode("utf-8"), {"Content-Type": f"{kind}; charset=UTF-8"})


# -- faults ----------------------------------------------------------------------------------

RATE_KINDS = ("5xx", "ambiguous", "throttle", "token-expiry", "slow")
FLAG_KINDS = ("bad-credentials", "duplicate-506", "policy-368")
GRAMMAR = (
    "comma-separated [target:]kind[=value]; target facebook|zalo|wordpress|webhook|* "
    "(default *); kinds 5xx=RATE, ambiguous=RATE, throttle=RATE[:HOLD_S], "
    "token-expiry=RATE (zalo), slow=RATE:SECONDS, processing=SECONDS (zalo), "
    "bad-credentials, duplicate-506 (facebook), policy-368 (facebook), outage=SECONDS@AFTER_S"
)


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    rate: float
    arg: float | None = None


@dataclass
class FaultPlan:
    """What goes wrong, per platform (``*`` for every one). Parsed from ``GRAMMAR``."""

    spec: str = ""
    faults: dict[tuple[str, str], Fault] = field(default_factory=dict)
    flags: set[tuple[str, str]] = field(default_factory=set)
    processing: dict[str, float] = field(default_factory=dict)
    outages: list[tuple[float, float]] = field(default_factory=list)  # (after, seconds)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        plan = cls(spec=spec or "")
        for raw in (spec or "").split(","):
            item = raw.strip()
            if not item:
                continue
            head, _, value = item.partition("=")
            target, _, kind = head.rpartition(":")
            target = target or "*"
            if target not in (*PLATFORMS, "*"):
                raise FaultError(f"{item!r}: unknown target {target!r}; {GRAMMAR}")
            if kind in FLAG_KINDS:
                plan.flags.add((target, kind))
            elif kind == "outage":
                seconds, _, after = value.partition("@")
                plan.outages.append((_number(item, after or "0"), _number(item, seconds)))
            elif kind == "processing":
                plan.processing[target] = _number(item, value)
            elif kind in RATE_KINDS:
                rate, _, arg = value.partition(":")
                r = _number(item, rate)
                if not 0.0 <= r <= 1.0:
                    raise FaultError(f"{item!r}: a rate is between 0 and 1")
                plan.faults[(target, kind)] = Fault(r, _number(item, arg) if arg else None)
            else:
                raise FaultError(f"{item!r}: unknown kind {kind!r}; {GRAMMAR}")
        return plan

    def fault(self, platform: str, kind: str) -> Fault | None:
        return self.faults.get((platform, kind)) or self.faults.get(("*", kind))

    def flag(self, platform: str, kind: str) -> bool:
        return (platform, kind) in self.flags or ("*", kind) in self.flags


def _number(item: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultError(f"{item!r}: {text!r} is not a number; {GRAMMAR}") from None
    if not math.isfinite(value) or value < 0:
        raise FaultError(f"{item!r}: {text!r} must be a finite number ≥ 0")
    return value


class Dice:
    """Seeded, reproducible decisions: the n-th time the same request (method, path, body) meets
    the same fault, it gets the same verdict under the same seed, whatever else runs meanwhile."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def roll(self, kind: str, platform: str, req: Request) -> float:
        digest = hashlib.sha256(req.body).hexdigest()[:16]
        key = f"{kind}|{platform}|{req.method}|{req.path}|{digest}"
        with self._lock:
            self._seen[key] += 1
            n = self._seen[key]
        return random.Random(f"{self.seed}|{key}|{n}").random()  # noqa: S311 - not crypto

    def choice(self, kind: str, platform: str, req: Request, options: list[Any]) -> Any:
        return options[int(self.roll(kind + "/choice", platform, req) * len(options))]


# -- the record and the counters --------------------------------------------------------------


class Recorder:
    """Every item created (and every deletion), in memory and appended to a JSON-lines file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def created(self, platform: str, channel: str, remote_id: str, **rest: Any) -> dict[str, Any]:
        return self._append("created", platform, channel, remote_id, rest)

    def deleted(self, platform: str, channel: str, remote_id: str) -> dict[str, Any]:
        return self._append("deleted", platform, channel, remote_id, {})

    def _append(
        self, event: str, platform: str, channel: str, remote_id: str, rest: dict[str, Any]
    ) -> dict[str, Any]:
        item = {
            "event": event,
            "platform": platform,
            "channel": channel,
            "remote_id": remote_id,
            "time": utcnow().isoformat(timespec="microseconds"),
            "title": rest.pop("title", ""),
            "text": rest.pop("text", ""),
            **rest,
        }
        line = json.dumps(item, ensure_ascii=False)
        with self._lock:
            self._items.append(item)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
        return item

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for i in self._items]


class Stats:
    """Counters a test can read: requests, refusals, faults injected, throttled answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.outages: list[dict[str, str]] = []
        self.events: list[str] = []  # notable moments (a token refresh), the first 500
        self.last: dict[str, float] = {}  # "zalo:refresh" → UNIX time it last happened

    def event(self, platform: str, what: str, mark: str | None = None) -> None:
        with self._lock:
            if mark:
                self.last[f"{platform}:{mark}"] = utcnow().timestamp()
            if len(self.events) < 500:
                self.events.append(
                    f"{utcnow().isoformat(timespec='milliseconds')} {platform}: {what}"
                )

    def add(self, platform: str, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[platform][what] += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": {p: dict(c) for p, c in self.counts.items()},
                "outages": list(self.outages),
                "events": list(self.events),
                "last": dict(self.last),
            }
