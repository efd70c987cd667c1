"""Outages: a request that never reached the platform pauses its channel, not its post.

The adapters say so (Unreachable) for every way a request can fail before it is sent; the
dispatcher then blocks the channel, gives the attempt back, probes the channel with backoff in
real time, and lets the posts wait for it up to ``max_lateness`` instead of the grace window.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from publisher.channels import build
from publisher.channels.base import CheckResult, Outgoing, Temporary, Unreachable
from publisher.channels.tokens import InMemoryTokenStore
from publisher.clock import FakeClock
from publisher.config import Config
from publisher.dispatch.dispatcher import Dispatcher, outgoing_of, picture_shas
from publisher.dispatch.retry import RetryPolicy
from publisher.dispatch.settings import DispatchSettings
from publisher.editorial.load import approve, load
from publisher.sandbox import credentials
from publisher.states import State
from publisher.store import media as media_files
from publisher.store.db import Database, open_database
from publisher.store.models import ChannelState, PostEvent, PostRow
from tests.fakes import FakePlatform, FixedHost, webhook_pbgdpl

T0 = datetime(2024, 5, 31, tzinfo=UTC)
NEVER_SENT = {
    "refused": httpx.ConnectError("[Errno 111] Connection refused"),
    "dns": httpx.ConnectError("[Errno -2] Name or service not known"),
    "tls": httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    "connect-timeout": httpx.ConnectTimeout("timed out"),
    "pool-timeout": httpx.PoolTimeout("no connection available"),
    "bad-scheme": httpx.UnsupportedProtocol("Request URL has an unsupported protocol"),
}


@pytest.fixture
def campaign(campaign: Path) -> Path:
    """The shipped campaign with portal_pbgdpl as a webhook channel: these tests are about the
    HTTP adapters (the email channel's are in tests/test_email_channel.py)."""
    webhook_pbgdpl(campaign)
    return campaign


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    load(db, config, T0, "tester")
    approve(db, [], everything=True, actor="lanh.dao", now=T0)
    return db


def first_of(db: Database, channel: str) -> PostRow:
    with db.read() as s:
        return s.scalars(
            select(PostRow)
            .where(PostRow.channel == channel)
            .order_by(PostRow.due_at, PostRow.id)
            .limit(1)
        ).one()


def post_of(db: Database, post_id: int) -> PostRow:
    with db.read() as s:
        return s.get_one(PostRow, post_id)


@pytest.fixture
def sqlite_queue(config: Config) -> Database:
    """The campaign loaded into its SQLite queue (the adapters' tests need posts, no backend)."""
    db = open_database(config.database_url)
    load(db, config, T0, "tester")
    return db


def outgoing(db: Database, channel: str) -> Outgoing:
    with db.read() as s:
        p = s.scalars(
            select(PostRow)
            .options(joinedload(PostRow.message))
            .where(PostRow.channel == channel)
            .limit(1)
        ).one()
        return outgoing_of(p, files=media_files.files(s, picture_shas(p.fields)))


def refusing(
    error: httpx.HTTPError, *, tokens_ok: bool
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if tokens_ok and request.url.path.endswith("/v4/oa/access_token"):
            return httpx.Response(
                200, json={"access_token": "at-1", "refresh_token": "rt-1", "expires_in": "90000"}
            )
        raise type(error)(str(error), request=request)

    return handler


@pytest.mark.parametrize("cid", ["portal_stp", "portal_pbgdpl", "facebook", "zalo"])
@pytest.mark.parametrize("error", list(NEVER_SENT.values()), ids=list(NEVER_SENT))
def test_a_request_that_never_reached_the_platform_is_unreachable(
    sqlite_queue: Database, config: Config, cid: str, error: httpx.HTTPError
) -> None:
    ch = config.channels[cid]
    post = outgoing(sqlite_queue, cid)
    for tokens_ok in (True, False):  # Zalo: the API refused, then its token endpoint too
        client = httpx.Client(transport=httpx.MockTransport(refusing(error, tokens_ok=tokens_ok)))
        secrets = credentials.SECRETS[ch.adapter]
        host = FixedHost() if ch.adapter == "zalo" else None
        adapter = build(ch, secrets, client=client, tokens=InMemoryTokenStore(), media_host=host)
        with pytest.raises(Unreachable) as caught:
            adapter.publish(post)
        assert (
            "before the request reached" in caught.value.reason or "reaching" in caught.value.reason
        )
        with pytest.raises(Unreachable):
            adapter.lookup(post, T0)
        result = adapter.check()
        assert not result.ok and not result.reachable, result


@pytest.mark.parametrize("cid", ["portal_stp", "portal_pbgdpl", "facebook", "zalo"])
def test_a_failure_after_the_request_left_is_not_an_outage(
    sqlite_queue: Database, config: Config, cid: str
) -> None:
    ch = config.channels[cid]
    post = outgoing(sqlite_queue, cid)
    slow = httpx.ReadTimeout("read timed out")
    client = httpx.Client(transport=httpx.MockTransport(refusing(slow, tokens_ok=True)))
    adapter = build(ch, credentials.SECRETS[ch.adapter], client=client, tokens=InMemoryTokenStore())
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the class is what is checked
        adapter.publish(post)
    assert not isinstance(caught.value, Unreachable)
    with pytest.raises(Temporary) as looked:
        adapter.lookup(post, T0)
    assert not isinstance(looked.value, Unreachable)
    assert adapter.check().reachable


# -- the dispatcher -------------------------------------------------------------------------


class DownPlatform(FakePlatform):
    """A fake platform that can be unreachable: nothing reaches it, its check included."""

    def __init__(self, name: str, now: Callable[[], datetime]) -> None:
        super().__init__(name, now)
        self.down = False
        self.checks = 0

    def publish(self, post: Outgoing):  # type: ignore[no-untyped-def]
        if self.down:
            self.calls.append(post.idempotency_key)
            raise Unreachable("network: ConnectError before the request reached graph.test")
        return super().publish(post)

    def lookup(self, post: Outgoing, since: datetime):  # type: ignore[no-untyped-def]
        if self.down:
            self.lookups.append(post.idempotency_key)
            raise Unreachable("network: ConnectError before the request reached graph.test")
        return super().lookup(post, since)

    def check(self) -> CheckResult:
        self.checks += 1
        if self.down:
            return CheckResult(False, "cannot reach graph.test: ConnectError", reachable=False)
        return super().check()


def dispatcher(
    db: Database, platforms: dict[str, FakePlatform], clock: FakeClock, **policy: object
) -> Dispatcher:
    return Dispatcher(
        db,
        platforms,  # type: ignore[arg-type]
        clock,
        worker="w1",
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        settings=DispatchSettings(grace=timedelta(hours=2)),
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )


def events(db: Database) -> dict[int, int]:
    with db.read() as s:
        return dict(
            s.execute(select(PostEvent.post_id, func.count()).group_by(PostEvent.post_id)).all()
        )  # type: ignore[arg-type]


def facebook_posts(db: Database) -> list[PostRow]:
    with db.read() as s:
        return list(
            s.scalars(select(PostRow).where(PostRow.channel == "facebook").order_by(PostRow.due_at))
        )


def test_an_outage_pauses_the_channel_not_its_posts(queue: Database, config: Config) -> None:
    fb = facebook_posts(queue)[:4]
    assert fb[0].due_at is not None and fb[3].due_at is not None
    clock = FakeClock(fb[0].due_at)
    platforms: dict[str, FakePlatform] = {
        cid: FakePlatform(cid, clock.now) for cid in config.channels
    }
    down = DownPlatform("facebook", clock.now)
    platforms["facebook"] = down
    d = dispatcher(
        queue, platforms, clock, max_lateness=fb[3].due_at - fb[0].due_at + timedelta(hours=4)
    )
    before = events(queue)
    down.down = True
    end = fb[3].due_at + timedelta(hours=3)  # days: far beyond the grace window
    while clock.now() < end:
        d.run_once()
        clock.advance(timedelta(minutes=30))
    with queue.read() as s:
        block = s.get_one(ChannelState, "facebook")
        assert block.block_kind == "outage" and block.blocked_since == fb[0].due_at
        assert block.probes >= 40 and "ConnectError" in (block.block_reason or "")
    assert down.calls == [fb[0].idempotency_key]  # one post found it down; probes did the rest
    assert down.checks == block.probes
    after = events(queue)
    for p in fb:
        row = post_of(queue, p.id)
        assert row.state == State.RETRYING and row.attempt == 0, (p.id, row.state)
        grown = after[p.id] - before.get(p.id, 0)
        assert grown == (2 if p.id == fb[0].id else 1), (p.id, grown)  # not one per probe
    # other channels went on meanwhile
    others = [p for cid, f in platforms.items() if cid != "facebook" for p in f.items]
    assert others
    down.down = False
    clock.advance(timedelta(seconds=30))
    for _ in range(3):
        d.run_once()
    for p in fb:
        row = post_of(queue, p.id)
        assert row.state == State.PUBLISHED and row.attempt == 1, (p.id, row.state)
    assert [key for key, _, _ in down.items][:4] == [p.idempotency_key for p in fb]  # in order
    with queue.read() as s:
        block = s.get_one(ChannelState, "facebook")
        assert block.block_kind is None and block.probes == 0 and block.blocked_since is None


def test_an_outage_longer_than_max_lateness_fails_the_post_naming_it(
    queue: Database, config: Config
) -> None:
    fb = facebook_posts(queue)
    assert fb[0].due_at is not None
    clock = FakeClock(fb[0].due_at)
    platforms: dict[str, FakePlatform] = {
        cid: FakePlatform(cid, clock.now) for cid in config.channels
    }
    down = DownPlatform("facebook", clock.now)
    down.down = True
    platforms["facebook"] = down
    d = dispatcher(queue, platforms, clock)  # max_lateness 6 h
    while clock.now() < fb[0].due_at + timedelta(hours=7):
        d.run_once()
        clock.advance(timedelta(minutes=10))
    row = post_of(queue, fb[0].id)
    assert row.state == State.FAILED and row.attempt == 0
    with queue.read() as s:
        cause = s.scalars(
            select(PostEvent.cause).where(PostEvent.post_id == row.id).order_by(PostEvent.id.desc())
        ).first()
    assert cause is not None
    assert cause.startswith(
        "gave up: more than 6 h past its time; channel facebook unreachable since "
    )
    assert f"{fb[0].due_at:%Y-%m-%d %H:%M:%S} UTC" in cause and "ConnectError" in cause


def test_probes_back_off_in_real_time_on_a_compressed_clock() -> None:
    from publisher.clock import RehearsalClock
    from publisher.dispatch.outcomes import probe_wait

    rehearsal = RehearsalClock(T0, T0, 21600.0)  # June in two minutes
    assert [probe_wait(rehearsal, n) for n in range(6)] == [
        timedelta(seconds=s * 21600) for s in (1, 2, 2, 2, 2, 2)
    ]
    assert [probe_wait(FakeClock(T0), n) for n in range(6)] == [
        timedelta(seconds=s) for s in (1, 2, 4, 8, 15, 15)
    ]


def test_an_unclear_post_waits_for_its_channel_without_spending_lookups(
    queue: Database, config: Config
) -> None:
    from publisher.channels.base import Ambiguous

    fb = facebook_posts(queue)[0]
    assert fb.due_at is not None
    clock = FakeClock(fb.due_at)
    down = DownPlatform("facebook", clock.now)
    platforms: dict[str, FakePlatform] = {"facebook": down}

    def unclear(post: Outgoing) -> None:
        down.store(post)
        raise Ambiguous("HTTP 500 after the create")

    down.then(fb.idempotency_key, unclear)
    d = dispatcher(queue, platforms, clock)
    d.run_once()
    assert post_of(queue, fb.id).state == State.UNCONFIRMED
    down.down = True
    for _ in range(20):
        clock.advance(timedelta(minutes=5))
        d.run_once()
    row = post_of(queue, fb.id)
    assert row.state == State.UNCONFIRMED and row.lookups == 0 and row.attempt == 1
    assert len(down.lookups) == 1  # the one that found the channel down
    down.down = False
    clock.advance(timedelta(minutes=1))
    d.run_once()
    row = post_of(queue, fb.id)
    assert row.state == State.PUBLISHED and down.count(fb.idempotency_key) == 1


def test_a_real_adapter_through_an_outage_publishes_each_post_once_it_returns(
    queue: Database, config: Config
) -> None:
    """The webhook adapter over a transport that refuses connections for a day, then answers."""
    state = {"down": True}
    created: list[str] = []

    def portal(request: httpx.Request) -> httpx.Response:
        if state["down"]:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if request.method == "POST":
            created.append(request.headers["Idempotency-Key"])
            return httpx.Response(201, json={"id": str(len(created)), "url": "/p"})
        return httpx.Response(200, json={})

    ch = config.channels["portal_pbgdpl"]
    client = httpx.Client(transport=httpx.MockTransport(portal))
    adapter = build(ch, credentials.SECRETS["webhook"], client=client)
    with queue.read() as s:
        mine = list(
            s.scalars(
                select(PostRow).where(PostRow.channel == "portal_pbgdpl").order_by(PostRow.due_at)
            )
        )[:2]
    assert mine[0].due_at is not None and mine[1].due_at is not None
    clock = FakeClock(mine[0].due_at)
    d = Dispatcher(
        queue,
        {"portal_pbgdpl": adapter},
        clock,
        worker="w1",
        policy=RetryPolicy(max_lateness=mine[1].due_at - mine[0].due_at + timedelta(hours=6)),
        rng=random.Random(1),  # noqa: S311 - jitter in tests
    )
    while clock.now() < mine[1].due_at + timedelta(hours=3):
        d.run_once()
        clock.advance(timedelta(minutes=20))
    for p in mine:
        row = post_of(queue, p.id)
        assert (row.state, row.attempt) == (State.RETRYING, 0), row.state
    with queue.read() as s:
        assert s.get_one(ChannelState, "portal_pbgdpl").block_kind == "outage"
    state["down"] = False
    d.run_once()
    d.close()
    assert [post_of(queue, p.id).state for p in mine] == [State.PUBLISHED] * 2
    assert created == [p.idempotency_key for p in mine]
