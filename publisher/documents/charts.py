"""The report's charts as PNG bytes (matplotlib, drawn off-screen with the Agg backend): reach
day by day across the month, and horizontal bars (per channel, the most-read articles).

Pure: figures in, bytes out; the same inputs give the same bytes (no timestamp in the PNG).
Labels are Vietnamese, drawn in DejaVu Sans (shipped with matplotlib; it has every Vietnamese
letter).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

import matplotlib

matplotlib.use("Agg")

from matplotlib import dates as mdates
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

DPI = 150


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def _number(n: float) -> str:
    """12345 → "12.345", as Vietnamese documents group digits."""
    return f"{round(n):,}".replace(",", ".")


def daily(series: Mapping[str, Sequence[tuple[date, int]]], *, title: str, unit: str) -> bytes:
    """One line per series (e.g. per channel) of a figure by day."""
    with plt.rc_context({"font.family": "DejaVu Sans", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(6.3, 3.0))
        for label, points in series.items():
            if points:
                ax.plot(
                    [d for d, _ in points],  # type: ignore[arg-type]
                    [v for _, v in points],
                    marker=".",
                    label=label,
                )
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.yaxis.set_major_formatter(lambda v, _pos: _number(v))
        ax.xaxis.set_major_formatter(lambda v, _pos: _day(v))
        ax.grid(axis="y", alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8)
        return _png(fig)


def _day(value: float) -> str:
    d = mdates.num2date(value)  # type: ignore[no-untyped-call]
    return f"{d.day:02d}/{d.month}"


def bars(items: Sequence[tuple[str, int]], *, title: str, unit: str) -> bytes:
    """Horizontal bars, the first item at the top."""
    with plt.rc_context({"font.family": "DejaVu Sans", "font.size": 9}):
        height = 0.9 + 0.32 * max(len(items), 1)
        fig, ax = plt.subplots(figsize=(6.3, height))
        labels = [label for label, _ in items][::-1]
        values = [v for _, v in items][::-1]
        ax.barh(labels, values, color="#2f6db5")
        for y, v in enumerate(values):
            ax.annotate(
                _number(v),
                (v, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_title(title)
        ax.set_xlabel(unit)
        ax.xaxis.set_major_formatter(lambda v, _pos: _number(v))
        ax.margins(x=0.12)
        return _png(fig)
