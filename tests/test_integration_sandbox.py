"""Integration: the four adapters against the real local sandbox over HTTP (no MockTransport).

Every channel of the shipped config (portal_pbgdpl as the webhook channel it was before it became
an email channel: tests/fakes.py ``webhook_pbgdpl``) is pointed at an in-process Sandbox
(``use_sandbox``) and publishes real renders of the real content files. The sandbox's record must hold the text byte for
byte (NFC, diacritics intact); every fault kind must map to its outcome class, and an unclear
outcome must be found again by ``lookup`` without a duplicate; the Zalo refresh token must rotate
exactly once under concurrent use (threads and OS processes) and end up in the database; and no
secret may appear in a log line, a record, a receipt or an exception.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

import publisher
from publisher.app import media_host, use_sandbox
from publisher.channels import adapter_class, build
from publisher.channels.base import (
    USER_AGENT,
    Ambiguous,
    AuthError,
    ChannelError,
    Outgoing,
    Permanent,
    Receipt,
    Temporary,
    Throttled,
)
from publisher.channels.tokens import REFRESH_MARGIN
from publisher.channels.zalo import ZaloAdapter
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Config
from publisher.config.env import Secrets
from publisher.content import Message, read_messages
from publisher.render import Render, Renderer
from publisher.sandbox import credentials
from publisher.sandbox.server import Sandbox
from publisher.signing import make_secret
from publisher.store.db import Database, open_database
from publisher.store.tokens import DatabaseTokenStore
from tests.fakes import render_media, webhook_pbgdpl

CHANNELS = {"portal_stp": "wordpress", "portal_pbgdpl": "webhook", "facebook": "facebook"}
PLATFORM = {**CHANNELS, "zalo": "zalo"}
SHORT_TIMEOUT = 0.5  # seconds: the client gives up on a "slow" answer (the sandbox waits 3 s)
SLOW = 3.0
# An application password's shape, not the sandbox's (its hex digits never hold a "z").
WRONG_WP_PASSWORD = credentials.WORDPRESS_PASSWORD[:-4] + "zzzz"
TLS = ssl.create_default_context()  # one for every client: loading the CA store takes 0.1 s


@pytest.fixture
def campaign(campaign: Path) -> Path:
    """The shipped campaign with portal_pbgdpl as a webhook channel: these tests are about the
    HTTP adapters (the email channel's are in tests/test_email_channel.py)."""
    webhook_pbgdpl(campaign)
    return campaign


# -- the rig: a sandbox, the shipped config pointed at it, renders and adapters -----------------


class Sleeper:
    """The sandbox's sleep for "slow" answers: real, but ``wake`` ends them all and waits for
    their answers to go out (to a client that gave up, so no stray traceback outlives a test)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.woken = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.threads.append(threading.current_thread())
        self.woken.wait(seconds)

    def wake(self) -> None:
        self.woken.set()
        for thread in self.threads:
            thread.join(5)


@dataclass
class Rig:
    sandbox: Sandbox
    config: Config  # every enabled channel pointed at the sandbox
    secrets: Secrets
    messages: list[Message]
    renderer: Renderer
    record_path: Path
    minted: list[tuple[str, str]] = field(default_factory=list)  # Zalo (access, refresh) pairs
    spent: list[tuple[str, bool]] = field(default_factory=list)  # refresh tokens offered, accepted
    clients: list[httpx.Client] = field(default_factory=list)
    sleeper: Sleeper = field(default_factory=Sleeper)
    next_id: int = 0

    def wake(self) -> None:
        self.sleeper.wake()

    def adapter(
        self,
        cid: str,
        *,
        tokens: DatabaseTokenStore | None = None,
        timeout: float = 10.0,
        secrets: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] | None = None,
    ) -> Any:
        channel = self.config.channels[cid]
        if settings:
            channel = replace(channel, settings=replace(channel.settings, **settings))
        values = {**self.secrets.for_channel(cid), **(secrets or {})}
        client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT}, verify=TLS)
        self.clients.append(client)
        # Zalo's covers: the sandbox's portal publishes them, as [media] host says
        host = media_host(self.config, self.secrets) if channel.adapter == "zalo" else None
        if sleep is not None:  # only the Zalo adapter takes a sleep (verify backoff)
            return adapter_class(channel.adapter)(
                channel, client, values, clock=clock, tokens=tokens, sleep=sleep, media_host=host
            )
        return build(channel, values, client=client, clock=clock, tokens=tokens, media_host=host)

    def message(self, cid: str, kind: str, n: int = 0) -> Message:
        mine = [m for m in self.messages if m.kind == kind and cid in m.channels]
        return mine[n]

    def post(self, cid: str, message: Message) -> tuple[Outgoing, Render]:
        render = self.renderer.render(message, cid)
        self.next_id += 1
        due = datetime(2024, 6, 12, 2, 0, tzinfo=UTC)
        out = Outgoing(
            self.next_id,
            str(uuid.uuid4()),
            cid,
            message.kind,
            render.fields,
            due,
            media=render_media(render),
        )
        return out, render

    def records(self, platform: str | None = None, *, media: bool = False) -> list[dict[str, Any]]:
        """The sandbox's records of posts (and of uploaded pictures, with ``media``)."""
        return [
            r
            for r in self.sandbox.records()
            if platform in (None, r["platform"]) and (media or r.get("kind") != "media")
        ]

    def file_records(self) -> list[dict[str, Any]]:
        lines = self.record_path.read_bytes().decode("utf-8").splitlines()
        return [json.loads(line) for line in lines]


@pytest.fixture
def rig(config: Config, tmp_path: Path) -> Iterator[Rig]:
    record = tmp_path / "sandbox.jsonl"
    sleeper = Sleeper()
    sandbox = Sandbox(record_path=record, seed=7, sleep=sleeper.sleep).start()
    cfg, secrets = use_sandbox(config, sandbox.url)
    messages, problems = read_messages(cfg)
    assert not problems and messages
    r = Rig(sandbox, cfg, secrets, messages, Renderer(cfg), record, sleeper=sleeper)

    # Watch the sandbox's token table: every pair it mints, every refresh token offered to it.
    mint, spend = sandbox.tokens.mint, sandbox.tokens.spend

    def minting() -> tuple[str, str]:
        pair = mint()
        r.minted.append(pair)
        return pair

    def spending(token: str) -> bool:
        ok = spend(token)
        r.spent.append((token, ok))
        return ok

    sandbox.tokens.mint = minting  # type: ignore[method-assign]
    sandbox.tokens.spend = spending  # type: ignore[method-assign]
    yield r
    r.wake()
    for client in r.clients:
        client.close()
    sandbox.stop()


@pytest.fixture
def sqlite_db(config: Config) -> Iterator[Database]:
    """The campaign's own SQLite queue, for Zalo tests whose subject is not the token store
    (those that are take ``db`` and run on PostgreSQL too)."""
    database = open_database(config.database_url)
    yield database
    database.close()


def zalo_store(db: Database, clock: Clock = SYSTEM_CLOCK) -> DatabaseTokenStore:
    return DatabaseTokenStore(db, key_material=credentials.ZALO_APP_SECRET, clock=clock)


def zalo_key(adapter: Any) -> str:
    return cast(ZaloAdapter, adapter).tokens.key


# -- what the record must hold --------------------------------------------------------------------


def zalo_body(record: dict[str, Any]) -> str:
    """The plain-text body a Zalo record carries, rebuilt from its ``<p>`` text blocks.

    The adapter sends each paragraph of the rendered body as one text block ``<p>…</p>``
    (HTML-escaped, line breaks as ``<br>``); the record's ``text`` is those blocks joined by
    newlines. Undoing exactly that must give the render back, byte for byte.
    """
    blocks = record["fields"]["body"]
    assert [b["type"] for b in blocks] == ["text"] * len(blocks)
    contents = [b["content"] for b in blocks]
    assert record["text"] == "\n".join(contents)
    paragraphs = []
    for content in contents:
        assert content.startswith("<p>") and content.endswith("</p>"), content
        inner = content.removeprefix("<p>").removesuffix("</p>")
        assert "<" not in inner.replace("<br>", ""), "only <br> may be markup in a paragraph"
        paragraphs.append(html.unescape(inner.replace("<br>", "\n")))
    return "\n\n".join(paragraphs)


def letters(text: str) -> Counter[str]:
    """Every non-ASCII character with its count: the diacritics a record must keep."""
    return Counter(c for c in text if ord(c) > 127)


def assert_nfc_vietnamese(text: str, render_text: str) -> None:
    assert unicodedata.is_normalized("NFC", text)
    assert not any(unicodedata.combining(c) for c in text), "decomposed diacritics"
    assert letters(text) == letters(render_text)
    assert "trẻ em" in text  # precomposed ẻ: every render of this campaign names children
    assert letters(text).keys() & set("ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")


def assert_published(rig: Rig, cid: str, post: Outgoing, render: Render, receipt: Receipt) -> None:
    """The one record of ``post`` holds the render exactly; the record file holds it too."""
    platform = PLATFORM[cid]
    mine = [r for r in rig.records(platform) if r["remote_id"] == receipt.remote_id]
    assert len(mine) == 1, mine
    record = mine[0]
    if platform == "facebook":
        # Exactly the render: nothing of ours (no reconciliation marker) is added.
        sent = record["text"]
        assert sent == render.text
    elif platform == "zalo":
        sent = zalo_body(record)
        assert sent == render.fields["body"]
        assert record["title"] == render.fields["title"]
        for name in ("author", "description"):
            assert record["fields"][name] == render.fields[name]
    else:
        sent = record["text"]
        assert sent == render.text  # the portal's HTML content as rendered
        assert record["title"] == render.fields["title"]
    assert sent.encode("utf-8") == render.text.encode("utf-8")
    assert_nfc_vietnamese(record["text"], render.text)  # markup is ASCII
    # The file on disk: the same record, its text as the same UTF-8 bytes (JSON-quoted).
    on_disk = [r for r in rig.file_records() if r["remote_id"] == receipt.remote_id]
    assert on_disk == [record]
    quoted = json.dumps(record["text"], ensure_ascii=False).encode("utf-8")
    assert quoted in rig.record_path.read_bytes()


# -- 1. every channel publishes slogans and articles byte for byte -------------------------------


def source_text(rig: Rig, message: Message) -> str:
    """A slogan's body as its file holds it (NFC), read straight from the bytes on disk."""
    raw = (rig.config.messages_dir / f"{message.key}.md").read_bytes().decode("utf-8")
    body = raw.split("---", 2)[2].strip()
    assert body and unicodedata.normalize("NFC", body) == message.body.strip()
    return unicodedata.normalize("NFC", body)


def publish_all(rig: Rig, cid: str, adapter: Any) -> int:
    kinds: Counter[str] = Counter()
    for message in rig.messages:
        if cid not in message.channels:
            continue
        post, render = rig.post(cid, message)
        since = SYSTEM_CLOCK.now()
        receipt = adapter.publish(post)
        assert_published(rig, cid, post, render, receipt)
        if message.kind == "slogan":  # the plan's wording, from the file to the follower
            (record,) = [r for r in rig.records() if r["remote_id"] == receipt.remote_id]
            said = zalo_body(record) if cid == "zalo" else record["text"]
            assert source_text(rig, message) in said
        found = adapter.lookup(post, since)
        assert found is not None and found.remote_id == receipt.remote_id
        kinds[message.kind] += 1
    assert kinds["slogan"] >= 1 and kinds["article"] >= (1 if cid != "portal_pbgdpl" else 0)
    return sum(kinds.values())


@pytest.mark.parametrize("cid", list(CHANNELS))
def test_portals_and_facebook_publish_every_render_byte_for_byte(rig: Rig, cid: str) -> None:
    assert rig.config.channels[cid].adapter == CHANNELS[cid]
    published = publish_all(rig, cid, rig.adapter(cid))
    assert len(rig.records(CHANNELS[cid])) == published


def test_zalo_publishes_every_render_byte_for_byte(rig: Rig, sqlite_db: Database) -> None:
    adapter = rig.adapter("zalo", tokens=zalo_store(sqlite_db))
    published = publish_all(rig, "zalo", adapter)
    assert len(rig.records("zalo")) == published
    assert len(rig.minted) == 1  # one refresh, from the configured seed, then the stored token


SPECIAL = """---
kind: article
title: "Trẻ em <16 tuổi & “quyền được bảo vệ”: 5 + 5 = 10 điều"
summary: "Ký tự đặc biệt: <, >, &, %20, + và dấu “ngoặc kép” – trẻ em."
channels: [portal_stp, portal_pbgdpl, facebook, zalo]
---
Trẻ em dưới 16 tuổi có quyền được bảo vệ; cha mẹ & nhà trường cùng chịu trách nhiệm.

- Gọi **111** khi thấy trẻ em bị xâm hại
- So sánh: 5 < 16 > 3, và <b>không phải HTML</b>
- Đường dẫn: https://example.gov.vn/?a=1&b=2+3%20

Đoạn cuối: “trẻ em” là tương lai.
"""


def test_markup_characters_and_line_breaks_survive_every_channel(
    rig: Rig, sqlite_db: Database
) -> None:
    (rig.config.messages_dir / "articles" / "99-ky-tu-dac-biet.md").write_text(SPECIAL, "utf-8")
    messages, problems = read_messages(rig.config)
    assert not problems
    message = next(m for m in messages if m.key == "articles/99-ky-tu-dac-biet")
    for cid in PLATFORM:
        adapter = rig.adapter(cid, tokens=zalo_store(sqlite_db) if cid == "zalo" else None)
        post, render = rig.post(cid, message)
        assert "&" in render.text and "<" in render.text
        since = SYSTEM_CLOCK.now()
        receipt = adapter.publish(post)
        assert_published(rig, cid, post, render, receipt)
        assert adapter.lookup(post, since).remote_id == receipt.remote_id
    (zalo,) = rig.records("zalo")
    assert "<br>" in zalo["text"] and "&lt;b&gt;" in zalo["text"] and "&amp;" in zalo["text"]


# -- 2. every fault kind maps to its outcome -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    cid: str
    spec: str
    outcome: type[ChannelError] | None  # None: published despite the fault
    created: bool = False  # the platform holds the item although the call failed
    timeout: float = 10.0


def C(cid: str, kind: str, outcome: type[ChannelError] | None, **kw: Any) -> Any:
    case = Case(cid, f"{PLATFORM[cid]}:{kind}", outcome, **kw)
    return pytest.param(case, id=f"{cid}-{kind}")


PORTAL_CASES = [
    # WordPress: a 5xx to the create is unclear (the post may exist); it looks up by slug.
    C("portal_stp", "error-before=x1", Ambiguous),
    C("portal_stp", "create-then-fail=x1", Ambiguous, created=True),
    C("portal_stp", "throttle=x1", Throttled),
    C("portal_stp", f"slow=x1:{SLOW}", Ambiguous, created=True, timeout=SHORT_TIMEOUT),
    # The webhook contract (docs/webhook.md): 5xx and a timeout after sending are ambiguous.
    C("portal_pbgdpl", "error-before=x1", Ambiguous),
    C("portal_pbgdpl", "create-then-fail=x1", Ambiguous, created=True),
    C("portal_pbgdpl", "throttle=x1", Throttled),
    C("portal_pbgdpl", f"slow=x1:{SLOW}", Ambiguous, created=True, timeout=SHORT_TIMEOUT),
    # Graph: code 1/2 "unknown error" may have been carried out; 190 is an expired token.
    C("facebook", "error-before=x1", Ambiguous),
    C("facebook", "create-then-fail=x1", Ambiguous, created=True),
    C("facebook", "throttle=x1", Throttled),
    C("facebook", "throttle=x1:613", Throttled),
    C("facebook", f"slow=x1:{SLOW}", Ambiguous, created=True, timeout=SHORT_TIMEOUT),
    C("facebook", "token-expiry=x1", AuthError),
    C("facebook", "permission=x1", AuthError),
    C("facebook", "policy-block=x1", Permanent),
]
ZALO_CASES = [
    C("zalo", "error-before=x1", Ambiguous),  # 503 without Zalo's JSON, to a create
    C("zalo", "create-then-fail=x1:create", Ambiguous, created=True),
    C("zalo", "create-then-fail=x1:verify", Ambiguous, created=True),
    C("zalo", "throttle=x1", Throttled),  # -32
    C("zalo", f"slow=x1:{SLOW}", Ambiguous, created=True, timeout=SHORT_TIMEOUT),
    C("zalo", "token-expiry=x1", None),  # -216: refreshed transparently, then published
    C("zalo", "processing=x1:2", None),  # -214 twice at verify, then the id
]


def run_case(rig: Rig, case: Case, make: Callable[[float], Any]) -> None:
    """Publish one slogan under ``case``'s fault with an adapter made by ``make(timeout)``; then
    reconcile as the dispatcher does, with a patient adapter: look up first, resend only if the
    platform holds nothing."""
    cid, platform = case.cid, PLATFORM[case.cid]
    adapter, patient = make(case.timeout), make(10.0)
    post, render = rig.post(cid, rig.message(cid, "slogan"))
    for picture in post.media if platform == "wordpress" else ():
        adapter.media.attachment(picture)  # the cover is on the site: the fault meets the post
    rig.sandbox.set_faults(case.spec)
    since = before = SYSTEM_CLOCK.now()
    if case.outcome is None:
        receipt = adapter.publish(post)
        assert_published(rig, cid, post, render, receipt)
        return
    with pytest.raises(case.outcome) as caught:
        adapter.publish(post)
    error = caught.value
    assert type(error) is case.outcome, f"{type(error).__name__}: {error}"
    assert error.reason and "\n" not in error.reason
    if isinstance(error, Throttled):
        assert error.until.tzinfo is not None and error.until > before
    held = rig.records(platform)
    assert len(held) == (1 if case.created else 0), held
    if case.outcome is not Ambiguous:
        return  # refused before anything was created: nothing to reconcile
    found = patient.lookup(post, since)
    if case.created:
        assert found is not None, "lookup must find the item the platform created"
        assert found.remote_id == held[0]["remote_id"]
        receipt = found  # found: the dispatcher records it and sends nothing
    else:
        assert found is None, "lookup must not invent an item"
        rig.sandbox.set_faults("")
        receipt = patient.publish(post)  # nothing exists: the resend is safe
    assert_published(rig, cid, post, render, receipt)
    if platform in ("wordpress", "webhook"):
        # Idempotent platforms (slug, Idempotency-Key): even a blind resend adds nothing.
        rig.wake()  # a "slow" answer still pending ends first
        assert patient.publish(post).remote_id == receipt.remote_id
    assert len(rig.records(platform)) == 1
    again = patient.lookup(post, since)
    assert again is not None and again.remote_id == receipt.remote_id


@pytest.mark.parametrize("case", PORTAL_CASES)
def test_each_fault_maps_to_its_outcome(rig: Rig, case: Case) -> None:
    run_case(rig, case, lambda timeout: rig.adapter(case.cid, timeout=timeout))


@pytest.mark.parametrize("case", ZALO_CASES)
def test_each_zalo_fault_maps_to_its_outcome(rig: Rig, sqlite_db: Database, case: Case) -> None:
    sleeps: list[float] = []
    store = zalo_store(sqlite_db)

    def make(timeout: float) -> Any:
        return rig.adapter("zalo", tokens=store, timeout=timeout, sleep=sleeps.append)

    assert make(10.0).check().ok  # the first refresh (from the seed) is not under test here
    assert len(rig.minted) == 1
    run_case(rig, case, make)
    if "token-expiry" in case.spec:
        # The killed access token was refreshed once; the newest pair is the one stored.
        assert len(rig.minted) == 2 and all(ok for _, ok in rig.spent)
        stored = store.load(zalo_key(make(10.0)))
        assert stored is not None and (stored.access_token, stored.refresh_token) == rig.minted[-1]
    else:
        assert len(rig.minted) == 1
    if "processing" in case.spec:
        assert sleeps == [2.0, 4.0]


def test_zalo_refuses_an_article_without_a_cover_unless_lenient(
    rig: Rig, sqlite_db: Database
) -> None:
    """Strict by default, as Zalo is: no cover (and no default) is -201, permanent, nothing made."""
    adapter = rig.adapter("zalo", tokens=zalo_store(sqlite_db), settings={"default_cover": ""})
    post, _ = rig.post("zalo", rig.message("zalo", "slogan"))
    assert post.cover is not None and post.cover.is_file  # the campaign's banner
    bare = replace(post, media=())
    with pytest.raises(Permanent, match=r"Zalo error -201: cover is invalid"):
        adapter.publish(bare)
    assert rig.records("zalo") == []
    rig.sandbox.set_faults("zalo:lenient")
    assert adapter.publish(bare).remote_id and len(rig.records("zalo")) == 1


def test_wordpress_refuses_a_contributor_and_a_wrong_password(rig: Rig) -> None:
    contributor = rig.adapter(
        "portal_stp", settings={"username": credentials.WORDPRESS_CONTRIBUTOR}
    )
    post, _ = rig.post("portal_stp", rig.message("portal_stp", "article"))
    with pytest.raises(AuthError, match="may not upload files: needs upload_files"):
        contributor.publish(post)  # its cover goes first, to the media library
    with pytest.raises(AuthError, match="publish_posts"):
        contributor.publish(replace(post, media=()))
    assert not contributor.check().ok
    wrong = rig.adapter("portal_stp", secrets={"password": WRONG_WP_PASSWORD})
    with pytest.raises(AuthError, match="application password was refused"):
        wrong.publish(post)
    assert not wrong.check().ok
    assert rig.records() == []
    # The password with its spaces removed is the same application password.
    compact = credentials.WORDPRESS_PASSWORD.replace(" ", "")
    assert rig.adapter("portal_stp", secrets={"password": compact}).check().ok


def test_webhook_and_facebook_refuse_wrong_secrets(rig: Rig) -> None:
    hook = rig.adapter(
        "portal_pbgdpl",
        secrets={"signing_secret": make_secret(b"not-the-shared-secret-key-32b")},
    )
    post, _ = rig.post("portal_pbgdpl", rig.message("portal_pbgdpl", "slogan"))
    with pytest.raises(AuthError, match="signing secret was refused"):
        hook.publish(post)
    assert not hook.check().ok
    with pytest.raises(AuthError):
        hook.lookup(post, SYSTEM_CLOCK.now())
    page = rig.adapter("facebook", secrets={"page_token": "not-the-page-token"})
    post, _ = rig.post("facebook", rig.message("facebook", "slogan"))
    with pytest.raises(AuthError, match="190"):
        page.publish(post)
    assert not page.check().ok
    assert rig.records() == []


def test_zalo_refused_credentials_and_a_lost_rotation_are_auth_errors(
    rig: Rig, sqlite_db: Database
) -> None:
    post, _ = rig.post("zalo", rig.message("zalo", "slogan"))
    store = zalo_store(sqlite_db)
    wrong = rig.adapter("zalo", tokens=store, secrets={"app_secret": "wrong-app-secret"})
    with pytest.raises(AuthError, match="-14004"):
        wrong.publish(post)
    # The token endpoint rotates, then fails: the client never sees the new pair, so the
    # refresh token it holds is dead (-14014) and the channel must be re-authorised.
    rig.sandbox.set_faults("zalo:refresh-then-fail=x1")
    adapter = rig.adapter("zalo", tokens=store)
    with pytest.raises(Temporary):
        adapter.publish(post)
    with pytest.raises(AuthError, match="-14014"):
        adapter.publish(post)
    assert [ok for _, ok in rig.spent] == [True, False]
    assert rig.records() == []


def test_zalo_lookup_skips_articles_other_posts_own(rig: Rig, sqlite_db: Database) -> None:
    """Zalo is looked up by title, and a slogan repeats: the dispatcher passes the remote ids
    other posts own in ``Outgoing.exclude`` so an earlier repeat is never taken for this one."""
    adapter = rig.adapter("zalo", tokens=zalo_store(sqlite_db))
    slogan = rig.message("zalo", "slogan")
    first, _ = rig.post("zalo", slogan)
    receipt = adapter.publish(first)
    repeat, _ = rig.post("zalo", slogan)  # the same slogan again: same title and body
    rig.sandbox.set_faults("zalo:error-before=x1")  # refused before anything was created
    since = SYSTEM_CLOCK.now()
    with pytest.raises(Ambiguous):
        adapter.publish(repeat)
    assert len(rig.records("zalo")) == 1
    assert adapter.lookup(repeat, since) == receipt  # by title alone it would be the first's …
    owned = replace(repeat, exclude=frozenset({receipt.remote_id}))
    assert adapter.lookup(owned, since) is None  # … which the dispatcher excludes
    again = adapter.publish(owned)
    assert again.remote_id != receipt.remote_id
    assert adapter.lookup(owned, since) == again


# -- 3. the Zalo refresh token rotates exactly once under concurrent use --------------------------


class ShiftedClock:
    def __init__(self) -> None:
        self.shift = timedelta(0)

    speed = 1.0

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now() + self.shift

    def real_seconds(self, virtual: timedelta) -> float:
        return virtual.total_seconds()

    def virtual(self, real: timedelta) -> timedelta:
        return real

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        SYSTEM_CLOCK.sleep(seconds, wake)


def slow_mint(adapter: Any, seconds: float) -> None:
    """Widen the race: the refresh request leaves only after ``seconds``."""
    rotator = cast(ZaloAdapter, adapter).tokens
    mint = rotator.mint

    def slow(token: str) -> Any:
        time.sleep(seconds)
        return mint(token)

    rotator.mint = slow  # type: ignore[method-assign]


def expire_soon(rig: Rig, clock: ShiftedClock, how: str) -> None:
    """Make the live access token need replacing, the way ``how`` says."""
    ttl = rig.sandbox.access_token_ttl
    if how == "proactive":  # inside the refresh margin on our clock, still valid at Zalo's
        seconds = ttl - REFRESH_MARGIN.total_seconds() / 2
        clock.shift += timedelta(seconds=seconds)
        rig.sandbox.advance(seconds)
    else:  # "reactive": Zalo's clock says it expired; ours does not know (-220 comes back)
        rig.sandbox.advance(ttl + 1)


@pytest.mark.parametrize("how", ["proactive", "reactive"])
def test_two_threads_refresh_the_zalo_token_once(rig: Rig, db: Database, how: str) -> None:
    clock = ShiftedClock()
    warm = rig.adapter("zalo", tokens=zalo_store(db, clock), clock=clock)
    post, _ = rig.post("zalo", rig.message("zalo", "article", 0))
    warm.publish(post)
    assert len(rig.minted) == 1
    expire_soon(rig, clock, how)

    # Two workers, each with its own client and token store on the same database.
    workers = [rig.adapter("zalo", tokens=zalo_store(db, clock), clock=clock) for _ in range(2)]
    for worker in workers:
        slow_mint(worker, 0.2)
    posts = [rig.post("zalo", rig.message("zalo", "article", n))[0] for n in (1, 2)]
    barrier = threading.Barrier(2)
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def run(worker: Any, post: Outgoing) -> None:
        barrier.wait()
        try:
            receipts.append(worker.publish(post))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(workers, posts, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors  # a reused refresh token would have been refused (-14014)
    assert len({r.remote_id for r in receipts}) == 2
    assert len(rig.records("zalo")) == 3
    assert len(rig.minted) == 2, "exactly one refresh for the one rotation needed"
    assert [ok for _, ok in rig.spent] == [True, True]
    assert len({token for token, _ in rig.spent}) == 2
    stored = zalo_store(db).load(zalo_key(warm))
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == rig.minted[-1]


def child_env() -> dict[str, str]:
    """The environment for a child Python: it imports this checkout's publisher from any cwd."""
    root = str(Path(publisher.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


CHILD = r"""
import json, sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher.channels import build
from publisher.app import media_host, use_sandbox
from publisher.channels.base import Outgoing
from tests.fakes import render_media
from publisher.config import load_config
from publisher.content import read_messages
from publisher.store.db import Database, open_database
from publisher.render import Renderer
from publisher.sandbox import credentials
from publisher.store.tokens import DatabaseTokenStore
from publisher.clock import SystemClock

args = json.loads(sys.argv[1])
shift = timedelta(seconds=args["shift"])

class Shifted(SystemClock):
    def now(self):
        return datetime.now(UTC) + shift

clock = Shifted()

config, secrets = use_sandbox(load_config(Path(args["config"])), args["url"])
message = next(m for m in read_messages(config)[0] if m.key == args["message"])
render = Renderer(config).render(message, "zalo")
store = DatabaseTokenStore(Database(args["db"]), credentials.ZALO_APP_SECRET, clock=clock)
host = media_host(config, secrets)  # the sandbox's portal publishes the cover
adapter = build(
    config.channels["zalo"], secrets.for_channel("zalo"), clock=clock, tokens=store, media_host=host
)
rotator = adapter.tokens
mints, waits = [], []
mint, sleep = rotator.mint, rotator.sleep

def slow_mint(token):
    mints.append(1)
    time.sleep(args["mint_delay"])
    return mint(token)

def counted_sleep(seconds):
    waits.append(seconds)
    sleep(min(seconds, 0.1))  # the lease holder is watched closely: no need to wait a second

rotator.mint, rotator.sleep = slow_mint, counted_sleep
post = Outgoing(
    args["post_id"], args["key"], "zalo", message.kind, render.fields, clock.now(),
    media=render_media(render),
)
Path(args["ready"]).touch()
deadline = time.monotonic() + 30
while not Path(args["go"]).exists() and time.monotonic() < deadline:
    time.sleep(0.002)
try:
    out = {"ok": True, "remote_id": adapter.publish(post).remote_id}
except Exception as exc:
    out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
out.update(mints=len(mints), waits=len(waits))
print(json.dumps(out))
"""


def test_two_processes_refresh_the_zalo_token_once(
    rig: Rig, db: Database, config: Config, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    warm = rig.adapter("zalo", tokens=zalo_store(db, clock), clock=clock)
    warm.publish(rig.post("zalo", rig.message("zalo", "article", 0))[0])
    assert len(rig.minted) == 1
    expire_soon(rig, clock, "proactive")

    go = tmp_path / "go"
    children = []
    for n in (1, 2):
        args = {
            "config": str(config.path),
            "url": rig.sandbox.url,
            "db": db.url,
            "message": rig.message("zalo", "article", n).key,
            "shift": clock.shift.total_seconds(),
            "post_id": 100 + n,
            "key": str(uuid.uuid4()),
            "mint_delay": 0.8,  # the refresh is slow: the other arrives during it
            "ready": str(tmp_path / f"ready-{n}"),
            "go": str(go),
        }
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(args)],
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"ready-{n}").exists() for n in (1, 2)):
            assert time.monotonic() < deadline, "the child processes did not start"
            assert all(c.poll() is None for c in children), [c.communicate() for c in children]
            time.sleep(0.01)
        go.touch()  # both processes publish at the same moment
        results = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert all(r["ok"] for r in results), results
    assert len({r["remote_id"] for r in results}) == 2
    assert sorted(r["mints"] for r in results) == [0, 1], results  # one process refreshed
    assert sum(r["waits"] for r in results) >= 1, "the other waited on the refresh lease"
    assert len(rig.minted) == 2
    assert [ok for _, ok in rig.spent] == [True, True]
    stored = zalo_store(db).load(zalo_key(warm))
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == rig.minted[-1]
    assert len(rig.records("zalo")) == 3


# -- 4. no secret anywhere ------------------------------------------------------------------------


def texts_of(error: BaseException) -> list[str]:
    out: list[str] = []
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out += [str(e), repr(e), getattr(e, "reason", "")]
        e = e.__cause__ or e.__context__
    out.append("".join(traceback.format_exception(error)))
    return out


def test_no_secret_in_any_log_line_record_receipt_or_error(
    rig: Rig, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "publisher"):
        caplog.set_level(logging.DEBUG, logger=name)
    wrong = {
        "portal_stp": {"password": WRONG_WP_PASSWORD},
        "portal_pbgdpl": {"signing_secret": make_secret(b"wrong-webhook-secret-123-45678")},
        "facebook": {"page_token": "wrong-page-token-456"},
        "zalo": {"app_secret": "wrong-zalo-secret-789"},
    }
    store = zalo_store(sqlite_db)
    texts: list[str] = []
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def attempt(adapter: Any, post: Outgoing, spec: str = "") -> None:
        rig.sandbox.set_faults(spec)
        since = SYSTEM_CLOCK.now()
        try:
            receipts.append(adapter.publish(post))
        except ChannelError as exc:
            errors.append(exc)
        try:
            found = adapter.lookup(post, since)
            if found is not None:
                receipts.append(found)
        except ChannelError as exc:
            errors.append(exc)

    for cid, platform in PLATFORM.items():
        tokens = store if cid == "zalo" else None
        adapter = rig.adapter(cid, tokens=tokens)
        kinds = ("slogan", "article") if cid != "portal_pbgdpl" else ("slogan",)
        for n, kind in enumerate(kinds):
            attempt(adapter, rig.post(cid, rig.message(cid, kind))[0])
            for spec in ("error-before=x1", "create-then-fail=x1", "throttle=x1"):
                attempt(adapter, rig.post(cid, rig.message(cid, kind, n + 1))[0], f"*:{spec}")
        texts.append(adapter.check().detail)
        if platform in ("facebook", "zalo"):  # the channels whose tokens travel in headers
            slow = rig.adapter(cid, tokens=tokens, timeout=SHORT_TIMEOUT)
            attempt(slow, rig.post(cid, rig.message(cid, "slogan", 3))[0], f"*:slow=x1:{SLOW}")
            expiry = f"{platform}:token-expiry=x2"  # Zalo: refreshed, then refused again
            attempt(adapter, rig.post(cid, rig.message(cid, "slogan", 4))[0], expiry)
        # Wrong credentials (a Zalo store keyed by the wrong secret cannot read the tokens).
        bad_store = DatabaseTokenStore(sqlite_db, wrong["zalo"]["app_secret"]) if tokens else None
        bad = rig.adapter(cid, tokens=bad_store, secrets=wrong[cid])
        attempt(bad, rig.post(cid, rig.message(cid, "slogan", 5))[0])
        texts.append(bad.check().detail)
    contributor = rig.adapter("portal_stp", settings={"username": "contributor"})
    attempt(contributor, rig.post("portal_stp", rig.message("portal_stp", "slogan"))[0])
    # Finally lose a Zalo rotation: a refused refresh token is reported, never quoted.
    zalo = rig.adapter("zalo", tokens=store)
    attempt(zalo, rig.post("zalo", rig.message("zalo", "article", 6))[0], "zalo:token-expiry=x1")
    lost = rig.post("zalo", rig.message("zalo", "article", 7))[0]
    attempt(zalo, lost, "zalo:token-expiry=x1,zalo:refresh-then-fail=x1")  # Temporary
    attempt(zalo, lost)  # AuthError: the refresh token held was spent by the lost rotation
    held = store.load(zalo_key(zalo))
    rig.wake()  # the slow answers finish now: their log lines count too

    # The run really exercised what it claims to search.
    outcomes = {type(e).__name__ for e in errors}
    assert outcomes >= {"Ambiguous", "Throttled", "AuthError", "Temporary"}, outcomes
    assert len(rig.minted) >= 3 and held is not None
    assert any(r.name.startswith("httpx") for r in caplog.records)

    page = httpx.get(rig.sandbox.url + "/", timeout=10).text
    listed = httpx.get(rig.sandbox.url + "/_sandbox/records", timeout=10).text
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    texts += [logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info]
    texts += [t for e in errors for t in texts_of(e)]
    texts += [repr(r) for r in receipts]
    texts += [rig.record_path.read_text("utf-8"), json.dumps(rig.sandbox.records()), page, listed]

    secrets = {v for values in credentials.SECRETS.values() for v in values.values()}
    secrets |= {credentials.WORDPRESS_PASSWORD.replace(" ", "")}
    for user in (credentials.WORDPRESS_USER, credentials.WORDPRESS_CONTRIBUTOR):
        for password in (credentials.WORDPRESS_PASSWORD, wrong["portal_stp"]["password"]):
            secrets.add(base64.b64encode(f"{user}:{password}".encode()).decode())
    secrets |= {v for values in wrong.values() for v in values.values()}
    secrets |= {wrong["portal_stp"]["password"].replace(" ", "")}
    secrets |= {token for pair in rig.minted for token in pair}
    secrets |= {token for token, _ in rig.spent}
    secrets |= {held.access_token, held.refresh_token}
    assert credentials.ZALO_APP_SECRET in secrets and credentials.FACEBOOK_PAGE_TOKEN in secrets
    for secret in sorted(secrets):
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{secret!r} appears in: {leaks[0][:300]!r}"


def test_the_token_store_keeps_the_rotated_tokens_encrypted(rig: Rig, db: Database) -> None:
    store = zalo_store(db)
    adapter = rig.adapter("zalo", tokens=store)
    adapter.publish(rig.post("zalo", rig.message("zalo", "slogan"))[0])
    from sqlalchemy import text

    with db.read() as session:
        rows = [
            tuple(map(str, row)) for row in session.execute(text("SELECT * FROM channel_token"))
        ]
    assert rows
    access, refresh = rig.minted[-1]
    for secret in (access, refresh, credentials.ZALO_FIRST_REFRESH_TOKEN):
        assert not any(secret in value for row in rows for value in row)
    loaded = store.load(zalo_key(adapter))
    assert loaded is not None and (loaded.access_token, loaded.refresh_token) == (access, refresh)
