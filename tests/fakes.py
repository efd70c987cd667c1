"""A scriptable in-memory channel adapter for dispatcher tests, and a post moved by hand."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from publisher.channels.base import CheckResult, Outgoing, Receipt
from publisher.cli import cli
from publisher.clock import RehearsalClock
from publisher.config import ADAPTERS, Channel
from publisher.signing import make_secret
from publisher.states import MOVES, State
from publisher.store.db import Database
from publisher.store.history import transition
from publisher.store.models import MetaRow, PostRow
from publisher.store.status import ANCHOR_KEYS, clock_of

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


DUMMY_WEBHOOK_SECRET = make_secret(b"not-a-real-secret-but-well-formed")


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


def run(*args: str, input: str | None = None) -> Result:
    """``publisher ARGS`` in this process (click's runner), exceptions not caught."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def one_line_error(result: Result) -> str:
    """The one ``error: …`` line a refused command printed (exit 1, nothing else on stderr)."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def daemon_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m publisher`` child: no database override, unbuffered,
    English (as the suite's assertions are, unless ``extra`` says otherwise)."""
    env = {k: v for k, v in os.environ.items() if k != "PUBLISHER_DATABASE_URL"}
    return {**env, "PYTHONUNBUFFERED": "1", "PUBLISHER_LANG": "en", **extra}


class Daemons:
    """``publisher run --rehearse`` subprocesses on one rehearsal database (``target``: a path
    or a URL), each run's output kept in a log of its own."""

    def __init__(self, campaign: Path, url: str, target: str | Path, rehearse: str) -> None:
        self.campaign, self.url, self.target, self.rehearse = campaign, url, str(target), rehearse
        self.runs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.campaign / f"daemon-{len(self.runs) + 1}.log"
        args = ["run", "--rehearse", self.rehearse, "--sandbox-url", self.url]
        args += ["--rehearsal-db", self.target, "--seed", "1"]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "publisher", *args],
                cwd=self.campaign,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=daemon_env(),
            )
        self.runs.append((proc, log))
        return proc

    def output(self, proc: subprocess.Popen[bytes] | None = None) -> str:
        """Everything ``proc`` (default: the last run) printed."""
        log = next(log for p, log in reversed(self.runs) if proc is None or p is proc)
        return log.read_text(encoding="utf-8", errors="replace")

    def tail(self, proc: subprocess.Popen[bytes], lines: int = 40) -> str:
        text = "\n".join(self.output(proc).splitlines()[-lines:])
        return f"--- daemon output (exit {proc.returncode}) ---\n{text}"

    def wait(self, proc: subprocess.Popen[bytes], deadline: float, what: str) -> None:
        """Let ``proc`` finish by itself (status 0) before ``deadline`` (monotonic)."""
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{what}: still running at the deadline\n{self.tail(proc)}", pytrace=False)
        assert proc.returncode == 0, f"{what} failed\n{self.tail(proc)}"

    def kill_all(self) -> None:
        for proc, _log in self.runs:
            if proc.poll() is None:
                proc.kill()
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)


def load_and_approve(campaign: Path, approver: str = "tuan.la") -> None:
    """What ``publisher load`` then ``approve --all --as APPROVER`` do to the campaign's queue,
    as library calls in this process (a test's setup, not what it tests)."""
    from publisher.config import load_config
    from publisher.config.board import authorize
    from publisher.editorial.load import approve, load
    from publisher.store import audit_key
    from publisher.store.db import open_database

    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url, audit_key=audit_key.from_environment(config))
    try:
        now = datetime.now(UTC)
        load(db, config, now, "vanphong")
        actor = authorize(config, approver, "approve")
        approve(db, [], everything=True, actor=actor, now=now)
    finally:
        db.close()


def post_count(db: Database, **where: object) -> int:
    """How many posts the queue holds (``where``: column=value filters): what a test compares
    with, rather than the shipped campaign's numbers."""
    from sqlalchemy import func, select

    query = select(func.count()).select_from(PostRow)
    for column, value in where.items():
        query = query.where(getattr(PostRow, column) == value)
    with db.read() as s:
        return int(s.scalar(query) or 0)


def anchor(db_path: Path, daemons: Daemons, proc: subprocess.Popen[bytes]) -> RehearsalClock:
    """The rehearsal's clock, once the daemon ``proc`` has stored it in its copy of the queue
    at ``db_path`` (its first start)."""
    limit = time.monotonic() + 30
    while time.monotonic() < limit:
        if db_path.exists():
            db = Database(f"sqlite:///{db_path}")
            try:
                with db.read() as s:
                    meta = {m.key: m.value for m in s.scalars(select(MetaRow))}
                if all(k in meta for k in ANCHOR_KEYS):
                    return clock_of(meta)
            except SQLAlchemyError:
                pass  # not migrated yet
            finally:
                db.close()
        if proc.poll() is not None:
            pytest.fail(f"the daemon exited before anchoring\n{daemons.tail(proc)}")
        time.sleep(0.05)
    pytest.fail(f"no rehearsal anchor after 30 s\n{daemons.tail(proc)}")


def picture_bytes(width: int, height: int, fmt: str = "JPEG", *, seed: int = 0) -> bytes:
    """A real picture file of ``width``×``height`` px. Its pixels are noise (from ``seed``),
    which compresses badly: a large one is a large file, as a photograph is."""
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)  # noqa: S311 - test pixels, not secrets
    mode = "RGB"
    im = Image.frombytes(mode, (width, height), rng.randbytes(width * height * 3))
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def render_media(render: Any) -> tuple[Any, ...]:
    """The pictures of a render (``publisher.render.Render``) as an adapter gets them
    (``Outgoing.media``): what the dispatcher hands over after a load kept their bytes."""
    from publisher.channels.base import Media

    return tuple(
        Media(p.role, p.alt, p.mime, p.name, p.sha256, p.data, p.url, p.width, p.height)
        for p in render.pictures
    )


class FixedHost:
    """A MediaHost that gives every file an address on the portal, asking nothing."""

    base = "https://stp.example.gov.vn/wp-content/uploads/2024/06/"

    def check(self) -> CheckResult:
        return CheckResult(True, "the host answers")

    def public_url(self, media: Any) -> str:
        return self.base + str(media.name)


def banner_name(config: Any) -> str:
    """The name the campaign's banner goes by (``publisher.media.Prepared.name``): its stem,
    the first 12 hex digits of its SHA-256 and a tag of its alt text."""
    from publisher.media import LIMITS, prepare
    from publisher.render import Renderer

    cover = Renderer(config).default_cover(config.channels["zalo"])
    assert cover is not None
    return prepare(cover, "cover", config.messages_dir, LIMITS["zalo"]).name


# portal_pbgdpl as the shipped config.toml had it before it became an email channel: the
# campaign's one webhook channel, for the tests whose subject is the webhook adapter.
WEBHOOK_PBGDPL = """[channels.portal_pbgdpl]
name = "Cổng TTĐT Phổ biến, giáo dục pháp luật"
adapter = "webhook"
templates = "portal"
url = "https://pbgdpl.example.gov.vn/api/publisher/posts"
secrets = { signing_secret = "PUBLISHER_PBGDPL_WEBHOOK_SECRET" }
slots = ["08:30", "15:00"]
daily_cap = 1

"""


def as_webhook_pbgdpl(text: str) -> str:
    """config.toml's ``text`` with its portal_pbgdpl table replaced by the webhook channel above
    (everything else as it was)."""
    text, replaced = re.subn(r"(?ms)^\[channels\.portal_pbgdpl\]\n.*?(?=^\[)", WEBHOOK_PBGDPL, text)
    assert replaced == 1, "config.toml has no [channels.portal_pbgdpl] table followed by another"
    return text


def webhook_pbgdpl(campaign: Path) -> Path:
    """Make ``campaign``'s portal_pbgdpl the webhook channel above; returns its config.toml."""
    path = campaign / "config.toml"
    path.write_text(as_webhook_pbgdpl(path.read_text("utf-8")), "utf-8")
    return path


def together(*work: Callable[[], Any]) -> list[Any]:
    """Run each of ``work`` in its own thread, all at once; what each returned, or the
    exception it raised (for tests of what happens when members or daemons act at once)."""
    out: list[Any] = [None] * len(work)

    def run(i: int) -> None:
        try:
            out[i] = work[i]()
        except Exception as exc:  # returned to the test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out
