"""Whether a worker (a dispatcher) is dead, so its claims can be settled at once.

A worker is named ``host:pid:tag`` (``dispatch.daemon.worker_name``). It is dead when its
heartbeat row says it stopped, or the heartbeat is stale (the same rule as ``publisher status``:
older than three ticks and at least 30 s, in real time), or it ran on this host and its process
is gone (or is a zombie), or its PID is this very process while the name is none of ours (the
PID was reused, as a container's PID 1 is after every restart). A worker without a heartbeat row
(``run --once``) is judged by its host and PID only; if those say nothing, its lease decides.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.store.db import Database
from publisher.store.models import DaemonRow

_OURS: set[str] = set()  # the workers of this process
_GUARD = threading.Lock()


def register(worker: str) -> None:
    """``worker`` belongs to this process: never judged dead by it."""
    with _GUARD:
        _OURS.add(worker)


def unregister(worker: str) -> None:
    with _GUARD:
        _OURS.discard(worker)


def heartbeat_timeout(tick: timedelta) -> timedelta:
    """How old a heartbeat may be while its daemon counts as alive."""
    return max(tick * 3, timedelta(seconds=30))


def process_gone(worker: str) -> str | None:
    """Why ``worker``'s process is known to be dead, or None (alive, or not on this host)."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None  # not a name we made: its heartbeat or its lease decides
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname():
        return None
    if pid == os.getpid():
        with _GUARD:
            ours = worker in _OURS
        return None if ours else f"its PID {pid} is now this process's (it was restarted)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"its process {pid} on {host} is gone"
    except OSError:
        return None  # exists, another user's
    if _zombie(pid):
        return f"its process {pid} on {host} has exited"
    return None


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def dead_workers(
    s: Session, workers: Iterable[str], now_real: datetime, tick: timedelta
) -> dict[str, str]:
    """The dead ones among ``workers``, each with why (for the history of its posts)."""
    names = sorted(set(workers))
    if not names:
        return {}
    rows = {r.worker: r for r in s.scalars(select(DaemonRow).where(DaemonRow.worker.in_(names)))}
    stale_before = now_real - heartbeat_timeout(tick)
    with _GUARD:
        ours = set(_OURS)
    dead: dict[str, str] = {}
    for name in names:
        if name in ours:
            continue
        row, why = rows.get(name), None
        if row is not None and row.stopped_at is not None:
            why = f"it stopped at {row.stopped_at:%Y-%m-%d %H:%M:%S} UTC"
        elif row is not None and row.beat_at < stale_before:
            why = f"its last heartbeat was at {row.beat_at:%Y-%m-%d %H:%M:%S} UTC"
        why = why or process_gone(name)
        if why:
            dead[name] = why
    return dead


def alive(row: DaemonRow, now_real: datetime, tick: timedelta) -> bool:
    """Whether the daemon of heartbeat ``row`` is alive (for ``publisher status``)."""
    if row.stopped_at is not None or row.beat_at < now_real - heartbeat_timeout(tick):
        return False
    return process_gone(row.worker) is None


def daemon_alive(db: Database, tick: timedelta, now: datetime | None = None) -> list[DaemonRow]:
    """Daemons whose heartbeat is recent (three ticks, at least 30 s) and whose process, if
    it ran on this host, still exists (``alive``)."""
    now = now or datetime.now(UTC)
    with db.read() as s:
        return [
            r
            for r in s.scalars(select(DaemonRow).order_by(DaemonRow.beat_at.desc()))
            if alive(r, now, tick)
        ]
