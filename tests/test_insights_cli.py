"""``publisher insights``: reads what is due (or everything since a date), says per post what
was read, and refuses bad arguments in one line. The platforms are fake readers put in place
of the adapters (tests/test_metrics_read.py reads the real ones)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.config import load_config
from publisher.metrics import NoFigures, Reading
from publisher.states import State
from publisher.store import audit_key, metrics
from publisher.store.db import open_database
from publisher.store.models import MetaRow, PostRow
from tests.fakes import dummy_env, load_and_approve, one_line_error, run, set_state

JUNE_3 = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)


class Reader:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.calls: list[str] = []

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        self.calls.append(remote_id)
        if self.channel == "portal_stp":
            raise NoFigures("the site exposes no views")
        return Reading(views=1234, reactions=5, source="fake")

    def pacing(self) -> float:
        return 0.0


@pytest.fixture
def published(campaign: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Reader]:
    """The campaign's queue with one post per channel published on 3 June; fake readers."""
    load_and_approve(campaign)
    dummy_env(campaign)
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url, audit_key=audit_key.from_environment(config))
    with db.read() as s:
        firsts = {}
        for p in s.scalars(select(PostRow).order_by(PostRow.id)):
            firsts.setdefault(p.channel, p.id)
    for pid in firsts.values():
        set_state(
            db,
            pid,
            JUNE_3,
            State.PUBLISHED,
            "published",
            remote_id=f"r{pid}",
            remote_url=f"https://x.test/{pid}",
            published_at=JUNE_3,
        )
    db.close()
    readers = {cid: Reader(cid) for cid in config.channels}
    monkeypatch.setattr("publisher.app.build_adapters", lambda *_a: readers)
    return readers


def stored(campaign: Path) -> list[metrics.Snapshot]:
    db = open_database(load_config(campaign / "config.toml").database_url)
    try:
        with db.read() as s:
            return metrics.snapshots(s)
    finally:
        db.close()


def test_since_reads_every_post_published_since_and_says_what_was_read(
    campaign: Path, published: dict[str, Reader]
) -> None:
    out = run("insights", "--since", "1/6/2024")
    assert out.exit_code == 0, out.output
    assert "1,234 views, 5 reactions" in out.stdout
    assert "no figures (the site exposes no views)" in out.stdout
    assert "post(s) read" in out.stdout
    snaps = stored(campaign)
    assert len(snaps) == len(published)
    assert sum(1 for s in snaps if s.note) == 1
    again = run("insights", "--since", "2024-06-01", "--channel", "facebook")
    assert again.exit_code == 0
    assert len(stored(campaign)) == len(published) + 1  # facebook read again, nothing else
    assert run("insights", "--since", "2024-06-01").exit_code == 0
    assert len(published["portal_stp"].calls) == 1  # no figures there: never asked again
    assert len(published["facebook"].calls) == 3


def test_without_since_the_campaign_is_long_over_so_nothing_is_due(
    campaign: Path, published: dict[str, Reader]
) -> None:
    out = run("insights")
    assert out.exit_code == 0
    assert "No post is due a reading" in out.stdout
    assert stored(campaign) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--channel", "twitter"), "error: --channel: 'twitter' is not an enabled channel"),
        (("--sandbox",), "is not a rehearsal's database"),
        (("--sandbox", "--sandbox-url", "http://127.0.0.1:1"), "give --sandbox or --sandbox-url"),
    ],
)
def test_bad_arguments_are_one_line(
    campaign: Path, published: dict[str, Reader], args: tuple[str, ...], expected: str
) -> None:
    line = one_line_error(run("insights", *args))
    assert expected in line
    assert stored(campaign) == []


def test_a_bad_date_is_refused(campaign: Path, published: dict[str, Reader]) -> None:
    out = run("insights", "--since", "June")
    assert out.exit_code == 2 and "is not a date" in out.output


def test_a_rehearsals_database_needs_the_sandbox(
    campaign: Path, published: dict[str, Reader]
) -> None:
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url)
    with db.write() as s:
        for key, value in {
            "rehearsal.real_start": datetime.now(UTC).isoformat(),
            "rehearsal.virtual_start": JUNE_3.isoformat(),
            "rehearsal.speed": "1000.0",
        }.items():
            s.add(MetaRow(key=key, value=value))
    db.close()
    line = one_line_error(run("insights", "--since", "2024-06-01"))
    assert "is a rehearsal's database" in line and "--sandbox" in line
    assert stored(campaign) == []
    # a sandbox started now is given the rehearsal's posts: its "no figures" is believed
    out = run("insights", "--sandbox", "--since", "2024-06-01")
    assert out.exit_code == 0, out.output
    assert "warning" not in out.stderr
    assert "no figures (the site exposes no views)" in out.stdout
    snaps = stored(campaign)
    assert len(snaps) == len(published) and sum(1 for s in snaps if s.note) == 1
    # dated on the rehearsal's timeline, going on from where it stopped
    assert all(s.taken_at >= JUNE_3 and s.taken_at.year == 2024 for s in snaps)


def test_status_and_queue_show_tell_the_figures(
    campaign: Path, published: dict[str, Reader]
) -> None:
    import json

    assert run("insights", "--since", "2024-06-01").exit_code == 0
    info = json.loads(run("status", "--json").stdout)
    assert info["reach"]["facebook"]["views"] == 1234
    assert info["reach"]["portal_stp"]["views"] is None  # no figures: null, never 0
    assert info["reach"]["portal_stp"]["without_figures"] == 1
    text = run("status").stdout
    assert "Reach (latest figures)" in text and "1,234" in text and "no figures" in text
    db = open_database(load_config(campaign / "config.toml").database_url)
    with db.read() as s:
        fb = s.scalars(
            select(PostRow.id).where(PostRow.channel == "facebook", PostRow.state == "published")
        ).one()
        approved = s.scalars(select(PostRow.id).where(PostRow.state == "approved")).first()
    db.close()
    shown = json.loads(run("queue", "show", str(fb), "--json").stdout)["figures"]
    assert shown["views"] == 1234 and shown["reactions"] == 5 and shown["shares"] is None
    assert "Figures: views 1,234, reactions 5 (read " in run("queue", "show", str(fb)).stdout
    assert json.loads(run("queue", "show", str(approved), "--json").stdout)["figures"] is None


def test_a_finished_rehearsal_is_read_again_on_a_sandbox_given_its_posts(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's main command, then ``insights --sandbox`` on its database: the new sandbox
    is given the rehearsal's posts, born where the first one had them, so every figure is at
    least the one the rehearsal read last, read later on the rehearsal's timeline."""
    import os
    import subprocess
    import sys

    load_and_approve(campaign)
    copy = campaign / "rehearsal.db"
    args = ["run", "--rehearse", "12s", "--sandbox", "--rehearsal-db", str(copy)]
    done = subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PUBLISHER_LANG": "en"},
    )
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"sqlite:///{copy}")
    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url)
    with db.read() as s:
        kept = s.get(MetaRow, "rehearsal.births")
        read = {
            p.id: p.remote_id
            for p in s.scalars(select(PostRow).where(PostRow.state == State.PUBLISHED))
            if config.channels[p.channel].adapter in ("facebook", "zalo")
        }
    db.close()
    assert kept is not None and read  # the rehearsal kept its sandbox's births
    births = json.loads(kept.value)["births"]
    assert {rid for rid in read.values()} <= {k.split(":", 1)[1] for k in births}
    before = {s.post_id: s for s in latest_of(campaign)}

    out = run("insights", "--sandbox", "--since", "2024-06-01")
    assert out.exit_code == 0, out.output
    assert "warning" not in out.stderr and "not read" not in out.stdout
    after = {s.post_id: s for s in latest_of(campaign)}
    for pid in read:
        old, new = before[pid], after[pid]
        assert new.taken_at > old.taken_at, pid  # read anew, later on the rehearsal's clock
        assert new.taken_at.year == 2024
        assert new.reading.views is not None and old.reading.views is not None
        assert new.reading.views >= old.reading.views, pid
        assert (new.reading.reactions or 0) >= (old.reading.reactions or 0), pid
    assert sum(after[p].reading.views or 0 for p in read) > sum(
        before[p].reading.views or 0 for p in read
    )  # and the young posts' reach went on growing
    # the timeline's next daily reading, however long the reading took in real time
    last = max(s.taken_at for s in before.values())
    newest = max(after[p].taken_at for p in read)
    assert timedelta(0) < newest - last <= config.insights.every + timedelta(minutes=1)
    # run again on it (resumed, a new sandbox given the posts): nothing dated past the reading
    # period (its last reading starts within it, or not at all), however far its clock has gone
    db = open_database(config.database_url)
    with db.write() as s:  # run again a real minute later: months later on its clock
        start = s.get(MetaRow, "rehearsal.real_start")
        assert start is not None
        start.value = (datetime.fromisoformat(start.value) - timedelta(minutes=1)).isoformat()
    db.close()
    env = {k: v for k, v in os.environ.items() if k != "PUBLISHER_DATABASE_URL"}
    again = subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**env, "PUBLISHER_LANG": "en"},
    )
    assert again.returncode == 0 and "Resuming" in again.stdout, again.stderr
    from publisher.insights.collect import reading_ends

    assert max(s.taken_at for s in stored(campaign)) <= reading_ends(config) + timedelta(days=1)


def latest_of(campaign: Path) -> list[metrics.Snapshot]:
    """Each post's last snapshot."""
    found: dict[int, metrics.Snapshot] = {}
    for snap in sorted(stored(campaign), key=lambda s: s.taken_at):
        found[snap.post_id] = snap
    return list(found.values())


def test_while_a_rehearsal_runs_its_sandbox_keeps_its_clock_and_is_given_its_posts(
    campaign: Path, published: dict[str, Reader]
) -> None:
    from publisher.sandbox.server import Sandbox
    from publisher.states import RunMode
    from publisher.store.models import DaemonRow

    config = load_config(campaign / "config.toml")
    db = open_database(config.database_url)
    started = datetime.now(UTC)
    with db.write() as s:
        for key, value in {
            "rehearsal.real_start": started.isoformat(),
            "rehearsal.virtual_start": JUNE_3.isoformat(),
            "rehearsal.speed": "1000.0",
        }.items():
            s.add(MetaRow(key=key, value=value))
        s.add(  # its daemon, alive on another host
            DaemonRow(
                worker="elsewhere:4242:abcdef",
                host="elsewhere",
                pid=4242,
                mode=RunMode.REHEARSE,
                started_at=started,
                beat_at=datetime.now(UTC),
                stopped_at=None,
            )
        )
    db.close()
    with Sandbox() as sb:
        sb.follow(JUNE_3, 1000.0)
        anchor = sb.ctx.virtual.state()
        out = run("insights", "--sandbox-url", sb.url, "--since", "2024-06-01")
        assert out.exit_code == 0, out.output
        assert sb.ctx.virtual.state() == anchor  # the running rehearsal's clock, untouched
        given = sb.births()
    # its published posts it did not hold (a WordPress "r1" is no post id: left out)
    assert {k.split(":", 1)[0] for k in given} == {"facebook", "zalo"}
    assert len(stored(campaign)) == len(published)
