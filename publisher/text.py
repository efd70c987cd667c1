"""Vietnamese text helpers: NFC normalisation, lengths, accent-free slugs and hashtags.

Pure: no clock, no network, no database.
"""

from __future__ import annotations

import re
import unicodedata

_DSTROKE = str.maketrans({"đ": "d", "Đ": "D"})
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC, the form every length and hash is computed on."""
    return unicodedata.normalize("NFC", text)


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
