"""WordPress core's media rules as the sandbox imitates them: the attachment, file names, titles and
slugs, big pictures, and the JSON shape of ``/wp/v2/media``.

Pure: no HTTP, no clock. Follows WP_REST_Attachments_Controller (upload_from_data, upload_from_file,
get_filename_from_disposition, insert_attachment, prepare_item_for_response), sanitize_file_name,
sanitize_text_field, wp_unique_filename, wp_unique_post_slug (an attachment's slug is unique
across every post type) and _wp_maybe_scale_and_rotate_image (a JPEG over 2560 px is served as a
``-scaled`` copy; PNGs are never scaled).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from PIL import Image

from publisher.sandbox.media import Picture, inspect
from publisher.sandbox.wordpress_store import SITE_TZ, WP_TIME

FILE_TYPE_ERROR = "Sorry, you are not allowed to upload this file type."
INVALID_DISPOSITION = (
    "Invalid Content-Disposition supplied. Content-Disposition needs to be formatted as"
    ' `attachment; filename="image.png"` or similar.'
)
EXTENSIONS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "jpe": "image/jpeg", "png": "image/png"}
BIG_IMAGE_THRESHOLD = 2560  # px: big_image_size_threshold's default
JPEG_QUALITY = 82  # WP_Image_Editor's default quality for what it saves
SPECIAL_CHARS = "?[]/\\=<>:;,'\"&$#*()|~`!{}%+’«»”“\x00"  # sanitize_file_name's list


@dataclass
class WpMedia:
    """An attachment: ``file`` is what ``source_url`` serves (the ``-scaled`` copy of a big JPEG,
    whose upload is then ``original``)."""

    id: int
    slug: str
    title: str
    author: int
    date_gmt: datetime
    file: str  # relative to wp-content/uploads: "2024/06/bia-scaled.jpg"
    picture: Picture  # what ``file`` holds
    original: str = ""  # original_image: the uploaded file's name when it was scaled
    alt_text: str = ""
    caption: str = ""
    description: str = ""
    post: int | None = None
    modified_gmt: datetime | None = None
    other: dict[str, Any] = field(default_factory=dict)

    def source_url(self, site: str) -> str:
        return f"{site}/wp-content/uploads/{self.file}"

    def to_json(self, site: str, context: str) -> dict[str, Any]:
        """The REST shape; ``context`` is view, embed or edit (edit adds raw values)."""
        edit = context == "edit"

        def rendered(raw: str, html: str) -> dict[str, str]:
            return {"raw": raw, "rendered": html} if edit else {"rendered": html}

        modified = self.modified_gmt or self.date_gmt
        source = self.source_url(site)
        details: dict[str, Any] = {
            "width": self.picture.width,
            "height": self.picture.height,
            "file": self.file,
            "filesize": self.picture.size,
            "sizes": {},
            "image_meta": {},
        }
        if self.original:
            details["original_image"] = self.original
        body: dict[str, Any] = {
            "id": self.id,
            "date": self.date_gmt.astimezone(SITE_TZ).strftime(WP_TIME),
            "date_gmt": self.date_gmt.strftime(WP_TIME),
            "guid": rendered(source, source),
            "modified": modified.astimezone(SITE_TZ).strftime(WP_TIME),
            "modified_gmt": modified.strftime(WP_TIME),
            "slug": self.slug,
            "status": "inherit",
            "type": "attachment",
            "link": f"{site}/?attachment_id={self.id}",
            "title": rendered(self.title, self.title),
            "author": self.author,
            "featured_media": 0,
            "comment_status": "open",
            "ping_status": "closed",
            "template": "",
            "meta": [],
            "description": rendered(self.description, autop(self.description)),
            "caption": rendered(self.caption, autop(self.caption)),
            "alt_text": self.alt_text,
            "media_type": "image",
            "mime_type": self.picture.mime,
            "media_details": details,
            "post": self.post,
            "source_url": source,
        }
        if edit:
            body["permalink_template"] = f"{site}/?attachment_id={self.id}"
            body["generated_slug"] = self.slug
            body["missing_image_sizes"] = []
        if context == "embed":
            keep = ("id", "date", "slug", "type", "link", "title", "author", "caption", "alt_text")
            body = {k: body[k] for k in (*keep, "media_type", "mime_type", "media_details")} | {
                "source_url": source
            }
        body["_links"] = {
            "self": [{"href": f"{site}/wp-json/wp/v2/media/{self.id}"}],
            "collection": [{"href": f"{site}/wp-json/wp/v2/media"}],
        }
        return body

    def matches(self, search: str) -> bool:
        """``search`` (lower case) in the title, caption, description or file name."""
        names = (self.title, self.caption, self.description, self.file.rsplit("/", 1)[-1])
        return any(search in name.lower() for name in names)


def autop(text: str) -> str:
    """wpautop for one paragraph of plain text: ``<p>text</p>`` and a newline; "" for nothing."""
    return f"<p>{text}</p>\n" if text.strip() else ""


def filename_from_disposition(value: str) -> str | None:
    """get_filename_from_disposition: the ``filename`` parameter (unquoted), if any; ``filename*``
    (RFC 5987) is not read, as WordPress does not read it."""
    value = value.strip()
    if ";" not in value:
        return None
    attributes: dict[str, str] = {}
    for part in value.split(";", 1)[1].split(";"):
        if "=" in part:
            key, val = part.split("=", 1)
            attributes[key.strip()] = val.strip()
    name = attributes.get("filename", "").strip()
    if name in ("", "0"):  # PHP's empty()
        return None
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    return name or None


def sanitize_file_name(name: str) -> str:
    """sanitize_file_name: special characters dropped, spaces to dashes, dots and dashes trimmed."""
    name = "".join(c for c in name if c not in SPECIAL_CHARS)
    name = name.replace("%20", "-")
    name = re.sub(r"\.{2,}", ".", name)
    name = re.sub(r"[\r\n\t -]+", "-", name)
    return name.strip(".-_")


def sanitize_text_field(text: str) -> str:
    """sanitize_text_field: no tags, no percent-encoded octets, one line, spaces collapsed."""
    text = re.sub(r"<(script|style)[^>]*?>.*?</\1>", "", text, flags=re.I | re.S)
    text = re.sub(r"<[^>]*>", "", text)
    while re.search(r"%[a-fA-F0-9]{2}", text):
        text = re.sub(r"%[a-fA-F0-9]{2}", "", text)
    return re.sub(r"[\r\n\t ]+", " ", text).strip()


def title_of(filename: str) -> str:
    """What a multipart upload's title is made of: the name up to its last dot, as text."""
    return sanitize_text_field(filename[: filename.rfind(".")]) if "." in filename else ""


def typed_name(name: str, picture: Picture) -> str:
    """wp_check_filetype_and_ext: ``name`` with the extension of what the file really is (a PNG
    named .jpg becomes .png); ValueError when the name's extension is not an image's."""
    stem, dot, ext = name.rpartition(".")
    if not dot or ext.lower() not in EXTENSIONS:
        raise ValueError(FILE_TYPE_ERROR)
    if EXTENSIONS[ext.lower()] != picture.mime:
        return f"{stem}.{picture.ext}"
    return name


def unique_filename(name: str, taken: set[str]) -> str:
    """wp_unique_filename: ``name``, else ``stem-1.ext``, ``stem-2.ext``… (case-insensitive)."""
    lowered = {t.lower() for t in taken}
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 0
    while candidate.lower() in lowered:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    return candidate


def scaled(picture: Picture) -> Picture | None:
    """The ``-scaled`` copy WordPress makes of a JPEG over 2560 px on a side (fitting 2560×2560),
    or None: PNGs and smaller pictures are served as uploaded."""
    w, h = picture.width, picture.height
    if picture.mime != "image/jpeg" or max(w, h) <= BIG_IMAGE_THRESHOLD:
        return None
    ratio = min(BIG_IMAGE_THRESHOLD / w, BIG_IMAGE_THRESHOLD / h)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    with Image.open(io.BytesIO(picture.data)) as image:
        out = io.BytesIO()
        image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(
            out, "JPEG", quality=JPEG_QUALITY
        )
    return inspect(out.getvalue())


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            values = {k: v or "" for k, v in attrs}
            if values.get("src"):
                self.found.append((values["src"], values.get("alt", "")))


def images_in(html: str) -> list[tuple[str, str]]:
    """The ``(src, alt)`` of every ``<img>`` in ``html``, in order."""
    parser = _Images()
    parser.feed(html)
    parser.close()
    return parser.found
