"""The audit trail: append-only, each entry chained to the previous one by its hash.

``record`` appends inside the caller's transaction (so an action and its entry commit together);
``verify`` recomputes the chain and names the first bad entry (and the others after it).

The chain is keyed: each hash is HMAC-SHA256 under the audit key (``publisher.store.audit_key``),
which never enters the database, so whoever can write the database cannot recompute the hashes
of a rewritten trail. The head row keeps the scheme and the key's id. An unkeyed chain (the
first release's, plain SHA-256) is re-keyed once, the first time a key is at hand, with an entry
saying so. A tail cut off with the head moved back leaves no trace inside the database: the
daemon logs the head (``head_line``) and ``verify(expect=…)`` checks a logged head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from publisher.store.audit_key import KEY_ENV, AuditKeyError, key_id
from publisher.store.db import AUDIT_KEY, AUDIT_KEY_MAKER, Database
from publisher.store.models import AuditEntry, AuditHead, PostRow

GENESIS = "0" * 64
SHA256 = "sha256"  # unkeyed: the first release's chain
HMAC_SHA256 = "hmac-sha256"
REKEYER = "publisher"
# How a re-key entry records the problems the unkeyed chain already had: the evidence is kept.
BROKEN = "; before re-keying, the unkeyed chain was already broken: "
# How the dispatcher's cause begins when it finds a post altered in the database after its
# approval: ``verify`` names every such revocation, as evidence that outlives the repair.
ALTERED = "approval revoked: altered in the database"
# Posts that stand on their approval, or went out on it: their stored fields must be the text
# approved, and the audit trail must hold that approval.
_BOUND = ("approved", "held", "sending", "retrying", "unconfirmed", "handed_off", "published")
LISTED = 20  # entry problems named one by one; the rest are counted


def digest(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    post_id: int | None,
    subject: str,
    content_hash: str | None,
    detail: str,
    *,
    key: bytes | None = None,
) -> str:
    """An entry's hash: HMAC-SHA256 under ``key``, or plain SHA-256 for an unkeyed chain."""
    when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [prev_hash, when, actor, action, post_id, subject, content_hash, detail]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def _digest_of(e: AuditEntry, key: bytes | None) -> str:
    return digest(
        e.prev_hash,
        e.at,
        e.actor,
        e.action,
        e.post_id,
        e.subject,
        e.content_hash,
        e.detail,
        key=key,
    )


# Session.info key holding the audit head the session read: the identity map holds objects
# weakly, so without it the head, once flushed, is dropped and read again for every approval
# checked in the same transaction (a dispatcher's round claims several posts).
_HEAD_HELD = "publisher.audit_head_held"


def record(
    s: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    post_id: int | None = None,
    subject: str = "",
    content_hash: str | None = None,
    detail: str = "",
) -> AuditEntry:
    """Append one entry; the head row is locked, so concurrent appends queue up in order.

    Raises AuditKeyError if the chain is keyed and the session has no key, or another key.
    """
    head, key = _head(s, at)
    return _append(s, head, key, at, actor, action, post_id, subject, content_hash, detail)


def _append(
    s: Session,
    head: AuditHead,
    key: bytes | None,
    at: datetime,
    actor: str,
    action: str,
    post_id: int | None = None,
    subject: str = "",
    content_hash: str | None = None,
    detail: str = "",
) -> AuditEntry:
    at = at.astimezone(UTC)
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        post_id=post_id,
        subject=subject,
        content_hash=content_hash,
        detail=detail,
        prev_hash=head.last_hash,
        hash=digest(
            head.last_hash, at, actor, action, post_id, subject, content_hash, detail, key=key
        ),
    )
    s.add(entry)
    s.flush()
    head.last_id, head.last_hash = entry.id, entry.hash
    return entry


def _head(s: Session, at: datetime) -> tuple[AuditHead, bytes | None]:
    """The head, locked, and the key to append with. An unkeyed chain is keyed first when the
    session has a key (or a way to make one)."""
    head = s.get(AuditHead, 1, with_for_update=True, populate_existing=True)
    if head is None:  # created by the migration; recreated only if someone deleted it
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS, scheme=SHA256)
        s.add(head)
    s.info[_HEAD_HELD] = head  # kept for the session: ``approves`` finds it without a query
    key: bytes | None = s.info.get(AUDIT_KEY)
    if head.scheme == HMAC_SHA256:
        _check_key(head, key)
        return head, key
    if key is None and s.info.get(AUDIT_KEY_MAKER) is not None:
        key = s.info[AUDIT_KEY_MAKER]()
        s.info[AUDIT_KEY] = key
    if key is not None:
        _rekey(s, head, key, at)
    return head, key


def _check_key(head: AuditHead, key: bytes | None) -> None:
    if key is None:
        raise AuditKeyError(
            KEY_ENV,
            f"is needed: the audit trail is keyed (key id {head.key_id}) and no key was found",
            "set it, in the environment or the .env file config.toml names, to the key the "
            "trail was keyed with",
        )
    if key_id(key) != head.key_id:
        raise AuditKeyError(
            KEY_ENV,
            f"is not the key of this audit trail (its key id is {key_id(key)}, the trail's "
            f"is {head.key_id})",
            "set the key the trail was keyed with",
        )


def _rekey(s: Session, head: AuditHead, key: bytes, at: datetime) -> None:
    """Key an unkeyed chain: verify it as it is, recompute every hash as HMAC under ``key``, and
    append an entry saying so (with the problems it already had: evidence is never laundered)."""
    entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    keyed = next((e.id for e in entries if _digest_of(e, key) == e.hash), None)
    if keyed is not None:  # the head was set back to "unkeyed": re-keying would launder it
        raise AuditKeyError(
            KEY_ENV,
            f"keys entry {keyed}, yet the audit head says the trail is unkeyed: the head was "
            "altered in the database",
            "restore the database from a backup; 'publisher audit --verify' names what changed",
        )
    walk = _Walk(None, head)
    for e in entries:
        walk.entry(e)
    problems = [text for _, text in walk.finish()]
    old_id, old_hash = head.last_id, head.last_hash
    prev = GENESIS
    for e in entries:
        e.prev_hash = prev
        e.hash = prev = _digest_of(e, key)
    head.last_id, head.last_hash = (entries[-1].id if entries else 0), prev
    head.scheme, head.key_id = HMAC_SHA256, key_id(key)
    if not entries and not problems:
        return  # a new trail: keyed from its first entry
    detail = (
        f"re-keyed {len(entries)} entries from {SHA256} to {HMAC_SHA256} (key id "
        f"{head.key_id}); the unkeyed head was entry {old_id} {old_hash}"
    )
    if problems:
        detail += BROKEN + "; ".join(problems)
    _append(s, head, key, at, REKEYER, "rekey", detail=detail)


def ensure_keyed(db: Database, at: datetime) -> None:
    """Key an unkeyed chain now if ``db`` has a key (or makes one); check the key of a keyed
    one. Raises AuditKeyError as ``record`` would."""
    with db.write() as s:
        _head(s, at)


def approves(s: Session, post_id: int, content_hash: str | None) -> bool:
    """Whether the audit trail's last approval of post ``post_id`` is of ``content_hash`` (and,
    on a keyed chain, that entry is authentic under the session's key). On a keyed chain with
    no key, or another key, raises AuditKeyError: the post is neither sent nor sent back."""
    e = s.scalars(
        select(AuditEntry)
        .where(AuditEntry.post_id == post_id, AuditEntry.action == "approve")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    if e is None or content_hash is None or e.content_hash != content_hash:
        return False
    key: bytes | None = s.info.get(AUDIT_KEY)
    head = s.get(AuditHead, 1)  # the session's (see _HEAD_HELD), or read now
    s.info[_HEAD_HELD] = head
    if head is None or head.scheme != HMAC_SHA256:
        return True  # unkeyed: the chain's own check is all there is
    _check_key(head, key)  # no key, or not the trail's: nothing is sent that can't be recorded
    assert key is not None  # noqa: S101 - _check_key raised otherwise
    return _digest_of(e, key) == e.hash


@dataclass(frozen=True)
class Verification:
    entries: int
    problems: list[str]
    head: str  # the last entry's hash
    head_id: int = 0
    scheme: str = SHA256
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Walk:
    """Checks entries one by one, in id order; collects (entry id, problem)."""

    def __init__(self, key: bytes | None, head: AuditHead | None, want: Iterable[int] = ()):
        self.key, self.head = key, head
        self.prev, self.last_id, self.count = GENESIS, 0, 0
        self.problems: list[tuple[int, str]] = []
        self.want = set(want)
        self.found: dict[int, str] = {}

    def entry(self, e: AuditEntry) -> None:
        self.count += 1
        last = self.last_id
        if e.id != last + 1:
            gap = f"{last + 1}" if e.id == last + 2 else f"{last + 1}–{e.id - 1}"
            self.problems.append(
                (e.id, f"entry {gap} was removed (the ids jump from {last} to {e.id})")
            )
        elif e.prev_hash != self.prev:
            self.problems.append(
                (e.id, f"entry {e.id} no longer follows entry {last} (its link was altered)")
            )
        if _digest_of(e, self.key) != e.hash:
            self.problems.append(
                (e.id, f"entry {e.id} was edited: its content no longer matches its hash")
            )
        if e.action == "revoke" and e.detail.startswith(ALTERED):
            self.problems.append(
                (
                    e.id,
                    f"post {e.post_id} was altered in the database after its approval "
                    f"(found when sending it, entry {e.id}; nothing was sent)",
                )
            )
        if e.action == "rekey" and BROKEN in e.detail:
            self.problems.append(
                (
                    e.id,
                    f"entry {e.id}: when the trail was keyed, the unkeyed chain was already "
                    f"broken: {e.detail.split(BROKEN, 1)[1]}",
                )
            )
        if e.id in self.want:
            self.found[e.id] = e.hash
        self.prev, self.last_id = e.hash, e.id

    def finish(self) -> list[tuple[int, str]]:
        head, last = self.head, self.last_id
        if head is None:
            if self.count:
                self.problems.append((last, "the chain's head record was removed"))
        elif head.last_id != last or head.last_hash != self.prev:
            if head.last_id > last:
                self.problems.append(
                    (last + 1, f"entries after {last} (up to {head.last_id}) were removed")
                )
            else:
                self.problems.append(
                    (last, f"the chain's head says entry {head.last_id}, the last is {last}")
                )
        return self.problems


def verify(db: Database, expect: Sequence[tuple[int, str]] = ()) -> Verification:
    """Check the chain under ``db``'s key (re-keying an unkeyed chain first if ``db`` has a
    key), the heads in ``expect`` (entry id, hash; as the daemon logged them), and the posts
    that stand on an approval. Problems come in entry order: the first names the first bad
    entry."""
    key = db.audit_key
    if key is not None:
        try:
            ensure_keyed(db, datetime.now(UTC))
        except AuditKeyError as exc:
            return Verification(0, [_sentence(exc)], GENESIS)
    with db.read() as s:
        head = s.get(AuditHead, 1)
        scheme = head.scheme if head else SHA256
        kid = head.key_id if head else None
        if scheme == HMAC_SHA256 and head is not None:
            try:
                _check_key(head, key)
            except AuditKeyError as exc:
                return Verification(0, [_sentence(exc)], head.last_hash, head.last_id, scheme, kid)
        walk = _Walk(key if scheme == HMAC_SHA256 else None, head, (i for i, _ in expect))
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(500):
            walk.entry(e)
        found = walk.finish()
        for entry_id, expected in expect:
            if entry_id == 0 and expected == GENESIS:
                continue  # logged before the first entry
            have = walk.found.get(entry_id)
            if have is None:
                found.append(
                    (
                        entry_id,
                        f"entry {entry_id} was removed: the log recorded it as the head, the "
                        f"chain now ends at entry {walk.last_id}",
                    )
                )
            elif have != expected:
                found.append(
                    (
                        entry_id,
                        f"entry {entry_id} is not the head the log recorded (its hash is "
                        f"{have[:16]}…, the log's {expected[:16]}…): the trail was rewritten",
                    )
                )
        found.sort(key=lambda p: p[0])  # stable: each entry's problems in the order found
        problems = [text for _, text in found[:LISTED]]
        if len(found) > LISTED:
            problems.append(f"… and {len(found) - LISTED} more problems after these")
        problems += _posts(s)
    return Verification(walk.count, problems, walk.prev, walk.last_id, scheme, kid)


def _sentence(exc: AuditKeyError) -> str:
    return f"{exc.where} {exc.problem}" + (f" ({exc.hint})" if exc.hint else "")


def head_line(db: Database, *, key_first: bool = False) -> str:
    """The head as the daemon logs it, with the command that checks it later. ``key_first``
    keys an unkeyed chain first (if ``db`` has or makes a key), so the head logged stays true."""
    if key_first:
        ensure_keyed(db, datetime.now(UTC))
    with db.read() as s:
        head = s.get(AuditHead, 1)
        last_id, last_hash = (head.last_id, head.last_hash) if head else (0, GENESIS)
        scheme = head.scheme if head else SHA256
    return (
        f"audit head: entry {last_id} {scheme} {last_hash}; "
        f"verify with: publisher audit --verify --expect {last_id}:{last_hash}"
    )


def _posts(s: Session) -> list[str]:
    """Posts whose stored text or approved hash was changed in the database after approval."""
    from publisher.render import fields_hash

    problems = []
    approved = {  # each post's last approval in the trail
        pid: h
        for pid, h in s.execute(
            select(AuditEntry.post_id, AuditEntry.content_hash)
            .where(AuditEntry.action == "approve")
            .order_by(AuditEntry.id)
        )
    }
    rows = s.scalars(
        select(PostRow)
        .where(PostRow.state.in_(_BOUND), PostRow.approved_hash.is_not(None))
        .order_by(PostRow.id)
    )
    for p in rows:
        if p.state == "held" and p.held_from != "approved":
            continue
        if fields_hash(p.fields) != p.approved_hash:
            problems.append(
                f"post {p.id} ({p.state}): its stored text no longer matches the approved text "
                "(altered in the database after its approval)"
            )
        elif approved.get(p.id) != p.approved_hash:
            problems.append(
                f"post {p.id} ({p.state}): the audit trail holds no approval of its text "
                "(its approval was altered in the database)"
            )
    return problems


def entries(db: Database, post_id: int | None = None) -> list[AuditEntry]:
    with db.read() as s:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if post_id is not None:
            q = q.where(AuditEntry.post_id == post_id)
        return list(s.scalars(q))
