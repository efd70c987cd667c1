"""Items 1 and 5: whole-process time of ``publisher preview`` on the seed campaign and of
``publisher --help``, beside the interpreter's own start-up (``python -c pass``) as the floor.

Each command is run as a fresh process, round-robin with the others, the median of N runs kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    PYTHON,
    Row,
    Series,
    Sizes,
    child_env,
    interleaved,
    make_campaign,
    ms,
    verdict,
)

PREVIEW_RATIO = 4.0  # × the floor: the interpreter's own start-up, measured in the same run
HELP_TARGET = 0.3


def run(sizes: Sizes, tmp: Path) -> list[Row]:
    from publisher.config import load_config
    from publisher.editorial.load import load
    from publisher.store.db import open_database

    folder = tmp / "startup"
    config = load_config(make_campaign(folder))
    db = open_database(config.database_url)
    load(db, config, datetime.now(UTC), "vanphong")  # as `publisher load --as vanphong`
    db.close()
    env = child_env(folder)
    publisher = [PYTHON, "-m", "publisher"]
    cmds = {
        "preview": [*publisher, "preview"],
        "json": [*publisher, "preview", "--format", "json"],
        "help": [*publisher, "--help"],
        "pass": [PYTHON, "-c", "pass"],
    }
    if not sizes.quick:
        cmds["sqlalchemy"] = [PYTHON, "-c", "import sqlalchemy.orm"]
    warm = interleaved(cmds, folder, env, sizes.runs)
    cold: dict[str, Series] = {}
    if not sizes.quick:  # the same without a bytecode cache (as PYTHONDONTWRITEBYTECODE=1 does)
        cold_cmds = {k: cmds[k] for k in ("preview", "help")}
        cold = interleaved(cold_cmds, folder, child_env(folder, bytecode=False), sizes.runs // 3)
    floor = warm["pass"]
    base = f"python -c pass: {ms(floor.wall)}"

    def row(key: str, name: str, what: str, target: float | None, extra: str = "") -> Row:
        """``target``: seconds; None: at most ``PREVIEW_RATIO`` × the floor."""
        s = warm[name]
        ratio = s.wall / floor.wall if floor.wall > 0 else float("inf")
        note = f"{ratio:.1f}× the floor; CPU {ms(s.cpu)} (floor's {ms(floor.cpu)}); runs {s.spread}"
        note += f"; {extra}" if extra else ""
        if not s.ok:
            note += "; A RUN FAILED"
        met = s.wall < target if target is not None else ratio <= PREVIEW_RATIO
        return Row(
            key,
            what,
            f"{ms(s.wall)} (median of {len(s.runs)})",
            f"< {target:.1f} s" if target is not None else f"≤ {PREVIEW_RATIO:.0f}× python -c pass",
            base,
            verdict(s.ok and met),
            note,
        )

    extra = {"preview": "", "help": ""}
    if cold:
        extra["preview"] = (
            f"no bytecode cache: {ms(cold['preview'].wall)}; "
            f"for scale, `python -c 'import sqlalchemy.orm'`: {ms(warm['sqlalchemy'].wall)}"
        )
        extra["help"] = f"no bytecode cache: {ms(cold['help'].wall)}"
    return [
        row(
            "1",
            "preview",
            "`publisher preview` (table), seed campaign, 72 posts",
            None,
            extra["preview"],
        ),
        row("1b", "json", "`publisher preview --format json`", None),
        row("5", "help", "`publisher --help` start-up", HELP_TARGET, extra["help"]),
    ]
