"""The sandbox's Graph API: Page posts and photos under ``/facebook`` (any ``vN.N`` prefix or none).

Owns Facebook's wire shapes (§1 of platform-apis.md); knows nothing of the other platforms. A photo
is a file (multipart ``source``, decoded: JPEG or PNG, at most 4 MB) or a ``url``: one elsewhere is
taken as given (the sandbox fetches nothing from the network), one on the sandbox is read from its
pictures and checked the same way. ``published=false`` makes an unpublished photo (an id, no post)
that a feed post can show with ``attached_media[i]={"media_fbid": …}``.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from publisher.config.graph_metrics import INVALID_METRIC, accepted
from publisher.sandbox import credentials
from publisher.sandbox.facebook_store import (
    FbPhoto,
    FbPost,
    attached_ids,
    cursor,
    parse_bool,
    parse_time,
    split_fields,
    uncursor,
)
from publisher.sandbox.faults import Fired
from publisher.sandbox.media import LIMITS, Picture, Refusal, inspect
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router, Upload

ROUTE = r"/facebook(?:/(?P<version>v\d+\.\d+))?/(?P<node>[^/]+)(?:/(?P<edge>[^/]+))?/?"
LIST_EDGES = ("published_posts", "feed", "posts", "scheduled_posts")
POST_BASE = 122_000_000_000_000  # post ids look like "<page>_122000000000007"
PHOTO_BASE = 900_000_000_000_000
CALLS_PER_MINUTE = 600  # the budget the usage headers are a percentage of
MESSAGE_LIMIT = 63206  # characters of a post's message or a photo's caption (platform-apis §1.3)
THROTTLE = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try"
    " again.",
}
Headers = list[tuple[str, str]]
INVALID_IMAGE = "(#324) Missing or invalid image file"


class Facebook:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.posts: dict[str, FbPost] = {}
        self.photos: dict[str, FbPhoto] = {}  # photo id → photo (published or not)
        self.seq = 0
        self._trace = random.Random(f"fbtrace-{ctx.seed}")  # noqa: S311 - not security
        self._calls: dict[str, deque[float]] = {}

    def register(self, router: Router) -> None:
        router.add("*", ROUTE, self.handle)
        router.add("*", r"/facebook(?:/.*)?", self.unknown)

    def error(
        self, status: int, code: int, message: str, headers: Headers, **extra: Any
    ) -> Response:
        err = {"message": message, "type": extra.pop("type", "OAuthException"), "code": code}
        err.update(extra)
        err["fbtrace_id"] = "".join(self._trace.choices(string.ascii_letters + string.digits, k=11))
        return Response.json({"error": err}, status, headers)

    def unknown(self, req: Request, _: dict[str, str]) -> Response:
        path = req.path.removeprefix("/facebook")
        return self.error(400, 2500, f"Unknown path components: {path}", [])

    def unsupported(self, req: Request, node: str, headers: Headers) -> Response:
        return self.error(
            400,
            100,
            f"Unsupported {req.method.lower()} request. Object with ID '{node}' does not exist,"
            " cannot be loaded due to missing permissions, or does not support this operation.",
            headers,
            type="GraphMethodException",
            error_subcode=33,
        )

    def handle(self, req: Request, m: dict[str, str]) -> Response:
        params: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
        node, edge = m["node"], m["edge"]
        page = node.split("_")[0]
        headers = self.usage(page, self.count(page))
        files: dict[str, Upload] = {}
        if req.method == "POST":
            try:
                params.update(req.form())
                files = req.files()
            except BadBody as exc:
                return self.error(400, 100, f"(#100) {exc}", headers)
        auth = req.header("authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if (token or params.get("access_token")) != credentials.FACEBOOK_PAGE_TOKEN:
            msg = "Invalid OAuth access token - Cannot parse access token"
            return self.error(400, 190, msg, headers)
        params.pop("access_token", None)
        if not re.fullmatch(r"\d+(_\d+)?", node):
            return self.unsupported(req, node, headers)
        if req.method == "POST" and edge in ("feed", "photos") and "_" not in node:
            return self.create(page, edge, params, files, headers)
        if req.method == "GET" and edge in LIST_EDGES and "_" not in node:
            return self.list(req, page, edge, params, headers)
        photo = self.photos.get(node)
        if photo is not None and not photo.deleted:
            return self.on_photo(req, photo, edge, params, headers)
        post = self.posts.get(node)
        if req.method == "GET" and edge == "insights" and post is not None and not post.deleted:
            return self.read_failed(page, headers) or self.insights(post, m, params, headers)
        if req.method == "GET" and not edge and post is not None and not post.deleted:
            fields = split_fields(params.get("fields"), ("id", "message", "created_time"))
            reach = [f for f in fields if f == "shares" or f.startswith("comments")]
            failed = self.read_failed(page, headers) if reach else None
            if failed is not None:
                return failed
            body = self.post_json(post, fields) | self.reach_fields(post, reach)
            return Response.json(body, 200, headers)
        if req.method == "GET" and not edge and "_" not in node and node not in self.photos:
            values = {"id": node, "name": f"Sandbox Page {node}", "category": "Government"}
            values["link"] = f"{self.ctx.base_url()}/sandbox#facebook"
            fields = split_fields(params.get("fields"), ("id", "name"))
            return Response.json({f: values[f] for f in fields if f in values}, 200, headers)
        if req.method == "DELETE" and not edge and post is not None and not post.deleted:
            post.deleted = True
            return Response.json({"success": True}, 200, headers)
        return self.unsupported(req, node, headers)

    def on_photo(
        self, req: Request, photo: FbPhoto, edge: str, params: dict[str, Any], headers: Headers
    ) -> Response:
        """``GET /{photo-id}`` (the photo node) and ``DELETE /{photo-id}`` (the photo and its
        post)."""
        if req.method == "GET" and not edge:
            fields = split_fields(params.get("fields"), ("id", "created_time", "name"))
            return Response.json(photo.to_json(fields), 200, headers)
        if req.method == "DELETE" and not edge:
            photo.deleted = True
            post = self.posts.get(photo.post_id or "")
            if post is not None and post.images and post.images[0]["id"] == photo.id:
                post.deleted = True
            return Response.json({"success": True}, 200, headers)
        return self.unsupported(req, photo.id, headers)

    # -- figures -------------------------------------------------------------------------------

    def read_failed(self, page: str, headers: Headers) -> Response | None:
        """A ``read-fail`` fault's answer to a read of figures, or None."""
        fired = self.ctx.faults.draw("facebook", "read")
        if "read-fail" not in fired:
            return None
        how = fired.arg("read-fail", "error")
        if how == "throttle":
            return self.error(400, 4, THROTTLE[4], self.usage(page, 100, regain=1))
        if how == "token-expiry":
            msg = "Error validating access token: Session has expired on Monday, 20-May-24."
            return self.error(400, 190, msg, headers, error_subcode=463)
        return self.error(500, 2, "Service temporarily unavailable", headers, is_transient=True)

    def figures(self, post: FbPost) -> dict[str, int]:
        born = post.scheduled if post.scheduled is not None else post.created
        return self.ctx.figures("facebook", post.id, born) if post.live(self.ctx.now()) else {}

    def insights(
        self, post: FbPost, m: dict[str, str], params: dict[str, Any], headers: Headers
    ) -> Response:
        """``GET /{post-id}/insights?metric=a,b``: lifetime values, in Graph's Insights Result
        shape; a name this version does not accept (config.graph_metrics) is #100, as Graph
        answers it, and fails the whole request."""
        names = [n.strip() for n in str(params.get("metric") or "").split(",") if n.strip()]
        today = self.ctx.now().date()
        if not names or not all(accepted(m.get("version", ""), n, today) for n in names):
            return self.error(400, 100, INVALID_METRIC, headers)
        got = self.figures(post)
        by_type = {k.split(":", 1)[1]: v for k, v in got.items() if k.startswith("reaction:") and v}
        values: dict[str, Any] = {
            "post_total_media_view_unique": got.get("views", 0),
            "post_impressions_unique": got.get("views", 0),
            "post_reactions_by_type_total": by_type,
            "post_clicks": got.get("clicks", 0),
        }
        data = [
            {
                "name": name,
                "period": "lifetime",
                "values": [{"value": values[name]}],
                "title": name,
                "description": f"Lifetime: {name}",
                "id": f"{post.id}/insights/{name}/lifetime",
            }
            for name in names
        ]
        return Response.json({"data": data}, 200, headers)

    def reach_fields(self, post: FbPost, fields: list[str]) -> dict[str, Any]:
        """``shares`` (left out when nobody shared: Graph omits empty fields) and ``comments``
        (with ``.summary(true)``: its ``total_count``) of a post."""
        got = self.figures(post)
        out: dict[str, Any] = {}
        for name in fields:
            if name == "shares" and got.get("shares"):
                out["shares"] = {"count": got["shares"]}
            elif name.startswith("comments"):
                comments: dict[str, Any] = {"data": []}
                if ".summary(true)" in name:
                    count = got.get("comments", 0)
                    comments["summary"] = {
                        "order": "ranked",
                        "total_count": count,
                        "can_comment": True,
                    }
                out["comments"] = comments
        return out

    def before(self, fired: Fired, page: str, headers: Headers) -> Response | None:
        if "token-expiry" in fired:
            msg = "Error validating access token: Session has expired on Monday, 20-May-24."
            return self.error(400, 190, msg, headers, error_subcode=463)
        if "permission" in fired:
            msg = "(#200) If posting to a page, requires both pages_read_engagement and"
            msg += " pages_manage_posts as an admin with sufficient administrative permission"
            return self.error(403, 200, msg, headers)
        if "policy-block" in fired:
            msg = "It looks like you were misusing this feature by going too fast."
            msg += " You've been temporarily blocked from using it."
            return self.error(400, 368, msg, headers)
        if "throttle" in fired:
            arg = fired.arg("throttle")
            code = int(arg) if arg and arg.isdigit() and int(arg) in THROTTLE else 0
            code = code or self.ctx.faults.choice((4, 32, 80001))
            throttled = self.usage(page, 100, regain=1)
            return self.error(400, code, THROTTLE[code], throttled, is_transient=True)
        if "error-before" in fired:
            return self.error(500, 1, "An unknown error occurred", headers, is_transient=True)
        return None

    def create(
        self,
        page: str,
        edge: str,
        params: dict[str, Any],
        files: dict[str, Upload],
        headers: Headers,
    ) -> Response:
        """``POST /{page}/feed`` (a post; its photos by ``attached_media``) and ``POST
        /{page}/photos`` (a photo: a post unless ``published=false``)."""
        now = self.ctx.now()
        unpublished = edge == "photos" and parse_bool(params.get("published", True)) is False
        fired = self.ctx.faults.draw("facebook", "upload" if unpublished else "create")
        failed = self.before(fired, page, headers)
        if failed is not None:
            return failed
        text = params.get("message", "") if edge == "feed" else params.get("caption", "")
        message = str(text or params.get("message") or "")
        link = (str(params.get("link") or "") or None) if edge == "feed" else None
        wanted = attached_ids(params) if edge == "feed" else []
        if edge == "feed" and not message and not link and not wanted:
            return self.error(400, 100, "(#100) Missing message or attachment", headers)
        picture = self.photo_source(params, files, headers) if edge == "photos" else None
        if isinstance(picture, Response):
            return picture
        photos = self.attached(page, wanted, headers)
        if isinstance(photos, Response):
            return photos
        published = parse_bool(params.get("published", True))
        if published is None:
            return self.error(400, 100, "(#100) Param published must be a boolean", headers)
        if self.ctx.faults.strict("facebook"):
            refused = self.refused(edge, message, link, params.get("url"), headers)
            if refused is not None:
                return refused
        scheduled, refused = self._schedule(params, published, now, headers)
        if refused is not None:
            return refused
        checks = self.ctx.faults.flag("facebook", "duplicate-check")
        if checks and self._repeats(page, message, now):
            return self.error(400, 506, "(#506) Duplicate status message", headers)
        self.seq += 1
        if picture is not None:
            photo = self.keep_photo(page, picture, params, message, published or bool(scheduled))
            photos = [photo]
            if not photo.published:  # an unpublished photo: an id, no post, nothing to read
                return self.answered(fired, {"id": photo.id}, headers)
        post = self.keep_post(page, message, link, (published, scheduled), photos)
        body = {"id": post.id} if picture is None else {"id": photos[0].id, "post_id": post.id}
        kind = "photo" if picture is not None else "post"
        media = [p.reference() for p in photos]
        self.ctx.record(
            ("facebook", page, post.id), "", message, fields=params, kind=kind, media=media
        )
        return self.answered(fired, body, headers)

    def answered(self, fired: Fired, body: dict[str, Any], headers: Headers) -> Response:
        """The success answer, unless a fault replaces it (create-then-fail) or delays it."""
        answer = Response.json(body, 200, headers)
        if "create-then-fail" in fired:
            msg = "An unexpected error has occurred. Please retry your request later."
            answer = self.error(500, 2, msg, headers, is_transient=True)
        if "slow" in fired:
            answer.delay = fired.seconds("slow", 1.0)
        return answer

    def photo_source(
        self, params: dict[str, Any], files: dict[str, Upload], headers: Headers
    ) -> tuple[str, Picture | None] | Response:
        """A photo's picture: an uploaded ``source`` file (decoded, ≤ 4 MB), a ``url`` on the
        sandbox (read from its pictures, checked the same way) or elsewhere (taken as given)."""
        upload, url = files.get("source"), params.get("url")
        if upload is not None:
            try:
                return "", inspect(upload.data, LIMITS["facebook"])
            except Refusal as exc:
                return self.error(400, 324, INVALID_IMAGE, headers, error_user_msg=str(exc))
        if not isinstance(url, str) or not url.strip():
            return self.error(400, 324, "(#324) Requires upload file", headers)
        if not self.ctx.media.own(url):
            return url, None
        found = self.ctx.media.find(url)
        if found is None or found.size > LIMITS["facebook"]:
            why = "nothing at that address" if found is None else f"{found.size} bytes, over 4 MB"
            return self.error(400, 324, INVALID_IMAGE, headers, error_user_msg=why)
        return url, found

    def attached(
        self, page: str, wanted: list[str | None], headers: Headers
    ) -> list[FbPhoto] | Response:
        """The unpublished photos of ``page`` a feed post names, or Graph's error (code 100)."""
        photos: list[FbPhoto] = []
        for i, fbid in enumerate(wanted):
            photo = self.photos.get(fbid or "")
            if photo is None or photo.page != page or photo.published or photo.deleted:
                msg = (
                    f"(#100) param attached_media[{i}] must name an unpublished photo of this Page"
                )
                return self.error(400, 100, msg, headers)
            photos.append(photo)
        return photos

    def keep_photo(
        self,
        page: str,
        source: tuple[str, Picture | None],
        params: dict[str, Any],
        caption: str,
        published: bool,
    ) -> FbPhoto:
        url, picture = source
        if picture is not None and not url:  # an uploaded file: served by the sandbox
            url = self.ctx.media.keep(picture)
        described = picture.describe() if picture is not None else {}
        alt = str(params.get("alt_text_custom") or "")
        photo_id = str(PHOTO_BASE + self.seq)
        photo = FbPhoto(photo_id, page, url, caption, alt, self.ctx.now(), published, described)
        self.photos[photo.id] = photo
        if not published:
            fields = {k: v for k, v in params.items() if k != "source"}
            self.ctx.record(
                ("facebook", page, photo.id),
                "",
                caption,
                fields=fields,
                kind="media",
                media=[photo.reference()],
            )
        return photo

    def keep_post(
        self,
        page: str,
        message: str,
        link: str | None,
        when: tuple[bool, datetime | None],
        photos: list[FbPhoto],
    ) -> FbPost:
        published, scheduled = when
        post_id = f"{page}_{POST_BASE + self.seq}"
        kind = "added_photos" if photos else "shared_story" if link else "mobile_status_update"
        images = [{"id": p.id, "url": p.url, "alt": p.alt} | p.described for p in photos]
        post = FbPost(
            id=post_id,
            page=page,
            seq=self.seq,
            message=message,
            link=link,
            created=self.ctx.now(),
            published=published,
            scheduled=scheduled,
            status_type=kind,
            images=images,
        )
        self.posts[post_id] = post
        for photo in photos:
            photo.post_id = photo.post_id or post_id
        return post

    def _schedule(
        self, params: dict[str, Any], published: bool, now: datetime, headers: Headers
    ) -> tuple[datetime | None, Response | None]:
        """The post's ``scheduled_publish_time`` (None: none asked), or the error Graph answers
        for one asked of a published post or outside 10 minutes to 30 days from ``now``."""
        if params.get("scheduled_publish_time") in (None, ""):
            return None, None
        if published:
            msg = "(#100) You cannot specify a scheduled publish time on a published post"
            return None, self.error(400, 100, msg, headers)
        scheduled = parse_time(params["scheduled_publish_time"])
        lo, hi = now + timedelta(minutes=10), now + timedelta(days=30)
        if scheduled is None or not lo <= scheduled <= hi:
            msg = "(#100) The specified scheduled publish time is invalid."
            return None, self.error(400, 100, msg, headers)
        return scheduled, None

    def _repeats(self, page: str, message: str, now: datetime) -> bool:
        """Whether ``message`` repeats a post of ``page`` made, and not deleted, in the last five
        minutes (never for an empty one)."""
        if not message:
            return False
        for p in self.posts.values():
            recent = now - p.created <= timedelta(minutes=5)
            if p.page == page and p.message == message and recent and not p.deleted:
                return True
        return False

    def refused(
        self, edge: str, message: str, link: str | None, url: Any, headers: Headers
    ) -> Response | None:
        """What Graph refuses in the values publisher sends (off with ``facebook:lenient``)."""
        name = "message" if edge == "feed" else "caption"
        if len(message) > MESSAGE_LIMIT:
            msg = f"(#100) Param {name} must be at most {MESSAGE_LIMIT} characters long"
            return self.error(400, 100, msg, headers)
        for param, value in (("link", link), ("url", url)):
            if value and not re.fullmatch(r"https?://[^\s/]+\S*", str(value)):
                return self.error(400, 100, f"(#100) Param {param} must be a valid URL", headers)
        return None

    def list(
        self, req: Request, page: str, edge: str, params: dict[str, Any], headers: Headers
    ) -> Response:
        now = self.ctx.now()
        fields = split_fields(params.get("fields"), ("id", "message", "created_time"))
        bounds = [parse_time(params[k]) if params.get(k) else None for k in ("since", "until")]
        after = uncursor(params["after"]) if params.get("after") else None
        try:
            limit = min(100, max(1, int(params.get("limit") or 25)))
        except ValueError:
            limit = -1
        bad = [
            k for k, b in zip(("since", "until"), bounds, strict=True) if params.get(k) and not b
        ]
        if bad or limit < 0 or (params.get("after") and after is None):
            return self.error(400, 100, "(#100) Invalid parameter", headers)
        scheduled = edge == "scheduled_posts"
        posts = [
            p
            for p in sorted(self.posts.values(), key=lambda p: -p.seq)
            if p.page == page
            and (p.live(now) if not scheduled else not p.deleted and not p.live(now))
            and (bounds[0] is None or p.created >= bounds[0])
            and (bounds[1] is None or p.created <= bounds[1])
            and (after is None or p.seq < after)
        ]
        chunk = posts[:limit]
        body: dict[str, Any] = {"data": [self.post_json(p, fields) for p in chunk]}
        if chunk:
            paging: dict[str, Any] = {
                "cursors": {"before": cursor(chunk[0].seq), "after": cursor(chunk[-1].seq)}
            }
            if len(posts) > limit:
                query = {k: v[-1] for k, v in req.query.items()} | {"after": cursor(chunk[-1].seq)}
                paging["next"] = f"{self.ctx.base_url()}{req.path}?{urlencode(query)}"
            body["paging"] = paging
        return Response.json(body, 200, headers)

    def post_json(self, post: FbPost, fields: tuple[str, ...]) -> dict[str, Any]:
        return post.to_json(fields, self.ctx.base_url(), self.ctx.now())

    def count(self, page: str) -> int:
        """This call counted in the page's one-minute window, as a percentage of the budget."""
        now = time.monotonic()
        calls = self._calls.setdefault(page, deque())
        calls.append(now)
        while calls and calls[0] < now - 60:
            calls.popleft()
        return min(100, len(calls) * 100 // CALLS_PER_MINUTE)

    def usage(self, page: str, percent: int, regain: int = 0) -> Headers:
        high = self.ctx.faults.flag("facebook", "high-usage")
        if high is not None:
            percent = max(percent, int(high.arg) if high.arg and high.arg.isdigit() else 85)
        app = {"call_count": percent, "total_time": percent, "total_cputime": percent}
        buc = {
            page: [
                {"type": "pages", **app, "estimated_time_to_regain_access": regain},
            ]
        }
        return [("X-App-Usage", json.dumps(app)), ("X-Business-Use-Case-Usage", json.dumps(buc))]
