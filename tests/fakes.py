"""A scriptable in-memory channel adapter for dispatcher tests, and a post moved by hand."""

from __future__ import annotations

import base64
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from publisher.channels.base import CheckResult, Outgoing, Receipt
from publisher.config import ADAPTERS, Channel
from publisher.states import MOVES, State
from publisher.store.db import Database
from publisher.store.history import transition
from publisher.store.models import PostRow

Script = Callable[[Outgoing], Receipt | None]


class FakePlatform:
    """Publishes into a list; ``script`` may raise an outcome or return None for "store, then ok"."""

    def __init__(self, name: str, now: Callable[[], datetime]) -> None:
        self.name = name
        self.now = now
        self.items: list[tuple[str, datetime, str]] = []  # (idempotency key, time, text)
        self.calls: list[str] = []
        self.lookups: list[str] = []
        self.plans: dict[str, list[Callable[[Outgoing], None]]] = defaultdict(list)
        self.lookup_plans: list[Callable[[Outgoing], None]] = []
        self.check_ok = True
        self.lock = threading.Lock()

    def store(self, post: Outgoing) -> Receipt:
        with self.lock:
            self.items.append(
                (post.idempotency_key, self.now(), post.fields[next(iter(post.fields))])
            )
            return Receipt(
                f"{self.name}-{len(self.items)}", f"https://{self.name}.test/{len(self.items)}"
            )

    def then(self, key: str, *steps: Callable[[Outgoing], None]) -> None:
        """Script the next calls for post ``key``: each step may store and/or raise."""
        self.plans[key].extend(steps)

    def publish(self, post: Outgoing) -> Receipt:
        self.calls.append(post.idempotency_key)
        plan = self.plans.get(post.idempotency_key)
        if plan:
            plan.pop(0)(post)
        return self.store(post)

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        self.lookups.append(post.idempotency_key)
        if self.lookup_plans:
            self.lookup_plans.pop(0)(post)
        for n, (key, when, _text) in enumerate(self.items, 1):
            if key == post.idempotency_key and when >= since:
                return Receipt(f"{self.name}-{n}", f"https://{self.name}.test/{n}")
        return None

    def check(self) -> CheckResult:
        return CheckResult(self.check_ok, "fake")

    def pacing(self) -> float:
        return 0.0

    def count(self, key: str) -> int:
        return sum(1 for k, _, _ in self.items if k == key)


def path_to(start: State, goal: State) -> list[State]:
    """The shortest walk of allowed moves (``states.MOVES``) from ``start`` to ``goal``."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        here = queue.pop(0)
        if here == goal:
            return paths[here][1:] or [goal]
        for there in sorted(MOVES[here]):
            if there not in paths:
                paths[there] = [*paths[here], there]
                queue.append(there)
    raise ValueError(f"no allowed moves lead from {start} to {goal}")


def set_state(
    db: Database, post_id: int, at: datetime, state: str, cause: str, **values: object
) -> None:
    """Move a post to ``state`` as the board and the dispatcher would, through allowed moves
    only (draft → approved → sending → published: an event each, ``cause`` on the last, and the
    audit entry of an audited outcome), setting ``values`` on the row too."""
    with db.write() as s:
        p = s.get_one(PostRow, post_id)
        for step in path_to(p.state, State(state)):
            transition(s, p, step, at, cause if step == state else f"(test) to {step}", "t")
        for name, value in values.items():
            setattr(p, name, value)


DUMMY_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"not-a-real-secret-but-well-formed").decode()


def dummy_env(campaign: Path, value: str = "not-a-real-secret") -> None:
    """A ``.env`` (mode 0600) with a made-up value for every secret ``config.toml`` names, each of
    the shape its platform requires (webhook signing secrets are ``whsec_<base64>``): enough for
    ``run`` to start on the real queue without any real credentials."""
    names = re.findall(r'= "(PUBLISHER_[A-Z_]+)"', (campaign / "config.toml").read_text("utf-8"))
    lines = [f"{n}={DUMMY_WEBHOOK_SECRET if 'WEBHOOK_SECRET' in n else value}\n" for n in names]
    env = campaign / ".env"
    env.touch(mode=0o600)
    env.chmod(0o600)
    env.write_text("".join(lines), "utf-8")


# The secrets' variable names each adapter kind's test channels use (never real values).
SECRET_NAMES = {
    "wordpress": {"password": "PUBLISHER_STP_WP_APP_PASSWORD"},
    "webhook": {"signing_secret": "PUBLISHER_PBGDPL_WEBHOOK_SECRET"},
    "facebook": {"page_token": "PUBLISHER_FACEBOOK_PAGE_TOKEN"},
    "zalo": {"app_secret": "PUBLISHER_ZALO_APP_SECRET", "refresh_token": "PUBLISHER_ZALO_RT"},
}


def make_channel(
    cid: str, adapter: str, name: str, *, templates: str, daily_cap: int = 1, **settings: Any
) -> Channel:
    """A channel of ``adapter``'s kind with typed ``settings`` (the rest at their defaults), as
    config.toml would give it: the one factory the adapters' tests share."""
    return Channel(
        id=cid,
        name=name,
        enabled=True,
        adapter=adapter,
        templates=templates,
        slots=(),
        daily_cap=daily_cap,
        quiet_hours=None,
        repeats={},
        settings=ADAPTERS[adapter].settings(**settings),
        secrets=SECRET_NAMES[adapter],
    )
