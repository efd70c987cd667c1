"""The sandbox's HTML page: what a follower would see, one card per accepted item, newest first.

Pure: records in, one HTML string out. Every value is escaped; no script, no external resource.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

SECTIONS = (
    ("facebook", "Facebook Page"),
    ("zalo", "Zalo OA"),
    ("wordpress", "WordPress portal"),
    ("webhook", "Webhook portals"),
)
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem}
body{background:#f4f5f7}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:2px solid #ccd}
.card{background:#fff;border:1px solid #dde;border-radius:8px;padding:.8rem 1rem;margin:.7rem 0}
.card:target{outline:3px solid #4a7}.meta{color:#667;font-size:.85rem}
.title{font-weight:600;margin:.3rem 0}.text{white-space:pre-wrap;overflow-wrap:anywhere}
.badge{background:#eee;border-radius:4px;padding:0 .4rem;margin-left:.4rem}
.empty{color:#889;font-style:italic}code{font-size:.85rem}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"


def card(record: dict[str, Any], status: str) -> str:
    anchor = f"{record['platform']}-{record['remote_id']}"
    badges = "".join(
        f'<span class="badge">{escape(b)}</span>' for b in (record.get("kind"), status) if b
    )
    title = record.get("title") or ""
    text = record.get("text") or ""
    fields = record.get("fields") or {}
    extra = ""
    if record["platform"] == "facebook" and fields.get("link"):
        extra = f'<div class="meta">link: {escape(str(fields["link"]))}</div>'
    if record["platform"] == "zalo" and fields.get("description"):
        extra = f'<div class="meta">{escape(str(fields["description"]))}</div>'
    return (
        f'<article class="card" id="{escape(anchor)}">'
        f'<div class="meta">{escape(str(record.get("time", "")))}'
        f" · {escape(str(record.get('channel', '')))}"
        f" · <code>{escape(str(record['remote_id']))}</code>{badges}</div>"
        + (f'<div class="title">{escape(str(title))}</div>' if title else "")
        + extra
        + f'<div class="text">{escape(str(text))}</div></article>'
    )


def render_page(
    records: Sequence[dict[str, Any]],
    status_of: Callable[[dict[str, Any]], str] = lambda r: "",
    *,
    faults: str = "",
) -> str:
    """The whole page; ``status_of`` names what became of an item since (deleted, trash, …)."""
    parts = [
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>publisher sandbox</title><style>{STYLE}</style></head><body>",
        "<h1>publisher sandbox: what followers see</h1>",
        f'<p class="meta">{len(records)} accepted item(s) · faults: '
        f"<code>{escape(faults or 'none')}</code></p>",
    ]
    for platform, heading in SECTIONS:
        mine = [r for r in records if r.get("platform") == platform]
        parts.append(f'<section id="{platform}"><h2>{escape(heading)} ({len(mine)})</h2>')
        if not mine:
            parts.append('<p class="empty">nothing yet</p>')
        parts.extend(card(r, status_of(r)) for r in reversed(mine))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
