"""The sandbox's WordPress REST API (``/wordpress`` ≙ a site root): posts, media, users/me,
discovery, and the uploaded files under ``/wordpress/wp-content/uploads/``.

Owns authentication by application password, roles and the routes (§3 of platform-apis.md);
core's post rules and error texts live in wordpress_store, its media rules in wordpress_media.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from publisher.sandbox import credentials
from publisher.sandbox import wordpress_media as wpm
from publisher.sandbox import wordpress_store as store
from publisher.sandbox.media import LIMITS, POST_MAX, Picture, Refusal, inspect
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router
from publisher.sandbox.wordpress_media import WpMedia
from publisher.sandbox.wordpress_store import SITE_TZ, STATUSES, TEXT_FIELDS, WpError, WpPost

API = r"/wordpress/wp-json/wp/v2"
PVC = r"/wordpress/wp-json/post-views-counter"  # Post Views Counter's REST namespace
PLUGINS = ("post-views-counter", "wp-postviews")  # the view-count plugins the sandbox can be
UPLOADS = "/wordpress/wp-content/uploads/"
MEDIA_STATUSES = ("inherit", "private", "trash")
Route = Callable[[Request, dict[str, str]], Response]
T = TypeVar("T")
References = list[dict[str, Any]]  # a record's pictures (the class below has a method "list")


@dataclass(frozen=True)
class User:
    id: int
    login: str
    role: str

    @property
    def can_publish(self) -> bool:
        return self.role in ("editor", "administrator")

    @property
    def can_upload(self) -> bool:
        """upload_files: authors, editors and administrators; not contributors."""
        return self.role in ("author", "editor", "administrator")

    def may_change(self, post: WpPost) -> bool:
        return self.can_publish or (self.id == post.author and post.status != "publish")

    def may_edit(self, media: WpMedia) -> bool:
        return self.can_publish or self.id == media.author


USERS = {
    credentials.WORDPRESS_USER: User(1, credentials.WORDPRESS_USER, "editor"),
    credentials.WORDPRESS_CONTRIBUTOR: User(2, credentials.WORDPRESS_CONTRIBUTOR, "contributor"),
}


def alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


PHP_TOO_BIG = "The uploaded file exceeds the upload_max_filesize directive in php.ini."


class WordPress:
    def __init__(self, ctx: Context, upload_limit: int | None = None) -> None:
        self.ctx = ctx
        self.upload_limit = upload_limit  # a multisite's fileupload_maxk, in bytes; None: a site
        self.posts: dict[int, WpPost] = {}
        self.media: dict[int, WpMedia] = {}  # attachments share the posts' ids, as in wp_posts
        self.files: set[str] = set()  # under wp-content/uploads: "2024/06/bia.jpg"
        self.next_id = 1
        self.router: Router | None = None
        # the view-count plugins the site has (POST /_sandbox/stats): both, unless told otherwise
        self.plugins: set[str] = set(PLUGINS)

    @property
    def site(self) -> str:
        return f"{self.ctx.base_url()}/wordpress"

    def register(self, router: Router) -> None:
        self.router = router
        post = API + r"/posts/(?P<id>\d+)/?"
        media = API + r"/media/(?P<id>\d+)/?"
        for method, pattern, route in (
            ("POST", API + r"/posts/?", self.create),
            ("GET", API + r"/posts/?", self.list),
            ("GET", post, self.get),
            ("POST", post, self.update),
            ("PUT", post, self.update),
            ("DELETE", post, self.delete),
            ("POST", API + r"/media/?", self.upload),
            ("GET", API + r"/media/?", self.media_list),
            ("GET", media, self.media_get),
            ("POST", media, self.media_update),
            ("PUT", media, self.media_update),
            ("DELETE", media, self.media_delete),
            ("GET", UPLOADS + r"(?P<file>.+)", self.uploaded),
            ("HEAD", UPLOADS + r"(?P<file>.+)", self.uploaded),
            ("GET", API + r"/users/me/?", self.me),
            ("GET", r"/wordpress/wp-json/?", self.index),
            ("GET", PVC + r"/get-post-views/(?P<ids>\d+(?:,\d+)*),?", self.post_views),
            ("POST", PVC + r"/get-post-views/(?P<ids>\d+(?:,\d+)*),?", self.post_views),
            ("*", r"/wordpress/wp-json/.*", self.no_route),
            ("*", r"/wordpress(?:/(?:index\.php)?)?", self.root),
        ):
            router.add(method, pattern, self.answering(route))

    @staticmethod
    def answering(route: Route) -> Route:
        def run(req: Request, m: dict[str, str]) -> Response:
            try:
                return route(req, m)
            except WpError as err:
                answer = Response.json(err.body(), err.status)
                if err.status == 429:
                    answer.headers.append(("Retry-After", "1"))
                return answer

        return run

    # -- view counts -----------------------------------------------------------------------------

    def views(self, post: WpPost) -> int:
        """A published post's views now (``sandbox.figures``); 0 for any other."""
        if post.status != "publish":
            return 0
        return self.ctx.figures("wordpress", str(post.id), post.date_gmt).get("views", 0)

    def read_failed(self) -> None:
        """A ``read-fail`` fault's answer to a read of view counts, raised."""
        fired = self.ctx.faults.draw("wordpress", "read")
        how = fired.arg("read-fail", "error") if "read-fail" in fired else None
        if how == "throttle":
            raise WpError("too_many_requests", 429)
        if how == "token-expiry":
            raise WpError("incorrect_password", 401)
        if how is not None:
            raise WpError("internal_server_error", 503)

    def post_views(self, req: Request, m: dict[str, str]) -> Response:
        """Post Views Counter's ``get-post-views/<id>[,<id>…]``: the views of those posts
        together, as a bare JSON number (its callback returns ``pvc_get_post_views()``)."""
        if "post-views-counter" not in self.plugins:
            raise WpError("rest_no_route", 404)
        self.read_failed()
        self.promote()
        wanted = [self.posts.get(int(i)) for i in m["ids"].split(",") if i]
        return Response.json(sum(self.views(p) for p in wanted if p is not None))

    def no_route(self, req: Request, _: dict[str, str]) -> Response:
        raise WpError("rest_no_route", 404)

    def root(self, req: Request, m: dict[str, str]) -> Response:
        """``?rest_route=/wp/v2/…`` (sites without pretty permalinks) and ``?p=<id>`` permalinks."""
        route = req.arg("rest_route")
        if route and self.router is not None:
            query = {k: v for k, v in req.query.items() if k != "rest_route"}
            inner = Request(req.method, "/wordpress/wp-json" + route, query, req.headers, req.body)
            return self.router.dispatch(inner) or self.no_route(req, m)
        post_id = req.arg("p") or ""
        answer = Response.html("<p>WordPress sandbox</p>", 302 if post_id.isdigit() else 200)
        answer.headers.append(("Location", f"{self.ctx.base_url()}/sandbox#wordpress-{post_id}"))
        return answer

    def index(self, req: Request, _: dict[str, str]) -> Response:
        body: dict[str, Any] = {"name": "Sandbox WordPress", "url": self.site, "home": self.site}
        return Response.json(body | {"namespaces": ["wp/v2"], "routes": {}})

    def user(self, req: Request) -> User | None:
        """The Basic-auth user or None when anonymous; raises 401 for bad credentials."""
        header = req.header("authorization") or ""
        if not header.lower().startswith("basic "):
            return None
        try:
            login, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise WpError("incorrect_password", 401) from exc
        user = USERS.get(login)
        if user is None:
            raise WpError("invalid_username", 401)
        if alnum(password) != alnum(credentials.WORDPRESS_PASSWORD):
            raise WpError("incorrect_password", 401)
        return user

    def promote(self) -> None:
        """WP-Cron, always on time: future posts whose date has come are published."""
        now = self.ctx.now()
        for post in self.posts.values():
            if post.status == "future" and post.date_gmt <= now:
                post.status = "publish"

    def body(self, req: Request, post: WpPost | None, user: User) -> tuple[dict[str, Any], ...]:
        try:
            data = req.form()
        except BadBody as exc:
            raise WpError("rest_invalid_json", 400, f"Invalid JSON body passed. {exc}") from exc
        authors = {u.id for u in USERS.values()}
        status = post.status if post is not None else "draft"
        return data, store.prepare(data, status, user.id, user.can_publish, authors)

    def apply(self, post: WpPost, values: dict[str, Any]) -> None:
        now = self.ctx.now().replace(microsecond=0)
        for name in (*TEXT_FIELDS, "categories", "tags", "author", "date_gmt", "status"):
            if name in values:
                setattr(post, name, values[name])
        if "featured_media" in values:
            post.featured_media = self.thumbnail(values["featured_media"], post.featured_media)
        post.other.update(values.get("other", {}))
        post.status = store.settle_status(post.status, post.date_gmt, now)
        wanted = values.get("slug", post.slug or post.desired_slug)
        from_title = store.sanitize_title(post.title)
        if not wanted and post.status in ("publish", "future", "private"):
            wanted = from_title
        taken = {p.slug for p in self.posts.values() if p.id != post.id}
        post.slug = store.unique_slug(wanted, taken) if wanted else ""
        post.generated_slug = post.slug or store.unique_slug(from_title, taken)
        post.modified_gmt = now

    def create(self, req: Request, _: dict[str, str]) -> Response:
        user = self.user(req)
        fired = self.ctx.faults.draw("wordpress", "create")
        if "throttle" in fired:
            raise WpError("rest_too_many_requests", 429)
        if "error-before" in fired:
            raise WpError("internal_server_error", 500)
        if user is None:
            raise WpError("rest_cannot_create", 401)
        data, values = self.body(req, None, user)
        if "id" in data:
            raise WpError("rest_post_exists", 400)
        empty = not any(values.get(name) for name in TEXT_FIELDS)  # PHP falsiness, no trim
        if empty and self.ctx.faults.strict("wordpress"):
            raise WpError("empty_content", 400)  # wp_insert_post's WP_Error, as REST answers it
        self.promote()
        now = self.ctx.now().replace(microsecond=0)
        post = WpPost(self.next_id, "", "draft", "", "", "", now, now, user.id)
        self.next_id += 1
        self.apply(post, values)
        self.posts[post.id] = post
        where = ("wordpress", self.site, str(post.id))
        media = self.pictures_of(post)
        self.ctx.record(where, post.title, post.content, fields=data, kind="post", media=media)
        answer = Response.json(post.to_json(self.site, "edit"), 201)
        answer.headers.append(("Location", f"{self.site}/wp-json/wp/v2/posts/{post.id}"))
        if "create-then-fail" in fired:
            err = WpError("internal_server_error", 500)
            answer = Response.json(err.body(), 500)
        answer.delay = fired.seconds("slow", 1.0) if "slow" in fired else 0.0
        return answer

    def list(self, req: Request, _: dict[str, str]) -> Response:
        user = self.user(req)
        self.promote()
        statuses = _statuses(req, user)
        context = req.arg("context") or "view"
        if context == "edit" and user is None:
            raise WpError("rest_forbidden_context", 401)
        _paging(req)  # a bad per_page is refused before anything else is looked at
        wanted = set(statuses) if "any" not in statuses else set(STATUSES)
        slugs, search = set(_multi(req, "slug")), (req.arg("search") or "").lower()
        bounds = _date_bounds(req)
        found = [
            p
            for p in sorted(self.posts.values(), key=lambda p: (p.date_gmt, p.id), reverse=True)
            if p.status in wanted
            and (not slugs or p.slug in slugs)
            and (not search or search in (p.title + p.content).lower())
            and (p.status == "publish" or (user is not None and user.may_change(p)))
            and (bounds["after"] is None or p.date_gmt > bounds["after"])
            and (bounds["before"] is None or p.date_gmt < bounds["before"])
        ]
        if req.arg("order") == "asc":
            found.reverse()
        return self.listing(req, "posts", found, lambda p: p.to_json(self.site, context))

    def listing(
        self, req: Request, route: str, found: Sequence[T], shape: Callable[[T], dict[str, Any]]
    ) -> Response:
        """One page of a collection (``per_page``, ``page``, ``_fields``) with its headers."""
        per_page, page = _paging(req)
        total, pages = len(found), math.ceil(len(found) / per_page)
        if total and page > pages:
            raise WpError("rest_post_invalid_page_number", 400)
        chunk = found[(page - 1) * per_page : page * per_page]
        fields = req.arg("_fields")
        answer = Response.json([store.only_fields(shape(item), fields) for item in chunk])
        answer.headers += [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(pages))]
        links = _page_links(f"{self.site}/wp-json/wp/v2/{route}", req, page, pages)
        if links:
            answer.headers.append(("Link", ", ".join(links)))
        return answer

    def find(self, req: Request, m: dict[str, str]) -> tuple[User | None, WpPost]:
        user = self.user(req)
        self.promote()
        post = self.posts.get(int(m["id"]))
        if post is None:
            raise WpError("rest_post_invalid_id", 404)
        return user, post

    def get(self, req: Request, m: dict[str, str]) -> Response:
        user, post = self.find(req, m)
        context = req.arg("context") or "view"
        if post.status != "publish" and (user is None or not user.may_change(post)):
            raise WpError("rest_forbidden", 401 if user is None else 403)
        if context == "edit" and user is None:
            raise WpError("rest_forbidden_context", 401)
        body = post.to_json(self.site, context)
        if "wp-postviews" in self.plugins:  # its REST field: the post's views
            if "views" in (req.arg("_fields") or "").split(","):
                self.read_failed()
            body["views"] = self.views(post)
        return Response.json(store.only_fields(body, req.arg("_fields")))

    def update(self, req: Request, m: dict[str, str]) -> Response:
        user, post = self.find(req, m)
        if user is None or not user.may_change(post):
            raise WpError("rest_cannot_edit", 401 if user is None else 403)
        self.apply(post, self.body(req, post, user)[1])
        return Response.json(post.to_json(self.site, "edit"))

    def delete(self, req: Request, m: dict[str, str]) -> Response:
        user, post = self.find(req, m)
        if user is None or not user.may_change(post):
            raise WpError("rest_cannot_delete", 401 if user is None else 403)
        if (req.arg("force") or "").lower() in ("true", "1"):
            del self.posts[post.id]
            return Response.json({"deleted": True, "previous": post.to_json(self.site, "edit")})
        if post.status == "trash":
            raise WpError("rest_already_trashed", 410)
        post.desired_slug, post.status = post.slug, "trash"
        post.slug = f"{post.slug}__trashed" if post.slug else ""
        return Response.json(post.to_json(self.site, "edit"))

    # -- media: /wp/v2/media and the files under wp-content/uploads ---------------------------
    def upload(self, req: Request, _: dict[str, str]) -> Response:
        """``POST /wp/v2/media``: a raw body (Content-Type, Content-Disposition) or a multipart
        ``file``; 201 with the attachment, or the error WP_REST_Attachments_Controller answers."""
        user = self.user(req)
        fired = self.ctx.faults.draw("wordpress", "upload")
        if "throttle" in fired:
            raise WpError("rest_too_many_requests", 429)
        if "error-before" in fired:
            raise WpError("internal_server_error", 500)
        if user is None or not user.can_upload:  # the attachment type's create_posts
            raise WpError("rest_cannot_create", 401 if user is None else 403)
        params = self.upload_params(req)
        if "id" in params:
            raise WpError("rest_post_exists", 400)
        name, picture, title = self.received(req)
        media = self.attach(user, name, picture, _raw(params.get("title")) or title, params)
        fields = {k: v for k, v in params.items() if k != "file"}
        fields |= {"filename": media.file.rsplit("/", 1)[-1], "slug": media.slug}
        where, ref = ("wordpress", self.site, str(media.id)), self.reference(media, "upload")
        self.ctx.record(where, media.title, media.caption, fields=fields, kind="media", media=[ref])
        answer = Response.json(media.to_json(self.site, "edit"), 201)
        answer.headers.append(("Location", f"{self.site}/wp-json/wp/v2/media/{media.id}"))
        answer.headers.append(("X-WP-Upload-Attachment-ID", str(media.id)))
        if "create-then-fail" in fired:
            answer = Response.json(WpError("internal_server_error", 500).body(), 500)
        answer.delay = fired.seconds("slow", 1.0) if "slow" in fired else 0.0
        return answer

    @staticmethod
    def upload_params(req: Request) -> dict[str, Any]:
        """An upload's other fields: the query's, and a multipart body's text fields."""
        params: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
        if req.content_type == "multipart/form-data":
            try:
                form = req.form()
            except BadBody as exc:
                raise WpError("rest_upload_no_data", 400) from exc
            params |= {k: v for k, v in form.items() if not isinstance(v, dict)}
        return params

    def received(self, req: Request) -> tuple[str, Picture, str]:
        """The uploaded file's name, its picture and the title its name gives (multipart only)."""
        files = req.files() if req.content_type == "multipart/form-data" else {}
        if files:  # upload_from_file; wp_handle_upload's errors are rest_upload_unknown_error
            upload = files.get("file")
            if upload is None:
                raise WpError("rest_upload_no_data", 400)
            name, data = upload.filename, upload.data
            if len(data) > LIMITS["wordpress"]:  # PHP refused the file: $_FILES holds its error
                raise WpError("rest_upload_unknown_error", 500, PHP_TOO_BIG)
            failure, title = "rest_upload_unknown_error", wpm.title_of(upload.filename)
        else:  # upload_from_data; wp_handle_sideload's errors are rest_upload_sideload_error
            if len(req.body) > POST_MAX:  # PHP drops a body over post_max_size: WP sees none
                raise WpError("rest_upload_no_data", 400)
            name, data = _disposition(req), req.body
            failure, title = "rest_upload_sideload_error", ""
        md5 = (req.header("content-md5") or "").strip()
        if md5 and md5 != hashlib.md5(data, usedforsecurity=False).hexdigest():
            raise WpError("rest_upload_hash_mismatch", 412)
        if self.upload_limit is not None and len(data) > self.upload_limit:  # multisite only
            size = f"{self.upload_limit // 1024:,}"
            message = f"This file is too big. Files must be less than {size} KB in size."
            raise WpError("rest_upload_file_too_big", 400, message)
        try:
            picture = inspect(data)
            return wpm.typed_name(wpm.sanitize_file_name(name), picture), picture, title
        except (Refusal, ValueError) as exc:
            raise WpError(failure, 500, wpm.FILE_TYPE_ERROR) from exc

    def attach(
        self, user: User, name: str, picture: Picture, title: str, params: dict[str, Any]
    ) -> WpMedia:
        """Store the file in this month's upload folder (a JPEG over 2560 px as its ``-scaled``
        copy too) and insert the attachment: title from the file name unless given, and a slug
        no post or attachment has."""
        now = self.ctx.now().replace(microsecond=0)
        folder = now.astimezone(SITE_TZ).strftime("%Y/%m")
        in_folder = {f.rsplit("/", 1)[-1] for f in self.files if f.startswith(folder + "/")}
        filename = wpm.unique_filename(name, in_folder)
        stem, _, ext = filename.rpartition(".")
        big = wpm.scaled(picture)
        file = f"{folder}/{stem}-scaled.{ext}" if big is not None else f"{folder}/{filename}"
        title = title or stem
        wanted = store.sanitize_title(str(params.get("slug") or "")) or store.sanitize_title(title)
        taken = {p.slug for p in self.posts.values()} | {m.slug for m in self.media.values()}
        slug = store.unique_slug(wanted or str(self.next_id), taken)
        media = WpMedia(self.next_id, slug, title, user.id, now, file, big or picture)
        media.original = filename if big is not None else ""
        media.alt_text = wpm.sanitize_text_field(_raw(params.get("alt_text")))
        media.caption = _raw(params.get("caption"))
        media.description = _raw(params.get("description"))
        parent = str(params.get("post") or "")
        media.post = int(parent) if parent.isdigit() and int(parent) else None
        self.next_id += 1
        self.media[media.id] = media
        self.files |= {f"{folder}/{filename}", file}
        self.ctx.media.keep(picture, f"{UPLOADS}{folder}/{filename}")
        if big is not None:
            self.ctx.media.keep(big, f"{UPLOADS}{file}")
        return media

    def media_list(self, req: Request, _: dict[str, str]) -> Response:
        """``GET /wp/v2/media``: ``slug`` (a list), ``search`` (titles, captions, file names),
        ``mime_type``, ``media_type``, ``parent``, ``status`` (inherit unless told), paging."""
        user = self.user(req)
        context = req.arg("context") or "view"
        if context == "edit" and user is None:
            raise WpError("rest_forbidden_context", 401)
        statuses = _media_statuses(req, user)
        _paging(req)
        slugs, search = set(_multi(req, "slug")), (req.arg("search") or "").lower()
        mimes, kinds = set(_multi(req, "mime_type")), set(_multi(req, "media_type"))
        parents = {int(p) for p in _multi(req, "parent") if p.isdigit()}
        found = [
            m
            for m in sorted(self.media.values(), key=lambda m: (m.date_gmt, m.id), reverse=True)
            if "inherit" in statuses
            and (not slugs or m.slug in slugs)
            and (not search or m.matches(search))
            and (not mimes or m.picture.mime in mimes)
            and (not kinds or "image" in kinds)
            and (not parents or (m.post or 0) in parents)
        ]
        if req.arg("order") == "asc":
            found.reverse()
        return self.listing(req, "media", found, lambda m: m.to_json(self.site, context))

    def find_media(self, req: Request, m: dict[str, str]) -> tuple[User | None, WpMedia]:
        user = self.user(req)
        media = self.media.get(int(m["id"]))
        if media is None:
            raise WpError("rest_post_invalid_id", 404)
        return user, media

    def media_get(self, req: Request, m: dict[str, str]) -> Response:
        user, media = self.find_media(req, m)
        context = req.arg("context") or "view"
        if context == "edit" and user is None:
            raise WpError("rest_forbidden_context", 401)
        body = media.to_json(self.site, context)
        return Response.json(store.only_fields(body, req.arg("_fields")))

    def media_update(self, req: Request, m: dict[str, str]) -> Response:
        """``POST /wp/v2/media/<id>``: alt_text (kept as sent: core does not sanitise it on
        update), caption, description, title, slug, post."""
        user, media = self.find_media(req, m)
        if user is None or not user.may_edit(media):
            raise WpError("rest_cannot_edit", 401 if user is None else 403)
        try:
            data = req.form()
        except BadBody as exc:
            raise WpError("rest_invalid_json", 400, f"Invalid JSON body passed. {exc}") from exc
        if "alt_text" in data:
            media.alt_text = _raw(data["alt_text"])
        for name in ("caption", "description", "title"):
            if name in data:
                setattr(media, name, _raw(data[name]))
        if data.get("slug"):
            taken = {p.slug for p in self.posts.values()}
            taken |= {o.slug for o in self.media.values() if o.id != media.id}
            media.slug = store.unique_slug(store.sanitize_title(str(data["slug"])), taken)
        if "post" in data:
            parent = str(data["post"] or "")
            media.post = int(parent) if parent.isdigit() and int(parent) else None
        media.modified_gmt = self.ctx.now().replace(microsecond=0)
        return Response.json(media.to_json(self.site, "edit"))

    def media_delete(self, req: Request, m: dict[str, str]) -> Response:
        """Attachments have no trash (MEDIA_TRASH is off): only ``force=true`` deletes one."""
        user, media = self.find_media(req, m)
        if user is None or not user.may_edit(media):
            raise WpError("rest_cannot_delete", 401 if user is None else 403)
        if (req.arg("force") or "").lower() not in ("true", "1"):
            raise WpError("rest_trash_not_supported", 501)
        previous = media.to_json(self.site, "edit")
        del self.media[media.id]
        folder = media.file.rsplit("/", 1)[0]
        files = {media.file} | ({f"{folder}/{media.original}"} if media.original else set())
        self.files -= files
        self.ctx.media.forget(*(UPLOADS + f for f in files))
        return Response.json({"deleted": True, "previous": previous})

    def uploaded(self, req: Request, m: dict[str, str]) -> Response:
        """A file under wp-content/uploads, as the web server sends it."""
        picture = self.ctx.media.at(req.path)
        if picture is None:
            return Response.html("<h1>Not Found</h1>", 404)
        return Response.picture(picture)

    # -- featured images ---------------------------------------------------------------------
    def thumbnail(self, wanted: int, current: int) -> int:
        """set_post_thumbnail as the posts controller calls it: an image attachment's id is
        kept; 0, or the id of something that is not an attachment, removes the featured image;
        an id nothing has leaves it as it was. The posts controller drops that call's
        rest_invalid_featured_media error: the post is still saved (201 or 200) and its
        ``featured_media`` says what was kept (0 on a new post)."""
        if wanted == 0 or wanted in self.posts:
            return 0
        return wanted if wanted in self.media else current

    def pictures_of(self, post: WpPost) -> References:
        """References to what a post shows: its featured image, then its content's images."""
        refs: References = []
        featured = self.media.get(post.featured_media)
        if featured is not None:
            refs.append(self.reference(featured, "cover"))
        for src, alt in wpm.images_in(post.content):
            picture = self.ctx.media.find(src)
            known = picture.describe() if picture is not None else {}
            refs.append({"role": "image", "url": src, "alt": alt} | known)
        return refs

    def reference(self, media: WpMedia, role: str) -> dict[str, Any]:
        ref = {"role": role, "url": media.source_url(self.site), "alt": media.alt_text}
        return ref | {"id": media.id} | media.picture.describe()

    def me(self, req: Request, _: dict[str, str]) -> Response:
        user = self.user(req)
        if user is None:
            raise WpError("rest_not_logged_in", 401)
        link = f"{self.site}/author/{user.login}/"
        body: dict[str, Any] = {"id": user.id, "name": user.login, "url": "", "description": ""}
        body |= {"link": link, "slug": user.login, "avatar_urls": {}}
        if req.arg("context") == "edit":
            # as core (the user's allcaps): what they have, never what they lack
            caps = {"edit_posts": True} | ({"publish_posts": True} if user.can_publish else {})
            caps |= {"upload_files": True} if user.can_upload else {}
            body |= {"username": user.login, "roles": [user.role], "capabilities": caps}
        return Response.json(store.only_fields(body, req.arg("_fields")))


def _multi(req: Request, name: str) -> list[str]:
    """The values of query argument ``name`` (or ``name[]``), repeated or comma-separated."""
    values = req.query.get(name, []) + req.query.get(name + "[]", [])
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _statuses(req: Request, user: User | None) -> list[str]:
    """The statuses a post list asks for (``publish`` unless told); only a user may ask others."""
    statuses = _multi(req, "status") or ["publish"]
    if any(s not in (*STATUSES, "trash", "any") for s in statuses):
        allowed = ", ".join((*STATUSES, "trash", "any"))
        raise store.invalid_param(
            "status", f"status[0] is not one of {allowed}.", "rest_not_in_enum"
        )
    if user is None and statuses != ["publish"]:
        raise WpError("rest_forbidden_status", 401)
    return statuses


def _paging(req: Request) -> tuple[int, int]:
    """A post list's ``per_page`` (1 to 100, 10 unless told) and ``page`` (from 1)."""
    try:
        per_page, page = int(req.arg("per_page") or 10), int(req.arg("page") or 1)
    except ValueError as exc:
        raise store.invalid_param("per_page", "per_page is not of type integer.") from exc
    if not 1 <= per_page <= 100 or page < 1:
        raise store.invalid_param("per_page", "per_page must be between 1 and 100 (inclusive)")
    return per_page, page


def _date_bounds(req: Request) -> dict[str, datetime | None]:
    """A post list's ``after`` and ``before`` instants (site time unless an offset is given),
    None where not given."""
    bounds = {k: store.parse_wp_date(req.arg(k) or "", utc=False) for k in ("after", "before")}
    for name, when in bounds.items():
        if req.arg(name) and when is None:
            raise store.invalid_param(name, "Invalid date.", "rest_invalid_date")
    return bounds


def _page_links(collection: str, req: Request, page: int, pages: int) -> list[str]:
    """The ``Link`` header's entries for the pages before and after ``page`` that exist."""
    query = {k: v[-1] for k, v in req.query.items()}
    return [
        f'<{collection}?{urlencode(query | {"page": page + step})}>; rel="{rel}"'
        for step, rel in ((-1, "prev"), (1, "next"))
        if 1 <= page + step <= pages
    ]


def _media_statuses(req: Request, user: User | None) -> set[str]:
    """The statuses a media list asks for: inherit unless told; only a user may ask others."""
    statuses = _multi(req, "status") or ["inherit"]
    if any(s not in MEDIA_STATUSES for s in statuses):
        message = "status[0] is not one of inherit, private, and trash."
        raise store.invalid_param("status", message, "rest_not_in_enum")
    if user is None and set(statuses) != {"inherit"}:
        raise WpError("rest_forbidden_status", 401)
    return set(statuses)


def _raw(value: Any) -> str:
    """A text field given as a string or as ``{"raw": …}``."""
    if isinstance(value, dict):
        value = value.get("raw", "")
    return "" if value is None else str(value)


def _disposition(req: Request) -> str:
    """A raw upload's file name, after the checks upload_from_data makes, in its order."""
    if not req.body:
        raise WpError("rest_upload_no_data", 400)
    if not req.header("content-type"):
        raise WpError("rest_upload_no_content_type", 400)
    disposition = req.header("content-disposition")
    if not disposition:
        raise WpError("rest_upload_no_content_disposition", 400)
    name = wpm.filename_from_disposition(disposition)
    if not name:
        raise WpError("rest_upload_invalid_disposition", 400, wpm.INVALID_DISPOSITION)
    return name
