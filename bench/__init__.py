"""Benchmarks of publisher against its targets and a naive APScheduler baseline (issue: bench).

``python -m bench`` runs them all, prints a table and writes ``bench/RESULTS.md``; ``--quick``
is the seconds-long smoke version CI runs. Never touches the repository's own ``publisher.db``:
every benchmark works in a temporary copy of the campaign.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
