"""What a config.toml says, as frozen dataclasses, and the small rules they share with the
parser (``parse``): names, durations, URLs, the database URL's folder."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from publisher.config.graph_versions import CURRENT

KINDS = ("slogan", "article")
DATABASE_URL_ENV = "PUBLISHER_DATABASE_URL"
ID = re.compile(r"^[a-z][a-z0-9_]*$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> timedelta | None:
    """``"2h"``, ``"90s"``, ``"1h30m"``, ``"3m"``, ``"1d"`` → timedelta; None if not a duration."""
    m = _DURATION.match(text.strip().lower())
    if not m or not any(m.groups()):
        return None
    d, h, mins, s = m.groups()
    return timedelta(
        days=int(d or 0), hours=int(h or 0), minutes=int(mins or 0), seconds=float(s or 0)
    )


# Each adapter kind's settings in config.toml, typed: validated once when the config loads
# (``parse``), and the only place their defaults are written.


@dataclass(frozen=True)
class WordPressSettings:
    """A WordPress portal's ``[channels.X]`` settings."""

    base_url: str
    username: str
    category_ids: tuple[int, ...] = ()
    # the largest picture the site takes: 1.5 MB suits a multisite network's default
    # (fileupload_maxk 1500 KB); a single site's limit is PHP's (post_max_size, 8 MB by
    # default). Larger pictures are resized before they are approved.
    max_upload_bytes: int = 1_500_000
    # where the site keeps its view counts (README "What each platform reports"): "none" (no
    # figures), "post-views-counter" (that plugin's REST route) or "wp-postviews" (its REST field)
    stats: str = "none"


@dataclass(frozen=True)
class WebhookSettings:
    """A webhook channel's settings: where the posts go."""

    url: str
    public_base_url: str = ""
    stats: bool = False  # the receiver answers the signed GET <url>/stats/<id> (docs/webhook.md)


@dataclass(frozen=True)
class FacebookSettings:
    """A Facebook Page's settings: the page and the Graph API it calls."""

    page_id: str
    base_url: str = "https://graph.facebook.com"
    api_version: str = CURRENT  # Facebook's current Graph API version


@dataclass(frozen=True)
class ZaloSettings:
    """A Zalo Official Account's settings."""

    app_id: str
    api_base_url: str = "https://openapi.zalo.me"
    oauth_base_url: str = "https://oauth.zaloapp.com"
    oa_id: str = ""
    author: str = ""
    default_cover: str = ""
    broadcast: bool = False
    # the OA's package and verification, for `check`'s broadcast quota (platform-apis.md §7)
    package: str = "basic"  # basic | advanced | premium: 1 / 4 / 6 broadcasts a follower a month
    verified: bool = True  # only verified OAs may broadcast


@dataclass(frozen=True)
class EmailSettings:
    """A portal without a posting API, whose editorial desk publishes what it is mailed
    (``adapter = "email"``; README: "E-mail hand-off"). ``to``/``cc``: the desk's addresses.
    ``site``: the portal's public address; a confirmed post's live URL must lie under it
    unless ``any_url`` is true. ``confirm_within``: how long the desk has to confirm before
    the hand-off is overdue. ``link_valid``: how long the signed confirmation link in the mail
    works. Sending goes through ``[mail]`` (or ``PUBLISHER_SMTP_URL``)."""

    to: tuple[str, ...]
    site: str
    cc: tuple[str, ...] = ()
    confirm_within: timedelta = timedelta(hours=24)
    link_valid: timedelta = timedelta(days=14)
    any_url: bool = False


AdapterSettings = (
    WordPressSettings | WebhookSettings | FacebookSettings | ZaloSettings | EmailSettings
)


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter kind: its settings and secrets, whether it publishes HTML, and where its
    class is (``module:Class``, imported only when a channel of the kind is built)."""

    settings: type[AdapterSettings]
    secrets: tuple[str, ...]
    factory: str
    html: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.settings) if f.default is MISSING)

    @property
    def optional(self) -> dict[str, Any]:
        return {f.name: f.default for f in fields(self.settings) if f.default is not MISSING}


# The one registry of adapter kinds; the adapters themselves live in publisher/channels/.
ADAPTERS: dict[str, AdapterSpec] = {
    "wordpress": AdapterSpec(
        WordPressSettings, ("password",), "publisher.channels.wordpress:WordPressAdapter", True
    ),
    "webhook": AdapterSpec(
        WebhookSettings, ("signing_secret",), "publisher.channels.webhook:WebhookAdapter", True
    ),
    "facebook": AdapterSpec(
        FacebookSettings, ("page_token",), "publisher.channels.facebook:FacebookAdapter"
    ),
    "zalo": AdapterSpec(
        ZaloSettings, ("app_secret", "refresh_token"), "publisher.channels.zalo:ZaloAdapter"
    ),
    # the portal's editorial desk by mail: HTML like a portal; no secrets of its own ([mail])
    "email": AdapterSpec(EmailSettings, (), "publisher.channels.email_desk:EmailAdapter", True),
}


S = TypeVar("S", WordPressSettings, WebhookSettings, FacebookSettings, ZaloSettings, EmailSettings)


def settings_as(channel: Channel, kind: type[S]) -> S:
    """``channel``'s settings as the ``kind`` its adapter needs (TypeError for another kind)."""
    if not isinstance(channel.settings, kind):
        raise TypeError(f"channel {channel.id} has {channel.adapter} settings, not {kind.__name__}")
    return channel.settings


# The settings that are addresses publisher talks to (or links to): https:// only, except on a
# loopback host, so no credential ever crosses a network in clear.
URL_SETTINGS = ("base_url", "api_base_url", "oauth_base_url", "url", "public_base_url", "site")


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (a bare host: no port, no brackets)."""
    import ipaddress

    host = host.strip().lower().removesuffix(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(value: str) -> tuple[str, str] | None:
    """Why ``value`` may not be a channel address (problem, hint), or None if it may."""
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"{value!r} is not an http(s) URL", "e.g. https://example.gov.vn"
    host = parts.hostname or ""
    if not host:
        return f"{value!r} has no host", "e.g. https://example.gov.vn"
    if scheme == "http" and not is_loopback(host):
        return (
            f"'http://{host}' is plain http: credentials and posts would cross the network in "
            "clear",
            "use https:// (plain http:// is allowed only on localhost, 127.0.0.1 or [::1])",
        )
    return None


@dataclass(frozen=True)
class QuietHours:
    """A daily span in local time when nothing may be sent; may cross midnight."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Channel:
    """One ``[channels.X]`` table: where its posts go, when, and with which templates."""

    id: str
    name: str
    enabled: bool
    adapter: str
    templates: str
    slots: tuple[time, ...]
    daily_cap: int
    quiet_hours: QuietHours | None
    repeats: Mapping[str, int]
    settings: AdapterSettings  # typed per adapter kind (see ADAPTERS)
    secrets: Mapping[str, str]  # secret role → name of the environment variable holding it
    concurrency: int = 1  # posts published at once on this channel

    @property
    def html(self) -> bool:
        return ADAPTERS[self.adapter].html

    def setting(self, name: str, default: Any = None) -> Any:
        """One setting by its config.toml name (``default`` if this adapter has none such)."""
        return getattr(self.settings, name, default)

    def settings_dict(self) -> dict[str, Any]:
        """The settings as config.toml names them (templates see them as ``channel``; lists as
        lists)."""
        return {  # the settings hold no dataclass: no need of asdict's deep copy, per render
            f.name: list(v) if isinstance(v := getattr(self.settings, f.name), tuple) else v
            for f in fields(self.settings)
        }


@dataclass(frozen=True)
class KeyDate:
    """A ``[key_dates.X]`` table: a named day that content can be pinned to."""

    id: str
    date: date
    name: str


@dataclass(frozen=True)
class KindRules:
    """How often a kind of message repeats, and on which channels by default."""

    repeats: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Campaign:
    """The ``[campaign]`` table: its name, organisation and dates."""

    name: str
    theme: str
    organisation: str
    parent_organisation: str
    start: date
    end: date
    timezone: ZoneInfo
    hashtags: tuple[str, ...]


ROLES = ("drafter", "editor", "approver")


@dataclass(frozen=True)
class Member:
    """A person of the editorial board: ``name`` is what ``--as`` gives (or the OS user)."""

    name: str
    role: str  # drafter | editor | approver (each may do what the ones before it may)
    title: str = ""
    aliases: tuple[str, ...] = ()
    os_user: str | None = None  # their OS account: the CLI run by it acts as them, only them
    email: str = ""  # where their alerts go ([alerts]); "" if they get none


def member_key(name: str) -> str:
    """How names on the board compare: NFC, whitespace collapsed, case-folded — so an NFD
    "Lê Anh Tuấn" is Lê Anh Tuấn, and " TUAN.LA " is tuan.la."""
    folded = " ".join(unicodedata.normalize("NFC", name).split()).casefold()
    return unicodedata.normalize("NFC", folded)


@dataclass(frozen=True)
class ApprovalRules:
    """How posts are approved (``[board]`` of config.toml).

    ``four_eyes``: nobody approves a post whose text they changed last (``PostRow.text_by``).
    ``steps``: the roles whose approvals of the current text a post needs, in order, before it
    is approved (and may go out); ``("approver",)`` is the one-step default."""

    four_eyes: bool = True
    steps: tuple[str, ...] = ("approver",)


@dataclass(frozen=True)
class WebSettings:
    """``[web]`` of config.toml: the board's app (``publisher web``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    idle: timedelta = timedelta(minutes=30)  # a session unused this long is logged out
    secure_cookies: bool = False  # Secure cookies (behind TLS); True whenever behind https
    base_url: str = ""  # the app's public address, for links in mail and the report


ZALO_PACKAGES = ("basic", "advanced", "premium")
WORDPRESS_STATS = ("none", "post-views-counter", "wp-postviews")


@dataclass(frozen=True)
class MediaSettings:
    """The ``[media]`` table: where pictures come from and how platforms that fetch them by
    address (Zalo's covers) get one.

    ``default_cover``: the picture of a message that names no cover (a file under messages/media/
    or an https:// address); its alt text from ``default_cover_alt`` or messages/media/alt.yaml.
    ``public_base_url``: where messages/media/ is published as it is (``media/bia.jpg`` →
    ``<public_base_url>/bia.jpg``). ``host``: a WordPress channel whose media library publishes
    the files (uploaded once, looked up before any upload)."""

    default_cover: str = ""
    default_cover_alt: str | None = None
    public_base_url: str = ""
    host: str = ""


MAIL_SECURITY = ("starttls", "ssl", "none")
# The usual port of each: submission with STARTTLS, SMTP over TLS ("smtps"), plain SMTP.
MAIL_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
MAIL_TIMEOUT = timedelta(seconds=30)  # a reply the server does not give in time: a failure
SMTP_URL_ENV = "PUBLISHER_SMTP_URL"


@dataclass(frozen=True)
class MailSettings:
    """How publisher sends mail (``[mail]`` of config.toml; ``PUBLISHER_SMTP_URL`` overrides
    the connection: ``host``, ``port``, ``security``, ``username`` and the password).

    ``security``: ``starttls`` (upgrade a plain connection, port 587), ``ssl`` (TLS from the
    first byte, port 465) or ``none`` (loopback hosts only). ``password_env``: the environment
    variable (or .env entry) holding the password, never the password. ``ca_file``: a PEM bundle
    of the CAs that sign the server's certificate, instead of the system's (a private CA).
    ``origin``: where the connection settings came from, for messages."""

    host: str
    from_address: str  # "" only when PUBLISHER_SMTP_URL alone configures mail, without ?from=
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    from_name: str = ""
    reply_to: str = ""
    timeout: timedelta = MAIL_TIMEOUT
    ca_file: Path | None = None
    origin: str = "[mail]"

    @property
    def endpoint(self) -> str:
        """``host:port (security)``, for messages (no credentials in it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port} ({self.security})"


IMAP_SECURITY = ("ssl", "starttls", "none")
# The usual port of each: IMAP over TLS ("imaps"), IMAP upgraded by STARTTLS, plain IMAP.
IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
IMAP_URL_ENV = "PUBLISHER_IMAP_URL"
IMAP_POLL = timedelta(minutes=5)


@dataclass(frozen=True)
class ImapSettings:
    """Where publisher reads the desks' replies (``[imap]`` of config.toml;
    ``PUBLISHER_IMAP_URL`` overrides the connection: host, port, security, login, mailbox).

    ``security``: ``ssl`` (TLS from the first byte, port 993), ``starttls`` (port 143) or
    ``none`` (loopback hosts only). ``password_env``: the environment variable holding the
    password, never the password. ``mailbox``: the folder replies arrive in; ``processed``: the
    folder a handled reply is moved to ("": it stays, marked seen). ``poll_every``: how often
    the daemon reads the mailbox (campaign time: a rehearsal reads it as often, scaled).
    ``origin``: where the connection settings came from, for messages."""

    host: str
    username: str
    port: int = 993
    security: str = "ssl"
    password_env: str = ""
    mailbox: str = "INBOX"
    processed: str = ""
    poll_every: timedelta = IMAP_POLL
    timeout: timedelta = MAIL_TIMEOUT
    ca_file: Path | None = None
    origin: str = "[imap]"

    @property
    def endpoint(self) -> str:
        """``host:port (security)``, for messages (no credentials in it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port} ({self.security})"


# The kinds of alert (``[alerts] to``), by their stable ids; each is explained in the README.
ALERT_KINDS = (
    "post_failed",
    "post_needs_review",
    "post_missed",
    "channel_blocked",
    "token_expiring",
    "daemon_stale",
    "handoff_unconfirmed",
    "digest",
)


@dataclass(frozen=True)
class AlertSettings:
    """``[alerts]`` of config.toml: who is told of what, and when.

    ``to``: each alert kind → the addresses of the members who get it (members named, or every
    member of a role named, each with an email); a kind not listed goes to nobody.
    ``remind_every``: a cause still open this long after its last mail is mailed again.
    ``digest_at``: the local time of the daily digest (posts due in the next 24 h not yet
    approved). ``stale_after``: a daemon heartbeat older than this is a stopped daemon
    (``publisher watch``). ``token_warning``: how long before a token dies it is announced."""

    enabled: bool = False
    to: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    remind_every: timedelta = timedelta(hours=6)
    digest_at: time = time(7, 0)
    stale_after: timedelta = timedelta(minutes=10)
    token_warning: timedelta = timedelta(days=14)

    def recipients(self, kind: str) -> tuple[str, ...]:
        return self.to.get(kind, ()) if self.enabled else ()


@dataclass(frozen=True)
class InsightsSettings:
    """``[insights]`` of config.toml: the reading of published posts' figures (reach).

    ``enabled``: whether the daemon reads them. ``every``: how often each post is read (its
    last reading at least this long ago). ``after``: how long after the campaign's end posts
    are still read (the figures of the last days grow for a while)."""

    enabled: bool = True
    every: timedelta = timedelta(days=1)
    after: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class DaemonSettings:
    """The ``[daemon]`` table: how the publishing daemon paces and retries."""

    grace: timedelta = timedelta(hours=2)  # a post due while the daemon was down: later → missed
    tick: timedelta = timedelta(seconds=5)  # the safety-net wake-up
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 8
    max_lateness: timedelta = timedelta(hours=6)
    rehearsal_grace: timedelta = timedelta(seconds=20)  # real lag a rehearsal tolerates


@dataclass(frozen=True)
class ReportSettings:
    """The report's administrative layout: issuer, number, place, recipients and signer.

    Defaults follow the 2024 plan; names change (ministries, merged provinces), so the shipped
    config spells every one out in ``[report]`` and the report code holds none of them.
    """

    authority: str = "UBND TỈNH BẮC GIANG"  # the header's first line: the governing body
    issuer: str = "SỞ TƯ PHÁP"  # the header's second line, bold: the issuing body
    symbol: str = "BC-STP"  # the number line reads "Số: <number>/<symbol>"
    number: str = ""  # left blank for the clerk, who numbers the signed report
    place: str = "Bắc Giang"  # "<place>, ngày … tháng … năm …"
    # The plans the report executes, cited in its opening ("Thực hiện …, … báo cáo như sau:").
    plans: tuple[str, ...] = (
        "Kế hoạch số 26/KH-UBND ngày 11/4/2024 của UBND tỉnh về tổ chức Tháng hành động vì "
        "trẻ em năm 2024",
        "Kế hoạch số …/KH-STP ngày …/4/2024 của Sở Tư pháp triển khai Tháng hành động vì trẻ "
        "em năm 2024",
    )
    proposals: tuple[str, ...] = ()  # section IV; empty: a marked line for the drafter
    recipients: tuple[str, ...] = ("Sở LĐ-TB&XH", "Lãnh đạo Sở", "Lưu: VT, PB&TDTHPL")
    signature: tuple[str, ...] = ("KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC")
    signer: str = "Lê Anh Tuấn"


@dataclass(frozen=True)
class Config:
    """The whole config.toml, validated (``parse``)."""

    path: Path
    campaign: Campaign
    channels: Mapping[str, Channel]
    kinds: Mapping[str, KindRules]
    key_dates: Mapping[str, KeyDate]
    database_url: str
    messages_dir: Path
    templates_dir: Path
    env_file: Path | None
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    board: Mapping[str, Member] = field(default_factory=dict)  # member_key(name/alias) → member
    approval: ApprovalRules = field(default_factory=ApprovalRules)
    web: WebSettings = field(default_factory=WebSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    service_accounts: tuple[str, ...] = ()  # OS users that may act as any member (--as)
    report: ReportSettings = field(default_factory=ReportSettings)
    mail: MailSettings | None = None  # no [mail] table (PUBLISHER_SMTP_URL may still set one)
    imap: ImapSettings | None = None  # no [imap] table (PUBLISHER_IMAP_URL may still set one)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    insights: InsightsSettings = field(default_factory=InsightsSettings)
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return self.campaign.timezone

    def repeats(self, channel: str, kind: str) -> int:
        """How many times one message of ``kind`` goes out on ``channel`` in the window."""
        return self.channels[channel].repeats.get(kind, self.kinds[kind].repeats)

    def key_date_on(self, day: date) -> KeyDate | None:
        return next((k for k in self.key_dates.values() if k.date == day), None)


def resolve_database_url(url: str, base: Path) -> str:
    """Make a relative SQLite file path relative to the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix) :]
        if rest and not rest.startswith(":memory:"):
            return prefix + str((base / rest).resolve())
    return url
