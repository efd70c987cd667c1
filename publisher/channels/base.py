"""The one small interface every channel adapter implements, and its outcome classes.

An adapter turns its platform's answers into a receipt or one of these exceptions:

ChannelError                  (base; never raised itself)
├── Temporary                 retry later, not before ``retry_after`` seconds
│   └── Unreachable           the request never reached the platform: the channel waits
├── Throttled                 the whole channel waits until ``until``
├── Ambiguous                 the post may exist: ``lookup`` before any retry
├── AuthError                 the channel stops until someone re-authorises
└── Permanent                 this post cannot go as it is

Lower errors (httpx, JSON) are re-raised ``from`` the original. No message ever contains a token,
and none a control character or bidi override (``publisher.text.clean``): platforms' words are
stored and printed.
"""

from __future__ import annotations

import email.utils
import functools
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx

from publisher import __version__
from publisher.text import clean

USER_AGENT = f"publisher/{__version__} (+scheduled publishing for public bodies)"
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)


class ChannelError(Exception):
    """An outcome other than "published". ``reason`` is one line, safe to log and show."""

    outcome = "error"

    def __init__(self, reason: str, *, status: int | None = None, code: str | None = None) -> None:
        self.reason = " ".join(clean(reason).split())  # platforms' words: no control codes
        self.status = status
        self.code = code
        super().__init__(self.reason)


class Temporary(ChannelError):
    outcome = "temporary"

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.retry_after = retry_after  # seconds; the earliest sensible retry, if the platform said
        super().__init__(reason, status=status, code=code)


class Unreachable(Temporary):
    """The request never reached the platform (connection refused, DNS failure, TLS handshake,
    connect or pool timeout, a bad URL scheme): nothing was sent. The channel is down, not the
    post: the dispatcher pauses the channel and probes it, spending none of the post's tries."""

    outcome = "unreachable"


class Throttled(ChannelError):
    outcome = "throttled"

    def __init__(
        self, reason: str, *, until: datetime, status: int | None = None, code: str | None = None
    ) -> None:
        self.until = until  # aware; nothing goes to this channel before it
        super().__init__(reason, status=status, code=code)


class Ambiguous(ChannelError):
    outcome = "ambiguous"


class AuthError(ChannelError):
    outcome = "auth"


class Permanent(ChannelError):
    outcome = "permanent"


@dataclass(frozen=True)
class Media:
    """One picture of a post as an adapter sends it (``publisher.media`` makes them at render
    time; the dispatcher loads the approved bytes from the database).

    A picture is either a file (``data``: its bytes, already within this platform's limits,
    ``sha256`` of them, and ``name``, a file name unique to those bytes) or a public address
    (``url`` only, as the content gave it). A file may also have a ``url`` where it is already
    public (``[media] public_base_url``)."""

    role: str  # "cover" (the post's main picture) | "image" (shown with the text, in order)
    alt: str  # NFC alternative text; "" for a decorative picture
    mime: str = ""  # "image/jpeg" | "image/png"; "" for a URL picture (unknown until fetched)
    name: str = ""  # ASCII, unique to the bytes and alt text: "<stem>-<sha256[:12]>-<alt>.<ext>"
    sha256: str = ""  # of ``data``
    data: bytes = field(default=b"", repr=False)
    url: str = ""  # a public https:// address of the picture, when it has one
    width: int = 0
    height: int = 0

    @property
    def slug(self) -> str:
        """``name`` without its extension: how the picture is found again on a platform that
        keeps files by name (WordPress media slugs)."""
        return self.name.rpartition(".")[0] if "." in self.name else self.name

    @property
    def is_file(self) -> bool:
        return bool(self.data)


class MediaHost(Protocol):
    """Where a channel that takes pictures only as public addresses (Zalo's covers) gets one
    for a file: ``[media] public_base_url``, or the Department's portal (``[media] host``),
    uploading the file there first — looked up by ``Media.slug`` before any upload, so a file
    is uploaded once whatever happens, and reused by every post that needs it."""

    def public_url(self, media: Media) -> str:
        """An https:// address anyone can fetch ``media`` from; ChannelError subclasses as an
        adapter raises them (the host's own outcome: unreachable, auth, throttled…)."""
        ...

    def check(self) -> CheckResult:
        """Whether the host answers and takes our credentials (sending nothing): the channel
        that depends on it is not ready until it does."""
        ...


@dataclass(frozen=True)
class Outgoing:
    """One post as the adapter sends it: the approved render and its identity."""

    post_id: int
    idempotency_key: str  # a UUID made with the post; stable across retries
    channel: str
    kind: str  # slogan | article
    fields: Mapping[str, str]  # the rendered fields (see publisher.render.FIELDS)
    due_at: datetime
    # Remote ids other posts already own: a lookup by content (Zalo matches titles, and a slogan
    # repeats) must never hand one of them to this post.
    exclude: frozenset[str] = frozenset()
    # The post's pictures, the cover first (role "cover"), then the images in order.
    media: tuple[Media, ...] = ()

    @property
    def cover(self) -> Media | None:
        return next((m for m in self.media if m.role == "cover"), None)

    @property
    def images(self) -> tuple[Media, ...]:
        """Every picture other than the cover, in order."""
        return tuple(m for m in self.media if m.role != "cover")


@dataclass(frozen=True)
class Receipt:
    """What the platform gave back; its strings are stored and shown, so they come cleaned."""

    remote_id: str
    url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    # True: handed to someone who publishes it (a portal's editorial desk, by mail), not
    # published: the post waits in ``handed_off`` for the live URL to be confirmed.
    handed_off: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "remote_id", clean(self.remote_id))
        object.__setattr__(self, "url", None if self.url is None else clean(self.url))
        object.__setattr__(self, "extra", {k: clean(v) for k, v in self.extra.items()})


@dataclass(frozen=True)
class CheckResult:
    """What ``publisher channels check`` says of one channel."""

    ok: bool
    detail: str  # what was checked, or what to fix
    reachable: bool = True  # False: no request reached the platform (an outage's probe failed)

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", clean(self.detail))


class Adapter(Protocol):
    """The interface: built with an ``httpx.Client`` and settings, never reading the environment."""

    def publish(self, post: Outgoing) -> Receipt:
        """Publish ``post``; return its receipt or raise a ChannelError subclass."""
        ...

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        """Find ``post`` on the platform if it was created since ``since`` (reconciliation)."""
        ...

    def check(self) -> CheckResult:
        """Check credentials and reachability without publishing anything."""
        ...

    def pacing(self) -> float:
        """Seconds to wait before the next request to this channel (0.0 unless the platform's
        usage figures say to slow down)."""
        ...


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context, built once for every client: each build loads the CA bundle,
    tens of milliseconds and a few MB per client (bench/RESULTS.md)."""
    return httpx.create_ssl_context()


def mail_tls(ca_file: Path | None) -> ssl.SSLContext:
    """The TLS context of a mail connection (SMTP, IMAP): certificate and host name verified
    (the defaults, never relaxed); ``ca_file`` alone trusted when it is set."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def network_reason(
    exc: BaseException, *, table: str, timeout: float, safe: Callable[[str], str]
) -> str:
    """A mail connection's network failure in a few words (``safe`` takes the password out of
    what the library said), and for an untrusted certificate which setting of ``table`` fixes it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return safe(
            f"its TLS certificate is not trusted ({exc.verify_message}): if a private CA "
            f"signed it, set [{table}] ca_file to that CA's certificate (PEM)"
        )
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    detail = str(exc).strip()
    name = type(exc).__name__
    return safe(f"{name}: {detail}" if detail else name)


def new_client(base_url: str = "") -> httpx.Client:
    """One client per channel: timeouts, a User-Agent naming publisher, no redirects followed."""
    return httpx.Client(
        base_url=base_url,
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        verify=_tls(),
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds (it may be a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


# Failures before any byte of the request left: DNS, refused, TLS handshake (all ConnectError),
# the connect or pool timeouts, a URL scheme httpx cannot speak.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def never_sent(exc: BaseException) -> bool:
    """Whether the network failure ``exc`` happened before the request reached the platform."""
    return isinstance(exc, NOT_SENT)


@contextmanager
def calling(*, creates: bool, doing: str = "") -> Iterator[None]:
    """Around one HTTP call of an adapter: a network failure (any ``httpx.HTTPError``) becomes
    our outcome. Before the request reached the platform: Unreachable (the channel is down).
    After: Ambiguous for a request that may create something (``creates``: the post may exist,
    so it is looked up before any resend), else Temporary. ``doing`` names a call that is not
    a post's (e.g. "refreshing the Zalo access token") in the message. The httpx error is its
    cause."""
    try:
        yield
    except httpx.HTTPError as exc:
        name = type(exc).__name__
        about = f" ({doing})" if doing else ""
        if never_sent(exc):
            raise Unreachable(
                f"network: {name} before the request reached {_host(exc)}{about}"
            ) from exc
        if not creates:
            raise Temporary(
                f"network: {name} {doing or 'on a request that creates nothing'}"
            ) from exc
        raise Ambiguous(f"network: {name} after the request was sent; the post may exist") from exc


def unreachable(where: str, exc: ChannelError) -> CheckResult:
    """A check whose call failed on the network (``calling``): which failure, and whether the
    platform was reached at all."""
    name = type(exc.__cause__).__name__ if exc.__cause__ is not None else exc.reason
    return CheckResult(
        False, f"cannot reach {where}: {name}", reachable=not isinstance(exc, Unreachable)
    )


def _host(exc: httpx.HTTPError) -> str:
    try:
        host = exc.request.url.host
    except RuntimeError:  # an error raised without its request
        host = ""
    return host or "the platform"


def until(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


PICTURE_TYPES = ("image/jpeg", "image/png")


def fetchable(url: str, *, max_bytes: int, client: httpx.Client | None = None) -> CheckResult:
    """Whether anyone can fetch the picture at ``url`` (as a platform that takes pictures by
    address will): an https address (plain http only on this machine, the sandbox) whose HEAD
    (a GET's headers if HEAD is not allowed), redirects followed, answers 200 with a JPEG or
    PNG of at most ``max_bytes`` — counted by reading it when no Content-Length says."""
    parts = httpx.URL(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.host)):
        return CheckResult(False, f"{url} is not an https:// address: platforms fetch https only")
    own = client is None
    c = client or new_client()
    counted: int | None = None
    try:
        with calling(creates=False, doing=f"fetching {url}"):
            resp = c.head(url, follow_redirects=True)
            kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            unsized = not resp.headers.get("content-length", "").isdigit()
            if resp.status_code == 405 or (
                resp.status_code == 200 and kind in PICTURE_TYPES and unsized
            ):
                with c.stream("GET", url, follow_redirects=True) as streamed:
                    resp, counted = streamed, _count(streamed, max_bytes)
    except ChannelError as exc:
        return unreachable(url, exc)
    finally:
        if own:
            c.close()
    kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    size = str(counted) if counted is not None else resp.headers.get("content-length", "")
    if resp.status_code != 200:
        return CheckResult(False, f"{url} answered HTTP {resp.status_code}")
    if kind not in PICTURE_TYPES:
        return CheckResult(False, f"{url} is {kind or 'of no stated type'}, not a JPEG or PNG")
    if size.isdigit() and int(size) > max_bytes:
        return CheckResult(False, f"{url} is {int(size):,} bytes, over {max_bytes:,}")
    shown = f", {int(size) // 1000} kB" if size.isdigit() else ""
    return CheckResult(True, f"{url} can be fetched ({kind}{shown})")


def _count(resp: httpx.Response, most: int) -> int:
    """The bytes of ``resp``'s body, reading no more than ``most`` + 1 of them."""
    seen = 0
    for chunk in resp.iter_bytes():
        seen += len(chunk)
        if seen > most:
            break
    return seen


def _loopback(host: str) -> bool:
    from publisher.config import is_loopback

    return is_loopback(host)
