"""The client side of a sandbox's ``/_sandbox/…`` endpoints, for a process that talks to a
sandbox it did not start (a rehearsal given ``--sandbox-url``): its clock, its items' births,
a restore of the items an earlier one held (``Held``). httpx only: such a process does not load
the sandbox's platforms (``restore`` and ``control`` are the server's side).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import httpx

logger = logging.getLogger(__name__)

PLATFORMS = ("facebook", "zalo", "wordpress", "webhook")


@dataclass(frozen=True)
class Held:
    """One published item a platform still holds. ``born``: its virtual birth, the instant its
    figures' age runs from; ``key``: the idempotency key it was sent with (a webhook looks its
    items up by it)."""

    platform: str  # facebook | zalo | wordpress | webhook
    channel: str
    remote_id: str
    born: datetime
    url: str | None = None
    title: str = ""
    text: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"{self.platform!r} is not one of {', '.join(PLATFORMS)}")
        if self.born.tzinfo is None:
            raise ValueError("born needs its UTC offset")
        if not self.remote_id:
            raise ValueError("an item needs its remote id")
        if self.platform == "wordpress" and not self.remote_id.isdigit():
            raise ValueError(f"{self.remote_id!r} is not a WordPress post id")


def sandbox_births(url: str) -> dict[str, object] | None:
    """The sandbox at ``url``'s seed and its items' births (``GET /_sandbox/births``), or None
    (logged) from one that does not answer them."""
    try:
        answer = httpx.get(f"{url.rstrip('/')}/_sandbox/births", timeout=10)
        answer.raise_for_status()
        found = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        logger.warning("the sandbox at %s did not tell its items' births: %s", url, exc)
        return None
    return found if isinstance(found, dict) else None


def restore_sandbox(url: str, items: list[Held]) -> int | None:
    """Give the sandbox at ``url`` the items an earlier one held (``POST /_sandbox/restore``):
    how many it took (those it holds already are left alone), or None (logged) when it did not
    take them."""
    body = {
        "items": [
            {
                "platform": h.platform,
                "channel": h.channel,
                "remote_id": h.remote_id,
                "born": h.born.isoformat(),
                "url": h.url,
                "title": h.title,
                "text": h.text,
                "key": h.key,
            }
            for h in items
        ]
    }
    try:
        answer = httpx.post(f"{url.rstrip('/')}/_sandbox/restore", json=body, timeout=30)
        answer.raise_for_status()
        put = answer.json().get("restored")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        logger.warning("the sandbox at %s did not take the rehearsal's posts: %s", url, exc)
        return None
    return put if isinstance(put, int) else None


def tell_virtual_clock(url: str, now: datetime, speed: float) -> bool:
    """Tell the sandbox at ``url`` a rehearsal's virtual time ``now`` and its ``speed``
    (``POST /_sandbox/clock``), so the figures it serves grow with the rehearsal's days.
    Call it when the rehearsal starts (or resumes); again at any time to re-anchor. A sandbox
    that does not take it is logged and False (its figures then follow its own clock)."""
    try:
        body = {"virtual": now.isoformat(), "speed": speed}
        httpx.post(f"{url.rstrip('/')}/_sandbox/clock", json=body, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        logger.warning("the sandbox at %s did not take the rehearsal's clock: %s", url, exc)
        return False
    return True
