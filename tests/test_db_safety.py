"""The database as the operator meets it: opened by many at once, unwritable, not SQLite, missing,
behind a password, and private to its user."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BACKENDS, pg_schema
from sqlalchemy import text

from publisher.config import Config
from publisher.store.db import SCHEMA_HEAD, Database, open_database
from tests.fakes import one_line_error, run

OPENERS = 4


OPENER = """
import sys
import alembic.command  # imported before the start line, so every opener starts at once
from publisher.store.db import Database
db = Database(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
db.upgrade()
"""


@pytest.mark.parametrize("fresh_url", BACKENDS, indirect=True)
def test_many_processes_opening_an_empty_database_all_succeed(fresh_url: str) -> None:
    """Two daemons (or any commands) starting together create the schema once, serialised."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, fresh_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(OPENERS)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:  # all at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [rc for rc, _ in results] == [0] * OPENERS, [err for _, err in results]
    db = Database(fresh_url)
    try:
        assert db.schema_version() == SCHEMA_HEAD
    finally:
        db.close()


def test_the_schema_version_is_checked_inside_the_write_lock(tmp_path: Path) -> None:
    """On SQLite the upgrade's BEGIN IMMEDIATE comes before it reads the version it acts on."""
    from sqlalchemy import event

    db = Database(f"sqlite:///{tmp_path / 'q.db'}")
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    db.upgrade()
    begin = statements.index("BEGIN IMMEDIATE")
    reads = [i for i, st in enumerate(statements) if "alembic_version" in st]
    assert any(i > begin for i in reads)
    db.close()


# --- a database that cannot be used: one line naming it and the fix --------------------------

SECRET = "pw" + secrets.token_hex(6)  # a password made per run that must never show


def test_a_file_that_is_not_sqlite_is_named_with_the_fix(campaign: Path) -> None:
    queue = campaign / "publisher.db"
    queue.write_bytes(b"these are the minutes of the meeting, not a database\n" * 200)
    for args in (["load"], ["status"], ["preview"], ["queue", "list"]):
        line = one_line_error(run(*args))
        assert line == (
            f"error: {queue}: file is not a database "
            "(point [database] url / PUBLISHER_DATABASE_URL at the queue file)"
        ), args


def test_a_database_this_user_cannot_write_is_named_with_the_fix(campaign: Path) -> None:
    """A real unwritable file: as root, the command runs as nobody (root writes anything)."""
    assert run("load", "--as", "vanphong").exit_code == 0  # so tuan.la's approval would write
    shared = Path(tempfile.mkdtemp(prefix="publisher-ro-"))
    try:
        shared.chmod(0o755)
        for name in ("config.toml", "messages", "templates", "publisher.db"):
            source = campaign / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, shared / name)
        queue = shared / "publisher.db"
        prefix: list[str] = []
        if os.geteuid() == 0:
            os.chown(queue, 0, 65534)
            queue.chmod(0o640)  # nobody's group may read it, not write it or its folder
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            queue.chmod(0o400)
            shared.chmod(0o555)
        env = {**os.environ, "PUBLISHER_AS": "tuan.la", "HOME": str(shared)}
        env.pop("PUBLISHER_DATABASE_URL", None)
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "publisher", "approve", "--all"],
            cwd=shared,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"error: {queue}: "), lines[0]
        assert "readonly database" in lines[0] or "unable to open" in lines[0]
        assert "writable by this user" in lines[0]
    finally:
        shared.chmod(0o755)
        shutil.rmtree(shared)


UNREACHABLE = f"postgresql+psycopg://publisher:{SECRET}@127.0.0.1:1/queue"


@pytest.mark.parametrize(
    "args", [["load"], ["status"], ["queue", "list"], ["audit"], ["run", "--once"]]
)
def test_a_postgresql_password_appears_in_no_error(
    campaign: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", UNREACHABLE)
    result = run(*args)
    line = one_line_error(result)
    assert SECRET not in result.output + result.stderr
    assert line.startswith("error: postgresql+psycopg://publisher:***@127.0.0.1:1/queue: ")
    assert "PUBLISHER_DATABASE_URL" in line


def test_an_unparsable_url_hides_its_password(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"postgresql://publisher:{SECRET}@db:port/queue")
    result = run("status")
    one_line_error(result)
    assert SECRET not in result.output + result.stderr


def test_scrub_hides_passwords_as_typed_and_encoded() -> None:
    from publisher.store.db import safe_url, scrub

    url = "postgresql+psycopg://u:p%40ss%2Fw@h/db"
    assert safe_url(url) == "postgresql+psycopg://u:***@h/db"
    said = scrub("failed for postgresql+psycopg://u:p%40ss%2Fw@h/db with p@ss/w", url)
    assert "p@ss/w" not in said and "p%40ss" not in said
    assert scrub("see mysql://root:hunter2@10.0.0.1/x") == "see mysql://root:***@10.0.0.1/x"


@pytest.mark.postgresql
def test_the_rehearsal_summary_hides_the_password(
    campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from publisher.cli.run import _summary
    from publisher.config import load_config

    with pg_schema() as url:
        secret_url = url.replace("://postgres@", f"://postgres:{SECRET}@")
        assert secret_url != url
        db = open_database(secret_url)
        try:
            _summary(load_config(campaign / "config.toml"), db, secret_url)
        finally:
            db.close()
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "postgres:***@" in out.out
    assert "password is hidden" in out.out


@pytest.mark.postgresql
def test_a_rehearsal_on_postgresql_logs_and_prints_no_password(campaign: Path) -> None:
    """The whole run as an operator sees it: its log lines (stderr) and its summary."""
    assert run("load").exit_code == 0
    assert run("approve", "--all", "--as", "tuan.la").exit_code == 0
    with pg_schema() as url:
        secret_url = url.replace("://postgres@", f"://postgres:{SECRET}@")
        rehearse = ["run", "--rehearse", "5s", "--sandbox", "--rehearsal-db", secret_url]
        done = subprocess.run(
            [sys.executable, "-m", "publisher", *rehearse],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "inspect it: PUBLISHER_DATABASE_URL=postgresql+psycopg://postgres:***@" in done.stdout
    assert "password is hidden" in done.stdout


# --- read-only commands never create a queue --------------------------------------------------

READERS = [
    ["status"],
    ["preview"],
    ["preview", "--format", "json"],
    ["preview", "--format", "ics"],
    ["queue", "list"],
    ["queue", "show", "1"],
    ["audit"],
    ["audit", "--verify"],
    ["report", "--format", "md"],
]


@pytest.mark.parametrize("args", READERS)
def test_a_read_only_command_without_a_queue_says_so_and_creates_nothing(
    campaign: Path, args: list[str]
) -> None:
    before = sorted(p.name for p in campaign.iterdir())
    line = one_line_error(run(*args))
    assert line == (
        f"error: no queue at {campaign / 'publisher.db'}: run 'publisher load' first, "
        "or set [database] url / PUBLISHER_DATABASE_URL"
    )
    assert sorted(p.name for p in campaign.iterdir()) == before  # no file, no -wal, no -shm


@pytest.mark.postgresql
@pytest.mark.parametrize("args", [["status"], ["preview"], ["queue", "list"], ["report"]])
def test_a_read_only_command_on_an_empty_postgresql_says_so(
    campaign: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    from publisher.store.db import safe_url

    with pg_schema() as url:
        monkeypatch.setenv("PUBLISHER_DATABASE_URL", url)
        line = one_line_error(run(*args, *(["--format", "md"] if args == ["report"] else [])))
        assert line.startswith(f"error: no queue at {safe_url(url)}: run 'publisher load' first")
        db = Database(url)
        try:
            assert db.schema_version() is None  # nothing was created
        finally:
            db.close()


def test_commands_that_write_still_create_the_queue(campaign: Path) -> None:
    assert run("load").exit_code == 0
    assert (campaign / "publisher.db").is_file()
    assert run("status").exit_code == 0


# --- the queue is private to its user ----------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644 unless created otherwise
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_queue_and_its_wal_and_shm_are_0600(tmp_path: Path, umask_022: None) -> None:
    queue = tmp_path / "queue.db"
    db = open_database(f"sqlite:///{queue}")
    try:
        with db.write() as s:
            s.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
        files = [queue, Path(f"{queue}-wal"), Path(f"{queue}-shm")]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
    finally:
        db.close()


def test_an_existing_queue_keeps_its_mode_and_a_world_readable_one_is_warned_about(
    campaign: Path, umask_022: None
) -> None:
    assert run("load").exit_code == 0
    queue = campaign / "publisher.db"
    assert stat.S_IMODE(queue.stat().st_mode) == 0o600
    assert run("status").stderr == ""
    queue.chmod(0o644)
    result = run("status")
    assert result.exit_code == 0
    assert result.stderr.strip().splitlines() == [
        f"warning: {queue} is readable by other users (mode 644): "
        f"chmod 600 {queue} and its -wal and -shm"
    ]
    assert stat.S_IMODE(queue.stat().st_mode) == 0o644  # warned about, not changed


@pytest.mark.parametrize("how", ["snapshot", "row by row"])
def test_a_rehearsal_copy_is_0600(
    campaign: Path, config: Config, umask_022: None, how: str
) -> None:
    from datetime import timedelta

    from publisher.dispatch.rehearsal import prepare

    assert run("load").exit_code == 0
    source = open_database(config.database_url)
    target = campaign / "rehearsal.db"
    r = prepare(
        config,
        source,
        timedelta(minutes=1),
        str(target) if how == "snapshot" else f"sqlite:///{target}",
    )
    try:
        with r.db.write() as s:
            s.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
        for f in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        r.db.close()
        source.close()


def test_a_query_that_does_not_fit_the_schema_is_no_database_failure(tmp_path: Path) -> None:
    """SQLite says 'no such table' as an OperationalError: that stays SQLAlchemy's error (as it is
    on PostgreSQL), for code that waits for a schema; a constraint violation does too."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    db = Database(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        with pytest.raises(OperationalError), db.read() as s:
            s.execute(text("SELECT * FROM meta"))
        db.upgrade()
        with db.write() as s:
            s.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
        with pytest.raises(IntegrityError), db.write() as s:
            s.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'again')"))
    finally:
        db.close()


def test_the_clis_fallback_for_database_errors_prints_no_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An SQLAlchemy error publisher.store.db did not translate is one line, the password hidden."""
    import click
    from sqlalchemy.exc import IntegrityError

    from publisher.cli.common import _Group

    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"postgresql://u:{SECRET}@db/q")

    @click.group(cls=_Group)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        said = f"duplicate key (postgresql://u:{SECRET}@db/q, {SECRET})"
        raise IntegrityError("INSERT …", {}, Exception(said))

    result = CliRunner().invoke(group, ["fail"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == "error: database: duplicate key (postgresql://u:***@db/q, ***)\n"
