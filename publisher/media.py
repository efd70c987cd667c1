"""Picture files → what each platform is sent: checked, and resized when too large.

A picture named by content (``content.Picture``) is read from messages/media/, decoded with
Pillow (a file that is not really a JPEG or PNG is refused, as is one too small to show or so
large it could exhaust memory) and fitted to the platform's limits: a file over its size or
side limit is resized and re-encoded into a new file in memory — the original is never
touched. What is sent is identified by the SHA-256 of its bytes, which the render's hash covers:
a changed picture is a changed post, whose approval is revoked.

Pure apart from reading the files: no clock, network or database.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageOps, UnidentifiedImageError

from publisher.content import MEDIA_DIR, Picture
from publisher.errors import ContentError
from publisher.text import slugify

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
MIN_SIDE = 200  # px: smaller pictures show as a smudge on every platform
MAX_SIDE = 4096  # px: larger ones are scaled down (every platform scales them anyway)
MAX_PIXELS = 50_000_000  # a larger picture is refused before it is decoded (memory)
JPEG_QUALITIES = (88, 80, 72)
_SHRINK = 0.85  # each further try scales the sides by this


@dataclass(frozen=True)
class Limits:
    """What one platform takes: JPEG or PNG of at most ``max_bytes``."""

    max_bytes: int
    platform: str
    max_side: int = MAX_SIDE
    png_max_bytes: int | None = None  # a smaller limit for PNG files, if the platform has one

    def most(self, fmt: str) -> int:
        """The largest file of format ``fmt`` (JPEG, PNG) the platform takes as it is."""
        if fmt == "PNG" and self.png_max_bytes is not None:
            return min(self.max_bytes, self.png_max_bytes)
        return self.max_bytes


# The platforms' documented limits (README "Pictures"; Zalo: "images at most 1 MB").
LIMITS = {
    "zalo": Limits(1_000_000, "Zalo"),  # "images at most 1 MB"
    # Page photos: under 4 MB, PNG under 1 MB "or they may look pixelated" (Graph API guide
    # "Uploading Photos"; PNG beyond it is sent as a JPEG when it has no transparency)
    "facebook": Limits(4_000_000, "Facebook", png_max_bytes=1_000_000),
    # a multisite network's default fileupload_maxk (1500 KB); a single site takes more
    "wordpress": Limits(1_500_000, "WordPress"),
    "webhook": Limits(5_000_000, "the webhook portal"),  # our contract (docs/webhook.md)
    # a mail to an editorial desk: each picture attached; mail servers commonly take 10–25 MB
    # a message (base64 adds a third), so each file is kept small enough for several
    "email": Limits(2_000_000, "the mail to the editorial desk"),
}


@dataclass(frozen=True)
class Source:
    """A picture file as read and decoded once."""

    data: bytes = field(repr=False)
    sha256: str
    format: str  # "JPEG" | "PNG"
    width: int
    height: int
    metadata: bool = False  # it carries EXIF/XMP/comments (e.g. GPS): never sent as it is


@dataclass(frozen=True)
class Prepared:
    """One picture of a render: what is sent (``data``, empty for an address) and how the
    render names it (``entry``, which the render's hash covers)."""

    role: str  # "cover" | "image"
    alt: str
    src: str  # as content wrote it: "media/bia.jpg" or "https://…"
    url: str = ""  # a public https:// address (an address picture's, or [media] public_base_url)
    mime: str = ""
    name: str = ""
    sha256: str = ""
    width: int = 0
    height: int = 0
    data: bytes = field(default=b"", repr=False)
    source_sha256: str = ""  # of the file as it is in messages/media/

    def entry(self) -> dict[str, Any]:
        """The picture in the post's stored fields (JSON; never the bytes)."""
        out: dict[str, Any] = {"role": self.role, "alt": self.alt, "src": self.src}
        if self.url:
            out["url"] = self.url
        if self.data:
            out |= {
                "mime": self.mime,
                "name": self.name,
                "sha256": self.sha256,
                "width": self.width,
                "height": self.height,
                "size": len(self.data),
                "source_sha256": self.source_sha256,
            }
        return out


def read_source(path: Path, where: str) -> Source:
    """The picture file at ``path``, decoded and checked (``where`` names it in errors)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ContentError(where, f"cannot be read: {exc.strerror}") from exc
    return _read(path, stat.st_mtime_ns, stat.st_size, where)


@lru_cache(maxsize=32)
def _read(path: Path, _mtime: int, _size: int, where: str) -> Source:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError(where, f"cannot be read: {exc.strerror}") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                fmt, (width, height) = im.format or "", im.size
                if fmt == "MPO":  # a camera's JPEG with its extra frames (depth, preview)
                    fmt, extra = "JPEG", True
                else:
                    extra = False
                if fmt in FORMATS and width * height <= MAX_PIXELS:
                    im.load()  # really decode it: a truncated or corrupt file fails here
                metadata = extra or _carries_metadata(im)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ContentError(
                where, "is not a readable JPEG or PNG picture", "save it again as JPEG or PNG"
            ) from exc
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ContentError(where, "has too many pixels to open safely") from exc
    if fmt not in FORMATS:
        raise ContentError(where, f"is a {fmt} picture", "platforms take JPEG or PNG: convert it")
    if width * height > MAX_PIXELS:
        raise ContentError(
            where,
            f"is {width}×{height} px, over {MAX_PIXELS // 1_000_000} megapixels",
            f"scale it down to at most {MAX_SIDE} px on its longer side",
        )
    if min(width, height) < MIN_SIDE:
        raise ContentError(
            where,
            f"is {width}×{height} px, too small to show",
            f"use a picture of at least {MIN_SIDE}×{MIN_SIDE} px",
        )
    return Source(data, hashlib.sha256(data).hexdigest(), fmt, width, height, metadata)


# What a file may carry besides its pixels: where and when it was taken (EXIF, with GPS), who
# took it, the editing software's notes (XMP, comments, PNG text). None of it is sent.
_METADATA = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "iptc")


def _carries_metadata(im: Image.Image) -> bool:
    text = getattr(im, "text", None)  # PNG tEXt/iTXt chunks
    return any(k in im.info for k in _METADATA) or bool(text)


def prepare(
    picture: Picture,
    role: str,
    messages_dir: Path,
    limits: Limits,
    public_base_url: str = "",
) -> Prepared:
    """``picture`` as ``limits``'s platform is sent it: an address as it is; a file read,
    checked and fitted (resized when over the limits), with its public address under
    ``public_base_url`` when one is configured and the file as it is there fits ``limits``."""
    if picture.is_url:
        return Prepared(role, picture.alt, picture.src, url=picture.src)
    where = f"messages/{picture.src}"
    source = read_source(messages_dir / picture.src, where)
    return _prepared(picture, role, limits, public_base_url, source, where)


# A picture is prepared for each post that shows it (a default cover: every post): the same
# file read (``read_source``, by its mtime and size) gives the same bytes, hash and name, so
# they are made once, not per post (most of a large load's time over its templates',
# bench/RESULTS.md).
@lru_cache(maxsize=32)
def _prepared(
    picture: Picture, role: str, limits: Limits, public_base_url: str, source: Source, where: str
) -> Prepared:
    data, fmt, width, height = fit(source, limits, where)
    mime, ext = FORMATS[fmt]
    sha = hashlib.sha256(data).hexdigest()
    stem = slugify(Path(picture.src).stem)[:40].strip("-") or "anh"
    # the alt text is part of the name: a platform that keeps files by name (WordPress's media
    # library, which shows one alt text per file) gets one file per picture and its text
    alt = hashlib.sha256(picture.alt.encode()).hexdigest()[:6]
    url = ""
    if public_base_url and fits(source, limits):  # published as it is: only if it fits
        url = public_base_url + quote(picture.src.removeprefix(MEDIA_DIR + "/"))
    return Prepared(
        role,
        picture.alt,
        picture.src,
        url=url,
        mime=mime,
        name=f"{stem}-{sha[:12]}-{alt}.{ext}",
        sha256=sha,
        width=width,
        height=height,
        data=data,
        source_sha256=source.sha256,
    )


def fits(source: Source, limits: Limits) -> bool:
    """Whether the file itself can be sent: within the limits, and carrying nothing but its
    pixels (a phone photo's EXIF holds where it was taken: such a file is re-encoded)."""
    return (
        not source.metadata
        and len(source.data) <= limits.most(source.format)
        and max(source.width, source.height) <= limits.max_side
    )


def fit(source: Source, limits: Limits, where: str) -> tuple[bytes, str, int, int]:
    """The bytes to send (the file itself if it is within ``limits``, else a smaller copy),
    their format and size in pixels. Deterministic: the same file gives the same bytes."""
    if fits(source, limits):
        return source.data, source.format, source.width, source.height
    most = limits.most(source.format)
    return _shrunk(
        source.data, source.format, most, limits.max_side, f"{where} ({limits.platform})"
    )


@lru_cache(maxsize=32)
def _shrunk(
    data: bytes, fmt: str, max_bytes: int, max_side: int, where: str
) -> tuple[bytes, str, int, int]:
    with Image.open(io.BytesIO(data)) as opened:
        icc = opened.info.get("icc_profile")  # its colours: kept, unlike its metadata
        im = ImageOps.exif_transpose(opened)  # the copy drops EXIF: turn it upright first
        alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        # a PNG stays a PNG if it can (drawings, text); without transparency, JPEG if it must
        formats = (
            ("PNG",) if fmt == "PNG" and alpha else ("PNG", "JPEG") if fmt == "PNG" else ("JPEG",)
        )
        scale = min(1.0, max_side / max(im.size))
        for _ in range(12):
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            if min(size) < MIN_SIDE:
                break
            resized = im.resize(size, Image.Resampling.LANCZOS) if scale < 1.0 else im
            for out_fmt in formats:
                for quality in JPEG_QUALITIES if out_fmt == "JPEG" else (0,):
                    encoded = _encode(resized, out_fmt, quality, icc)
                    if len(encoded) <= max_bytes:
                        return encoded, out_fmt, size[0], size[1]
            scale *= _SHRINK
    raise ContentError(
        where,
        f"cannot be made smaller than {max_bytes // 1000} kB without a side under {MIN_SIDE} px",
        "crop it (a very long, narrow picture cannot shrink far) or compress it more",
    )


def _encode(im: Image.Image, fmt: str, quality: int, icc: bytes | None) -> bytes:
    buf = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        rgb = im.convert("RGB")
        rgb.save(buf, "JPEG", quality=quality, optimize=True, progressive=True, **extra)
    else:
        im.save(buf, "PNG", optimize=True, **extra)
    return buf.getvalue()
