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


def make_secret(key: bytes) -> str:
    """The ``whsec_<base64>`` secret of HMAC key ``key`` (the inverse of ``signing_key``)."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


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


# Confirmation links: the signed link in a hand-off mail (the email channel) that lets a
# portal's editorial desk, which has no account, confirm one post's live address in the web
# app. The key is derived from a secret the app and the daemon share (the audit key), so a link
# made by the daemon opens in the web app, and no other secret is needed.

LINK_PURPOSE = b"publisher confirmation link v1"


class LinkError(ValueError):
    """A confirmation link that is not good: ``expired`` (True: too old, else tampered or
    malformed)."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def link_key(secret: bytes) -> bytes:
    """The key that signs confirmation links, derived from ``secret`` (the audit key)."""
    return hmac.new(secret, LINK_PURPOSE, "sha256").digest()


def link_token(key: bytes, post_id: int, idempotency_key: str, expires: int) -> str:
    """``<post id>.<idempotency key>.<expiry, Unix seconds>.<signature>``: it authorises
    confirming that one post until ``expires``, and nothing else."""
    payload = f"{post_id}.{idempotency_key}.{expires}"
    mac = hmac.new(key, payload.encode(), "sha256").digest()
    return f"{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def read_link_token(key: bytes, token: str, now: int) -> tuple[int, str]:
    """The post id and idempotency key a link's token authorises at ``now`` (Unix seconds);
    LinkError if the signature does not hold or the link has expired."""
    parts = token.strip().split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit():
        raise LinkError("the link is not a confirmation link publisher made")
    post_id, idem, expires, _sig = parts
    expected = link_token(key, int(post_id), idem, int(expires))
    if not hmac.compare_digest(expected.encode(), token.strip().encode()):
        raise LinkError("the link's signature does not hold (changed, or made by another queue)")
    if int(expires) < now:
        raise LinkError("the link has expired", expired=True)
    return int(post_id), idem
