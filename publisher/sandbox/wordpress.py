"""The sandbox's WordPress REST API (``/wordpress`` ≙ a site root): posts, users/me, discovery.

Owns authentication by application password, roles and the routes (§3 of platform-apis.md);
core's post rules and error texts live in wordpress_store.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from publisher.sandbox import credentials
from publisher.sandbox import wordpress_store as store
from publisher.sandbox.routing import BadBody, Context, Request, Response, Router
from publisher.sandbox.wordpress_store import STATUSES, TEXT_FIELDS, WpError, WpPost

API = r"/wordpress/wp-json/wp/v2"
Route = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True)
class User:
    id: int
    login: str
    role: str

    @property
    def can_publish(self) -> bool:
        return self.role in ("editor", "administrator")

    def may_change(self, post: WpPost) -> bool:
        return self.can_publish or (self.id == post.author and post.status != "publish")


USERS = {
    credentials.WORDPRESS_USER: User(1, credentials.WORDPRESS_USER, "editor"),
    credentials.WORDPRESS_CONTRIBUTOR: User(2, credentials.WORDPRESS_CONTRIBUTOR, "contributor"),
}


def alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


class WordPress:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.posts: dict[int, WpPost] = {}
        self.next_id = 1
        self.router: Router | None = None

    @property
    def site(self) -> str:
        return f"{self.ctx.base_url()}/wordpress"

    def register(self, router: Router) -> None:
        self.router = router
        post = API + r"/posts/(?P<id>\d+)/?"
        for method, pattern, route in (
            ("POST", API + r"/posts/?", self.create),
            ("GET", API + r"/posts/?", self.list),
            ("GET", post, self.get),
            ("POST", post, self.update),
            ("PUT", post, self.update),
            ("DELETE", post, self.delete),
            ("GET", API + r"/users/me/?", self.me),
            ("GET", r"/wordpress/wp-json/?", self.index),
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
        post.featured_media = values.get("featured_media", post.featured_media)
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
        self.ctx.record(where, post.title, post.content, fields=data, kind="post")
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
        per_page, page = _paging(req)
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
        total, pages = len(found), math.ceil(len(found) / per_page)
        if total and page > pages:
            raise WpError("rest_post_invalid_page_number", 400)
        chunk = found[(page - 1) * per_page : page * per_page]
        fields = req.arg("_fields")
        answer = Response.json(
            [store.only_fields(p.to_json(self.site, context), fields) for p in chunk]
        )
        answer.headers += [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(pages))]
        links = _page_links(self.site, req, page, pages)
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
        return Response.json(
            store.only_fields(post.to_json(self.site, context), req.arg("_fields"))
        )

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

    def me(self, req: Request, _: dict[str, str]) -> Response:
        user = self.user(req)
        if user is None:
            raise WpError("rest_not_logged_in", 401)
        link = f"{self.site}/author/{user.login}/"
        body: dict[str, Any] = {"id": user.id, "name": user.login, "url": "", "description": ""}
        body |= {"link": link, "slug": user.login, "avatar_urls": {}}
        if req.arg("context") == "edit":
            caps = {"edit_posts": True, "publish_posts": user.can_publish}
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


def _page_links(site: str, req: Request, page: int, pages: int) -> list[str]:
    """The ``Link`` header's entries for the pages before and after ``page`` that exist."""
    query = {k: v[-1] for k, v in req.query.items()}
    return [
        f'<{site}/wp-json/wp/v2/posts?{urlencode(query | {"page": page + step})}>; rel="{rel}"'
        for step, rel in ((-1, "prev"), (1, "next"))
        if 1 <= page + step <= pages
    ]
