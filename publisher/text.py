"""Vietnamese text helpers: NFC normalisation, lengths, accent-free slugs and hashtags, and the
removal of control characters and bidi overrides from text that comes in or goes to a terminal.

Pure: no clock, no network, no database.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TypeVar, cast

T = TypeVar("T")
_DSTROKE = str.maketrans({"đ": "d", "Đ": "D"})
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
# C0 controls but tab and newline, DEL, C1 controls; the bidi embeddings, overrides and isolates
# (U+202A–U+202E, U+2066–U+2069) that make a title read backwards or hide what follows.
_UNSAFE = dict.fromkeys(
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC, the form every length and hash is computed on."""
    return unicodedata.normalize("NFC", text)


def clean(text: str) -> str:
    """``text`` without C0/C1 control characters (newline and tab are kept; the CR of a CRLF,
    like any CR, goes) and without bidi embeddings, overrides and isolates: what comes in
    (content files, CSV cells, command-line text) and what a platform says, before it is stored
    or printed, so nothing can move a terminal's cursor or reverse a title."""
    return text.translate(_UNSAFE)


def clean_all(value: T) -> T:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string ``clean``ed, for
    printing stored data: rows written before cleaning existed may still hold control codes."""
    out: Any = value
    if isinstance(value, str):
        out = clean(value)
    elif isinstance(value, dict):
        out = {clean_all(k): clean_all(v) for k, v in value.items()}
    elif isinstance(value, list):
        out = [clean_all(v) for v in value]
    elif isinstance(value, tuple):
        out = tuple(clean_all(v) for v in value)
    return cast(T, out)


def length(text: str) -> int:
    """Characters as a platform counts them: code points of the NFC form."""
    return len(nfc(text))


def strip_accents(text: str) -> str:
    """Remove Vietnamese diacritics (``đ`` → ``d`` included), keeping letter case."""
    decomposed = unicodedata.normalize("NFD", text.translate(_DSTROKE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def slugify(text: str, max_length: int = 80) -> str:
    """``"Luật Trẻ em 2016"`` → ``"luat-tre-em-2016"``: lowercase ASCII words joined by ``-``."""
    words = _NON_ALNUM.sub(" ", strip_accents(text)).lower().split()
    slug = "-".join(words)
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug


def hashtag(text: str) -> str:
    """``"Tháng hành động vì trẻ em"`` → ``"#ThangHanhDongViTreEm"``."""
    words = _NON_ALNUM.sub(" ", strip_accents(text)).split()
    return "#" + "".join(w[:1].upper() + w[1:] for w in words)


def first_words(text: str, count: int = 12) -> str:
    """The first ``count`` words of ``text`` on one line, with an ellipsis when cut."""
    words = text.split()
    head = " ".join(words[:count])
    return head + (" …" if len(words) > count else "")
