"""Facebook Graph API, the part a Page publisher uses (platform-apis.md §1).

Any ``/vN.0`` prefix (or none). The token may come as ``Authorization: Bearer``, the
``access_token`` query parameter or form field. Errors use Graph's envelope; throttling answers
carry ``X-Business-Use-Case-Usage`` with ``estimated_time_to_regain_access`` (minutes).

Photos, as developers.facebook.com/docs/graph-api/photo-uploads and …/reference/page/photos
describe them: ``POST /{page}/photos`` takes the picture as a multipart file ``source`` or as
``url``, with ``caption`` and ``alt_text_custom``; JPEG, BMP, PNG, GIF or TIFF (Meta recommends
under 4 MB, PNG under 1 MB; no hard limit is documented, so none is enforced here). A published
photo is a post: ``{"id": photo, "post_id": post}``. With ``published=false`` (and no schedule)
it is only an unpublished photo, no post, no story: ``{"id": photo}``; a feed post attaches
such photos with ``attached_media[i]={"media_fbid":"<photo id>"}`` form fields (or one JSON
array in ``attached_media``). Unpublished photos are kept apart from posts and are not in the
record, which lists what followers see. A photo some post already shows cannot be attached
again (an assumption: the documentation does not say).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from publisher.sandbox import credentials
from tests.imitation.core import Request, Response, json_response, utcnow

if TYPE_CHECKING:
    from tests.imitation.server import Imitation

VERSION = re.compile(r"v\d+\.0")
MESSAGE_LIMIT = 63206
ATTACHED = re.compile(r"attached_media\[(\d+)\]")
# The formats photo-uploads names, by their first bytes.
IMAGE_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)
PHOTO_FIELDS = {"id", "alt_text_custom", "created_time", "name", "page_story_id", "link"}
DEFAULT_PAGES = {"100000000000000": "Trang Facebook Sở Tư pháp (imitation)"}
POST_FIELDS = {
    "id",
    "message",
    "created_time",
    "permalink_url",
    "is_published",
    "scheduled_publish_time",
    "status_type",
    "link",
    "full_picture",
}
PAGE_FIELDS = {"id", "name", "category", "link", "fan_count"}
THROTTLES = [
    (4, "(#4) Application request limit reached", True),
    (17, "(#17) User request limit reached", True),
    (32, "(#32) Page request limit reached", False),
    (613, "(#613) Calls to this api have exceeded the rate limit.", False),
]
SESSION_INVALIDATED = (
    "Error validating access token: The session has been invalidated because the user changed "
    "their password or Facebook has changed the session for security reasons."
)


@dataclass
class Post:
    id: str
    page: str
    message: str
    created: datetime
    kind: str  # feed | photo
    link: str = ""
    image: str = ""
    photo_id: str = ""
    published: bool = True
    scheduled: int | None = None
    deleted: bool = False
    photos: tuple[Photo, ...] = ()  # the pictures shown, in order (a photo post: its own)


@dataclass
class Photo:
    id: str
    page: str
    created: datetime
    url: str = ""  # the address it was fetched from, or "" for an uploaded file
    sha256: str = ""  # of the uploaded file
    size: int = 0
    alt: str = ""  # alt_text_custom
    post: str = ""  # the post showing it; "" while unpublished and unattached

    def shown(self) -> str:
        """An address for the picture (the imitation serves no files)."""
        return self.url or f"https://fbcdn.imitation.invalid/{self.id}.jpg"

    def record(self) -> dict[str, Any]:
        return {
            "photo_id": self.id,
            "url": self.url,
            "sha256": self.sha256,
            "bytes": self.size,
            "alt": self.alt,
        }


def error(
    status: int, code: int, message: str, subcode: int | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        body["error_subcode"] = subcode
    body.update(extra)
    body["fbtrace_id"] = "A" + secrets.token_urlsafe(8)
    return json_response(status, {"error": body})


class Facebook:
    name = "facebook"

    def __init__(self, env: Imitation, pages: dict[str, str] | None) -> None:
        self.env = env
        self.pages = dict(pages or DEFAULT_PAGES)
        self.tokens = {credentials.FACEBOOK_PAGE_TOKEN: set(self.pages)}
        self.posts: dict[str, Post] = {}  # page-post id (and a photo post's photo id) → post
        self.photos: dict[str, Photo] = {}  # photo id → photo (published or not)
        self.order: list[Post] = []  # oldest first
        self.calls: list[float] = []  # monotonic-free: UNIX times of recent calls, for usage
        self._n = 0
        self._lock = threading.Lock()

    # -- the fault hooks -----------------------------------------------------------------------

    def throttles(self, req: Request) -> bool:
        return True

    def expire_token(self, req: Request) -> bool:
        return False  # Page tokens do not expire on a timer

    def expire_all(self) -> int:
        return 0

    def server_error(self, req: Request) -> Response:
        if self.env.dice.choice("fb-5xx", self.name, req, [1, 2]) == 1:
            return error(500, 1, "An unknown error has occurred.", is_transient=True)
        return error(
            500,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            is_transient=True,
        )

    def throttled(self, req: Request, seconds: float) -> Response:
        code, text, transient = self.env.dice.choice("fb-throttle", self.name, req, THROTTLES)
        minutes = max(1, math.ceil(seconds / 60))
        answer = error(400, code, text, is_transient=transient)
        answer.headers.update(self._usage(self._page_of(req), 100, minutes))
        answer.headers["X-Imitation-Hint"] = str(minutes * 60)
        return answer

    # -- requests --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if parts and VERSION.fullmatch(parts[0]):
            parts = parts[1:]
        params = {k: v[0] for k, v in req.query.items()}
        files: dict[str, bytes] = {}
        if req.method == "POST":
            for k, v in req.form().items():
                if isinstance(v, str):
                    params[k] = v
                elif isinstance(v, bytes):
                    files[k] = v
        token = _token(req, params)
        if token is None:
            return error(400, 104, "An access token is required to request this resource.")
        if self.env.plan.flag(self.name, "bad-credentials"):
            return _refused(error(400, 190, SESSION_INVALIDATED, 460))
        pages = self.tokens.get(token)
        if pages is None:
            return _refused(
                error(400, 190, "Invalid OAuth access token - Cannot parse access token")
            )
        with self._lock:
            self.calls = [t for t in self.calls if t > utcnow().timestamp() - 3600] + [
                utcnow().timestamp()
            ]
            answer = self._route(req.method, parts, params, pages, req, files)
        answer.headers.update(self._usage(self._page_of(req), self._percent(), 0))
        return answer

    def _route(
        self,
        method: str,
        parts: list[str],
        params: dict[str, str],
        pages: set[str],
        req: Request,
        files: dict[str, bytes],
    ) -> Response:
        if not parts:
            return error(400, 100, "(#100) Missing node id")
        node = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return self._read(node, params, pages)
            if method == "DELETE":
                return self._delete(node, pages)
            return _unsupported(method, node)
        edge = parts[1]
        if len(parts) > 2 or node not in self.pages:
            if node not in self.pages:
                return _unsupported(method, node)
            return error(400, 2500, f"Unknown path components: /{'/'.join(parts[1:])}")
        if node not in pages:
            return error(
                403, 200, "(#200) The user hasn't authorized the application to perform this action"
            )
        if method == "POST" and edge in ("feed", "photos"):
            return self._create(node, edge, params, files.get("source"))
        if method == "GET" and edge in ("published_posts", "feed", "scheduled_posts"):
            return self._list(node, edge, params, req)
        return _unsupported(method, f"{node}/{edge}")

    def _create(self, page: str, edge: str, p: dict[str, str], source: bytes | None) -> Response:
        text = unicodedata.normalize("NFC", p.get("caption") or p.get("message") or "")
        if len(text) > MESSAGE_LIMIT:
            return error(
                400, 100, f"(#100) Param message must be at most {MESSAGE_LIMIT} characters"
            )
        published = (p.get("published") or "true").lower() not in ("false", "0")
        scheduled = p.get("scheduled_publish_time")
        when: int | None = None
        if scheduled:
            if published:
                return error(
                    400,
                    100,
                    "(#100) You cannot specify a scheduled publish time on a published post",
                )
            when = _timestamp(scheduled)
            now = utcnow().timestamp()
            if when is None or not now + 600 <= when <= now + 30 * 86400:
                return error(400, 100, "(#100) The specified scheduled publish time is invalid.")
        link = p.get("link", "")
        photo: Photo | None = None
        attached: list[Photo] = []
        if edge == "photos":
            made = self._photo(page, p, source)
            if isinstance(made, Response):
                return made
            photo = made
        else:
            found = self._attached(page, p)
            if isinstance(found, Response):
                return found
            attached = found
            if not text and not link and not attached:
                return error(400, 100, "(#100) Missing message or attachment")
        if link and not _is_url(link):
            return error(400, 100, "(#100) The parameter link is not a valid URL")
        refused = self._refusal(page, text)
        if refused is not None:
            return refused
        self._n += 1
        if photo is not None:
            photo.id = f"{121000000000000000 + self._n}"
            self.photos[photo.id] = photo
            if not published and when is None:  # an unpublished photo: no post, no story
                answer = json_response(200, {"id": photo.id})
                answer.created = True  # its answer may be lost like any other
                return answer
        post = Post(
            id=f"{page}_{122000000000000000 + self._n}",
            page=page,
            message=text,
            created=utcnow(),
            kind="photo" if photo is not None else "feed",
            link=link,
            image=photo.url if photo is not None else "",
            photo_id=photo.id if photo is not None else "",
            published=published,
            scheduled=when,
            photos=(photo,) if photo is not None else tuple(attached),
        )
        return self._store(post)

    def _photo(self, page: str, p: dict[str, str], source: bytes | None) -> Photo | Response:
        """The picture of a ``/photos`` call (its id is given once the call is accepted)."""
        alt = unicodedata.normalize("NFC", p.get("alt_text_custom", ""))
        now = utcnow()
        if source is not None:
            if not source.startswith(IMAGE_MAGIC):
                return error(400, 324, "(#324) Missing or invalid image file")
            digest = hashlib.sha256(source).hexdigest()
            return Photo("", page, now, sha256=digest, size=len(source), alt=alt)
        url = p.get("url", "")
        if not url:
            return error(400, 324, "(#324) Requires upload file")
        if not _is_url(url):
            return error(400, 100, "(#100) url should represent a valid URL")
        return Photo("", page, now, url=url, alt=alt)

    def _attached(self, page: str, p: dict[str, str]) -> list[Photo] | Response:
        """The unpublished photos a feed post attaches, in order."""
        given: list[tuple[int, str]] = []
        for key, value in p.items():
            match = ATTACHED.fullmatch(key)
            if match:
                given.append((int(match.group(1)), value))
        if "attached_media" in p:
            try:
                items = json.loads(p["attached_media"])
            except ValueError:
                items = None
            if not isinstance(items, list):
                return error(400, 100, "(#100) param attached_media must be an array.")
            given += [(n, json.dumps(item)) for n, item in enumerate(items)]
        photos: list[Photo] = []
        for n, raw in sorted(given):
            try:
                item = json.loads(raw)
            except ValueError:
                item = None
            fbid = item.get("media_fbid") if isinstance(item, dict) else None
            photo = self.photos.get(str(fbid)) if fbid is not None else None
            if photo is None or photo.page != page or photo.post:
                return error(
                    400,
                    100,
                    f"(#100) attached_media[{n}]: media_fbid must be an unpublished photo of "
                    "this Page",
                )
            photos.append(photo)
        return photos

    def _refusal(self, page: str, text: str) -> Response | None:
        if self.env.plan.flag(self.name, "policy-368"):
            return error(
                400,
                368,
                "It looks like you were misusing this feature by going too fast. You've been "
                "temporarily blocked from using it.",
                error_user_title="You're Temporarily Blocked",
            )
        if self.env.plan.flag(self.name, "duplicate-506") and any(
            q.page == page
            and q.message == text
            and not q.deleted
            and q.created > utcnow() - timedelta(days=1)
            for q in self.order
        ):
            return error(400, 506, "(#506) Duplicate status message")
        return None

    def _store(self, post: Post) -> Response:
        self.posts[post.id] = post
        if post.photo_id:
            self.posts[post.photo_id] = post
        for photo in post.photos:
            photo.post = post.id
        self.order.append(post)
        kind = post.kind if post.published else ("scheduled" if post.scheduled else "unpublished")
        self.env.recorder.created(
            self.name,
            post.page,
            post.id,
            title="",
            text=post.message,
            kind=kind,
            link=post.link,
            image=post.photos[0].url if post.photos else "",
            images=[photo.record() for photo in post.photos],
        )
        body = {"id": post.photo_id, "post_id": post.id} if post.photo_id else {"id": post.id}
        answer = json_response(200, body)
        answer.created = True
        return answer

    def _list(self, page: str, edge: str, p: dict[str, str], req: Request) -> Response:
        fields = _fields(p.get("fields"), {"id", "message", "created_time"})
        unknown = fields - POST_FIELDS
        if unknown:
            return error(
                400,
                100,
                f"(#100) Tried accessing nonexisting field ({min(unknown)}) on node type (PagePost)",
            )
        since, until = _timestamp(p.get("since") or "0"), _timestamp(p.get("until") or "")
        if since is None or (p.get("until") and until is None):
            return error(400, 100, "(#100) since and until must be UNIX times or dates")
        try:
            limit = min(100, max(1, int(p.get("limit") or 25)))
        except ValueError:
            return error(400, 100, "(#100) limit must be an integer")
        rows = [
            q
            for q in reversed(self.order)
            if q.page == page
            and not q.deleted
            and (q.scheduled is not None) == (edge == "scheduled_posts")
            and (q.published or edge != "published_posts")
            and q.created.timestamp() >= since
            and (until is None or q.created.timestamp() <= until)
        ]
        start = 0
        after = p.get("after")
        if after:
            anchor = _uncursor(after)
            ids = [q.id for q in rows]
            start = ids.index(anchor) + 1 if anchor in ids else len(rows)
        chunk = rows[start : start + limit]
        body: dict[str, Any] = {"data": [self._shape(q, fields) for q in chunk]}
        if chunk:
            paging: dict[str, Any] = {
                "cursors": {"before": _cursor(chunk[0].id), "after": _cursor(chunk[-1].id)}
            }
            if start + limit < len(rows):
                query = {k: v for k, v in p.items() if k != "after"}
                query["access_token"] = _token(req, p) or ""  # Graph puts the token in paging URLs
                query["after"] = _cursor(chunk[-1].id)
                path = urlsplit(req.full_path).path
                paging["next"] = f"{req.host_base()}{path}?{urlencode(query)}"
            body["paging"] = paging
        return json_response(200, body)

    def _read(self, node: str, p: dict[str, str], pages: set[str]) -> Response:
        if node in self.pages:
            fields = _fields(p.get("fields"), {"id", "name"})
            if fields - PAGE_FIELDS:
                bad = min(fields - PAGE_FIELDS)
                return error(
                    400,
                    100,
                    f"(#100) Tried accessing nonexisting field ({bad}) on node type (Page)",
                )
            values = {"id": node, "name": self.pages[node], "category": "Government organization"}
            values["link"] = f"https://www.facebook.com/{node}"
            values["fan_count"] = 1200
            return json_response(200, {k: values[k] for k in fields if k in values})
        post = self.posts.get(node)
        if post is None and node in self.photos and self.photos[node].page in pages:
            return self._read_photo(self.photos[node], p)
        if post is None or post.deleted or post.page not in pages:
            return _unsupported("GET", node)
        fields = _fields(p.get("fields"), {"id", "message", "created_time"})
        if fields - POST_FIELDS:
            bad = min(fields - POST_FIELDS)
            return error(
                400,
                100,
                f"(#100) Tried accessing nonexisting field ({bad}) on node type (PagePost)",
            )
        return json_response(200, self._shape(post, fields))

    def _read_photo(self, photo: Photo, p: dict[str, str]) -> Response:
        """A photo that is no post of its own (unpublished, or attached to a feed post)."""
        fields = _fields(p.get("fields"), {"id", "created_time"})
        if fields - PHOTO_FIELDS:
            bad = min(fields - PHOTO_FIELDS)
            return error(
                400, 100, f"(#100) Tried accessing nonexisting field ({bad}) on node type (Photo)"
            )
        values = {
            "id": photo.id,
            "alt_text_custom": photo.alt,
            "created_time": photo.created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "link": f"https://www.facebook.com/photo.php?fbid={photo.id}",
            "page_story_id": photo.post,
        }
        out = {k: v for k, v in values.items() if k in fields and v}
        return json_response(200, {**out, "id": photo.id})  # Graph always names the node

    def _delete(self, node: str, pages: set[str]) -> Response:
        post = self.posts.get(node)
        if post is None or post.deleted or post.page not in pages:
            return _unsupported("DELETE", node)
        post.deleted = True
        self.env.recorder.deleted(self.name, post.page, post.id)
        return json_response(200, {"success": True})

    # -- helpers ---------------------------------------------------------------------------------

    def _shape(self, post: Post, fields: set[str]) -> dict[str, Any]:
        number = post.id.split("_", 1)[1]
        values: dict[str, Any] = {
            "id": post.id,
            "message": post.message,
            "created_time": post.created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "permalink_url": f"https://www.facebook.com/{post.page}/posts/{number}",
            "is_published": post.published,
            "status_type": "added_photos" if post.photos else "mobile_status_update",
            "link": post.link,
            "full_picture": post.photos[0].shown() if post.photos else "",
        }
        if post.scheduled is not None:
            values["scheduled_publish_time"] = post.scheduled
        out = {k: values[k] for k in fields if k in values and values[k] != ""}
        out["id"] = post.id
        return out

    def _page_of(self, req: Request) -> str:
        for part in req.path.split("/"):
            if part in self.pages:
                return part
        return next(iter(self.pages))

    def _percent(self) -> int:
        return min(99, len(self.calls) // 20)  # a few hundred calls an hour stay far from 80 %

    def _usage(self, page: str, percent: int, minutes: int) -> dict[str, str]:
        figures = {"call_count": percent, "total_cputime": percent // 2, "total_time": percent // 2}
        buc = {page: [{"type": "pages", **figures, "estimated_time_to_regain_access": minutes}]}
        return {
            "X-App-Usage": json.dumps(figures),
            "X-Business-Use-Case-Usage": json.dumps(buc),
        }


def _refused(answer: Response) -> Response:
    answer.headers["X-Imitation-Refused"] = "1"
    return answer


def _unsupported(method: str, node: str) -> Response:
    verb = {"GET": "get", "POST": "post", "DELETE": "delete"}.get(method, method.lower())
    return error(
        400,
        100,
        f"Unsupported {verb} request. Object with ID '{node}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation. Please read the Graph API "
        "documentation at https://developers.facebook.com/docs/graph-api",
        33,
    )


def _token(req: Request, params: dict[str, str]) -> str | None:
    auth = req.header("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return params.get("access_token") or None


def _fields(raw: str | None, default: set[str]) -> set[str]:
    if not raw:
        return set(default)
    return {f.strip() for f in raw.split(",") if f.strip()}


def _timestamp(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _cursor(post_id: str) -> str:
    return base64.urlsafe_b64encode(post_id.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
