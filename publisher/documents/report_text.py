"""The campaign report as JSON (stable keys, the counts of ``status --json``, reach and the
office's entries), Markdown (charts as their captions and descriptions) and standalone HTML
(charts embedded, the appendix after the signature), from a built ``Report`` and its body;
``render`` picks the writer of a format (Word from ``report_docx``). Pure.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import asdict
from datetime import datetime
from typing import Any

from publisher.documents.report import (
    FORMATS,
    Block,
    Cell,
    Figure,
    Heading,
    Line,
    Link,
    Para,
    Problem,
    Progress,
    Published,
    Report,
    appendix,
    body,
    recipients,
)
from publisher.documents.report_reach import Reach, by_key


def _plain(obj: Published | Problem) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(obj).items()}


def to_json(r: Report) -> str:
    """Stable keys; ``counts`` and ``channels.*.counts`` match ``publisher status --json``."""

    def line(x: Line, reach: Reach | None = None) -> dict[str, Any]:
        out = {"counts": dict(x.counts), "totals": x.totals.as_dict()}
        return out if reach is None else {**out, "reach": asdict(reach)}

    channels, items = by_key(r.published, "channel"), by_key(r.published, "message")

    camp = r.campaign
    data = {
        "report": "final" if r.final else "progress",
        "title": r.title,
        "as_of": r.as_of.isoformat(),
        "date": r.dated.isoformat(),
        "figures": r.cutoff,
        "campaign": {
            "name": camp.name,
            "organisation": camp.organisation,
            "start": camp.start.isoformat(),
            "end": camp.end.isoformat(),
            "timezone": camp.timezone.key,
        },
        "counts": dict(r.counts),
        "totals": r.totals.as_dict(),
        "reach": asdict(Reach.of(r.published)),
        "channels": {
            c.key: {"name": c.label, **line(c, channels.get(c.key, Reach()))} for c in r.channels
        },
        "messages": {
            m.key: {
                "kind": m.kind,
                "title": m.label,
                "removed": m.removed,
                **line(m, items.get(m.key, Reach())),
            }
            for m in r.messages
        },
        "daily": {cid: [[d.isoformat(), v] for d, v in points] for cid, points in r.daily.items()},
        "entries": dict(r.entries),
        "published": [_plain(p) for p in r.published],
        "problems": [_plain(p) for p in r.problems],
        "document": {
            "authority": r.layout.authority,
            "issuer": r.layout.issuer,
            "number": r.number_line,
            "date": r.date_line,
            "recipients": recipients(r),
            "signature": [*r.layout.signature, r.layout.signer],
        },
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!])")


def _md(cell: Cell) -> str:
    """One line of Markdown text, every markup character escaped; links only to http(s)."""
    if isinstance(cell, Link):
        url = cell.url
        return f"<{url}>" if url and not re.search(r"[\s<>]", url) else _md(cell.text)
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(cell).split()))


def _md_body(blocks: list[Block], *, images: bool) -> str:
    """Markdown of ``blocks``; a chart as an embedded PNG (``images``, for the HTML page) or
    as its caption and its description in words (a Markdown file stays text)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * (b.level + 1)} {_md(b.text)}")
        elif isinstance(b, Para):
            text = _md(b.text)
            out.append({"note": f"*{text}*", "todo": f"> **{text}**"}.get(b.style, text))
        elif isinstance(b, Figure) and images:
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f"![{_md(b.alt)}](data:image/png;base64,{data})\n\n*{_md(b.caption)}*")
        elif isinstance(b, Figure):
            out.append(f"*{_md(b.caption)}:* {_md(b.alt)}")
        else:
            align = (":--" if i in b.left else ":-:" for i in range(len(b.headers)))
            lines = ["| " + " | ".join(_md(h) for h in b.headers) + " |", f"|{'|'.join(align)}|"]
            for n, row in enumerate(b.rows, 1):
                strong = b.total and n == len(b.rows)
                cells = (f"**{_md(c)}**" if strong and c != "" else _md(c) for c in row)
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
    return "\n\n".join(out)


def to_markdown(r: Report) -> str:
    lay = r.layout
    out = [
        f"{_md(lay.authority)}  \n**{_md(lay.issuer)}**  \n{_md(r.number_line)}",
        "**CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM**  \n**Độc lập - Tự do - Hạnh phúc**",
        f"*{_md(r.date_line)}*",
        f"# BÁO CÁO\n\n**{_md(r.subject)}**\n\n*{_md(r.period)}*",
        _md_body(body(r), images=False),
        "**Nơi nhận:**\n\n" + "\n".join(_md(x) for x in recipients(r)),
        "  \n".join(f"**{_md(x)}**" for x in lay.signature),
        f"**{_md(lay.signer)}**",
        "---",
        _md_body(appendix(r), images=False),
    ]
    return "\n\n".join(out) + "\n"


_CSS = """
@page { size: A4; margin: 2cm 2cm 2cm 3cm; }
body { font: 14pt/1.35 "Times New Roman", Times, serif; max-width: 16cm; margin: 2cm auto; }
table { border-collapse: collapse; width: 100%; }
.layout td { vertical-align: top; text-align: center; padding: 0 4px; font-size: 13pt; }
.rule { width: 40%; margin: 4px auto 8px; border: 0; border-top: 1px solid #000; }
main table { font-size: 12pt; margin: 6px 0 12px; }
main th, main td { border: 1px solid #000; padding: 3px 4px; } main th { font-size: 11pt; }
main td a { overflow-wrap: anywhere; }
h1, h2, h3 { font-size: 14pt; } h1 { text-align: center; margin: 18px 0 0; }
main p { text-align: justify; text-indent: 1cm; margin: 6px 0; }
blockquote { margin: 6px 0; background: #ff0; font-style: italic; }
.c { text-align: center; margin: 0; }
.sign td:first-child { text-align: left; font-size: 11pt; width: 45%; }
main img { display: block; max-width: 100%; margin: 6px auto 0; }
main p em:only-child { display: block; text-align: center; }
.annex { break-before: page; page-break-before: always; margin-top: 2cm; }
"""


def to_html(r: Report) -> str:
    """A standalone page (no scripts, nothing fetched); every value is escaped."""
    from markdown_it import MarkdownIt

    def h(text: object) -> str:
        return html.escape(str(text), quote=True)

    lay = r.layout
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    main = md.render(_md_body(body(r), images=True))
    annex = md.render(_md_body(appendix(r), images=True))
    sign = "<br>".join(h(x) for x in lay.signature)
    return f"""<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<title>{h(r.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<table class="layout"><tr>
<td style="width:36%">{h(lay.authority)}<br><b>{h(lay.issuer)}</b><hr class="rule"></td>
<td><b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM<br>Độc lập - Tự do - Hạnh phúc</b>
<hr class="rule" style="width:60%"></td></tr>
<tr><td>{h(r.number_line)}</td><td><i>{h(r.date_line)}</i></td></tr></table>
<h1>BÁO CÁO<br>{h(r.subject)}</h1>
<p class="c"><i>{h(r.period)}</i></p><hr class="rule" style="width:25%">
<main>
{main}</main>
<table class="layout sign"><tr>
<td><b><i>Nơi nhận:</i></b><br>{"<br>".join(h(x) for x in recipients(r))}</td>
<td><b>{sign}</b><br><br><br><br><br><b>{h(lay.signer)}</b></td></tr></table>
<main class="annex">
{annex}</main>
</body>
</html>
"""


def render(r: Report, fmt: str, *, progress: Progress | None = None) -> bytes:
    """The report as ``fmt`` (one of FORMATS): the bytes to write to the output file."""
    if fmt == "docx":  # python-docx is imported only for a Word report
        from publisher.documents.report_docx import docx_bytes

        return docx_bytes(r, progress=progress)
    text = {"html": to_html, "md": to_markdown, "json": to_json}.get(fmt)
    if text is None:
        raise ValueError(f"unknown report format {fmt!r}: one of {', '.join(FORMATS)}")
    return text(r).encode("utf-8")
