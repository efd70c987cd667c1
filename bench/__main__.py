"""``python -m bench [--quick] [--only NAME ...] [-o FILE]``: run the benchmarks, print the
table and write the results file (default ``bench/RESULTS.md``).

Names: startup (items 1 and 5), render (2), lateness (3), idle (4), baseline (6), web (7),
scaleout (8).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import ROOT, baseline, idle, lateness, render_plan, scaleout, startup, web
from bench.common import Row, Sizes, calibrate, load_average, machine, versions
from bench.findings import FINDINGS
from bench.results import markdown, text_table

BENCHES: dict[str, Callable[[Sizes, Path], list[Row]]] = {
    "startup": startup.run,
    "render": render_plan.run,
    "lateness": lateness.run,
    "idle": idle.run,
    "baseline": baseline.run,
    "web": web.run,
    "scaleout": scaleout.run,
}


def _run(name: str, bench: Callable[[], list[Row]]) -> list[Row]:
    started = time.monotonic()
    print(f"  {name} …", end="", flush=True)
    rows = bench()
    print(f" {time.monotonic() - started:.0f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="the smoke run: tiny sizes, seconds (CI)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHES), metavar="NAME", help="run only these"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=ROOT / "bench" / "RESULTS.md",
        help="the results file to write (default: bench/RESULTS.md)",
    )
    args = parser.parse_args(argv)
    # Every queue here is a temporary SQLite file named by its temporary config: a database URL
    # in the environment would override them all and send synthetic posts to a real queue.
    os.environ.pop("PUBLISHER_DATABASE_URL", None)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sizes = Sizes.for_mode(args.quick)
    names = args.only or list(BENCHES)
    started = time.monotonic()
    load_before, speed_before = load_average(), calibrate()
    print(
        f"bench: {', '.join(names)} ({'quick' if args.quick else 'full'}); "
        f"load average {load_before[0]:.2f}",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as tmp:
        background = None
        if "idle" in names and len(names) > 1:  # the idle daemon waits out its minutes meanwhile
            print("  idle daemon started, measured at the end", flush=True)
            background = idle.Background(sizes, Path(tmp))
        for name in names:
            if name == "idle" and background is not None:
                continue
            rows += _run(name, functools.partial(BENCHES[name], sizes, Path(tmp)))
        if background is not None:
            rows += _run("idle", background.finish)
    rows.sort(key=lambda r: int(r.key[0]))  # in the order; stable within an item
    meta = {
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "elapsed": time.monotonic() - started,
        "machine": machine(),
        "versions": versions(),
        "load_before": load_before,
        "load_after": load_average(),
        "calibrate": speed_before,
        "calibrate_after": calibrate(),
    }
    print()
    print(text_table(rows), end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(rows, meta, FINDINGS), encoding="utf-8")
    print(f"\nwrote {args.output} ({meta['elapsed']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
