"""The benchmarks' smoke run: ``python -m bench --quick`` prints every row and writes its file.

Benchmarks are not tests: no figure is asserted here, only that each benchmark still runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("1", "1b", "2", "2b", "3", "3 (c=8)", "3b", "4", "4b", "5", "6", "6b", "6c")
ROWS += ("7a", "7b", "7c", "7d")  # the web app on SQLite
ROWS += ("8 (1 daemon)", "8 (2 daemons)", "8b")  # scale-out (figures "skipped" with no PostgreSQL)
# On PostgreSQL too when one answers at PUBLISHER_BENCH_PG (bench/web.py), else left out.
OPTIONAL = ("7a (PostgreSQL)", "7b (PostgreSQL)", "7c (PostgreSQL)", "7d (PostgreSQL)")


def test_quick_bench_prints_every_row_and_writes_the_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # the quick run of every item; minutes on a busy machine
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("\n#", 1)[1]
    keys = [line.split("  ")[0] for line in table.splitlines()[2:] if line and line[0].isdigit()]
    assert sorted(k for k in keys if k not in OPTIONAL) == sorted(ROWS)
    assert not set(OPTIONAL) & set(keys) or set(OPTIONAL) <= set(keys)
    text = out.read_text(encoding="utf-8")
    rows = {
        cells[0]: cells
        for line in text.split("## Figures", 1)[1].split("## The machine", 1)[0].splitlines()
        if line.startswith("| ") and not line.startswith("| #")
        for cells in [[c.strip() for c in line.strip("|").split(" | ")]]
    }
    assert sorted(rows) == sorted(keys)
    for key, (_k, _what, figure, target, _base, result, _note) in rows.items():
        assert figure and "nan" not in figure, key  # every row measured something
        judged = target not in ("", "—", "beside the baseline")
        assert result in (("met", "missed") if judged else ("—",)), (key, target, result)
    assert "## Findings" in text
