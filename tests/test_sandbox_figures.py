"""The sandbox serves plausible reach figures: seeded, growing with a post's age on the
rehearsal's virtual clock, in each platform's shape; every adapter reads them back; reads can be
made to fail; a Graph version that lacks a metric is refused (#100) as Graph refuses it."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.channels.base import Media, Outgoing, Throttled
from publisher.channels.facebook import FacebookAdapter
from publisher.channels.tokens import InMemoryTokenStore
from publisher.channels.webhook import WebhookAdapter
from publisher.channels.wordpress import WordPressAdapter
from publisher.channels.zalo import ZaloAdapter
from publisher.clock import FakeClock
from publisher.config import Channel
from publisher.metrics import NoFigures
from publisher.sandbox import credentials
from publisher.sandbox.client import tell_virtual_clock
from publisher.sandbox.faults import FaultPlan, FaultSpecError
from publisher.sandbox.figures import VirtualClock, figures, peaks
from publisher.sandbox.server import Sandbox
from tests.fakes import make_channel

T0 = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# -- the figures themselves --------------------------------------------------------------------


@given(
    st.text(min_size=1, max_size=30), st.integers(0, 5), st.integers(0, 400), st.integers(1, 400)
)
def test_figures_are_deterministic_and_never_fall(
    remote_id: str, seed: int, hours: int, more: int
) -> None:
    for platform in ("facebook", "zalo", "wordpress", "webhook"):
        early = figures(seed, platform, remote_id, timedelta(hours=hours))
        late = figures(seed, platform, remote_id, timedelta(hours=hours + more))
        assert early == figures(seed, platform, remote_id, timedelta(hours=hours))
        assert all(late[k] >= early[k] for k in early)
        assert late["views"] <= peaks(seed, platform, remote_id)["views"]


def test_nothing_before_a_post_exists_and_most_of_it_within_a_week() -> None:
    assert set(figures(0, "facebook", "p1", -DAY).values()) == {0}
    week, peak = figures(0, "facebook", "p1", 7 * DAY), peaks(0, "facebook", "p1")
    assert 0.95 * peak["views"] <= week["views"] <= peak["views"]
    assert week["reactions"] == sum(v for k, v in week.items() if k.startswith("reaction:"))
    assert week["reaction:like"] > week["reaction:angry"]


def test_facebook_reaches_more_than_zalo_and_articles_vary() -> None:
    ids = [f"post-{n}" for n in range(60)]
    fb = [peaks(1, "facebook", i)["views"] for i in ids]
    zalo = [peaks(1, "zalo", i)["views"] for i in ids]
    portal = [peaks(1, "wordpress", i)["views"] for i in ids]
    assert statistics.median(fb) > statistics.median(zalo) > statistics.median(portal)
    assert max(zalo) > 3 * min(zalo)  # one article is read far more than another
    assert peaks(1, "zalo", "a") != peaks(2, "zalo", "a")  # the seed matters


def test_the_virtual_clock_maps_sandbox_time() -> None:
    clock = VirtualClock()
    assert clock.at(T0) == T0  # the identity until a rehearsal sets it
    virtual = datetime(2024, 6, 1, tzinfo=UTC)
    clock.set(T0, virtual, 1440.0)  # a day a minute
    assert clock.at(T0 + timedelta(minutes=2)) == virtual + 2 * DAY
    with pytest.raises(ValueError, match="speed"):
        clock.set(T0, virtual, 0)


# -- the sandbox, read by the adapters ---------------------------------------------------------


@pytest.fixture
def box() -> Iterator[tuple[Sandbox, FakeClock]]:
    clock = FakeClock(T0)
    with Sandbox(clock=clock, smtp_port=None, imap_port=None) as sb:
        yield sb, clock


def channel(sb: Sandbox, cid: str, adapter: str, **more: Any) -> Channel:
    settings = credentials.settings_for(adapter, sb.url, cid)
    required = {"facebook": {"page_id": "100000000000001"}, "zalo": {"app_id": "1"}}
    given_ = {**required.get(adapter, {}), **settings, **more}
    return make_channel(cid, adapter, cid, templates="portal", **given_)


def post(channel: str = "c", **fields: str) -> Outgoing:
    base = {"title": "Quyền trẻ em", "content": "<p>Nội dung</p>", "excerpt": "Tóm tắt"}
    base |= {"message": "Tháng hành động vì trẻ em", "description": "Tóm tắt", "body": "Đoạn."}
    return Outgoing(
        post_id=1,
        idempotency_key=str(uuid.uuid4()),
        channel=channel,
        kind="article",
        fields={**base, **fields},
        due_at=T0,
        media=(Media("cover", "Ảnh bìa", url="https://stp.example.gov.vn/bia.jpg"),),
    )


def adapter(sb: Sandbox, clock: FakeClock, cid: str, kind: str, **more: Any) -> Any:
    client = httpx.Client()
    ch = channel(sb, cid, kind, **more)
    secrets = credentials.SECRETS[kind]
    if kind == "zalo":
        return ZaloAdapter(
            ch, client, secrets, clock=clock, tokens=InMemoryTokenStore(), sleep=lambda s: None
        )
    cls = {"facebook": FacebookAdapter, "wordpress": WordPressAdapter, "webhook": WebhookAdapter}
    return cls[kind](ch, client, secrets, clock=clock)


def test_each_adapter_reads_growing_figures_from_the_sandbox(
    box: tuple[Sandbox, FakeClock],
) -> None:
    sb, clock = box
    readers = {
        "facebook": adapter(sb, clock, "fb", "facebook"),
        "zalo": adapter(sb, clock, "zalo", "zalo"),
        "pvc": adapter(sb, clock, "stp", "wordpress", stats="post-views-counter"),
        "wpv": adapter(sb, clock, "stp2", "wordpress", stats="wp-postviews"),
        "webhook": adapter(sb, clock, "hook", "webhook", stats=True),
    }
    fb = readers["facebook"].publish(replace(post(), media=()))
    art = readers["zalo"].publish(post())
    wp = readers["pvc"].publish(post())
    hook = readers["webhook"].publish(post("hook"))
    ids = {"facebook": fb, "zalo": art, "pvc": wp, "wpv": wp, "webhook": hook}
    clock.advance(timedelta(hours=6))
    first = {k: readers[k].metrics(r.remote_id, r.url) for k, r in ids.items()}
    clock.advance(3 * DAY)
    later = {k: readers[k].metrics(r.remote_id, r.url) for k, r in ids.items()}
    again = {k: readers[k].metrics(r.remote_id, r.url) for k, r in ids.items()}
    assert later == again  # no time passed: the same figures
    for k in ids:
        assert first[k].views is not None and later[k].views is not None
        assert 0 < first[k].views < later[k].views, k
    assert later["pvc"].views == later["wpv"].views  # the same post, two plugins
    f = later["facebook"]
    assert f.reactions and f.reactions_by_type and f.reactions == sum(f.reactions_by_type.values())
    assert f.comments is not None and f.shares is not None and f.clicks is not None
    assert later["zalo"].shares is not None and later["zalo"].reactions is None
    assert later["webhook"].reactions is None  # the portal reports views only


def test_the_figures_follow_the_rehearsals_virtual_clock(box: tuple[Sandbox, FakeClock]) -> None:
    sb, clock = box
    fb = adapter(sb, clock, "fb", "facebook")
    assert tell_virtual_clock(sb.url, datetime(2024, 6, 1, tzinfo=UTC), 1440.0)  # a day a minute
    state = httpx.get(f"{sb.url}/_sandbox/clock").json()
    assert state["virtual"].startswith("2024-06-01T00:00") and state["anchor"]["speed"] == 1440.0
    receipt = fb.publish(replace(post(), media=()))
    clock.advance(timedelta(minutes=10))  # ten virtual days
    views = fb.metrics(receipt.remote_id, None).views
    assert views == figures(0, "facebook", receipt.remote_id, 10 * DAY)["views"]
    bad = httpx.post(f"{sb.url}/_sandbox/clock", json={"virtual": "yesterday"})
    assert bad.status_code == 400


def test_a_read_fault_fails_one_read(box: tuple[Sandbox, FakeClock]) -> None:
    sb, clock = box
    fb = adapter(sb, clock, "fb", "facebook")
    receipt = fb.publish(replace(post(), media=()))
    sb.set_faults("facebook:read-fail=x1:throttle")
    with pytest.raises(Throttled):
        fb.metrics(receipt.remote_id, None)
    assert fb.metrics(receipt.remote_id, None).views is not None  # x1: the next read works
    with pytest.raises(FaultSpecError, match="read fails as one of"):
        FaultPlan.parse("zalo:read-fail=1:explode")
    plan = FaultPlan.parse("*:error-before=1,wordpress:read-fail=1")
    assert "error-before" not in plan.draw("facebook", "read")  # writes' faults spare reads
    assert "read-fail" not in plan.draw("wordpress", "create")


def test_an_old_graph_version_is_refused_the_new_metric(box: tuple[Sandbox, FakeClock]) -> None:
    sb, clock = box
    old = adapter(sb, clock, "fb", "facebook", api_version="v22.0")
    receipt = old.publish(replace(post(), media=()))
    clock.advance(DAY)
    asked = httpx.get(
        f"{sb.url}/facebook/v22.0/{receipt.remote_id}/insights",
        params={"metric": "post_total_media_view_unique"},
        headers={"Authorization": f"Bearer {credentials.FACEBOOK_PAGE_TOKEN}"},
    )
    assert asked.status_code == 400 and asked.json()["error"]["code"] == 100
    reading = old.metrics(receipt.remote_id, None)
    # 2024 in this sandbox: v22.0 still has post_impressions_unique (gone from 15 June 2026)
    assert reading.views is not None and "post_impressions_unique" in reading.source
    clock.set(datetime(2026, 12, 7, tzinfo=UTC))
    later = adapter(sb, clock, "fb", "facebook", api_version="v22.0")
    assert later.metrics(receipt.remote_id, None).views is None  # refused under every name


def test_stats_are_served_only_where_configured(box: tuple[Sandbox, FakeClock]) -> None:
    sb, clock = box
    pvc = adapter(sb, clock, "stp", "wordpress", stats="post-views-counter")
    wpv = adapter(sb, clock, "stp", "wordpress", stats="wp-postviews")
    hook = adapter(sb, clock, "hook", "webhook", stats=True)
    wp, item = pvc.publish(post()), hook.publish(post("hook"))
    answer = httpx.post(f"{sb.url}/_sandbox/stats", json={"wordpress": [], "webhook": False})
    assert answer.json() == {"wordpress": [], "webhook": False}
    with pytest.raises(NoFigures, match="no Post Views Counter REST route"):
        pvc.metrics(wp.remote_id, wp.url)
    with pytest.raises(NoFigures, match="no views field"):
        wpv.metrics(wp.remote_id, wp.url)
    with pytest.raises(NoFigures, match="keeps no figures"):
        hook.metrics(item.remote_id, item.url)
    bad = httpx.post(f"{sb.url}/_sandbox/stats", json={"wordpress": ["jetpack"]})
    assert bad.status_code == 400
