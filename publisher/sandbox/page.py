"""The sandbox's HTML page: what a follower would see, one card per accepted item, newest first,
with its pictures (a cover, photos, a featured image) and their alternative text; and the mail
its SMTP server took, as a recipient would read it (sender, recipients, subject, the text, the
attachments listed by name and size), with the desk's replies (kind ``desk-reply``: where it
published the article).

Pure: records in, one HTML string out. Every value is escaped; no script, no external resource:
a picture the sandbox serves is shown from the sandbox itself, any other address only as a link.
Uploads (records of kind ``media``) are counted, not shown: followers see pictures in posts.
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
    ("mail", "Mail"),
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
figure{margin:.5rem 0}figure img{max-width:100%;max-height:24rem;border-radius:4px}
figcaption{color:#556;font-size:.85rem}
.attachments{margin:.4rem 0 0;padding-left:1.2rem;color:#445;font-size:.85rem}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'"
Local = Callable[[str], str | None]  # a picture's URL → the sandbox's path for it, if it has it


def pictures(media: Sequence[dict[str, Any]], local: Local) -> str:
    """A record's pictures: each one the sandbox holds as an image with its alternative text, any
    other as a link (never loaded: the page fetches nothing from elsewhere)."""
    out = []
    for ref in media:
        url, alt, role = (str(ref.get(k) or "") for k in ("url", "alt", "role"))
        path = local(url) if url else None
        label = f"{role}: " if role else ""
        if path is not None:
            caption = f"<figcaption>{escape(label)}{escape(alt or '(no alt text)')}</figcaption>"
            img = f'<img src="{escape(path)}" alt="{escape(alt)}">'
            out.append(f'<figure class="picture">{img}{caption}</figure>')
        elif url.lower().startswith(("https://", "http://")):  # never javascript: or data:
            link = f'<a href="{escape(url)}" rel="noopener noreferrer nofollow">{escape(url)}</a>'
            text = f" — {escape(alt)}" if alt else ""
            out.append(f'<div class="meta picture">{escape(label)}{link}{text}</div>')
    return "".join(out)


def mail_parts(fields: dict[str, Any]) -> tuple[str, str]:
    """A mail's lines above its text (sender, recipients) and below it (its attachments)."""
    recipients = ", ".join(str(r) for r in fields.get("recipients") or [])
    head = f'<div class="meta">From: {escape(str(fields.get("from") or ""))}</div>'
    head += f'<div class="meta">To: {escape(recipients)}</div>'
    url = str(fields.get("url") or "")
    if url.startswith(("http://", "https://")):  # the desk's publication
        head += f'<div class="meta">published at <a href="{escape(url)}">{escape(url)}</a></div>'
    items = []
    for a in fields.get("attachments") or []:
        name = str(a.get("name") or "(no name)")
        what = f"{a.get('content_type') or '?'}, {a.get('size', 0)} bytes"
        items.append(f"<li>{escape(name)} ({escape(what)})</li>")
    tail = f'<ul class="attachments">{"".join(items)}</ul>' if items else ""
    return head, tail


def card(record: dict[str, Any], status: str, local: Local = lambda url: None) -> str:
    anchor = f"{record['platform']}-{record['remote_id']}"
    badges = "".join(
        f'<span class="badge">{escape(b)}</span>' for b in (record.get("kind"), status) if b
    )
    title = record.get("title") or ""
    text = record.get("text") or ""
    fields = record.get("fields") or {}
    extra = tail = ""
    if record["platform"] == "mail":
        extra, tail = mail_parts(fields)
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
        + pictures(record.get("media") or [], local)
        + f'<div class="text">{escape(str(text))}</div>{tail}</article>'
    )


def render_page(
    records: Sequence[dict[str, Any]],
    status_of: Callable[[dict[str, Any]], str] = lambda r: "",
    *,
    faults: str = "",
    local: Local = lambda url: None,
) -> str:
    """The whole page; ``status_of`` names what became of an item since (deleted, trash, …);
    ``local`` says where the sandbox serves a picture's URL (None: it does not)."""
    parts = [
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>publisher sandbox</title><style>{STYLE}</style></head><body>",
        "<h1>publisher sandbox: what followers see</h1>",
        f'<p class="meta">{len(records)} accepted item(s) · faults: '
        f"<code>{escape(faults or 'none')}</code></p>",
    ]
    for platform, heading in SECTIONS:
        here = [r for r in records if r.get("platform") == platform]
        mine = [r for r in here if r.get("kind") != "media"]
        parts.append(f'<section id="{platform}"><h2>{escape(heading)} ({len(mine)})</h2>')
        if len(here) > len(mine):
            parts.append(f'<p class="meta">{len(here) - len(mine)} picture(s) uploaded</p>')
        if not mine:
            parts.append('<p class="empty">nothing yet</p>')
        parts.extend(card(r, status_of(r), local) for r in reversed(mine))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
