"""The results: a plain-text table for the terminal and the Markdown of ``bench/RESULTS.md``
(figures beside their targets and the baseline, the machine, the date, the findings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import Row

COLUMNS = ("#", "what", "figure", "target", "baseline / floor (same run)", "result")


def _cells(r: Row) -> tuple[str, ...]:
    return (r.key, r.what, r.figure, r.target, r.baseline, r.verdict or "—")


def text_table(rows: Sequence[Row]) -> str:
    data = [COLUMNS, *(_cells(r) for r in rows)]
    widths = [max(len(row[i]) for row in data) for i in range(len(COLUMNS))]
    widths[1] = min(widths[1], 64)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c[: widths[i]].ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    out = [line(COLUMNS), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in data[1:]]
    notes = [f"  {r.key}: {r.note}" for r in rows if r.note]
    return "\n".join(out + (["", *notes] if notes else [])) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    rows: Sequence[Row],
    meta: Mapping[str, Any],
    findings: str,
) -> str:
    m = meta
    out = [
        "# Benchmark results",
        "",
        f"Written by `{m['command']}` on {m['machine']['date']} "
        f"({'quick smoke run: tiny sizes, figures not meaningful' if m['quick'] else 'full run'}"
        f", {m['elapsed']:.0f} s). Targets and method: the benchmark issue; code: `bench/`.",
        "",
        "## Figures",
        "",
        "| # | what | figure | target | baseline / floor (same run) | result | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append("| " + " | ".join(_md(c) for c in (*_cells(r), r.note)) + " |")
    mc = m["machine"]
    load0, load1 = m["load_before"], m["load_after"]
    out += [
        "",
        "## The machine",
        "",
        f"- `{mc['uname']}`",
        f"- CPU: {mc['cpu']}; memory {mc['memory']}",
        f"- {mc['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- load average (1/5/15 min) before: {_load(load0)}; after: {_load(load1)}"
        + (
            " — **the machine was shared and busy**: whole-process and real-time figures are "
            "inflated by waiting for a CPU (see the CPU-time notes)"
            # the load before the run: the one after counts the benchmark's own last processes
            if load0[0] > 2
            else ""
        ),
        f"- speed of this Python right now: a 2,000,000-step loop took "
        f"{m['calibrate'] * 1000:.0f} ms before the run and {m['calibrate_after'] * 1000:.0f} ms "
        "after (lower is faster; compare runs on the same figure)",
        "",
        findings.strip(),
        "",
    ]
    return "\n".join(out)


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)
