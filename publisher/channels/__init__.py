"""Channel adapters: one file per platform behind the interface in ``base``.

``ADAPTERS`` maps the config's adapter names to their classes, imported only when used so the
command line starts fast. ``build`` makes one adapter with its own ``httpx.Client``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from publisher.channels.base import Adapter, Clock, new_client, utcnow
from publisher.tokens import TokenStore

if TYPE_CHECKING:
    import httpx

    from publisher.config import Channel

ADAPTERS: dict[str, str] = {
    "wordpress": "publisher.channels.wordpress:WordPressAdapter",
    "webhook": "publisher.channels.webhook:WebhookAdapter",
    "facebook": "publisher.channels.facebook:FacebookAdapter",
    "zalo": "publisher.channels.zalo:ZaloAdapter",
}


def adapter_class(name: str) -> Any:
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build(
    channel: Channel,
    secrets: Mapping[str, str],
    *,
    client: httpx.Client | None = None,
    clock: Clock = utcnow,
    tokens: TokenStore | None = None,
) -> Adapter:
    """One adapter for ``channel``, with a client of its own unless one is given (tests)."""
    adapter: Adapter = adapter_class(channel.adapter)(
        channel, client or new_client(), secrets, clock=clock, tokens=tokens
    )
    return adapter


def endpoint(channel: Channel) -> str:
    """Where a channel publishes, for messages (no credentials in it)."""
    s = channel.settings
    return str(s.get("base_url") or s.get("url") or s.get("api_base_url") or "")
