"""What the IMAP reader makes of a reply (``publisher.channels.imap.parse_reply``): headers
decoded, the reply's own text without the quoted original, and the http(s) URLs in it — from
Vietnamese bodies in quoted-printable or base64, HTML-only replies, the quoting styles of Gmail,
Outlook and Thunderbird, several URLs, none; our own confirm links left out."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from publisher.channels.imap import find_urls, html_text, own_text, parse_reply

ARTICLE_ID = "<post-12.abc@stp.example.gov.vn>"
LIVE = "https://pbgdpl.example.gov.vn/tin-tuc/quyen-tre-em-12"
CONFIRM = "https://publisher.stp.example.gov.vn/confirm/12?sig=abc"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def reply(
    body: str | None = None, *, html: str | None = None, cte: str = "quoted-printable"
) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ban biên tập <toasoan@pbgdpl.example.gov.vn>"
    msg["To"] = "publisher@stp.example.gov.vn"
    msg["Subject"] = nfc("Re: Tháng hành động vì trẻ em: “Quyền được bảo vệ”")
    msg["Message-ID"] = "<desk-1@pbgdpl.example.gov.vn>"
    msg["In-Reply-To"] = ARTICLE_ID
    msg["References"] = "<thread-start@stp.example.gov.vn> " + ARTICLE_ID
    msg["Date"] = "Mon, 03 Jun 2024 10:15:00 +0700"
    if body is not None:
        msg.set_content(nfc(body), cte=cte)
        if html is not None:
            msg.add_alternative(nfc(html), subtype="html", cte=cte)
    elif html is not None:
        msg.set_content(nfc(html), subtype="html", cte=cte)
    return msg.as_bytes(policy=SMTP)


@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_a_vietnamese_reply_gives_its_headers_text_and_url(cte: str) -> None:
    body = f"Kính gửi Sở Tư pháp,\n\nBan biên tập đã đăng bài lúc 10:15 hôm nay: {LIVE}.\n\nTrân trọng,\n"
    r = parse_reply(7, reply(body, cte=cte))
    assert r.uid == 7
    assert r.message_id == "<desk-1@pbgdpl.example.gov.vn>"
    assert r.in_reply_to == ARTICLE_ID
    assert r.references == ("<thread-start@stp.example.gov.vn>", ARTICLE_ID)
    assert r.thread == (ARTICLE_ID, "<thread-start@stp.example.gov.vn>")
    assert r.sender == "toasoan@pbgdpl.example.gov.vn"
    assert r.subject == nfc("Re: Tháng hành động vì trẻ em: “Quyền được bảo vệ”")
    assert r.urls == (LIVE,)  # the full stop after it is not part of it
    assert nfc("Ban biên tập đã đăng bài") in r.text
    assert r.date == datetime(2024, 6, 3, 3, 15, tzinfo=UTC)


def test_quoted_lines_and_the_quoted_original_are_left_out() -> None:
    body = (
        f"Đã đăng: {LIVE}\n\n"
        "Vào Th 2, 3 thg 6, 2024 vào lúc 08:00 Sở Tư pháp <publisher@stp.example.gov.vn> đã viết:\n"
        "> Kính gửi Ban biên tập, xin đăng bài sau.\n"
        f"> Xác nhận: {CONFIRM}\n"
        "> Ảnh: https://stp.example.gov.vn/media/bia.jpg\n"
    )
    r = parse_reply(1, reply(body))
    assert r.urls == (LIVE,)
    assert "Kính gửi Ban biên tập" not in r.text


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "-------- Thư gốc --------",
        "On Mon, Jun 3, 2024 at 8:00 AM Sở Tư pháp <publisher@stp.example.gov.vn> wrote:",
        "From: Sở Tư pháp <publisher@stp.example.gov.vn>",
        "Từ: Sở Tư pháp <publisher@stp.example.gov.vn>",
        "________________________________",
    ],
)
def test_an_unprefixed_original_below_a_client_separator_is_left_out(separator: str) -> None:
    body = f"Đã đăng tại {LIVE}\n\n{separator}\nXin đăng bài.\nhttps://stp.example.gov.vn/khac\n"
    assert parse_reply(1, reply(body)).urls == (LIVE,)


def test_several_urls_come_in_order_each_once() -> None:
    second = "https://pbgdpl.example.gov.vn/tin-tuc/ban-in-12?print=1&lang=vi"
    body = f"Bài đã đăng: {LIVE}\nBản in ({second}), và lại {LIVE}!\n"
    assert parse_reply(1, reply(body)).urls == (LIVE, second)


def test_a_reply_without_a_url_has_none() -> None:
    r = parse_reply(1, reply("Đã nhận bài, chúng tôi sẽ đăng trong tuần.\n"))
    assert r.urls == () and nfc("Đã nhận bài") in r.text


def test_our_own_confirm_links_are_never_taken_for_the_live_url() -> None:
    body = f"Tôi đã bấm {CONFIRM} rồi, bài ở {LIVE}\n"
    r = parse_reply(1, reply(body), exclude=("https://publisher.stp.example.gov.vn/",))
    assert r.urls == (LIVE,)


def test_an_html_only_reply_gives_its_links_and_skips_its_quote() -> None:
    html = (
        "<html><body><div>Kính gửi Sở,</div>"
        f'<div>Bài đã đăng <a href="{LIVE}">tại đây</a>.</div>'
        '<div class="gmail_quote"><div>Vào ... đã viết:</div><blockquote>'
        f'<a href="{CONFIRM}">Xác nhận</a></blockquote></div>'
        "<script>var u='https://evil.example/';</script></body></html>"
    )
    r = parse_reply(1, reply(html=html, cte="base64"))
    assert r.urls == (LIVE,)
    assert "Kính gửi Sở," in r.text and "Xác nhận" not in r.text


def test_an_outlook_html_reply_stops_at_its_original() -> None:
    html = (
        f"<p>Đã đăng: {LIVE}</p><hr>"
        '<div id="divRplyFwdMsg"><b>From:</b> Sở Tư pháp</div>'
        f'<div><a href="{CONFIRM}">Xác nhận</a></div>'
    )
    assert parse_reply(1, reply(html=html)).urls == (LIVE,)


def test_the_plain_alternative_is_preferred_to_the_html_one() -> None:
    r = parse_reply(1, reply(f"Đã đăng {LIVE}\n", html='<a href="https://other.example/x">x</a>'))
    assert r.urls == (LIVE,)


def test_a_message_without_headers_or_body_still_parses() -> None:
    r = parse_reply(3, b"\r\n")
    assert (r.uid, r.message_id, r.in_reply_to, r.references, r.urls) == (3, "", "", (), ())
    assert r.date is None and r.thread == ()


def test_url_edges() -> None:
    assert find_urls("(xem https://a.example/b_(c)) và https://a.example/d,") == [
        "https://a.example/b_(c)",
        "https://a.example/d",
    ]
    assert find_urls("mailto:a@b.example ftp://x.example http:// https://ok.example") == [
        "https://ok.example"
    ]
    assert own_text("a\n> b\n  > c\nd") == "a\nd"
    text, urls = html_text("<p>x&amp;y <a href='javascript:alert(1)'>z</a></p>")
    assert text == "x&y z" and urls == []
