"""Rotating OAuth tokens (Zalo OA), as the rotator (``channels.tokens``) and their durable store
(``store.tokens``) both speak of them: the token pair, the store's protocol, and the rule of a
refresh lease (who holds it, and whether its holder is still alive)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass
class Tokens:
    """A rotating OAuth token pair (Zalo OA). ``refresh_token`` is single-use."""

    access_token: str
    refresh_token: str
    access_expires_at: datetime


class TokenStore(Protocol):
    """Durable storage for a channel's rotating tokens (the database in production)."""

    def load(self, channel: str) -> Tokens | None: ...

    def save(self, channel: str, tokens: Tokens) -> None:
        """Persist durably (committed) before returning."""
        ...


@runtime_checkable
class RotatingTokenStore(TokenStore, Protocol):
    """A TokenStore for single-use refresh tokens: a seed record and a cross-process lease.

    ``save`` also ends any refresh lease on the key; ``seed_hash=None`` keeps the recorded one.
    """

    def save(self, channel: str, tokens: Tokens, *, seed_hash: str | None = None) -> None: ...

    def seed_hash(self, channel: str) -> str | None:
        """SHA-256 (hex) of the configured first refresh token the stored tokens descend from."""
        ...

    def claim_refresh(self, channel: str, owner: str, *, now: datetime, ttl: float) -> bool:
        """Take the refresh lease for ``ttl`` seconds; False while someone else holds it."""
        ...

    def release_refresh(self, channel: str, owner: str) -> None:
        """Give the lease back (a no-op unless ``owner`` holds it)."""
        ...


def held_by_other(
    lease_owner: str | None, lease_until: datetime | None, owner: str, now: datetime
) -> bool:
    held = lease_owner is not None and lease_owner != owner and (lease_until or now) > now
    return held and owner_alive(lease_owner or "")


def owner_alive(owner: str) -> bool:
    """False only when the lease's owner is a process of this host that no longer exists (it
    was killed mid-refresh): its lease may be taken over at once instead of waiting it out."""
    host, _, rest = owner.rpartition(":")
    pid = rest.split("-", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
