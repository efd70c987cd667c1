"""WordPress portal adapter: the REST API with an Application Password, idempotent by slug.

Owns the wire format of ``/wp-json/wp/v2/posts``; never reads the environment. A post's picture
files go to the site's media library first (``wordpress_media``): the cover becomes the post's
``featured_media``, the other pictures figures after the text.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from publisher.channels.base import (
    Ambiguous,
    ChannelError,
    CheckResult,
    Outgoing,
    Receipt,
    Temporary,
    calling,
    retry_after_seconds,
    unreachable,
)
from publisher.channels.wordpress_media import (
    Attachment,
    WordPressMedia,
    figure,
    site_error,
    site_failure,
)
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Channel, WordPressSettings, settings_as
from publisher.i18n import N_
from publisher.metrics import NoFigures, Reading
from publisher.text import slugify
from publisher.tokens import TokenStore

logger = logging.getLogger(__name__)

_TAG = re.compile(r"<[^>]*>")
_FIELDS = "id,slug,status,link,date_gmt"


def post_slug(post: Outgoing) -> str:
    """The deterministic ASCII slug that identifies ``post`` on a portal (WordPress, webhook)."""
    title = html.unescape(_TAG.sub(" ", post.fields.get("title", "")))
    base = slugify(title, 60) or "bai-viet"
    return f"{base}-{post.idempotency_key.replace('-', '')[:8].lower()}"


_NO_VIEWS = N_(
    'the site has no views field on its posts: is WP-PostViews active (or set stats = "none")?'
)
# Why a site without the stats plugin's route reads no figures (the stored note; shown translated).
_NO_ROUTE = {
    "Post Views Counter": N_(
        'the site has no Post Views Counter REST route: install the plugin, or set stats = "none"'
    ),
    "WP-PostViews": N_(
        'the site has no WP-PostViews REST route: install the plugin, or set stats = "none"'
    ),
}


class WordPressAdapter:
    """Publishes portal posts through ``POST /wp-json/wp/v2/posts`` with a unique slug."""

    def __init__(
        self,
        channel: Channel,
        client: httpx.Client,
        secrets: Mapping[str, str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        tokens: TokenStore | None = None,
    ) -> None:
        self.channel = channel
        self.client = client
        self.clock = clock
        s = settings_as(channel, WordPressSettings)
        self.base = s.base_url.rstrip("/")
        self.username = s.username
        self.categories = list(s.category_ids)
        self.auth = httpx.BasicAuth(self.username, secrets["password"])
        self.posts_url = f"{self.base}/wp-json/wp/v2/posts"
        self.stats = s.stats
        # The site's media library: also a MediaHost for channels that need public addresses.
        self.media = WordPressMedia(
            self.base, client, self.auth, username=self.username, clock=clock
        )

    def publish(self, post: Outgoing) -> Receipt:
        slug = post_slug(post)
        existing = self._find(slug)
        if existing is not None:
            logger.info("%s: post %s already exists as %s", self.channel.id, post.post_id, slug)
            return existing
        try:
            cover, content = self._pictures(post)  # uploaded (or found) before the post is made
        except Ambiguous as exc:  # a picture's upload went unanswered, but no post was made
            raise Temporary(  # the next attempt finds the picture by its name before any upload
                f"{exc.reason}; the next attempt looks it up first",
                status=exc.status,
                code=exc.code,
            ) from exc
        payload: dict[str, Any] = {
            "title": post.fields.get("title", ""),
            "content": content,
            "excerpt": post.fields.get("excerpt", ""),
            "status": "publish",
            "slug": slug,
        }
        if self.categories:
            payload["categories"] = self.categories
        if cover is not None:
            payload["featured_media"] = cover.id
        with calling(creates=True):
            resp = self.client.post(self.posts_url, json=payload, auth=self.auth)
        if resp.status_code >= 500:
            raise Ambiguous(
                f"WordPress answered {resp.status_code} to the create; the post may exist",
                status=resp.status_code,
                code=site_error(resp)[0] or None,
            )
        if not resp.is_success:
            raise self._failure(resp)
        try:
            created = resp.json()
            remote_id, got = str(created["id"]), str(created.get("slug") or "")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Ambiguous(
                f"WordPress answered {resp.status_code} without a post id; the post may exist",
                status=resp.status_code,
            ) from exc
        if got not in (slug, ""):
            return self._undouble(slug, remote_id, got, created)
        if cover is not None:
            self._featured(post, remote_id, cover, created)
        return _receipt(created)

    def _pictures(self, post: Outgoing) -> tuple[Attachment | None, str]:
        """The cover's attachment (for ``featured_media``) and the body with the pictures: a
        cover that is only an address (``featured_media`` takes an attachment, not a URL) as a
        figure before the text, the other pictures as figures after it, in order."""
        content = post.fields.get("content", "")
        before: list[str] = []
        after: list[str] = []
        cover: Attachment | None = None
        if post.cover is not None:
            if post.cover.is_file:
                cover = self.media.attachment(post.cover)
            elif post.cover.url:
                before.append(figure(post.cover.url, post.cover.alt))
        for image in post.images:
            url = self.media.attachment(image).url if image.is_file else image.url
            if url:
                after.append(figure(url, image.alt))
        if not (before or after):
            return cover, content
        return cover, "\n".join([*before, content, *after])

    def _featured(
        self, post: Outgoing, remote_id: str, cover: Attachment, created: Mapping[str, Any]
    ) -> None:
        """WordPress makes the post even when ``featured_media`` names no attachment (it was
        deleted after we remembered it) and answers 0: upload the cover again and set it."""
        try:
            got = int(created["featured_media"])
        except (KeyError, TypeError, ValueError):
            return  # not said: nothing to correct
        if got == cover.id or post.cover is None:
            return
        logger.warning(
            "%s: WordPress did not take attachment %s as the cover of post %s; setting it again",
            self.channel.id,
            cover.id,
            remote_id,
        )
        self.media.forget(post.cover)
        try:
            again = self.media.attachment(post.cover)
            with calling(creates=False, doing="setting a post's cover"):
                resp = self.client.post(
                    f"{self.posts_url}/{remote_id}",
                    json={"featured_media": again.id},
                    auth=self.auth,
                )
            if not resp.is_success:
                raise self._failure(resp)
        except ChannelError as exc:
            logger.warning(
                "%s: post %s is published without its cover (%s)",
                self.channel.id,
                remote_id,
                exc.reason,
            )

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        # The slug is unique to the post, so a match is ours whenever it was made.
        return self._find(post_slug(post))

    def check(self) -> CheckResult:
        url = f"{self.base}/wp-json/wp/v2/users/me"
        try:
            with calling(creates=False):
                resp = self.client.get(url, params={"context": "edit"}, auth=self.auth)
        except ChannelError as exc:
            return unreachable(self.base, exc)
        if resp.status_code == 200:
            try:
                me = resp.json()
                name = str(me.get("name") or me.get("slug") or self.username)
                caps = me.get("capabilities")
            except (ValueError, AttributeError):
                return CheckResult(False, f"{url} did not answer JSON: is this WordPress?")
            # WordPress lists the capabilities a user has (``allcaps``), not those it lacks
            listed = isinstance(caps, dict) and bool(caps)
            can = caps.get("publish_posts") is True if listed else None
            if can is False:
                return CheckResult(
                    False,
                    f"logged in as {name}, who cannot publish posts: give '{self.username}' "
                    "the Author or Editor role (publish_posts)",
                )
            how = "can publish posts" if can else "publishing rights not reported"
            if listed and caps.get("upload_files") is not True:
                how += ", but cannot upload pictures (upload_files): posts with picture files fail"
            return CheckResult(True, f"logged in to {self.base} as {name} ({how})")
        return CheckResult(False, self._failure(resp).reason)

    def pacing(self) -> float:
        return 0.0

    # -- figures (publisher.metrics.MetricsReader) ----------------------------------------------

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        """The post's view count, where the site keeps one (setting ``stats``):

        - ``post-views-counter``: the plugin's ``GET /wp-json/post-views-counter/get-post-views/
          {id}``, which answers the count as a bare JSON number (the plugin's
          ``register_rest_route('post-views-counter', '/get-post-views/(?P<id>(\\d+,?)+)')``,
          whose callback returns ``pvc_get_post_views()``, an int);
        - ``wp-postviews``: the ``views`` field WP-PostViews adds to the post's REST answer
          (its readme: "The count on the REST API as a views field").

        ``none`` (the default): NoFigures. A site without the plugin's route or field: NoFigures
        saying so; never an invented zero."""
        if self.stats == "none":
            raise NoFigures(N_('the site exposes no view counts (stats = "none")'))
        if not remote_id.isdigit():
            raise NoFigures(N_("the post's id is not a WordPress post id"))
        if self.stats == "post-views-counter":
            where = f"{self.base}/wp-json/post-views-counter/get-post-views/{remote_id}"
            value = self._stats_get(where, {}, "Post Views Counter")
            source = "WordPress Post Views Counter: get-post-views"
        else:
            where = f"{self.posts_url}/{remote_id}"
            answer = self._stats_get(where, {"_fields": "id,views"}, "WP-PostViews")
            if not isinstance(answer, dict) or "views" not in answer:
                raise NoFigures(_NO_VIEWS)
            value, source = answer["views"], "WordPress WP-PostViews: views"
        views = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            views = int(value)
        if views is None or views < 0:
            raise Temporary(f"{where} answered {str(value)[:40]!r}, not a view count")
        return Reading(views=views, source=source)

    def _stats_get(self, where: str, params: dict[str, str], plugin: str) -> object:
        """One GET of the stats (signed in, as publishing is): its JSON, or the outcome."""
        with calling(creates=False):
            resp = self.client.get(where, params=params, auth=self.auth)
        code, _ = site_error(resp)
        if resp.status_code == 404 and code == "rest_no_route":
            raise NoFigures(_NO_ROUTE[plugin])
        if not resp.is_success:
            raise site_failure(resp, base=self.base, username=self.username, now=self.clock.now())
        try:
            answer: object = resp.json()
        except ValueError as exc:
            raise Temporary(f"{where} did not answer JSON", status=resp.status_code) from exc
        return answer

    def _find(self, slug: str) -> Receipt | None:
        """The post with exactly this slug in any status but trash, or None. Sends nothing new."""
        params = {"slug": slug, "status": "any", "context": "edit", "_fields": _FIELDS}
        with calling(creates=False):
            resp = self.client.get(self.posts_url, params=params, auth=self.auth)
        if resp.status_code >= 500:
            raise Temporary(
                f"WordPress answered {resp.status_code} to the slug lookup",
                retry_after=retry_after_seconds(resp.headers.get("Retry-After"), self.clock.now()),
                status=resp.status_code,
            )
        if not resp.is_success:
            raise self._failure(resp)
        try:
            rows = resp.json()
        except ValueError:
            rows = None
        if not isinstance(rows, list):
            raise Temporary(f"the slug lookup at {self.posts_url} did not answer a list")
        matches = [r for r in rows if isinstance(r, dict) and r.get("slug") == slug]
        return _receipt(matches[0]) if matches else None

    def _undouble(
        self, slug: str, dup_id: str, dup_slug: str, created: Mapping[str, Any]
    ) -> Receipt:
        """WordPress renamed our slug (a concurrent attempt holds it): keep one post only."""
        where = f"post {dup_id} at {created.get('link') or self.posts_url + '/' + dup_id}"
        try:
            original = self._find(slug)
        except ChannelError as exc:
            raise Ambiguous(
                f"WordPress renamed slug {slug} to {dup_slug} ({where}) and the original could "
                f"not be looked up ({exc.reason}): if a post {slug} exists, delete {dup_id}"
            ) from exc
        if original is None:
            # The slug is held by something that is not a post of ours (a page, a media file):
            # ours is the only copy, live under the new slug. Calling this unclear would make
            # the dispatcher's lookup miss it and send again, creating ``-3``.
            logger.warning(
                "%s: WordPress renamed %s to %s (post %s)", self.channel.id, slug, dup_slug, dup_id
            )
            return _receipt(created)
        try:
            with calling(creates=False):
                resp = self.client.delete(
                    f"{self.posts_url}/{dup_id}", params={"force": "true"}, auth=self.auth
                )
        except ChannelError as exc:
            name = type(exc.__cause__).__name__
            raise Ambiguous(
                f"duplicate {where} could not be deleted ({name}); the original is "
                f"post {original.remote_id}: delete the duplicate by hand"
            ) from exc
        if not (resp.is_success or resp.status_code in (404, 410)):  # 404/410: already gone
            code, message = site_error(resp)
            raise Ambiguous(
                f"duplicate {where} could not be deleted ({resp.status_code} {code} {message}); "
                f"the original is post {original.remote_id}: delete the duplicate by hand",
                status=resp.status_code,
                code=code or None,
            )
        logger.warning(
            "%s: deleted duplicate post %s (%s); kept %s", self.channel.id, dup_id, dup_slug, slug
        )
        return Receipt(original.remote_id, original.url, {**original.extra, "deleted": dup_id})

    def _failure(self, resp: httpx.Response) -> ChannelError:
        """Map a non-2xx, non-5xx answer (or any answer to ``check``) to one outcome."""
        return site_failure(resp, base=self.base, username=self.username, now=self.clock.now())


def _receipt(row: Mapping[str, Any]) -> Receipt:
    extra = {k: str(row[k]) for k in ("slug", "status", "date_gmt") if row.get(k) is not None}
    return Receipt(str(row["id"]), str(row["link"]) if row.get("link") else None, extra)
