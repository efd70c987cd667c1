"""The iCalendar export, parsed back with icalendar: every post once, stable UIDs, local times."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

from icalendar import Calendar, Event
from sqlalchemy import select

from publisher.config import Config
from publisher.documents.calendar_html import load_extra
from publisher.documents.calendar_ics import plain_text, post_uid, render_ics, shorten
from publisher.documents.preview import Item, items, to_json
from publisher.editorial.load import load
from publisher.store.db import Database, open_database
from publisher.store.models import PostRow
from tests.fakes import post_count, set_state

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
GENERATED = datetime(2024, 5, 21, 1, 30, tzinfo=UTC)
TZID = "Asia/Ho_Chi_Minh"


def export(
    db: Database, config: Config, when: datetime = GENERATED, **filters: bool
) -> tuple[list[Item], bytes]:
    entries = items(db, config, **filters)
    extra = load_extra(db, [i.id for i in entries])
    return entries, render_ics(entries, config, generated_at=when, extra=extra)


def events(data: bytes) -> dict[str, Event]:
    """The VEVENTs by UID; fails if a UID appears twice."""
    out: dict[str, Event] = {}
    for ev in Calendar.from_ical(data).walk("VEVENT"):
        uid = str(ev["UID"])
        assert uid not in out, f"UID {uid} appears twice"
        out[uid] = ev
    return out


def uids(db: Database, entries: list[Item]) -> dict[int, str]:
    extra = load_extra(db, [i.id for i in entries])
    return {i.id: post_uid(i, extra[i.id]) for i in entries}


def test_every_post_is_one_event_at_its_preview_time(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    entries, data = export(db, config)
    assert len(entries) == post_count(db) > 0
    by_uid = events(data)
    expected = uids(db, entries)
    assert set(by_uid) == set(expected.values())
    preview = {p["id"]: p for p in json.loads(to_json(entries, config))}
    names = {cid: ch.name for cid, ch in config.channels.items()}
    for item in entries:
        ev = by_uid[expected[item.id]]
        start = ev.decoded("DTSTART")
        assert start == item.due_at
        assert ev["DTSTART"].params["TZID"] == TZID
        # The +07:00 wall time in the file is the one `publisher preview` shows.
        assert start.isoformat() == preview[item.id]["due_at"]
        assert ev.to_ical().decode().count(f"DTSTART;TZID={TZID}:{start:%Y%m%dT%H%M%S}") == 1
        assert ev.decoded("DURATION") == timedelta(minutes=30)
        assert str(ev["SUMMARY"]) == f"[{names[item.channel]}] {item.title}"
        assert [str(c) for c in ev["CATEGORIES"].cats] == [item.channel, item.kind]
        assert str(ev["STATUS"]) == "TENTATIVE"  # every post is still a draft
        assert ev.decoded("DTSTAMP") == GENERATED
        assert "URL" not in ev


def test_the_calendar_names_the_campaign_and_its_time_zone(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    cal = Calendar.from_ical(export(db, config)[1])
    assert str(cal["PRODID"]).startswith("-//publisher//")
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["X-WR-CALNAME"]) == "Tháng hành động vì trẻ em năm 2024"
    assert str(cal["X-WR-TIMEZONE"]) == TZID
    zones = cal.walk("VTIMEZONE")
    assert [str(z["TZID"]) for z in zones] == [TZID]
    latest = max(zones[0].walk("STANDARD"), key=lambda c: c.decoded("DTSTART"))
    assert latest.decoded("TZOFFSETTO") == timedelta(hours=7)


def test_vietnamese_text_survives_the_round_trip(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    entries, data = export(db, config)
    data.decode("utf-8")  # folding never splits a multi-byte character
    by_uid = events(data)
    expected = uids(db, entries)
    hotline = "hãy gọi Tổng đài điện thoại quốc gia bảo vệ trẻ em 111"
    for item in entries:
        ev = by_uid[expected[item.id]]
        summary, description = str(ev["SUMMARY"]), str(ev["DESCRIPTION"])
        assert unicodedata.is_normalized("NFC", summary + description)
        assert item.title in summary
        assert "<p" not in description and "&amp;" not in description  # plain text, not HTML
        assert "Trạng thái: Nháp" in description
        body = description.split("\n\nKênh: ")[0]
        assert len(body) <= 500
        if item.kind == "slogan":  # each slogan on each channel states the hotline
            assert hotline in description, item.id


def test_uids_are_stable_across_exports_edits_and_rebuilds(
    db: Database, config: Config, tmp_path: Path
) -> None:
    load(db, config, NOW, "t")
    entries, first = export(db, config)
    again = export(db, config, GENERATED + timedelta(days=3))[1]
    assert events(first).keys() == events(again).keys()
    strip = lambda data: [ln for ln in data.splitlines() if not ln.startswith(b"DTSTAMP")]  # noqa: E731
    assert strip(first) == strip(again)  # only the stamp differs

    edited = config.messages_dir / "articles" / "02-quyen-tre-em.md"
    edited.write_text(
        edited.read_text(encoding="utf-8") + "\nThêm một đoạn mới về quyền trẻ em.\n",
        encoding="utf-8",
    )
    load(db, config, LATER, "t")
    after = events(export(db, config)[1])
    before = events(first)
    assert after.keys() == before.keys()
    changed = {
        uid for uid, ev in after.items() if ev.decoded("SEQUENCE") > before[uid].decoded("SEQUENCE")
    }
    key = "articles/02-quyen-tre-em"
    ids = uids(db, entries)
    assert changed == {ids[i.id] for i in entries if i.message == key}
    assert len(changed) == 3
    for uid in changed:  # the text changed, the time did not
        assert after[uid].decoded("DTSTART") == before[uid].decoded("DTSTART")

    rebuilt = open_database(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    try:
        load(rebuilt, config, LATER + timedelta(days=1), "t")
        fresh = events(export(rebuilt, config)[1])
    finally:
        rebuilt.close()
    assert fresh.keys() == after.keys()
    for uid, ev in fresh.items():
        assert ev.decoded("DTSTART") == after[uid].decoded("DTSTART")
        assert str(ev["SUMMARY"]) == str(after[uid]["SUMMARY"])


def test_states_become_status_url_and_reason(db: Database, config: Config) -> None:
    load(db, config, NOW, "t")
    with db.read() as s:

        def ids(channel: str) -> list[int]:
            query = select(PostRow.id).where(PostRow.channel == channel).order_by(PostRow.id)
            return list(s.scalars(query))

        fb, extra_fb = ids("facebook")[:2]
        zalo, portal = ids("zalo")[0], ids("portal_stp")[0]
    url = "https://www.facebook.com/100000000000000/posts/987654321"
    set_state(db, fb, LATER, "published", "published", remote_url=url, published_at=LATER)
    set_state(db, zalo, LATER, "failed", "refused: -216 Access token is invalid", last_error="-216")
    set_state(db, portal, LATER, "cancelled", "load: the file was removed")
    set_state(db, extra_fb, LATER, "approved", "approved by Lê Anh Tuấn")
    entries, data = export(db, config, include_cancelled=True)
    ids = uids(db, entries)
    by_uid = events(data)
    assert len(by_uid) == len(entries) == post_count(db)
    assert str(by_uid[ids[fb]]["STATUS"]) == "CONFIRMED"
    assert str(by_uid[ids[fb]]["URL"]) == url
    assert "Trạng thái: Đã đăng" in str(by_uid[ids[fb]]["DESCRIPTION"])
    assert str(by_uid[ids[zalo]]["STATUS"]) == "TENTATIVE"
    assert (
        "Lý do: Nền tảng từ chối bài hoặc đã hết số lần thử lại. "
        "Chi tiết: refused: -216 Access token is invalid"
    ) in str(by_uid[ids[zalo]]["DESCRIPTION"])
    assert str(by_uid[ids[portal]]["STATUS"]) == "CANCELLED"
    assert str(by_uid[ids[extra_fb]]["STATUS"]) == "CONFIRMED"
    assert by_uid[ids[fb]].decoded("SEQUENCE") == int(LATER.timestamp())
    assert by_uid[ids[fb]].decoded("LAST-MODIFIED") == LATER


def test_unplanned_posts_and_unsafe_links_are_left_out(config: Config) -> None:
    due = datetime(2024, 6, 3, 0, 30, tzinfo=UTC)
    base = Item(1, due, "facebook", "slogans/x", "slogan", "Tiêu đề", "Nội dung", {}, "draft", None)
    unplanned = dataclasses.replace(base, id=2, due_at=None, note="không còn chỗ trống")
    evil = dataclasses.replace(base, id=3, state="published")
    from publisher.documents.calendar_html import PostExtra

    extra = {3: PostExtra(remote_url="javascript:alert(1)", occurrence=2)}
    data = render_ics([base, unplanned, evil], config, generated_at=GENERATED, extra=extra)
    by_uid = events(data)
    assert len(by_uid) == 2
    assert b"javascript" not in data
    assert post_uid(evil, extra[3]) in by_uid
    assert post_uid(base, None).startswith("post-1-")  # no occurrence known: the id keeps it unique


def test_plain_text_and_shorten() -> None:
    html = (
        '<p class="sapo"><strong>Tóm tắt &amp; ý chính</strong></p>\n<h2>Mục 1</h2><p>Một\nhai</p>'
    )
    assert plain_text(html) == "Tóm tắt & ý chính\n\nMục 1\n\nMột\nhai"
    assert shorten("một hai ba bốn", 9) == "một hai…"
    assert shorten("một hai ba bốn", 10) == "một hai…"
    assert shorten("một hai ba bốn", 11) == "một hai ba…"
    assert shorten("ngắn", 9) == "ngắn"
