"""The collector (``publisher.insights.collect``): which published posts it reads when, what it
records, and that nothing it meets (a platform with no figures, errors, throttling, blocked
channels, a second collector) disturbs publishing or records a reading twice. Fake readers
stand in for the adapters' ``metrics`` (tests/test_metrics_read.py reads the real ones)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.channels.base import Permanent, Temporary, Throttled, Unreachable
from publisher.clock import FakeClock
from publisher.config import Config
from publisher.editorial.load import approve, load
from publisher.insights.collect import Collector, Status, campaign_end, due, reading_ends
from publisher.metrics import NoFigures, Reading
from publisher.states import BlockKind, State
from publisher.store import metrics
from publisher.store.db import Database, open_database
from publisher.store.models import ChannelState, PostRow
from publisher.store.reach import totals
from tests.fakes import set_state

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)
JUNE_3 = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)


class FakeReader:
    """A channel's figures: ``views`` grows by 10 per reading; ``plan`` raises in turn."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.plan: list[BaseException] = []
        self.views: dict[str, int] = defaultdict(int)
        self.pace = 0.0
        self.during: Callable[[], None] | None = None

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        self.calls.append(remote_id)
        if self.during is not None:
            self.during()
        if self.plan:
            raise self.plan.pop(0)
        self.views[remote_id] += 10
        return Reading(views=self.views[remote_id], reactions=2, source="fake")

    def pacing(self) -> float:
        return self.pace


@pytest.fixture
def queue(db: Database, config: Config) -> Database:
    load(db, config, NOW, "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=NOW)
    return db


def publish(db: Database, n: int, at: datetime, channel: str | None = None) -> list[PostRow]:
    """Mark the first ``n`` approved posts (of ``channel``) published at ``at``."""
    with db.read() as s:
        q = select(PostRow).where(PostRow.state == State.APPROVED).order_by(PostRow.id)
        if channel:
            q = q.where(PostRow.channel == channel)
        rows = list(s.scalars(q.limit(n)))
    for p in rows:
        set_state(
            db,
            p.id,
            at,
            State.PUBLISHED,
            f"published as r{p.id}",
            remote_id=f"r{p.id}",
            remote_url=f"https://x.test/{p.id}",
            published_at=at,
        )
    return rows


def readers(config: Config) -> dict[str, FakeReader]:
    return {cid: FakeReader() for cid in config.channels}


def collector(
    db: Database, config: Config, rs: dict[str, FakeReader], clock: FakeClock
) -> Collector:
    return Collector(db, config, rs, clock)


def snaps(db: Database, post_id: int) -> list[metrics.Snapshot]:
    with db.read() as s:
        return metrics.snapshots(s, [post_id])


def test_a_post_is_read_when_never_read_then_every_interval(
    queue: Database, config: Config
) -> None:
    (p,) = publish(queue, 1, JUNE_3)
    clock = FakeClock(JUNE_3 + timedelta(hours=1))
    rs = readers(config)
    c = collector(queue, config, rs, clock)
    first = c.run_once()
    assert [(r.target.post_id, r.status) for r in first.results] == [(p.id, Status.READ)]
    clock.advance(config.insights.every - timedelta(minutes=1))
    assert c.run_once().results == []  # read less than `every` ago: not due
    assert rs[p.channel].calls == [f"r{p.id}"]
    clock.advance(timedelta(minutes=1))
    assert [r.status for r in c.run_once().results] == [Status.READ]
    history = snaps(queue, p.id)
    assert [s.reading.views for s in history] == [10, 20]  # added, never overwritten
    assert history[1].taken_at == clock.now()


def test_reading_stops_after_the_campaign_end_plus_after(queue: Database, config: Config) -> None:
    (p,) = publish(queue, 1, JUNE_3)
    end = reading_ends(config)
    assert end == campaign_end(config) + config.insights.after
    with queue.read() as s:
        assert [t.post_id for t in due(s, config, end)] == [p.id]
        assert due(s, config, end + timedelta(seconds=1)) == []
        # --since reads whatever is asked, whenever
        assert [
            t.post_id for t in due(s, config, end + timedelta(days=30), since=JUNE_3.date())
        ] == [p.id]


def test_only_published_posts_with_an_address_and_not_in_the_future(
    queue: Database, config: Config
) -> None:
    published = publish(queue, 2, JUNE_3)
    later = publish(queue, 1, JUNE_3 + timedelta(days=2))
    with queue.read() as s:
        picked = [t.post_id for t in due(s, config, JUNE_3 + timedelta(days=1))]
    assert picked == [p.id for p in published]  # not the approved ones, nor the later one
    assert later[0].id not in picked


def test_no_figures_is_recorded_once_and_never_read_again(queue: Database, config: Config) -> None:
    (p,) = publish(queue, 1, JUNE_3)
    clock = FakeClock(JUNE_3)
    rs = readers(config)
    rs[p.channel].plan = [NoFigures("the site exposes no views")]
    c = collector(queue, config, rs, clock)
    assert [r.status for r in c.run_once().results] == [Status.NO_FIGURES]
    for _ in range(3):
        clock.advance(timedelta(days=2))
        assert c.run_once().results == []
        assert c.run_once(force=True).results == []
    (only,) = snaps(queue, p.id)
    assert only.note == "the site exposes no views" and not only.available
    assert rs[p.channel].calls == [f"r{p.id}"]


def test_an_error_is_left_for_the_next_round(queue: Database, config: Config) -> None:
    posts = publish(queue, 2, JUNE_3, channel="facebook")
    clock = FakeClock(JUNE_3)
    rs = readers(config)
    rs["facebook"].plan = [Permanent("(#100) Unsupported get request")]
    c = collector(queue, config, rs, clock)
    got = {r.target.post_id: r.status for r in c.run_once().results}
    assert got == {posts[0].id: Status.FAILED, posts[1].id: Status.READ}  # the next one read
    assert snaps(queue, posts[0].id) == []
    clock.advance(timedelta(minutes=5))
    assert [r.target.post_id for r in c.run_once().results] == [posts[0].id]
    assert len(snaps(queue, posts[0].id)) == 1


@pytest.mark.parametrize(
    "error",
    [
        Throttled("(#4) Application request limit reached", until=JUNE_3 + timedelta(hours=1)),
        Unreachable("connection refused"),
    ],
)
def test_throttling_or_an_outage_stops_that_channel_for_the_round(
    queue: Database, config: Config, error: Exception
) -> None:
    fb = publish(queue, 3, JUNE_3, channel="facebook")
    other = publish(queue, 1, JUNE_3, channel="zalo")
    rs = readers(config)
    rs["facebook"].plan = [error]
    rnd = collector(queue, config, rs, FakeClock(JUNE_3)).run_once()
    assert rs["facebook"].calls == [f"r{fb[0].id}"]  # asked once, then left alone
    assert {r.target.post_id for r in rnd.results if r.status == Status.SKIPPED} == {
        p.id for p in fb
    }
    assert "facebook" in rnd.skipped
    assert [s.reading.views for s in snaps(queue, other[0].id)] == [10]  # others go on


def test_a_temporary_error_is_only_that_posts(queue: Database, config: Config) -> None:
    fb = publish(queue, 2, JUNE_3, channel="facebook")
    rs = readers(config)
    rs["facebook"].plan = [Temporary("HTTP 500", status=500)]
    rnd = collector(queue, config, rs, FakeClock(JUNE_3)).run_once()
    assert [r.status for r in rnd.results] == [Status.FAILED, Status.READ]
    assert len(rs["facebook"].calls) == len(fb)


def test_a_blocked_channel_is_skipped(queue: Database, config: Config) -> None:
    fb = publish(queue, 1, JUNE_3, channel="facebook")
    zl = publish(queue, 1, JUNE_3, channel="zalo")
    with queue.write() as s:
        s.add(
            ChannelState(
                channel="facebook",
                block_kind=BlockKind.AUTH,
                block_reason="(#190) token expired",
                blocked_until=JUNE_3,
                blocked_since=JUNE_3,
                updated_at=JUNE_3,
            )
        )
    rs = readers(config)
    rnd = collector(queue, config, rs, FakeClock(JUNE_3 + timedelta(hours=1))).run_once()
    assert rs["facebook"].calls == []
    assert "token expired" in rnd.skipped["facebook"]
    assert snaps(queue, fb[0].id) == [] and len(snaps(queue, zl[0].id)) == 1


def test_an_adapter_asking_to_slow_down_much_is_not_read(queue: Database, config: Config) -> None:
    publish(queue, 1, JUNE_3, channel="facebook")
    rs = readers(config)
    rs["facebook"].pace = 60.0
    rnd = collector(queue, config, rs, FakeClock(JUNE_3)).run_once()
    assert rs["facebook"].calls == [] and [r.status for r in rnd.results] == [Status.SKIPPED]


def test_a_channel_without_a_reader_is_skipped_not_recorded(
    queue: Database, config: Config
) -> None:
    (p,) = publish(queue, 1, JUNE_3, channel="facebook")
    rnd = Collector(queue, config, {"facebook": object()}, FakeClock(JUNE_3)).run_once()
    assert [r.status for r in rnd.results] == [Status.SKIPPED]
    assert snaps(queue, p.id) == []


def test_two_collectors_never_both_record_a_reading(queue: Database, config: Config) -> None:
    (p,) = publish(queue, 1, JUNE_3, channel="facebook")
    clock = FakeClock(JUNE_3)
    rs_a, rs_b = readers(config), readers(config)
    a = collector(queue, config, rs_a, clock)
    b = collector(queue, config, rs_b, clock)
    # b reads while a is asking the platform: both picked the post, b records first
    inner: list[object] = []
    rs_a["facebook"].during = lambda: inner.append(b.run_once())
    rnd = a.run_once()
    assert [r.status for r in rnd.results] == [Status.TAKEN]
    assert [r.status for r in inner[0].results] == [Status.READ]  # type: ignore[attr-defined]
    assert len(snaps(queue, p.id)) == 1


def test_concurrent_collectors_record_each_post_once(queue: Database, config: Config) -> None:
    posts = publish(queue, 6, JUNE_3)
    clock = FakeClock(JUNE_3)
    go = threading.Barrier(3)
    outcomes: list[list[Status]] = []

    def one() -> None:
        c = collector(queue, config, readers(config), clock)
        go.wait()
        outcomes.append([r.status for r in c.run_once().results])

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in posts:
        assert len(snaps(queue, p.id)) == 1
    assert sum(o.count(Status.READ) for o in outcomes) == len(posts)


def test_a_round_stops_when_its_budget_is_spent_and_the_rest_waits_for_the_next(
    queue: Database, config: Config
) -> None:
    """A round given a budget (campaign time) reads until it is spent; the posts it did not
    reach are read by the next round, and a post never read comes before one read already."""
    posts = publish(queue, 6, JUNE_3, channel="facebook")
    clock = FakeClock(JUNE_3 + timedelta(hours=1))
    rs = readers(config)
    rs["facebook"].during = lambda: clock.advance(timedelta(minutes=10))  # each read: 10 min
    c = Collector(queue, config, rs, clock, budget=timedelta(minutes=25))
    first = c.run_once()
    assert [r.status for r in first.results] == [Status.READ] * 3  # 0, 10, 20 min < 25
    assert first.left == 3
    assert [r.target.post_id for r in first.results] == [p.id for p in posts[:3]]
    second = c.run_once()  # the three never read come first, though published as early
    assert [r.target.post_id for r in second.results] == [p.id for p in posts[3:]]
    assert second.left == 0
    clock.advance(config.insights.every)
    third = c.run_once()  # all read once: the one read longest ago first
    assert [r.target.post_id for r in third.results] == [p.id for p in posts[:3]]
    for p in posts:
        assert len(snaps(queue, p.id)) >= 1


def test_a_round_tells_its_readers_when_it_begins_and_ends(queue: Database, config: Config) -> None:
    """Readers that keep what a round shares (Zalo's list pages) are told when a round begins
    and ends, whatever happens in it."""
    publish(queue, 2, JUNE_3, channel="zalo")
    events: list[str] = []

    class Sharing(FakeReader):
        def begin_round(self) -> None:
            events.append("begin")

        def end_round(self) -> None:
            events.append("end")

        def metrics(self, remote_id: str, url: str | None) -> Reading:
            events.append("read")
            return super().metrics(remote_id, url)

    rs: dict[str, FakeReader] = {**readers(config), "zalo": Sharing()}
    collector(queue, config, rs, FakeClock(JUNE_3)).run_once()
    assert events == ["begin", "read", "read", "end"]
    events.clear()
    rs["zalo"].plan = [RuntimeError("a bug in a reader")]
    collector(queue, config, rs, FakeClock(JUNE_3 + config.insights.every)).run_once()
    assert events[0] == "begin" and events[-1] == "end"


def test_a_round_records_its_readings_a_batch_per_transaction(
    queue: Database, config: Config
) -> None:
    """More posts than a batch: every reading recorded, in ceil(n / BATCH) transactions."""
    from publisher.insights import collect

    posts = publish(queue, collect.BATCH + 5, JUNE_3)
    writes = 0
    real_write = queue.write

    def counting_write():  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += 1
        return real_write()

    queue.write = counting_write  # type: ignore[method-assign]
    try:
        rnd = collector(queue, config, readers(config), FakeClock(JUNE_3)).run_once()
    finally:
        queue.write = real_write  # type: ignore[method-assign]
    assert rnd.count(Status.READ) == len(posts)
    assert writes == 2
    for p in posts:
        assert [s.reading.views for s in snaps(queue, p.id)] == [10]


def test_the_daemons_rounds_have_a_tenth_of_the_time_between_them(config: Config) -> None:
    from publisher.app import insights_budget, insights_every
    from publisher.clock import RehearsalClock, SystemClock

    assert insights_budget(config, SystemClock()) == timedelta(minutes=6)
    month = RehearsalClock(datetime.now(UTC), JUNE_3, 30 * 24 * 3600 / 120)  # a month in 2 min
    assert insights_every(config, month) == 1.0  # never more often than a real second
    assert insights_budget(config, month) == timedelta(seconds=0.1 * month.speed)


def test_totals_per_channel_never_invent_a_zero(queue: Database, config: Config) -> None:
    fb = publish(queue, 2, JUNE_3, channel="facebook")
    wp = publish(queue, 1, JUNE_3, channel="portal_stp")
    rs = readers(config)
    rs["portal_stp"].plan = [NoFigures("no stats endpoint")]
    collector(queue, config, rs, FakeClock(JUNE_3)).run_once()
    with queue.read() as s:
        reach = totals(s, channels=config.channels)
    assert reach["facebook"].published == len(fb) and reach["facebook"].read == len(fb)
    assert reach["facebook"].totals["views"] == 10 * len(fb)
    assert reach["facebook"].totals["comments"] is None  # no post reports comments
    assert reach["portal_stp"].without == len(wp) and reach["portal_stp"].totals["views"] is None
    assert reach["zalo"].published == 0 and reach["zalo"].totals["views"] is None


SHIPPED_CONFIG = (Path(__file__).resolve().parents[1] / "config.toml").read_text(encoding="utf-8")
# The shipped [insights] table, whole (from its header to the next blank line)
INSIGHTS = SHIPPED_CONFIG[SHIPPED_CONFIG.index("[insights]") :].split("\n\n", 1)[0]


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ('[insights]\nenabled = "yes"', "insights.enabled: must be true or false, not a string"),
        ('[insights]\nevery = "10m"\nenabled = true', "insights.every: 600s is too often"),
        (
            '[insights]\nafter = "a week"\nenabled = true',
            "insights.after: 'a week' is not a duration",
        ),
        ('[insights]\nevry = "1d"\nenabled = true', "insights.evry: is not a known key"),
    ],
)
def test_a_bad_insights_table_is_one_line_naming_the_key(
    tmp_path: Path, new: str, expected: str
) -> None:
    from tests.test_config import error_for

    line = error_for(tmp_path, INSIGHTS, new)
    assert expected in line and "config.toml" in line


def test_insights_defaults_and_settings(tmp_path: Path) -> None:
    from publisher.config import load_config
    from tests.test_config import SHIPPED, write

    shipped = load_config(write(tmp_path, SHIPPED)).insights
    assert (shipped.enabled, shipped.every, shipped.after) == (
        True,
        timedelta(days=1),
        timedelta(days=7),
    )
    text = SHIPPED.replace(INSIGHTS, '[insights]\nenabled = false\nevery = "12h"\nafter = "14d"', 1)
    got = load_config(write(tmp_path, text)).insights
    assert (got.enabled, got.every, got.after) == (False, timedelta(hours=12), timedelta(days=14))


def test_the_daemons_insights_job_reads_figures_and_its_failures_never_stop_publishing(
    queue: Database, config: Config
) -> None:
    """The daemon's ``insights`` job (APScheduler, real time) runs the collector's round in a
    thread of its own: the first round raises (a bug), the next ones read; passes go on."""
    from publisher.app import make_collector, make_dispatcher
    from publisher.clock import SystemClock
    from publisher.dispatch.daemon import Daemon
    from tests.fakes import FakePlatform

    (p,) = publish(queue, 1, JUNE_3)
    with queue.write() as s:  # nothing left to publish: the passes find nothing due
        for row in s.scalars(select(PostRow).where(PostRow.state == State.APPROVED)):
            row.state = State.DRAFT
    clock = FakeClock(JUNE_3)
    platforms = {cid: FakePlatform(cid, clock.now) for cid in config.channels}
    dispatcher = make_dispatcher(queue, config, platforms, SystemClock(), worker="ins")  # type: ignore[arg-type]
    rs = readers(config)
    collector = make_collector(queue, config, rs, clock, dispatcher=dispatcher)  # type: ignore[arg-type]
    rounds: list[str] = []

    def insights() -> object:
        rounds.append("round")
        if len(rounds) == 1:
            raise RuntimeError("a bug in a round")
        return collector.safe()

    def done() -> bool:
        return len(snaps(queue, p.id)) >= 1 and len(rounds) >= 2

    daemon = Daemon(
        queue,
        dispatcher,
        SystemClock(),
        tick=0.2,
        until=done,
        insights=insights,
        insights_every=1.0,
    )
    watchdog = threading.Timer(20, daemon.stop, args=("watchdog",))
    watchdog.start()
    daemon.run()
    watchdog.cancel()
    assert done(), rounds
    assert daemon.passes >= 1  # publishing went on beside the rounds
    assert rs[p.channel].calls == [f"r{p.id}"]


# -- showing ---------------------------------------------------------------------------------


def _with_figures(queue: Database, config: Config) -> tuple[int, int, int]:
    """Three published posts: one read (1234 views), one whose platform keeps none, one never
    read; their ids."""
    fb = publish(queue, 2, JUNE_3, channel="facebook")
    wp = publish(queue, 1, JUNE_3, channel="portal_stp")
    with queue.write() as s:
        metrics.record(s, fb[0].id, Reading(views=1234, shares=3), JUNE_3 + timedelta(days=1))
        metrics.record(s, wp[0].id, Reading(), JUNE_3, note="the site exposes no views")
    return fb[0].id, wp[0].id, fb[1].id


def test_the_api_post_carries_its_latest_figures(
    queue: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from publisher.store import users
    from publisher.web.app import create_app
    from publisher.web.context import WebContext

    monkeypatch.setenv("PUBLISHER_LANG", "vi")
    read, none, never = _with_figures(queue, config)
    users.add_user(queue, config, "Lê Anh Tuấn", None, None, actor="admin", now=NOW)
    token = users.new_token(queue, config, "Lê Anh Tuấn", actor="admin", now=NOW)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(WebContext(config, queue, FakeClock(JUNE_3)))) as client:
        got = {
            pid: client.get(f"/api/v1/posts/{pid}", headers=auth).json()["figures"]
            for pid in (read, none, never)
        }
        with queue.read() as s:
            approved = s.scalars(select(PostRow.id).where(PostRow.state == State.APPROVED)).first()
        draft = client.get(f"/api/v1/posts/{approved}", headers=auth).json()
    assert got[read]["views"] == 1234 and got[read]["shares"] == 3
    assert got[read]["comments"] is None  # not reported: null, never 0
    assert got[read]["taken_at"] == "2024-06-04T02:00:00+00:00"
    assert got[read]["label"] == "1.234 lượt xem, 3 lượt chia sẻ (đo lúc 04/06/2024 09:00)"
    assert got[none]["available"] is False and got[none]["note"] == "the site exposes no views"
    assert got[none]["label"] == "không có số liệu (the site exposes no views)"
    assert got[never]["available"] is False and got[never]["label"] == "không có số liệu"
    assert draft["state"] == "approved" and draft["figures"] is None


def test_the_web_post_and_status_pages_show_the_figures(
    queue: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_web import member

    monkeypatch.setenv("PUBLISHER_LANG", "vi")
    read, none, never = _with_figures(queue, config)
    c, _csrf = member((queue, config), "tuan.la")
    page = c.get(f"/posts/{read}").text
    assert "Số liệu" in page and "<b>1.234</b>" in page and "04/06/2024 09:00" in page
    assert "không có số liệu (the site exposes no views)" in c.get(f"/posts/{none}").text
    assert "không có số liệu" in c.get(f"/posts/{never}").text
    status = c.get("/status").text
    reach = status[status.index('id="reach"') :]
    fb_name, portal_name = (config.channels[c].name for c in ("facebook", "portal_stp"))
    assert "<td>facebook</td>" not in reach  # the board reads the channels' names, not their ids
    row = reach[reach.index(f"<td>{fb_name}</td>") :].split("</tr>")[0]
    assert "<td>1.234</td>" in row and "<td>2</td>" in row  # 2 published
    portal = reach[reach.index(f"<td>{portal_name}</td>") :].split("</tr>")[0]
    assert "không có số liệu" in portal


def test_status_json_has_each_channels_reach(queue: Database, config: Config) -> None:
    from publisher.store.status import gather

    _with_figures(queue, config)
    reach = gather(queue, config, JUNE_3 + timedelta(days=2))["reach"]
    assert set(reach) == set(config.channels)
    assert reach["facebook"]["views"] == 1234 and reach["facebook"]["published"] == 2
    assert reach["facebook"]["read"] == 1 and reach["facebook"]["comments"] is None
    assert reach["portal_stp"]["without_figures"] == 1 and reach["portal_stp"]["views"] is None


def test_a_rehearsal_ends_with_figures_stored_and_shown(campaign: Path) -> None:
    """The README's main command, shortened: the rehearsal reads figures on its virtual days
    (from the sandbox, growing with the posts' age) and once at its end; its summary shows each
    channel's views and how to build the report."""
    import json
    import os
    import subprocess
    import sys

    from tests.fakes import load_and_approve

    load_and_approve(campaign)
    copy = campaign / "rehearsal.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["run", "--rehearse", "15s", "--sandbox", "--rehearsal-db", str(copy)]
    out = subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = out.stdout[out.stdout.index("Reach (latest figures)") :]
    assert f"build its report: PUBLISHER_DATABASE_URL=sqlite:///{copy} publisher report" in summary
    facebook = next(line for line in summary.splitlines() if "facebook" in line)
    assert "no figures" not in facebook
    db = open_database(f"sqlite:///{copy}")
    try:
        with db.read() as s:
            published = list(s.scalars(select(PostRow).where(PostRow.state == State.PUBLISHED)))
            history = metrics.snapshots(s)
    finally:
        db.close()
    read = {snap.post_id for snap in history}
    assert read == {p.id for p in published}  # every published post read at least once
    by_post: dict[int, list[metrics.Snapshot]] = defaultdict(list)
    for snap in history:
        by_post[snap.post_id].append(snap)
    fb = [p.id for p in published if p.channel == "facebook"]
    first = min(fb, key=lambda pid: by_post[pid][0].taken_at)
    views = [s.reading.views for s in by_post[first]]
    assert len(views) >= 3 and all(v is not None for v in views)  # read on several days
    assert views == sorted(views) and views[-1] > views[0]  # growing with the post's age
    status = subprocess.run(
        [sys.executable, "-m", "publisher", "status", "--json"],
        capture_output=True,
        text=True,
        env={**env, "PUBLISHER_DATABASE_URL": f"sqlite:///{copy}"},
        check=True,
    )
    assert json.loads(status.stdout)["reach"]["facebook"]["views"] > 0


def test_a_platforms_reason_for_no_figures_is_shown_in_the_readers_language(
    queue: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapters' reasons are stored in English (the record) and shown translated: the web
    post page and ``summary`` say why in Vietnamese; a note not in the catalog shows as stored."""
    from publisher.i18n import use_language
    from publisher.store.reach import note_text
    from tests.test_web import member

    reason = 'the site exposes no view counts (stats = "none")'
    vi = 'trang không công bố số lượt xem (stats = "none")'
    with use_language("vi"):
        assert note_text(reason) == vi and note_text("anything else") == "anything else"
    with use_language("en"):
        assert note_text(reason) == reason
    monkeypatch.setenv("PUBLISHER_LANG", "vi")
    post = publish(queue, 1, JUNE_3, channel="portal_stp")[0]
    with queue.write() as s:
        metrics.record(s, post.id, Reading(), JUNE_3, note=reason)
    c, _csrf = member((queue, config), "tuan.la")
    page = c.get(f"/posts/{post.id}").text
    assert (
        f"không có số liệu ({vi})".replace('"', "&#34;") in page
        or f"không có số liệu ({vi})" in page
    )
