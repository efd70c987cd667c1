"""``[mail]`` in config.toml and ``PUBLISHER_SMTP_URL`` over it (issue 16, item 1): every bad
value is one line naming the key (or the variable) and the fix, and none quotes a password."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.config import SMTP_URL_ENV, MailSettings, load_config, parse
from publisher.config.env import mail_access
from publisher.config.parse import smtp_url
from publisher.errors import ConfigError
from tests.mailcfg import no_mail_campaign, table_span, without_mail

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (ROOT / "config.toml").read_text(encoding="utf-8")
ANCHOR = "[paths]"
MAIL = """[mail]
host = "smtp.example.gov.vn"
username = "publisher"
secrets = { password = "PUBLISHER_SMTP_PASSWORD" }
from_address = "publisher@example.gov.vn"
"""


def secret() -> str:
    """A password-shaped value made at run time (no secret in the tracked files)."""
    return "pw-" + "".join(chr(c) for c in (0x4B, 0x3A, 0x40, 0x2F, 0x25)) + "-" + "z9" * 3


def with_mail(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "config.toml"
    text = without_mail(SHIPPED)  # the test's own [mail] instead of the shipped one
    path.write_text(text.replace(ANCHOR, table + "\n" + ANCHOR, 1), "utf-8")
    return path


def mail_of(tmp_path: Path, table: str) -> MailSettings:
    mail = load_config(with_mail(tmp_path, table)).mail
    assert mail is not None
    return mail


def error_for(tmp_path: Path, table: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(with_mail(tmp_path, table))
    line = str(info.value)
    assert "\n" not in line
    return line.split("config.toml: ", 1)[1]


def test_the_shipped_config_has_a_placeholder_mail_server_and_shows_every_key() -> None:
    """[mail] is on (the email channel and the alerts need it), with example values and the
    password in PUBLISHER_SMTP_PASSWORD; every key is there, set or as a commented example."""
    import tomllib

    mail = load_config(ROOT / "config.toml").mail
    assert mail is not None and mail.origin == "[mail]"
    assert (mail.host, mail.port, mail.security) == ("smtp.example.gov.vn", 587, "starttls")
    assert mail.password_env == "PUBLISHER_SMTP_PASSWORD"  # noqa: S105  (the variable's name)
    assert mail.from_address.endswith("@example.gov.vn") and mail.ca_file is None
    start, end = table_span(SHIPPED, "[mail]")
    lines = [line.removeprefix("# ") for line in SHIPPED[start:end].splitlines()]
    raw = tomllib.loads("\n".join(line for line in lines if not line.startswith("  ")))["mail"]
    assert set(raw) == {
        "host",
        "security",
        "port",
        "username",
        "secrets",
        "from_address",
        "from_name",
        "reply_to",
        "timeout",
        "ca_file",
    }


def test_a_mail_table_with_its_defaults(tmp_path: Path) -> None:
    mail = mail_of(tmp_path, MAIL)
    assert mail == MailSettings(
        host="smtp.example.gov.vn",
        from_address="publisher@example.gov.vn",
        port=587,
        security="starttls",
        username="publisher",
        password_env="PUBLISHER_SMTP_PASSWORD",  # noqa: S106  (the variable's name)
        from_name="Sở Tư pháp tỉnh Bắc Giang",  # the campaign's organisation
        reply_to="",
        timeout=timedelta(seconds=30),
        ca_file=None,
        origin="[mail]",
    )
    assert mail.endpoint == "smtp.example.gov.vn:587 (starttls)"


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587)])
def test_the_port_defaults_by_security(tmp_path: Path, security: str, port: int) -> None:
    mail = mail_of(tmp_path, MAIL + f'security = "{security}"\n')
    assert (mail.security, mail.port) == (security, port)


def test_every_setting(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(ca_pem(), "utf-8")
    mail = mail_of(
        tmp_path,
        '[mail]\nhost = "127.0.0.1"\nsecurity = "none"\nport = 2525\n'
        'from_address = "a@example.gov.vn"\nfrom_name = "  Văn phòng   Sở "\n'
        'reply_to = "vanphong@example.gov.vn"\ntimeout = "1m30s"\nca_file = "ca.pem"\n',
    )
    assert (mail.host, mail.port, mail.security, mail.username) == ("127.0.0.1", 2525, "none", "")
    assert mail.from_name == "Văn phòng Sở" and mail.reply_to == "vanphong@example.gov.vn"
    assert mail.timeout == timedelta(seconds=90)
    assert mail.ca_file == tmp_path.resolve() / "ca.pem"


def ca_pem() -> str:
    from tests.mailserver import certificate

    return certificate("localhost")[0].decode()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('host = "smtp.example.gov.vn"\n', "mail.host: is missing"),
        (
            'host = "smtp.example.gov.vn"\n',
            "mail.host: 'smtp.example.gov.vn:587' is not a host name or address (give the port "
            "as port = 587)",
        ),
        (
            'from_address = "publisher@example.gov.vn"\n',
            "mail.from_address: is missing",
        ),
        (
            'from_address = "publisher@example.gov.vn"\n',
            "mail.from_address: 'Publisher <p@example.gov.vn>' is not a mail address (write the "
            "bare address, e.g. 'publisher@example.gov.vn')",
        ),
        (
            'username = "publisher"\n',
            "mail.username: is missing: a password needs the login it belongs to (e.g. 'publisher')",
        ),
        (
            'secrets = { password = "PUBLISHER_SMTP_PASSWORD" }\n',
            "mail.secrets: names no password for the login 'publisher' (name the environment "
            'variable that holds it: e.g. secrets = { password = "PUBLISHER_SMTP_PASSWORD" })',
        ),
        (
            'secrets = { password = "PUBLISHER_SMTP_PASSWORD" }\n',
            "mail.secrets.password: must name an environment variable, never hold the secret "
            'itself (e.g. secrets = { password = "PUBLISHER_SMTP_PASSWORD" })',
        ),
        (
            'secrets = { password = "PUBLISHER_SMTP_PASSWORD" }\n',
            "mail.secrets.token: is not a secret of [mail] (allowed: password)",
        ),
    ],
    ids=[
        "no-host",
        "host-with-port",
        "no-from",
        "from-with-name",
        "password-without-user",
        "user-without-password",
        "password-in-config",
        "unknown-secret",
    ],
)
def test_a_bad_mail_table_is_one_line_naming_the_key(
    tmp_path: Path, request: pytest.FixtureRequest, change: str, expected: str
) -> None:
    replacement = {
        "no-host": "",
        "host-with-port": 'host = "smtp.example.gov.vn:587"\n',
        "no-from": "",
        "from-with-name": 'from_address = "Publisher <p@example.gov.vn>"\n',
        "password-without-user": "",
        "user-without-password": "",
        "password-in-config": f'secrets = {{ password = "{secret()}" }}\n',
        "unknown-secret": 'secrets = { token = "PUBLISHER_SMTP_TOKEN" }\n',
    }[request.node.callspec.id]
    line = error_for(tmp_path, MAIL.replace(change, replacement, 1))
    assert line == expected
    assert secret() not in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'security = "tls"\n',
            "mail.security: 'tls' is not a way to secure SMTP (one of: starttls (port 587), ssl "
            "(port 465), none (localhost only))",
        ),
        (
            'security = "none"\n',
            "mail.security: 'none' would send the password and the mail to smtp.example.gov.vn "
            "in clear (use 'starttls' or 'ssl' ('none' is allowed only on localhost, 127.0.0.1 "
            "or ::1))",
        ),
        ("port = 0\n", "mail.port: must be at least 1, not 0"),
        ("port = 70000\n", "mail.port: must be at most 65535, not 70000 (e.g. 587 for starttls)"),
        ('port = "587"\n', "mail.port: must be an integer, not a string"),
        (
            'timeout = "soon"\n',
            "mail.timeout: 'soon' is not a duration (e.g. '90s', '15m', '2h', '1d')",
        ),
        (
            'reply_to = "vanphong"\n',
            "mail.reply_to: 'vanphong' is not a mail address (write the bare address, e.g. "
            "'publisher@example.gov.vn')",
        ),
        (
            'ca_file = "missing.pem"\n',
            "mail.ca_file: 'missing.pem' is not a file (a PEM bundle, relative to config.toml)",
        ),
        (
            'ca_file = "config.toml"\n',
            "mail.ca_file: 'config.toml' is not a PEM bundle of CA certificates (SSLError) (the "
            "CA's certificate, -----BEGIN CERTIFICATE----- …)",
        ),
        (
            'user = "x"\n',
            "mail.user: is not a known key (allowed here: host, security, port, username, "
            "secrets, from_address, from_name, reply_to, timeout, ca_file)",
        ),
    ],
)
def test_a_bad_mail_value_is_one_line_with_the_fix(
    tmp_path: Path, extra: str, expected: str
) -> None:
    assert error_for(tmp_path, MAIL + extra) == expected


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "[::1]"])
def test_plain_smtp_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    mail = mail_of(tmp_path, MAIL.replace("smtp.example.gov.vn", host) + 'security = "none"\n')
    assert mail.security == "none" and mail.port == 25 and mail.host == host.strip("[]")


# PUBLISHER_SMTP_URL


def test_the_url_overrides_the_connection_and_keeps_the_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(with_mail(tmp_path, MAIL + 'reply_to = "vp@example.gov.vn"\n'))
    password = secret()
    quoted = password.replace("%", "%25").replace(":", "%3A").replace("@", "%40")
    quoted = quoted.replace("/", "%2F")
    monkeypatch.setenv(SMTP_URL_ENV, f"smtps://mail%40stp:{quoted}@relay.example.vn")
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "not-this-one")
    access = mail_access(config)
    assert access is not None
    assert access.password == password
    s = access.settings
    assert (s.host, s.port, s.security, s.username) == ("relay.example.vn", 465, "ssl", "mail@stp")
    assert (s.from_address, s.reply_to) == ("publisher@example.gov.vn", "vp@example.gov.vn")
    assert s.origin == SMTP_URL_ENV
    assert password not in repr(access)


def test_without_the_url_the_password_comes_from_the_variable_mail_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(with_mail(tmp_path, MAIL))
    monkeypatch.delenv(SMTP_URL_ENV, raising=False)
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as info:
        mail_access(config)
    assert str(info.value).endswith(
        "config.toml: mail.secrets.password: the environment variable PUBLISHER_SMTP_PASSWORD "
        "is empty or unset (export it, or add it to .env)"
    )
    password = secret()
    (tmp_path / ".env").write_text(f"PUBLISHER_SMTP_PASSWORD={password}\n", "utf-8")
    (tmp_path / ".env").chmod(0o600)
    access = mail_access(config)
    assert access is not None and access.password == password
    assert access.settings == config.mail


def test_the_url_may_come_from_the_env_file_and_the_environment_wins(
    campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(no_mail_campaign(campaign))
    monkeypatch.delenv(SMTP_URL_ENV, raising=False)
    assert mail_access(config) is None  # no [mail], no URL: no mail
    env = campaign / ".env"
    env.write_text(f"{SMTP_URL_ENV}=smtp://127.0.0.1:2525?from=a@example.gov.vn\n", "utf-8")
    env.chmod(0o600)
    access = mail_access(config)
    assert access is not None
    s = access.settings
    assert (s.host, s.port, s.security, s.username, s.from_address) == (
        "127.0.0.1",
        2525,
        "none",
        "",
        "a@example.gov.vn",
    )
    assert s.from_name == config.campaign.organisation and access.password == ""
    monkeypatch.setenv(SMTP_URL_ENV, "smtp://localhost?starttls=1")
    access = mail_access(config)
    assert access is not None
    assert access.settings.endpoint == "localhost:587 (starttls)"
    assert access.settings.from_address == ""  # no [mail], no ?from=: `mail test` says so


@pytest.mark.parametrize(
    ("url", "host", "port", "security"),
    [
        ("smtp://u:{pw}@localhost:2525", "localhost", 2525, "none"),
        ("smtp://u:{pw}@[::1]", "::1", 25, "none"),
        ("smtp://u:{pw}@smtp.example.vn?starttls=1", "smtp.example.vn", 587, "starttls"),
        ("smtp://u:{pw}@smtp.example.vn:2587/?starttls=true", "smtp.example.vn", 2587, "starttls"),
        ("SMTPS://u:{pw}@smtp.example.vn", "smtp.example.vn", 465, "ssl"),
        ("smtps://u:{pw}@smtp.example.vn:4650", "smtp.example.vn", 4650, "ssl"),
    ],
)
def test_good_urls(url: str, host: str, port: int, security: str) -> None:
    password = secret()
    quoted = "".join(c if c.isalnum() or c == "-" else f"%{ord(c):02X}" for c in password)
    settings, found = smtp_url(url.format(pw=quoted), None, "Sở Tư pháp")
    assert (settings.host, settings.port, settings.security) == (host, port, security)
    assert (settings.username, found) == ("u", password)
    assert settings.from_name == "Sở Tư pháp" and settings.from_address == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:{pw}@smtp.example.vn", "is not an smtp:// or smtps:// URL"),
        ("smtp://u:{pw}@smtp.example.vn:99999", "is not a URL with a host and a port number"),
        ("smtp://u:{pw}@smtp.example.vn:abc", "is not a URL with a host and a port number"),
        ("smtp://u:{pw}@", "has no host, or more than a host and a port"),
        ("smtp://u:{pw}/x@smtp.example.vn", "is not a URL with a host and a port number"),
        ("smtp://u:{pw}@smtp.example.vn/inbox", "has no host, or more than a host and a port"),
        ("smtp://u:{pw}@localhost:25#x", "has no host, or more than a host and a port"),
        ("smtp://u:{pw}#x@smtp.example.vn", "is not a URL with a host and a port number"),
        ("smtp://u:{pw}@smtp.example.vn?tls=1", "takes only ?starttls=1 and ?from=ADDRESS"),
        ("smtp://u:{pw}@smtp.example.vn?starttls=yes", "?starttls= must be 1 or 0"),
        ("smtps://u:{pw}@smtp.example.vn?starttls=1", "smtps:// is TLS already"),
        ("smtp://:{pw}@localhost", "has a password but no user name"),
        ("smtp://u@localhost", "has a user name but no password"),
        ("smtp://u:{pw}@localhost?from=nobody", "?from=: 'nobody' is not a mail address"),
        (
            "smtp://u:{pw}@smtp.example.vn",
            "smtp:// without ?starttls=1 would send the password and the mail to "
            "smtp.example.vn in clear (use smtps://… or smtp://…?starttls=1 (plain smtp:// is "
            "allowed only on localhost))",
        ),
        (
            "smtp://u:{pw}@smtp.example.vn?starttls=0",
            "smtp:// without ?starttls=1 would send the password and the mail to "
            "smtp.example.vn in clear",
        ),
    ],
)
def test_a_bad_url_is_one_line_that_never_shows_the_password(url: str, expected: str) -> None:
    password = secret()
    quoted = quote(password, safe="")
    with pytest.raises(ConfigError) as info:
        smtp_url(url.format(pw=quoted), None, "Sở Tư pháp")
    line = str(info.value)
    assert line.startswith(f"{SMTP_URL_ENV}: {expected}")
    assert "\n" not in line
    for part in (password, quoted, password[:6], password[-6:]):
        assert part not in line


@pytest.mark.parametrize("char", ["/", "#", "?", "@", ":"])
def test_an_unencoded_password_is_never_shown(char: str) -> None:
    """A password with a character the URL gives a meaning to breaks the URL; whatever part of
    the password ends up where, the line quotes none of it."""
    password = "Ab1" + char + "Cd2" + char + "Ef3"
    for url in (f"smtp://u:{password}@smtp.example.vn", f"smtps://u:{password}@localhost:465"):
        try:
            smtp_url(url, None, "Sở Tư pháp")
        except ConfigError as exc:
            line = str(exc)
        else:
            continue
        for part in ("Ab1", "Cd2", "Ef3"):
            assert part not in line, line


def test_a_misspelt_mail_table_is_named_with_the_tables_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(with_mail(tmp_path, MAIL.replace("[mail]", "[mial]")))
    assert "mial: is not a known key (allowed here: " in str(info.value)
    assert ", mail," in str(info.value) or str(info.value).endswith(", mail)")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(parse._PLAIN_ADDRESS, fullmatch=True))
def test_a_plain_address_is_one_the_email_package_takes_as_it_is(value: str) -> None:
    """``mail_address_problem`` accepts a plain address without the email package: each is
    one that ``email.headerregistry.Address`` reads back unchanged, with both parts."""
    from email.headerregistry import Address

    address = Address(addr_spec=value)
    assert (address.addr_spec, address.username, address.domain) == (
        value,
        *value.split("@"),
    )
    assert parse.mail_address_problem(value) is None


def test_addresses_that_are_not_plain_still_go_through_the_email_package() -> None:
    assert (
        parse.mail_address_problem("a..b@example.gov.vn")
        == "'a..b@example.gov.vn' is not a mail address"
    )
    assert parse.mail_address_problem("thư@example.gov.vn") is not None
    assert parse.mail_address_problem("x@") is not None
    assert parse.mail_address_problem('"a b"@example.gov.vn') is None  # quoted: still valid
