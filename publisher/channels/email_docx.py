"""The article as a Word document, attached to a hand-off mail for editors who paste from Word.

The post's HTML (what the portal template rendered: paragraphs, headings, lists, bold, italic,
links) becomes Word paragraphs and runs; its pictures follow the title, each with its
alternative text as a caption. Pure: fields and pictures in, bytes out.

python-docx (and lxml under it) is imported when the first document is built: a daemon whose
portals receive no article for a while does not carry it.
"""

from __future__ import annotations

import copy
import io
import re
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from publisher.channels.base import Media
from publisher.text import nfc

if TYPE_CHECKING:
    from docx.document import Document as DocumentObject
    from docx.text.paragraph import Paragraph

FONT = "Times New Roman"
FONT_SIZE_PT = 13
PICTURE_WIDTH_CM = 15
# One document is built at a time: each holds a few MB of parsed XML (python-docx's template)
# while it is built, and the dispatcher's calls run in parallel; building is Python work under
# the GIL anyway, so taking turns costs no time, and the process's heap stays as small as one.
_BUILDING = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "figcaption"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 4, "h6": 4}


def _t(text: str) -> str:
    return _CONTROL.sub("", nfc(text))


@dataclass
class _Run:
    text: str
    bold: bool = False
    italic: bool = False


@dataclass
class _Block:
    tag: str
    runs: list[_Run] = field(default_factory=list)
    bullet: str = ""  # "ul" or "ol" for a list item


class _Blocks(HTMLParser):
    """HTML → blocks of styled runs (tags it does not know keep their text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self.bold = self.italic = 0
        self.lists: list[str] = []
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("ul", "ol"):
            self.lists.append(tag)
        elif tag in _BLOCKS:
            bullet = self.lists[-1] if tag == "li" and self.lists else ""
            self.blocks.append(_Block(tag, bullet=bullet))
        elif tag in ("strong", "b"):
            self.bold += 1
        elif tag in ("em", "i"):
            self.italic += 1
        elif tag == "br":
            self._run("\n")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag in _BLOCKS:
            self.blocks.append(_Block("p"))  # text after the block starts a new paragraph
        elif tag in ("strong", "b"):
            self.bold = max(0, self.bold - 1)
        elif tag in ("em", "i"):
            self.italic = max(0, self.italic - 1)
        elif tag == "a":
            if self.href and self.href.startswith(("http://", "https://")):
                self._run(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if data[:1].isspace() and text:
            text = " " + text
        if data[-1:].isspace() and text:
            text += " "
        if text:
            self._run(text)

    def _run(self, text: str) -> None:
        if not self.blocks:
            self.blocks.append(_Block("p"))
        self.blocks[-1].runs.append(_Run(text, self.bold > 0, self.italic > 0))


def article_blocks(html: str) -> list[_Block]:
    """The non-empty blocks of ``html``, in order."""
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    return [b for b in parser.blocks if "".join(r.text for r in b.runs).strip()]


def article_docx(title: str, html: str, pictures: tuple[Media, ...], source: str = "") -> bytes:
    """A Word document of the article: its title (the article's own first heading, ``<h1>``,
    else ``title``), its pictures (files only, each captioned with its alternative text), then
    its text; ``source`` (who sends it) in the last line."""
    with _BUILDING:
        return _article_docx(title, html, pictures, source)


def _article_docx(title: str, html: str, pictures: tuple[Media, ...], source: str) -> bytes:
    from docx.shared import Pt

    doc = _blank()
    try:
        style = doc.styles["Normal"]
        style.font.name = FONT
        style.font.size = Pt(FONT_SIZE_PT)
        blocks = article_blocks(html)
        if blocks and blocks[0].tag == "h1":  # what the editor pastes: the article's title
            title, blocks = "".join(r.text for r in blocks[0].runs).strip(), blocks[1:]
        doc.add_heading(_t(title), level=0)
        for media in pictures:
            if media.is_file:
                _picture(doc, media)
        for block in blocks:
            _block(doc, block)
        if source:
            doc.add_paragraph().add_run(_t(source)).italic = True
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()
    finally:
        _dispose(doc)


def _dispose(doc: DocumentObject) -> None:
    """Break the reference cycles of a saved document's objects (its package and its parts
    refer to each other, the document and its body too), so the parsed XML behind them (about
    5 MB of lxml's memory, outside Python's accounting) is freed now rather than at some later
    full run of the cyclic garbage collector. A daemon mailing articles otherwise holds dozens
    of finished documents at once, and its heap keeps the space they took (bench item 4b)."""
    package = doc.part.package
    for obj in (doc, *package.iter_parts(), package):
        obj.__dict__.clear()


_BLANK: list[DocumentObject] = []
_BLANK_LOCK = threading.Lock()


def _blank() -> DocumentObject:
    """A new document from python-docx's default template: a copy of one parsed once (parsing
    the template's parts anew costs twice as much as copying them; the file saved is the same)."""
    from docx import Document

    with _BLANK_LOCK:
        if not _BLANK:
            _BLANK.append(Document())
    return copy.deepcopy(_BLANK[0])


def _picture(doc: DocumentObject, media: Media) -> None:
    from docx.shared import Cm

    try:
        doc.add_picture(io.BytesIO(media.data), width=Cm(PICTURE_WIDTH_CM))
    except Exception:
        return
    if media.alt:
        caption = doc.add_paragraph()
        caption.add_run(_t(media.alt)).italic = True


def _block(doc: DocumentObject, block: _Block) -> None:
    text_runs = block.runs
    p: Paragraph
    if block.tag in _HEADINGS:
        p = doc.add_heading(level=_HEADINGS[block.tag])
    elif block.bullet:
        p = doc.add_paragraph(style="List Number" if block.bullet == "ol" else "List Bullet")
    else:
        p = doc.add_paragraph()
    first = True
    for run in text_runs:
        text = _t(run.text)
        if first:
            text = text.lstrip()
            first = not text
        r = p.add_run(text)
        r.bold = run.bold or None
        r.italic = run.italic or None
