"""What a sandbox started afresh is given of an earlier one, and what a running one tells of its
items' births: the published items a rehearsal left on a sandbox (``Held``: platform, channel,
remote id, address, title, text and the virtual time it was born), so that a new sandbox
serves them as the platforms would still hold them — their figures grown from the same birth
with the same seed, their lookups and listings — and new items never take their ids.

``births`` is the other side: each item's virtual birth as the figures count it, which a
rehearsal keeps in its database so that a later restore is born exactly where the first was.

Pure state changes under the caller's lock; no HTTP.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Protocol

from publisher.sandbox.client import Held
from publisher.sandbox.facebook import POST_BASE, Facebook
from publisher.sandbox.facebook_store import FbPost
from publisher.sandbox.routing import Context
from publisher.sandbox.webhook import Item, Webhook
from publisher.sandbox.wordpress import USERS, WordPress
from publisher.sandbox.wordpress_store import WpPost, sanitize_title, unique_slug
from publisher.sandbox.zalo import Zalo
from publisher.sandbox.zalo_store import Article


class Platforms(Protocol):
    """What of ``server.Sandbox`` a restore changes."""

    ctx: Context
    facebook: Facebook
    zalo: Zalo
    wordpress: WordPress
    webhook: Webhook


def restore(sb: Platforms, items: list[Held]) -> int:
    """Put each item in its platform, born at ``born`` (for good: a later clock does not move
    it); the ones it already holds are left as they are. How many were put."""
    put = 0
    for item in items:
        if (item.platform, item.remote_id) in sb.ctx.born or _holds(sb, item):
            continue
        {"facebook": _facebook, "zalo": _zalo, "wordpress": _wordpress, "webhook": _webhook}[
            item.platform
        ](sb, item)
        sb.ctx.born[(item.platform, item.remote_id)] = item.born
        put += 1
    return put


def births(sb: Platforms) -> dict[str, str]:
    """``"platform:remote id"`` → the virtual birth (ISO) its figures count from, for every
    item with figures: Facebook's live posts, Zalo's published articles, WordPress's published
    posts and the webhook's items."""
    return {f"{p}:{rid}": born.isoformat() for (p, rid), born in sorted(_births(sb).items())}


def freeze(sb: Platforms) -> None:
    """Fix every item's virtual birth where it is now, before the virtual clock is set anew:
    an item was born when it was, whatever clock a later rehearsal (or reading) follows."""
    for key, born in _births(sb).items():
        sb.ctx.born.setdefault(key, born)


def restore_from(data: object) -> list[Held]:
    """The items of a ``POST /_sandbox/restore`` body (``{"items": [{"platform", "channel",
    "remote_id", "born", "url", "title", "text", "key"}, …]}``); ValueError naming what is
    wrong."""
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('the body must be {"items": [...]}')
    held = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"items[{n}] is not an object")
        try:
            held.append(
                Held(
                    str(item["platform"]),
                    str(item.get("channel") or ""),
                    str(item["remote_id"]),
                    datetime.fromisoformat(str(item["born"])),
                    url=None if item.get("url") is None else str(item["url"]),
                    title=str(item.get("title") or ""),
                    text=str(item.get("text") or ""),
                    key=str(item.get("key") or ""),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"items[{n}]: {exc}") from None
    return held


def _births(sb: Platforms) -> dict[tuple[str, str], datetime]:
    ctx, found = sb.ctx, {}
    now = ctx.now()
    for fb in sb.facebook.posts.values():
        if fb.live(now):
            born = fb.scheduled if fb.scheduled is not None else fb.created
            found["facebook", fb.id] = ctx.birth("facebook", fb.id, born)
    for article in sb.zalo.articles.values():
        if article.published and not article.removed:
            found["zalo", article.id] = ctx.birth("zalo", article.id, article.created)
    for wp in sb.wordpress.posts.values():
        if wp.status == "publish":
            found["wordpress", str(wp.id)] = ctx.birth("wordpress", str(wp.id), wp.date_gmt)
    for hook in sb.webhook.items.values():
        if hook.created is not None:
            found["webhook", hook.id] = ctx.birth("webhook", hook.id, hook.created)
    return found


def _holds(sb: Platforms, item: Held) -> bool:
    rid = item.remote_id
    if item.platform == "facebook":
        return rid in sb.facebook.posts
    if item.platform == "zalo":
        return rid in sb.zalo.articles
    if item.platform == "wordpress":
        return rid.isdigit() and int(rid) in sb.wordpress.posts
    return any(i.id == rid for i in sb.webhook.items.values())


def _facebook(sb: Platforms, item: Held) -> None:
    fb = sb.facebook
    page, _, number = item.remote_id.partition("_")
    seq = int(number) - POST_BASE if number.isdigit() and int(number) > POST_BASE else 0
    if seq <= 0:
        fb.seq += 1
        seq = fb.seq
    fb.seq = max(fb.seq, seq)  # the next post (or photo) takes a number past it
    created = sb.ctx.virtual.sandbox_time(item.born)
    fb.posts[item.remote_id] = FbPost(
        id=item.remote_id,
        page=page if number else "0",
        seq=seq,
        message=item.text or item.title,
        link=None,
        created=created,
        published=True,
        scheduled=None,
        status_type="mobile_status_update",
    )


def _zalo(sb: Platforms, item: Held) -> None:
    zalo = sb.zalo
    zalo.seq += 1
    body = {
        "type": "normal",
        "title": item.title,
        "body": [{"type": "text", "content": item.text}] if item.text else [],
        "status": "show",
    }
    created = sb.ctx.virtual.sandbox_time(item.born)
    zalo.articles[item.remote_id] = Article(
        item.remote_id, secrets.token_hex(20), zalo.seq, body, created, published=True
    )


def _wordpress(sb: Platforms, item: Held) -> None:
    wp = sb.wordpress
    number = int(item.remote_id)
    taken = {p.slug for p in wp.posts.values()} | {m.slug for m in wp.media.values()}
    slug = unique_slug(sanitize_title(item.title) or str(number), taken)
    created = sb.ctx.virtual.sandbox_time(item.born).replace(microsecond=0)
    editor = next(u.id for u in USERS.values() if u.role == "editor")
    wp.posts[number] = WpPost(
        number, slug, "publish", item.title, item.text, "", created, created, editor
    )
    wp.next_id = max(wp.next_id, number + 1)


def _webhook(sb: Platforms, item: Held) -> None:
    hook = sb.webhook
    key = item.key or f"restored-{item.channel}-{item.remote_id}"
    body = {"title": item.title, "body_html": item.text}
    created = sb.ctx.virtual.sandbox_time(item.born)
    hook.items[key] = Item(item.remote_id, key, item.channel, body, done=True, created=created)
    if item.remote_id.isdigit():
        hook.next_id = max(hook.next_id, int(item.remote_id) + 1)
