"""What every part of the web app shares: the campaign's config, its queue and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Config
from publisher.store.db import Database


@dataclass
class WebContext:
    """The config (read once at start: restart the app after changing config.toml), the queue
    (one Database: a connection pool shared by every request) and the clock."""

    config: Config
    db: Database
    clock: Clock = field(default=SYSTEM_CLOCK)

    def now(self) -> datetime:
        return self.clock.now()
