"""The sandbox's pictures: every accepted file kept once by its sha256, checked as the platforms
check them (Pillow decodes the whole picture: a file that is not a JPEG or PNG is refused), and
served back over HTTP at ``/media/<sha256>.<ext>`` (and at any path a platform gives it, such as
WordPress's ``/wordpress/wp-content/uploads/…``), so that uploaded pictures have addresses.

No HTTP here (the server and the platforms serve what the store holds) and no clock. Bytes stay
in memory: records name pictures, never hold them.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from publisher.config import is_loopback

MIMES = {"JPEG": "image/jpeg", "PNG": "image/png"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
PATH = "/media/"  # where the store serves every picture it holds: /media/<sha256>.<ext>
# What each platform accepts at most, in bytes. WordPress, on a single site, checks no size of
# its own: PHP does (upload_max_filesize 2 MiB for a multipart file, post_max_size 8 MiB for a
# raw body); a multisite network's fileupload_maxk (1500 KB by default) is the Sandbox's
# ``wordpress_upload_limit``.
LIMITS = {
    "zalo": 1_000_000,
    "facebook": 4_000_000,
    "wordpress": 2 * 1024 * 1024,  # PHP's upload_max_filesize (multipart files)
    "webhook": 5_000_000,
}
POST_MAX = 8 * 1024 * 1024  # PHP's post_max_size: a larger body reaches WordPress empty
MAX_PIXELS = 50_000_000  # a larger picture is refused before it is decoded (as publisher does)


class Refusal(ValueError):
    """Bytes that are not an acceptable picture; ``reason`` is empty, too_big or format."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Picture:
    """A decoded JPEG or PNG file."""

    sha256: str
    mime: str
    width: int
    height: int
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def ext(self) -> str:
        return EXTENSIONS[self.mime]

    @property
    def path(self) -> str:
        """Where the sandbox serves it, whoever uploaded it."""
        return f"{PATH}{self.sha256}.{self.ext}"

    def describe(self) -> dict[str, Any]:
        """What a record keeps of it: everything but the bytes."""
        return {
            "sha256": self.sha256,
            "mime": self.mime,
            "size": self.size,
            "width": self.width,
            "height": self.height,
        }


def inspect(data: bytes, limit: int | None = None) -> Picture:
    """``data`` as a Picture, or Refusal: nothing, more than ``limit`` bytes, or not a whole JPEG
    or PNG file (it is decoded to the last pixel, so a truncated or disguised file is refused)."""
    if not data:
        raise Refusal("empty", "no picture: the file is empty")
    if limit is not None and len(data) > limit:
        raise Refusal("too_big", f"the picture has {len(data)} bytes; at most {limit} are accepted")
    digest = hashlib.sha256(data).hexdigest()
    with _DECODED_LOCK:
        known = _DECODED.get(digest)
    if known is not None:  # these very bytes were decoded whole before: the same answer
        return Picture(digest, known[0], known[1], known[2], data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(MIMES)) as image:
                kind = str(image.format)
                width, height = image.size
                if width * height > MAX_PIXELS:  # never decoded: a few kB can be gigabytes
                    raise Refusal("format", f"a picture of {width}×{height} px is too large")
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Refusal("format", "a picture of too many pixels, too large to open") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, Refusal):
            raise
        raise Refusal("format", "not a JPEG or PNG picture (it cannot be decoded as one)") from exc
    with _DECODED_LOCK:
        if len(_DECODED) >= DECODED_KEPT:
            _DECODED.pop(next(iter(_DECODED)))  # the oldest first
        _DECODED[digest] = (MIMES[kind], width, height)
    return Picture(digest, MIMES[kind], width, height, data)


# What decoding found of the pictures accepted lately, by their bytes' sha256 (never the bytes):
# a campaign uploads the same cover again and again (every channel, every article), and
# decoding it to the last pixel each time was an eighth of the sandbox's time in a burst. Only
# pictures accepted are kept; a refused one is decoded again (and refused again) each time.
DECODED_KEPT = 1024
_DECODED: dict[str, tuple[str, int, int]] = {}
_DECODED_LOCK = threading.Lock()


class MediaStore:
    """The pictures the platforms of one sandbox accepted, by sha256, and the paths serving them."""

    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url
        self._pictures: dict[str, Picture] = {}
        self._paths: dict[str, str] = {}  # path on the sandbox → sha256

    def keep(self, picture: Picture, *paths: str) -> str:
        """Keep ``picture`` (once, whatever the number of uploads) and serve it at its own path
        and at ``paths`` too; returns its own URL."""
        kept = self._pictures.setdefault(picture.sha256, picture)
        for path in (kept.path, *paths):
            self._paths[path] = kept.sha256
        return self.url(kept)

    def url(self, picture: Picture) -> str:
        return f"{self._base_url()}{picture.path}"

    def forget(self, *paths: str) -> None:
        """Serve nothing more at ``paths`` (a deleted file); the picture's own path stays."""
        for path in paths:
            self._paths.pop(path, None)

    def at(self, path: str) -> Picture | None:
        """The picture served at ``path`` (no query string), if any."""
        sha = self._paths.get(path)
        return self._pictures.get(sha) if sha is not None else None

    def own(self, url: str) -> bool:
        """Whether ``url`` points at this sandbox (a loopback host on its port), whatever path."""
        try:
            parts, base = urlsplit(url.strip()), urlsplit(self._base_url())
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        host = parts.hostname or ""
        return parts.scheme in ("http", "https") and is_loopback(host) and port == base.port

    def find(self, url: str) -> Picture | None:
        """The picture at ``url`` when it points at this sandbox and a picture is served there."""
        return self.at(urlsplit(url.strip()).path) if self.own(url) else None

    def local_path(self, url: str) -> str | None:
        """The path the sandbox serves ``url``'s picture at, for its own pages; None when ``url``
        is not one of its pictures."""
        picture = self.find(url)
        return urlsplit(url.strip()).path if picture is not None else None

    def pictures(self) -> list[dict[str, Any]]:
        """Every picture held, as described for ``GET /_sandbox/media``."""
        paths: dict[str, list[str]] = {}
        for path, sha in sorted(self._paths.items()):
            paths.setdefault(sha, []).append(path)
        return [
            p.describe() | {"url": self.url(p), "paths": paths.get(sha, [])}
            for sha, p in self._pictures.items()
        ]

    def clear(self) -> None:
        self._pictures.clear()
        self._paths.clear()
