"""Vietnamese text at the door: text typed in a legacy 8-bit encoding, found and converted.

Pure: no I/O, no clock. Old documents were typed with 8-bit font encodings; pasted or read as
Latin-1/cp1252 they show up as wrong Latin letters. Two encodings cover nearly all of them:

* **TCVN3** (ABC, TCVN 5712:1993 VN3, fonts ``.VnTime``/``.VnTimeH``): one byte per letter,
  ``Việt Nam`` → ``ViÖt Nam``. VN3 has lowercase toned letters and seven capitals (Ă Â Ê Ô Ơ Ư
  Đ); capital toned letters were typed with the lowercase bytes in an all-capitals font.
  Table: glibc's ``TCVN5712-1`` charmap (``localedata/charmaps/TCVN5712-1``, the VN1 superset;
  also XFree86 ``lcUniConv/tcvn.h``) for bytes 0xA0–0xFF, with VN3's repertoire as Wikipedia's
  "VSCII" article describes it (67 lowercase, 7 capitals, no-break space).
* **VNI** (VNI-Windows, fonts ``VNI-Times``): a base letter followed by a diacritic byte,
  ``Việt Nam`` → ``Vieät Nam``. Table: ``vni.h`` of xvnkb (Dao Hai Lam, github.com/lamdao/xvnkb),
  cross-checked with ``src/charsets.ts`` of the npm package vietnamese-conversion
  (github.com/duydev/vietnamese-conversion).

Detection reads each word of a line through a table: a legacy word is one that is no Vietnamese
syllable as written and a well-spelled one once converted ("ViÖt" → "Việt"); a foreign word is
neither ("été", "Größe"). A line is legacy when it has two different legacy words and at least
twice as many legacy words as foreign ones; UTF-8 misread as cp1252 is left alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from publisher.errors import PublisherError
from publisher.text import nfc

TCVN3 = "TCVN3"
VNI = "VNI"
ENCODINGS = (TCVN3, VNI)
LABELS = {TCVN3: "TCVN3 (ABC)", VNI: "VNI (VNI-Windows)"}

# TCVN 5712 bytes 0xA0-0xFF as the Latin-1 characters they show up as, in byte order, decoded
# as glibc's TCVN5712-1 does. "_" marks 0xB0-0xB4, combining tone marks in VN1 that also stand
# for ° ± ² ³ ´ in ordinary text: they are left alone. The capital toned letters (0xAF, 0xBA,
# 0xBF, 0xC0-0xC5, 0xCD, 0xD9-0xDB, 0xE0, 0xF0, 0xFF) are VN1 only; VN3 text never has them.
_TCVN3_ROWS = (
    "\u00a0ĂÂÊÔƠƯĐăâêôơưđẰ",  # 0xA0
    "_____àảãáạẲằẳẵắẴ",  # 0xB0
    "ẮẦẨẪẤỀặầẩẫấậèỂẻẽ",  # 0xC0
    "éẹềểễếệìỉỄẾỒĩíịò",  # 0xD0
    "Ổỏõóọồổỗốộờởỡớợù",  # 0xE0
    "ỖủũúụừửữứựỳỷỹýỵỐ",  # 0xF0
)
_TCVN3_DECODE = {
    chr(0xA0 + i): ch
    for i, ch in enumerate("".join(_TCVN3_ROWS))
    if ch != "_" and i != 0  # the no-break space stays a no-break space
}
_TCVN3_ENCODE = {ch: byte for byte, ch in _TCVN3_DECODE.items() if ch.islower() or ch in "ĂÂÊÔƠƯĐ"}
# Capital toned letters are typed with the lowercase byte (and drawn by .VnTimeH).
_TCVN3_ENCODE.update(
    {
        ch.upper(): byte
        for ch, byte in list(_TCVN3_ENCODE.items())
        if ch.upper() not in _TCVN3_ENCODE
    }
)
_TCVN3_LOWER_SIGNS = frozenset("¨©ª«¬\u00ad®")  # ă â ê ô ơ ư đ: lowercase for sure
_TCVN3_UPPER_SIGNS = frozenset("¡¢£¤¥¦§")  # Ă Â Ê Ô Ơ Ư Đ

# VNI spellings of the lowercase letters: no tone, sắc, huyền, hỏi, ngã, nặng.
# Capitals are the same spellings in capitals (``Ấ`` = ``AÁ``).
_VNI_ROWS = {
    "aáàảãạ": ("a", "aù", "aø", "aû", "aõ", "aï"),
    "âấầẩẫậ": ("aâ", "aá", "aà", "aå", "aã", "aä"),
    "ăắằẳẵặ": ("aê", "aé", "aè", "aú", "aü", "aë"),
    "eéèẻẽẹ": ("e", "eù", "eø", "eû", "eõ", "eï"),
    "êếềểễệ": ("eâ", "eá", "eà", "eå", "eã", "eä"),
    "iíìỉĩị": ("i", "í", "ì", "æ", "ó", "ò"),
    "oóòỏõọ": ("o", "où", "oø", "oû", "oõ", "oï"),
    "ôốồổỗộ": ("oâ", "oá", "oà", "oå", "oã", "oä"),
    "ơớờởỡợ": ("ô", "ôù", "ôø", "ôû", "ôõ", "ôï"),
    "uúùủũụ": ("u", "uù", "uø", "uû", "uõ", "uï"),
    "ưứừửữự": ("ö", "öù", "öø", "öû", "öõ", "öï"),
    "yýỳỷỹỵ": ("y", "yù", "yø", "yû", "yõ", "î"),
    "đ": ("ñ",),
}
_VNI_ENCODE = {
    case(ch): case(spelling)
    for row, spellings in _VNI_ROWS.items()
    for ch, spelling in zip(row, spellings, strict=True)
    for case in (str.lower, str.upper)
    if not spelling.isascii()
}
_VNI_DECODE = {spelling: ch for ch, spelling in _VNI_ENCODE.items()}
_VNI_SEQUENCE = re.compile("|".join(sorted(_VNI_DECODE, key=len, reverse=True)))

# A word: letters, combining marks, and the TCVN3 bytes that show up as symbols (¸ µ · ® …).
_SYMBOLS = "".join(sorted({ch for ch in _TCVN3_DECODE if not ch.isalpha()}))
_WORD = re.compile(rf"(?:[^\W\d_]|[\u0300-\u036f]|[{re.escape(_SYMBOLS)}])+")

# A Vietnamese syllable without its tone: onset, then a rhyme (vowels and a final consonant).
_ONSET = "ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnprstvx]"
_OPEN = (  # no final consonant after these
    "ai|ao|au|ay|âu|ây|eo|êu|ia|iu|oi|ôi|ơi|ui|ưi|ưu|ua|ưa|ya|uơ"
    "|iêu|yêu|uôi|ươi|ươu|oai|oay|oao|oeo|uây|uya|uyu"
)
_CLOSED = "ă|â|iê|yê|uô|ươ|oă|uâ|uyê"  # only before a final consonant
_EITHER = "a|e|ê|i|o|ô|ơ|u|ư|y|oa|oe|uê|uy"
_FINAL = "ng|[cmnpt]"
_PALATAL = "a|ê|i|y|oa|uê|uy"  # the only vowels before a final ch or nh
_SYLLABLE = re.compile(
    rf"(?P<onset>{_ONSET})?(?:{_OPEN}|(?:{_CLOSED})(?:{_FINAL})|oo(?:ng|c)"
    rf"|(?:{_EITHER})(?:{_FINAL})?|(?:{_PALATAL})(?:ch|nh))"
)
_MEDIAL_AFTER_C = re.compile("[ck]u[yâêơ]")  # /kw/ is spelled qu: "quy", never "cuy"
_VOWELS = frozenset("aăâeêioôơuưy")
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng
_STOP_TONES = ("\u0301", "\u0323")  # the only tones a syllable ending in c, ch, p, t can take


@dataclass(frozen=True)
class LegacyHit:
    """Where legacy-encoded text starts: 1-based line and column, and what it looks like."""

    encoding: str  # TCVN3 or VNI
    line: int
    column: int
    excerpt: str

    @property
    def label(self) -> str:
        return LABELS[self.encoding]


class LegacyEncodingError(PublisherError):
    """A text contains Vietnamese typed in TCVN3 or VNI rather than Unicode."""

    def __init__(self, path: str, hit: LegacyHit) -> None:
        self.path = path
        self.encoding = hit.encoding
        self.lineno = hit.line  # not ``line``: PublisherError.line() renders the message
        self.column = hit.column
        self.excerpt = hit.excerpt
        problem = f"line {hit.line} looks like {hit.label} text pasted from an old document"
        super().__init__(
            path,
            f'{problem} ("{hit.excerpt}")',
            "save it as Unicode, or run with --convert-legacy",
        )


@lru_cache(maxsize=8192)  # the same words come back on every line
def is_syllable(word: str, *, strict: bool = True) -> bool:
    """Whether ``word`` (any case, NFC or NFD) spells one Vietnamese syllable.

    ``strict`` also wants the tone where the spelling rules put it (on the vowel with the
    circumflex, breve or horn, and so on; "hòa" and "hoà" both pass) and, after a final c, ch,
    p or t, only sắc or nặng.
    """
    letters: list[str] = []
    tone, at = "", -1
    for ch in unicodedata.normalize("NFD", word.lower()):
        if ch not in _TONES:
            letters.append(ch)
        elif tone or _last_letter(letters) not in "aeiouy":
            return False  # two tones, or a "tone" on a consonant (the tilde of ñ)
        else:
            tone, at = ch, sum(not unicodedata.combining(c) for c in letters) - 1
    base = unicodedata.normalize("NFC", "".join(letters))
    match = _SYLLABLE.fullmatch(base)
    if match is None or _MEDIAL_AFTER_C.match(base):
        return False
    if not strict:
        return True
    if base.endswith(("c", "ch", "p", "t")) and tone not in _STOP_TONES:
        return False
    return not tone or at in _tone_places(base, max(match.end("onset"), 0))


def _last_letter(decomposed: list[str]) -> str:
    return next((ch for ch in reversed(decomposed) if not unicodedata.combining(ch)), "")


def _tone_places(base: str, rhyme: int) -> list[int]:
    vowels = [i for i in range(rhyme, len(base)) if base[i] in _VOWELS]
    marked = [i for i in vowels if base[i] in "ăâêôơư"]
    if len(vowels) == 1 or marked:
        return vowels[-1:] if not marked else marked[-1:]
    if vowels[-1] < len(base) - 1:
        return vowels[-1:]  # before a final consonant: the last vowel (hoàn, xoóng)
    if base[vowels[0] :] in ("oa", "oe", "uy"):
        return vowels  # hòa and hoà, thúy and thuý
    return vowels[1:2] if len(vowels) == 3 else vowels[:1]  # ngoài, khuỷu; tài, của, kìa


def encode_legacy(text: str, encoding: str) -> str:
    """``text`` as it shows up when typed in ``encoding`` and read as Latin-1 (for tests and tools).

    TCVN3 has no capital toned letters: like the .VnTimeH font, they get the lowercase byte.
    """
    table = _TCVN3_ENCODE if _known(encoding) == TCVN3 else _VNI_ENCODE
    return "".join(table.get(ch, ch) for ch in nfc(text))


def detect_legacy(text: str) -> LegacyHit | None:
    """The first line that reads as TCVN3 or VNI mojibake, or None for Unicode and other text."""
    for number, line in enumerate(text.split("\n"), start=1):
        found = _line_encoding(line)
        if found is not None:
            encoding, column = found
            words = line[column - 1 :].split()
            excerpt = " ".join(words[:3])[:40] + (" …" if len(words) > 3 else "")
            return LegacyHit(encoding, number, column, excerpt)
    return None


def convert_legacy(text: str, encoding: str | None = None) -> str:
    """``text`` in NFC with its TCVN3 or VNI lines converted; ``encoding`` None detects it.

    Only lines with legacy-looking words change; in a line that also holds Unicode Vietnamese
    only those words do. Clean text comes back unchanged (as NFC).
    """
    text = nfc(text)
    if encoding is not None:
        fixed = _known(encoding)
        return nfc("\n".join(_convert_line(line, fixed) for line in text.split("\n")))
    hit = detect_legacy(text)
    if hit is None:
        return text
    lines = []
    for line in text.split("\n"):
        found = _line_encoding(line)  # a line can tell its own encoding; else the document's
        lines.append(_convert_line(line, found[0] if found else hit.encoding))
    return nfc("\n".join(lines))


def check_text(text: str, where: str, *, convert: bool, first_line: int = 1) -> str:
    """``text`` in NFC; legacy text is converted (``convert``) or refused naming ``where``.

    ``first_line`` is the file line ``text`` starts on, for the line number in the error.
    """
    text = nfc(text)
    hit = detect_legacy(text)
    if hit is None:
        return text
    if not convert:
        line = hit.line + first_line - 1
        raise LegacyEncodingError(where, LegacyHit(hit.encoding, line, hit.column, hit.excerpt))
    return convert_legacy(text)


def _known(encoding: str) -> str:
    name = encoding.upper().replace("-", "")
    if name not in ENCODINGS:
        raise ValueError(f"unknown legacy encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    return name


def _surely_lower(ch: str) -> bool:
    return ch in _TCVN3_LOWER_SIGNS or (ch.isascii() and ch.islower())


def _surely_upper(ch: str) -> bool:
    return ch in _TCVN3_UPPER_SIGNS or (ch.isascii() and ch.isupper())


def _decode_tcvn3(word: str, capitals: bool) -> str:
    decoded = "".join(_TCVN3_DECODE.get(ch, ch) for ch in word)
    # Toned letters have no capitals in VN3: a word in capitals gets them back, and so does
    # every word ("X·", "ë") of a line typed all in capitals ("CéNG HOµ X· HéI").
    if any(map(_surely_lower, word)):
        return decoded
    return decoded.upper() if capitals or sum(map(_surely_upper, word)) >= 2 else decoded


def _decode_vni(word: str, capitals: bool) -> str:
    return _VNI_SEQUENCE.sub(lambda m: _VNI_DECODE[m.group()], word)


_DECODERS: dict[str, Callable[[str, bool], str]] = {TCVN3: _decode_tcvn3, VNI: _decode_vni}


def _in_capitals(line: str) -> bool:
    """A TCVN3 line typed in capitals: capital letters and no letter that is surely lowercase."""
    return not any(map(_surely_lower, line)) and any(map(_surely_upper, line))


@lru_cache(maxsize=8192)
def _verdict(word: str, encoding: str) -> int:
    """+1 a legacy word, -1 a word that is neither Vietnamese nor legacy, 0 no opinion."""
    if word.isascii() or any(ord(ch) > 0xFF for ch in word):
        return 0  # plain ASCII, or Unicode that no 8-bit font produces
    if len(word) == 1 and not word.isalpha():
        return 0  # a lone symbol: £ 5, 3 × 4, « quoted »
    if is_syllable(word, strict=False):
        return 0  # "có", "là": as good Vietnamese as it is legacy
    return 1 if is_syllable(_DECODERS[encoding](word, False), strict=True) else -1


def _legacy_words(line: str, encoding: str) -> tuple[list[re.Match[str]], int, bool]:
    """The legacy words of ``line``, the count of foreign ones, and whether any is Unicode."""
    legacy: list[re.Match[str]] = []
    foreign = 0
    unicode = False
    for match in _WORD.finditer(line):
        verdict = _verdict(match.group(), encoding)
        if verdict > 0:
            legacy.append(match)
        foreign += verdict < 0
        unicode = unicode or any(ord(ch) > 0xFF for ch in match.group())
    return legacy, foreign, unicode


def _spoiled(line: str, encoding: str) -> int:
    """Words that are Vietnamese as written and nonsense once converted ("Chính" → "Chớnh")."""
    decode = _DECODERS[encoding]
    return sum(
        _verdict(m.group(), encoding) == 0
        and decode(m.group(), False) != m.group()
        and not is_syllable(decode(m.group(), False))
        for m in _WORD.finditer(line)
    )


def _utf8_misread(line: str) -> bool:
    """UTF-8 read as cp1252 ("Viá»‡t") is a different accident; no table here fixes it."""
    raw = bytearray()
    for ch in line:
        try:
            raw += ch.encode("cp1252")
        except UnicodeEncodeError:
            if ord(ch) > 0xFF:
                return False
            raw.append(ord(ch))  # the five bytes cp1252 leaves undefined pass as Latin-1
    try:
        return raw.decode("utf-8") != line
    except UnicodeDecodeError:
        return False


def _line_encoding(line: str) -> tuple[str, int] | None:
    """(encoding, column) when ``line`` reads as legacy text: two different legacy words at
    least, and at least twice as many legacy words as words that fit no language here."""
    if line.isascii() or _utf8_misread(line):
        return None
    best: tuple[int, str, re.Match[str], bool] | None = None
    for encoding in ENCODINGS:  # TCVN3 first: it wins a tie, being by far the commoner
        legacy, foreign, unicode = _legacy_words(line, encoding)
        enough = len({m.group().lower() for m in legacy}) >= 2 and len(legacy) >= 2 * foreign
        if not enough:
            continue  # no score needed: _spoiled is most of the cost of a clean line
        score = len(legacy) - foreign - _spoiled(line, encoding)
        if best is None or score > best[0]:
            best = (score, encoding, legacy[0], unicode)
    if best is None:
        return None
    _, encoding, first, unicode = best
    if not unicode:  # the whole line is legacy: start at the first word it changes, even "céng"
        for match in _WORD.finditer(line[: first.start()]):
            word, decoded = match.group(), _DECODERS[encoding](match.group(), False)
            if not word.isascii() and decoded != word and is_syllable(decoded):
                return encoding, match.start() + 1
    return encoding, first.start() + 1


def _convert_line(line: str, encoding: str) -> str:
    if line.isascii() or _utf8_misread(line):
        return line
    legacy, _, unicode = _legacy_words(line, encoding)
    if not legacy:
        return line
    decode = _DECODERS[encoding]
    capitals = encoding == TCVN3 and _in_capitals(line)
    if not unicode:
        return _WORD.sub(lambda m: decode(m.group(), capitals), line)
    # Unicode Vietnamese around a pasted fragment: convert from the first to the last legacy
    # word of each stretch between Unicode-only words ("có" stays, "sèng" between two goes).
    starts = {m.start() for m in legacy}
    spans: list[tuple[int, int]] = []
    stretch: list[re.Match[str]] = []
    for match in [*_WORD.finditer(line), None]:
        if match is None or any(ord(ch) > 0xFF for ch in match.group()):
            hits = [m for m in stretch if m.start() in starts]
            if hits:
                spans.append((hits[0].start(), hits[-1].end()))
            stretch = []
        else:
            stretch.append(match)
    for start, end in reversed(spans):
        line = (
            line[:start]
            + _WORD.sub(lambda m: decode(m.group(), capitals), line[start:end])
            + line[end:]
        )
    return line
