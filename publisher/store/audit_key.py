"""The audit key: the secret that keys the audit chain (HMAC-SHA256), so whoever can write the
database cannot rewrite the trail and recompute its hashes.

It lives in the environment variable PUBLISHER_AUDIT_KEY (or the .env file config.toml names),
never in the database: the database keeps only its id. ``create`` makes one for a new user and
appends it to the .env file.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import io
import os
import re
import secrets
from pathlib import Path

from publisher.config import Config
from publisher.errors import PublisherError

KEY_ENV = "PUBLISHER_AUDIT_KEY"
MIN_BYTES = 32
MAKE_ONE = (
    "make one with: python3 -c 'import secrets; print(secrets.token_hex(32))' and set "
    f"{KEY_ENV} to it in the environment or the .env file config.toml names; keep a copy offline"
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9_-]+=*")


class AuditKeyError(PublisherError):
    """The audit key is missing, malformed, or not the key the trail was keyed with."""


def parse_key(text: str) -> bytes:
    """``text`` (hex, or URL-safe base64) → the key's bytes; at least 32 of them."""
    value = text.strip()
    key = b""
    if _HEX.fullmatch(value) and len(value) % 2 == 0:
        key = bytes.fromhex(value)
    elif _B64.fullmatch(value):
        try:
            key = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            key = b""
    if len(key) < MIN_BYTES:
        raise AuditKeyError(
            KEY_ENV,
            f"must be at least {MIN_BYTES} random bytes, written as 64 hex characters or as "
            "URL-safe base64 (the value set is neither)",
            MAKE_ONE,
        )
    return key


def key_id(key: bytes) -> str:
    """A public name for ``key`` (kept in the database), so a wrong key is named as such."""
    return hashlib.sha256(b"publisher audit key id" + key).hexdigest()[:16]


def from_environment(config: Config) -> bytes | None:
    """The key from the environment or the .env file, or None if there is none."""
    from publisher.config.env import environment

    value = environment(config).get(KEY_ENV, "")
    return parse_key(value) if value.strip() else None


def create(config: Config) -> tuple[bytes, Path, bool]:
    """A new key appended to the .env file config.toml names (created 0600), unless another
    process put one there meanwhile: (key, file, whether it was made now)."""
    path = config.env_file
    if path is None:
        raise AuditKeyError(
            KEY_ENV,
            f"is not set, and {config.path.name} names no [environment] file to keep a new one",
            MAKE_ONE,
        )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # two commands at once make one key, not two
            existing = f.read()
            from dotenv import dotenv_values

            found = dotenv_values(stream=io.StringIO(existing)).get(KEY_ENV)
            if found:
                return parse_key(found), path, False
            value = secrets.token_hex(MIN_BYTES)
            newline = "" if not existing or existing.endswith("\n") else "\n"
            f.write(f"{newline}{KEY_ENV}={value}\n")
            f.flush()
            os.fsync(f.fileno())
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
        raise AuditKeyError(
            KEY_ENV, f"is not set, and {path} cannot be written to keep a new one: {why}", MAKE_ONE
        ) from exc
    return bytes.fromhex(value), path, True
