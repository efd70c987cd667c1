"""The sandbox's own endpoints: the follower page, the pictures (``/media/<sha256>.<ext>``) and
``/_sandbox/…`` (records, faults, reset, clock, media, smtp, imap, desk, stats). Their client
side (``tell_virtual_clock``, ``restore_sandbox``, ``sandbox_births``) lives in ``client``, which
a rehearsal imports without the platforms.

Reads platform state to mark what became of an item; changes state only through Sandbox's methods.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any, Protocol

from publisher.sandbox import credentials
from publisher.sandbox.desk import Desk
from publisher.sandbox.facebook import Facebook
from publisher.sandbox.faults import FaultPlan, FaultSpecError
from publisher.sandbox.page import CSP, render_page
from publisher.sandbox.restore import births, freeze, restore, restore_from
from publisher.sandbox.routing import BadBody, Context, Request, Response
from publisher.sandbox.webhook import Webhook
from publisher.sandbox.wordpress import PLUGINS, WordPress
from publisher.sandbox.zalo import Zalo

logger = logging.getLogger(__name__)

PICTURE = r"/media/[0-9a-f]{64}\.(?:jpg|png)"


class Sandbox(Protocol):
    """What these endpoints use of ``server.Sandbox`` (which imports this module)."""

    ctx: Context
    facebook: Facebook
    wordpress: WordPress
    zalo: Zalo
    webhook: Webhook
    desk: Desk

    @property
    def smtp_address(self) -> tuple[str, int] | None: ...

    @property
    def imap_address(self) -> tuple[str, int] | None: ...

    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> None: ...

    def records(self) -> list[dict[str, Any]]: ...

    def set_faults(self, faults: FaultPlan | str | None, seed: int | None = None) -> FaultPlan: ...

    def reset(self) -> None: ...


def status_of(sb: Sandbox, record: dict[str, Any]) -> str:
    """What became of a recorded item since: "" (still as accepted), deleted, trash, draft, …"""
    rid, platform, now = str(record["remote_id"]), record["platform"], sb.now()
    if platform == "facebook":
        post = sb.facebook.posts.get(rid)
        if post is None or post.deleted:
            return "deleted"
        return "" if post.live(now) else "scheduled" if post.scheduled else "unpublished"
    if platform == "zalo" and rid in sb.zalo.articles:
        article = sb.zalo.articles[rid]
        if article.removed:
            return "removed"
        return "hidden" if article.body.get("status") == "hide" else ""
    if platform == "wordpress":
        if record.get("kind") == "media":
            return "" if rid.isdigit() and int(rid) in sb.wordpress.media else "deleted"
        wp = sb.wordpress.posts.get(int(rid)) if rid.isdigit() else None
        return "deleted" if wp is None else "" if wp.status == "publish" else wp.status
    return ""


def page(sb: Sandbox) -> Response:
    sb.wordpress.promote()
    answer = Response.html(
        render_page(
            sb.records(),
            lambda r: status_of(sb, r),
            faults=sb.ctx.faults.spec(),
            local=sb.ctx.media.local_path,
        )
    )
    answer.headers += [("Content-Security-Policy", CSP), ("Cache-Control", "no-store")]
    return answer


def picture(sb: Sandbox, req: Request, m: dict[str, str]) -> Response:
    """A picture the sandbox holds, by its sha256 (GET or HEAD)."""
    found = sb.ctx.media.at(req.path)
    if found is None:
        return Response.json({"error": "not_found", "message": "no such picture"}, 404)
    return Response.picture(found)


def control(sb: Sandbox, req: Request, m: dict[str, str]) -> Response:
    """GET records · GET/POST faults (JSON ``{"spec", "seed"}`` or the bare spec) · POST reset ·
    GET/POST clock (JSON ``{"advance": seconds}``; or ``{"virtual": ISO time, "speed": N}``:
    the rehearsal's time now and speed, which the figures' ages follow) · GET/POST stats (JSON
    ``{"wordpress": [plugins], "webhook": true|false}``: which view counts are served) · GET
    media (every picture held) · GET smtp
    (where the SMTP server listens, and its user: ``{"host", "port", "security", "username"}``;
    the password is ``credentials.MAIL_PASSWORD``) · GET imap (the IMAP server likewise, and
    its ``mailbox``) · GET births (``{"seed", "births": {"platform:remote id": virtual ISO
    time}}``: where each item's figures count from, for a later restore) · POST restore
    (``{"items": [{"platform", "channel", "remote_id", "born", "url", "title", "text",
    "key"}]}``: items an earlier sandbox held, ``client.Held``) · GET/POST desk
    (JSON ``{"delay": seconds of campaign time, "speed": N}``:
    the desk's delay, and how much faster than real time it plays it)."""
    what = m["what"]
    if what == "records" and req.method == "GET":
        return Response.json(sb.records())
    if what == "media" and req.method == "GET":
        return Response.json(sb.ctx.media.pictures())
    if what == "smtp" and req.method == "GET":
        return smtp(sb)
    if what == "imap" and req.method == "GET":
        return imap(sb)
    if what == "desk" and req.method in ("GET", "POST"):
        return desk(sb, req)
    if what == "faults" and req.method == "POST":
        try:
            data = req.json() if req.body.lstrip().startswith(b"{") else None
            spec = data.get("spec", "") if isinstance(data, dict) else req.body.decode()
            seed = data.get("seed") if isinstance(data, dict) else req.arg("seed")
            sb.set_faults(str(spec or ""), None if seed is None else int(seed))
        except (BadBody, FaultSpecError, ValueError, UnicodeDecodeError) as exc:
            return Response.json({"error": "bad_faults", "message": str(exc)}, 400)
    if what == "faults" and req.method in ("GET", "POST"):
        return Response.json({"spec": sb.ctx.faults.spec(), "seed": sb.ctx.faults.seed})
    if what == "reset" and req.method == "POST":
        sb.reset()
        return Response.json({"ok": True})
    if what == "clock" and req.method in ("GET", "POST"):
        return clock(sb, req)
    if what == "stats" and req.method in ("GET", "POST"):
        return stats(sb, req)
    if what == "births" and req.method == "GET":
        return Response.json({"seed": sb.ctx.seed, "births": births(sb)})
    if what == "restore" and req.method == "POST":
        try:
            put = restore(sb, restore_from(req.json()))
        except (BadBody, ValueError) as exc:
            return Response.json({"error": "bad_restore", "message": str(exc)}, 400)
        return Response.json({"restored": put})
    return Response.json({"error": "method", "message": f"{req.method} not allowed"}, 405)


def clock(sb: Sandbox, req: Request) -> Response:
    """The sandbox's time, and the rehearsal's virtual time the figures follow; a POST moves the
    first (``advance``) or sets the second (``virtual`` and ``speed``); 400 for bad values."""
    if req.method == "POST":
        try:
            data = req.json() if req.body.strip() else {}
            if not isinstance(data, dict):
                raise BadBody("the body is not a JSON object")
            advance = float(data.get("advance", 0))
            virtual = datetime.fromisoformat(str(data["virtual"])) if "virtual" in data else None
            if virtual is not None:
                speed = float(data.get("speed", 1.0))
                if virtual.tzinfo is None or not (math.isfinite(speed) and speed > 0):
                    raise ValueError("virtual needs its UTC offset, and speed must be > 0")
                freeze(sb)  # the items held keep the births they had
                sb.ctx.virtual.set(sb.now(), virtual, speed)
        except (BadBody, ValueError, TypeError) as exc:
            return Response.json({"error": "bad_clock", "message": str(exc)}, 400)
        sb.advance(advance)
    now = sb.now()
    answer = {"now": now.isoformat(), "virtual": sb.ctx.virtual.at(now).isoformat()}
    return Response.json(answer | {"anchor": sb.ctx.virtual.state()})


def stats(sb: Sandbox, req: Request) -> Response:
    """Which view counts the sandbox serves: the WordPress plugins installed, and whether the
    webhook portal answers its stats lookup; a POST changes either (400 for unknown ones)."""
    if req.method == "POST":
        try:
            data = req.json() if req.body.strip() else {}
            if not isinstance(data, dict):
                raise BadBody("the body is not a JSON object")
            plugins = data.get("wordpress", sorted(sb.wordpress.plugins))
            hook = data.get("webhook", sb.webhook.stats)
            if not isinstance(plugins, list) or not set(plugins) <= set(PLUGINS):
                raise BadBody(f"wordpress must list plugins among {', '.join(PLUGINS)}")
            if not isinstance(hook, bool):
                raise BadBody("webhook must be true or false")
        except BadBody as exc:
            return Response.json({"error": "bad_stats", "message": str(exc)}, 400)
        sb.wordpress.plugins, sb.webhook.stats = set(plugins), hook
    return Response.json({"wordpress": sorted(sb.wordpress.plugins), "webhook": sb.webhook.stats})


def smtp(sb: Sandbox) -> Response:
    """Where the SMTP server listens (404 if this sandbox has none)."""
    address = sb.smtp_address
    if address is None:
        missing = {"error": "no_smtp", "message": "this sandbox has no SMTP server"}
        return Response.json(missing, 404)
    host, port = address
    answer = {"host": host, "port": port, "security": "none", "username": credentials.MAIL_USER}
    return Response.json(answer)


def imap(sb: Sandbox) -> Response:
    """Where the IMAP server listens (404 if this sandbox has none)."""
    address = sb.imap_address
    if address is None:
        missing = {"error": "no_imap", "message": "this sandbox has no IMAP server"}
        return Response.json(missing, 404)
    host, port = address
    answer = {
        "host": host,
        "port": port,
        "security": "none",
        "username": credentials.MAIL_USER,
        "mailbox": "INBOX",
    }
    return Response.json(answer)


def desk(sb: Sandbox, req: Request) -> Response:
    """The desk's delay and speed; a POST changes either (400 for values that are not
    numbers ≥ 0, or a speed of 0)."""
    if req.method == "POST":
        try:
            data = req.json() if req.body.strip() else {}
            if not isinstance(data, dict):
                raise BadBody("the body is not a JSON object")
            delay = float(data["delay"]) if "delay" in data else None
            speed = float(data["speed"]) if "speed" in data else None
        except (BadBody, ValueError, TypeError) as exc:
            return Response.json({"error": "bad_desk", "message": str(exc)}, 400)
        if (delay is not None and not 0 <= delay < 1e9) or (
            speed is not None and not 0 < speed < 1e9
        ):
            problem = "delay must be seconds ≥ 0 and speed a number > 0"
            return Response.json({"error": "bad_desk", "message": problem}, 400)
        with sb.desk.lock:
            if delay is not None:
                sb.desk.delay = timedelta(seconds=delay)
            if speed is not None:
                sb.desk.speed = speed
    return Response.json(sb.desk.settings())
