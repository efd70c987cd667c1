"""The board's accounts: who may log in to the web app or call the API, and as whom they act.

Passwords are argon2id hashes; sessions and API tokens are random tokens of which the database
keeps only a SHA-256 (a stolen database opens no browser). Logins are rate-limited per account
and per address from the failures recorded here, so every process serving the app (and a
restart) sees the same count. Each change to an account enters the audit trail.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from publisher.config.model import ROLES, Config, member_key
from publisher.errors import InputError, PublisherError
from publisher.store import audit
from publisher.store.db import Database
from publisher.store.models import ApiToken, LoginFailure, UserRow, WebSession
from publisher.text import nfc

MIN_PASSWORD = 10  # characters
FAILURE_WINDOW = timedelta(minutes=15)
ACCOUNT_FAILURES = 5  # refused logins of one account within the window: it waits
ADDRESS_FAILURES = 20  # refused logins from one address within the window: it waits
TOKEN_PREFIX = "pub_"  # noqa: S105 - not a secret: API tokens start so, to be recognised in a leak scan

_HASHER = PasswordHasher()  # argon2id, RFC 9106's low-memory profile (64 MiB, 3 passes)
# Verified against when the account does not exist, so an unknown name costs the same time.
_DUMMY = _HASHER.hash("not a password: an unknown account is checked against this")


class LoginRefused(PublisherError):
    """A login refused: wrong name or password, a disabled account, or too many tries."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    disabled: bool
    has_password: bool
    created_at: datetime

    @classmethod
    def of(cls, row: UserRow) -> Account:
        return cls(
            row.id,
            row.name,
            row.role,
            row.disabled,
            row.password_hash is not None,
            row.created_at,
        )


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_password(password: str) -> str:
    """The password as stored (NFC), or InputError saying what is wrong with it."""
    password = nfc(password)
    if len(password) < MIN_PASSWORD or not password.strip():
        raise InputError(
            "password",
            f"a password needs at least {MIN_PASSWORD} characters",
            "choose a longer one (a phrase of several words is easy to remember)",
        )
    return password


def _canonical(config: Config, name: str, role: str | None) -> tuple[str, str]:
    """The account's name and role: a board member's own name and role when the config has a
    board (an account is a member's), else the name given and the role asked for."""
    name = " ".join(nfc(name).split())
    if not name:
        raise InputError("NAME", "an account needs a name", 'e.g. publisher user add "tuan.la"')
    if role is not None and role not in ROLES:
        raise InputError("--role", f"{role!r} is not a role", "one of: " + ", ".join(ROLES))
    if not config.board:
        if role is None:
            raise InputError("--role", "the account needs a role", "--role " + "|".join(ROLES))
        return name, role
    member = config.board.get(member_key(name))
    if member is None:
        raise InputError(
            "NAME",
            f"{name!r} is not a member of the editorial board",
            f"add them to [board] members in {config.path.name} first, or use a member's name",
        )
    if role is not None and role != member.role:
        raise InputError(
            "--role",
            f"{member.name} is {_a(member.role)} on the board, not {_a(role)}",
            f"leave --role out, or change their role in [board] of {config.path.name}",
        )
    return member.name, member.role


def key_of(config: Config, name: str) -> str:
    """How an account is looked up by ``name``: a board member's name or alias finds the
    member's account (the account bears the member's name); any other name, itself."""
    member = config.board.get(member_key(name))
    return member_key(member.name if member is not None else name)


def _a(role: str) -> str:
    return ("an " if role[0] in "aeiou" else "a ") + role


def _row(s: Session, config: Config, name: str) -> UserRow:
    row = s.scalar(select(UserRow).where(UserRow.name_key == key_of(config, name)))
    if row is None:
        raise InputError("NAME", f"no account is named {name!r}", "see 'publisher user list'")
    return row


def add_user(
    db: Database,
    config: Config,
    name: str,
    role: str | None,
    password: str | None,
    *,
    actor: str,
    now: datetime,
) -> Account:
    """A new account (without a password it cannot log in until ``set_password``)."""
    name, role = _canonical(config, name, role)
    hashed = None if password is None else _HASHER.hash(check_password(password))
    with db.write() as s:
        if s.scalar(select(UserRow).where(UserRow.name_key == member_key(name))) is not None:
            raise InputError(
                "NAME", f"an account named {name!r} exists", "use 'publisher user passwd' instead"
            )
        row = UserRow(
            name=name,
            name_key=member_key(name),
            role=role,
            password_hash=hashed,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        audit.record(s, at=now, actor=actor, action="user_add", subject=name, detail=role)
        return Account.of(row)


def set_password(
    db: Database, config: Config, name: str, password: str, *, actor: str, now: datetime
) -> Account:
    """A new password; every open session of the account ends (a changed password locks out
    whoever else knew the old one)."""
    hashed = _HASHER.hash(check_password(password))
    with db.write() as s:
        row = _row(s, config, name)
        row.password_hash, row.updated_at = hashed, now
        _end_sessions(s, row.id, now)
        s.execute(delete(LoginFailure).where(LoginFailure.account_key == row.name_key))
        audit.record(s, at=now, actor=actor, action="user_passwd", subject=row.name)
        return Account.of(row)


def set_disabled(
    db: Database, config: Config, name: str, *, actor: str, now: datetime, disabled: bool = True
) -> Account:
    """Disable (or enable again) an account: a disabled one cannot log in, its sessions end and
    its API tokens stop working (they work again when it is enabled)."""
    with db.write() as s:
        row = _row(s, config, name)
        row.disabled, row.updated_at = disabled, now
        if disabled:
            _end_sessions(s, row.id, now)
        action = "user_disable" if disabled else "user_enable"
        audit.record(s, at=now, actor=actor, action=action, subject=row.name)
        return Account.of(row)


def list_users(db: Database) -> list[Account]:
    with db.read() as s:
        return [Account.of(r) for r in s.scalars(select(UserRow).order_by(UserRow.name_key))]


def find(db: Database, config: Config, name: str) -> Account | None:
    with db.read() as s:
        row = s.scalar(select(UserRow).where(UserRow.name_key == key_of(config, name)))
        return None if row is None else Account.of(row)


def _end_sessions(s: Session, user_id: int, now: datetime) -> None:
    s.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )


# -- logging in -------------------------------------------------------------------------------


def _failures(s: Session, column: Any, value: str, now: datetime) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(column == value, LoginFailure.at > now - FAILURE_WINDOW)
        )
        or 0
    )


def login(
    db: Database, config: Config, name: str, password: str, *, address: str, now: datetime
) -> Account:
    """The account whose name and password these are, or LoginRefused (recorded as a failure).

    Refused without checking the password while the account or the address has too many
    recent failures; the message never says whether the name exists."""
    key = key_of(config, name or "")[:255]
    address = address[:64]
    with db.write() as s:  # a refusal commits its failure, so it is raised after the block
        if (
            _failures(s, LoginFailure.account_key, key, now) >= ACCOUNT_FAILURES
            or _failures(s, LoginFailure.address, address, now) >= ADDRESS_FAILURES
        ):
            minutes = int(FAILURE_WINDOW.total_seconds() // 60)
            refusal = f"too many failed logins: try again in {minutes} minutes"
            account = None
        else:
            refusal = "wrong name or password, or the account is disabled"
            account = _verified(s, key, password)
        if account is None:
            s.add(LoginFailure(account_key=key, address=address, at=now))
        else:
            s.execute(delete(LoginFailure).where(LoginFailure.account_key == key))
            s.execute(delete(LoginFailure).where(LoginFailure.at <= now - FAILURE_WINDOW))
    if account is None:
        raise LoginRefused("login", refusal)
    return account


def _verified(s: Session, key: str, password: str) -> Account | None:
    """The account ``key`` if ``password`` is its own and it may log in (rehashed if the
    hasher's parameters have grown since)."""
    row = s.scalar(select(UserRow).where(UserRow.name_key == key)) if key else None
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY
    try:
        _HASHER.verify(stored, nfc(password or ""))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.password_hash is None or row.disabled:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = _HASHER.hash(nfc(password))
    return Account.of(row)


@dataclass(frozen=True)
class SessionInfo:
    account: Account
    csrf: str


def open_session(db: Database, account: Account, *, address: str, now: datetime) -> str:
    """A new session for ``account``: the token for its cookie."""
    token = secrets.token_urlsafe(32)
    with db.write() as s:
        s.add(
            WebSession(
                id=digest(token),
                user_id=account.id,
                csrf=secrets.token_urlsafe(32),
                address=address[:64],
                created_at=now,
                seen_at=now,
                ended_at=None,
            )
        )
        audit.record(s, at=now, actor=account.name, action="login", subject=address[:64])
    return token


TOUCH_EVERY = timedelta(seconds=60)  # seen_at is written at most this often (reads stay reads)


def session_of(db: Database, token: str, *, now: datetime, idle: timedelta) -> SessionInfo | None:
    """The live session whose cookie holds ``token``: None when there is none, it ended, it
    was idle longer than ``idle``, or its account was disabled."""
    if not token:
        return None
    with db.read() as s:
        row = s.get(WebSession, digest(token))
        if row is None or row.ended_at is not None or row.seen_at + idle < now:
            return None
        user = s.get(UserRow, row.user_id)
        if user is None or user.disabled:
            return None
        info = SessionInfo(Account.of(user), row.csrf)
        stale = row.seen_at + TOUCH_EVERY < now
    if stale:
        with db.write() as s:
            s.execute(update(WebSession).where(WebSession.id == digest(token)).values(seen_at=now))
    return info


def close_session(db: Database, token: str, *, now: datetime) -> None:
    with db.write() as s:
        row = s.get(WebSession, digest(token))
        if row is None or row.ended_at is not None:
            return
        row.ended_at = now
        user = s.get(UserRow, row.user_id)
        actor = user.name if user is not None else "?"
        audit.record(s, at=now, actor=actor, action="logout", subject=row.address)


# -- API tokens -------------------------------------------------------------------------------


def new_token(
    db: Database, config: Config, name: str, *, actor: str, now: datetime, label: str = ""
) -> str:
    """A new API token for the account: shown once, stored as its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as s:
        row = _row(s, config, name)
        s.add(
            ApiToken(
                user_id=row.id,
                token_hash=digest(token),
                label=nfc(label)[:255],
                created_at=now,
                used_at=None,
                revoked_at=None,
            )
        )
        audit.record(s, at=now, actor=actor, action="token_add", subject=row.name, detail=label)
    return token


def revoke_tokens(db: Database, config: Config, name: str, *, actor: str, now: datetime) -> int:
    """Revoke every API token of the account; how many were live."""
    with db.write() as s:
        row = _row(s, config, name)
        done = s.execute(
            update(ApiToken)
            .where(ApiToken.user_id == row.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        n = int(getattr(done, "rowcount", 0) or 0)
        audit.record(s, at=now, actor=actor, action="token_revoke", subject=row.name, detail=str(n))
    return n


def token_account(db: Database, token: str, *, now: datetime) -> Account | None:
    """The account a live API token belongs to (None: unknown, revoked, or account disabled)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with db.read() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
        if row is None or row.revoked_at is not None:
            return None
        user = s.get(UserRow, row.user_id)
        if user is None or user.disabled:
            return None
        account = Account.of(user)
        stale = row.used_at is None or row.used_at + TOUCH_EVERY < now
        token_id = row.id
    if stale:
        with db.write() as s:
            s.execute(update(ApiToken).where(ApiToken.id == token_id).values(used_at=now))
    return account
