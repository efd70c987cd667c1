"""Messages → per-channel renders through sandboxed Jinja templates.

``templates/<dir>/<kind>.j2`` defines one block per field of its channel (e.g. Zalo: title,
author, description, body). Pure: reads template files, never the clock, network or database.
Templates run in ``template_limits.BoundedEnvironment``: no value or field grows past
``SIZE_LIMIT`` characters, and every failure is one line naming the template.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from publisher.config import Channel, Config
from publisher.content import ALT_LIBRARY, MEDIA_DIR, Message, Picture, alt_library, picture
from publisher.errors import ConfigError, ContentError, LimitError, TemplateError
from publisher.media import LIMITS, Limits, Prepared, prepare
from publisher.template_limits import SIZE_LIMIT, BoundedEnvironment, bounded_join
from publisher.text import hashtag, length, nfc, slugify

__all__ = [
    "FACEBOOK_MESSAGE_LIMIT",
    "FIELDS",
    "MEDIA_FIELD",
    "SIZE_LIMIT",
    "FieldSpec",
    "Render",
    "Renderer",
    "markdown_html",
    "markdown_plain",
    "template_problem",
    "template_where",
]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    required: bool = False
    limit: int | None = None
    why: str = ""  # why the limit is what it is, for the error


# Facebook's 63,206 characters: the adapter sends the message as it is (no marker of ours).
FACEBOOK_MESSAGE_LIMIT = 63206

# The fields each adapter kind publishes; the first is the post's main text.
FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "facebook": (
        FieldSpec("message", True, FACEBOOK_MESSAGE_LIMIT),
        FieldSpec("link"),
    ),
    "zalo": (
        FieldSpec("body", True),
        # Zalo documents ≤ 150, but refused titles of exactly 150 (platform-apis.md §7).
        FieldSpec("title", True, 149, "Zalo refuses titles of 150 characters or more"),
        FieldSpec("author", True, 50),
        FieldSpec("description", True, 300),
    ),
    "wordpress": (FieldSpec("content", True), FieldSpec("title", True), FieldSpec("excerpt")),
    "webhook": (FieldSpec("content", True), FieldSpec("title", True), FieldSpec("excerpt")),
    # a mail to a portal's editorial desk: the article as HTML, its subject line, and the
    # plain-text alternative (templates write subject and text inside {% autoescape false %})
    "email": (
        FieldSpec("html", True),
        FieldSpec("subject", True, 250, "a subject line the desk's mail program shows whole"),
        FieldSpec("text", True),
    ),
}


_KEPT = 16  # sets of prepared pictures a renderer keeps (a daemon's lives for days)
MEDIA_FIELD = "media"  # the pictures, as JSON (``publisher.media.Prepared.entry``), if any


@dataclass(frozen=True)
class Render:
    """What will be sent to one channel: named fields, all NFC text; its pictures, if any,
    are the field ``media`` (JSON naming each file by the SHA-256 of the bytes sent, so the
    hash covers them) and ``pictures`` (the bytes, for the queue to keep)."""

    fields: Mapping[str, str]
    main: str
    pictures: tuple[Prepared, ...] = field(default=(), compare=False, repr=False)

    @property
    def text(self) -> str:
        return self.fields[self.main]

    @cached_property
    def hash(self) -> str:
        return fields_hash(self.fields)


def fields_hash(fields: Mapping[str, Any]) -> str:
    """The hash of a post's rendered fields: what an approval binds (``Render.hash``), and what
    the dispatcher checks the stored fields against before it sends them.

    The SHA-256 of ``json.dumps(dict(fields), ensure_ascii=False, sort_keys=True)`` in UTF-8
    (stored approvals depend on it: never change it). Text fields, every render's, are written
    straight as those bytes (``tests/test_render.py`` checks both ways agree)."""
    parts = []
    for k, v in sorted(fields.items()):
        if type(k) is not str or type(v) is not str:
            canonical = _CANONICAL.encode(dict(fields))
            return hashlib.sha256(canonical.encode()).hexdigest()
        parts.append(_json_key(k) + (_json_media(v) if k == MEDIA_FIELD else _json_text(v)))
    return hashlib.sha256(b"{" + b", ".join(parts) + b"}").hexdigest()


# ``json.dumps(..., ensure_ascii=False, sort_keys=True)``: its encoder, made once
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
# C0 controls but the newline: json writes them as escapes (\t, \u0001…)
_CONTROLS = bytes(c for c in range(0x20) if c != 0x0A)


def _json_text(text: str) -> bytes:
    """``json.dumps(text, ensure_ascii=False).encode()``, faster for text without controls but
    newlines. Only ASCII is escaped, and in UTF-8 an ASCII byte is always that character: the
    escapes can be made on the bytes (the backslash first: the others add backslashes)."""
    data = text.encode()
    if len(data.translate(None, _CONTROLS)) != len(data):
        return encode_basestring(text).encode()
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'"'


@lru_cache(maxsize=64)
def _json_key(key: str) -> bytes:
    return encode_basestring(key).encode() + b": "


_json_media = lru_cache(maxsize=_KEPT)(_json_text)  # most posts show the same pictures


_md = MarkdownIt("commonmark", {"html": False})


# A message is rendered for each of its channels in turn, and channels share templates (both
# portals; Facebook and Zalo both strip the Markdown): each source is converted once, not per
# channel, which was most of the cost of a large load (bench/RESULTS.md). Pure, so cacheable.
@lru_cache(maxsize=64)
def markdown_html(source: str) -> Markup:
    """Markdown → HTML; raw HTML in the source is escaped, never passed through."""
    return Markup(_md.render(source).strip())  # noqa: S704 - markdown-it escapes its input


@lru_cache(maxsize=64)
def markdown_plain(source: str) -> str:
    """Markdown → plain text for channels that show no markup (Facebook, Zalo)."""
    out: list[str] = []
    lists: list[list[int]] = []  # per open list: [ordered, counter]
    bullet = ""
    for tok in _md.parse(source):
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([kind == "ordered_list_open", int(str(tok.attrs.get("start", 1))) - 1])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                out.append("")
        elif kind == "list_item_open":
            lists[-1][1] += 1
            ordered, n = lists[-1]
            bullet = "  " * (len(lists) - 1) + (f"{n}. " if ordered else "• ")
        elif kind == "inline":
            text = _inline_plain(tok)
            if lists:
                out.append(bullet + text)
                bullet = "  " * len(lists)
            else:
                out.extend([text, ""])
    return "\n".join(out).strip()


def _inline_plain(tok: Token) -> str:
    parts = []
    for child in tok.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts)


def template_where(config: Config, path: Path) -> str:
    """A template file as errors name it: relative to the config's folder when inside it."""
    try:
        return str(path.relative_to(config.path.resolve().parent))
    except ValueError:
        return str(path)


def template_problem(where: str, exc: BaseException) -> TemplateError:
    """A template that cannot be read or compiled, as one line (never a traceback)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(where, f"line {exc.lineno}: {exc.message}")
    if isinstance(exc, UnicodeDecodeError):
        return TemplateError(where, f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8")
    if isinstance(exc, RecursionError):
        return TemplateError(where, "is nested too deeply to compile", "simplify the expression")
    if isinstance(exc, OSError):
        return TemplateError(where, f"cannot be read: {exc.strerror or exc}")
    return TemplateError(where, f"cannot be compiled: {_said(exc)}")


def _said(exc: BaseException) -> str:
    """An exception as a short phrase: its type and the first 300 characters of its message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}{'…' if len(text) > 300 else ''}"


class Renderer:
    """Compiles each channel's templates once and renders messages for channels."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._envs: dict[tuple[str, bool], BoundedEnvironment] = {}
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        # each channel's default cover, checked again only when its file or alt text changes
        self._covers: dict[str, tuple[tuple[object, ...], Picture | None]] = {}
        # what every post's context shares (pure: the config), copied into each context
        self._campaign: dict[str, str] | None = None
        self._hashtags: list[str] = []
        self._messages_dir = str(config.messages_dir)
        # in a batch (``batch``): its thread, and each set of pictures it has prepared
        self._batch: (
            tuple[int, dict[tuple[object, ...], tuple[tuple[Prepared, ...], str]]] | None
        ) = None
        self._alt_texts = os.path.join(self._messages_dir, MEDIA_DIR, ALT_LIBRARY)
        self._kept: OrderedDict[
            tuple[str, bool, tuple[Picture, ...]],
            tuple[list[tuple[int, ...]], tuple[tuple[Prepared, ...], str]],
        ] = OrderedDict()
        # per channel: its part of the context, and which of its settings are lists
        self._channels: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}

    def _env(self, channel: Channel) -> BoundedEnvironment:
        key = (channel.templates, channel.html)
        if key not in self._envs:
            env = BoundedEnvironment(
                loader=jinja2.FileSystemLoader(self.config.templates_dir / channel.templates),
                undefined=jinja2.StrictUndefined,
                autoescape=channel.html,
                keep_trailing_newline=False,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.add_filters(
                {
                    "markdown": markdown_html,
                    "plain": markdown_plain,
                    "hashtag": hashtag,
                    "slugify": slugify,
                }
            )
            self._envs[key] = env
        return self._envs[key]

    def template_path(self, channel: Channel, kind: str) -> Path:
        return self.config.templates_dir / channel.templates / f"{kind}.j2"

    def _where(self, channel: Channel, kind: str) -> str:
        return template_where(self.config, self.template_path(channel, kind))

    def template(self, channel: Channel, kind: str) -> jinja2.Template:
        key = (channel.id, kind)
        if key in self._templates:
            return self._templates[key]
        where = self._where(channel, kind)
        try:
            tmpl = self._env(channel).get_template(f"{kind}.j2")
        except jinja2.TemplateNotFound:
            raise TemplateError(
                where, "does not exist", f"every {kind} on {channel.id} is rendered with it"
            ) from None
        except MemoryError:
            raise
        except Exception as exc:  # syntax, encoding, nesting: one line, never a traceback
            raise template_problem(where, exc) from exc
        allowed = {f.name for f in FIELDS[channel.adapter]}
        for block in tmpl.blocks:
            if block not in allowed:
                raise TemplateError(
                    where,
                    f"block '{block}' is not a field of a {channel.adapter} post",
                    "fields: " + ", ".join(f.name for f in FIELDS[channel.adapter]),
                )
        self._templates[key] = tmpl
        return tmpl

    def context(self, message: Message, channel: Channel) -> dict[str, Any]:
        """What ``message``'s templates for ``channel`` see. Fresh dicts and lists each time (a
        template cannot change another post's), from parts made once per renderer."""
        pinned = self.config.key_date_on(message.pinned) if message.pinned else None
        if self._campaign is None:
            camp = self.config.campaign
            self._hashtags = [h if h.startswith("#") else hashtag(h) for h in camp.hashtags]
            self._campaign = {
                "name": camp.name,
                "theme": camp.theme,
                "organisation": camp.organisation,
                "parent_organisation": camp.parent_organisation,
            }
        part = self._channels.get(channel.id)
        if part is None:
            settings = channel.settings_dict()
            made = {"id": channel.id, "name": channel.name, **settings}
            part = self._channels[channel.id] = (
                made,
                tuple(k for k, v in made.items() if isinstance(v, list)),
            )
        channel_part = part[0].copy()
        for k in part[1]:  # the settings' lists, copied (their text and numbers are shared)
            channel_part[k] = list(channel_part[k])
        return {
            "message": {
                "key": message.key,
                "kind": message.kind,
                "title": message.title,
                "summary": message.summary,
                "body": message.body,
                "cover": message.cover.src if message.cover else "",
                "images": [i.as_json() for i in message.images],
                "pinned": message.pinned,
                "key_date": pinned.name if pinned else "",
            },
            "campaign": {**self._campaign, "hashtags": list(self._hashtags)},
            "channel": channel_part,
        }

    def render(self, message: Message, channel_id: str) -> Render:
        """Render ``message`` for one channel; raise TemplateError, LimitError or ContentError."""
        channel = self.config.channels[channel_id]
        tmpl = self.template(channel, message.kind)
        specs = FIELDS[channel.adapter]
        fields: dict[str, str] = {}
        blocks = tmpl.blocks
        try:
            ctx = tmpl.new_context(self.context(message, channel))
            for spec in specs:
                block = blocks.get(spec.name)
                if block is not None:
                    fields[spec.name] = nfc(bounded_join(block(ctx), "this field").strip())
        except jinja2.TemplateError as exc:
            said = " ".join(str(exc.message or exc).split())[:300]
            raise TemplateError(
                self._where(channel, message.kind), f"{said} (rendering {message.path})"
            ) from exc
        except RecursionError as exc:
            raise TemplateError(
                self._where(channel, message.kind),
                f"recursion too deep (rendering {message.path})",
                "a template includes itself, or a macro calls itself without end",
            ) from exc
        except MemoryError:
            raise
        except Exception as exc:  # 1 / 0, 'a' + 1, range(10**9)…: the template's mistake
            raise TemplateError(
                self._where(channel, message.kind), f"{_said(exc)} (rendering {message.path})"
            ) from exc
        for spec in specs:
            value = fields[spec.name] = fields.get(spec.name, "")
            if spec.required and not value:
                problem = f"renders an empty '{spec.name}' for {message.path}"
                where = self._where(channel, message.kind)
                raise TemplateError(where, problem, f"define {{% block {spec.name} %}}")
            # ``value`` is NFC (above): its code points are what the platform counts
            if spec.limit is not None and len(value) > spec.limit:
                raise LimitError(
                    message.path, channel.id, spec.name, len(value), spec.limit, spec.why
                )
        pictures, media = self._media(message, channel)
        if pictures:
            fields[MEDIA_FIELD] = media
            if channel.adapter == "facebook" and fields.get("link"):
                self._link_in_text(fields, message, channel)
        return Render(fields, specs[0].name, pictures)

    @staticmethod
    def _link_in_text(fields: dict[str, str], message: Message, channel: Channel) -> None:
        """A Facebook post shows either its pictures or a link's preview, never both: with
        pictures, the link goes at the end of the text (where it is still a link), so what the
        board approves is what followers see."""
        fields["message"] = f"{fields['message']}\n\n{fields['link']}"
        fields["link"] = ""
        if length(fields["message"]) > FACEBOOK_MESSAGE_LIMIT:
            raise LimitError(
                message.path,
                channel.id,
                "message",
                length(fields["message"]),
                FACEBOOK_MESSAGE_LIMIT,
                "with its link at the end",
            )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Renders inside (in this thread) take the pictures as they were when first read in
        the batch: each message's set of pictures is checked and prepared once for a channel,
        not once a post (a load renders thousands, most with the same default cover). Outside a
        batch, every render reads the files' identity again (a daemon's renderer lives for
        days)."""
        if self._batch is not None:  # already in one: its reads stand
            yield
            return
        self._batch = (threading.get_ident(), {})
        try:
            yield
        finally:
            self._batch = None

    def _media(self, message: Message, channel: Channel) -> tuple[tuple[Prepared, ...], str]:
        """``pictures`` and their ``media`` field: once a batch (``batch``), else as
        ``_media_now``."""
        batch = self._batch
        if batch is None or batch[0] != threading.get_ident():
            return self._media_now(message, channel)
        key = (channel.id, message.cover, message.images)
        made = batch[1].get(key)
        if made is None:
            made = batch[1][key] = self._media_now(message, channel)
        return made

    def _media_now(self, message: Message, channel: Channel) -> tuple[tuple[Prepared, ...], str]:
        """``pictures`` and their ``media`` field, kept for the last ``_KEPT`` sets of pictures
        while their files are unchanged: most posts show the same default cover."""
        seen: dict[str, os.stat_result] = {}  # the default cover's check stats its file too
        cover = message.cover or self._checked_cover(channel, seen)
        named = ((cover,) if cover else ()) + message.images
        key = (channel.id, message.cover is None, named)
        files: list[tuple[int, ...]] = []
        for pic in named:
            if not pic.is_url:
                try:
                    path = os.path.join(self._messages_dir, pic.src)
                    st = seen.get(path) or os.stat(path)
                except (OSError, ValueError):
                    return self._media_of(self.pictures(message, channel))  # says why
                files.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        kept = self._kept.get(key)
        if kept is not None and kept[0] == files:
            self._kept.move_to_end(key)
            return kept[1]
        made = self._media_of(self.pictures(message, channel))
        self._kept[key] = (files, made)
        if len(self._kept) > _KEPT:
            self._kept.popitem(last=False)
        return made

    @staticmethod
    def _media_of(pictures: tuple[Prepared, ...]) -> tuple[tuple[Prepared, ...], str]:
        entries = [p.entry() for p in pictures]
        return pictures, json.dumps(entries, ensure_ascii=False, sort_keys=True) if entries else ""

    def pictures(self, message: Message, channel: Channel) -> tuple[Prepared, ...]:
        """``message``'s cover (its own, else the default) and images as ``channel``'s
        platform is sent them; a ContentError for a picture that cannot go there."""
        cover = message.cover or self.default_cover(channel)
        named = ([("cover", cover)] if cover else []) + [("image", i) for i in message.images]
        media = self.config.media
        out = []
        for role, pic in named:
            prepared = prepare(
                pic, role, self.config.messages_dir, self.limits(channel), media.public_base_url
            )
            if channel.adapter == "zalo" and not prepared.url and not media.host:
                raise self._unreachable(message, channel, pic)
            out.append(prepared)
        if channel.adapter == "zalo" and not cover:
            raise ContentError(
                message.path,
                f"has no cover for {channel.id}: Zalo refuses an article without one "
                "(-201 cover is invalid)",
                f"add 'cover: media/…' to its front matter, or set [media] default_cover in "
                f"{self.config.path.name}",
                field="cover",
            )
        return tuple(out)

    def limits(self, channel: Channel) -> Limits:
        """What ``channel``'s platform takes (a WordPress site: up to its ``max_upload_bytes``)."""
        limits = LIMITS[channel.adapter]
        most = channel.setting("max_upload_bytes")
        if channel.adapter == "wordpress" and isinstance(most, int):
            limits = Limits(most, limits.platform, limits.max_side)
        return limits

    def default_cover(self, channel: Channel) -> Picture | None:
        """The cover of a message that names none: Zalo's own ``default_cover`` address, else
        ``[media] default_cover`` (its alt text from ``default_cover_alt`` or the library).

        Checked once, then again only when the file or the alt texts change (every post of a
        load takes it; a daemon's renderer lives for days)."""
        return self._checked_cover(channel, {})

    def _checked_cover(self, channel: Channel, seen: dict[str, os.stat_result]) -> Picture | None:
        """``default_cover``, leaving in ``seen`` the ``stat`` of each file it read."""
        key = self._cover_key(channel, seen)
        kept = self._covers.get(channel.id)
        if key is not None and kept is not None and kept[0] == key:
            return kept[1]
        cover = self._default_cover(channel)
        if key is not None:
            self._covers[channel.id] = (key, cover)
        return cover

    def _cover_key(
        self, channel: Channel, seen: dict[str, os.stat_result]
    ) -> tuple[object, ...] | None:
        """What the default cover's check reads: the file's identity (None when it has none
        to stat, then it is checked every time) and the alt texts."""
        own = str(channel.setting("default_cover") or "") if channel.adapter == "zalo" else ""
        src = own or self.config.media.default_cover
        if src.startswith(("http://", "https://")) or not src:
            return (src,)
        try:
            path = os.path.join(self._messages_dir, src.strip())
            st = seen[path] = os.stat(path)
        except (OSError, ValueError):
            return None
        try:
            alt = os.stat(self._alt_texts)
            texts: tuple[int, ...] = (alt.st_ino, alt.st_size, alt.st_mtime_ns)
        except OSError:
            texts = ()
        return (src, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, texts)

    def _default_cover(self, channel: Channel) -> Picture | None:
        media = self.config.media
        own = str(channel.setting("default_cover") or "") if channel.adapter == "zalo" else ""
        src = own or media.default_cover
        if not src:
            return None
        key = f"channels.{channel.id}.default_cover" if own else "media.default_cover"
        where = self.config.path.name

        def bad(_field: str, problem: str, hint: str | None = None) -> ConfigError:
            return ConfigError(where, key, problem.removeprefix(f"{src} "), hint)

        directory = self.config.messages_dir
        library = alt_library(directory)
        alt = media.default_cover_alt
        if alt is None and src.startswith("https://"):
            alt = ""  # an address's picture is not ours to describe unless we are told
        return picture(src, "default_cover", directory, library, bad, alt)

    def _unreachable(self, message: Message, channel: Channel, pic: Picture) -> ContentError:
        """A file Zalo cannot be given: it fetches pictures by address only."""
        too_large = bool(self.config.media.public_base_url)
        problem = (
            f"{pic.src} is over Zalo's {LIMITS['zalo'].max_bytes // 1_000_000} MB, or carries "
            f"metadata (a photo's EXIF, with where it was taken), as it is in {MEDIA_DIR}/, so "
            "it cannot be fetched from [media] public_base_url"
            if too_large
            else f"{pic.src} has no public address Zalo can fetch it from"
        )
        hint = (
            "save it smaller and without metadata, or set [media] host to the portal to upload "
            "a copy made to fit"
            if too_large
            else "set [media] public_base_url (where messages/media/ is published) or [media] "
            "host (a WordPress channel that publishes it)"
        )
        return ContentError(message.path, f"{problem} ({channel.id})", hint, field="cover")
