"""The ``email`` adapter: a portal without a posting API, whose editorial desk publishes what
it is mailed (README: "E-mail hand-off").

Each post is one mail to the desk (``to``, ``cc``) through ``[mail]``'s Mailer: the text and
HTML alternatives the channel's templates rendered (``subject``, ``text``, ``html``), the
post's pictures attached (the approved bytes), and the article as a Word document. Headers:

- ``Message-ID: <idempotency key@sender's domain>``: the same on every send of the post, so a
  resend is one message to the desk and to its mail system;
- ``X-Publisher-Post: <idempotency key>`` and ``X-Publisher-Channel: <channel>``;
- ``X-Publisher-Confirm``: the signed confirmation link, when the web app has a public
  address (``[web] base_url``).

The server's 250 means *handed off*, not published: the receipt says so (``handed_off``), and
the post waits in ``handed_off`` until the live URL is confirmed (``editorial.confirm``): the
desk replies with it, opens the signed link, or an editor runs ``publisher queue confirm``.

Outcomes are the Mailer's. An unclear one (the connection lost after DATA: ``Ambiguous``) is
looked up first, as for every channel; but SMTP cannot be asked whether a message arrived, so
``lookup`` never finds it (it says so in the log) and the post is sent again after the
reconciliation delay — with the same Message-ID, which lets the desk's mail program (and the
sandbox) treat the two as one.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from publisher.channels.base import (
    AuthError,
    CheckResult,
    Media,
    Outgoing,
    Receipt,
)
from publisher.channels.email_docx import article_docx
from publisher.clock import SYSTEM_CLOCK, Clock
from publisher.config import Channel, EmailSettings, settings_as
from publisher.i18n import N_, _
from publisher.metrics import NoFigures, Reading
from publisher.signing import link_token
from publisher.text import nfc
from publisher.tokens import TokenStore

if TYPE_CHECKING:
    import httpx

    from publisher.channels.smtp import Mailer

logger = logging.getLogger(__name__)

POST_HEADER = "X-Publisher-Post"
CHANNEL_HEADER = "X-Publisher-Channel"
CONFIRM_HEADER = "X-Publisher-Confirm"
DOCX_TYPE = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
NO_MAIL = (
    "no mail server is configured for the email channel: add a [mail] table to config.toml "
    "(README: Mail) or set PUBLISHER_SMTP_URL"
)


@dataclass(frozen=True)
class ConfirmLinks:
    """How the mail's signed link is made: the web app's public address and the link key
    (``signing.link_key`` of the audit key)."""

    base_url: str
    key: bytes

    def url(self, post: Outgoing, expires: int) -> str:
        token = link_token(self.key, post.post_id, post.idempotency_key, expires)
        return f"{self.base_url.rstrip('/')}/confirm/{token}"


def message_id(idempotency_key: str, sender: str) -> str:
    """The stable Message-ID of a post's hand-off mail: ``<key@domain of the sender>``."""
    domain = sender.rpartition("@")[2] or "publisher.invalid"
    return f"<{idempotency_key}@{domain}>"


def key_of_message_id(value: str) -> str | None:
    """The idempotency key a hand-off mail's Message-ID carries (what a reply's In-Reply-To or
    References quotes), or None if it is not one of ours in form."""
    value = value.strip()
    if not (value.startswith("<") and value.endswith(">")) or "@" not in value:
        return None
    local = value[1:-1].rpartition("@")[0]
    return local if len(local) == 36 and local.count("-") == 4 else None


class EmailAdapter:
    """Hands each post to a portal's editorial desk by mail; never publishes by itself."""

    def __init__(
        self,
        channel: Channel,
        client: httpx.Client | None = None,
        secrets: Mapping[str, str] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        tokens: TokenStore | None = None,
        mailer: Mailer | None = None,
        links: ConfirmLinks | None = None,
    ) -> None:
        self.channel = channel
        self.settings = settings_as(channel, EmailSettings)
        self.clock = clock
        self.mailer = mailer
        self.links = links

    def publish(self, post: Outgoing) -> Receipt:
        if self.mailer is None:
            raise AuthError(NO_MAIL)
        msg = self.message(post)
        sent = self.mailer.send(msg)
        desk = ", ".join(self.settings.to)
        return Receipt(sent, None, {"to": desk}, handed_off=True)

    def lookup(self, post: Outgoing, since: datetime) -> Receipt | None:
        """SMTP cannot be asked whether a message arrived: never found, so the post is sent
        again with the same Message-ID (the desk sees one message)."""
        logger.info(
            "post %s: a mail cannot be looked up; it is sent again with the same Message-ID",
            post.post_id,
        )
        return None

    def check(self) -> CheckResult:
        if self.mailer is None:
            return CheckResult(False, NO_MAIL, reachable=False)
        result = self.mailer.check()
        desk = ", ".join(self.settings.to)
        link = (
            "the mail carries a signed confirmation link"
            if self.links
            else "no confirmation link in the mail ([web] base_url is not set): the desk "
            "confirms by replying"
        )
        return CheckResult(result.ok, f"desk {desk}: {result.detail}; {link}", result.reachable)

    def pacing(self) -> float:
        return 0.0

    def metrics(self, remote_id: str, url: str | None) -> Reading:
        """Always NoFigures: the portal's editorial desk publishes what it is mailed, and no
        desk reports readers back (Vietnamese portals found no API, platform-apis.md §4/§7)."""
        raise NoFigures(N_("the portal's editorial desk, reached by mail, reports no figures"))

    # the mail

    def message(self, post: Outgoing) -> EmailMessage:
        """The hand-off mail of ``post`` (From, Date and Reply-To are the Mailer's)."""
        assert self.mailer is not None  # noqa: S101 - publish checks it
        f = post.fields
        sender = self.mailer.settings.from_address
        msg = EmailMessage()
        msg["To"] = ", ".join(self.settings.to)
        if self.settings.cc:
            msg["Cc"] = ", ".join(self.settings.cc)
        msg["Subject"] = " ".join(nfc(f.get("subject", "")).split())
        msg["Message-ID"] = message_id(post.idempotency_key, sender)
        msg[POST_HEADER] = post.idempotency_key
        msg[CHANNEL_HEADER] = post.channel
        link = self._link(post)
        if link:
            msg[CONFIRM_HEADER] = link
        intro_text, intro_html = self._instructions(post, link)
        msg.set_content(nfc(intro_text + "\n\n" + f.get("text", "")) + "\n", cte="base64")
        msg.add_alternative(_html_page(intro_html, f.get("html", "")), subtype="html", cte="base64")
        for media in post.media:
            if media.is_file:
                _attach_picture(msg, media)
        name = f"{post.channel}-{post.post_id}.docx"
        docx = article_docx(
            f.get("subject", ""), f.get("html", ""), post.media, self.mailer.settings.from_name
        )
        msg.add_attachment(docx, maintype=DOCX_TYPE[0], subtype=DOCX_TYPE[1], filename=name)
        return msg

    def _link(self, post: Outgoing) -> str:
        if self.links is None:
            return ""
        now = self.clock.now()
        to_real = getattr(self.clock, "to_real", None)  # a rehearsal's link is opened in real time
        if callable(to_real):
            now = to_real(now)
        expires = int((now + self.settings.link_valid).timestamp())
        return self.links.url(post, expires)

    def _instructions(self, post: Outgoing, link: str) -> tuple[str, str]:
        """What the desk is asked to do, as text and as HTML (escaped)."""
        from html import escape

        s = self.settings
        lines = [
            _("To the editorial desk of {channel}:").format(channel=self.channel.name),
            _(
                "{sender} asks you to publish the article below on {site}. The article is also "
                "attached as a Word document, with its pictures."
            ).format(sender=self.mailer.settings.from_name if self.mailer else "", site=s.site),
            _(
                "Once it is published, please confirm its address: reply to this mail with the "
                "address of the published article (it begins with {site})."
            ).format(site=s.site),
        ]
        reference = _("Reference: {key}").format(key=post.idempotency_key)
        text_lines = [*lines]
        html_lines = "".join(f"<p>{escape(line)}</p>" for line in lines)
        if link:
            text_lines.append(_("Or open this link and confirm there: {link}").format(link=link))
            html_lines += (
                f"<p>{escape(_('Or confirm here:'))} "
                f'<a href="{escape(link)}">{escape(link)}</a></p>'
            )
        text = "\n".join([*text_lines, reference]) + "\n" + "-" * 60
        html_lines += f"<p><small>{escape(reference)}</small></p><hr>"
        return text, html_lines


def _html_page(intro: str, article: str) -> str:
    page = (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"></head><body>'
        f'<div class="publisher-handoff">{intro}</div>'
        f'<div class="publisher-article">{article}</div></body></html>\n'
    )
    return unicodedata.normalize("NFC", page)


def _attach_picture(msg: EmailMessage, media: Media) -> None:
    maintype, _sep, subtype = (media.mime or "application/octet-stream").partition("/")
    msg.add_attachment(media.data, maintype=maintype, subtype=subtype, filename=media.name)
