"""A WordPress site's REST API, the posts and media parts (platform-apis.md §3).

Paths are relative to the site root (``/wp-json/wp/v2/...``, or ``/?rest_route=/wp/v2/...``).
Application passwords over Basic auth; ``rest_authorization_required_code()``: 401 when nobody
is logged in, 403 when the user lacks the capability. Slugs are sanitised and made unique with
``-2``, ``-3``… like ``wp_unique_post_slug`` (an attachment's against every post and file).

Media (§3.5, core's attachments controller): uploads as a raw body (``Content-Type``,
``Content-Disposition: attachment; filename="…"``) or multipart (field ``file``), with ``slug``,
``title``, ``alt_text`` and ``caption`` as parameters; the slug defaults to the file name's stem.
The files are served under ``/wp-content/uploads/``. A post's ``featured_media`` that names no
attachment is dropped silently, as ``create_item`` ignores ``handle_featured_media``'s result.
``fail_next_uploads`` stores the next uploads and then answers PHP's fatal-error page (500), as
a site that runs out of memory making the smaller sizes of an image does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import math
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from publisher.sandbox import credentials
from tests.imitation.core import Request, Response, json_response, text_response, utcnow

if TYPE_CHECKING:
    from tests.imitation.server import Imitation

STATUSES = ("publish", "future", "draft", "pending", "private")
EDITOR = {"edit_posts", "publish_posts", "edit_others_posts", "edit_published_posts", "read"}
EDITOR |= {"upload_files"}
CONTRIBUTOR = {"edit_posts", "read"}


@dataclass
class User:
    id: int
    login: str
    name: str
    role: str
    caps: set[str]
    password: str  # an application password, compared without its spaces


@dataclass
class WPPost:
    id: int
    slug: str
    status: str
    title: str
    content: str
    excerpt: str
    author: int
    date_gmt: datetime
    modified_gmt: datetime
    categories: list[int]
    featured_media: int = 0


@dataclass
class WPMedia:
    id: int
    slug: str
    file: str  # the stored file's name, unique among the site's files
    mime: str
    data: bytes = field(repr=False)
    title: str
    alt_text: str
    caption: str
    author: int
    date_gmt: datetime
    width: int = 0
    height: int = 0


# What WordPress takes (by the file's real type, sniffed as wp_check_filetype_and_ext does).
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
EXTENSIONS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "jpe": "image/jpeg", "png": "image/png"}
EXTENSIONS |= {"gif": "image/gif", "webp": "image/webp"}


def sniff(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or JPEG (0, 0 when they cannot be read)."""
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    i = 2
    while data.startswith(b"\xff\xd8") and i + 9 < len(data):
        if data[i] != 0xFF:
            break
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                data[i + 5 : i + 7], "big"
            )
        i += 2 + length
    return 0, 0


def disposition_filename(value: str) -> str:
    """``get_filename_from_disposition``: the ``filename`` parameter, quotes removed."""
    match = re.search(r"filename\*?=\s*(\"[^\"]*\"|[^;\s]+)", value, re.IGNORECASE)
    if not match:
        return ""
    name = match.group(1).strip('"')
    return name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]


def wp_error(status: int, code: str, message: str, **data: Any) -> Response:
    return json_response(
        status, {"code": code, "message": message, "data": {"status": status, **data}}
    )


def remove_accents(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def sanitize_title(text: str) -> str:
    """``sanitize_title_with_dashes`` for what matters here: accents off, lower case, dashes."""
    text = re.sub(r"<[^>]*>", "", remove_accents(text)).lower()
    text = re.sub(r"[^a-z0-9_\-]+", "-", text)
    return re.sub(r"-+", "-", text).strip("-")[:200]


class WordPress:
    name = "wordpress"

    def __init__(self, env: Imitation) -> None:
        self.env = env
        password = credentials.WORDPRESS_PASSWORD
        self.users = {
            credentials.WORDPRESS_USER: User(
                1, credentials.WORDPRESS_USER, "Ban biên tập", "editor", EDITOR, password
            ),
            credentials.WORDPRESS_CONTRIBUTOR: User(
                2,
                credentials.WORDPRESS_CONTRIBUTOR,
                "Cộng tác viên",
                "contributor",
                CONTRIBUTOR,
                password,
            ),
            "subscriber": User(3, "subscriber", "Bạn đọc", "subscriber", {"read"}, password),
        }
        self.posts: dict[int, WPPost] = {}
        self.media: dict[int, WPMedia] = {}
        self.fail_next_uploads = 0  # store the next N uploads, then answer PHP's fatal 500
        self.fileupload_maxk: int | None = None  # multisite's per-file limit in KB, if set
        self._n = 100
        self._lock = threading.Lock()

    # -- the fault hooks -----------------------------------------------------------------------

    def throttles(self, req: Request) -> bool:
        return True

    def expire_token(self, req: Request) -> bool:
        return False

    def expire_all(self) -> int:
        return 0

    def server_error(self, req: Request) -> Response:
        if self.env.dice.choice("wp-5xx", self.name, req, [500, 503]) == 500:
            return text_response(
                500, "<p>There has been a critical error on this website.</p>"
            )  # PHP's fatal-error page
        answer = text_response(503, "<h1>Service Unavailable</h1>")
        answer.headers["Retry-After"] = "1"
        return answer

    def throttled(self, req: Request, seconds: float) -> Response:
        wait = max(1, math.ceil(seconds))
        answer = text_response(429, "<h1>429 Too Many Requests</h1>")  # a host's limiter
        answer.headers["Retry-After"] = str(wait)
        answer.headers["X-Imitation-Hint"] = str(wait)
        return answer

    # -- requests --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.path.startswith("/wp-content/uploads/") and req.method in ("GET", "HEAD"):
            return self._file(req.path.removeprefix("/wp-content/uploads/"))
        route = req.path.rstrip("/") or "/"
        if route == "" or route == "/":
            route = "/wp-json" + (req.q("rest_route") or "/")
        if not route.startswith("/wp-json"):
            return text_response(404, "<h1>Not Found</h1>")
        route = route.removeprefix("/wp-json").rstrip("/") or "/"
        user, refusal = self._login(req)
        if refusal is not None:
            refusal.headers["X-Imitation-Refused"] = "1"
            return refusal
        with self._lock:
            return self._route(req, route, user)

    def _route(self, req: Request, route: str, user: User | None) -> Response:
        if route == "/" and req.method == "GET":
            return json_response(
                200,
                {"name": "Cổng TTĐT (imitation)", "namespaces": ["wp/v2"], "url": self._site(req)},
            )
        if route == "/wp/v2/users/me" and req.method == "GET":
            if user is None:
                return wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
            me: dict[str, Any] = {"id": user.id, "name": user.name, "slug": user.login}
            if req.q("context") == "edit":
                me["roles"] = [user.role]
                # as core: the user's allcaps, which lists what they have, never what they lack
                me["capabilities"] = {c: True for c in sorted(user.caps)}
            return json_response(200, me)
        if route == "/wp/v2/posts":
            if req.method == "GET":
                return self._list(req, user)
            if req.method == "POST":
                return self._create(req, user)
        match = re.fullmatch(r"/wp/v2/posts/(\d+)", route)
        if match:
            post = self.posts.get(int(match.group(1)))
            if post is None:
                return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
            if req.method == "GET":
                if post.status != "publish" and (user is None or "edit_posts" not in user.caps):
                    return wp_error(401, "rest_forbidden", "Sorry, you are not allowed to do that.")
                return json_response(200, self._shape(post, req, edit=user is not None))
            if req.method == "DELETE":
                return self._delete(post, req, user)
            if req.method in ("POST", "PUT", "PATCH"):
                return self._update_post(post, req, user)
        if route.startswith("/wp/v2/media"):
            return self._media_route(req, route, user)
        return wp_error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _login(self, req: Request) -> tuple[User | None, Response | None]:
        auth = req.header("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return None, None  # anonymous: WordPress decides per route
        try:
            login, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, wp_error(401, "rest_not_logged_in", "You are not currently logged in.")
        user = self.users.get(login)
        if user is None:
            return None, wp_error(
                401, "invalid_username", "Unknown username. Check again or try your email address."
            )
        stripped = re.sub(r"[^A-Za-z0-9]", "", password)
        if self.env.plan.flag(self.name, "bad-credentials") or stripped != re.sub(
            r"[^A-Za-z0-9]", "", user.password
        ):
            return None, wp_error(
                401,
                "incorrect_password",
                "The provided password is an invalid application password.",
            )
        return user, None

    def _list(self, req: Request, user: User | None) -> Response:
        can_edit = user is not None and "edit_posts" in user.caps
        if req.q("context") == "edit" and not can_edit:
            return wp_error(
                401 if user is None else 403,
                "rest_forbidden_context",
                "Sorry, you are not allowed to edit posts in this post type.",
            )
        statuses = [s for s in (req.q("status") or "publish").split(",") if s]
        for s in statuses:
            if s not in (*STATUSES, "trash", "any"):
                return wp_error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): status",
                    params={
                        "status": f"status[0] is not one of {', '.join(STATUSES)}, trash, and any."
                    },
                )
        if any(s != "publish" for s in statuses) and not can_edit:
            return wp_error(
                401 if user is None else 403, "rest_forbidden_status", "Status is forbidden."
            )
        try:
            per_page, page = int(req.q("per_page") or 10), int(req.q("page") or 1)
        except ValueError:
            return wp_error(400, "rest_invalid_param", "Invalid parameter(s): per_page, page")
        if not 1 <= per_page <= 100 or page < 1:
            return wp_error(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): per_page",
                params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
            )
        slugs = {s for s in (req.q("slug") or "").split(",") if s}
        wanted = (set(STATUSES) if "any" in statuses else set()) | set(statuses) - {"any"}
        rows = [
            p
            for p in sorted(self.posts.values(), key=lambda p: (p.date_gmt, p.id), reverse=True)
            if p.status in wanted
            and (not slugs or p.slug in slugs)
            and p.status != "auto-draft"
            and ("trash" in statuses or p.status != "trash")
        ]
        total = len(rows)
        pages = max(1, math.ceil(total / per_page))
        if page > pages and total:
            return wp_error(
                400,
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            )
        chunk = rows[(page - 1) * per_page : page * per_page]
        body = [self._shape(p, req, edit=req.q("context") == "edit") for p in chunk]
        answer = json_response(200, body, {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)})
        if page < pages:
            answer.headers["Link"] = (
                f'<{self._site(req)}/wp-json/wp/v2/posts?page={page + 1}>; rel="next"'
            )
        return answer

    def _create(self, req: Request, user: User | None) -> Response:
        if user is None or "edit_posts" not in user.caps:
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_create",
                "Sorry, you are not allowed to create posts as this user.",
            )
        p = req.form()
        if "id" in p:
            return wp_error(400, "rest_post_exists", "Cannot create existing post.")
        status = str(p.get("status") or "draft")
        if status not in STATUSES:
            return wp_error(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): status",
                params={"status": f"status is not one of {', '.join(STATUSES)}."},
            )
        if status in ("publish", "future", "private") and "publish_posts" not in user.caps:
            return wp_error(
                403,
                "rest_cannot_publish",
                "Sorry, you are not allowed to publish posts in this post type.",
            )
        now = utcnow().replace(microsecond=0)
        when = now
        raw_date = p.get("date_gmt")
        if raw_date:
            try:
                when = datetime.fromisoformat(str(raw_date).removesuffix("Z")).replace(tzinfo=UTC)
            except ValueError:
                return wp_error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): date_gmt",
                    params={"date_gmt": "Invalid date."},
                )
        if status == "publish" and when > now + timedelta(seconds=60):
            status = "future"
        elif status == "future" and when <= now + timedelta(seconds=60):
            status = "publish"
        categories = p.get("categories") or [1]
        if not isinstance(categories, list) or not all(
            isinstance(c, int) and c > 0 for c in categories
        ):
            return wp_error(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): categories",
                params={"categories": "categories[0] is not of type integer."},
            )
        title, content, excerpt = (_raw(p.get(k)) for k in ("title", "content", "excerpt"))
        slug = sanitize_title(str(p.get("slug") or "")) or (
            sanitize_title(title) if status in ("publish", "future") else ""
        )
        if slug:
            slug = self._unique(slug)
        self._n += 1
        post = WPPost(
            self._n, slug, status, title, content, excerpt, user.id, when, now, categories
        )
        post.featured_media = self._featured(p.get("featured_media"))
        self.posts[post.id] = post
        self.env.recorder.created(
            self.name,
            "site",
            str(post.id),
            title=title,
            text=content,
            kind="post",
            slug=slug,
            status=status,
            asked_slug=str(p.get("slug") or ""),
        )
        answer = json_response(
            201,
            self._shape(post, req, edit=True),
            {"Location": f"{self._site(req)}/wp-json/wp/v2/posts/{post.id}"},
        )
        answer.created = True
        return answer

    def _delete(self, post: WPPost, req: Request, user: User | None) -> Response:
        if user is None or "edit_posts" not in user.caps:
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_delete",
                "Sorry, you are not allowed to delete this post.",
            )
        force = (req.q("force") or "").lower() in ("true", "1")
        if force:
            previous = self._shape(post, req, edit=True)
            del self.posts[post.id]
            self.env.recorder.deleted(self.name, "site", str(post.id))
            return json_response(200, {"deleted": True, "previous": previous})
        if post.status == "trash":
            return wp_error(410, "rest_already_trashed", "The post has already been deleted.")
        post.status, post.slug = "trash", f"{post.slug}__trashed"
        self.env.recorder.deleted(self.name, "site", str(post.id))
        return json_response(200, self._shape(post, req, edit=True))

    def _featured(self, value: Any) -> int:
        """``featured_media`` as WordPress keeps it: an attachment's id, else 0 (no error)."""
        try:
            wanted = int(value or 0)
        except (TypeError, ValueError):
            return 0
        return wanted if wanted in self.media else 0

    def _update_post(self, post: WPPost, req: Request, user: User | None) -> Response:
        if user is None or "edit_posts" not in user.caps:
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_edit",
                "Sorry, you are not allowed to edit this post.",
            )
        p = req.form()
        if "featured_media" in p:
            post.featured_media = self._featured(p["featured_media"])
        for key in ("title", "content", "excerpt"):
            if key in p:
                setattr(post, key, _raw(p[key]))
        post.modified_gmt = utcnow().replace(microsecond=0)
        return json_response(200, self._shape(post, req, edit=True))

    def _unique(self, slug: str, *, media: bool = False) -> str:
        taken = {p.slug for p in self.posts.values()}
        if media:  # an attachment's slug is unique among every post type
            taken |= {m.slug for m in self.media.values()}
        if slug not in taken:
            return slug
        n = 2
        while f"{slug[: 200 - len(str(n)) - 1]}-{n}" in taken:
            n += 1
        return f"{slug[: 200 - len(str(n)) - 1]}-{n}"

    # -- media ---------------------------------------------------------------------------------

    def _media_route(self, req: Request, route: str, user: User | None) -> Response:
        if route == "/wp/v2/media":
            if req.method == "GET":
                return self._media_list(req, user)
            if req.method == "POST":
                return self._upload(req, user)
        match = re.fullmatch(r"/wp/v2/media/(\d+)", route)
        if match:
            item = self.media.get(int(match.group(1)))
            if item is None:
                return wp_error(404, "rest_post_invalid_id", "Invalid post ID.")
            if req.method == "GET":
                return json_response(200, self._media_shape(item, req, edit=user is not None))
            if req.method in ("POST", "PUT", "PATCH"):
                return self._media_update(item, req, user)
            if req.method == "DELETE":
                return self._media_delete(item, req, user)
        return wp_error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _media_list(self, req: Request, user: User | None) -> Response:
        if req.q("context") == "edit" and (user is None or "edit_posts" not in user.caps):
            return wp_error(
                401 if user is None else 403,
                "rest_forbidden_context",
                "Sorry, you are not allowed to edit posts in this post type.",
            )
        try:
            per_page = int(req.q("per_page") or 10)
        except ValueError:
            per_page = 0
        if not 1 <= per_page <= 100:
            return wp_error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        slugs = {s for s in (req.q("slug") or "").split(",") if s}
        rows = [
            m
            for m in sorted(self.media.values(), key=lambda m: (m.date_gmt, m.id), reverse=True)
            if not slugs or m.slug in slugs
        ]
        body = [self._media_shape(m, req, edit=req.q("context") == "edit") for m in rows]
        total = str(len(rows))
        return json_response(200, body[:per_page], {"X-WP-Total": total})

    def _upload(self, req: Request, user: User | None) -> Response:
        if user is None or "upload_files" not in user.caps:
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_create",
                "Sorry, you are not allowed to upload media on this site.",
            )
        got = self._received_file(req)
        if isinstance(got, Response):
            return got
        filename, data, params = got
        real = sniff(data)
        ext = filename.rpartition(".")[2].lower() if "." in filename else ""
        if real not in IMAGE_TYPES or ext not in EXTENSIONS:
            return wp_error(
                500,
                "rest_upload_sideload_error",
                "Sorry, you are not allowed to upload this file type.",
            )
        if self.fileupload_maxk is not None and len(data) > self.fileupload_maxk * 1024:
            return wp_error(
                400,
                "rest_upload_file_too_big",
                f"This file is too big. Files must be less than {self.fileupload_maxk} KB in size.",
            )
        if EXTENSIONS[ext] != real:  # wp_check_filetype_and_ext corrects the extension
            filename = f"{filename.rpartition('.')[0]}.{IMAGE_TYPES[real]}"
        stem = filename.rpartition(".")[0]
        slug = self._unique(sanitize_title(str(params.get("slug") or stem)) or "image", media=True)
        self._n += 1
        width, height = image_size(data)
        item = WPMedia(
            id=self._n,
            slug=slug,
            file=self._free_file(filename),
            mime=real,
            data=data,
            title=_raw(params.get("title")) or stem,
            alt_text=" ".join(str(params.get("alt_text") or "").split()),
            caption=_raw(params.get("caption")),
            author=user.id,
            date_gmt=utcnow().replace(microsecond=0),
            width=width,
            height=height,
        )
        self.media[item.id] = item
        self.env.recorder.created(
            self.name,
            "site",
            str(item.id),
            title=item.title,
            text=item.alt_text,
            kind="media",
            slug=slug,
            file=item.file,
            sha256=hashlib.sha256(data).hexdigest(),
        )
        if self.fail_next_uploads:
            self.fail_next_uploads -= 1
            return text_response(500, "<p>There has been a critical error on this website.</p>")
        answer = json_response(
            201,
            self._media_shape(item, req, edit=True),
            {
                "Location": f"{self._site(req)}/wp-json/wp/v2/media/{item.id}",
                "X-WP-Upload-Attachment-ID": str(item.id),
            },
        )
        answer.created = True
        return answer

    def _received_file(self, req: Request) -> tuple[str, bytes, dict[str, Any]] | Response:
        """The file's name, bytes and the other parameters, from a multipart form (field
        ``file``) or a raw body; or WordPress's refusal."""
        params: dict[str, Any] = {k: v[0] for k, v in req.query.items() if v}
        if req.content_type == "multipart/form-data":
            head = f"Content-Type: {req.header('Content-Type')}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + req.body)
            filename, data = "", b""
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if name == "file" and part.get_filename():
                    filename, data = str(part.get_filename()), payload
                elif isinstance(name, str):
                    params[name] = payload.decode("utf-8", errors="replace")
            if not data:
                return wp_error(400, "rest_upload_no_data", "No data supplied.")
            return filename, data, params
        if not req.body:
            return wp_error(400, "rest_upload_no_data", "No data supplied.")
        if not req.header("Content-Type"):
            return wp_error(400, "rest_upload_no_content_type", "No Content-Type supplied.")
        disposition = req.header("Content-Disposition")
        if not disposition:
            return wp_error(
                400, "rest_upload_no_content_disposition", "No Content-Disposition supplied."
            )
        filename = disposition_filename(disposition)
        if not filename:
            return wp_error(
                400,
                "rest_upload_invalid_disposition",
                "Invalid Content-Disposition supplied. Content-Disposition needs to be "
                'formatted as `attachment; filename="image.png"` or similar.',
            )
        return filename, req.body, params

    def _free_file(self, filename: str) -> str:
        """``wp_unique_filename`` in one folder: ``name.jpg``, ``name-1.jpg``…"""
        taken = {m.file for m in self.media.values()}
        stem, _, ext = filename.rpartition(".")
        name, n = filename, 0
        while name in taken:
            n += 1
            name = f"{stem}-{n}.{ext}"
        return name

    def _media_update(self, item: WPMedia, req: Request, user: User | None) -> Response:
        mine = user is not None and user.id == item.author
        if user is None or not (mine or "edit_others_posts" in user.caps):
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_edit",
                "Sorry, you are not allowed to edit this post.",
            )
        p = req.form()
        if "alt_text" in p:
            item.alt_text = " ".join(str(p["alt_text"]).split())  # sanitize_text_field
        if "caption" in p:
            item.caption = _raw(p["caption"])
        if "title" in p:
            item.title = _raw(p["title"])
        return json_response(200, self._media_shape(item, req, edit=True))

    def _media_delete(self, item: WPMedia, req: Request, user: User | None) -> Response:
        if user is None or ("edit_others_posts" not in user.caps and user.id != item.author):
            return wp_error(
                401 if user is None else 403,
                "rest_cannot_delete",
                "Sorry, you are not allowed to delete this post.",
            )
        if (req.q("force") or "").lower() not in ("true", "1"):
            return wp_error(
                501,
                "rest_trash_not_supported",
                "The post does not support trashing. Set 'force=true' to delete.",
            )
        previous = self._media_shape(item, req, edit=True)
        del self.media[item.id]
        for post in self.posts.values():
            if post.featured_media == item.id:
                post.featured_media = 0
        self.env.recorder.deleted(self.name, "site", str(item.id))
        return json_response(200, {"deleted": True, "previous": previous})

    def _media_shape(self, item: WPMedia, req: Request, *, edit: bool) -> dict[str, Any]:
        url = f"{self._site(req)}/wp-content/uploads/{item.date_gmt:%Y/%m}/{item.file}"
        out: dict[str, Any] = {
            "id": item.id,
            "date_gmt": item.date_gmt.strftime("%Y-%m-%dT%H:%M:%S"),
            "slug": item.slug,
            "status": "inherit",
            "type": "attachment",
            "link": f"{self._site(req)}/{item.slug}/",
            "title": {"rendered": html.escape(item.title, quote=False)},
            "author": item.author,
            "alt_text": item.alt_text,
            "caption": {"rendered": f"<p>{item.caption}</p>\n" if item.caption else ""},
            "media_type": "image",
            "mime_type": item.mime,
            "media_details": {
                "width": item.width,
                "height": item.height,
                "file": item.file,
                "filesize": len(item.data),
            },
            "source_url": url,
        }
        if edit:
            out["title"]["raw"] = item.title
            out["caption"]["raw"] = item.caption
        wanted = req.q("_fields")
        if wanted:
            keep = {f.strip() for f in wanted.split(",")}
            out = {k: v for k, v in out.items() if k in keep}
        return out

    def _file(self, rest: str) -> Response:
        """A stored file, by ``YYYY/MM/name``."""
        name = rest.rsplit("/", 1)[-1]
        with self._lock:
            item = next((m for m in self.media.values() if m.file == name), None)
        if item is None or rest != f"{item.date_gmt:%Y/%m}/{name}":
            return text_response(404, "<h1>Not Found</h1>")
        return Response(200, item.data, {"Content-Type": item.mime})

    def _site(self, req: Request) -> str:
        return f"{req.host_base()}/wordpress"

    def _shape(self, post: WPPost, req: Request, *, edit: bool) -> dict[str, Any]:
        link = (
            f"{self._site(req)}/{post.slug}/"
            if post.status == "publish"
            else f"{self._site(req)}/?p={post.id}"
        )
        date = post.date_gmt.strftime("%Y-%m-%dT%H:%M:%S")
        local = (post.date_gmt + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S")
        out: dict[str, Any] = {
            "id": post.id,
            "date": local,
            "date_gmt": date,
            "guid": {"rendered": f"{self._site(req)}/?p={post.id}"},
            "modified": local,
            "modified_gmt": post.modified_gmt.strftime("%Y-%m-%dT%H:%M:%S"),
            "slug": post.slug,
            "status": post.status,
            "type": "post",
            "link": link,
            "title": {"rendered": post.title},
            "content": {"rendered": post.content, "protected": False},
            "excerpt": {"rendered": post.excerpt, "protected": False},
            "author": post.author,
            "categories": post.categories,
            "tags": [],
            "featured_media": post.featured_media,
        }
        if edit:
            out["title"]["raw"] = post.title
            out["content"]["raw"] = post.content
            out["excerpt"]["raw"] = post.excerpt
            out["generated_slug"] = sanitize_title(post.title)
        wanted = req.q("_fields")
        if wanted:
            keep = {f.strip() for f in wanted.split(",")}
            out = {k: v for k, v in out.items() if k in keep}
        return out


def _raw(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("raw", "")
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else ""
