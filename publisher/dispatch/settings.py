"""The dispatcher's windows and limits, from the config's ``[daemon]`` and channels
(``app.make_dispatcher``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class DispatchSettings:
    grace: timedelta = timedelta(hours=2)  # a never-tried post later than this is missed
    lease: timedelta = timedelta(minutes=5)
    concurrency: Mapping[str, int] = field(default_factory=dict)  # channel → parallel sends
    default_concurrency: int = 1
    # A pass keeps claiming newly due posts as calls answer for this many real seconds, then
    # lets the daemon start a fresh pass (recovery, the grace window, its heartbeat).
    pass_budget: float = 2.0
    # The daemons' safety tick: a heartbeat older than three ticks (and 30 s) is a dead worker's.
    tick: timedelta = timedelta(seconds=5)
