"""The single-flight refresh of rotating channel tokens (Zalo OA): one refresh at a time per
token across threads (a lock) and processes (a lease in the store), the new refresh token stored
before it is used. Never logs or raises with a token. Durable storage is ``store.tokens``; an
in-memory store serves tests and one-off commands.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from publisher.channels.base import AuthError, Temporary
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.tokens import RotatingTokenStore, Tokens, held_by_other

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(hours=1)  # refresh proactively when less than this remains
LEASE_S = 300.0  # far beyond a refresh request (30 s timeouts): a live holder keeps its lease
LEASE_WAITS = 30  # one-second waits for another process's refresh before giving up


@dataclass
class _Entry:
    tokens: Tokens | None = None
    seed_hash: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


class InMemoryTokenStore:
    """A RotatingTokenStore for tests and one-off commands: one process, nothing survives it."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._mutex = threading.Lock()

    def load(self, channel: str) -> Tokens | None:
        with self._mutex:
            entry = self._entries.get(channel)
            return replace(entry.tokens) if entry and entry.tokens else None

    def save(self, channel: str, tokens: Tokens, *, seed_hash: str | None = None) -> None:
        with self._mutex:
            entry = self._entries.setdefault(channel, _Entry())
            entry.tokens = replace(tokens)
            entry.seed_hash = seed_hash or entry.seed_hash
            entry.lease_owner = entry.lease_until = None

    def seed_hash(self, channel: str) -> str | None:
        with self._mutex:
            entry = self._entries.get(channel)
            return entry.seed_hash if entry else None

    def claim_refresh(self, channel: str, owner: str, *, now: datetime, ttl: float) -> bool:
        with self._mutex:
            entry = self._entries.setdefault(channel, _Entry())
            if held_by_other(entry.lease_owner, entry.lease_until, owner, now):
                return False
            entry.lease_owner, entry.lease_until = owner, now + timedelta(seconds=ttl)
            return True

    def release_refresh(self, channel: str, owner: str) -> None:
        with self._mutex:
            entry = self._entries.get(channel)
            if entry and entry.lease_owner == owner:
                entry.lease_owner = entry.lease_until = None


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _refresh_lock(key: str) -> threading.Lock:
    """The process-wide lock of one token key, shared by every rotator of that key."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def seed_digest(token: str) -> str:
    """How a configured first refresh token is recorded (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRotator:
    """Hands out a valid access token, refreshing single-use refresh tokens one at a time.

    One refresh per key at a time: a lock in this process, a lease in the store across processes.
    The new pair is saved (committed) before the new access token is handed out, because the old
    refresh token died when it was minted. ``seed`` is the first refresh token the operator
    configured; a seed other than the recorded one means they re-authorised: it is used again.
    ``mint(refresh_token)`` calls the platform and raises a ChannelError if it refuses.
    """

    def __init__(
        self,
        store: RotatingTokenStore,
        key: str,
        mint: Callable[[str], Tokens],
        *,
        seed: str | None,
        hint: str,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.key, self.mint, self.hint = store, key, mint, hint
        self.clock, self.sleep = clock, sleep
        self._seed = seed or None
        self._seed_hash = seed_digest(seed) if seed else None

    def current(self) -> Tokens | None:
        return self.store.load(self.key)

    def access_token(self, rejected: str | None = None) -> str:
        """A token valid for over REFRESH_MARGIN and not ``rejected`` (which the API refused)."""
        token = self._usable(self.store.load(self.key), rejected)
        if token:
            return token
        with _refresh_lock(self.key):
            owner = f"{socket.gethostname()}:{os.getpid()}-{uuid.uuid4().hex[:12]}"
            for _ in range(LEASE_WAITS):
                if self.store.claim_refresh(self.key, owner, now=self.clock.now(), ttl=LEASE_S):
                    try:
                        return self._refresh_claimed(rejected)
                    finally:
                        self.store.release_refresh(self.key, owner)
                logger.info("%s: another process is refreshing the tokens; waiting", self.key)
                self.sleep(1.0)
                token = self._usable(self.store.load(self.key), rejected)
                if token:
                    return token
        raise Temporary("another process has been refreshing the tokens for too long")

    def _usable(self, tokens: Tokens | None, rejected: str | None) -> str | None:
        if tokens is None or tokens.access_token == rejected or self._reseeded():
            return None
        if tokens.access_expires_at - self.clock.now() <= REFRESH_MARGIN:
            return None
        return tokens.access_token

    def _reseeded(self) -> bool:
        recorded = self.store.seed_hash(self.key)
        return bool(self._seed_hash and recorded and recorded != self._seed_hash)

    def _refresh_claimed(self, rejected: str | None) -> str:
        """Refresh while holding the lease: what is stored cannot change under us now."""
        stored = self.store.load(self.key)
        token = self._usable(stored, rejected)
        if token:
            return token  # another thread or process refreshed before we got the lease
        if stored is None or self._reseeded():
            if not self._seed:
                raise AuthError(f"no tokens are stored for this channel: {self.hint}")
            spend, seed_hash, source = self._seed, self._seed_hash, "the configured seed"
        else:
            spend, seed_hash, source = stored.refresh_token, None, "the stored token"
        logger.info("%s: refreshing the access token from %s", self.key, source)
        fresh = self.mint(spend)
        try:
            self.store.save(self.key, fresh, seed_hash=seed_hash)
        except Exception as exc:
            logger.critical("%s: rotated tokens could not be saved", self.key)
            raise AuthError(f"the new tokens could not be saved: {self.hint}") from exc
        logger.info("%s: tokens rotated; access valid until %s", self.key, fresh.access_expires_at)
        return fresh.access_token
