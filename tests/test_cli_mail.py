"""``publisher mail test`` and the mail row of ``publisher channels check``, end to end through
the command line against a real SMTP server on loopback (aiosmtpd, STARTTLS and AUTH)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from publisher.config import SMTP_URL_ENV, load_config
from publisher.sandbox import credentials as cred
from publisher.sandbox.server import Sandbox
from tests.fakes import one_line_error, run
from tests.mailcfg import no_mail_campaign, without_mail
from tests.mailserver import Server, free_port, mail_server

USER = "publisher@stp.example.vn"


def password() -> str:
    """A password-shaped value made at run time (no secret in the tracked files)."""
    return "cli-" + "".join(chr(c) for c in (0x52, 0x38, 0x40, 0x2F, 0x3A, 0x77)) + "-Q5"


@pytest.fixture
def secret() -> str:
    return password()


@pytest.fixture
def server(tmp_path: Path, secret: str) -> Iterator[Server]:
    with mail_server(tmp_path, user=USER, password=secret) as s:
        yield s


def add_mail(campaign: Path, server: Server, **extra: str) -> None:
    """A [mail] table for ``server`` in the campaign's config.toml instead of the shipped one
    (its CA copied beside it)."""
    (campaign / "mail-ca.pem").write_bytes(server.ca_file.read_bytes())
    lines = {
        "host": '"localhost"',
        "port": str(server.port),
        "username": f'"{USER}"',
        "secrets": '{ password = "PUBLISHER_SMTP_PASSWORD" }',
        "from_address": f'"{USER}"',
        "reply_to": '"vanphong@stp.example.vn"',
        "timeout": '"5s"',
        "ca_file": '"mail-ca.pem"',
        **extra,
    }
    table = "\n[mail]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items() if v)
    config = campaign / "config.toml"
    config.write_text(without_mail(config.read_text("utf-8")) + table, "utf-8")


def disable_channels(campaign: Path) -> None:
    """Every channel of the campaign off: ``channels check`` then checks only the mail."""
    config = campaign / "config.toml"
    text = config.read_text("utf-8").replace('\nadapter = "', '\nenabled = false\nadapter = "')
    text = text.replace('host = "portal_stp"\n', "")  # a disabled channel hosts no pictures
    config.write_text(text, "utf-8")


def test_mail_test_sends_a_vietnamese_message_and_says_so(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server)
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", secret)
    monkeypatch.setenv("PUBLISHER_LANG", "vi")
    result = run("mail", "test", "tuan.la@stp.example.vn")
    assert result.exit_code == 0, result.output
    ((envelope, got),) = server.received
    line = result.stdout.strip()
    assert line == (
        f"Đã gửi thư thử nghiệm tới tuan.la@stp.example.vn qua localhost:{server.port} "
        f"(starttls) (Message-ID {got['Message-ID']})."
    )
    assert envelope.rcpt_tos == ["tuan.la@stp.example.vn"]
    assert got["Subject"] == "publisher: thư thử nghiệm từ Sở Tư pháp tỉnh Bắc Giang"
    assert b"Subject: =?utf-8?" in bytes(envelope.original_content or b"")
    body = got.get_content()
    assert body.startswith(
        "Đây là thư thử nghiệm từ publisher, hệ thống đăng bài theo lịch của Sở Tư pháp tỉnh "
        "Bắc Giang.\n"
    )
    assert f"qua máy chủ localhost:{server.port} (starttls) tới tuan.la@stp.example.vn." in body
    assert unicodedata.is_normalized("NFC", body + str(got["Subject"]))
    assert str(got["Reply-To"]) == "vanphong@stp.example.vn"
    assert got["From"].addresses[0].display_name == "Sở Tư pháp tỉnh Bắc Giang"
    assert got["Message-ID"].endswith("@stp.example.vn>") and got["Date"]
    assert secret not in result.output


def test_mail_test_in_english(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server)
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", secret)
    result = run("mail", "test", "tuan.la@stp.example.vn", "--config", "config.toml")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Sent a test message to tuan.la@stp.example.vn through ")
    ((_, got),) = server.received
    assert got["Subject"] == "publisher: test message from Sở Tư pháp tỉnh Bắc Giang"


def test_the_url_overrides_the_mail_table(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[mail] points at a closed port with no password set; PUBLISHER_SMTP_URL (a .env entry,
    its password percent-encoded) takes over the connection, [mail] keeps the sender and CA."""
    add_mail(campaign, server, port=str(free_port()))
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    url = f"smtp://{quote(USER, safe='')}:{quote(secret, safe='')}@localhost:{server.port}"
    env = campaign / ".env"
    env.write_text(f"{SMTP_URL_ENV}={url}?starttls=1\n", "utf-8")
    env.chmod(0o600)
    result = run("mail", "test", "tuan.la@stp.example.vn")
    assert result.exit_code == 0, result.output
    ((envelope, got),) = server.received
    assert envelope.mail_from == USER and str(got["Reply-To"]) == "vanphong@stp.example.vn"


def test_the_url_alone_on_loopback(campaign: Path, tmp_path: Path) -> None:
    no_mail_campaign(campaign)
    with mail_server(tmp_path, security="none") as plain:
        url = f"smtp://127.0.0.1:{plain.port}?from=publisher%40stp.example.vn"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(SMTP_URL_ENV, url)
            result = run("mail", "test", "tuan.la@stp.example.vn")
        assert result.exit_code == 0, result.output
        ((envelope, got),) = plain.received
        assert envelope.mail_from == "publisher@stp.example.vn"
        assert got["From"].addresses[0].display_name == "Sở Tư pháp tỉnh Bắc Giang"


def test_a_refused_login_is_one_line_without_the_password(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server)
    wrong = "x" + secret[::-1]
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", wrong)
    result = run("mail", "test", "tuan.la@stp.example.vn")
    line = one_line_error(result)
    assert line.startswith(
        "error: mail: the test message to tuan.la@stp.example.vn was not sent: the mail server "
        f"refused the login of '{USER}' (535"
    )
    assert line.endswith("check [mail] username and the password in PUBLISHER_SMTP_PASSWORD")
    assert wrong not in result.output and secret not in result.output
    assert not server.received


def test_an_unreachable_server_is_one_line(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server, port=str(free_port()))
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", secret)
    line = one_line_error(run("mail", "test", "tuan.la@stp.example.vn"))
    assert "cannot reach the mail server localhost:" in line
    assert "ConnectionRefusedError" in line


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("none", "error: config.toml: no mail server is configured (add a [mail] table"),
        (
            "no-password",
            "error: config.toml: mail.secrets.password: the environment variable "
            "PUBLISHER_SMTP_PASSWORD is empty or unset (export it, or add it to .env)",
        ),
        ("bad-url", f"error: {SMTP_URL_ENV}: smtp:// without ?starttls=1 would send"),
        ("url-no-from", "error: config.toml: no sender address for mail (set [mail]"),
        ("bad-address", "error: ADDRESS: 'tuan.la' is not a mail address"),
    ],
)
def test_what_is_missing_is_one_line(
    campaign: Path,
    server: Server,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    expected: str,
) -> None:
    no_mail_campaign(campaign)  # no [mail] unless the setup adds one
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    address = "tuan.la@stp.example.vn"
    if setup == "no-password":
        add_mail(campaign, server)
    elif setup == "bad-url":
        monkeypatch.setenv(SMTP_URL_ENV, f"smtp://u:{quote(secret, safe='')}@smtp.example.vn")
    elif setup == "url-no-from":
        monkeypatch.setenv(SMTP_URL_ENV, f"smtp://localhost:{server.port}")
    elif setup == "bad-address":
        add_mail(campaign, server)
        monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", secret)
        address = "tuan.la"
    result = run("mail", "test", address)
    assert one_line_error(result).startswith(expected)
    assert secret not in result.output and not server.received


# -- channels check ---------------------------------------------------------------------------


def mail_cell(output: str) -> str:
    """The result column of the table's ``mail`` row (its wrapped lines joined)."""
    from tests.test_cli_channels import result_cell, rows

    return result_cell(rows(output)["mail"])


def test_channels_check_has_no_mail_row_without_mail(campaign: Path) -> None:
    from tests.test_cli_channels import rows

    config = load_config(no_mail_campaign(campaign))
    result = run("channels", "check", "--sandbox")
    assert result.exit_code == 0, result.output
    assert set(rows(result.stdout)) == set(config.channels)


def test_channels_check_logs_in_to_the_mail_server(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server)
    disable_channels(campaign)
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", secret)
    result = run("channels", "check")
    assert result.exit_code == 0, result.output
    assert mail_cell(result.stdout).startswith(f"ok: logged in as {USER} on localhost:")
    assert "smtp" in result.stdout and not server.received
    assert "NOOP" in server.handler.commands and server.auth is not None and server.auth.tries


def test_channels_check_fails_on_a_refused_login(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server)
    disable_channels(campaign)
    wrong = secret + "-old"
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", wrong)
    result = run("channels", "check")
    assert result.exit_code == 1
    cell = mail_cell(result.stdout)
    assert cell.startswith("FAILED: the mail server refused the login"), cell
    assert result.stderr.strip() == "1 channel(s) failed the check."
    assert wrong not in result.output and secret not in result.output


def test_channels_check_shows_a_bad_url_in_the_mail_row(
    campaign: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_mail_campaign(campaign)  # the URL alone
    disable_channels(campaign)
    monkeypatch.setenv(SMTP_URL_ENV, f"smtps://u:{quote(secret, safe='')}@smtp.example.vn:99999")
    result = run("channels", "check")
    assert result.exit_code == 1
    assert mail_cell(result.stdout).startswith(
        f"FAILED: {SMTP_URL_ENV}: is not a URL with a host and a port number"
    )
    assert secret not in result.output and quote(secret, safe="") not in result.output


# -- under the sandbox: its SMTP server, never the real one --------------------------------------


def test_channels_check_under_the_sandbox_logs_in_to_its_smtp_server(
    campaign: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[mail] names the real server, whose password is not even set: the check logs in to the
    sandbox's SMTP server with the sandbox's login, and never talks to the real one."""
    add_mail(campaign, server)
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    result = run("channels", "check", "--sandbox")
    assert result.exit_code == 0, result.output
    cell = mail_cell(result.stdout)
    assert cell.startswith(f"ok: logged in as {cred.MAIL_USER} on 127.0.0.1:"), cell
    assert "(none), no TLS (loopback); nothing sent" in cell
    assert server.handler.commands == []


def test_channels_check_by_url_really_logs_in(
    campaign: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row is the sandbox's own answer: a login it refuses (mail:token-expiry) fails it.
    (The channels are off: the email channel's check would log in first and meet the fault.)"""
    add_mail(campaign, server)
    disable_channels(campaign)
    with Sandbox() as box:
        host, port = box.smtp_address or ("", 0)
        ok = run("channels", "check", "--sandbox-url", box.url)
        assert ok.exit_code == 0, ok.output
        assert mail_cell(ok.stdout).startswith(f"ok: logged in as publisher on {host}:{port}")
        box.set_faults("mail:token-expiry=x1")
        refused = run("channels", "check", "--sandbox-url", box.url)
    assert refused.exit_code == 1
    assert mail_cell(refused.stdout).startswith(
        "FAILED: the mail server refused the login of 'publisher' (535 5.7.8"
    )
    assert server.handler.commands == []


def test_channels_check_under_the_sandbox_ignores_the_real_url(
    campaign: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUBLISHER_SMTP_URL names the real server: under the sandbox it is not used, not even
    when it is malformed."""
    no_mail_campaign(campaign)
    monkeypatch.setenv(SMTP_URL_ENV, f"smtps://u:{quote(secret, safe='')}@smtp.example.vn:99999")
    result = run("channels", "check", "--sandbox")
    assert result.exit_code == 0, result.output
    assert mail_cell(result.stdout).startswith("ok: logged in as publisher on 127.0.0.1:")
    assert secret not in result.output


def test_mail_test_by_url_lands_in_the_sandbox_record(
    campaign: Path, server: Server, secret: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_mail(campaign, server)
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", secret)
    monkeypatch.setenv("PUBLISHER_LANG", "vi")
    record = tmp_path / "sandbox.jsonl"
    with Sandbox(record_path=record) as box:
        host, port = box.smtp_address or ("", 0)
        result = run("mail", "test", "tuan.la@stp.example.vn", "--sandbox-url", box.url)
        assert result.exit_code == 0, result.output
        (item,) = box.records()
    assert server.handler.commands == []  # the real server heard nothing
    assert json.loads(record.read_text("utf-8")) == item
    assert result.stdout.strip() == (
        f"Đã gửi thư thử nghiệm tới tuan.la@stp.example.vn qua {host}:{port} (none) "
        f"(Message-ID {item['remote_id']})."
    )
    assert (item["platform"], item["channel"], item["kind"]) == ("mail", "stp.example.vn", "mail")
    assert item["title"] == "publisher: thư thử nghiệm từ Sở Tư pháp tỉnh Bắc Giang"
    assert item["text"].startswith("Đây là thư thử nghiệm từ publisher, hệ thống đăng bài")
    fields = item["fields"]
    assert fields["recipients"] == ["tuan.la@stp.example.vn"]
    assert fields["from"] == f"Sở Tư pháp tỉnh Bắc Giang <{USER}>"
    assert fields["reply_to"] == "vanphong@stp.example.vn"
    assert secret not in record.read_text("utf-8")


def test_mail_test_under_the_sandbox_needs_no_real_password(
    campaign: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mail(campaign, server)
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    result = run("mail", "test", "tuan.la@stp.example.vn", "--sandbox")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"Sent a test message to tuan\.la@stp\.example\.vn through 127\.0\.0\.1:\d+ \(none\) "
        r"\(Message-ID <[^>]+@stp\.example\.vn>\)\.",
        result.stdout.strip(),
    ), result.stdout
    assert server.handler.commands == []


def test_mail_test_under_the_sandbox_overrides_the_url(
    campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUBLISHER_SMTP_URL alone, naming a real (here: local) server: the mail goes to the
    sandbox, with the URL's sender."""
    no_mail_campaign(campaign)
    with mail_server(tmp_path, security="none") as plain, Sandbox() as box:
        url = f"smtp://127.0.0.1:{plain.port}?from=publisher%40stp.example.vn"
        monkeypatch.setenv(SMTP_URL_ENV, url)
        result = run("mail", "test", "tuan.la@stp.example.vn", "--sandbox-url", box.url)
        assert result.exit_code == 0, result.output
        assert plain.handler.commands == []
        (item,) = box.records()
    assert item["fields"]["mail_from"] == "publisher@stp.example.vn"


def test_mail_test_without_a_sandbox_at_the_url_is_one_line(campaign: Path, server: Server) -> None:
    add_mail(campaign, server)
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(run("mail", "test", "tuan.la@stp.example.vn", "--sandbox-url", url))
    assert line.startswith(
        f"error: --sandbox-url: the sandbox at {url} did not say where it takes mail "
        f"({url}/_sandbox/smtp: "
    ), line
    assert server.handler.commands == []


def test_mail_test_under_the_sandbox_still_needs_mail_set_up(campaign: Path) -> None:
    no_mail_campaign(campaign)
    line = one_line_error(run("mail", "test", "tuan.la@stp.example.vn", "--sandbox"))
    assert line.startswith("error: config.toml: no mail server is configured")
