"""The JSON API (publisher.web.api) mounted at /api/v1 under a bare parent app: bearer tokens,
the board's roles, every endpoint, the error shapes, the audit trail under the token's member;
and a schemathesis run over its OpenAPI schema (no 5xx, responses as documented)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from publisher.clock import FakeClock
from publisher.config import Config
from publisher.editorial.load import load
from publisher.store import users
from publisher.store.db import Database, open_database
from publisher.store.models import AuditEntry, PostRow
from publisher.web.app import create_app
from publisher.web.context import WebContext
from tests.fakes import banner_name, post_count, set_state

NOW = datetime(2024, 5, 25, 2, 0, tzinfo=UTC)  # before the campaign: every post still a draft
APPROVER, EDITOR, DRAFTER = "Lê Anh Tuấn", "Ban biên tập", "Văn phòng Sở"


@dataclass
class Api:
    client: TestClient
    db: Database
    config: Config
    tokens: dict[str, str]  # role → a token of that role's member
    clock: FakeClock

    def call(self, method: str, path: str, role: str | None = "approver", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        headers |= kw.pop("headers", {})
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)

    def draft(self, n: int = 1, **where: Any) -> list[int]:
        """Ids of ``n`` drafts (with a due time), first by id."""
        q = select(PostRow.id).where(PostRow.state == "draft", PostRow.due_at.is_not(None))
        for column, value in where.items():
            q = q.where(getattr(PostRow, column) == value)
        with self.db.read() as s:
            ids = list(s.scalars(q.order_by(PostRow.id).limit(n)))
        assert len(ids) == n
        return ids

    def state(self, post_id: int) -> str:
        with self.db.read() as s:
            return str(s.get_one(PostRow, post_id).state)

    def audit(self, action: str) -> list[tuple[str, int | None, str]]:
        with self.db.read() as s:
            rows = s.scalars(select(AuditEntry).where(AuditEntry.action == action))
            return [(e.actor, e.post_id, e.detail) for e in rows]


def serve(db: Database, config: Config, clock: FakeClock) -> FastAPI:
    """The web app, which mounts the API at /api/v1 and answers a path the mount does not match
    (Starlette's ``/api/v1/{path}`` stops at a newline, so ``/api/v1/posts/%0A`` is the
    parent's) in the API's shape."""
    return create_app(WebContext(config, db, clock))


def accounts(db: Database, config: Config) -> dict[str, str]:
    """An account and a token for one member of each role."""
    tokens = {}
    for role, name in (("approver", APPROVER), ("editor", EDITOR), ("drafter", DRAFTER)):
        users.add_user(db, config, name, None, None, actor="admin", now=NOW)
        tokens[role] = users.new_token(db, config, name, actor="admin", now=NOW)
    return tokens


@pytest.fixture
def api(db: Database, config: Config) -> Iterator[Api]:
    load(db, config, NOW, "vanphong")
    clock = FakeClock(NOW + timedelta(hours=1))
    with TestClient(serve(db, config, clock), raise_server_exceptions=True) as client:
        yield Api(client, db, config, accounts(db, config), clock)


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The JSON error of a refused request: its status, one line under "error"."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"error", "field"} and body["error"], body
    assert "\n" not in body["error"]
    return dict(body)


def test_without_a_valid_token_every_route_answers_401_with_a_bearer_challenge(api: Api) -> None:
    for path in ("/me", "/posts", "/posts/1", "/status", f"/media/{'0' * 64}"):
        r = api.call("GET", path, role=None)
        assert error_of(r, 401)["field"] == "Authorization"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    bad = api.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {users.TOKEN_PREFIX}not-a-token"}
    )
    assert "unknown, revoked" in error_of(bad, 401)["error"]
    assert api.call("POST", "/posts/1/approve", role=None).status_code == 401
    assert api.state(1) == "draft"
    users.revoke_tokens(api.db, api.config, APPROVER, actor="admin", now=NOW)
    error_of(api.call("GET", "/me"), 401)


def test_me_names_the_member_and_what_they_may_do(api: Api) -> None:
    me = api.call("GET", "/me").json()
    assert me["name"] == APPROVER and me["role"] == "approver" and "approve" in me["may"]
    drafter = api.call("GET", "/me", role="drafter").json()
    assert drafter["name"] == DRAFTER and "approve" not in drafter["may"]
    assert "edit" in drafter["may"]


def test_the_list_filters_and_pages_like_the_queue(api: Api) -> None:
    everything = api.call("GET", "/posts", params={"limit": 500}).json()
    assert everything["total"] == post_count(api.db) - post_count(api.db, state="cancelled")
    fb = api.call("GET", "/posts", params={"channel": "facebook", "limit": 500}).json()
    assert fb["total"] == post_count(api.db, channel="facebook") > 0
    assert {p["channel"] for p in fb["items"]} == {"facebook"}
    first = fb["items"][0]
    due = datetime.fromisoformat(first["due_at"])
    assert due.utcoffset() == timedelta(0)
    assert datetime.fromisoformat(first["due_local"]).utcoffset() == timedelta(hours=7)
    assert datetime.fromisoformat(first["due_local"]) == due
    page = api.call("GET", "/posts", params={"channel": "facebook", "limit": 2, "offset": 1})
    assert [p["id"] for p in page.json()["items"]] == [p["id"] for p in fb["items"][1:3]]
    on = first["due_local"][:10]
    day = api.call("GET", "/posts", params={"from": on, "to": on, "limit": 500}).json()
    assert day["total"] > 0
    assert {p["due_local"][:10] for p in day["items"]} == {on}
    assert first["id"] in [p["id"] for p in day["items"]]
    slogans = api.call("GET", "/posts", params={"kind": "slogan", "limit": 500}).json()
    assert slogans["total"] > 0 and {p["kind"] for p in slogans["items"]} == {"slogan"}
    assert api.call("GET", "/posts", params={"state": "approved"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "myspace"}, "channel"),
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"state": "lost"}, "state"),
        ({"from": "03/06/2024"}, "from"),
        ({"from": "2024-06-05", "to": "2024-06-01"}, "from"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(api: Api, params: dict[str, Any], field: str) -> None:
    body = error_of(api.call("GET", "/posts", params=params), 422)
    assert body["field"] == field and body["error"].startswith(field)


def test_one_post_shows_what_will_be_sent_its_history_and_audit(api: Api) -> None:
    (pid,) = api.draft()
    assert api.call("POST", f"/posts/{pid}/approve").status_code == 200
    post = api.call("GET", f"/posts/{pid}", role="drafter").json()
    with api.db.read() as s:
        row = s.get_one(PostRow, pid)
        assert post["fields"] == row.fields and post["text"] == row.text
        assert row.due_at is not None
        assert datetime.fromisoformat(post["due_at"]) == row.due_at
    assert post["state"] == "approved" and post["approval"]["by"] == APPROVER
    assert post["approval"]["matches_current_render"] is True
    assert [h["to_state"] for h in post["history"]][-1] == "approved"
    assert post["history"][-1]["actor"] == APPROVER
    assert [a["action"] for a in post["audit"]][-1] == "approve"
    assert post["audit"][-1]["actor"] == APPROVER
    assert post["last_error"] is None and post["remote_url"] is None
    assert error_of(api.call("GET", "/posts/999999"), 404)["error"] == "no post has id 999999"
    assert error_of(api.call("GET", "/posts/abc"), 422)["field"] == "post_id"
    assert error_of(api.call("GET", f"/posts/{2**40}"), 422)["field"] == "post_id"


def test_a_post_names_its_pictures_and_the_api_serves_their_bytes(api: Api) -> None:
    banner = (api.config.messages_dir / "media" / "thang-hanh-dong-vi-tre-em-2024.jpg").read_bytes()
    sha = hashlib.sha256(banner).hexdigest()
    (pid,) = api.draft()
    post = api.call("GET", f"/posts/{pid}", role="drafter").json()
    assert post["pictures"] == [
        {
            "role": "cover",
            "alt": post["pictures"][0]["alt"],
            "src": "media/thang-hanh-dong-vi-tre-em-2024.jpg",
            "name": banner_name(api.config),
            "mime": "image/jpeg",
            "width": 1200,
            "height": 630,
            "size": len(banner),
            "sha256": sha,
            "url": None,
            "media_url": f"/api/v1/media/{sha}",
        }
    ]
    assert post["pictures"][0]["alt"].startswith("Ảnh bìa Tháng hành động vì trẻ em năm 2024")
    assert "media" in post["fields"]  # the field itself, exactly as it will be sent
    listed = api.call("GET", "/posts", params={"limit": 500}).json()["items"]
    assert len(listed) == 72 and all(i["pictures"] == post["pictures"] for i in listed)
    r = api.call("GET", f"/media/{sha}", role="drafter")
    assert r.status_code == 200 and r.content == banner
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "private, no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert error_of(api.call("GET", f"/media/{sha}", role=None), 401)["field"] == "Authorization"
    assert error_of(api.call("GET", f"/media/{'0' * 64}"), 404)["field"] == "sha256"
    assert error_of(api.call("GET", f"/media/{sha.upper()}"), 422)["field"] == "sha256"
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.client.app)
    operation = schema["/media/{sha256}"]["GET"]
    case = operation.Case(path_parameters={"sha256": sha})
    headers = {"Authorization": f"Bearer {api.tokens['drafter']}"}
    checks = [*CHECKS, content_type_conformance]
    assert case.call_and_validate(headers=headers, checks=checks).status_code == 200


def test_an_approval_is_the_approvers_and_enters_the_audit_trail_under_them(api: Api) -> None:
    a, b = api.draft(2)
    refused = error_of(api.call("POST", f"/posts/{a}/approve", role="editor"), 403)
    assert "approver role" in refused["error"]
    error_of(api.call("POST", f"/posts/{a}/approve", role="drafter"), 403)
    assert api.state(a) == "draft" and api.audit("approve") == []
    r = api.call("POST", f"/posts/{a}/approve")
    assert r.status_code == 200 and r.json() == {"id": a, "state": "approved"}
    assert api.audit("approve") == [(APPROVER, a, "")]
    again = error_of(api.call("POST", f"/posts/{a}/approve"), 409)
    assert "only a draft can be approved" in again["error"]
    error_of(api.call("POST", "/posts/999999/approve"), 404)
    bulk = api.call("POST", "/posts/approve", json={"ids": [b, a, 999999]}).json()
    assert bulk["approved"] == [b]
    assert {r["id"]: r["reason"] for r in bulk["refused"]} == {
        999999: "no post has id 999999",
        a: "it is approved, only a draft can be approved",
    }
    assert api.state(b) == "approved" and len(api.audit("approve")) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "ids"),
        ({"ids": []}, "ids"),
        ({"ids": [0]}, "ids.0"),
        ({"ids": ["x"]}, "ids.0"),
        ({"ids": list(range(1, 502))}, "ids"),
    ],
)
def test_a_bad_bulk_body_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    assert error_of(api.call("POST", "/posts/approve", json=body), 422)["field"] == field


def test_malformed_json_is_a_422_in_the_same_shape(api: Api) -> None:
    json_type = {"Content-Type": "application/json"}
    r = api.call("POST", "/posts/approve", content=b"{ids: [1", headers=json_type)
    assert error_of(r, 422) == {"error": "the body is not valid JSON", "field": "body"}


def test_reject_needs_a_reason_and_records_it(api: Api) -> None:
    (pid,) = api.draft()
    for body in ({}, {"reason": "   "}, {"reason": "\x00\x07"}):
        assert error_of(api.call("POST", f"/posts/{pid}/reject", json=body), 422)["field"] == (
            "reason"
        )
    error_of(api.call("POST", f"/posts/{pid}/reject", role="drafter", json={"reason": "x"}), 403)
    r = api.call("POST", f"/posts/{pid}/reject", role="editor", json={"reason": "sai số hiệu"})
    assert r.json() == {"id": pid, "state": "rejected"}
    assert api.audit("reject") == [(EDITOR, pid, "sai số hiệu")]


def test_hold_release_and_cancel_by_an_editor(api: Api) -> None:
    a, b = api.draft(2)
    error_of(api.call("POST", f"/posts/{a}/hold", role="drafter"), 403)
    assert api.call("POST", f"/posts/{a}/hold", role="editor").json()["state"] == "held"
    assert (
        "only a draft"
        in error_of(api.call("POST", f"/posts/{a}/hold", role="editor"), 409)["error"]
    )
    assert api.call("POST", f"/posts/{a}/release", role="editor").json()["state"] == "draft"
    error_of(api.call("POST", f"/posts/{a}/release", role="editor"), 409)
    r = api.call("POST", f"/posts/{b}/cancel", role="editor", json={"reason": "trùng lịch"})
    assert r.json()["state"] == "cancelled"
    error_of(api.call("POST", f"/posts/{b}/cancel", role="editor"), 409)
    assert api.audit("hold") == [(EDITOR, a, "")]
    assert api.audit("release") == [(EDITOR, a, "back to draft")]
    assert api.audit("cancel") == [(EDITOR, b, "trùng lịch")]
    error_of(api.call("POST", "/posts/999999/hold", role="editor"), 404)


def test_reschedule_passes_the_planners_refusals_through(api: Api) -> None:
    (pid,) = api.draft(channel="facebook")
    path = f"/posts/{pid}/reschedule"
    error_of(api.call("POST", path, role="drafter", json={"at": "2024-06-20 08:00"}), 403)
    off_slot = error_of(api.call("POST", path, role="editor", json={"at": "2024-06-20 09:10"}), 422)
    assert "is not one of facebook's slots" in off_slot["error"] and off_slot["field"] == "at"
    assert 'set "force": true' in off_slot["error"]
    outside = error_of(api.call("POST", path, role="editor", json={"at": "2024-08-01 08:00"}), 422)
    assert "outside the campaign window" in outside["error"]
    for bad in ("tomorrow", "2024-13-01 08:00", "0001-01-01T00:00"):
        error_of(api.call("POST", path, role="editor", json={"at": bad}), 422)
    r = api.call("POST", path, role="editor", json={"at": "2024-06-20T04:30:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["due_local"] == "2024-06-20T11:30:00+07:00"
    assert r.json()["due_at"] == "2024-06-20T04:30:00+00:00"
    forced = api.call("POST", path, role="editor", json={"at": "2024-06-20 09:10", "force": True})
    assert forced.status_code == 200 and forced.json()["state"] == "draft"
    assert [a for a, p, _ in api.audit("reschedule") if p == pid] == [EDITOR, EDITOR]
    set_state(api.db, pid, NOW, "published", "sent")
    gone = error_of(api.call("POST", path, role="editor", json={"at": "2024-06-21 08:00"}), 409)
    assert "cannot be rescheduled" in gone["error"]


def test_status_and_the_channels_kill_switch(api: Api) -> None:
    info = api.call("GET", "/status", role="drafter").json()
    assert info["counts"]["draft"] == post_count(api.db, state="draft")
    error_of(api.call("POST", "/channels/facebook/pause", role="drafter"), 403)
    r = api.call("POST", "/channels/facebook/pause", role="editor")
    assert r.json() == {"channel": "facebook", "paused": True}
    assert [b["channel"] for b in api.call("GET", "/status").json()["blocked"]] == ["facebook"]
    assert api.call("POST", "/channels/facebook/resume", role="editor").json()["paused"] is False
    assert api.audit("pause") == [(EDITOR, None, "")]
    assert api.audit("resume") == [(EDITOR, None, "")]
    error_of(api.call("POST", "/channels/myspace/pause", role="editor"), 404)


def test_without_a_board_the_accounts_own_role_decides(db: Database, config: Config) -> None:
    solo = replace(config, board={})
    load(db, solo, NOW, "an")
    users.add_user(db, solo, "an", "editor", None, actor="admin", now=NOW)
    token = users.new_token(db, solo, "an", actor="admin", now=NOW)
    with TestClient(serve(db, solo, FakeClock(NOW))) as client:
        headers = {"Authorization": f"Bearer {token}"}
        refused = error_of(client.post("/api/v1/posts/1/approve", headers=headers), 403)
        assert refused["error"] == "an: an is a editor: approving posts needs the approver role"
        assert client.post("/api/v1/posts/1/hold", headers=headers).status_code == 200


def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    assert error_of(api.call("GET", "/nothing"), 404)["error"] == "Not Found"
    assert error_of(api.call("DELETE", "/posts/1"), 405)["error"] == "Method Not Allowed"
    schema = api.client.get("/api/v1/openapi.json").json()
    assert schema["servers"] == [{"url": "/api/v1"}]
    assert api.client.get("/api/v1/docs").status_code == 404


# -- fuzzing: schemathesis over the OpenAPI schema ---------------------------------------------


@dataclass
class Fuzzed:
    app: FastAPI
    token: str


@pytest.fixture
def fuzzed(config: Config, sqlite_template: Path) -> Iterator[Fuzzed]:
    """The API on the campaign's SQLite queue, loaded, with an approver's token."""
    target = Path(config.database_url.removeprefix("sqlite:///"))
    shutil.copyfile(sqlite_template, target)
    db = open_database(config.database_url)
    load(db, config, NOW, "vanphong")
    tokens = accounts(db, config)
    yield Fuzzed(serve(db, config, FakeClock(NOW + timedelta(hours=1))), tokens["approver"])
    db.close()


CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
EXAMPLES = 20  # per operation and mode: the whole fuzzing stays well under a minute


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("token", [True, False], ids=["approver", "no-token"])
def test_fuzzed_requests_get_documented_answers_and_never_a_5xx(
    fuzzed: Fuzzed, mode: GenerationMode, token: bool
) -> None:
    """Every operation of the schema, with requests that fit it (positive) and that do not
    (negative), as the approver and without a token: no server error, every status and body as
    the schema documents them."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed.app)
    headers = {"Authorization": f"Bearer {fuzzed.token}"} if token else None
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 14
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            if not token and case.headers:
                case.headers.pop("Authorization", None)
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            if not token:
                assert response.status_code in (401, 404, 405, 422), response.text

        call()
