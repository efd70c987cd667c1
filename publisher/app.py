"""The composition root: channel adapters and the dispatcher, built from the config.

Every face of publisher (the command line, the daemon, the benchmarks and, next, the web app)
assembles the pipeline here, so the layers below never need to know of each other: the channels
know no database, the dispatcher knows no editorial rules, the sandbox is only wired in here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from publisher.channels.base import ChannelError
from publisher.errors import InputError

if TYPE_CHECKING:
    from publisher.alerts.watch import Round
    from publisher.channels.base import Adapter, CheckResult, MediaHost
    from publisher.channels.imap import ImapReader, Reply
    from publisher.channels.smtp import Mailer
    from publisher.clock import Clock
    from publisher.config import Channel, Config, ImapSettings, MailSettings
    from publisher.config.env import Secrets
    from publisher.dispatch.dispatcher import Dispatcher
    from publisher.dispatch.replies import Handler, Poller
    from publisher.insights.collect import Collector
    from publisher.sandbox.client import Held
    from publisher.store.db import Database


def build_adapter(
    config: Config,
    channel: Channel,
    values: Mapping[str, str],
    db: Database,
    secrets: Secrets | None = None,
    host: MediaHost | None = None,
) -> Adapter:
    """One channel's adapter with its secrets; a Zalo adapter keeps its rotating tokens in
    ``db`` (encrypted), and gets public addresses for picture files from ``[media] host`` (a
    WordPress channel of ``config``, with its own secrets from ``secrets``; or ``host``, that
    channel's adapter's library). ValueError for a secret of the wrong shape (the adapter says
    which)."""
    from publisher.channels import build
    from publisher.store.tokens import DatabaseTokenStore, token_keys

    if channel.adapter == "email":
        return email_adapter(config, channel, db)
    if channel.adapter != "zalo":
        return build(channel, values)
    tokens = DatabaseTokenStore(db, key_material=values["app_secret"], keys=token_keys(config))
    host = host or media_host(config, secrets)
    return build(channel, values, tokens=tokens, media_host=host)


def email_adapter(config: Config, channel: Channel, db: Database | None) -> Adapter:
    """An email channel's adapter: ``[mail]``'s Mailer (None without one: its check says what
    to set up, and ``build_adapters`` refuses to run), and the signed confirmation link when
    the web app has a public address (``[web] base_url``) and the queue an audit key."""
    from publisher.channels.email_desk import ConfirmLinks, EmailAdapter
    from publisher.signing import link_key

    key = db.audit_key if db is not None else None
    base = config.web.base_url
    links = ConfirmLinks(base, link_key(key)) if key and base else None
    return EmailAdapter(channel, mailer=build_mailer(config), links=links)


def confirm_link_key(db: Database) -> bytes | None:
    """The key of the signed confirmation links (the audit key's), or None without one."""
    from publisher.signing import link_key

    return link_key(db.audit_key) if db.audit_key else None


def media_host(config: Config, secrets: Secrets | None) -> MediaHost | None:
    """The media library of ``[media] host`` (a WordPress channel), which publishes picture
    files for platforms that fetch them by address (Zalo); None if there is none, or its
    secrets are missing (a file cover then fails with a reason saying so)."""
    from publisher.channels.base import new_client
    from publisher.channels.wordpress_media import WordPressMedia

    host = config.channels.get(config.media.host) if config.media.host else None
    if host is None or secrets is None or secrets.problems.get(host.id):
        return None
    return WordPressMedia.for_channel(host, new_client(), secrets.for_channel(host.id))


def cover_check(config: Config, channel: Channel, secrets: Secrets | None) -> CheckResult | None:
    """Whether Zalo can fetch ``channel``'s default cover (``channels check``): its address, the
    file's under ``[media] public_base_url``, or its attachment on ``[media] host`` if it is
    there yet — fetched once (HEAD). None if the channel has no default cover."""
    from publisher.channels.base import CheckResult, Media, fetchable
    from publisher.channels.wordpress_media import WordPressMedia
    from publisher.errors import PublisherError
    from publisher.media import LIMITS, prepare
    from publisher.render import Renderer

    limit = LIMITS["zalo"]
    try:
        picture = Renderer(config).default_cover(channel)
        if picture is None:
            return None
        p = prepare(picture, "cover", config.messages_dir, limit, config.media.public_base_url)
    except PublisherError as exc:
        return CheckResult(False, f"default cover: {exc.line()}")
    url = p.url
    if not url:
        host = media_host(config, secrets)
        if not isinstance(host, WordPressMedia):
            return CheckResult(
                False,
                f"default cover {picture.src} has no public address: set [media] host or "
                "[media] public_base_url",
            )
        media = Media("cover", p.alt, p.mime, p.name, p.sha256, p.data, "", p.width, p.height)
        try:
            found = host.find(media)
        except ChannelError as exc:
            return CheckResult(False, f"default cover: {config.media.host}: {exc.reason}")
        if found is None:
            return CheckResult(
                True,
                f"default cover {picture.src}: not on {config.media.host} yet, uploaded there "
                "with the first Zalo post",
            )
        url = found.url
    result = fetchable(url, max_bytes=limit.max_bytes)
    return CheckResult(result.ok, f"default cover: {result.detail}", result.reachable)


SANDBOX_MAIL = "the sandbox"  # the origin of mail settings use_sandbox points at the sandbox


def build_mailer(config: Config, environ: Mapping[str, str] | None = None) -> Mailer | None:
    """The mail transport: ``[mail]``, its connection overridden by ``PUBLISHER_SMTP_URL``, with
    the password from the environment or the .env file; None if neither configures mail. A
    ConfigError (one line, never quoting a password) for a bad URL or a missing password.
    Under the sandbox (``use_sandbox``), the sandbox's SMTP server with its credentials, and
    nothing else."""
    from publisher.channels.smtp import Mailer
    from publisher.config.env import mail_access

    if config.mail is not None and config.mail.origin == SANDBOX_MAIL:
        from publisher.sandbox import credentials

        return Mailer(config.mail, credentials.MAIL_PASSWORD)
    access = mail_access(config, environ)
    return None if access is None else Mailer(access.settings, access.password)


def build_adapters(config: Config, secrets: Secrets, db: Database) -> dict[str, Adapter]:
    """Every enabled channel's adapter; one line naming the first missing or malformed secret."""
    missing = [f"{cid}: {p}" for cid, ps in secrets.problems.items() for p in ps]
    if missing:
        raise InputError(
            "secrets", missing[0], f"{len(missing)} missing; see 'publisher channels check'"
        )
    no_mail = [c for c in config.channels.values() if c.enabled and c.adapter == "email"]
    if no_mail and build_mailer(config) is None:
        from publisher.errors import ConfigError
        from publisher.i18n import _

        raise ConfigError(
            str(config.path),
            f"channels.{no_mail[0].id}",
            _("is an email channel, and no mail server is configured to send through"),
            _("add a [mail] table to config.toml (README: Mail) or set PUBLISHER_SMTP_URL"),
        )
    adapters: dict[str, Adapter] = {}
    # Zalo last: it shares the portal adapter's media library (one memo, one lock per file)
    for cid, ch in sorted(config.channels.items(), key=lambda kv: kv[1].adapter == "zalo"):
        if not ch.enabled:
            continue
        try:
            host = getattr(adapters.get(config.media.host), "media", None)
            adapters[cid] = build_adapter(config, ch, secrets.for_channel(cid), db, secrets, host)
        except ValueError as exc:  # a secret of the wrong shape, e.g. a webhook secret
            raise InputError(
                f"secrets: {cid}", str(exc), "see 'publisher channels check'"
            ) from None
    return adapters


def use_sandbox(
    config: Config,
    url: str,
    smtp: tuple[str, int] | None = None,
    environ: Mapping[str, str] | None = None,
    imap: tuple[str, int] | None = None,
) -> tuple[Config, Secrets]:
    """The config with every enabled channel pointed at the sandbox at ``url``, and its secrets;
    and its mail, when mail is configured, at the sandbox's SMTP server ``smtp`` (host, port;
    asked of the sandbox when not given), so no mail reaches a real address; and the replies
    read from the sandbox's IMAP server ``imap`` (likewise) when IMAP or mail is configured."""
    from publisher.config.env import Secrets
    from publisher.sandbox import credentials

    channels = {}
    secrets = Secrets()
    for cid, ch in config.channels.items():
        if ch.enabled:
            sandbox = credentials.settings_for(ch.adapter, url, cid)
            ch = replace(ch, settings=replace(ch.settings, **sandbox))
            secrets.values[cid] = dict(credentials.SECRETS[ch.adapter])
        channels[cid] = ch
    mail = sandbox_mail(config, url, smtp, environ)
    replies = sandbox_imap(config, url, imap, environ)
    return replace(config, channels=channels, mail=mail, imap=replies), secrets


def sandbox_mail(
    config: Config,
    url: str,
    smtp: tuple[str, int] | None,
    environ: Mapping[str, str] | None = None,
) -> MailSettings | None:
    """The mail settings that send to the sandbox's SMTP server (plain SMTP on loopback, its
    login), keeping the sender, reply-to and timeout of ``[mail]`` (or ``?from=`` of
    ``PUBLISHER_SMTP_URL``); None when neither configures mail. Neither the real server's
    address nor its password is read."""
    from publisher.config import SMTP_URL_ENV
    from publisher.config.env import environment
    from publisher.config.model import MailSettings
    from publisher.config.parse import smtp_url
    from publisher.errors import ConfigError
    from publisher.sandbox import credentials

    base = config.mail
    raw = environment(config, environ).get(SMTP_URL_ENV, "").strip()
    if raw:
        try:
            base = smtp_url(raw, config.mail, config.campaign.organisation)[0]
        except ConfigError:  # not used here; without [mail] the sender is unknown, and said so
            base = base or MailSettings(host="", from_address="", origin=SMTP_URL_ENV)
    if base is None:
        return None
    host, port = smtp or sandbox_server(url, "smtp")
    return replace(
        base,
        host=host,
        port=port,
        security="none",
        username=credentials.MAIL_USER,
        password_env="",
        ca_file=None,
        origin=SANDBOX_MAIL,
    )


def sandbox_server(url: str, what: str) -> tuple[str, int]:
    """Where the sandbox at ``url`` takes mail (``GET /_sandbox/smtp``), or keeps the desk's
    replies (``what="imap"``: ``GET /_sandbox/imap``): a loopback host and its port; an
    InputError if it does not say."""
    import httpx

    from publisher.config import is_loopback

    where = f"{url.rstrip('/')}/_sandbox/{what}"
    doing = "takes mail" if what == "smtp" else "keeps the desk's replies (IMAP)"
    try:
        answer = httpx.get(where, timeout=10).raise_for_status().json()
        host, port = str(answer["host"]), int(answer["port"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            "--sandbox-url",
            f"the sandbox at {url} did not say where it {doing} ({where}: {exc})",
            "start it with 'publisher sandbox', or give --sandbox instead",
        ) from None
    if not is_loopback(host) or not 0 < port < 65536:
        raise InputError(
            "--sandbox-url", f"the sandbox at {url} {doing} at {host}:{port}, not on loopback"
        )
    return host, port


def sandbox_imap(
    config: Config,
    url: str,
    imap: tuple[str, int] | None,
    environ: Mapping[str, str] | None = None,
) -> ImapSettings | None:
    """The IMAP settings that read the sandbox desk's replies (plain IMAP on loopback, the
    sandbox's mail login, INBOX, no processed folder), keeping ``[imap]``'s poll interval and
    timeout; None when neither IMAP (``[imap]``, ``PUBLISHER_IMAP_URL``) nor mail is
    configured. Neither the real server's address nor its password is read."""
    from publisher.config import IMAP_URL_ENV, SMTP_URL_ENV
    from publisher.config.env import environment
    from publisher.config.model import ImapSettings
    from publisher.sandbox import credentials

    env = environment(config, environ)
    configured = config.imap is not None or config.mail is not None
    if not configured and not any(env.get(v, "").strip() for v in (IMAP_URL_ENV, SMTP_URL_ENV)):
        return None
    host, port = imap or sandbox_server(url, "imap")
    base = config.imap or ImapSettings(host="", username="")
    return replace(
        base,
        host=host,
        port=port,
        security="none",
        username=credentials.MAIL_USER,
        password_env="",
        mailbox="INBOX",
        processed="",
        ca_file=None,
        origin=SANDBOX_MAIL,
    )


def build_imap_reader(
    config: Config, environ: Mapping[str, str] | None = None
) -> ImapReader | None:
    """The reader of the desks' replies: ``[imap]``, its connection overridden by
    ``PUBLISHER_IMAP_URL``, with the password from the environment or the .env file; None if
    neither configures IMAP. Links into the web app (``[web] base_url``: the signed confirm
    links the desk was sent) are never taken for a reply's URL. A ConfigError (one line, never
    quoting a password) for a bad URL or a missing password. Under the sandbox
    (``use_sandbox``), the sandbox's IMAP server with its credentials, and nothing else."""
    from publisher.channels.imap import ImapReader
    from publisher.config.env import imap_access

    exclude = (config.web.base_url.rstrip("/") + "/",) if config.web.base_url else ()
    if config.imap is not None and config.imap.origin == SANDBOX_MAIL:
        from publisher.sandbox import credentials

        return ImapReader(config.imap, credentials.MAIL_PASSWORD, exclude=exclude)
    access = imap_access(config, environ)
    if access is None:
        return None
    return ImapReader(access.settings, access.password, exclude=exclude)


def reply_handler(db: Database, config: Config, clock: Clock) -> Handler:
    """The handler of a desk's reply: the post its thread answers
    (``editorial.confirm.post_for_message_id``) confirmed with the first address in the reply
    the channel accepts (``confirm(..., via="reply")``). A reply is ignored (marked processed,
    the reason logged) when it answers no post of ours, comes from outside the desk's domains,
    carries no acceptable address, or its post is not handed off; a reply to a post still being
    sent (the desk answered a first copy before the hand-off was recorded) and a database
    error leave it unseen for the next poll."""
    from sqlalchemy import select

    from publisher.config.model import EmailSettings
    from publisher.dispatch.replies import Handled
    from publisher.editorial.confirm import confirm, post_for_message_id
    from publisher.states import PENDING
    from publisher.store.models import PostRow

    def handle(reply: Reply) -> Handled:
        with db.write() as s:
            post_id = next(
                (p for mid in reply.thread if (p := post_for_message_id(s, mid)) is not None),
                None,
            )
            if post_id is None:
                return Handled.ignored(f"the reply {reply.message_id} answers no post of ours")
            channel, state = s.execute(
                select(PostRow.channel, PostRow.state).where(PostRow.id == post_id)
            ).one()
            if state in PENDING:  # the desk answered before the hand-off was recorded
                # (a daemon killed mid-send resends with the same Message-ID): read it again
                return Handled.later(f"post {post_id} is {state}, not handed off yet")
            ch = config.channels.get(channel)
            desk = ch.settings if ch is not None else None
            if not isinstance(desk, EmailSettings):
                return Handled.ignored(f"post {post_id} ({channel}) is not mailed to a desk")
            domains = {a.rpartition("@")[2].lower() for a in (*desk.to, *desk.cc)}
            if reply.sender.rpartition("@")[2].lower() not in domains:
                return Handled.ignored(
                    f"post {post_id}: the reply comes from {reply.sender}, not from the desk"
                    f" ({', '.join(sorted(domains))})"
                )
            why = "it carries no address"
            for url in reply.urls:
                try:
                    done = confirm(
                        s, config, post_id, url, by=reply.sender, via="reply", now=clock.now()
                    )
                except InputError as exc:
                    why = exc.line()
                    continue
                return Handled.confirmed(f"post {post_id} published at {done.url}")
            return Handled.ignored(f"post {post_id}: {why}")

    return handle


def reply_poller(
    config: Config, handle: Handler | None = None, environ: Mapping[str, str] | None = None
) -> Poller | None:
    """The daemon's poller of the desks' replies, each handed to ``handle`` (default
    ``replies.log_only``, which leaves them unseen until the email channel's confirmation is
    wired in here); None when IMAP is not configured."""
    from publisher.dispatch.replies import Poller, log_only

    reader = build_imap_reader(config, environ)
    return None if reader is None else Poller(reader, handle or log_only)


def tell_sandbox_speed(url: str, speed: float) -> None:
    """Tell the sandbox at ``url`` how fast a rehearsal plays campaign time, so its desk answers
    an article after its delay in campaign time (``POST /_sandbox/desk``); a sandbox that does
    not take it is logged, not fatal (its desk then answers in real time)."""
    import logging

    import httpx

    try:
        where = f"{url.rstrip('/')}/_sandbox/desk"
        httpx.post(where, json={"speed": speed}, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        logging.getLogger(__name__).warning(
            "the sandbox at %s did not take the rehearsal's speed: %s", url, exc
        )


def make_dispatcher(
    db: Database,
    config: Config,
    adapters: Mapping[str, Adapter],
    clock: Clock,
    *,
    worker: str,
    seed: int | None = None,
) -> Dispatcher:
    """A dispatcher with the config's rules, checking every post against today's render of its
    message before it is sent. On a compressed clock (a rehearsal) the windows are never shorter
    than ``rehearsal_grace`` / 30 s of real time, so real overheads (an fsync, a slow answer)
    multiplied by the speed cannot turn into missed posts or stolen leases."""
    import random

    from publisher.dispatch.dispatcher import Dispatcher
    from publisher.dispatch.retry import RetryPolicy
    from publisher.dispatch.settings import DispatchSettings
    from publisher.editorial.load import RenderCheck

    d = config.daemon
    floor = clock.virtual(d.rehearsal_grace)
    return Dispatcher(
        db,
        adapters,
        clock,
        worker=worker,
        policy=RetryPolicy(max_attempts=d.max_attempts, max_lateness=max(d.max_lateness, floor)),
        settings=DispatchSettings(
            grace=max(d.grace, floor),
            lease=max(d.lease, clock.virtual(timedelta(seconds=30))),
            concurrency={cid: ch.concurrency for cid, ch in config.channels.items()},
            tick=d.tick,
        ),
        rng=random.Random(seed),  # noqa: S311 - jitter
        render_check=RenderCheck(config),
    )


def make_collector(
    db: Database,
    config: Config,
    adapters: Mapping[str, Adapter],
    clock: Clock,
    *,
    dispatcher: Dispatcher | None = None,
    record_no_figures: bool = True,
    budget: timedelta | None = None,
) -> Collector:
    """The collector of published posts' figures, reading through ``adapters``: pass the
    dispatcher's own (and the ``dispatcher``, whose stop ends a round) so tokens and rate-limit
    pacing are shared with publishing. ``record_no_figures`` false: a platform's "no figures"
    is not recorded (a sandbox started afresh, which holds none of the posts). ``budget``: the
    campaign time a round may spend (the daemon's: ``insights_budget``; None: no limit)."""
    from publisher.insights.collect import Collector

    stopping = dispatcher.stopping if dispatcher is not None else None
    return Collector(
        db,
        config,
        adapters,
        clock,
        stopping=stopping,
        record_no_figures=record_no_figures,
        budget=budget,
    )


INSIGHTS_CHECK = timedelta(hours=1)  # campaign time between two looks for posts due a reading
INSIGHTS_FLOOR = timedelta(seconds=1)  # real time between them, at least (a rehearsal)
INSIGHTS_SHARE = 0.1  # of the time between two rounds, the most one round may spend reading


def insights_every(config: Config, clock: Clock) -> float:
    """Real seconds between the daemon's rounds of reading figures: each looks for the posts
    due (each read every ``[insights] every``), hourly in campaign time or as often as
    ``every`` if shorter, never more often than once a real second."""
    from publisher.clock import real_floor

    campaign = min(INSIGHTS_CHECK, config.insights.every)
    return clock.real_seconds(real_floor(clock, campaign, INSIGHTS_FLOOR))


def insights_budget(config: Config, clock: Clock) -> timedelta:
    """The campaign time one of the daemon's rounds may spend reading: a tenth of the time
    between two rounds (6 campaign minutes of an hourly round, time for thousands of readings;
    in a rehearsal, whose rounds are a real second apart, a tenth of a real second), so
    reading never crowds out publishing; the posts a round does not reach wait for the next."""
    return clock.virtual(timedelta(seconds=insights_every(config, clock) * INSIGHTS_SHARE))


def alert_round(
    config: Config,
    db: Database,
    clock: Clock | None = None,
    secrets: Secrets | None = None,
    environ: Mapping[str, str] | None = None,
) -> Round | None:
    """One round of alerting on ``db`` (evaluate the causes, flush the outbox), causes on
    ``clock`` (default real time); None when ``[alerts]`` is off or no mail is configured
    (then nothing is queued: ``check`` and ``channels check`` say so). Every secret the
    process knows — the channels', the mail password, ``PUBLISHER_SMTP_URL`` — is blanked in
    what is queued."""
    from publisher.alerts.watch import Round, redactor
    from publisher.clock import SYSTEM_CLOCK

    if not config.alerts.enabled:
        return None
    mailer = build_mailer(config, environ)
    if mailer is None:
        return None
    return Round(
        db,
        config,
        mailer,
        clock=clock or SYSTEM_CLOCK,
        redact=redactor(known_secrets(config, secrets, environ)),
    )


def known_secrets(
    config: Config, secrets: Secrets | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Every secret value this process may hold: the channels' (``secrets``), the mail
    password and the whole ``PUBLISHER_SMTP_URL``; the ones that cannot be read are left out."""
    from publisher.config import SMTP_URL_ENV
    from publisher.config.env import environment, mail_access
    from publisher.errors import ConfigError

    values = list(secrets.all_values()) if secrets else []
    env = environment(config, environ)
    if env.get(SMTP_URL_ENV):
        values.append(env[SMTP_URL_ENV])
    try:
        access = mail_access(config, environ)
    except ConfigError:
        access = None
    if access is not None and access.password:
        values.append(access.password)
    return values


BIRTHS_KEY = "rehearsal.births"  # meta: the sandbox's seed and its items' births (JSON)


def keep_births(db: Database, url: str) -> bool:
    """Keep in a rehearsal's database what the sandbox at ``url`` says of its items' births
    (``GET /_sandbox/births``) and its seed, so a sandbox started later for this database is
    restored exactly (``sandbox_holdings``); births kept before stay unless told anew. False
    (logged by the client) when the sandbox did not tell them."""
    import json

    from publisher.sandbox.client import sandbox_births
    from publisher.store.db import locked_row
    from publisher.store.models import MetaRow

    told = sandbox_births(url)
    new = told.get("births") if told is not None else None
    if told is None or not isinstance(new, dict):
        return False
    with db.write() as s:
        # Daemons sharing a rehearsal finish together: the row is locked, so neither fails on
        # the other's insert (PostgreSQL) nor drops the births the other merged in.
        row = locked_row(s, MetaRow, {"key": BIRTHS_KEY, "value": "{}"})
        try:
            kept = json.loads(row.value)
        except ValueError:
            kept = {}
        births = {**(kept.get("births") or {}), **new}
        row.value = json.dumps({"seed": told.get("seed", 0), "births": births}, sort_keys=True)
    return True


def sandbox_seed(db: Database) -> int:
    """The seed of the sandbox a rehearsal published to, as kept with its births (0, the
    sandbox's default, when none was kept)."""
    import json

    from publisher.store.models import MetaRow

    with db.read() as s:
        row = s.get(MetaRow, BIRTHS_KEY)
    try:
        seed = json.loads(row.value).get("seed", 0) if row is not None else 0
    except ValueError:
        return 0
    return seed if isinstance(seed, int) else 0


def sandbox_holdings(db: Database, config: Config) -> list[Held]:
    """What the sandbox a rehearsal published to still holds: each published post of a
    channel the sandbox imitates (Facebook, Zalo, WordPress, webhook), with its remote id,
    address, title and text, born where the rehearsal's sandbox said it was (kept by
    ``keep_births``), else when it was sent (``sent_at``: never after its true birth, so its
    figures are never below those the rehearsal read), else when it was published."""
    import json

    from sqlalchemy import select

    from publisher.sandbox.client import PLATFORMS, Held
    from publisher.states import State
    from publisher.store.models import MetaRow, PostRow

    with db.read() as s:
        row = s.get(MetaRow, BIRTHS_KEY)
        posts = s.scalars(
            select(PostRow)
            .where(PostRow.state == State.PUBLISHED, PostRow.remote_id.is_not(None))
            .order_by(PostRow.published_at, PostRow.id)
        ).all()
    try:
        births = json.loads(row.value).get("births") or {} if row is not None else {}
    except ValueError:
        births = {}
    held = []
    for p in posts:
        channel = config.channels.get(p.channel)
        platform = channel.adapter if channel is not None else ""
        born = p.sent_at or p.published_at
        if platform not in PLATFORMS or not p.remote_id or born is None:
            continue
        if platform == "wordpress" and not p.remote_id.isdigit():
            continue
        told = births.get(f"{platform}:{p.remote_id}")
        if isinstance(told, str):
            with contextlib.suppress(ValueError):
                born = datetime.fromisoformat(told)
        title = str((p.fields or {}).get("title") or "")
        held.append(
            Held(
                platform,
                p.channel,
                p.remote_id,
                born,
                url=p.remote_url,
                title=title,
                text=p.text,
                key=p.idempotency_key,
            )
        )
    return held
