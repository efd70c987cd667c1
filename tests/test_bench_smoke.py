"""The benchmarks' smoke run: ``python -m bench --quick`` prints every row and writes its file.

Benchmarks are not tests: no figure is asserted here, only that each benchmark still runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("1", "1b", "2", "2b", "3", "3 (c=8)", "3b", "4", "4b", "5", "6", "6b", "6c")


def test_quick_bench_prints_every_row_and_writes_the_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("\n#", 1)[1]
    keys = [line.split("  ")[0] for line in table.splitlines()[2:] if line and line[0].isdigit()]
    assert sorted(keys) == sorted(ROWS)
    text = out.read_text(encoding="utf-8")
    for key in ROWS:
        assert f"\n| {key} |" in text
    for heading in ("## Figures", "## The machine", "## Findings"):
        assert heading in text
    assert "met" in text or "missed" in text
