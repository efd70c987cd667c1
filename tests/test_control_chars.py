"""Control characters and bidi overrides never enter the queue or reach a terminal (issue 12,
item 24): stripped at intake, from platform answers before storing, and when printing."""

from __future__ import annotations

import csv
import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from publisher.channels import build
from publisher.cli.main import cli
from publisher.clock import FakeClock
from publisher.config import Config, load_config
from publisher.content import read_messages
from publisher.editorial import intake
from publisher.editorial.load import approve, load
from publisher.signing import make_secret
from publisher.store.db import Database
from publisher.store.models import AuditEntry, MessageRow, PostEvent, PostRow
from publisher.text import clean
from tests.fakes import webhook_pbgdpl

NOW = datetime(2024, 5, 20, 3, 0, tzinfo=UTC)
ESC = "\x1b"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
BAD = [ESC, RLO, "\x07", "\x9b", "\x00", "\x7f", "\r"]


@pytest.fixture
def queue_db(db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The test's queue (SQLite or PostgreSQL), which the commands run in-process open too."""
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", db.url)
    return db


def dirty(text: str) -> bool:
    return any(ch in text for ch in BAD) or any(ch in text for ch in BIDI)


# -- the function ----------------------------------------------------------------------------


def test_clean_strips_controls_and_bidi_overrides_but_keeps_newline_and_tab() -> None:
    assert clean(f"a{ESC}[2Jb") == "a[2Jb"
    assert clean(f"x{RLO}y\u2066z\u2069!") == "xyz!"
    assert clean("line 1\r\nline 2\tend\n") == "line 1\nline 2\tend\n"
    assert clean("a\x00b\x07c\x7fd\x85e\x9bf\x08g") == "abcdefg"
    text = "Trẻ em hôm nay, thế giới ngày mai. #BaoVeTreEm ‘’ “” – —\u200d"
    assert clean(text) == text


@given(st.text())
def test_clean_leaves_no_control_or_bidi_character(text: str) -> None:
    out = clean(text)
    assert all(unicodedata.category(c) != "Cc" or c in "\n\t" for c in out)
    assert not any(c in BIDI for c in out)
    assert clean(out) == out
    kept = [c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc"]
    assert out == "".join(c for c in kept if c not in BIDI)


# -- intake ----------------------------------------------------------------------------------


def write_article(campaign: Path) -> Path:
    path = campaign / "messages" / "articles" / "99-bidi.md"
    path.write_text(
        "---\n"
        'title: "Quyền trẻ em \\e[2J\\u202Egnp.exe"\n'
        'summary: "Tóm tắt\\u2066 an toàn\\u2069 \\x07"\n'
        "channels: [portal_stp, facebook]\n"
        "---\n"
        f"Đoạn một{ESC}[31m đỏ{RLO}.\r\n\r\nĐoạn hai\x9b2J.\r\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.usefixtures("queue_db")
def test_a_content_file_with_esc_and_rlo_is_stored_and_rendered_without_them(
    campaign: Path, config: Config, db: Database
) -> None:
    write_article(campaign)
    messages, problems = read_messages(config)
    assert problems == []
    msg = next(m for m in messages if m.key == "articles/99-bidi")
    assert msg.title == "Quyền trẻ em [2Jgnp.exe"
    assert msg.summary == "Tóm tắt an toàn"
    assert msg.body == "Đoạn một[31m đỏ.\n\nĐoạn hai2J."
    load(db, config, NOW, "vanphong")
    with db.read() as s:
        row = s.scalars(select(MessageRow).where(MessageRow.key == "articles/99-bidi")).one()
        assert not dirty(row.title) and row.title == msg.title
        posts = list(s.scalars(select(PostRow).where(PostRow.message_id == row.id)))
    assert {p.channel for p in posts} == {"portal_stp", "facebook"}
    for p in posts:
        for value in p.fields.values():
            assert not dirty(value), (p.channel, value)
    portal = next(p for p in posts if p.channel == "portal_stp")
    shown = CliRunner().invoke(cli, ["queue", "show", str(portal.id)])
    assert shown.exit_code == 0, shown.output
    assert "Quyền trẻ em [2Jgnp.exe" in shown.output and not dirty(shown.output)


@pytest.mark.usefixtures("queue_db")
def test_queue_add_flags_are_cleaned(campaign: Path, config: Config, db: Database) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "queue",
            "add",
            "--kind",
            "slogan",
            "--text",
            f"Trẻ em{ESC}[2J hôm nay{RLO}, thế giới ngày mai.\x07",
            "--channel",
            "facebook",
            "--as",
            "vanphong",
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted((campaign / "messages" / "slogans").glob("*.md"))[-1]
    assert not dirty(written.read_text(encoding="utf-8"))
    with db.read() as s:
        titles = list(s.scalars(select(MessageRow.title)))
    assert "Trẻ em[2J hôm nay, thế giới ngày mai." in titles
    assert not any(dirty(t) for t in titles)


@pytest.mark.usefixtures("queue_db")
def test_csv_cells_are_cleaned(campaign: Path, config: Config, db: Database) -> None:
    path = campaign / "posts.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["kind", "title", "summary", "body", "channels"])
        w.writerow(
            [
                "article",
                f"Tiêu đề{RLO}abc",
                f"Tóm tắt{ESC}]0;pwned\x07",
                f"Thân bài\u2067 một.\r\nHai{ESC}[2J.",
                "facebook",
            ]
        )
    result = intake.import_csv(db, config, path, actor="vanphong", now=NOW)
    (written,) = result.files
    assert not dirty(written.read_text(encoding="utf-8"))
    with db.read() as s:
        row = s.scalars(select(MessageRow).where(MessageRow.key.like("imported/%"))).one()
    assert (row.title, row.summary) == ("Tiêu đềabc", "Tóm tắt]0;pwned")


# -- platform strings ------------------------------------------------------------------------


def webhook_answer(status: int, payload: dict[str, str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload)

    return httpx.Client(transport=httpx.MockTransport(handler))


def publish_portal(campaign: Path, db: Database, client: httpx.Client) -> tuple[PostRow, str, str]:
    """Publish the first portal_pbgdpl post through the webhook adapter on ``client`` (the
    campaign's portal_pbgdpl made its webhook channel) and return it (reloaded) with what
    ``status`` and ``status --json`` print afterwards."""
    from publisher.dispatch.dispatcher import Dispatcher

    config = load_config(webhook_pbgdpl(campaign))
    load(db, config, NOW, "vanphong")
    approve(db, [], everything=True, actor="tuan.la", now=NOW)
    with db.read() as s:
        post = s.scalars(
            select(PostRow).where(PostRow.channel == "portal_pbgdpl").order_by(PostRow.due_at)
        ).first()
    assert post is not None and post.due_at is not None
    channel = config.channels["portal_pbgdpl"]
    clock = FakeClock(post.due_at)
    adapter = build(
        channel, {"signing_secret": make_secret(b"ABC" * 8)}, client=client, clock=clock
    )
    Dispatcher(db, {"portal_pbgdpl": adapter}, clock, worker="w1").run_once()
    with db.read() as s:
        done = s.get_one(PostRow, post.id)
    text = CliRunner().invoke(cli, ["status"])
    as_json = CliRunner().invoke(cli, ["status", "--json"])
    assert text.exit_code == 0 and as_json.exit_code == 0, text.output + as_json.output
    return done, text.output, as_json.output


@pytest.mark.usefixtures("queue_db")
def test_a_platform_error_with_escapes_is_stored_and_shown_without_them(
    campaign: Path, db: Database
) -> None:
    client = webhook_answer(400, {"error": f"bad {ESC}[2J{ESC}[31mtitle{RLO} \x9b0m"})
    post, text, as_json = publish_portal(campaign, db, client)
    assert post.state == "failed"
    assert post.last_error is not None and not dirty(post.last_error)
    assert "bad [2J[31mtitle 0m" in post.last_error
    with db.read() as s:
        causes = list(s.scalars(select(PostEvent.cause).where(PostEvent.post_id == post.id)))
        details = list(s.scalars(select(AuditEntry.detail)))
    assert not any(dirty(c) for c in causes + details)
    assert "bad [2J[31mtitle" in text and ESC not in text and not dirty(text)
    problems = json.loads(as_json)["problems"]
    assert any("bad [2J[31mtitle" in p["reason"] for p in problems)
    assert "\\u001b" not in as_json and not dirty(as_json)


@pytest.mark.usefixtures("queue_db")
def test_a_receipt_with_escapes_is_stored_without_them(campaign: Path, db: Database) -> None:
    client = webhook_answer(201, {"id": f"77{ESC}[2J", "url": f"https://p.example/{RLO}77"})
    post, _text, _json = publish_portal(campaign, db, client)
    assert post.state == "published"
    assert (post.remote_id, post.remote_url) == ("77[2J", "https://p.example/77")


@pytest.mark.usefixtures("queue_db")
def test_old_rows_are_printed_safely(campaign: Path, config: Config, db: Database) -> None:
    """Rows written before the cleaning (or by hand) are cleaned when printed."""
    load(db, config, NOW, "vanphong")
    with db.write() as s:
        post = s.scalars(select(PostRow).order_by(PostRow.id)).first()
        assert post is not None
        pid = post.id
        s.execute(
            update(PostRow)
            .where(PostRow.id == pid)
            .values(state="failed", last_error=f"x{ESC}[2J", remote_id=f"r{ESC}[K")
        )
        s.add(
            PostEvent(
                post_id=pid,
                at=NOW,
                actor=f"daemon{RLO}",
                from_state="draft",
                to_state="failed",
                cause=f"old cause {ESC}[2J{RLO}",
            )
        )
        s.execute(update(AuditEntry).values(detail=f"old detail {ESC}]0;t\x07"))
    runner = CliRunner()
    for args in (
        ["status"],
        ["status", "--json"],
        ["queue", "show", str(pid)],
        ["queue", "show", str(pid), "--json"],
        ["audit"],
        ["audit", "--json"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        assert not dirty(result.output), args
        assert "\\u001b" not in result.output and "\\u202e" not in result.output, args
    assert "old cause [2J" in runner.invoke(cli, ["status"]).output
    assert "old detail ]0;t" in runner.invoke(cli, ["audit"]).output


@pytest.mark.parametrize("ch", ["\x1b", "\u202e", "\x07"])
def test_text_in_cleaned_intake_files_stays_clean_on_disk(ch: str) -> None:
    text = intake.render_file({"kind": "slogan", "title": f"a{ch}b"}, f"c{ch}d\r\ne")
    assert not dirty(text) and "title: ab" in text and "cd\ne" in text
