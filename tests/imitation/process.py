"""The imitation in a process of its own, and a small client of its control endpoint."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


class ImitationProcess:
    """``python -m tests.imitation`` started with these arguments; its log goes to ``log``."""

    def __init__(
        self,
        *,
        record: Path,
        faults: str = "",
        seed: int = 0,
        log: Path | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.record = record
        self.log = log or record.with_suffix(".log")
        self.command = [
            sys.executable,
            "-m",
            "tests.imitation",
            "--port",
            "0",
            "--record",
            str(record),
            "--faults",
            faults,
            "--seed",
            str(seed),
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._client = httpx.Client(timeout=10.0)

    def start(self) -> ImitationProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, env=env
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        line = self.proc.stdout.readline().decode() if ready else ""
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"the imitation did not start: {line!r}; see {self.log}")
        self.url = line.split("listening on ", 1)[1].strip()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._client.close()

    def __enter__(self) -> ImitationProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control ----------------------------------------------------------------------------------

    def _get(self, what: str) -> Any:
        resp = self._client.get(f"{self.url}/_imitation/{what}")
        resp.raise_for_status()
        return resp.json()

    def records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self._get("records")["records"]
        return records

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._get("stats")
        return stats

    def set_faults(self, spec: str) -> None:
        self._client.post(f"{self.url}/_imitation/faults", json={"spec": spec}).raise_for_status()

    def outage(self, seconds: float, after: float = 0.1) -> None:
        resp = self._client.post(
            f"{self.url}/_imitation/outage", json={"seconds": seconds, "after": after}
        )
        resp.raise_for_status()

    def inject(
        self, fault: str, platform: str = "*", *, after: float = 0.0, hold: float = 0.0
    ) -> None:
        body = {"fault": fault, "platform": platform, "after": after, "hold": hold}
        self._client.post(f"{self.url}/_imitation/inject", json=body).raise_for_status()

    def wait_up(self, timeout: float = 30.0) -> None:
        """Until the control endpoint answers again (after an outage)."""
        limit = time.monotonic() + timeout
        while True:
            try:
                self._get("health")
                return
            except httpx.HTTPError:
                if time.monotonic() > limit:
                    raise
                time.sleep(0.1)
