"""Item 7: the board's web app under load. 20 logged-in users (httpx async clients, real HTTP)
browse and approve through the JSON API, served by uvicorn in its own process on the queue a
rehearsal daemon is publishing a burst from; on SQLite and on PostgreSQL (a fresh schema).
Figures: p99 of the post list and of approve; floor: /api/v1/me in the same run.

``python -m bench.web serve CONFIG URL PORT`` is the server process.

UNFINISHED: not yet registered in ``bench/__main__.py`` — its quick run fails before measuring
(the rehearsal daemon it starts is not seen to anchor; its log file is reported missing), so
no figure is in RESULTS.md yet.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    PYTHON,
    Row,
    Sizes,
    child_env,
    make_campaign,
    ms,
    percentile,
    synthetic,
    verdict,
    wide_config,
    write_messages,
)

USERS = 20
PG = os.environ.get("PUBLISHER_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGES = ("/api/v1/posts?limit=50",)  # what each user browses (add "/" once the HTML app is in)
TARGET = 0.150  # seconds: p99 on SQLite, from the issue


def serve(config_path: str, url: str, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    from publisher.config import load_config
    from publisher.store import audit_key
    from publisher.store.db import Database
    from publisher.web.api import create_api
    from publisher.web.context import WebContext

    config = load_config(Path(config_path))
    db = Database(url, audit_key=audit_key.from_environment(config))
    app = FastAPI()
    app.mount("/api/v1", create_api(WebContext(config, db)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _queue(folder: Path, sizes: Sizes) -> tuple[Path, list[int]]:
    """A campaign whose even posts are approved (the daemon's burst), odd ones drafts."""
    from publisher.config import load_config
    from publisher.editorial.load import approve, load
    from publisher.store import users
    from publisher.store.db import open_database

    path = make_campaign(folder, wide_config(every_min=10), with_messages=False)
    count = 40 if sizes.quick else 400
    write_messages(folder / "messages", synthetic(count // 3, ["portal_stp", "facebook", "zalo"]))
    config = load_config(path)
    os.chdir(folder)
    db = open_database(config.database_url)
    now = datetime.now(UTC)
    load(db, config, now, "vanphong")
    from sqlalchemy import select

    from publisher.store.models import PostRow

    with db.read() as s:
        ids = list(s.scalars(select(PostRow.id).order_by(PostRow.id)))
    approve(db, ids[::2], everything=False, actor="Lê Anh Tuấn", now=now)
    users.add_user(db, config, "tuan.la", None, None, actor="bench", now=now)  # copied along
    db.close()
    return path, ids[1::2]


def _anchored(url: str, log: Path, daemon: subprocess.Popen[bytes]) -> None:
    """Wait until the rehearsal's copy holds its clock anchor. An SQLite copy is only looked at
    once it exists: opening it sooner would create an empty file, which the daemon then refuses
    as "not a rehearsal" (it links its copy into place only when complete)."""
    from sqlalchemy import select

    from publisher.store.db import Database, sqlite_file
    from publisher.store.models import MetaRow

    file = sqlite_file(url)
    for _ in range(600):
        if daemon.poll() is not None:
            break
        if file is None or file.exists():
            try:
                db = Database(url)
                try:
                    with db.read() as s:
                        if s.scalar(select(MetaRow).where(MetaRow.key == "rehearsal.speed")):
                            return
                finally:
                    db.close()
            except Exception:  # noqa: S110 - not created or migrated yet
                pass
        time.sleep(0.1)
    said = log.read_text("utf-8", errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"the rehearsal never anchored (exit {daemon.poll()}): {said}")


async def _user(
    base: str, token: str, drafts: list[int], until: float, seen: dict[str, list[float]]
) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        while time.monotonic() < until:
            for kind, method, path in (
                ("list", "GET", PAGES[0]),
                ("me", "GET", "/api/v1/me"),
                *([("approve", "POST", f"/api/v1/posts/{drafts.pop()}/approve")] if drafts else []),
            ):
                t = time.perf_counter()
                r = await c.request(method, path)
                seen.setdefault(kind, []).append(time.perf_counter() - t)
                if r.status_code >= 500:
                    seen.setdefault("5xx", []).append(1.0)


async def _load(base: str, tokens: list[str], drafts: list[int], seconds: float) -> Any:
    seen: dict[str, list[float]] = {}
    until = time.monotonic() + seconds
    shares = [drafts[i :: len(tokens)] for i in range(len(tokens))]
    await asyncio.gather(
        *(_user(base, t, s, until, seen) for t, s in zip(tokens, shares, strict=True))
    )
    return seen


def _measure(folder: Path, sizes: Sizes, backend: str, url: str | None) -> dict[str, Any]:
    from publisher.config import load_config
    from publisher.sandbox.server import Sandbox
    from publisher.store import audit_key, users
    from publisher.store.db import Database

    config_path, drafts = _queue(folder, sizes)
    target = url or f"sqlite:///{folder / 'rehearsal.db'}"
    env = child_env(folder)
    port = 20000 + os.getpid() % 20000
    box = Sandbox().start()
    procs: list[subprocess.Popen[bytes]] = []
    log = (folder / "daemon.log").open("wb")
    try:
        rehearse = "20s" if sizes.quick else "60s"
        args = ["run", "--rehearse", rehearse, "--sandbox-url", box.url, "--rehearsal-db"]
        procs.append(
            subprocess.Popen(  # noqa: S603 - our own CLI
                [PYTHON, "-m", "publisher", *args, target if url else str(folder / "rehearsal.db")],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        _anchored(target, folder / "daemon.log", procs[0])
        config = load_config(config_path)
        db = Database(target, audit_key=audit_key.from_environment(config))
        now = datetime.now(UTC)
        tokens = [
            users.new_token(db, config, "Lê Anh Tuấn", actor="bench", now=now) for _ in range(USERS)
        ]
        db.close()
        serve_args = ["-m", "bench.web", "serve", str(config_path), target, str(port)]
        procs.append(subprocess.Popen([PYTHON, *serve_args], cwd=folder, env=env))  # noqa: S603
        import httpx

        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        seconds = 5.0 if sizes.quick else 20.0
        seen: dict[str, Any] = asyncio.run(
            _load(f"http://127.0.0.1:{port}", tokens, drafts, seconds)
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        box.stop()
        log.close()
    return seen


def _pg_url() -> str | None:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG)
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception:
        return None
    return f"{PG}?options={quote(f'-csearch_path={schema}')}"


def run(sizes: Sizes, tmp: Path) -> list[Row]:
    here = Path.cwd()
    rows: list[Row] = []
    try:
        for backend in ("SQLite", "PostgreSQL"):
            url = None
            if backend == "PostgreSQL":
                url = _pg_url()
                if url is None:
                    continue
            folder = tmp / f"web-{backend.lower()}"
            seen = _measure(folder, sizes, backend, url)
            rows += _rows(seen, backend)
    finally:
        os.chdir(here)
    return rows


def _rows(seen: dict[str, Any], backend: str) -> list[Row]:
    floor = percentile(seen.get("me", []), 99)
    out = []
    for key, kind, what in (
        ("7", "list", "GET /api/v1/posts?limit=50"),
        ("7b", "approve", "POST /api/v1/posts/{id}/approve"),
    ):
        p99 = percentile(seen.get(kind, []), 99)
        judged = backend == "SQLite"
        out.append(
            Row(
                f"{key} ({backend})" if backend != "SQLite" else key,
                f"{what}, {USERS} users, daemon publishing, {backend}",
                f"p99 {ms(p99)} (p50 {ms(percentile(seen.get(kind, []), 50))})",
                "p99 < 150 ms" if judged else "—",
                f"GET /api/v1/me p99: {ms(floor)}",
                verdict(p99 < TARGET) if judged else "—",
                f"{len(seen.get(kind, []))} requests; 5xx: {len(seen.get('5xx', []))}",
            )
        )
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
