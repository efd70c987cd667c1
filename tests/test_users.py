"""The board's accounts (publisher.store.users) and ``publisher user``: argon2id hashes, names
mapped to board members, rate-limited logins, sessions with idle expiry, API tokens."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.config import Config
from publisher.errors import InputError
from publisher.store import users
from publisher.store.db import Database
from publisher.store.models import AuditEntry, UserRow
from tests.fakes import one_line_error, run

NOW = datetime(2024, 5, 30, 8, 0, tzinfo=UTC)
PASSWORD = "mật khẩu " + secrets.token_urlsafe(12)  # made per run: no secret in the file
IDLE = timedelta(minutes=30)


def test_an_account_is_a_board_members_with_the_members_name_and_role(
    db: Database, config: Config
) -> None:
    a = users.add_user(db, config, "tuan.la", None, PASSWORD, actor="admin", now=NOW)
    assert (a.name, a.role, a.has_password, a.disabled) == ("Lê Anh Tuấn", "approver", True, False)
    with db.read() as s:
        row = s.scalar(select(UserRow))
        assert row is not None and row.password_hash is not None
        assert row.password_hash.startswith("$argon2id$")  # a hash, never the password
        assert PASSWORD not in row.password_hash
        actions = [(e.action, e.subject, e.actor) for e in s.scalars(select(AuditEntry))]
    assert ("user_add", "Lê Anh Tuấn", "admin") in actions
    with pytest.raises(InputError, match="exists"):
        users.add_user(db, config, "Lê Anh Tuấn", None, PASSWORD, actor="admin", now=NOW)
    with pytest.raises(InputError, match="not a member"):
        users.add_user(db, config, "nobody", "editor", PASSWORD, actor="admin", now=NOW)
    with pytest.raises(InputError, match="is a drafter on the board, not an approver"):
        users.add_user(db, config, "vanphong", "approver", PASSWORD, actor="admin", now=NOW)
    with pytest.raises(InputError, match="at least 10 characters"):
        users.add_user(db, config, "vanphong", None, "ngắn", actor="admin", now=NOW)
    assert [a.name for a in users.list_users(db)] == ["Lê Anh Tuấn"]


def test_without_a_board_the_role_is_required(db: Database, config: Config) -> None:
    solo = replace(config, board={})
    with pytest.raises(InputError, match="needs a role"):
        users.add_user(db, solo, "an", None, PASSWORD, actor="admin", now=NOW)
    assert users.add_user(db, solo, "an", "editor", PASSWORD, actor="admin", now=NOW).role == (
        "editor"
    )


def test_login_by_name_or_alias_and_refusals_that_do_not_say_which(
    db: Database, config: Config
) -> None:
    users.add_user(db, config, "tuan.la", None, PASSWORD, actor="admin", now=NOW)
    for name in ("tuan.la", "Lê Anh Tuấn", " LÊ ANH TUẤN "):
        assert users.login(db, config, name, PASSWORD, address="10.0.0.1", now=NOW).name == (
            "Lê Anh Tuấn"
        )
    messages = set()
    for name, password in (("tuan.la", "sai mật khẩu rồi"), ("nobody", PASSWORD)):
        with pytest.raises(users.LoginRefused) as refused:
            users.login(db, config, name, password, address="10.0.0.1", now=NOW)
        messages.add(str(refused.value))
    assert len(messages) == 1  # an unknown name and a wrong password read the same
    users.set_disabled(db, config, "tuan.la", actor="admin", now=NOW)
    with pytest.raises(users.LoginRefused):
        users.login(db, config, "tuan.la", PASSWORD, address="10.0.0.1", now=NOW)
    users.set_disabled(db, config, "tuan.la", actor="admin", now=NOW, disabled=False)
    assert users.login(db, config, "tuan.la", PASSWORD, address="10.0.0.1", now=NOW)


def test_logins_are_rate_limited_per_account_and_per_address(db: Database, config: Config) -> None:
    users.add_user(db, config, "tuan.la", None, PASSWORD, actor="admin", now=NOW)
    users.add_user(db, config, "bientap", None, PASSWORD, actor="admin", now=NOW)
    for _ in range(users.ACCOUNT_FAILURES):
        with pytest.raises(users.LoginRefused, match="wrong name or password"):
            users.login(db, config, "tuan.la", "không đúng đâu", address="10.0.0.1", now=NOW)
    # the right password no longer helps, from any address, until the window has passed
    with pytest.raises(users.LoginRefused, match="too many failed logins"):
        users.login(db, config, "tuan.la", PASSWORD, address="10.0.0.2", now=NOW)
    later = NOW + users.FAILURE_WINDOW + timedelta(seconds=1)
    assert users.login(db, config, "tuan.la", PASSWORD, address="10.0.0.2", now=later)
    # one address trying many names is stopped too
    for i in range(users.ADDRESS_FAILURES):
        with pytest.raises(users.LoginRefused):
            users.login(db, config, f"khách {i}", "không đúng đâu", address="10.9.9.9", now=later)
    with pytest.raises(users.LoginRefused, match="too many"):
        users.login(db, config, "bientap", PASSWORD, address="10.9.9.9", now=later)
    assert users.login(db, config, "bientap", PASSWORD, address="10.0.0.3", now=later)


def test_sessions_expire_when_idle_and_end_on_logout_password_change_or_disable(
    db: Database, config: Config
) -> None:
    a = users.add_user(db, config, "tuan.la", None, PASSWORD, actor="admin", now=NOW)
    token = users.open_session(db, a, address="10.0.0.1", now=NOW)
    info = users.session_of(db, token, now=NOW + timedelta(minutes=20), idle=IDLE)
    assert info is not None and info.account.name == "Lê Anh Tuấn" and len(info.csrf) >= 32
    # seen 20 minutes in, so still alive 40 minutes in; gone after 30 idle minutes
    assert users.session_of(db, token, now=NOW + timedelta(minutes=40), idle=IDLE)
    assert users.session_of(db, token, now=NOW + timedelta(minutes=71), idle=IDLE) is None
    assert users.session_of(db, "made-up", now=NOW, idle=IDLE) is None
    assert users.session_of(db, "", now=NOW, idle=IDLE) is None

    for end in ("logout", "passwd", "disable"):
        token = users.open_session(db, a, address="10.0.0.1", now=NOW)
        assert users.session_of(db, token, now=NOW, idle=IDLE) is not None
        if end == "logout":
            users.close_session(db, token, now=NOW)
        elif end == "passwd":
            users.set_password(db, config, "tuan.la", PASSWORD + "!", actor="admin", now=NOW)
        else:
            users.set_disabled(db, config, "tuan.la", actor="admin", now=NOW)
        assert users.session_of(db, token, now=NOW, idle=IDLE) is None, end


def test_api_tokens_are_stored_as_hashes_and_can_be_revoked(db: Database, config: Config) -> None:
    users.add_user(db, config, "bientap", None, None, actor="admin", now=NOW)
    token = users.new_token(db, config, "bientap", actor="admin", now=NOW, label="báo cáo")
    assert token.startswith(users.TOKEN_PREFIX)
    account = users.token_account(db, token, now=NOW)
    assert account is not None and account.name == "Ban biên tập"
    assert users.token_account(db, token[:-1] + "x", now=NOW) is None
    assert users.token_account(db, "Bearer nonsense", now=NOW) is None
    with db.read() as s:
        assert token not in str([e.detail for e in s.scalars(select(AuditEntry))])
    users.set_disabled(db, config, "bientap", actor="admin", now=NOW)
    assert users.token_account(db, token, now=NOW) is None
    users.set_disabled(db, config, "bientap", actor="admin", now=NOW, disabled=False)
    assert users.revoke_tokens(db, config, "bientap", actor="admin", now=NOW) == 1
    assert users.token_account(db, token, now=NOW) is None


def test_the_user_commands(campaign: Path) -> None:
    out = run("user", "add", "tuan.la", "--password-stdin", input=PASSWORD + "\n")
    assert out.exit_code == 0, out.output
    assert "Lê Anh Tuấn" in out.output
    out = run("user", "add", "pbgdpl", "--password-stdin", input="ngắn\n")
    assert out.exit_code == 1 and "at least 10 characters" in one_line_error(out)
    out = run("user", "add", "nobody", "--role", "editor", "--no-password")
    assert out.exit_code == 1 and "not a member of the editorial board" in one_line_error(out)
    out = run("user", "add", "bientap", "--role", "boss", "--no-password")
    assert out.exit_code == 2  # click refuses the choice
    assert run("user", "add", "vanphong", "--no-password").exit_code == 0
    out = run("user", "list", "--json")
    assert out.exit_code == 0, out.output
    assert '"has_password": false' in out.output and '"Văn phòng Sở"' in out.output
    out = run("user", "passwd", "vanphong", "--password-stdin", input=PASSWORD + "\n")
    assert out.exit_code == 0, out.output
    assert run("user", "disable", "vanphong").exit_code == 0
    assert '"disabled": true' in run("user", "list", "--json").output
    out = run("user", "token", "tuan.la")
    assert out.exit_code == 0 and out.output.strip().startswith(users.TOKEN_PREFIX)
    out = run("user", "passwd", "nobody", "--password-stdin", input=PASSWORD + "\n")
    assert out.exit_code == 1 and "no account is named 'nobody'" in one_line_error(out)
