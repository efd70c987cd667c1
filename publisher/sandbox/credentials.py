"""The sandbox's documented test credentials and URL layout; shared by the sandbox and the CLI.

These are not secrets: they only open the local sandbox. Layout under one base URL:
``/facebook`` ≙ graph.facebook.com, ``/zalo/openapi`` ≙ openapi.zalo.me,
``/zalo/oauth`` ≙ oauth.zaloapp.com, ``/wordpress`` ≙ a WordPress site root,
``/webhook/<channel>`` ≙ a webhook endpoint; and an SMTP server on a port of its own (``GET
/_sandbox/smtp`` says which) ≙ the Department's mail server.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

WORDPRESS_USER = "publisher"
WORDPRESS_PASSWORD = "abcd EFGH ijkl MNOP qrst UVWX"  # an application password's shape
WORDPRESS_CONTRIBUTOR = "contributor"  # can create drafts but not publish
FACEBOOK_PAGE_TOKEN = "sandbox-page-token"
ZALO_APP_SECRET = "sandbox-zalo-app-secret"
ZALO_FIRST_REFRESH_TOKEN = "sandbox-refresh-token-0"
# Standard Webhooks' format: whsec_ + base64 of the key (here the 32 bytes below), made here
# rather than written down in its encoded form.
WEBHOOK_SIGNING_SECRET = "whsec_" + base64.b64encode(b"publisher-sandbox-webhook-key-32").decode()
MAIL_USER = "publisher"  # the SMTP login (AUTH PLAIN or LOGIN, no TLS: loopback only)
# The SMTP password: the same in every process (``publisher sandbox`` prints it), made here rather
# than written down, as no password is kept in a file.
MAIL_PASSWORD = hashlib.sha256(b"publisher sandbox smtp login").hexdigest()[:20]

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
