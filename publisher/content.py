"""Content files in messages/ → Message values.

Each file is Markdown with YAML front matter (parsed by python-frontmatter). Pure apart from
reading the files: no clock, no network, no database. All text comes out NFC, without control
characters or bidi overrides (``publisher.text.clean``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from publisher.config import KINDS, Config
from publisher.errors import ContentError
from publisher.text import clean, length, nfc
from publisher.vietnamese import LegacyEncodingError, check_text

FIELDS = (
    "kind", "title", "summary", "channels", "pinned", "at", "cover", "cover_alt", "images", "draft"
)  # fmt: skip
MEDIA_DIR = "media"  # picture files live in messages/media/
ALT_LIBRARY = "alt.yaml"  # messages/media/alt.yaml: file name → its alternative text
ALT_LIMIT = 300  # characters of alternative text
IMAGE_LIMIT = 10  # pictures in one message besides its cover (a Facebook post takes ten or so)
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png")
SUMMARY_LIMIT = 300
_KIND_DIRS = {"slogans": "slogan", "articles": "article"}


@dataclass(frozen=True)
class Picture:
    """A picture as content names it: a file under messages/media/ (``src`` as written,
    e.g. "media/bia.jpg") or a public https:// address, with its alternative text ("" for a
    decorative picture). ``publisher.media`` reads and checks the file when it is rendered."""

    src: str
    alt: str

    @property
    def is_url(self) -> bool:
        return self.src.startswith("https://")

    def as_json(self) -> dict[str, str]:
        return {"src": self.src, "alt": self.alt}


@dataclass(frozen=True)
class Message:
    """One piece of content: a slogan or an article, as written in its file."""

    key: str  # path under messages/ without the suffix, e.g. "articles/02-quyen-tre-em"
    path: str  # the file as the user names it, for error messages
    kind: str
    title: str
    summary: str
    body: str
    channels: tuple[str, ...]
    pinned: date | None
    cover: Picture | None
    draft: bool
    at: datetime | None = None  # a time set by hand (local, from front matter) for its first post
    # the pictures shown with the text, in order, besides the cover
    images: tuple[Picture, ...] = ()
    # The whole file converted from TCVN3/VNI (with --convert-legacy), for writing back.
    converted: str | None = field(default=None, compare=False, repr=False)

    @property
    def content_hash(self) -> str:
        pinned = self.pinned.isoformat() if self.pinned else None
        data: list[object] = [self.kind, self.title, self.summary, self.body, list(self.channels)]
        cover = self.cover.src if self.cover else None
        data += [pinned, cover, self.draft]
        if self.at is not None:
            data.append(self.at.isoformat())
        # the pictures' alt texts too (a cover without alt hashes as it did before pictures
        # had any); the files' bytes are hashed by the render (``publisher.media``)
        if (self.cover and self.cover.alt) or self.images:
            data.append(
                [self.cover.as_json() if self.cover else None, [i.as_json() for i in self.images]]
            )
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def message_files(directory: Path) -> list[Path]:
    """Every content file, in a stable order; README files are documentation, not content, and
    messages/media/ holds pictures (a note there is not a message either). A
    folder named ``*.md`` is a folder (the files in it are found); a broken link is kept, for
    ``read_message`` to report."""
    if not directory.is_dir():
        return []
    files = (p for p in directory.rglob("*.md") if p.name.lower() != "readme.md" and not p.is_dir())
    media = directory / MEDIA_DIR  # pictures and their alt texts, not messages
    return sorted(
        f
        for f in files
        if not any(part.startswith(".") for part in f.parts) and not f.is_relative_to(media)
    )


def read_text(path: Path, where: str) -> str:
    """The text of a file given as content (UTF-8), or a ContentError naming ``where``: a broken
    link, a folder, an unreadable file or bytes that are not UTF-8 are one line each."""
    if path.is_symlink() and not path.exists():
        raise ContentError(
            where,
            f"is a broken symbolic link (to {os.readlink(path)})",
            "point it at a content file or remove it",
        )
    if path.is_dir():
        raise ContentError(where, "is a folder, not a content file")
    if path.exists() and not path.is_file():
        raise ContentError(where, "is not a regular file", "remove it")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError(
            where, f"cannot be read: {exc.strerror}", "make it readable by this user"
        ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContentError(
            where, f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8"
        ) from exc


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str]:
    """A content file's front matter (a mapping of fields) and body; ``({}, text)`` if it has
    no front matter. Front matter that is not valid YAML, or is a list or a single value, is a
    ContentError naming ``where`` (python-frontmatter would drop it without a word)."""
    handler = YAMLHandler()
    text = text.strip()
    if not handler.detect(text):
        return {}, text
    try:
        front, body = handler.split(text)
    except ValueError:
        return {}, text
    try:
        data = handler.load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContentError(where, f"front matter is not valid YAML{line}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContentError(
            where,
            f"front matter must be a mapping of fields (key: value), not {_what(data)}",
            "one field per line, e.g. 'kind: slogan', with no '- ' before it",
        )
    return dict(data), body.strip()


def _what(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def read_messages(
    config: Config, *, convert_legacy: bool = False
) -> tuple[list[Message], list[ContentError]]:
    """Read every file; return the good messages and a problem per bad file."""
    directory = config.messages_dir
    if not directory.is_dir():
        where = str(directory)
        return [], [ContentError(where, "is not a folder", "create it or set paths.messages")]
    messages: list[Message] = []
    problems: list[ContentError] = []
    for path in message_files(directory):
        try:
            messages.append(read_message(path, directory, config, convert_legacy=convert_legacy))
        except ContentError as exc:
            problems.append(exc)
    return messages, problems


def _display(path: Path) -> str:
    """``path`` relative to the working folder if it is under it (the link itself, not what a
    symbolic link points to)."""
    cwd = Path.cwd()
    for candidate in (Path(os.path.abspath(path)), path.parent.resolve() / path.name):
        for base in (cwd, cwd.resolve()):
            with contextlib.suppress(ValueError):
                return str(candidate.relative_to(base))
    return str(path)


def read_message(
    path: Path, directory: Path, config: Config, *, convert_legacy: bool = False
) -> Message:
    """One file of ``directory`` as a Message; a ContentError names the first problem."""
    where = _display(path)
    meta, content, converted = _front_matter(path, where, convert_legacy)

    def bad(field: str, problem: str, hint: str | None = None) -> ContentError:
        return ContentError(where, f"front matter '{field}' {problem}", hint, field=field)

    for key in meta:
        if key not in FIELDS:
            raise bad(key, "is not a known field", "allowed: " + ", ".join(FIELDS))

    rel = path.relative_to(directory)
    key = rel.with_suffix("").as_posix()
    kind = _kind(meta, rel, where, bad)

    body = clean(content).strip()
    if not body:
        raise ContentError(where, "has an empty body", "write the text after the front matter")

    channels = _channels(meta, kind, config, where, bad)
    title, summary = _title_summary(meta, kind, body, where, bad)

    pinned = _pinned(meta.get("pinned"), config, bad)
    cover, images = _pictures(meta, directory, bad)
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        raise bad("draft", "must be true or false")
    at = _at(meta.get("at"), config, bad)
    return Message(
        key,
        where,
        kind,
        title,
        summary,
        body,
        channels,
        pinned,
        cover,
        draft,
        at,
        images,
        converted,
    )


def _pictures(
    meta: dict[str, Any], directory: Path, bad: Any
) -> tuple[Picture | None, tuple[Picture, ...]]:
    """The message's cover and images from its front matter: ``cover: media/bia.jpg`` (alt
    text from ``cover_alt:`` or the library messages/media/alt.yaml), ``cover: {src: …,
    alt: …}``, and ``images:`` a list of either form."""
    library = alt_library(directory)
    cover = None
    if meta.get("cover") is not None:
        cover = picture(meta["cover"], "cover", directory, library, bad, meta.get("cover_alt"))
    elif "cover_alt" in meta:
        raise bad("cover_alt", "is given without a cover", "add 'cover: media/…' or remove it")
    value = meta.get("images", [])
    if not isinstance(value, list):
        raise bad("images", "must be a list of pictures", "e.g. images: [media/anh-1.jpg]")
    if len(value) > IMAGE_LIMIT:
        raise bad("images", f"names {len(value)} pictures, the limit is {IMAGE_LIMIT}")
    images = tuple(picture(v, "images", directory, library, bad) for v in value)
    return cover, images


def picture(
    value: Any,
    name: str,
    directory: Path,
    library: dict[str, str],
    bad: Any,
    alt: Any = None,
) -> Picture:
    """One picture of the front matter field ``name`` (a path or URL, or a mapping with
    ``src`` and ``alt``); its file must exist under messages/media/ and have alternative text."""
    if isinstance(value, dict):
        unknown = set(value) - {"src", "alt"}
        if unknown or "src" not in value:
            raise bad(name, "takes 'src' and 'alt'", 'e.g. {src: media/anh.jpg, alt: "…"}')
        value, alt = value["src"], value.get("alt", alt)
    if not isinstance(value, str) or not value.strip():
        raise bad(name, "must name a picture", "a file under media/, or an https:// address")
    src = nfc(value.strip())
    if src.startswith(("http://", "https://")):
        if not src.startswith("https://"):
            raise bad(name, f"{src!r} is not an https:// address", "platforms fetch https only")
    else:
        src = _picture_file(src, name, directory, bad)
    if alt is None:
        alt = library.get(src.removeprefix(MEDIA_DIR + "/"))
    if alt is None:
        raise bad(
            name,
            f"{src} has no alternative text",
            f'add alt: "…" (what the picture shows), or a line in {MEDIA_DIR}/{ALT_LIBRARY}; '
            'alt: "" marks a decorative picture',
        )
    if not isinstance(alt, str):
        raise bad(name, "alt must be text", 'quote it: alt: "…"')
    alt = " ".join(clean(alt).split())
    if length(alt) > ALT_LIMIT:
        raise bad(name, f"alt text of {src} is {length(alt)} characters, the limit is {ALT_LIMIT}")
    return Picture(src, alt)


def _picture_file(src: str, name: str, directory: Path, bad: Any) -> str:
    """``src`` as a path under messages/media/ that names an existing JPEG or PNG file."""
    rel = Path(src)
    parts = rel.parts
    if rel.is_absolute() or ".." in parts or len(parts) < 2 or parts[0] != MEDIA_DIR:
        raise bad(
            name,
            f"{src!r} is not a file under {MEDIA_DIR}/",
            f"put the picture in messages/{MEDIA_DIR}/ and write {MEDIA_DIR}/<file>",
        )
    if rel.suffix.lower() not in PICTURE_SUFFIXES:
        raise bad(name, f"{src} is not a .jpg, .jpeg or .png file", "platforms take JPEG or PNG")
    path = directory / rel
    media = (directory / MEDIA_DIR).resolve()
    if not path.is_file():
        raise bad(name, f"{src} does not exist in messages/", "check the file name")
    if not path.resolve().is_relative_to(media):
        raise bad(name, f"{src} leads outside messages/{MEDIA_DIR}/", "copy the picture there")
    return rel.as_posix()


def alt_library(directory: Path) -> dict[str, str]:
    """messages/media/alt.yaml: each picture file's alternative text, written once for every
    message that shows it (a file name under media/ → its text). Absent: empty."""
    path = directory / MEDIA_DIR / ALT_LIBRARY
    try:
        stat = path.stat()
    except OSError:
        return {}
    return dict(_alt_library(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _alt_library(path: Path, _mtime: int, _size: int) -> tuple[tuple[str, str], ...]:
    where = _display(path)
    try:
        data = yaml.safe_load(read_text(path, where))
    except yaml.YAMLError as exc:
        raise ContentError(where, f"is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if data is None:
        return ()
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ContentError(
            where, "must map file names to alternative texts", 'e.g. bia.jpg: "Ảnh bìa …"'
        )
    return tuple((nfc(k), nfc(v)) for k, v in data.items())


def _front_matter(
    path: Path, where: str, convert_legacy: bool
) -> tuple[dict[str, Any], str, str | None]:
    """The file's front matter, its body and, if legacy text was converted, the converted
    text (None if not); the file must start with a front matter block."""
    raw = read_text(path, where)
    try:
        text = check_text(raw.lstrip("\ufeff"), where, convert=convert_legacy)
    except LegacyEncodingError as exc:
        raise ContentError(where, exc.problem, exc.hint) from exc
    converted = text if text != nfc(raw.lstrip("\ufeff")) else None
    meta, content = split_front_matter(text, where)
    if not raw.lstrip("\ufeff").startswith("---"):
        raise ContentError(where, "has no front matter", "start the file with a '---' block")
    return meta, content, converted


def _kind(meta: dict[str, Any], rel: Path, where: str, bad: Any) -> str:
    """The message's kind: its ``kind`` field, else its folder's (``slogans/``, ``articles/``)."""
    kind = meta.get("kind", _KIND_DIRS.get(rel.parts[0]) if len(rel.parts) > 1 else None)
    if kind is None:
        raise ContentError(where, "front matter lacks 'kind'", "kind: slogan or kind: article")
    if kind not in KINDS:
        raise bad("kind", f"is {kind!r}", "one of: " + ", ".join(KINDS))
    return str(kind)


def _channels(
    meta: dict[str, Any], kind: str, config: Config, where: str, bad: Any
) -> tuple[str, ...]:
    """The channels the message goes to: its ``channels`` field, else its kind's default;
    each a configured channel, duplicates dropped."""
    channels_value = meta.get("channels", list(config.kinds[kind].channels))
    if not channels_value:
        example = ", ".join(list(config.channels)[:2])
        raise ContentError(where, "front matter lacks 'channels'", f"e.g. channels: [{example}]")
    if not isinstance(channels_value, list) or not all(isinstance(c, str) for c in channels_value):
        raise bad("channels", "must be a list of channel ids", "e.g. channels: [facebook, zalo]")
    for cid in channels_value:
        if cid not in config.channels:
            raise bad(
                "channels", f"names {cid!r}, not a channel", "one of: " + ", ".join(config.channels)
            )
    return tuple(dict.fromkeys(channels_value))


def _title_summary(
    meta: dict[str, Any], kind: str, body: str, where: str, bad: Any
) -> tuple[str, str]:
    """The title and summary: both required of an article; a slogan without a title is
    titled by its body."""
    title = _text(meta, "title", bad)
    summary = _text(meta, "summary", bad)
    if kind == "article":
        if not title:
            raise ContentError(where, "front matter lacks 'title'", 'title: "…"', field="title")
        if not summary:
            raise ContentError(
                where, "front matter lacks 'summary'", 'summary: "…"', field="summary"
            )
    if kind == "slogan" and not title:
        title = " ".join(body.split())  # a slogan is its own title
    if length(summary) > SUMMARY_LIMIT:
        raise bad("summary", f"is {length(summary)} characters, the limit is {SUMMARY_LIMIT}")
    return title, summary


def _at(value: Any, config: Config, bad: Any) -> datetime | None:
    """``at: 2024-06-15 10:00`` (local time) → an aware datetime inside the window."""
    if value is None:
        return None
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value.strip())
    if when is None:
        raise bad("at", f"is {value!r}, not a date and time", "e.g. at: 2024-06-15 10:00")
    if when.tzinfo is None:
        when = when.replace(tzinfo=config.tz)
    day = when.astimezone(config.tz).date()
    if not config.campaign.start <= day <= config.campaign.end:
        raise bad("at", f"is {day}, outside the campaign window")
    return when


def _text(meta: dict[str, Any], field: str, bad: Any) -> str:
    value = meta.get(field, "")
    if not isinstance(value, str):
        raise bad(field, "must be text", f'quote it: {field}: "…"')
    return " ".join(clean(value).split())


def _pinned(value: Any, config: Config, bad: Any) -> date | None:
    if value is None:
        return None
    day: date | None = None
    if isinstance(value, date):
        day = value
    elif isinstance(value, str) and value in config.key_dates:
        day = config.key_dates[value].date
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            day = date.fromisoformat(value)
    if day is None:
        ids = ", ".join(config.key_dates)
        raise bad(
            "pinned", f"is {value!r}, not a date", f"e.g. pinned: 2024-06-12, or a key date: {ids}"
        )
    start, end = config.campaign.start, config.campaign.end
    if not start <= day <= end:
        raise bad("pinned", f"is {day}, outside the campaign window {start}..{end}")
    return day


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) all at once: never a half-written message file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
