"""Bad content coming in (front matter, folders and links in messages/, non-UTF-8 files, CSV),
and paths that would leave messages/: one line each, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from publisher.config import Config
from publisher.content import read_message
from tests.fakes import one_line_error, run

SLOGAN = "---\nkind: slogan\nchannels: [facebook]\n---\nTrẻ em hôm nay, thế giới ngày mai.\n"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links not followed) and its bytes: to see nothing changed."""
    out: dict[str, bytes] = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = (
                os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
            )
    return out


# --- 14: front matter that is not a mapping ----------------------------------------------------


@pytest.mark.parametrize(
    ("front", "what"),
    [("- kind: slogan\n- channels: [facebook]\n", "a list"), ("just a sentence\n", "text")],
)
def test_front_matter_that_is_not_a_mapping_is_refused(
    campaign: Path, front: str, what: str
) -> None:
    bad = campaign / "messages" / "slogans" / "09-list.md"
    bad.write_text(f"---\n{front}---\nTrẻ em hôm nay, thế giới ngày mai.\n", "utf-8")
    expected = (
        "error: messages/slogans/09-list.md: front matter must be a mapping of fields "
        f"(key: value), not {what}"
    )
    checked = run("check")
    assert checked.exit_code == 1
    assert any(line.startswith(expected) for line in checked.stderr.splitlines()), checked.stderr
    assert one_line_error(run("load")).startswith(expected)
    with sqlite3.connect(campaign / "publisher.db") as conn:
        assert conn.execute("SELECT count(*) FROM message").fetchone() == (0,)


def test_queue_add_refuses_a_file_whose_front_matter_is_a_list(campaign: Path) -> None:
    assert run("load").exit_code == 0
    source = campaign / "moi.md"
    source.write_text("---\n- kind: slogan\n---\nTrẻ em hôm nay, thế giới ngày mai.\n", "utf-8")
    before = tree(campaign / "messages")
    line = one_line_error(run("queue", "add", "--file", str(source), "--as", "vanphong"))
    assert line.startswith(
        f"error: {source}: front matter must be a mapping of fields (key: value), not a list"
    )
    assert tree(campaign / "messages") == before


# --- 15: folders and links named *.md ----------------------------------------------------------


def test_a_folder_named_md_is_a_folder_and_its_files_are_content(campaign: Path) -> None:
    folder = campaign / "messages" / "slogans" / "09-thu-muc.md"
    folder.mkdir()
    (folder / "01-ben-trong.md").write_text(SLOGAN, "utf-8")
    checked = run("check")
    assert checked.exit_code == 0, checked.stderr
    assert run("load").exit_code == 0
    posts = json.loads(run("preview", "--format", "json").stdout)
    inner = [p for p in posts if p["message"] == "slogans/09-thu-muc.md/01-ben-trong"]
    assert inner and {p["channel"] for p in inner} == {"facebook"}
    assert not any(p["message"] == "slogans/09-thu-muc" for p in posts)


def test_a_broken_link_is_one_problem_among_the_others(campaign: Path) -> None:
    link = campaign / "messages" / "slogans" / "09-mat.md"
    link.symlink_to("/nonexistent/bai-cu.md")
    (campaign / "messages" / "slogans" / "10-sai.md").write_text(
        "---\nkind: poem\n---\nx\n", "utf-8"
    )
    checked = run("check")
    assert checked.exit_code == 1
    assert "Traceback" not in checked.output + checked.stderr
    errors = [line for line in checked.stderr.splitlines() if line.startswith("error: ")]
    assert (
        "error: messages/slogans/09-mat.md: is a broken symbolic link (to /nonexistent/bai-cu.md) "
        "(point it at a content file or remove it)"
    ) in errors
    assert any(line.startswith("error: messages/slogans/10-sai.md:") for line in errors)
    assert one_line_error(run("load")).startswith("error: messages/slogans/09-mat.md: is a broken")


def test_an_unreadable_file_is_one_line(campaign: Path) -> None:
    """A real permission problem: as root, the check runs as nobody (root reads anything)."""
    shared = Path(tempfile.mkdtemp(prefix="publisher-unreadable-"))
    try:
        shared.chmod(0o755)
        for name in ("config.toml", "messages", "templates"):
            source = campaign / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, shared / name)
        secret = shared / "messages" / "slogans" / "09-rieng.md"
        secret.write_text(SLOGAN, "utf-8")
        secret.chmod(0o000)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = subprocess.run(
            [*(prefix if os.geteuid() == 0 else []), sys.executable, "-m", "publisher", "check"],
            cwd=shared,
            env={**os.environ, "HOME": str(shared)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert (
            "error: messages/slogans/09-rieng.md: cannot be read: Permission denied "
            "(make it readable by this user)"
        ) in done.stderr.splitlines()
    finally:
        shutil.rmtree(shared)


# --- 16: queue add --file / queue edit --file / $EDITOR in Latin-1 ------------------------------

LATIN1 = "---\nkind: slogan\nchannels: [facebook]\n---\nCafé à la crème.\n".encode("latin-1")
BYTE = LATIN1.index(b"\xe9")


def test_queue_add_refuses_a_latin1_file(campaign: Path) -> None:
    assert run("load").exit_code == 0
    source = campaign / "latin1.md"
    source.write_bytes(LATIN1)
    before = tree(campaign / "messages")
    line = one_line_error(run("queue", "add", "--file", str(source), "--as", "vanphong"))
    assert line == f"error: {source}: is not UTF-8 text (byte {BYTE}) (save it as UTF-8)"
    assert tree(campaign / "messages") == before


def test_queue_edit_refuses_a_latin1_file_and_editor_text(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("load").exit_code == 0
    source = campaign / "latin1.md"
    source.write_bytes(LATIN1)
    before = tree(campaign / "messages")
    target = "slogans/01-hanh-dong-thiet-thuc"
    line = one_line_error(run("queue", "edit", target, "--file", str(source), "--as", "vanphong"))
    assert line == f"error: {source}: is not UTF-8 text (byte {BYTE}) (save it as UTF-8)"
    monkeypatch.setenv("EDITOR", f"cp {source}")  # an editor that saves Latin-1
    monkeypatch.delenv("VISUAL", raising=False)
    line = one_line_error(run("queue", "edit", target, "--as", "vanphong"))
    assert line == (
        f"error: the text saved in the editor ({os.environ['EDITOR'].split()[0]}): "
        f"is not UTF-8 text (byte {BYTE}) (save it as UTF-8)"
    )
    assert tree(campaign / "messages") == before


# --- 17: CSV import ----------------------------------------------------------------------------


def test_a_csv_row_with_more_fields_than_the_header_is_named(campaign: Path) -> None:
    assert run("load").exit_code == 0
    csv_file = campaign / "bai.csv"
    csv_file.write_text(
        "kind,body,channels\n"
        "slogan,Trẻ em hôm nay,facebook\n"
        "slogan,Trẻ em, thế giới ngày mai,facebook\n"
        "slogan,Một hai ba,facebook,,\n",  # empty extra cells carry nothing: accepted
        "utf-8",
    )
    result = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: bai.csv: row 3: has 4 fields, the header has 3 "
        '(quote a cell that contains a comma: "…, …")',
        "1 bad row(s): nothing was imported.",
    ]
    assert not (campaign / "messages" / "imported").exists()


def test_a_failed_import_leaves_no_new_folder(campaign: Path) -> None:
    assert run("load").exit_code == 0
    csv_file = campaign / "bai.csv"
    csv_file.write_text("kind,body\nslogan,Một\npoem,Hai\n", "utf-8")
    before = tree(campaign / "messages")
    result = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert result.exit_code == 1
    assert not (campaign / "messages" / "imported").exists()
    assert tree(campaign / "messages") == before


def test_quoted_multi_line_cells_keep_their_line_breaks(campaign: Path, config: Config) -> None:
    assert run("load").exit_code == 0
    csv_file = campaign / "bai.csv"
    body = "Dòng một\n---\nDòng hai\n\n- ý thứ nhất\n- ý thứ hai"
    with csv_file.open("w", encoding="utf-8", newline="") as fh:
        fh.write("kind,title,summary,body,channels\r\n")
        fh.write(
            'article,"Bài nhiều dòng","Tóm tắt\r\nhai dòng","'
            + body.replace("\n", "\r\n")
            + '",facebook\r\n'
        )
    result = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert result.exit_code == 0, result.stderr
    [written] = (campaign / "messages" / "imported").glob("*.md")
    message = read_message(written, config.messages_dir, config)
    assert message.body == body
    assert message.title == "Bài nhiều dòng"
    assert message.summary == "Tóm tắt hai dòng"
    assert "\r" not in written.read_text("utf-8")


# --- 21: nothing written outside messages/ ------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the campaign, outside messages/, with a file an attacker would target."""
    folder = tmp_path.parent / f"{tmp_path.name}-outside"
    folder.mkdir()
    (folder / "victim.md").write_text(SLOGAN, "utf-8")
    return folder


def test_queue_edit_never_writes_outside_messages(campaign: Path, outside: Path) -> None:
    assert run("load").exit_code == 0
    new = campaign / "new.md"
    new.write_text(SLOGAN.replace("hôm nay", "ngày nay"), "utf-8")
    victim = outside / "victim"
    relative = os.path.relpath(victim, campaign / "messages")
    (campaign / "messages" / "ngoai").symlink_to(outside, target_is_directory=True)
    before = tree(outside)
    with sqlite3.connect(campaign / "publisher.db") as conn:  # a key written into the queue
        conn.execute("UPDATE message SET key = ? WHERE id = 1", (relative,))
        [post_id] = conn.execute("SELECT id FROM post WHERE message_id = 1 LIMIT 1").fetchone()
    for target in (relative, str(victim), f"{victim}.md", "ngoai/victim", str(post_id)):
        line = one_line_error(run("queue", "edit", target, "--file", str(new), "--as", "vanphong"))
        assert "is not inside messages/" in line, (target, line)
    assert tree(outside) == before


def test_queue_add_and_import_never_write_outside_messages(campaign: Path, outside: Path) -> None:
    assert run("load").exit_code == 0
    slogans = campaign / "messages" / "slogans"
    shutil.move(slogans, outside / "slogans")
    slogans.symlink_to(outside / "slogans", target_is_directory=True)
    (campaign / "messages" / "imported").symlink_to(outside, target_is_directory=True)
    before = tree(outside)
    line = one_line_error(
        run("queue", "add", "--kind", "slogan", "--text", "Trẻ em.", "--as", "vanphong")
    )
    assert "is not inside messages/" in line
    csv_file = campaign / "bai.csv"
    csv_file.write_text("kind,body,channels\nslogan,Một hai ba,facebook\n", "utf-8")
    result = run("queue", "import", str(csv_file), "--as", "vanphong")
    assert result.exit_code == 1
    assert "is not inside messages/" in result.stderr
    assert tree(outside) == before
