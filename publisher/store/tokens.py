"""The database's store of rotating channel tokens (Zalo OA): the ``channel_token`` rows,
encrypted, and their refresh leases. No HTTP here (the refresh itself is ``channels.tokens``).
Never logs or raises with a token. The rows are Fernet tokens under, newest first (a MultiFernet:
the first key encrypts, every key decrypts):

1. the keys of ``PUBLISHER_TOKEN_KEYS`` (random Fernet keys, comma-separated, newest first);
2. scrypt (n=2**15, r=8, p=1) of the app secret with a random salt of this database (the ``meta``
   row ``tokens.salt``), the key when no token key is configured;
3. the first release's key (HKDF of the app secret, fixed salt), only to read old rows.

A row readable only by a later key of the list is re-encrypted with the first when the store
opens, so a rotated-out key or the legacy derivation is never needed twice.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.errors import InputError
from publisher.store.db import Database, locked_row
from publisher.store.models import ChannelTokenRow, MetaRow
from publisher.tokens import Tokens, held_by_other

if TYPE_CHECKING:
    from publisher.config import Config

logger = logging.getLogger(__name__)

TOKEN_KEYS_ENV = "PUBLISHER_TOKEN_KEYS"  # noqa: S105 - the variable's name
SALT_META_KEY = "tokens.salt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_NEW_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
_HKDF_SALT = b"publisher.tokens"  # the first release's derivation: read-only now
_HKDF_INFO = b"channel_token fernet v1"


class DatabaseTokenStore:
    """A RotatingTokenStore on the publisher database; every write commits before returning.

    ``keys`` (``PUBLISHER_TOKEN_KEYS``, see ``token_keys``) and ``key_material`` (the Zalo app
    secret) key the encryption (the module's docstring), so a copied database alone does not give
    the tokens away. Rows that cannot be decrypted (other keys) load as absent, with a warning.
    """

    def __init__(
        self,
        db: Database,
        key_material: str,
        *,
        keys: Sequence[str] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not key_material:
            raise ValueError("DatabaseTokenStore needs key material (the channel's app secret)")
        self.db = db
        self.clock = clock
        fernets = [Fernet(k) for k in keys]
        fernets.append(Fernet(_scrypt_key(key_material, self._salt())))
        fernets.append(Fernet(_legacy_key(key_material)))
        self._current = fernets[0]
        self._fernet = MultiFernet(fernets)
        self.reencrypted = self._reencrypt()

    def _salt(self) -> bytes:
        """This database's random salt for the scrypt key, made on first use."""
        for _ in range(2):
            with self.db.read() as session:
                row = session.get(MetaRow, SALT_META_KEY)
                if row is not None:
                    return base64.urlsafe_b64decode(row.value)
            try:
                with self.db.write() as session:
                    if session.get(MetaRow, SALT_META_KEY) is None:
                        value = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii")
                        session.add(MetaRow(key=SALT_META_KEY, value=value))
            except IntegrityError:  # another process made it first (PostgreSQL): read theirs
                continue
        raise RuntimeError("the token salt could not be stored")  # pragma: no cover

    def _stale(self, secret: str | None) -> bool:
        """Whether ``secret`` is readable only by a key after the first (so worth re-encrypting)."""
        if not secret:
            return False
        token = secret.encode("ascii")
        try:
            self._current.decrypt(token)
            return False
        except InvalidToken:
            pass
        try:
            self._fernet.decrypt(token)
            return True
        except InvalidToken:
            return False  # another secret's row: it loads as absent, and is left as it is

    def _reencrypt(self) -> int:
        """Re-encrypt with the first key every row only a later key reads; the count."""
        with self.db.read() as session:
            stale = [
                r.key for r in session.scalars(select(ChannelTokenRow)) if self._stale(r.secret)
            ]
        done = 0
        for key in stale:
            with self.db.write() as session:
                row = session.get(ChannelTokenRow, key, with_for_update=True)
                if row is not None and row.secret and self._stale(row.secret):
                    row.secret = self._fernet.rotate(row.secret.encode("ascii")).decode("ascii")
                    done += 1
        if done:
            logger.info("re-encrypted %d stored token row(s) with the current key", done)
        return done

    def load(self, channel: str) -> Tokens | None:
        with self.db.read() as session:
            row = session.get(ChannelTokenRow, channel)
            if row is None or row.secret is None or row.access_expires_at is None:
                return None
            secret, expires = row.secret, row.access_expires_at
        try:
            data = json.loads(self._fernet.decrypt(secret.encode("ascii")))
        except (InvalidToken, ValueError):
            logger.warning("stored tokens for %s cannot be decrypted with this key", channel)
            return None
        if data.get("key") != channel:  # a row copied under another key is not trusted
            logger.warning("stored tokens for %s belong to another key", channel)
            return None
        return Tokens(data["access_token"], data["refresh_token"], expires)

    def save(self, channel: str, tokens: Tokens, *, seed_hash: str | None = None) -> None:
        payload = {
            "key": channel,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
        }
        secret = self._fernet.encrypt(json.dumps(payload).encode("utf-8")).decode("ascii")
        with self.db.write() as session:
            row = self._row_for_update(session, channel)
            row.secret = secret
            row.access_expires_at = tokens.access_expires_at
            row.seed_hash = seed_hash or row.seed_hash
            row.lease_owner = row.lease_until = None
            row.updated_at = self.clock.now()

    def seed_hash(self, channel: str) -> str | None:
        with self.db.read() as session:
            row = session.get(ChannelTokenRow, channel)
            return row.seed_hash if row else None

    def claim_refresh(self, channel: str, owner: str, *, now: datetime, ttl: float) -> bool:
        try:
            with self.db.write() as session:
                row = self._row_for_update(session, channel)
                if held_by_other(row.lease_owner, row.lease_until, owner, now):
                    return False
                row.lease_owner = owner
                row.lease_until = now + timedelta(seconds=ttl)
                row.updated_at = self.clock.now()
                return True
        except IntegrityError:  # another process inserted the row first (PostgreSQL): it leads
            return False

    def release_refresh(self, channel: str, owner: str) -> None:
        with self.db.write() as session:
            row = session.get(ChannelTokenRow, channel, with_for_update=True)
            if row is not None and row.lease_owner == owner:
                row.lease_owner = row.lease_until = None

    def _row_for_update(self, session: Session, channel: str) -> ChannelTokenRow:
        return locked_row(
            session, ChannelTokenRow, {"key": channel, "updated_at": self.clock.now()}
        )


@functools.lru_cache(maxsize=8)
def _scrypt_key(key_material: str, salt: bytes) -> bytes:
    """The Fernet key without token keys: memory-hard, salted per database (once per process)."""
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return base64.urlsafe_b64encode(kdf.derive(key_material.encode("utf-8")))


def _legacy_key(key_material: str) -> bytes:
    """The first release's key (fast HKDF, fixed salt): only to read and re-encrypt old rows."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(key_material.encode("utf-8")))


def parse_token_keys(raw: str) -> tuple[str, ...]:
    """``PUBLISHER_TOKEN_KEYS``: Fernet keys separated by commas, newest first; each checked."""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise InputError(
                TOKEN_KEYS_ENV,
                f"key {number} of {len(keys)} is not a Fernet key (32 url-safe base64 bytes)",
                f"make one with: {_NEW_KEY}",
            ) from None
    return keys


def token_keys(config: Config) -> tuple[str, ...]:
    """The token keys from the environment or the .env file (``()`` when none are set)."""
    from publisher.config.env import environment

    return parse_token_keys(environment(config).get(TOKEN_KEYS_ENV, ""))
