"""The report as a Word document in the Vietnamese administrative layout (NĐ 30/2020/NĐ-CP).

A4, Times New Roman, margins 2/2/3/2 cm; header table (issuing body and number line | national
title and place-and-date line), title, body, then "Nơi nhận:" beside the signature block, and
the appendix (Phụ lục) on a page of its own.
Pure: a Report in, bytes out; the caller writes the file.
"""

from __future__ import annotations

import io
import re

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_COLOR_INDEX
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Emu, Pt, RGBColor
from docx.table import Table as DocxTable
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from publisher.documents.report import (
    Block,
    Figure,
    Heading,
    Link,
    Para,
    Progress,
    Report,
    Table,
    appendix,
    body,
    recipients,
)

FONT = "Times New Roman"
BODY_PT, TABLE_PT = 14, 11
TEXT_WIDTH = Cm(16)  # A4 21 cm − left 3 cm − right 2 cm
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML


def _t(text: object) -> str:
    return _CONTROL.sub("", str(text))


def docx_bytes(report: Report, *, progress: Progress | None = None) -> bytes:
    doc = Document()
    _page(doc)
    _header(doc, report)
    blocks, annex = body(report), appendix(report)
    steps = len(blocks) + len(annex) + 1
    _blocks(doc, blocks, progress, 0, steps)
    _signature(doc, report)
    if annex:  # the appendix starts on a page of its own, after the signature
        doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        _blocks(doc, annex, progress, len(blocks), steps)
    if progress:
        progress(steps, steps)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _blocks(
    doc: DocumentObject, blocks: list[Block], progress: Progress | None, before: int, steps: int
) -> None:
    for done, block in enumerate(blocks, 1):
        if isinstance(block, Heading):
            center = block.level == 0  # the appendix's own title
            p = _para(doc, block.text, bold=True, indent=not center, center=center, before=6)
            p.paragraph_format.keep_with_next = True
        elif isinstance(block, Para):
            p = _para(doc, block.text, italic=block.style in ("note", "todo"), indent=True)
            if block.style == "todo":
                p.runs[0].font.highlight_color = WD_COLOR_INDEX.YELLOW
            # A lead-in stays with its table, the closing sentence with the signature.
            following = blocks[done] if done < len(blocks) else None
            p.paragraph_format.keep_with_next = following is None or isinstance(following, Table)
        elif isinstance(block, Figure):
            _figure(doc, block)
        else:
            _grid(doc, block)
        if progress:
            progress(before + done, steps)


def _page(doc: DocumentObject) -> None:
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.top_margin = section.bottom_margin = Cm(2)
    section.left_margin, section.right_margin = Cm(3), Cm(2)
    section.header_distance = section.footer_distance = Cm(1)
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(BODY_PT)
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    fmt = normal.paragraph_format
    fmt.space_before, fmt.space_after, fmt.line_spacing = Pt(0), Pt(0), 1.0
    # Page numbers from page 2 on, centred at the top, as administrative documents have them.
    section.different_first_page_header_footer = True
    p = section.header.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    p._p.append(field)


def _para(
    where: DocumentObject | _Cell,
    text: str = "",
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
    center: bool = False,
    indent: bool = False,
    before: float = 3,
    after: float = 3,
) -> Paragraph:
    p = where.add_paragraph()
    if text:
        run = p.add_run(_t(text))
        run.bold, run.italic = bold or None, italic or None
        if size:
            run.font.size = Pt(size)
    fmt = p.paragraph_format
    fmt.space_before, fmt.space_after = Pt(before), Pt(after)
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    elif indent:
        p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        fmt.first_line_indent = Cm(1)
        fmt.line_spacing = 1.15
    return p


def _rule(cell: _Cell | DocumentObject, width: float, total: float) -> None:
    """A short centred line (the rule under the issuer, the motto and the title)."""
    p = _para(cell, before=4, after=0)
    p.paragraph_format.left_indent = p.paragraph_format.right_indent = Cm((total - width) / 2)
    border, top = OxmlElement("w:pBdr"), OxmlElement("w:top")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "0"), ("w:color", "000000")):
        top.set(qn(key), value)
    border.append(top)
    p._p.get_or_add_pPr().insert_element_before(border, *_AFTER_PBDR)
    mark = OxmlElement("w:rPr")  # a tiny paragraph mark, so the line sits close under the text
    size = OxmlElement("w:sz")
    size.set(qn("w:val"), "2")
    mark.append(size)
    p._p.get_or_add_pPr().append(mark)


# The elements that follow w:pBdr inside w:pPr (ECMA-376 order): it must go before them.
_AFTER_PBDR = (
    "w:shd",
    "w:tabs",
    "w:suppressAutoHyphens",
    "w:kinsoku",
    "w:wordWrap",
    "w:overflowPunct",
    "w:topLinePunct",
    "w:autoSpaceDE",
    "w:autoSpaceDN",
    "w:bidi",
    "w:adjustRightInd",
    "w:snapToGrid",
    "w:spacing",
    "w:ind",
    "w:contextualSpacing",
    "w:mirrorIndents",
    "w:suppressOverlap",
    "w:jc",
    "w:textDirection",
    "w:textAlignment",
    "w:textboxTightWrap",
    "w:outlineLvl",
    "w:divId",
    "w:cnfStyle",
    "w:rPr",
    "w:sectPr",
    "w:pPrChange",
)


def _layout_table(doc: DocumentObject, rows: int, widths: tuple[float, float]) -> DocxTable:
    """A borderless two-column table that places blocks side by side."""
    table: DocxTable = doc.add_table(rows=rows, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for col, w in zip(table.columns, widths, strict=True):
        col.width = Cm(w)
        for cell in col.cells:
            cell.width = Cm(w)
    for cell in table._cells:
        cell._tc.remove(cell.paragraphs[0]._p)  # each cell starts empty; _para adds
    return table


def _header(doc: DocumentObject, r: Report) -> None:
    lay = r.layout
    table = _layout_table(doc, 2, (6.2, 10.3))
    left, right = table.cell(0, 0), table.cell(0, 1)
    _para(left, lay.authority, size=13, center=True, before=0, after=0)
    _para(left, lay.issuer, bold=True, size=13, center=True, before=0, after=0)
    _rule(left, 2.4, 6.2)
    _para(right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True, size=13, center=True, before=0)
    _para(right, "Độc lập - Tự do - Hạnh phúc", bold=True, center=True, before=0, after=0)
    _rule(right, 6.0, 10.3)
    _para(table.cell(1, 0), r.number_line, size=13, center=True, before=6)
    _para(table.cell(1, 1), r.date_line, italic=True, center=True, before=6)
    _para(doc, "BÁO CÁO", bold=True, center=True, before=18, after=0)
    _para(doc, r.subject, bold=True, center=True, before=0, after=0)
    _para(doc, r.period, italic=True, center=True, before=0, after=0)
    _rule(doc, 4.0, 16.0)
    _para(doc, before=6, after=0)


# A table of at most this many rows stays on one page (its rows kept together); a longer one
# (the appendix's list) runs over pages, its header row repeated on each.
KEEP_ROWS = 12
FIGURE_HEIGHT = Cm(11)  # a chart taller than this at the text width is drawn narrower
LEAD_IN = 200  # characters: a paragraph this short before a chart stays on the chart's page
PAD = Cm(0.3)  # a cell's two side margins (0.1 cm each) and room for the border
# Times New Roman's advance widths in em (bold about 8% wider): enough to size a column so that
# no word of its header or cells is broken between lines.
_EM = {"digit": 0.5, "upper": 0.72, "lower": 0.5, "narrow": 0.28, "other": 0.55}
CELL_WORD = 14  # characters of a word that must fit on one line (longer ones, links, wrap)


def _text_width(word: str, size: float, bold: bool) -> int:
    """How wide ``word`` is set in Times New Roman at ``size`` pt, in EMU (an estimate)."""
    ems = 0.0
    for c in word:
        if c.isdigit():
            ems += _EM["digit"]
        elif c in ".,:;/|!'()[]-–":
            ems += _EM["narrow"]
        elif c.isupper():
            ems += _EM["upper"]
        elif c.isalpha():
            ems += _EM["lower"]
        else:
            ems += _EM["other"]
    return int(Pt(ems * size * (1.08 if bold else 1.0)))


def column_widths(block: Table, total: int = TEXT_WIDTH) -> list[Emu]:
    """The columns' widths in EMU, summing to ``total``: the table's relative widths, each
    column widened to fit its longest word (the header's, and the cells' up to CELL_WORD
    characters; a column of numbers to its widest number), the room taken from the columns that
    have more than they need, in proportion."""
    scale = total / sum(block.widths)
    want = [w * scale for w in block.widths]
    need: list[float] = []
    for i, header in enumerate(block.headers):
        words = [(w, True) for w in str(header).split()]
        for n, row in enumerate(block.rows, 1):
            value = row[i]
            text = value.text if isinstance(value, Link) else str(value)
            bold = block.total and n == len(block.rows)
            words += [(w[:CELL_WORD], bold) for w in text.split()]
        widest = max((_text_width(w, TABLE_PT, b) for w, b in words), default=0)
        need.append(widest + PAD)
    if sum(need) >= total:  # cannot fit every word: share the width as the words need
        sized = [n * total / sum(need) for n in need]
    else:
        wide = [max(w, n) for w, n in zip(want, need, strict=True)]
        over = sum(wide) - total
        slack = [w - n for w, n in zip(wide, need, strict=True)]
        spare = sum(slack)
        sized = [w - (over * s / spare if spare else 0) for w, s in zip(wide, slack, strict=True)]
    out = [int(w) for w in sized]
    out[-1] += total - sum(out)  # rounding: the columns fill the text width exactly
    return [Emu(w) for w in out]


def _grid(doc: DocumentObject, block: Table) -> None:
    table = doc.add_table(rows=1 + len(block.rows), cols=len(block.headers))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False  # w:tblLayout fixed: the widths below hold in Word and LibreOffice
    margins = OxmlElement("w:tblCellMar")  # narrow cell padding: more room for the columns
    for side in ("w:left", "w:right"):
        m = OxmlElement(side)
        m.set(qn("w:w"), "57")  # twips: 0.1 cm
        m.set(qn("w:type"), "dxa")
        margins.append(m)
    table._tbl.tblPr.insert_element_before(margins, "w:tblLook", "w:tblCaption", "w:tblDescription")
    widths = column_widths(block)
    for col, w in zip(table.columns, widths, strict=True):
        col.width = w
    last = len(block.rows)
    together = last <= KEEP_ROWS
    for n, (row, values) in enumerate(zip(table.rows, (block.headers, *block.rows), strict=True)):
        # The header row repeats on every page; no row is split across two pages.
        row._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader" if n == 0 else "w:cantSplit"))
        cells = [_Cell(tc, table) for tc in row._tr.tc_lst]  # row.cells is quadratic
        bold = n == 0 or (block.total and n == last)
        for i, (cell, value, w) in enumerate(zip(cells, values, widths, strict=True)):
            cell.width = w
            if isinstance(value, Link) and value.url:
                p = _cell(cell, "", size=TABLE_PT)
                _hyperlink(p, value.text, value.url, TABLE_PT)
            else:
                text = value.text if isinstance(value, Link) else str(value)
                center = n == 0 or i not in block.left
                p = _cell(cell, text, bold=bold, center=center, size=TABLE_PT)
            # a short table is not cut by a page: each row keeps with the next
            p.paragraph_format.keep_with_next = together and n < last
    _para(doc, before=0, after=3)


def figure_size(png: bytes, width: int = TEXT_WIDTH, height: int = FIGURE_HEIGHT) -> Emu:
    """The width to draw a chart at: the text width, or less if it would be taller than
    ``height`` (the picture's proportions kept)."""
    from docx.image.image import Image as DocxImage

    image = DocxImage.from_blob(png)
    px_w, px_h = image.px_width, image.px_height
    if px_w <= 0 or px_h <= 0:
        return Emu(width)
    return Emu(int(min(width, height * px_w / px_h)))


def _figure(doc: DocumentObject, block: Figure) -> None:
    """A chart at the text width (narrower if it would be too tall), centred, with its caption
    ("Biểu đồ 1. …") under it on the same page; the paragraph leading to it keeps with it."""
    before = doc.element.body[-2] if len(doc.element.body) > 1 else None  # the last before sectPr
    if before is not None and before.tag == qn("w:p"):
        lead = Paragraph(before, doc._body)
        # a short sentence of body text leading to the chart (not another chart's caption, nor a
        # long passage: moved with the chart, it would leave half a page empty)
        if lead.alignment == WD_ALIGN_PARAGRAPH.JUSTIFY and len(lead.text) <= LEAD_IN:
            lead.paragraph_format.keep_with_next = True
    p = _para(doc, center=True, before=6, after=0)
    p.paragraph_format.keep_with_next = True
    p.paragraph_format.keep_together = True
    p.paragraph_format.first_line_indent = Cm(0)
    p.add_run().add_picture(io.BytesIO(block.png), width=figure_size(block.png))
    shape = p._p.xpath(".//wp:docPr")
    if shape:
        shape[0].set("descr", _t(block.alt))
        shape[0].set("title", _t(block.caption))
    label, dot, rest = block.caption.partition(". ")
    caption = _para(doc, center=True, size=12, before=3, after=9)
    caption.paragraph_format.keep_together = True
    if dot and label.startswith("Biểu đồ"):  # "Biểu đồ 1." in bold, the title in italics
        number = caption.add_run(_t(label + "."))
        number.bold, number.font.size = True, Pt(12)
        title = caption.add_run(_t(" " + rest))
        title.italic, title.font.size = True, Pt(12)
    else:
        run = caption.add_run(_t(block.caption))
        run.italic, run.font.size = True, Pt(12)


def _cell(
    cell: _Cell, text: str, *, bold: bool = False, center: bool = False, size: float
) -> Paragraph:
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
    p: Paragraph = cell.paragraphs[0]
    p.paragraph_format.space_before = p.paragraph_format.space_after = Pt(1)
    if center:
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if text:
        run = p.add_run(_t(text))
        run.bold = bold or None
        run.font.size = Pt(size)
    return p


def _hyperlink(p: Paragraph, text: str, url: str, size: float) -> None:
    """A clickable external link (python-docx has no writer for them)."""
    rid = p.part.relate_to(_t(url), RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rid)
    run = p.add_run(_t(text))
    run.font.size = Pt(size)
    run.font.underline = True
    run.font.color.rgb = RGBColor(0x05, 0x63, 0xC1)
    link.append(run._r)
    p._p.append(link)


def _signature(doc: DocumentObject, r: Report) -> None:
    table = _layout_table(doc, 1, (7.5, 9.0))
    row = table.rows[0]._tr.get_or_add_trPr()
    row.append(OxmlElement("w:cantSplit"))  # "Nơi nhận" and the signer stay on one page
    left, right = table.cell(0, 0), table.cell(0, 1)
    _para(left, "Nơi nhận:", bold=True, italic=True, size=12, before=6, after=0)
    for line in recipients(r):
        _para(left, line, size=11, before=0, after=0)
    for i, line in enumerate(r.layout.signature):
        _para(right, line, bold=True, center=True, before=6 if i == 0 else 0, after=0)
    for _ in range(4):
        _para(right, before=0, after=0)  # room for the signature and the seal
    _para(right, r.layout.signer, bold=True, center=True, before=6, after=0)
