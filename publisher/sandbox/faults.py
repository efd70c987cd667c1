"""Seeded, deterministic fault injection for the sandbox: the plan, its grammar and its draws.

A spec is a comma-separated list of rules (spaces ignored; empty = no faults)::

    rule   = target ":" kind [ "=" chance [ ":" arg ] ]
    target = "facebook" | "zalo" | "wordpress" | "webhook" | "mail" | "desk" | "*"
    chance = a probability in [0, 1] (default 1)  |  "x" N  (exactly the next N matching requests)

e.g. ``facebook:create-then-fail=0.1,zalo:token-expiry=0.05,*:slow=0.05:2.0,webhook:throttle=x1``.

Kinds (they apply to write requests only: creates, media uploads, Zalo verify and broadcast, a
message sent to the SMTP server):

=================  ===========================================================================
error-before       5xx before anything is created (mail: 451 to the message, not kept)
create-then-fail   the item is stored and recorded, then a 5xx is answered (Zalo: at verify the
                   answer is -32, -100 or 502; mail: the connection dropped before the reply)
slow               sleep ``arg`` seconds (default 1.0) before answering, after storing
throttle           Facebook: code ``arg`` (4, 17, 32, 613 or 80001; default drawn among 4, 32,
                   80001); Zalo: -32; WordPress and webhook: 429 with ``Retry-After: 1``; mail:
                   451 4.7.1 to MAIL FROM
token-expiry       Facebook: 190/463 for this request; Zalo: the current access token dies (-216);
                   mail: the right password refused (535) for one connection
processing         Zalo: the created article answers -214 to its first ``arg`` (default 2) verifies
refresh-then-fail  Zalo OAuth: the refresh rotates the tokens, then HTTP 500 is answered
refresh-expired    Zalo OAuth: the refresh token is refused as dead (-14014 "Invalid refresh
                   token", nothing rotated), as after its three months: the OA must be
                   authorised again (with ``x``N, the Nth refresh after works again: re-authorised)
policy-block       Facebook: code 368; mail: 554 5.7.1 to the message, not kept
permission         Facebook: code 200 with HTTP 403
silent             desk: the article is never published and never answered
no-url             desk: the reply says the article was received, with no address
read-fail          a read of a post's figures fails (Facebook insights and fields, Zalo
                   getdetail/getslice, the WordPress stats routes, the webhook's stats lookup):
                   ``arg`` error (the default: 5xx, Graph code 2, Zalo -100), throttle (Graph
                   code 4, Zalo -32, HTTP 429) or token-expiry (Graph 190/463, Zalo -216,
                   WordPress 401, webhook 401); e.g. ``facebook:read-fail=x1:throttle``
=================  ===========================================================================

A ``read-fail`` rule fires at reads of figures only (its step is ``read``); no other kind does.

The ``desk`` (the editorial desk the sandbox plays for articles mailed to it, ``desk``) draws
once an article, when it is due; a ``*`` rule of another kind never applies to it.

Flags (on while their chance is above 0; never drawn): ``facebook:duplicate-check`` (#506 for the
same message to the same page within 5 minutes), ``facebook:high-usage`` (usage headers report
``arg`` %, default 85), ``lenient`` (target ``facebook``, ``zalo``, ``wordpress`` or ``*``: switch
off the strict checks the sandbox makes by default, as the platforms do — Zalo's cover, https
covers, ``status``/``comment`` values and titles under 150 characters (lenient: ≤ 150, as
documented); Facebook's 63,206-character message and caption and its link/url values; WordPress's
post with title, content and excerpt all empty), ``zalo:require-cover`` (an article without a
cover is -201: the default, so a no-op unless ``zalo:lenient`` is on too).

The steps a write request is: ``create`` (a post, an article, a webhook item; a published
Facebook photo is a post), ``upload`` (a picture that is not a post: WordPress's
``/wp/v2/media``, an unpublished Facebook photo), ``verify`` (Zalo),
``broadcast`` (Zalo), ``refresh`` (Zalo OAuth) and ``login`` (the SMTP AUTH, for mail's
``token-expiry`` only; a message is a ``create``). An ``error-before`` or ``create-then-fail``
rule whose arg names a step fires at that step only: ``wordpress:create-then-fail=x1:upload``
stores one picture and answers 500 (the chaos test's media publish-once),
``zalo:create-then-fail=x1:verify`` fails the verify of a live article. Without one it fires at
any step but refresh.

Every applicable rule draws once from ``random.Random(seed)`` per write request, in spec order, so
the same seed and the same requests give the same faults.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

PLATFORMS = ("facebook", "zalo", "wordpress", "webhook", "mail", "desk")
ALL = frozenset(PLATFORMS) - {"desk"}  # the desk has kinds of its own
KINDS: dict[str, frozenset[str]] = {
    "error-before": ALL,
    "create-then-fail": ALL,
    "slow": ALL,
    "throttle": ALL,
    "token-expiry": frozenset({"facebook", "zalo", "mail"}),
    "processing": frozenset({"zalo"}),
    "refresh-then-fail": frozenset({"zalo"}),
    "refresh-expired": frozenset({"zalo"}),
    "policy-block": frozenset({"facebook", "mail"}),
    "permission": frozenset({"facebook"}),
    "duplicate-check": frozenset({"facebook"}),
    "high-usage": frozenset({"facebook"}),
    "require-cover": frozenset({"zalo"}),
    "lenient": frozenset({"facebook", "zalo", "wordpress"}),
    "silent": frozenset({"desk"}),
    "no-url": frozenset({"desk"}),
    "read-fail": frozenset({"facebook", "zalo", "wordpress", "webhook"}),
}
FLAGS = frozenset({"duplicate-check", "high-usage", "require-cover", "lenient"})
# kinds tied to one step
ONLY_OP = {
    "processing": "create",
    "refresh-then-fail": "refresh",
    "refresh-expired": "refresh",
    "read-fail": "read",
}
READ_FAILS = ("error", "throttle", "token-expiry")  # what a read-fail rule's arg may name
STEPS = ("create", "upload", "verify", "broadcast")  # what an arg may restrict these kinds to
STEP_KINDS = frozenset({"error-before", "create-then-fail"})


class FaultSpecError(ValueError):
    """A fault spec that does not follow the grammar; the message names the rule and the fix."""


@dataclass
class Rule:
    target: str
    kind: str
    chance: float = 1.0
    times: int | None = None  # "xN": fires for exactly the next N matching requests
    arg: str | None = None

    def spec(self) -> str:
        chance = f"x{self.times}" if self.times is not None else f"{self.chance:g}"
        return f"{self.target}:{self.kind}={chance}" + (f":{self.arg}" if self.arg else "")

    def applies(self, platform: str, op: str) -> bool:
        if self.target not in ("*", platform) or platform not in KINDS[self.kind]:
            return False
        if self.kind in FLAGS or ONLY_OP.get(self.kind, op) != op:
            return False
        if op in ("refresh", "read") and ONLY_OP.get(self.kind) != op:
            return False
        if platform == "mail" and (op == "login") != (self.kind == "token-expiry"):
            return False  # mail's token-expiry fires at the login, every other kind at MAIL
        if self.kind in STEP_KINDS and self.arg:
            return self.arg == op
        return True


@dataclass(frozen=True)
class Fired:
    """The faults that fired for one request: kind → the rule that fired it."""

    rules: dict[str, Rule] = field(default_factory=dict)

    def __contains__(self, kind: object) -> bool:
        return kind in self.rules

    def arg(self, kind: str, default: str | None = None) -> str | None:
        rule = self.rules.get(kind)
        return rule.arg if rule is not None and rule.arg else default

    def seconds(self, kind: str, default: float) -> float:
        try:
            return float(self.arg(kind) or default)
        except ValueError:
            return default


def parse_rule(text: str) -> Rule:
    head, _, tail = text.partition("=")
    target, sep, kind = head.partition(":")
    if not sep or target not in (*PLATFORMS, "*"):
        raise FaultSpecError(
            f"fault rule {text!r}: start with a target (facebook, zalo, wordpress, webhook, mail,"
            " desk or *)"
            " and a colon, e.g. 'facebook:throttle=0.1'"
        )
    if kind not in KINDS:
        raise FaultSpecError(f"fault rule {text!r}: unknown kind; kinds: {', '.join(KINDS)}")
    if target != "*" and target not in KINDS[kind]:
        allowed = ", ".join(sorted(KINDS[kind]))
        raise FaultSpecError(f"fault rule {text!r}: {kind} applies only to {allowed}")
    chance_text, _, arg = tail.partition(":")
    if kind in STEP_KINDS and arg and arg not in STEPS:
        raise FaultSpecError(
            f"fault rule {text!r}: the step must be one of {', '.join(STEPS)}, e.g."
            f" '{target}:{kind}=x1:{STEPS[0]}'"
        )
    if kind == "read-fail" and arg and arg not in READ_FAILS:
        raise FaultSpecError(
            f"fault rule {text!r}: a read fails as one of {', '.join(READ_FAILS)}, e.g."
            f" '{target}:read-fail=x1:throttle'"
        )
    rule = Rule(target, kind, arg=arg or None)
    try:
        if chance_text.startswith("x"):
            rule.times = int(chance_text[1:])
        elif chance_text:
            rule.chance = float(chance_text)
    except ValueError as exc:
        raise FaultSpecError(
            f"fault rule {text!r}: the chance must be a probability (0.1) or a count (x2)"
        ) from exc
    if not 0.0 <= rule.chance <= 1.0 or (rule.times is not None and rule.times < 0):
        raise FaultSpecError(f"fault rule {text!r}: the chance must lie in [0, 1], a count ≥ 0")
    return rule


class FaultPlan:
    """The active rules and the seeded generator that decides, request by request, what fires."""

    def __init__(self, rules: Iterable[Rule] = (), seed: int = 0) -> None:
        self.rules = list(rules)
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not security
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> FaultPlan:
        parts = [p for p in "".join((spec or "").split()).split(",") if p]
        return cls([parse_rule(p) for p in parts], seed)

    def spec(self) -> str:
        return ",".join(rule.spec() for rule in self.rules)

    def draw(self, platform: str, op: str = "create") -> Fired:
        """Decide the faults of one write request (``op``: create, upload, verify, broadcast,
        refresh), or of a read of figures (``op`` read)."""
        fired: dict[str, Rule] = {}
        with self._lock:
            for rule in self.rules:
                if not rule.applies(platform, op):
                    continue
                if rule.times is not None:
                    hit = rule.times > 0
                    rule.times -= 1 if hit else 0
                else:
                    hit = self._rng.random() < rule.chance
                if hit:
                    fired.setdefault(rule.kind, rule)
        return Fired(fired)

    def flag(self, platform: str, kind: str) -> Rule | None:
        """The rule that switches flag ``kind`` on for ``platform``, if any."""
        for rule in self.rules:
            on = (rule.times is None and rule.chance > 0) or (rule.times or 0) > 0
            if rule.kind == kind and rule.target in ("*", platform) and on:
                return rule
        return None

    def strict(self, platform: str) -> bool:
        """Whether ``platform`` refuses what the real one refuses (the default; ``lenient`` not)."""
        return self.flag(platform, "lenient") is None

    def choice(self, options: Sequence[T]) -> T:
        """A deterministic pick (e.g. which throttling code), from the same seeded generator."""
        with self._lock:
            return self._rng.choice(options)
