"""The database as the operator meets it: opened by many at once, unwritable, not SQLite, missing,
behind a password, and private to its user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BACKENDS

from publisher.db import SCHEMA_HEAD, Database

OPENERS = 4


OPENER = """
import sys
import alembic.command  # imported before the start line, so every opener starts at once
from publisher.db import Database
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
