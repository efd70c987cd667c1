"""A sandbox started afresh is given what an earlier one held (``Sandbox.restore``, ``POST
/_sandbox/restore``): each item serves the figures the first sandbox served at the same virtual
time (born where ``GET /_sandbox/births`` said, drawn from the same seed), new items never take
its ids, the webhook finds it by its key; a clock told anew never moves an item's birth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from publisher.channels.base import Outgoing
from publisher.clock import FakeClock
from publisher.metrics import Reading
from publisher.sandbox.client import Held, restore_sandbox, sandbox_births, tell_virtual_clock
from publisher.sandbox.server import Sandbox
from tests.test_sandbox_figures import adapter, post

JUNE_1 = datetime(2024, 6, 1, tzinfo=UTC)
SPEED = 1440.0  # a virtual day a real minute
KINDS = {"facebook": "facebook", "zalo": "zalo", "stp": "wordpress", "hook": "webhook"}


@pytest.fixture
def first() -> Iterator[tuple[Sandbox, FakeClock]]:
    clock = FakeClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    with Sandbox(clock=clock, seed=7, smtp_port=None, imap_port=None) as sb:
        yield sb, clock


def readers(sb: Sandbox, clock: FakeClock) -> dict[str, Any]:
    more: dict[str, dict[str, Any]] = {"stp": {"stats": "post-views-counter"}, "hook": {}}
    more["hook"] = {"stats": True}
    return {cid: adapter(sb, clock, cid, kind, **more.get(cid, {})) for cid, kind in KINDS.items()}


def article(cid: str) -> Outgoing:
    made = post(cid, title=f"Bài của {cid}")
    return replace(made, media=()) if cid == "facebook" else made


def read_all(readers: dict[str, Any], sent: dict[str, Any]) -> dict[str, Reading]:
    return {cid: readers[cid].metrics(r.remote_id, r.url) for cid, r in sent.items()}


def test_a_restored_sandbox_serves_the_same_figures_at_the_same_virtual_time(
    first: tuple[Sandbox, FakeClock],
) -> None:
    sb, clock = first
    assert tell_virtual_clock(sb.url, JUNE_1, SPEED)
    a = readers(sb, clock)
    sent: dict[str, Any] = {}
    outgoing = {cid: article(cid) for cid in KINDS}
    for cid in KINDS:
        sent[cid] = a[cid].publish(outgoing[cid])
        clock.advance(timedelta(seconds=37))  # about 15 virtual hours apart
    told = sandbox_births(sb.url)
    assert told is not None and told["seed"] == 7
    births = told["births"]
    assert isinstance(births, dict) and len(births) == len(KINDS)
    clock.advance(timedelta(minutes=2))  # two virtual days later
    virtual_now = datetime.fromisoformat(httpx.get(f"{sb.url}/_sandbox/clock").json()["virtual"])
    before = read_all(a, sent)

    clock2 = FakeClock(datetime(2027, 1, 2, 3, 4, tzinfo=UTC))  # another day, another process
    with Sandbox(clock=clock2, seed=7, smtp_port=None, imap_port=None) as again:
        assert tell_virtual_clock(again.url, virtual_now, SPEED)
        held = [
            Held(
                KINDS[cid],
                cid,
                r.remote_id,
                datetime.fromisoformat(births[f"{KINDS[cid]}:{r.remote_id}"]),
                url=r.url,
                title=f"Bài của {cid}",
                key=outgoing[cid].idempotency_key,
            )
            for cid, r in sent.items()
        ]
        assert restore_sandbox(again.url, held) == len(held)
        assert restore_sandbox(again.url, held) == 0  # held already: left alone
        b = readers(again, clock2)
        assert read_all(b, sent) == before  # the same figures, read from the other sandbox
        clock.advance(timedelta(minutes=1))
        clock2.advance(timedelta(minutes=1))
        assert read_all(b, sent) == read_all(a, sent)  # and they grow alike
        # new items never take a restored one's id
        for cid in ("facebook", "stp", "hook"):
            fresh = b[cid].publish(article(cid))
            assert fresh.remote_id != sent[cid].remote_id, cid
        found = b["hook"].lookup(outgoing["hook"], JUNE_1)  # by its key, as the portal keeps it
        assert found is not None and found.remote_id == sent["hook"].remote_id


def test_a_clock_told_anew_keeps_every_items_birth(first: tuple[Sandbox, FakeClock]) -> None:
    sb, clock = first
    assert tell_virtual_clock(sb.url, JUNE_1, SPEED)
    fb = readers(sb, clock)["facebook"]
    receipt = fb.publish(article("facebook"))
    clock.advance(timedelta(minutes=3))  # three virtual days
    born = sb.births()
    views = fb.metrics(receipt.remote_id, None).views
    # a later reading re-anchors the clock where the rehearsal stopped: births stay
    assert tell_virtual_clock(sb.url, JUNE_1 + timedelta(days=3), SPEED)
    assert sb.births() == born
    assert fb.metrics(receipt.remote_id, None).views == views


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"items": "none"}, 'the body must be {"items": [...]}'),
        ({"items": [1]}, "items[0] is not an object"),
        (
            {
                "items": [
                    {"platform": "myspace", "remote_id": "1", "born": "2024-06-01T00:00:00+00:00"}
                ]
            },
            "",
        ),
        ({"items": [{"platform": "zalo", "remote_id": "1", "born": "2024-06-01T00:00"}]}, "UTC"),
        ({"items": [{"platform": "zalo", "remote_id": "a"}]}, "items[0]: 'born'"),
        (
            {
                "items": [
                    {"platform": "wordpress", "remote_id": "x", "born": "2024-06-01T00:00:00+00:00"}
                ]
            },
            "",
        ),
    ],
)
def test_a_bad_restore_is_refused_whole(
    first: tuple[Sandbox, FakeClock], body: dict[str, Any], expected: str
) -> None:
    sb, _ = first
    good = {"platform": "zalo", "remote_id": "ok", "born": "2024-06-01T00:00:00+00:00"}
    items = [good, *body["items"]] if isinstance(body["items"], list) else body["items"]
    answer = httpx.post(f"{sb.url}/_sandbox/restore", json={"items": items})
    assert answer.status_code == 400 and answer.json()["error"] == "bad_restore"
    assert expected.replace("[0]", "[1]") in answer.json()["message"]
    assert sb.births() == {}  # nothing half-restored
