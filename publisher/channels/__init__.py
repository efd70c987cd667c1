"""Channel adapters: one file per platform behind the interface in ``base``.

``adapter_class`` finds an adapter kind's class through the one registry of kinds
(``config.ADAPTERS``), importing it only when used so the command line starts fast. ``build``
makes one adapter with its own ``httpx.Client``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from publisher.channels.base import Adapter, MediaHost, new_client
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config.model import ADAPTERS
from publisher.tokens import TokenStore

if TYPE_CHECKING:
    import httpx

    from publisher.config import Channel


def adapter_class(name: str) -> Any:
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
    module, _, cls = ADAPTERS[name].factory.partition(":")
    return getattr(importlib.import_module(module), cls)


def build(
    channel: Channel,
    secrets: Mapping[str, str],
    *,
    client: httpx.Client | None = None,
    clock: Clock = SYSTEM_CLOCK,
    tokens: TokenStore | None = None,
    media_host: MediaHost | None = None,
) -> Adapter:
    """One adapter for ``channel``, with a client of its own unless one is given (tests).
    ``media_host`` gives public addresses for picture files to an adapter that needs them
    (Zalo's covers); only such an adapter takes one."""
    extra: dict[str, Any] = {} if media_host is None else {"media_host": media_host}
    adapter: Adapter = adapter_class(channel.adapter)(
        channel, client or new_client(), secrets, clock=clock, tokens=tokens, **extra
    )
    return adapter


def endpoint(channel: Channel) -> str:
    """Where a channel publishes, for messages (no credentials in it)."""
    for name in ("base_url", "url", "api_base_url"):
        if value := channel.setting(name):
            return str(value)
    if to := channel.setting("to"):  # an email channel: the desk's address(es)
        return "mailto:" + ",".join(to) if isinstance(to, (tuple, list)) else f"mailto:{to}"
    return ""
