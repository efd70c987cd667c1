"""The editorial board's session end to end, roles, audit tampering and concurrent edits."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fakes import dummy_env, run


def db_dump(campaign: Path) -> str:
    with sqlite3.connect(campaign / "publisher.db") as conn:
        return "\n".join(conn.iterdump())


def items(*args: str) -> list[dict[str, object]]:
    out = run("queue", "list", "--json", *args)
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_a_board_session(campaign: Path) -> None:
    assert run("load", "--as", "vanphong").exit_code == 0
    # a drafter edits an article
    article = campaign / "messages" / "articles" / "03-tong-dai-111.md"
    edited = campaign / "edited.md"
    edited.write_text(
        article.read_text("utf-8").replace("Tổng đài", "Tổng đài điện thoại", 1), "utf-8"
    )
    out = run(
        "queue", "edit", "articles/03-tong-dai-111", "--file", str(edited), "--as", "vanphong"
    )
    assert out.exit_code == 0, out.stderr
    posts = [i for i in items() if i["message"] == "articles/03-tong-dai-111"]
    assert len(posts) == 3
    ids = [str(p["id"]) for p in posts]
    # approve as the approver; a drafter's approval is refused, saying who may
    refused = run("approve", ids[0], "--as", "vanphong")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: --as vanphong: Văn phòng Sở is a drafter: approving posts needs the approver role "
        "(members who may: Lê Anh Tuấn)"
    )
    assert run("approve", *ids, "--as", "tuan.la").exit_code == 0
    assert {i["state"] for i in items() if str(i["id"]) in ids} == {"approved"}
    # an edit revokes the approval and says so
    edited.write_text(edited.read_text("utf-8") + "\nHãy gọi 111 khi cần.\n", "utf-8")
    out = run("queue", "edit", "articles/03-tong-dai-111", "--file", str(edited), "--as", "bientap")
    assert out.exit_code == 0
    revoked = re.search(
        r"Approval revoked, the text changed: posts ([\d, ]+) need a new", out.stdout
    )
    assert revoked and sorted(revoked.group(1).split(", ")) == sorted(ids)
    assert {i["state"] for i in items() if str(i["id"]) in ids} == {"draft"}
    # reschedule: off the slots refused without --force
    portal = next(str(p["id"]) for p in posts if p["channel"] == "portal_stp")
    bad = run("queue", "reschedule", portal, "2024-06-21 10:00", "--as", "bientap")
    assert bad.exit_code == 1 and "is not one of portal_stp's slots" in bad.stderr
    ok = run("queue", "reschedule", portal, "2024-06-21 14:30", "--as", "bientap")
    assert ok.exit_code == 0, ok.stderr
    moved = next(i for i in items() if str(i["id"]) == portal)
    assert moved["due_at"] == "2024-06-21T14:30:00+07:00"
    # a re-load keeps the hand-set time
    run("load", "--as", "vanphong")
    assert (
        next(i for i in items() if str(i["id"]) == portal)["due_at"] == "2024-06-21T14:30:00+07:00"
    )
    # pause / resume
    assert run("pause", "zalo", "--as", "bientap").exit_code == 0
    status = json.loads(run("status", "--json").stdout)
    assert status["blocked"] == [
        {
            "channel": "zalo",
            "paused": True,
            "kind": None,
            "since": None,
            "until": None,
            "reason": "paused",
        }
    ]
    assert run("resume", "zalo", "--as", "bientap").exit_code == 0
    assert json.loads(run("status", "--json").stdout)["blocked"] == []
    # a CSV with one bad row is rejected whole
    before = db_dump(campaign)
    files_before = sorted(p.name for p in (campaign / "messages").rglob("*.md"))
    csv_file = campaign / "import.csv"
    csv_file.write_text(
        "kind,title,summary,body,channels,at\n"
        'slogan,,,"Trẻ em hôm nay, thế giới ngày mai.",facebook;zalo,\n'
        'article,Bài mới,Tóm tắt,"Nội dung bài mới.",facebook,2024-06-18 11:30\n'
        'article,Bài lỗi,,"Thiếu tóm tắt.",tiktok,\n',
        "utf-8",
    )
    out = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert out.exit_code == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: import.csv: row 4: column 'channels' names 'tiktok', not a channel (one of: portal_stp, portal_pbgdpl, facebook, zalo)"
    ]
    assert "1 bad row(s): nothing was imported." in out.stderr
    assert db_dump(campaign) == before
    assert sorted(p.name for p in (campaign / "messages").rglob("*.md")) == files_before
    # fixed, it goes in
    csv_file.write_text(
        csv_file.read_text("utf-8")
        .replace(",tiktok,", ",facebook,")
        .replace('"Thiếu tóm tắt."', '"Đủ."')
        .replace("Bài lỗi,,", "Bài lỗi,Có tóm tắt,"),
        "utf-8",
    )
    out = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert out.exit_code == 0, out.stderr
    new = [i for i in items() if str(i["message"]).startswith("imported/")]
    assert len(new) == 2 * 2 + 1 + 1  # the slogan twice on two channels, two articles once
    assert any(i["due_at"] == "2024-06-18T11:30:00+07:00" for i in new)
    # and the whole session is on record, intact
    verify = run("audit", "--verify")
    assert verify.exit_code == 0 and "Audit trail intact" in verify.stdout
    actions = [e["action"] for e in json.loads(run("audit", "--json").stdout)]
    for action in ("load", "edit", "approve", "revoke", "reschedule", "pause", "resume", "import"):
        assert action in actions


def test_audit_verify_detects_edited_and_removed_entries(campaign: Path) -> None:
    run("load", "--as", "vanphong")
    run("approve", "1", "2", "3", "--as", "tuan.la")
    assert run("audit", "--verify").exit_code == 0
    path = campaign / "publisher.db"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit SET actor = 'Người khác' WHERE id = 15")
    out = run("audit", "--verify")
    assert out.exit_code == 1
    assert "error: audit: entry 15 was edited: its content no longer matches its hash" in out.stderr
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE audit SET actor = 'Lê Anh Tuấn' WHERE id = 15")
        conn.execute("DELETE FROM audit WHERE id = 10")
    out = run("audit", "--verify")
    assert "entry 10 was removed" in out.stderr
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)")
    out = run("audit", "--verify")
    assert "entries after 16 (up to 17) were removed" in out.stderr


def test_unknown_people_are_refused(campaign: Path) -> None:
    out = run("load", "--as", "nguoi.la")
    assert out.exit_code == 1
    assert out.stderr.startswith("error: --as nguoi.la: is not a member of the editorial board")


def cli_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args], capture_output=True, text=True, timeout=240
    )


def test_twenty_concurrent_edits_while_the_daemon_runs(campaign: Path) -> None:
    assert cli_process("load", "--as", "vanphong").returncode == 0
    dummy_env(campaign, "unused")
    daemon = subprocess.Popen(  # nothing is approved: it sends nothing, it only ticks
        [sys.executable, "-m", "publisher", "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        files = sorted((campaign / "messages").rglob("*.md"))
        edits: list[tuple[str, ...]] = []
        for n, path in enumerate(files):
            new = campaign / f"edit-{n}.md"
            text = path.read_text("utf-8")
            new.write_text(text.rstrip("\n") + f"\n\nSửa lần {n}.\n", "utf-8")
            key = str(path.relative_to(campaign / "messages").with_suffix(""))
            edits.append(("queue", "edit", key, "--file", str(new), "--as", "bientap"))
        for n in range(20 - len(edits)):
            edits.append(
                (
                    "queue",
                    "add",
                    "--kind",
                    "slogan",
                    "--text",
                    f"Thông điệp bổ sung số {n}.",
                    "--channel",
                    "facebook",
                    "--as",
                    "vanphong",
                )
            )
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(lambda a: cli_process(*a), edits))
        for args, r in zip(edits, results, strict=True):
            assert r.returncode == 0, (args, r.stderr)
            assert "locked" not in r.stderr
        listed = json.loads(cli_process("queue", "list", "--json").stdout)
        texts = "\n".join(str(i["text"]) for i in listed)
        for n in range(len(files)):
            assert f"Sửa lần {n}." in texts, f"edit {n} was lost"
        for n in range(20 - len(files)):
            assert f"Thông điệp bổ sung số {n}." in texts
        assert cli_process("audit", "--verify").returncode == 0
        assert daemon.poll() is None, "the daemon died"
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
    assert "locked" not in (daemon.stderr.read() if daemon.stderr else "")


def test_a_converted_file_that_cannot_be_rewritten_is_one_line(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher.vietnamese import encode_legacy

    path = campaign / "messages" / "slogans" / "09-cu.md"
    path.write_text(
        "---\nkind: slogan\nchannels: [zalo]\n---\n"
        + encode_legacy("Trẻ em hôm nay, thế giới ngày mai.", "TCVN3")
        + "\n",
        "utf-8",
    )
    before = path.read_bytes()

    def read_only(_path: Path, _text: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("publisher.editorial.load.write_atomic", read_only)
    out = run("load", "--as", "vanphong", "--convert-legacy")
    assert out.exit_code == 1
    assert out.stderr.strip().splitlines() == [
        "error: messages/slogans/09-cu.md: loaded in Unicode, but the file could not be "
        "rewritten: Permission denied (make it writable and run 'publisher load "
        "--convert-legacy' again)"
    ]
    assert path.read_bytes() == before


def test_legacy_encoded_content_is_refused_or_converted(campaign: Path) -> None:
    from publisher.vietnamese import encode_legacy

    text = (
        campaign / "messages" / "slogans" / "03-toan-dan-cham-soc-giao-duc-bao-ve.md"
    ).read_text("utf-8")
    for encoding in ("TCVN3", "VNI"):
        body = "Trẻ em hôm nay, thế giới ngày mai; hãy gọi Tổng đài 111."
        path = campaign / "messages" / "slogans" / f"09-cu-{encoding.lower()}.md"
        path.write_text(
            text.replace(text.split("---\n")[-1], encode_legacy(body, encoding) + "\n"), "utf-8"
        )
        out = run("load", "--as", "vanphong")
        assert out.exit_code == 1
        line = out.stderr.strip()
        assert line.startswith(
            f"error: messages/slogans/09-cu-{encoding.lower()}.md: line 6 looks like "
        )
        assert "(save it as Unicode, or run with --convert-legacy)" in line
        converted = run("load", "--as", "vanphong", "--convert-legacy")
        assert converted.exit_code == 0, converted.stderr
        assert f"Converted messages/slogans/09-cu-{encoding.lower()}.md" in converted.stdout
        assert path.read_text("utf-8").endswith(body + "\n")
    csv_file = campaign / "cu.csv"
    csv_file.write_text(
        "kind,body,channels\nslogan,"
        + encode_legacy("Bảo vệ trẻ em là trách nhiệm của toàn xã hội.", "TCVN3")
        + ",zalo\n",
        "utf-8",
    )
    out = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert out.exit_code == 1 and "cu.csv: row 2: looks like TCVN3" in out.stderr
    assert (
        run("queue", "import", str(csv_file), "--as", "vanphong", "--convert-legacy").exit_code == 0
    )
    assert any("Bảo vệ trẻ em là trách nhiệm" in str(i["text"]) for i in items())
