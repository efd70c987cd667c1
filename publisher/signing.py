"""Standard Webhooks signing (https://www.standardwebhooks.com/): the ``whsec_`` secret, its
key, and the ``v1`` signature. Shared by the webhook adapter (``channels.webhook``), the config's
secret checks (``config.env``) and the sandbox's receiver, which must agree byte for byte."""

from __future__ import annotations

import base64
import binascii
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - Standard Webhooks: whsec_ + base64 of the key bytes
MIN_KEY_BYTES = 24  # the scheme's recommended minimum (192 bits)
# How to make a secret (not one): the command the errors and docs/webhook.md give.
NEW_SECRET = (
    'python -c "import base64, secrets; '  # noqa: S105
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError (never quoting it) otherwise."""
    problem = secret_problem(secret)
    if problem is not None:
        raise ValueError(f"the webhook signing secret {problem}")
    return _decode(secret)


def _decode(secret: str) -> bytes:
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a Standard Webhooks secret publisher accepts (one line naming the
    fix, never the secret), or None. A plain string is refused rather than guessed at: receivers
    verifying with a Standard Webhooks library would read it as base64 and never agree."""
    how = f"make one with: {NEW_SECRET}"
    if not secret.strip().startswith(SECRET_PREFIX):
        return f"is not a Standard Webhooks secret: it must be {SECRET_PREFIX}<base64> ({how})"
    try:
        key = _decode(secret)
    except (binascii.Error, ValueError):
        return f"is not valid base64 after {SECRET_PREFIX} ({how})"
    if len(key) < MIN_KEY_BYTES:
        return f"holds {len(key)} bytes, fewer than {MIN_KEY_BYTES} ({how})"
    return None


def sign(key: bytes, msg_id: str, timestamp: int, content: bytes) -> str:
    """``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 of ``"{id}.{timestamp}.{content}"``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + content, "sha256").digest()
    return "v1," + base64.b64encode(mac).decode("ascii")
