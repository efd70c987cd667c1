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

PREVIEW_TARGET = 0.5
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

    def row(key: str, name: str, what: str, target: float, extra: str = "") -> Row:
        s = warm[name]
        note = f"CPU {ms(s.cpu)}; runs {s.spread}" + (f"; {extra}" if extra else "")
        if not s.ok:
            note += "; A RUN FAILED"
        return Row(
            key,
            what,
            f"{ms(s.wall)} (median of {len(s.runs)})",
            f"< {target:.1f} s",
            base,
            verdict(s.ok and s.wall < target),
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
            PREVIEW_TARGET,
            extra["preview"],
        ),
        row("1b", "json", "`publisher preview --format json`", PREVIEW_TARGET),
        row("5", "help", "`publisher --help` start-up", HELP_TARGET, extra["help"]),
    ]
