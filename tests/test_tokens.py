from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import text

from publisher.channels import tokens as tokens_module
from publisher.channels.base import AuthError, Temporary
from publisher.channels.tokens import InMemoryTokenStore, TokenRotator, seed_digest
from publisher.clock import FakeClock
from publisher.store.db import Database, open_database
from publisher.store.tokens import TOKEN_KEYS_ENV, DatabaseTokenStore, token_keys
from publisher.tokens import RotatingTokenStore, Tokens

NOW = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
KEY = "zalo@https://oauth.zaloapp.com"
KEY_MATERIAL = "zalo-app-secret-Wm3Lq9"  # a fake the tests search output for
ACCESS, REFRESH = "at-stored-Kk81Pz", "rt-stored-Jj72Ox"
SEED = "rt-seed-Nn55Bb"
PAIR = Tokens(ACCESS, REFRESH, NOW + timedelta(hours=25))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'q.db'}"


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = open_database(url)
    yield database
    database.close()


def stores(db: Database) -> dict[str, RotatingTokenStore]:
    return {"memory": InMemoryTokenStore(), "database": DatabaseTokenStore(db, KEY_MATERIAL)}


# -- DatabaseTokenStore ---------------------------------------------------------------------------


def test_database_store_round_trip_is_committed(db: Database, url: str) -> None:
    store = DatabaseTokenStore(db, KEY_MATERIAL, clock=FakeClock(NOW))
    assert store.load(KEY) is None and store.seed_hash(KEY) is None
    store.save(KEY, PAIR, seed_hash=seed_digest(SEED))
    other = Database(url)  # another connection sees it: save committed before returning
    loaded = DatabaseTokenStore(other, KEY_MATERIAL).load(KEY)
    other.close()
    assert loaded == PAIR
    assert loaded.access_expires_at.tzinfo is not None
    assert store.seed_hash(KEY) == seed_digest(SEED)
    store.save(KEY, Tokens("at-2", "rt-2", NOW), seed_hash=None)  # keeps the recorded seed
    assert store.seed_hash(KEY) == seed_digest(SEED)
    assert store.load(KEY) == Tokens("at-2", "rt-2", NOW)


def test_the_database_holds_no_token_in_clear(db: Database, tmp_path: Path) -> None:
    store = DatabaseTokenStore(db, KEY_MATERIAL)
    store.save(KEY, PAIR, seed_hash=seed_digest(SEED))
    with db.engine.connect() as conn:
        (secret,) = conn.execute(text("SELECT secret FROM channel_token")).one()
    assert secret.startswith("gAAAAA")  # a Fernet token
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())  # db, -wal, -shm
    assert secret.encode() in raw  # these files do hold the data
    for clear in (ACCESS, REFRESH, SEED, KEY_MATERIAL):
        assert clear.encode() not in raw


def test_another_key_cannot_read_the_tokens(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    DatabaseTokenStore(db, KEY_MATERIAL).save(KEY, PAIR)
    assert DatabaseTokenStore(db, "another-app-secret").load(KEY) is None
    assert "cannot be decrypted" in caplog.text
    for secret in (ACCESS, REFRESH, KEY_MATERIAL):
        assert secret not in caplog.text


def test_a_row_copied_under_another_key_is_not_trusted(db: Database) -> None:
    store = DatabaseTokenStore(db, KEY_MATERIAL)
    store.save(KEY, PAIR)
    store.save("other@x", Tokens("a", "b", NOW))
    with db.write() as s:
        s.execute(
            text(
                "UPDATE channel_token SET secret ="
                " (SELECT secret FROM channel_token WHERE key = :k) WHERE key = 'other@x'"
            ),
            {"k": KEY},
        )
    assert store.load("other@x") is None


def test_key_material_is_required(db: Database) -> None:
    with pytest.raises(ValueError, match="key material"):
        DatabaseTokenStore(db, "")


@pytest.mark.parametrize("kind", ["memory", "database"])
def test_the_refresh_lease_is_exclusive_until_released_saved_or_expired(
    db: Database, kind: str
) -> None:
    store = stores(db)[kind]
    assert store.claim_refresh(KEY, "a", now=NOW, ttl=60)
    assert store.claim_refresh(KEY, "a", now=NOW, ttl=60)  # the holder may renew
    assert not store.claim_refresh(KEY, "b", now=NOW + timedelta(seconds=59), ttl=60)
    assert store.claim_refresh(KEY, "b", now=NOW + timedelta(seconds=61), ttl=60)  # expired
    store.release_refresh(KEY, "a")  # not the holder: no effect
    assert not store.claim_refresh(KEY, "c", now=NOW + timedelta(seconds=62), ttl=60)
    store.release_refresh(KEY, "b")
    assert store.claim_refresh(KEY, "c", now=NOW + timedelta(seconds=62), ttl=60)
    store.save(KEY, PAIR)  # a save ends the lease
    assert store.claim_refresh(KEY, "d", now=NOW + timedelta(seconds=63), ttl=60)
    assert store.load(KEY) == PAIR  # a claim leaves the tokens alone


def test_concurrent_claims_from_separate_connections_have_one_winner(url: str) -> None:
    open_database(url).close()
    barrier = threading.Barrier(4)
    wins: list[bool] = []

    def claim(n: int) -> None:
        db = Database(url)
        try:
            store = DatabaseTokenStore(db, KEY_MATERIAL)
            barrier.wait(5)
            wins.append(store.claim_refresh(KEY, f"owner-{n}", now=NOW, ttl=60))
        finally:
            db.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(wins) == [False, False, False, True]


# -- TokenRotator ---------------------------------------------------------------------------------


class Minter:
    """A fake OAuth endpoint: each refresh token works once and mints a numbered pair."""

    def __init__(self, *valid: str, hold: Callable[[], None] = lambda: None) -> None:
        self.valid = set(valid)
        self.spent: list[str] = []
        self.hold = hold
        self.mutex = threading.Lock()

    def __call__(self, refresh_token: str) -> Tokens:
        with self.mutex:
            self.spent.append(refresh_token)
            if refresh_token not in self.valid:
                raise AuthError("refused: re-authorise")
            self.valid.discard(refresh_token)
            n = len(self.spent)
            self.valid.add(f"rt-minted-{n}")
        self.hold()
        return Tokens(f"at-minted-{n}", f"rt-minted-{n}", NOW + timedelta(hours=25))


def rotator(store: RotatingTokenStore, mint: Callable[[str], Tokens], **kw: Any) -> TokenRotator:
    kw.setdefault("seed", SEED)
    return TokenRotator(store, KEY, mint, hint="re-authorise", clock=FakeClock(NOW), **kw)


def test_a_refused_refresh_keeps_the_stored_tokens_and_frees_the_lease(db: Database) -> None:
    store = DatabaseTokenStore(db, KEY_MATERIAL)
    expired = Tokens(ACCESS, REFRESH, NOW)
    store.save(KEY, expired, seed_hash=seed_digest(SEED))
    with pytest.raises(AuthError):
        rotator(store, Minter()).access_token()
    assert store.load(KEY) == expired
    assert store.claim_refresh(KEY, "next", now=NOW, ttl=60)


def test_tokens_that_cannot_be_saved_are_an_auth_error() -> None:
    class Broken(InMemoryTokenStore):
        def save(self, channel: str, tokens: Tokens, *, seed_hash: str | None = None) -> None:
            raise OSError("disk full")

    with pytest.raises(AuthError, match="could not be saved"):
        rotator(Broken(), Minter(SEED)).access_token()


def test_a_lease_held_elsewhere_is_waited_for_then_given_up(db: Database) -> None:
    store = DatabaseTokenStore(db, KEY_MATERIAL)
    store.claim_refresh(KEY, "another-process", now=NOW, ttl=300)
    sleeps: list[float] = []
    mint = Minter(SEED)
    with pytest.raises(Temporary, match="another process"):
        rotator(store, mint, sleep=sleeps.append).access_token()
    assert mint.spent == [] and len(sleeps) == tokens_module.LEASE_WAITS


def test_two_processes_sharing_a_database_never_spend_a_token_twice(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads with their own connection and no shared lock stand for processes."""
    db = open_database(url)
    DatabaseTokenStore(db, KEY_MATERIAL).save(
        KEY, Tokens(ACCESS, REFRESH, NOW), seed_hash=seed_digest(SEED)
    )
    monkeypatch.setattr(tokens_module, "_refresh_lock", lambda key: threading.Lock())
    refused, saved = threading.Event(), threading.Event()

    class Watched(DatabaseTokenStore):
        def claim_refresh(self, channel: str, owner: str, *, now: datetime, ttl: float) -> bool:
            got = super().claim_refresh(channel, owner, now=now, ttl=ttl)
            if not got:
                refused.set()
            return got

        def save(self, channel: str, tokens: Tokens, *, seed_hash: str | None = None) -> None:
            super().save(channel, tokens, seed_hash=seed_hash)
            saved.set()

    mint = Minter(REFRESH, hold=lambda: refused.wait(5) or pytest.fail("no one else tried"))
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        database = Database(url)
        try:
            r = rotator(Watched(database, KEY_MATERIAL), mint, sleep=lambda s: saved.wait(5))
            barrier.wait(5)
            results.append(r.access_token())
        except BaseException as exc:
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert mint.spent == [REFRESH]
    assert results == ["at-minted-1", "at-minted-1"]
    assert DatabaseTokenStore(db, KEY_MATERIAL).load(KEY) == Tokens(
        "at-minted-1", "rt-minted-1", NOW + timedelta(hours=25)
    )
    db.close()


def _rotate_in_child(url: str, spent: str, result: str, barrier: Any) -> None:
    database = Database(url)

    def mint(refresh_token: str) -> Tokens:
        with open(spent, "a", encoding="utf-8") as f:
            f.write(refresh_token + "\n")
        time.sleep(0.3)  # hold the lease while the other process tries (real processes, real time)
        pid = os.getpid()
        return Tokens(f"at-{pid}", f"rt-{pid}", NOW + timedelta(hours=25))

    store = DatabaseTokenStore(database, KEY_MATERIAL, clock=FakeClock(NOW))
    r = rotator(store, mint, sleep=lambda s: time.sleep(0.05))
    barrier.wait(10)
    Path(result).write_text(r.access_token(), encoding="utf-8")
    database.close()


def test_two_real_processes_refresh_once(url: str, tmp_path: Path) -> None:
    db = open_database(url)
    DatabaseTokenStore(db, KEY_MATERIAL).save(
        KEY, Tokens(ACCESS, REFRESH, NOW), seed_hash=seed_digest(SEED)
    )
    db.close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    spent = tmp_path / "spent.txt"
    procs = [
        ctx.Process(
            target=_rotate_in_child, args=(url, str(spent), str(tmp_path / f"r{n}"), barrier)
        )
        for n in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert spent.read_text(encoding="utf-8").splitlines() == [REFRESH]
    r0, r1 = ((tmp_path / f"r{n}").read_text(encoding="utf-8") for n in range(2))
    assert r0 == r1 and r0.startswith("at-")


def test_a_refresh_lease_of_a_killed_process_is_taken_over_at_once(db: Database) -> None:
    import socket
    import subprocess
    import sys

    store = DatabaseTokenStore(db, key_material="k")
    now = datetime(2024, 6, 1, tzinfo=UTC)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_owner = f"{socket.gethostname()}:{dead.stdout.strip()}-abc"
    assert store.claim_refresh("zalo@x", dead_owner, now=now, ttl=300)
    live_owner = f"{socket.gethostname()}:{os.getpid()}-def"
    assert store.claim_refresh("zalo@x", live_owner, now=now, ttl=300)  # the dead one's is void
    other = f"{socket.gethostname()}:{os.getpid()}-ghi"
    assert not store.claim_refresh("zalo@x", other, now=now, ttl=300)  # a live holder keeps it
    elsewhere = "another-host:1-jkl"
    store.release_refresh("zalo@x", live_owner)
    assert store.claim_refresh("zalo@x", elsewhere, now=now, ttl=300)
    assert not store.claim_refresh("zalo@x", other, now=now, ttl=300)  # can't tell: wait it out


# -- the encryption key (issue 12, item 25) ---------------------------------------------------------


def _legacy_fernet(secret: str) -> Fernet:
    """The first release's key: HKDF of the app secret with a fixed salt (168k guesses/s)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"publisher.tokens",
        info=b"channel_token fernet v1",
    )
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode())))


def _stored(db: Database, key: str = KEY) -> bytes:
    with db.engine.connect() as conn:
        secret = conn.execute(text("SELECT secret FROM channel_token WHERE key = :k"), {"k": key})
        return str(secret.scalar_one()).encode()


def _salt(db: Database) -> bytes:
    with db.engine.connect() as conn:
        value = conn.execute(text("SELECT value FROM meta WHERE key = 'tokens.salt'")).scalar_one()
    return base64.urlsafe_b64decode(value)


def _insert_legacy_row(db: Database, secret: str) -> None:
    payload = json.dumps({"key": KEY, "access_token": ACCESS, "refresh_token": REFRESH})
    token = _legacy_fernet(secret).encrypt(payload.encode()).decode()
    with db.write() as s:
        s.execute(
            text(
                "INSERT INTO channel_token (key, secret, access_expires_at, updated_at)"
                " VALUES (:k, :s, :e, :u)"
            ),
            {"k": KEY, "s": token, "e": PAIR.access_expires_at, "u": NOW},
        )


def test_without_token_keys_the_key_is_scrypt_of_the_secret_and_a_salt_of_this_database(
    db: Database,
) -> None:
    DatabaseTokenStore(db, KEY_MATERIAL).save(KEY, PAIR)
    token = _stored(db)
    with pytest.raises(InvalidToken):
        _legacy_fernet(KEY_MATERIAL).decrypt(token)  # no longer the fast, fixed-salt derivation
    salt = _salt(db)
    assert len(salt) >= 16
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    key = base64.urlsafe_b64encode(kdf.derive(KEY_MATERIAL.encode()))
    assert json.loads(Fernet(key).decrypt(token))["refresh_token"] == REFRESH


def test_the_salt_is_per_database(tmp_path: Path) -> None:
    dbs = [open_database(f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(2)]
    try:
        for database in dbs:
            DatabaseTokenStore(database, KEY_MATERIAL).save(KEY, PAIR)
        assert _salt(dbs[0]) != _salt(dbs[1])
        assert _salt(dbs[0]) == _salt(dbs[0])  # kept: a second store reads the same salt
        # a row copied into the other database does not decrypt there with the same secret
        with dbs[1].write() as s:
            s.execute(
                text("UPDATE channel_token SET secret = :s WHERE key = :k"),
                {"s": _stored(dbs[0]).decode(), "k": KEY},
            )
        assert DatabaseTokenStore(dbs[1], KEY_MATERIAL).load(KEY) is None
        assert DatabaseTokenStore(dbs[0], KEY_MATERIAL).load(KEY) == PAIR
    finally:
        for database in dbs:
            database.close()


def test_a_legacy_row_still_decrypts_and_is_reencrypted_when_the_store_opens(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _insert_legacy_row(db, KEY_MATERIAL)
    store = DatabaseTokenStore(db, KEY_MATERIAL)
    token = _stored(db)
    with pytest.raises(InvalidToken):
        _legacy_fernet(KEY_MATERIAL).decrypt(token)  # re-encrypted at once, before any save
    assert store.load(KEY) == PAIR
    assert DatabaseTokenStore(db, KEY_MATERIAL).load(KEY) == PAIR
    assert _stored(db) == token  # nothing left to re-encrypt: the row is not rewritten again
    assert "re-encrypted 1 stored token row" in caplog.text
    for clear in (ACCESS, REFRESH, KEY_MATERIAL):
        assert clear not in caplog.text


def test_a_legacy_row_under_another_secret_loads_as_absent_and_stays(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    _insert_legacy_row(db, "another-app-secret")
    before = _stored(db)
    assert DatabaseTokenStore(db, KEY_MATERIAL).load(KEY) is None
    assert "cannot be decrypted" in caplog.text
    assert _stored(db) == before


def test_token_keys_encrypt_and_rotate_newest_first(db: Database) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    DatabaseTokenStore(db, KEY_MATERIAL, keys=[old]).save(KEY, PAIR)
    assert json.loads(Fernet(old).decrypt(_stored(db)))["access_token"] == ACCESS
    # rotation: the new key first, the old one still there; the row moves to the new key at once
    store = DatabaseTokenStore(db, KEY_MATERIAL, keys=[new, old])
    assert json.loads(Fernet(new).decrypt(_stored(db)))["access_token"] == ACCESS
    assert store.load(KEY) == PAIR
    third = Tokens("at-3", "rt-3", NOW)
    store.save(KEY, third)
    assert json.loads(Fernet(new).decrypt(_stored(db)))["refresh_token"] == third.refresh_token
    # the old key dropped later: still readable with the new one alone
    assert DatabaseTokenStore(db, KEY_MATERIAL, keys=[new]).load(KEY) == third
    # a store with neither key (nor the scrypt key of the rows) cannot read it
    other = Fernet.generate_key().decode()
    assert DatabaseTokenStore(db, KEY_MATERIAL, keys=[other]).load(KEY) is None


def test_rows_of_the_scrypt_key_move_to_a_token_key_when_one_is_configured(db: Database) -> None:
    DatabaseTokenStore(db, KEY_MATERIAL).save(KEY, PAIR)
    key = Fernet.generate_key().decode()
    assert DatabaseTokenStore(db, KEY_MATERIAL, keys=[key]).load(KEY) == PAIR
    assert json.loads(Fernet(key).decrypt(_stored(db)))["refresh_token"] == REFRESH


def test_a_token_key_keeps_the_tokens_when_the_app_secret_changes(db: Database) -> None:
    key = Fernet.generate_key().decode()
    DatabaseTokenStore(db, KEY_MATERIAL, keys=[key]).save(KEY, PAIR)
    assert DatabaseTokenStore(db, "a-new-app-secret", keys=[key]).load(KEY) == PAIR


@pytest.mark.parametrize("mode", ["scrypt", "token-key", "legacy-rotated"])
def test_no_token_in_clear_anywhere_in_the_database_files(
    db: Database, tmp_path: Path, mode: str
) -> None:
    keys = [Fernet.generate_key().decode()] if mode == "token-key" else []
    if mode == "legacy-rotated":
        _insert_legacy_row(db, KEY_MATERIAL)
    store = DatabaseTokenStore(db, KEY_MATERIAL, keys=keys)
    store.save(KEY, PAIR, seed_hash=seed_digest(SEED))
    assert store.load(KEY) == PAIR
    db.close()  # checkpoint the WAL into the file as well
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert raw
    for clear in (ACCESS, REFRESH, SEED, KEY_MATERIAL, *keys):
        assert clear.encode() not in raw


def test_token_keys_are_read_from_the_environment_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher.config import load_config
    from publisher.errors import InputError

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "config.toml").write_text(
        (root / "config.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    config = load_config(tmp_path / "config.toml")
    monkeypatch.delenv(TOKEN_KEYS_ENV, raising=False)
    assert token_keys(config) == ()
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = tmp_path / ".env"
    env.write_text(f"{TOKEN_KEYS_ENV}={k2},{k1}\n", encoding="utf-8")
    env.chmod(0o600)
    assert token_keys(config) == (k2, k1)
    monkeypatch.setenv(TOKEN_KEYS_ENV, f" {k1} ,, ")  # the environment wins over .env
    assert token_keys(config) == (k1,)
    monkeypatch.setenv(TOKEN_KEYS_ENV, f"{k1},not-a-key-Qz9")
    with pytest.raises(InputError) as info:
        token_keys(config)
    line = str(info.value)
    assert line.startswith(f"{TOKEN_KEYS_ENV}: key 2 ") and "Fernet.generate_key()" in line
    assert "not-a-key-Qz9" not in line and k1 not in line
