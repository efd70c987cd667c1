"""The sandbox's documented test credentials and URL layout; shared by the sandbox and the CLI.

These are not secrets: they only open the local sandbox. Layout under one base URL:
``/facebook`` ≙ graph.facebook.com, ``/zalo/openapi`` ≙ openapi.zalo.me,
``/zalo/oauth`` ≙ oauth.zaloapp.com, ``/wordpress`` ≙ a WordPress site root,
``/webhook/<channel>`` ≙ a webhook endpoint; and an SMTP server on a port of its own (``GET
/_sandbox/smtp`` says which) ≙ the Department's mail server.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from publisher.signing import make_secret

WORDPRESS_USER = "publisher"


def _derived(label: str, length: int) -> str:
    """``length`` hex digits derived from ``label``: the same in every process, and no value
    that opens anything is written down in a file."""
    return hashlib.sha256(f"publisher sandbox {label}".encode()).hexdigest()[:length]


# A WordPress application password's shape: 24 letters and digits in groups of 4.
WORDPRESS_PASSWORD = " ".join(re.findall("....", _derived("wordpress application password", 24)))
WORDPRESS_CONTRIBUTOR = "contributor"  # can create drafts but not publish
FACEBOOK_PAGE_TOKEN = "sandbox-page-token"
ZALO_APP_SECRET = "sandbox-zalo-app-secret"
ZALO_FIRST_REFRESH_TOKEN = "sandbox-refresh-token-0"
# Standard Webhooks' format: whsec_ + base64 of a 32-byte key.
WEBHOOK_SIGNING_SECRET = make_secret(bytes.fromhex(_derived("webhook signing key", 64)))
MAIL_USER = "publisher"  # the SMTP login (AUTH PLAIN or LOGIN, no TLS: loopback only)
# The SMTP password: the same in every process (``publisher sandbox`` prints it), made here rather
# than written down, as no password is kept in a file.
MAIL_PASSWORD = _derived("smtp login", 20)

# adapter → secret role → value (the roles of publisher.config.ADAPTERS)
SECRETS: dict[str, dict[str, str]] = {
    "wordpress": {"password": WORDPRESS_PASSWORD},
    "webhook": {"signing_secret": WEBHOOK_SIGNING_SECRET},
    "facebook": {"page_token": FACEBOOK_PAGE_TOKEN},
    "zalo": {"app_secret": ZALO_APP_SECRET, "refresh_token": ZALO_FIRST_REFRESH_TOKEN},
    "email": {},  # the mail goes through the sandbox's SMTP server, with its login
}


def settings_for(adapter: str, base_url: str, channel: str) -> dict[str, Any]:
    """The channel settings that point an adapter of this kind at the sandbox at ``base_url``."""
    base = base_url.rstrip("/")
    return {
        "wordpress": {"base_url": f"{base}/wordpress", "username": WORDPRESS_USER},
        "webhook": {"url": f"{base}/webhook/{channel}"},
        "facebook": {"base_url": f"{base}/facebook"},
        "zalo": {"api_base_url": f"{base}/zalo/openapi", "oauth_base_url": f"{base}/zalo/oauth"},
        # the desk's mail goes to the sandbox's SMTP server; the portal it publishes on (the
        # live addresses it confirms) is the sandbox's
        "email": {"site": f"{base}/desk/{channel}"},
    }[adapter]
