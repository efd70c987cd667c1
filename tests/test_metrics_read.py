"""Each adapter's ``metrics()`` against httpx.MockTransport answers shaped as the platforms
document them: Graph's insights and fields, Zalo's getslice, Post Views Counter's number,
WP-PostViews' REST field, the webhook's stats lookup; errors mapped as publishing maps them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.channels.base import AuthError, Permanent, Temporary, Throttled
from publisher.channels.email_desk import EmailAdapter
from publisher.channels.facebook import FacebookAdapter
from publisher.channels.tokens import InMemoryTokenStore, seed_digest
from publisher.channels.webhook import WebhookAdapter, get_content
from publisher.channels.wordpress import WordPressAdapter
from publisher.channels.zalo import ZaloAdapter
from publisher.clock import FakeClock
from publisher.config import EmailSettings, load_config
from publisher.config.graph_metrics import INVALID_METRIC, accepted, names_for
from publisher.errors import ConfigError
from publisher.metrics import MetricsReader, NoFigures, Reading
from publisher.signing import sign, signing_key
from publisher.tokens import Tokens
from tests.fakes import DUMMY_WEBHOOK_SECRET, make_channel

NOW = datetime(2024, 6, 20, 2, 0, tzinfo=UTC)
POST = "100000000000000_122000000000007"
TOKEN = f"test-{secrets.token_hex(8)}"  # made per run: no token-shaped literal in the tree
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


# -- Facebook ----------------------------------------------------------------------------------

# GET /{post-id}/insights?metric=… answers, per Meta's Post Insights reference
# (developers.facebook.com/docs/graph-api/reference/post/insights; "Insights Result": name,
# period, values[], title, description, id).
VALUES: dict[str, Any] = {
    "post_total_media_view_unique": 1520,
    "post_impressions_unique": 999,
    "post_reactions_by_type_total": {"like": 40, "love": 7, "care": 2},
    "post_clicks": 63,
}


def insight(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "period": "lifetime",
        "values": [{"value": VALUES[name]}],
        "title": name,
        "description": "Lifetime: …",
        "id": f"{POST}/insights/{name}/lifetime",
    }


def graph(
    refuse: frozenset[str] = frozenset(), fields: dict[str, Any] | None = None
) -> tuple[Handler, list[httpx.Request]]:
    """A Graph that refuses ``refuse``d metric names with #100 (Page Insights reference: "The
    API returns an invalid metric error when calling any of these metrics")."""
    seen: list[httpx.Request] = []
    node = (
        fields
        if fields is not None
        else {
            "shares": {"count": 11},
            "comments": {"data": [], "summary": {"order": "ranked", "total_count": 5}},
            "id": POST,
        }
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        if request.url.path.endswith("/insights"):
            names = request.url.params["metric"].split(",")
            if refuse & set(names):
                error = {"message": INVALID_METRIC, "type": "OAuthException", "code": 100}
                return httpx.Response(400, json={"error": error})
            return httpx.Response(200, json={"data": [insight(n) for n in names]})
        assert request.url.params["fields"] == "shares,comments.summary(true)"
        return httpx.Response(200, json=node)

    return handler, seen


def facebook(handler: Handler, version: str = "v23.0") -> FacebookAdapter:
    channel = make_channel(
        "fb", "facebook", "Page", templates="facebook", page_id="100000000000000",
        base_url="https://graph.test", api_version=version,
    )  # fmt: skip
    return FacebookAdapter(channel, client(handler), {"page_token": TOKEN}, clock=FakeClock(NOW))


def test_facebook_reads_insights_and_fields() -> None:
    handler, seen = graph()
    reading = facebook(handler).metrics(POST, None)
    assert reading == Reading(
        views=1520,
        reactions=49,
        reactions_by_type={"like": 40, "love": 7, "care": 2},
        comments=5,
        shares=11,
        clicks=63,
        source=reading.source,
    )
    assert "post_total_media_view_unique" in reading.source and "v23.0" in reading.source
    first = seen[0]
    assert first.url.path == f"/v23.0/{POST}/insights"
    wanted = first.url.params["metric"].split(",")
    assert wanted == ["post_total_media_view_unique", "post_reactions_by_type_total", "post_clicks"]
    assert len(seen) == 2  # one insights call, one fields call


def test_graph_omits_shares_when_none_and_comments_without_permission() -> None:
    # Graph leaves out fields without a value: no ``shares`` on a post nobody shared; no
    # ``comments`` summary when the token may not read them.
    handler, _ = graph(fields={"id": POST})
    reading = facebook(handler).metrics(POST, None)
    assert reading.shares == 0 and reading.comments is None and reading.views == 1520


def test_a_post_without_insights_yet_has_none_of_their_figures() -> None:
    # Insights are kept only for Pages with 100 likes or more and updated about daily (Page
    # Insights reference, "Limitations"): an answer may hold no data at all.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/insights"):
            return httpx.Response(200, json={"data": []})
        return httpx.Response(200, json={"id": POST, "shares": {"count": 2}})

    reading = facebook(handler).metrics(POST, None)
    assert (reading.views, reading.reactions, reading.clicks) == (None, None, None)
    assert reading.shares == 2 and reading.reactions_by_type is None


def test_a_refused_metric_falls_back_to_the_next_name_and_is_remembered() -> None:
    handler, seen = graph(refuse=frozenset({"post_total_media_view_unique"}))
    adapter = facebook(handler, "v24.0")
    reading = adapter.metrics(POST, None)
    assert reading.views == 999  # post_impressions_unique, the fallback
    assert reading.clicks == 63 and reading.reactions == 49
    assert "post_impressions_unique" in reading.source
    seen.clear()
    adapter.metrics(POST, None)  # the next post asks for the refused name no more
    assert "post_total_media_view_unique" not in str(seen[0].url)
    assert len(seen) == 2


def test_a_figure_refused_under_every_name_is_none_not_zero() -> None:
    refuse = frozenset({"post_total_media_view_unique", "post_impressions_unique"})
    handler, _ = graph(refuse=refuse)
    reading = facebook(handler, "v21.0").metrics(POST, None)
    assert reading.views is None and reading.clicks == 63 and reading.shares == 11


def test_older_versions_ask_for_the_older_name_first() -> None:
    assert names_for("v21.0", "views") == (
        "post_impressions_unique",
        "post_total_media_view_unique",
    )
    assert names_for("v26.0", "views")[0] == "post_total_media_view_unique"
    assert names_for("", "views")[0] == "post_total_media_view_unique"  # the app's default
    today = NOW.date().replace(year=2026, month=12)
    assert accepted("v26.0", "post_total_media_view_unique", today)
    assert not accepted("v22.0", "post_total_media_view_unique", today)
    assert not accepted("v22.0", "post_impressions_unique", today)  # gone since 15 June 2026
    assert accepted("v22.0", "post_impressions_unique", today.replace(year=2026, month=1))
    assert not accepted("v26.0", "post_made_up", today)


@pytest.mark.parametrize(
    ("error", "status", "outcome"),
    [
        # Graph's error codes (graph-api/guides/error-handling): 190/463 expired token, 4 and 32
        # rate limits, 2 a temporary failure (a read creates nothing: Temporary)
        ({"code": 190, "error_subcode": 463, "message": "Session has expired"}, 400, AuthError),
        ({"code": 4, "message": "(#4) Application request limit reached"}, 400, Throttled),
        ({"code": 32, "message": "(#32) Page request limit reached"}, 400, Throttled),
        ({"code": 2, "message": "Service temporarily unavailable"}, 500, Temporary),
        ({"code": 100, "error_subcode": 33, "message": "Object does not exist"}, 400, Permanent),
    ],
)
def test_facebook_read_errors_map_as_publishing_does(
    error: dict[str, Any], status: int, outcome: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"type": "OAuthException", **error}})

    with pytest.raises(outcome) as info:
        facebook(handler).metrics(POST, None)
    assert TOKEN not in str(info.value)


def test_reads_share_the_usage_pacing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        usage = json.dumps({"call_count": 95, "total_time": 10, "total_cputime": 10})
        body = {"data": [insight(n) for n in request.url.params.get("metric", "").split(",") if n]}
        return httpx.Response(200, json=body, headers={"X-App-Usage": usage})

    adapter = facebook(handler)
    adapter.metrics(POST, None)
    assert adapter.pacing() > 0


# -- Zalo --------------------------------------------------------------------------------------

API = "https://openapi.zalo.test"
OAUTH = "https://oauth.zalo.test"


def zalo(handler: Handler, access: str = "at-live") -> ZaloAdapter:
    channel = make_channel(
        "zalo", "zalo", "OA", templates="zalo", app_id="1", api_base_url=API, oauth_base_url=OAUTH
    )
    store = InMemoryTokenStore()
    tokens = Tokens(access, "rt-live", NOW + timedelta(hours=20))
    store.save(f"zalo@{OAUTH}", tokens, seed_hash=seed_digest("rt-seed"))
    return ZaloAdapter(
        channel,
        client(handler),
        {"app_secret": "s", "refresh_token": "rt-seed"},
        clock=FakeClock(NOW),
        tokens=store,
        sleep=lambda s: None,
    )


def article(n: int) -> dict[str, Any]:
    """One ``getslice`` entry as platform-apis.md §2.3 records it ([3p]: data.medias[] with id,
    type, title, status, total_view, total_share, create_date, …)."""
    return {
        "id": f"art{n}",
        "type": "normal",
        "title": f"Bài {n}",
        "status": "show",
        "total_view": 100 + n,
        "total_share": n,
        "create_date": 1717200000000,
        "link_view": f"https://zalo.me/a/{n}",
    }


def test_zalo_finds_the_article_in_getslice_pages() -> None:
    offsets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["access_token"] == "at-live"  # noqa: S105 (a fake)
        if request.url.path.endswith("getdetail"):  # the documented fields: no totals
            return httpx.Response(200, json={"error": 0, "data": {"id": "art13", "title": "B"}})
        offset = int(request.url.params["offset"])
        offsets.append(str(offset))
        assert request.url.params["limit"] == "10"
        medias = [article(n) for n in range(offset, min(offset + 10, 25))]
        return httpx.Response(200, json={"error": 0, "data": {"medias": medias, "total": 25}})

    reading = zalo(handler).metrics("art13", None)
    assert (reading.views, reading.shares, reading.reactions) == (113, 13, None)
    assert offsets == ["0", "10"] and "getslice" in reading.source
    with pytest.raises(NoFigures, match="lists no such article"):
        zalo(handler).metrics("nowhere", None)


def test_zalo_pages_are_read_once_a_round_and_anew_the_next() -> None:
    """In a round (``begin_round``… ``end_round``, as the collector calls them) the articles
    share the getslice pages read for them; outside one, and in the next, they are read anew."""
    offsets: list[int] = []
    views = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getdetail"):
            return httpx.Response(200, json={"error": 0, "data": {"id": "x"}})
        offset = int(request.url.params["offset"])
        offsets.append(offset)
        medias = [article(n) for n in range(offset, min(offset + 10, 25))]
        for m in medias:
            m["total_view"] += views["n"]
        return httpx.Response(200, json={"error": 0, "data": {"medias": medias, "total": 25}})

    adapter = zalo(handler)
    adapter.begin_round()
    got = [adapter.metrics(f"art{n}", None).views for n in (3, 13, 24, 7)]
    assert got == [103, 113, 124, 107]
    assert offsets == [0, 10, 20]  # each page once for the four articles
    with pytest.raises(NoFigures):
        adapter.metrics("nowhere", None)
    assert offsets == [0, 10, 20]  # the short last page ended the list
    adapter.end_round()
    views["n"] = 5
    offsets.clear()
    assert adapter.metrics("art13", None).views == 118  # no round: read now
    assert offsets == [0, 10]
    adapter.begin_round()
    offsets.clear()
    assert adapter.metrics("art3", None).views == 108  # a new round: today's figures
    assert offsets == [0]
    adapter.end_round()


def test_zalo_uses_getdetail_totals_when_given() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("getdetail")
        data = {"id": "a1", "total_view": "42", "total_share": 3}
        return httpx.Response(200, json={"error": 0, "data": data})

    assert zalo(handler).metrics("a1", None) == Reading(
        views=42, shares=3, source="Zalo article/getdetail: total_view, total_share"
    )


def test_zalo_missing_fields_are_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getdetail"):
            return httpx.Response(200, json={"error": 0, "data": {}})
        medias = [{"id": "a1", "type": "normal", "title": "T"}]
        return httpx.Response(200, json={"error": 0, "data": {"articles": medias}})

    reading = zalo(handler).metrics("a1", None)
    assert reading.empty


def test_zalo_getdetail_refusing_the_id_falls_back_to_the_list() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getdetail"):
            return httpx.Response(200, json={"error": -201, "message": "id is invalid"})
        return httpx.Response(200, json={"error": 0, "data": {"medias": [article(1)]}})

    assert zalo(handler).metrics("art1", None).views == 101
    with pytest.raises(NoFigures):
        zalo(handler).metrics("art2", None)


def test_zalo_rate_limit_and_dead_token() -> None:
    def throttled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": -32, "message": "Exceed rate limit"})

    with pytest.raises(Throttled):
        zalo(throttled).metrics("a1", None)

    def refused(request: httpx.Request) -> httpx.Response:
        if request.url.host == "oauth.zalo.test":  # the refresh token is dead too
            return httpx.Response(200, json={"error": -14014, "message": "Invalid refresh token"})
        return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})

    with pytest.raises(AuthError):
        zalo(refused).metrics("a1", None)


# -- WordPress ---------------------------------------------------------------------------------

WP = "https://portal.test"


def wordpress(handler: Handler, stats: str) -> WordPressAdapter:
    channel = make_channel(
        "portal", "wordpress", "Portal", templates="portal", base_url=WP, username="bot",
        stats=stats,
    )  # fmt: skip
    return WordPressAdapter(channel, client(handler), {"password": "pw"}, clock=FakeClock(NOW))


def test_wordpress_without_stats_has_no_figures_and_asks_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with pytest.raises(NoFigures, match="no view counts"):
        wordpress(handler, "none").metrics("12", None)


def test_post_views_counter_answers_a_bare_number() -> None:
    # The plugin's route returns pvc_get_post_views(), an int: the body is e.g. ``57``.
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/wp-json/post-views-counter/get-post-views/12"
        assert request.headers["Authorization"].startswith("Basic ")
        return httpx.Response(200, content=b"57", headers={"Content-Type": "application/json"})

    reading = wordpress(handler, "post-views-counter").metrics("12", None)
    assert reading.views == 57 and reading.reactions is None


def test_wp_postviews_reads_the_views_field_and_a_missing_plugin_is_no_figures() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["_fields"] == "id,views"
        body: dict[str, Any] = {"id": 12}
        if request.url.path.endswith("/12"):
            body["views"] = 230
        return httpx.Response(200, json=body)

    assert wordpress(handler, "wp-postviews").metrics("12", None).views == 230
    with pytest.raises(NoFigures, match="no views field"):
        wordpress(handler, "wp-postviews").metrics("13", None)

    def no_route(request: httpx.Request) -> httpx.Response:
        error = {"code": "rest_no_route", "message": "No route was found", "data": {"status": 404}}
        return httpx.Response(404, json=error)

    with pytest.raises(NoFigures, match="no Post Views Counter REST route"):
        wordpress(no_route, "post-views-counter").metrics("12", None)


def test_wordpress_read_errors() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": "incorrect_password", "message": "bad"})

    with pytest.raises(AuthError):
        wordpress(refused, "post-views-counter").metrics("12", None)

    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "30"}, json={"code": "x"})

    with pytest.raises(Throttled):
        wordpress(busy, "wp-postviews").metrics("12", None)


def test_wordpress_stats_setting_is_checked(tmp_path: Path) -> None:
    shipped = (Path(__file__).resolve().parents[1] / "config.toml").read_text(encoding="utf-8")
    old = 'username = "publisher"\n'
    assert old in shipped
    path = tmp_path / "config.toml"
    path.write_text(shipped.replace(old, old + 'stats = "jetpack"\n', 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = str(info.value)
    assert "stats" in line and "jetpack" in line and "post-views-counter" in line
    assert "\n" not in line
    path.write_text(shipped.replace(old, old + 'stats = "wp-postviews"\n', 1), encoding="utf-8")
    portal = [c for c in load_config(path).channels.values() if c.adapter == "wordpress"]
    assert portal[0].setting("stats") == "wp-postviews"


# -- webhook and the mail desk -----------------------------------------------------------------

SECRET = DUMMY_WEBHOOK_SECRET  # well-formed, not a real secret


def webhook(handler: Handler, stats: bool) -> WebhookAdapter:
    channel = make_channel(
        "hook", "webhook", "Portal", templates="portal", url="https://hook.test/in", stats=stats
    )
    return WebhookAdapter(
        channel, client(handler), {"signing_secret": SECRET}, clock=FakeClock(NOW)
    )


def test_webhook_stats_lookup_is_signed_and_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/in/stats/p-41"
        stamp = int(request.headers["webhook-timestamp"])
        content = get_content(str(request.url))
        expected = sign(signing_key(SECRET), request.headers["webhook-id"], stamp, content)
        assert request.headers["webhook-signature"] == expected
        return httpx.Response(200, json={"views": 87, "shares": None, "comments": 2})

    reading = webhook(handler, True).metrics("p-41", None)
    assert (reading.views, reading.shares, reading.comments) == (87, None, 2)

    def unknown(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "no such item"})

    with pytest.raises(NoFigures, match="keeps no figures for this post"):
        webhook(unknown, True).metrics("p-41", None)
    with pytest.raises(NoFigures, match="stats = false"):
        webhook(unknown, False).metrics("p-41", None)

    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "bad signature"})

    with pytest.raises(AuthError):
        webhook(refused, True).metrics("p-41", None)


def test_the_mail_desk_has_no_figures() -> None:
    hook = make_channel("desk", "webhook", "Desk", templates="portal", url="https://h.test")
    settings = EmailSettings(to=("toasoan@portal.test",), site="https://portal.test")
    adapter = EmailAdapter(replace(hook, adapter="email", settings=settings, secrets={}))
    with pytest.raises(NoFigures, match="editorial desk"):
        adapter.metrics("x", "https://portal.test/a")


def test_every_adapter_is_a_metrics_reader() -> None:
    readers: list[type[MetricsReader]] = [
        FacebookAdapter, ZaloAdapter, WordPressAdapter, WebhookAdapter, EmailAdapter,
    ]  # fmt: skip
    assert all(callable(getattr(r, "metrics", None)) for r in readers)
