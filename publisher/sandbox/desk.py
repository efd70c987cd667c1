"""The portal's editorial desk, as the sandbox plays it: an article mailed to the sandbox's SMTP
server with ``X-Publisher-Post`` is "published" after a delay at a page of its own
(``/desk/<channel>/<n>``, the article's HTML), and the desk answers by mail into the sandbox's
IMAP mailbox with the live address, quoting the article below as a real desk's mail client does.

The reply: From the desk (the article's To), To the article's Reply-To (else its From),
``Subject: Re: …``, ``In-Reply-To`` and ``References`` naming the article's Message-ID, a
Vietnamese text (quoted-printable UTF-8) with the URL. A second article with a Message-ID the desk
already has (a resend) is not published again.

The delay is campaign time (``delay``, default DESK_DELAY), played ``speed`` times faster (a
rehearsal sets its speed through ``POST /_sandbox/desk``): in a two-minute rehearsal of June
half an hour at the desk is a twelfth of a real second. A delay of 0 publishes before the SMTP
server answers the article (tests).

Faults (target ``desk``, drawn once an article): ``silent`` — the desk never publishes it nor
replies; ``no-url`` — it replies that it received the article, with no address, and publishes
nothing. Each outcome is recorded (``platform: "mail"``, kind ``desk-reply``, ``desk-no-url``
or ``desk-silent``).
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta, timezone
from email.message import EmailMessage
from html import escape
from typing import Any

from publisher.sandbox.imap import Mailbox
from publisher.sandbox.mailbox import Mail
from publisher.sandbox.routing import Context, Request, Response, Router

logger = logging.getLogger(__name__)

DESK_DELAY = timedelta(minutes=30)  # campaign time from the article's arrival to its reply
POST_HEADER = "X-Publisher-Post"
VIETNAM = timezone(timedelta(hours=7))
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:"


@dataclass
class Article:
    """An article the desk took: what it publishes and what it answers to."""

    n: int
    channel: str
    mail: Mail
    desk: str  # the desk's address (the article's To)
    answer_to: str  # the article's Reply-To, else its From
    url: str = ""  # once published
    outcome: str = ""  # "" while waiting; then desk-reply, desk-no-url or desk-silent


class Desk:
    """Takes articles (``receive``), publishes and answers them when due; serves their pages."""

    def __init__(
        self,
        ctx: Context,
        lock: AbstractContextManager[Any],
        mailbox: Mailbox,
        *,
        delay: timedelta = DESK_DELAY,
        speed: float = 1.0,
        timer: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self.ctx = ctx
        self.lock = lock
        self.mailbox = mailbox
        self.delay = delay
        self.speed = speed
        self._timer = timer or _daemon_timer
        self.articles: dict[int, Article] = {}
        self.by_message_id: dict[str, int] = {}
        self._pending: dict[int, Any] = {}  # n → its timer (cancelled by reset)

    def register(self, router: Router) -> None:
        router.add("GET", r"/desk/(?P<channel>[a-z0-9][a-z0-9_.-]*)/(?P<n>\d+)", self.page)

    @property
    def real_delay(self) -> float:
        """The delay in real seconds: campaign time over the speed."""
        return max(0.0, self.delay.total_seconds() / max(self.speed, 1e-9))

    def settings(self) -> dict[str, Any]:
        with self.lock:
            return {
                "delay": self.delay.total_seconds(),
                "speed": self.speed,
                "real_delay": self.real_delay,
                "articles": len(self.articles),
                "waiting": len(self._pending),
            }

    def receive(self, mail: Mail) -> Article | None:
        """Take ``mail`` if it is an article (it carries X-Publisher-Post); None if it is not,
        or is a resend of one the desk has (no second publication)."""
        if not mail.fields.get("x_publisher_post"):
            return None
        desk = _first_address(mail.fields.get("to")) or (mail.fields.get("recipients") or [""])[0]
        answer_to = _first_address(mail.fields.get("reply_to")) or _first_address(
            mail.fields.get("from")
        )
        with self.lock:
            if mail.message_id in self.by_message_id:
                return None
            article = Article(len(self.articles) + 1, mail.channel, mail, desk, answer_to)
            self.articles[article.n] = article
            self.by_message_id[mail.message_id] = article.n
            delay = self.real_delay
            if delay > 0:
                self._pending[article.n] = self._timer(delay, lambda: self.due(article.n))
        if delay <= 0:
            self.due(article.n)
        return article

    def due(self, n: int) -> None:
        """Publish and answer article ``n`` (as its faults say); once."""
        with self.lock:
            self._pending.pop(n, None)
            article = self.articles.get(n)
            if article is None or article.outcome:
                return
            fired = self.ctx.faults.draw("desk", "create")
            if "silent" in fired:
                article.outcome = "desk-silent"
                self._record(article, None)
                return
            if "no-url" not in fired:
                article.url = f"{self.ctx.base_url()}/desk/{article.channel}/{n}"
            article.outcome = "desk-reply" if article.url else "desk-no-url"
            reply = self.reply(article)
            self.mailbox.append(reply.as_bytes(policy=email.policy.SMTP), self.ctx.now())
            self._record(article, reply)

    def flush(self) -> None:
        """Publish every article still waiting, now."""
        with self.lock:
            waiting = list(self._pending)
        for n in waiting:
            self.due(n)

    def reset(self) -> None:
        with self.lock:
            for timer in self._pending.values():
                cancel = getattr(timer, "cancel", None)
                if cancel is not None:
                    cancel()
            self._pending.clear()
            self.articles.clear()
            self.by_message_id.clear()

    # -- the reply -----------------------------------------------------------------------------

    def reply(self, article: Article) -> EmailMessage:
        mail = article.mail
        when = self.ctx.now().astimezone(VIETNAM)
        msg = EmailMessage()
        msg["From"] = email.utils.formataddr(("Ban biên tập", article.desk))
        msg["To"] = article.answer_to
        subject = mail.subject
        msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        msg["Date"] = email.utils.format_datetime(when)
        domain = article.desk.rpartition("@")[2] or "desk.sandbox"
        msg["Message-ID"] = email.utils.make_msgid(f"desk{article.n}", domain=domain)
        msg["In-Reply-To"] = mail.message_id
        earlier = str(mail.fields.get("references") or "").split()
        msg["References"] = " ".join([*earlier, mail.message_id])
        msg.set_content(_body(article, when), cte="quoted-printable")
        return msg

    def _record(self, article: Article, reply: EmailMessage | None) -> None:
        fields: dict[str, Any] = {
            "from": article.desk,
            "recipients": [article.answer_to],
            "in_reply_to": article.mail.message_id,
            "post": article.mail.fields.get("x_publisher_post", ""),
            "url": article.url,
        }
        text = ""
        if reply is not None:
            fields["message_id"] = str(reply["Message-ID"])
            body = reply.get_body(("plain",))
            text = body.get_content() if isinstance(body, EmailMessage) else ""
        where = ("mail", article.channel, f"desk-{article.n}")
        subject = str(reply["Subject"]) if reply is not None else article.mail.subject
        self.ctx.record(where, subject, text, fields=fields, kind=article.outcome)

    # -- the article's page --------------------------------------------------------------------

    def page(self, req: Request, m: dict[str, str]) -> Response:
        article = self.articles.get(int(m["n"]))
        if article is None or not article.url or article.channel != m["channel"]:
            return Response.html("<!doctype html><title>404</title><p>Không tìm thấy bài.</p>", 404)
        html = article.mail.fields.get("html")
        body = str(html) if html else f"<pre>{escape(article.mail.text)}</pre>"
        page = (
            '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
            f"<title>{escape(article.mail.subject)}</title></head><body>"
            f"<h1>{escape(article.mail.subject)}</h1><article>{body}</article></body></html>"
        )
        answer = Response.html(page)
        answer.headers += [("Content-Security-Policy", PAGE_CSP)]
        return answer


def _body(article: Article, when: Any) -> str:
    """The desk's words (Vietnamese), then the article quoted as mail clients quote."""
    subject = article.mail.subject
    stamp = f"{when:%H:%M} ngày {when:%d/%m/%Y}"
    if article.url:
        said = [
            f"Ban biên tập đã đăng bài “{subject}” lúc {stamp}.",
            "Địa chỉ bài viết trên Cổng:",
            article.url,
        ]
    else:
        said = [
            f"Ban biên tập đã nhận bài “{subject}” lúc {stamp}.",
            "Bài đang được biên tập, chúng tôi sẽ đăng trong thời gian sớm nhất.",
        ]
    sender = str(article.mail.fields.get("from") or article.answer_to)
    sent = str(article.mail.fields.get("date") or "")
    quoted = [f"> {line}".rstrip() for line in article.mail.text.splitlines()]
    return "\n".join(
        [
            "Kính gửi Quý cơ quan,",
            "",
            *said,
            "",
            "Trân trọng,",
            "Ban biên tập",
            "",
            f"Vào {sent}, {sender} đã viết:",
            *quoted,
            "",
        ]
    )


def _first_address(header: object) -> str:
    found = email.utils.getaddresses([str(header or "")])
    return found[0][1] if found and found[0][1] else ""


def _daemon_timer(seconds: float, call: Callable[[], None]) -> threading.Timer:
    def run() -> None:
        try:
            call()
        except Exception:
            logger.exception("sandbox desk: publishing an article failed")

    timer = threading.Timer(seconds, run)
    timer.daemon = True
    timer.start()
    return timer
