"""The hand-off mail's Word document: what it holds, and that building one leaves nothing for
the cyclic garbage collector (python-docx's objects refer to each other; the parsed XML behind
them is several MB that Python's collector does not see)."""

from __future__ import annotations

import gc
import io
from pathlib import Path

from docx import Document

from publisher.channels.base import Media
from publisher.channels.email_docx import article_docx

COVER = Path(__file__).resolve().parents[1] / "messages" / "media"
HTML = "<h1>Tháng hành động</h1><p>Đoạn <b>một</b>.</p><ul><li>ý</li></ul>"


def _cover() -> Media:
    data = (COVER / "thang-hanh-dong-vi-tre-em-2024.jpg").read_bytes()
    return Media("cover", "Ảnh bìa", "image/jpeg", "bia.jpg", "x", data)


def test_the_document_holds_the_title_the_picture_and_the_text() -> None:
    doc = Document(io.BytesIO(article_docx("", HTML, (_cover(),), "Sở Tư pháp")))
    texts = [p.text for p in doc.paragraphs]
    assert texts[0] == "Tháng hành động"
    assert "Ảnh bìa" in texts and "Đoạn một." in texts and "ý" in texts
    assert texts[-1] == "Sở Tư pháp"
    assert len(doc.inline_shapes) == 1
    normal = doc.styles["Normal"].font
    assert normal.name == "Times New Roman" and normal.size is not None and normal.size.pt == 13


def test_a_built_document_leaves_no_cycle_behind() -> None:
    article_docx("t", HTML, (_cover(),))  # python-docx imported, its classes made
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        article_docx("t", HTML, (_cover(),))
        gc.collect()
        left = sorted({type(o).__name__ for o in gc.garbage if _parsed_xml(o)})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []  # its parsed XML freed as soon as it was built


def _parsed_xml(obj: object) -> bool:
    """An element of a document's parsed XML (python-docx's CT_… classes over lxml's)."""
    return (getattr(type(obj), "__module__", "") or "").startswith("docx.oxml")
