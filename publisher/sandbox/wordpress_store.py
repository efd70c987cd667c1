"""WordPress core's post rules as the sandbox imitates them: body checks, slugs, dates, JSON shapes.

Pure: no HTTP, no clock (``now`` is a parameter). Follows wp_insert_post, wp_unique_post_slug,
rest_get_date_with_gmt and WP_REST_Posts_Controller (prepare_item_for_database/…_for_response).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

SITE_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")  # no daylight saving time
STATUSES = ("publish", "future", "draft", "pending", "private")
WP_TIME = "%Y-%m-%dT%H:%M:%S"
TEXT_FIELDS = ("title", "content", "excerpt")
OTHER_FIELDS = ("comment_status", "ping_status", "format", "meta", "sticky", "template")
MESSAGES = {
    "incorrect_password": "The provided password is an invalid application password.",
    "invalid_username": "Unknown username. Check again or try your email address.",
    "rest_cannot_create": "Sorry, you are not allowed to create posts as this user.",
    "rest_cannot_publish": "Sorry, you are not allowed to publish posts in this post type.",
    "rest_cannot_edit_others": "Sorry, you are not allowed to update posts as this user.",
    "rest_cannot_edit": "Sorry, you are not allowed to edit this post.",
    "rest_cannot_delete": "Sorry, you are not allowed to delete this post.",
    "rest_invalid_author": "Invalid author ID.",
    "rest_post_exists": "Cannot create existing post.",
    "rest_post_invalid_id": "Invalid post ID.",
    "rest_already_trashed": "The post has already been deleted.",
    "rest_forbidden": "Sorry, you are not allowed to do that.",
    "rest_forbidden_status": "Status is forbidden.",
    "rest_forbidden_context": "Sorry, you are not allowed to edit posts in this post type.",
    "rest_not_logged_in": "You are not currently logged in.",
    "rest_no_route": "No route was found matching the URL and request method.",
    "rest_post_invalid_page_number": "The page number requested is larger than the number of"
    " pages available.",
    "rest_too_many_requests": "Too many requests.",
    "empty_content": "Content, title, and excerpt are empty.",
    "rest_upload_no_data": "No data supplied.",
    "rest_upload_no_content_type": "No Content-Type supplied.",
    "rest_upload_no_content_disposition": "No Content-Disposition supplied.",
    "rest_upload_hash_mismatch": "Content hash did not match expected.",
    "rest_trash_not_supported": "The post does not support trashing. Set 'force=true' to delete.",
    "internal_server_error": "<p>There has been a critical error on this website.</p>",
}


class WpError(Exception):
    """A REST error answer: ``{"code", "message", "data": {"status", …}}``."""

    def __init__(self, code: str, status: int, message: str = "", **data: Any) -> None:
        self.code, self.status, self.data = code, status, data
        self.message = message or MESSAGES.get(code, code)
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"status": self.status, **self.data},
        }


def invalid_param(name: str, message: str, code: str = "rest_invalid_type") -> WpError:
    details = {name: {"code": code, "message": message, "data": None}}
    text = f"Invalid parameter(s): {name}"
    return WpError("rest_invalid_param", 400, text, params={name: message}, details=details)


def prepare(
    data: dict[str, Any], status: str, user_id: int, can_publish: bool, authors: set[int]
) -> dict[str, Any]:
    """Checked, sanitised values of a create or update body (``status``: the post's current one).

    Raises WpError 400 for an invalid parameter, 403 for what this user may not do.
    """
    out: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in data:
            value = data[name].get("raw", "") if isinstance(data[name], dict) else data[name]
            if not isinstance(value, str):
                raise invalid_param(name, f"{name} is not of type string, object.")
            out[name] = value
    if "status" in data:
        if data["status"] not in STATUSES:
            allowed = ", ".join(STATUSES)
            raise invalid_param("status", f"status is not one of {allowed}.", "rest_not_in_enum")
        out["status"] = data["status"]
    for name in ("date", "date_gmt"):
        if data.get(name) is not None:
            when = parse_wp_date(str(data[name]), utc=name == "date_gmt")
            if when is None:
                raise invalid_param(name, "Invalid date.", "rest_invalid_date")
            out.setdefault("date_gmt", when)  # like core, ``date`` wins over ``date_gmt``
    for name in ("categories", "tags", "featured_media"):
        if name in data:
            raw = data[name]
            items = raw.split(",") if isinstance(raw, str) else raw
            items = items if isinstance(items, list) else [items]
            for i, item in enumerate(items):
                if isinstance(item, bool) or not re.fullmatch(r"\d+", str(item).strip()):
                    raise invalid_param(name, f"{name}[{i}] is not of type integer.")
            ids = [int(str(item).strip()) for item in items]
            out[name] = ids if name != "featured_media" else (ids or [0])[0]
    if "slug" in data:
        out["slug"] = sanitize_title(str(data["slug"] or ""))
    if data.get("author") not in (None, "", user_id, str(user_id)):
        if not can_publish:
            raise WpError("rest_cannot_edit_others", 403)
        if not str(data["author"]).isdigit() or int(data["author"]) not in authors:
            raise WpError("rest_invalid_author", 400)
        out["author"] = int(data["author"])
    if out.get("status", status) in ("publish", "future", "private") and not can_publish:
        raise WpError("rest_cannot_publish", 403)
    out["other"] = {k: data[k] for k in OTHER_FIELDS if k in data}
    return out


def remove_accents(text: str) -> str:
    """Vietnamese (and other Latin) letters to ASCII, as formatting.php's table does."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def sanitize_title(text: str) -> str:
    """sanitize_title_with_dashes(…, 'save'): ASCII, lowercase, dashes, no markup."""
    text = remove_accents(re.sub(r"<[^>]*>", "", text)).lower().replace(".", "-")
    text = re.sub(r"[^a-z0-9 _-]", "", text.encode("ascii", "ignore").decode())
    return re.sub(r"-+", "-", re.sub(r"\s+", "-", text)).strip("-")


def unique_slug(slug: str, taken: set[str]) -> str:
    """``slug``, or ``slug-2``, ``slug-3``… the first one not taken, within 200 characters."""
    slug = slug[:200]
    if slug not in taken:
        return slug
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = slug[: 200 - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def parse_wp_date(value: str, utc: bool) -> datetime | None:
    """rest_get_date_with_gmt: an explicit offset (or Z) wins; otherwise UTC or site-local time."""
    text = value.strip()
    m = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)?", text)
    if not m:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC if utc else SITE_TZ)
    return when.astimezone(UTC).replace(microsecond=0)


def settle_status(status: str, date_gmt: datetime, now: datetime) -> str:
    """wp_insert_post: publish ≥ 60 s ahead is stored as future; future < 60 s ahead as publish."""
    ahead = (date_gmt - now).total_seconds()
    if status == "publish" and ahead >= 60:
        return "future"
    if status == "future" and ahead < 60:
        return "publish"
    return status


@dataclass
class WpPost:
    id: int
    slug: str
    status: str
    title: str
    content: str
    excerpt: str
    date_gmt: datetime
    modified_gmt: datetime
    author: int
    generated_slug: str = ""
    categories: list[int] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    featured_media: int = 0
    other: dict[str, Any] = field(default_factory=dict)  # comment_status, format, meta, …
    desired_slug: str = ""  # the slug before trashing (_wp_desired_post_slug)

    def to_json(self, base: str, context: str) -> dict[str, Any]:
        """The REST shape; ``context`` is view, embed or edit (edit adds raw values)."""
        local, modified_local = (
            self.date_gmt.astimezone(SITE_TZ),
            self.modified_gmt.astimezone(SITE_TZ),
        )
        link = f"{base}/?p={self.id}"
        edit = context == "edit"

        def rendered(raw: str, **more: Any) -> dict[str, Any]:
            return {"raw": raw, "rendered": raw, **more} if edit else {"rendered": raw, **more}

        body: dict[str, Any] = {
            "id": self.id,
            "date": local.strftime(WP_TIME),
            "date_gmt": self.date_gmt.strftime(WP_TIME),
            "guid": rendered(link),
            "modified": modified_local.strftime(WP_TIME),
            "modified_gmt": self.modified_gmt.strftime(WP_TIME),
            "slug": self.slug,
            "status": self.status,
            "type": "post",
            "link": link,
            "title": rendered(self.title),
            "content": rendered(self.content, protected=False, block_version=0),
            "excerpt": rendered(self.excerpt, protected=False),
            "author": self.author,
            "featured_media": self.featured_media,
            "comment_status": self.other.get("comment_status", "open"),
            "ping_status": self.other.get("ping_status", "open"),
            "sticky": bool(self.other.get("sticky", False)),
            "template": self.other.get("template", ""),
            "format": self.other.get("format", "standard"),
            "meta": self.other.get("meta", []),
            "categories": self.categories or [1],
            "tags": self.tags,
        }
        if edit:
            body["permalink_template"] = f"{base}/%postname%/"
            body["generated_slug"] = self.generated_slug or self.slug
        if context == "embed":
            keep = ("id", "date", "slug", "type", "link", "title", "excerpt", "author")
            body = {k: body[k] for k in keep}
        body["_links"] = {
            "self": [{"href": f"{base}/wp-json/wp/v2/posts/{self.id}"}],
            "collection": [{"href": f"{base}/wp-json/wp/v2/posts"}],
        }
        return body


def only_fields(body: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """``_fields=id,title.raw,slug``: keep those keys (one level of nesting)."""
    if not fields:
        return body
    out: dict[str, Any] = {}
    for name in (f.strip() for f in fields.split(",") if f.strip()):
        top, _, sub = name.partition(".")
        if top not in body:
            continue
        value = body[top]
        if sub and isinstance(value, dict):
            if sub in value:
                out.setdefault(top, {})[sub] = value[sub]
        else:
            out[top] = value
    return out
