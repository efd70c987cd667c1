"""A WordPress site's media library: each picture file uploaded once, found again by its slug.

``WordPressMedia`` uploads a post's files through ``POST /wp-json/wp/v2/media`` (the raw body,
``Content-Type`` and ``Content-Disposition: attachment; filename="…"``, platform-apis.md §3.5) and
is a ``MediaHost``: the address of an uploaded file is public (Zalo's covers). A file is looked up
by its slug before any upload (``GET /wp/v2/media?slug=…``): the slug comes from the file's name,
which is unique to its bytes, and is sent with the upload so WordPress does not derive another one
(from an EXIF title, or a renamed file). So an upload whose answer was lost is found by the next
attempt instead of being sent twice, and every post that shows a picture shares one attachment.

Also here, because the adapter (``wordpress``) and the media library both need them: the site's
error envelope (``site_error``) and what an answer means for us (``site_failure``).
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from publisher.channels.base import (
    Ambiguous,
    AuthError,
    ChannelError,
    CheckResult,
    Media,
    Permanent,
    Temporary,
    Throttled,
    Unreachable,
    calling,
    retry_after_seconds,
    until,
)
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Channel, WordPressSettings, settings_as
from publisher.config import is_loopback as loopback_host

logger = logging.getLogger(__name__)

_MEDIA_FIELDS = "id,source_url,slug,alt_text,caption"
_DEFAULT_THROTTLE = 60.0
_NO_LOGIN = (
    "WordPress sees no login: the server may strip the Authorization header "
    "(Apache/FastCGI: pass HTTP_AUTHORIZATION through in .htaccess)"
)
# Codes of a file WordPress will not take as it is (platform-apis.md §3.5; core's attachments
# controller): too big, out of space or quota, a type the site refuses, a body it did not get.
_TOO_BIG = frozenset(
    {"rest_upload_file_too_big", "rest_upload_limited_space", "rest_upload_user_quota_exceeded"}
)


def site_error(resp: httpx.Response) -> tuple[str, str]:
    """WordPress's ``code`` and ``message`` (both "" when the body is not its error envelope)."""
    try:
        body = resp.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("code") or ""), " ".join(str(body.get("message") or "").split())


def site_failure(
    resp: httpx.Response,
    *,
    base: str,
    username: str,
    now: datetime,
    needs: str = "publish_posts, e.g. Author or Editor",
    what: str = "the post",
) -> ChannelError:
    """Map an answer that is not a success (a 5xx too, for calls that create nothing) to one
    outcome. ``needs`` names the capability a 403 means is missing; ``what`` the thing refused."""
    status = resp.status_code
    code, message = site_error(resp)
    said = f"{status} {code}: {message}" if code else f"HTTP {status}"
    kw: dict[str, Any] = {"status": status, "code": code or None}
    if status == 401:
        if code == "incorrect_password":
            return AuthError(
                "the application password was refused: create a new one for "
                f"'{username}' (Users → Profile → Application Passwords)",
                **kw,
            )
        if code == "invalid_username":
            return AuthError(f"WordPress has no user '{username}'", **kw)
        if code.startswith("rest_"):  # WordPress's 401 means nobody is logged in
            return AuthError(_NO_LOGIN, **kw)
        return AuthError(f"WordPress refused the login ({said})", **kw)
    if status == 403 and code.startswith("rest_"):
        return AuthError(f"'{username}' lacks the right role: needs {needs} ({said})", **kw)
    if status == 403:
        # Not WordPress's own answer (a firewall?), but it stops every post alike.
        return AuthError(f"WordPress or a firewall before it refused us ({said})", **kw)
    if status == 404 and code in ("rest_no_route", ""):
        return Permanent(f"no WordPress REST API at {base}/wp-json/ ({said})", **kw)
    if status == 429:
        wait = retry_after_seconds(resp.headers.get("Retry-After"), now)
        return Throttled(
            f"WordPress is rate-limiting ({said})",
            until=until(now, _DEFAULT_THROTTLE if wait is None else wait),
            **kw,
        )
    if status >= 500:
        wait = retry_after_seconds(resp.headers.get("Retry-After"), now)
        return Temporary(f"WordPress answered {said}", retry_after=wait, **kw)
    if 300 <= status < 400:
        where = resp.headers.get("Location", "?")
        return Permanent(f"WordPress redirected to {where}: correct base_url ({said})", **kw)
    return Permanent(f"WordPress refused {what} ({said})", **kw)


def media_slug(name: str) -> str:
    """The slug WordPress makes of a file name's stem (``sanitize_title_with_dashes`` for ASCII:
    lower case, dots to dashes, nothing but ``a-z 0-9 _ -``, runs of dashes as one).
    ``"bia-3f2a9c1d0b7e.jpg"`` → ``"bia-3f2a9c1d0b7e"``, which is ``Media.slug``."""
    stem = name.rpartition(".")[0] if "." in name else name
    text = re.sub(r"<[^>]*>", "", stem).lower().replace(".", "-")
    text = re.sub(r"[^a-z0-9 _-]", "", text)
    text = re.sub(r"\s+", "-", text)
    return re.sub(r"-+", "-", text).strip("-")


def figure(url: str, alt: str) -> str:
    """A picture in a post's body, as WordPress's image block writes it."""
    if urlsplit(url).scheme.lower() not in ("https", "http"):
        raise Permanent(f"the picture address {url[:200]!r} is not an http(s) URL")
    src, text = html.escape(url, quote=True), html.escape(alt, quote=True)
    return f'<figure class="wp-block-image"><img src="{src}" alt="{text}"/></figure>'


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (the sandbox, a test site)."""
    return loopback_host(urlsplit(url).hostname or "")


@dataclass(frozen=True)
class Attachment:
    """A picture in the site's media library, as far as we use it."""

    id: int
    url: str  # source_url: the file's public address
    slug: str
    alt: str  # alt_text, as WordPress keeps it
    caption: str  # caption.raw (HTML)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Attachment:
        """From a row of ``/wp/v2/media``; KeyError/TypeError/ValueError when it is not one."""
        caption = row.get("caption") or ""
        if isinstance(caption, Mapping):
            caption = caption.get("raw", caption.get("rendered", ""))
        url = row["source_url"]
        if not isinstance(url, str) or not url:
            raise ValueError("no source_url")
        return cls(
            int(row["id"]),
            url,
            str(row.get("slug") or ""),
            str(row.get("alt_text") or ""),
            str(caption or ""),
        )


def _same_text(a: str, b: str) -> bool:
    """Equal once WordPress's ``sanitize_text_field`` has run its whitespace over them."""
    return " ".join(a.split()) == " ".join(b.split())


class WordPressMedia:
    """Picture files in one WordPress site's media library: looked up by slug, uploaded once,
    their alternative text and caption set. A per-process memo (file name → attachment) spares
    the lookup for a file already seen; it is forgotten if the site lost the file."""

    def __init__(
        self,
        base_url: str,
        client: httpx.Client,
        auth: httpx.Auth,
        *,
        username: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.client = client
        self.auth = auth
        self.username = username
        self.clock = clock
        self.media_url = f"{self.base}/wp-json/wp/v2/media"
        self._memo: dict[str, Attachment] = {}
        self._locks: dict[str, threading.Lock] = {}

    @classmethod
    def for_channel(
        cls,
        channel: Channel,
        client: httpx.Client,
        secrets: Mapping[str, str],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> WordPressMedia:
        """The media library of a ``wordpress`` channel (its base URL, user and password)."""
        s = settings_as(channel, WordPressSettings)
        auth = httpx.BasicAuth(s.username, secrets["password"])
        return cls(s.base_url, client, auth, username=s.username, clock=clock)

    # -- MediaHost ------------------------------------------------------------------------------

    def public_url(self, media: Media) -> str:
        """The address anyone can fetch ``media`` from: a file's on this site (uploaded first
        if it is not there yet), or the address a URL picture came with. https only, except
        on a loopback site (the sandbox, tests)."""
        if not media.is_file:
            if not media.url:
                raise Permanent("a picture with neither a file nor an address")
            return media.url
        url = self.attachment(media).url
        scheme = urlsplit(url).scheme.lower()
        if scheme == "https" or (scheme == "http" and is_loopback(self.base)):
            return url
        raise Permanent(
            f"{self.base} gives {media.name} the address {url}, which is not https: "
            "set the site's address (Settings → General) to https://"
        )

    def check(self) -> CheckResult:
        """Whether the library answers a logged-in listing (one row, nothing sent)."""
        try:
            with calling(creates=False, doing="asking WordPress's media library"):
                resp = self.client.get(
                    self.media_url,
                    params={"per_page": "1", "context": "edit", "_fields": "id"},
                    auth=self.auth,
                )
            if not resp.is_success:
                raise self._failure(resp, "the media library")
        except ChannelError as exc:
            return CheckResult(
                False, f"{self.base}: {exc.reason}", reachable=not isinstance(exc, Unreachable)
            )
        return CheckResult(True, f"the media library of {self.base} answers")

    # -- the library ----------------------------------------------------------------------------

    def attachment(self, media: Media) -> Attachment:
        """``media``'s attachment: the one the site has (memo, then a lookup by slug) or one
        uploaded now; its alt text and caption made ``media.alt``."""
        if not media.is_file:
            raise ValueError(f"{media!r} has no file to upload")
        # one at a time per file: the portal's own posts and Zalo's covers share this library
        with self._locks.setdefault(media.name, threading.Lock()):
            found = self._memo.get(media.name) or self.find(media) or self._upload(media)
            found = self._describe(found, media)
            self._memo[media.name] = found
            return found

    def forget(self, media: Media) -> None:
        """Drop ``media`` from the memo (the site no longer has what it remembers)."""
        self._memo.pop(media.name, None)

    def find(self, media: Media) -> Attachment | None:
        """The site's attachment for ``media``, or None. Sends nothing new.

        Asks for the slug and its ``-2``: WordPress gives ``-2`` when the slug was held by
        something else (a page of that name), and that attachment is ours all the same."""
        slug = media_slug(media.name)
        rows = self._list(f"{slug},{slug}-2")
        for wanted in (slug, f"{slug}-2"):
            for found in rows:
                if found.slug == wanted:
                    return found
        return None

    def _list(self, slugs: str) -> list[Attachment]:
        params = {"slug": slugs, "context": "edit", "_fields": _MEDIA_FIELDS, "per_page": "10"}
        with calling(creates=False, doing="looking up a picture on WordPress"):
            resp = self.client.get(self.media_url, params=params, auth=self.auth)
        if not resp.is_success:
            raise self._failure(resp, "the picture lookup")
        try:
            rows = resp.json()
        except ValueError:
            rows = None
        if not isinstance(rows, list):
            raise Temporary(f"the picture lookup at {self.media_url} did not answer a list")
        found: list[Attachment] = []
        for row in rows:
            try:
                found.append(Attachment.of(row))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        return found

    def _upload(self, media: Media) -> Attachment:
        slug = media_slug(media.name)
        filename = re.sub(r"[^A-Za-z0-9._-]", "-", media.name) or f"{slug}.jpg"
        headers = {
            "Content-Type": media.mime or "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
        try:
            with calling(creates=True):
                resp = self.client.post(
                    self.media_url,
                    params={"slug": slug},
                    content=media.data,
                    headers=headers,
                    auth=self.auth,
                )
        except Ambiguous as exc:
            raise Ambiguous(
                f"the answer to the upload of {media.name} was lost ({exc.reason}); the file "
                "may be on the site, and is looked up before any new upload"
            ) from exc.__cause__
        if not resp.is_success:
            raise self._refusal(resp, media)
        try:
            made = Attachment.of(resp.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Ambiguous(
                f"WordPress answered {resp.status_code} to the upload of {media.name} without "
                "an attachment; the file may be on the site",
                status=resp.status_code,
            ) from exc
        logger.info("%s: uploaded %s as attachment %s", self.base, media.name, made.id)
        if made.slug == slug:
            return made
        return self._undouble(slug, made)

    def _undouble(self, slug: str, made: Attachment) -> Attachment:
        """WordPress renamed our slug: if another attachment holds it (a concurrent upload of
        the same file), keep that one and delete ours; otherwise ours is the only copy."""
        held = [a for a in self._list(slug) if a.slug == slug and a.id != made.id]
        if not held:
            logger.warning("%s: WordPress renamed %s to %s", self.base, slug, made.slug)
            return made
        try:
            with calling(creates=False, doing="deleting a duplicate picture"):
                resp = self.client.delete(
                    f"{self.media_url}/{made.id}", params={"force": "true"}, auth=self.auth
                )
            gone = resp.is_success or resp.status_code in (404, 410)
        except ChannelError:
            gone = False
        if not gone:
            logger.warning(
                "%s: duplicate attachment %s (%s) could not be deleted: delete it by hand",
                self.base,
                made.id,
                made.slug,
            )
        return held[0]

    def _describe(self, found: Attachment, media: Media) -> Attachment:
        """Make the attachment's alt text and caption ``media.alt`` if they are not already."""
        caption = html.escape(media.alt, quote=False)
        if _same_text(found.alt, media.alt) and _same_text(found.caption, caption):
            return found
        with calling(creates=False, doing="setting a picture's alternative text"):
            resp = self.client.post(
                f"{self.media_url}/{found.id}",
                json={"alt_text": media.alt, "caption": caption},
                auth=self.auth,
            )
        if resp.status_code in (404, 410):  # deleted since the memo or the lookup saw it
            self.forget(media)
            raise Temporary(f"attachment {found.id} ({media.name}) vanished; it is uploaded again")
        if resp.status_code == 403 and site_error(resp)[0] == "rest_cannot_edit":
            raise Permanent(
                f"'{self.username}' may not change attachment {found.id} ({media.name}), "
                "uploaded by someone else: set its alternative text by hand or give "
                f"'{self.username}' the Editor role",
                status=403,
                code="rest_cannot_edit",
            )
        if not resp.is_success:
            raise self._failure(resp, f"the alternative text of {media.name}")
        try:
            return Attachment.of(resp.json())
        except (ValueError, KeyError, TypeError, AttributeError):
            return replace(found, alt=media.alt, caption=caption)

    def _refusal(self, resp: httpx.Response, media: Media) -> ChannelError:
        """What a refused upload means: the file (Permanent, named, with the limit when the
        site gives one), our rights (AuthError), or the site's state (Temporary)."""
        status = resp.status_code
        code, message = site_error(resp)
        what = f"{media.name} ({len(media.data):,} bytes)"
        kw: dict[str, Any] = {"status": status, "code": code or None}
        if status == 413:
            return Permanent(
                f"the site's web server refused {what} as too large (HTTP 413) before WordPress "
                "saw it: raise its limit (PHP post_max_size and upload_max_filesize, nginx "
                "client_max_body_size) or lower this channel's picture size limit",
                **kw,
            )
        if code in _TOO_BIG:
            return Permanent(f"WordPress refused {what}: {message} ({code})", **kw)
        if code == "rest_upload_sideload_error":  # 500, but about the file or the uploads folder
            return Permanent(f"WordPress could not take {what}: {message} ({code})", **kw)
        if code == "rest_upload_no_data":
            return Permanent(
                f"WordPress received no data for {what}: the server dropped the body (PHP's "
                f"post_max_size smaller than the file?) ({code})",
                **kw,
            )
        if code.startswith("rest_upload_") and status < 500:
            return Permanent(
                f"WordPress refused the upload of {what} ({status} {code}: {message})", **kw
            )
        if status == 403 and code == "rest_cannot_create":
            return AuthError(
                f"'{self.username}' may not upload files: needs upload_files, e.g. Author or "
                f"Editor ({status} {code}: {message})",
                **kw,
            )
        if status >= 500:
            # Maybe stored all the same (a fatal error while making the smaller sizes): the
            # next attempt looks it up before uploading again.
            wait = retry_after_seconds(resp.headers.get("Retry-After"), self.clock.now())
            said = f"{status} {code}: {message}" if code else f"HTTP {status}"
            return Temporary(
                f"WordPress answered {said} to the upload of {media.name}", retry_after=wait, **kw
            )
        return self._failure(resp, f"the upload of {what}")

    def _failure(self, resp: httpx.Response, what: str) -> ChannelError:
        return site_failure(
            resp,
            base=self.base,
            username=self.username,
            now=self.clock.now(),
            needs="upload_files, e.g. Author or Editor",
            what=what,
        )
