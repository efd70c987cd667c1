"""A post's pictures as the board sees them: read from its stored fields (the JSON of the field
``media``, one entry per picture: ``publisher.media.Prepared.entry``), described, and shrunk
into small thumbnails with Pillow for the pages that show them.

A thumbnail is made once per picture (by the SHA-256 of its bytes) and kept in a small cache:
a calendar of 72 posts that all show the campaign's banner shrinks it once. Pillow is imported
only when a thumbnail is made, so ``publisher preview`` starts as fast as before.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from publisher.store.db import Database

# ``publisher.render.MEDIA_FIELD`` (importing the renderer would cost ``preview`` its Jinja and
# Pillow; tests/test_preview.py checks they agree).
MEDIA_FIELD = "media"
ROLE_LABELS_VI = {"cover": "Ảnh bìa", "image": "Ảnh"}
THUMB_WIDTH = 320  # px: wide enough for a preview, small enough to embed in a page
THUMB_QUALITY = 80
_CACHE_SIZE = 64


@dataclass(frozen=True)
class Shown:
    """One picture of a post as its stored fields name it."""

    role: str  # "cover" | "image"
    alt: str  # "" = decorative
    src: str  # as the content file wrote it: "media/bia.jpg" or "https://…"
    url: str = ""  # a public https:// address, if it has one
    name: str = ""  # the file sent: "<stem>-<sha256[:12]>-<alt>.<ext>" ("" for an address)
    mime: str = ""
    sha256: str = ""  # of the bytes sent ("" for an address)
    width: int = 0
    height: int = 0
    size: int = 0  # bytes

    @property
    def is_file(self) -> bool:
        return bool(self.sha256)

    @property
    def role_vi(self) -> str:
        return ROLE_LABELS_VI.get(self.role, self.role)

    @property
    def dimensions(self) -> str:
        return f"{self.width}×{self.height} px" if self.width and self.height else ""

    def as_json(self) -> dict[str, Any]:
        """What a machine reads of it (``preview --format json``, ``queue show --json``)."""
        return {
            "role": self.role,
            "alt": self.alt,
            "src": self.src,
            "url": self.url or None,
            "name": self.name or None,
            "mime": self.mime or None,
            "sha256": self.sha256 or None,
            "width": self.width or None,
            "height": self.height or None,
            "size": self.size or None,
        }


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def _number(entry: Mapping[str, Any], key: str) -> int:
    value = entry.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def pictures_of(fields: Mapping[str, Any]) -> list[Shown]:
    """The pictures of a post's stored ``fields``, cover first as rendered; [] when it has none
    or its ``media`` field cannot be read (a page shows the rest of the post all the same)."""
    raw = fields.get(MEDIA_FIELD)
    try:
        entries = json.loads(raw) if isinstance(raw, str) and raw else []
    except ValueError:
        return []
    if not isinstance(entries, list):
        return []
    out = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        sha = _text(e, "sha256").lower()
        out.append(
            Shown(
                role=_text(e, "role") or "image",
                alt=_text(e, "alt"),
                src=_text(e, "src"),
                url=_text(e, "url"),
                name=_text(e, "name"),
                mime=_text(e, "mime"),
                sha256=sha if is_sha256(sha) else "",
                width=_number(e, "width"),
                height=_number(e, "height"),
                size=_number(e, "size"),
            )
        )
    return out


def text_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` without the pictures' JSON: what is shown as text."""
    return {k: v for k, v in fields.items() if k != MEDIA_FIELD}


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def size_text(size: int, decimal: str = ",") -> str:
    """A file's size for people: ``92 kB``, ``1,8 MB`` (``decimal``: "," in Vietnamese)."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f}".replace(".", decimal) + " MB"
    return f"{max(1, round(size / 1000))} kB"


# -- thumbnails -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thumb:
    """A small copy of a picture: JPEG (PNG when it has transparency), at most ``THUMB_WIDTH``
    px wide."""

    data: bytes
    mime: str
    width: int
    height: int

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


_cache: OrderedDict[tuple[str, int], Thumb | None] = OrderedDict()
_lock = threading.Lock()


def thumbnail(sha256: str, data: bytes, width: int = THUMB_WIDTH) -> Thumb | None:
    """A thumbnail of ``data`` (whose SHA-256 is ``sha256``) at most ``width`` px wide; None if
    Pillow cannot read it. Made once per picture and width, then taken from the cache."""
    key = (sha256, width)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    made = _shrink(data, width)
    with _lock:
        _cache[key] = made
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return made


def cached_thumbnail(sha256: str, width: int = THUMB_WIDTH) -> Thumb | None:
    """The thumbnail ``thumbnail`` made of picture ``sha256``, if it is still in the cache."""
    with _lock:
        return _cache.get((sha256, width))


def _shrink(data: bytes, width: int) -> Thumb | None:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > 50_000_000:  # publisher.media.MAX_PIXELS
                return None
            im = ImageOps.exif_transpose(opened)
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            if im.width > width:
                height = max(1, round(im.height * width / im.width))
                im = im.resize((width, height), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if alpha:
                im.convert("RGBA").save(out, "PNG", optimize=True)
                mime = "image/png"
            else:
                im.convert("RGB").save(out, "JPEG", quality=THUMB_QUALITY, optimize=True)
                mime = "image/jpeg"
            return Thumb(out.getvalue(), mime, im.width, im.height)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def load_thumbnails(db: Database, shas: Iterable[str]) -> dict[str, Thumb]:
    """Thumbnails of the stored pictures among ``shas`` (by SHA-256; one read, one thumbnail
    each whatever number of posts show it). A picture not stored is simply absent."""
    from publisher.store.media import files

    wanted = {s for s in shas if is_sha256(s)}
    if not wanted:
        return {}
    with db.read() as s:
        stored = {sha: f.data for sha, f in files(s, wanted).items()}
    out = {}
    for sha, data in stored.items():
        thumb = thumbnail(sha, data)
        if thumb is not None:
            out[sha] = thumb
    return out
