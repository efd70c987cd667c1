from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from publisher.cli.main import cli
from tests.fakes import run

ROOT = Path(__file__).resolve().parents[1]
SLOGANS = [
    "Hành động thiết thực, ưu tiên nguồn lực cho trẻ em.",
    "Ưu tiên nguồn lực cho trẻ em để đáp ứng yêu cầu phát triển đất nước phồn vinh, hạnh phúc.",
    "Toàn dân chăm sóc, giáo dục và bảo vệ trẻ em.",
    "Tăng cường chăm sóc, giáo dục và bảo vệ trẻ em vì sự phát triển đất nước phồn vinh, hạnh phúc.",
    "Phòng ngừa và chấm dứt lao động trẻ em vì sự phát triển bền vững.",
    "Phòng, chống tai nạn, thương tích để bảo đảm quyền được sống của trẻ em.",
]


def db_bytes(campaign: Path) -> bytes:
    """The database's content, via a dump that ignores WAL layout."""
    import sqlite3

    path = campaign / "publisher.db"
    if not path.exists():
        return b""
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump()).encode()


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


def test_load_then_preview_json_lists_the_campaign(campaign: Path) -> None:
    assert run("load").exit_code == 0
    result = run("preview", "--format", "json")
    assert result.exit_code == 0
    items: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(items) == 72
    for item in items:
        assert set(item) >= {"id", "due_at", "channel", "message", "kind", "title", "text", "state"}
        assert re.fullmatch(r"2024-06-(0[1-9]|[12]\d|30)T\d\d:\d\d:00\+07:00", item["due_at"])
        assert item["kind"] in ("slogan", "article")
    slogans = Counter(
        (s, i["channel"]) for i in items if i["kind"] == "slogan" for s in SLOGANS if s in i["text"]
    )
    assert set(slogans) == {
        (s, c) for s in SLOGANS for c in ("portal_stp", "portal_pbgdpl", "facebook", "zalo")
    }
    articles = {(i["message"], i["channel"]) for i in items if i["kind"] == "article"}
    assert len(articles) == 8 * 3
    assert {c for _, c in articles} == {"portal_stp", "facebook", "zalo"}
    assert result.stdout == run("preview", "--format", "json").stdout


def test_preview_opens_no_network_connection(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("load").exit_code == 0

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("preview tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    table = run("preview")
    assert table.exit_code == 0
    assert "Thứ Bảy, 01/06/2024 · Ngày Quốc tế Thiếu nhi" in table.stdout
    assert "Tổng cộng 72 bài đăng" in table.stdout
    assert run("preview", "--format", "json").exit_code == 0


def test_preview_filters_and_output_file(campaign: Path) -> None:
    run("load")
    out = campaign / "zalo.json"
    result = run(
        "preview",
        "--format",
        "json",
        "--channel",
        "zalo",
        "--from",
        "12/6/2024",
        "--to",
        "2024-06-12",
        "-o",
        str(out),
    )
    assert result.exit_code == 0 and result.stdout == ""
    items = json.loads(out.read_text("utf-8"))
    assert [i["channel"] for i in items] == ["zalo"]
    assert items[0]["due_at"].startswith("2024-06-12T")
    assert items[0]["message"] == "articles/05-phong-chong-lao-dong-tre-em"
    assert "Bộ luật Lao động" in items[0]["text"]
    table_file = campaign / "cal.txt"
    assert run("preview", "-o", str(table_file)).exit_code == 0
    assert "Chủ Nhật, 30/06/2024" in table_file.read_text("utf-8")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["preview", "--channel", "tiktok"],
            "error: --channel: 'tiktok' is not a channel (one of: portal_stp",
        ),
        (
            ["preview", "--from", "2024-06-10", "--to", "2024-06-01"],
            "error: --to: 2024-06-01 is before --from 2024-06-10",
        ),
        (["approve"], "error: approve: give POST_ID... or --all (not both)"),
        (["approve", "4242"], "error: approve: no post has id 4242"),
        (
            ["load", "--config", "nope.toml"],
            "error: nope.toml: does not exist (pass --config PATH)",
        ),
    ],
)
def test_bad_arguments_give_one_line(campaign: Path, args: list[str], expected: str) -> None:
    run("load")
    assert one_line_error(run(*args)).startswith(expected)


def test_bad_date_is_a_usage_error(campaign: Path) -> None:
    result = run("preview", "--from", "June")
    assert result.exit_code == 2
    assert "'June' is not a date" in result.stderr


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        (
            "config.toml",
            'slots = ["09:00", "19:30"]',
            'slots = ["9h", "19:30"]',
            "config.toml: channels.zalo.slots[0]: '9h' is not a time",
        ),
        (
            "messages/articles/03-tong-dai-111.md",
            "kind: article",
            "kind: [article",
            "messages/articles/03-tong-dai-111.md: front matter is not valid YAML",
        ),
        (
            "templates/facebook/article.j2",
            "{% endblock %}",
            "{% endblok %}",
            "templates/facebook/article.j2: line",
        ),
    ],
)
def test_corrupted_input_leaves_the_database_unchanged(
    campaign: Path, path: str, old: str, new: str, expected: str
) -> None:
    assert run("load").exit_code == 0
    before = db_bytes(campaign)
    target = campaign / path
    text = target.read_text("utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), "utf-8")
    line = one_line_error(run("load"))
    assert expected in line
    assert db_bytes(campaign) == before
    check = run("check")
    assert check.exit_code == 1
    assert expected in check.stderr


def test_check_lists_every_problem(campaign: Path) -> None:
    ok = run("check")
    assert ok.exit_code == 0 and "OK: no problems found." in ok.stdout
    (campaign / "messages" / "articles" / "98-a.md").write_text(
        "---\nkind: video\n---\nx\n", "utf-8"
    )
    (campaign / "messages" / "articles" / "99-b.md").write_text(
        "---\nchannels: [tiktok]\n---\nx\n", "utf-8"
    )
    result = run("check")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert "2 problem(s) found." in result.stderr


def test_approve_from_the_command_line(campaign: Path) -> None:
    run("load", "--as", "vanphong")  # four eyes: another member approves
    result = run("approve", "1", "2", "--as", "Lê Anh Tuấn")
    assert result.exit_code == 0
    assert "Approved 2 post(s) as Lê Anh Tuấn." in result.stdout
    again = run("approve", "1", "--as", "tuan.la")
    assert again.exit_code == 1
    assert "post 1 not approved: it is approved" in again.stderr
    everything = run("approve", "--all")
    assert "Approved 70 post(s)" in everything.stdout
    items = json.loads(run("preview", "--format", "json").stdout)
    assert {i["state"] for i in items} == {"approved"}


def test_edit_reports_revoked_approvals(campaign: Path) -> None:
    run("load", "--as", "vanphong")  # four eyes: another member approves
    run("approve", "--all", "--as", "tuan.la")
    path = campaign / "messages" / "slogans" / "01-hanh-dong-thiet-thuc.md"
    path.write_text(path.read_text("utf-8").replace("thiết thực", "thiết thực hơn"), "utf-8")
    result = run("load")
    assert result.exit_code == 0
    assert re.search(
        r"Approval revoked, the text changed: posts [\d, ]+ are drafts again", result.stdout
    )


def test_every_command_is_documented_in_the_readme() -> None:
    import click

    readme = (ROOT / "README.md").read_text("utf-8")
    examples = [line for line in readme.splitlines() if line.startswith("publisher ")]
    for name in cli.list_commands(click.Context(cli)):
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        subcommands = command.commands if isinstance(command, click.Group) else {"": None}
        for sub in subcommands:
            usage = f"publisher {name} {sub}".strip()
            assert any(line.startswith(usage) for line in examples), (
                f"README lacks an example line starting with '{usage}'"
            )


def test_console_script_runs(campaign: Path) -> None:
    exe = Path(sys.executable).with_name("publisher")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "publisher"]
    out = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, check=True, env=os.environ
    )
    for name in ("load", "check", "preview", "approve"):
        assert name in out.stdout


def test_check_names_approvals_a_template_change_would_revoke(campaign: Path) -> None:
    run("load", "--as", "vanphong")  # four eyes: another member approves
    run("approve", "--all", "--as", "tuan.la")
    template = campaign / "templates" / "zalo" / "slogan.j2"
    template.write_text(
        template.read_text("utf-8").replace("hưởng ứng", "tích cực hưởng ứng"), "utf-8"
    )
    result = run("check")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: post ")]
    assert len(warnings) == 6 * 2  # every slogan post on Zalo
    assert all("on zalo): approval by Lê Anh Tuấn no longer matches" in w for w in warnings)
    # One of them went out once and waits to retry: load would not revoke it, so no warning.
    retrying = int(warnings[0].split()[2])
    with sqlite3.connect(campaign / "publisher.db") as conn:
        conn.execute("UPDATE post SET state = 'retrying' WHERE id = ?", (retrying,))
    result = run("check")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: post ")]
    assert len(warnings) == 6 * 2 - 1
    assert not any(w.startswith(f"warning: post {retrying} ") for w in warnings)
    assert all("on zalo): approval by Lê Anh Tuấn no longer matches" in w for w in warnings)
    out = run("load")
    assert "Approval revoked, the text changed" in out.stdout
    assert run("check").stderr.count("warning: post ") == 0


def test_check_leaves_a_queue_at_an_older_schema_alone(campaign: Path) -> None:
    """A queue of the previous release (schema 0003: no held_from column) is neither read with
    today's columns nor upgraded by a command that only reads."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from publisher.store.db import Database

    path = campaign / "publisher.db"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "publisher.store:migrations")
    db = Database(f"sqlite:///{path}")
    with db.write_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    db.close()
    result = run("check")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0003",)


def test_every_command_says_what_it_does() -> None:
    import click

    def walk(group: click.Group, path: str) -> list[tuple[str, click.Command]]:
        # as click finds them (commands are imported when looked up: common.COMMANDS)
        found = []
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            found.append((f"{path} {name}", command))
            if isinstance(command, click.Group):
                found += walk(command, f"{path} {name}")
        return found

    commands = walk(cli, "publisher")
    assert len(commands) > 15
    silent = [name for name, command in commands if not command.get_short_help_str().strip()]
    assert silent == []


def test_each_subcommand_is_found_by_a_fresh_process() -> None:
    """Every command and subcommand answers ``--help`` in a process of its own, whichever module
    defines it (``queue import`` lives in board.py: common.PARTS)."""
    import subprocess
    import sys

    import click

    ctx = click.Context(cli)
    paths: list[list[str]] = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        paths.append([name])
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.list_commands(click.Context(command))]
    assert ["queue", "import"] in paths
    for path in paths:
        done = subprocess.run(
            [sys.executable, "-m", "publisher", *path, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (path, done.stderr)


def test_each_command_is_found_in_its_module() -> None:
    """``publisher preview`` imports only the module of its command (common.COMMANDS): every
    command is listed there with the module that defines it, and found by its name alone."""
    import click

    from publisher.cli.common import COMMANDS

    names = cli.list_commands(click.Context(cli))
    assert sorted(COMMANDS) == names
    for name in names:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.callback is not None
        assert command.callback.__module__ == f"publisher.cli.{COMMANDS[name]}"
