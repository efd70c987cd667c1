"""A real SMTP server on loopback for the mail tests (aiosmtpd): STARTTLS or TLS from the first
byte with a self-signed certificate made at test time, AUTH LOGIN/PLAIN only over TLS, and
scripted refusals and faults. What arrives is kept as parsed ``email`` messages."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def certificate(*names: str) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) for ``names`` (DNS names, or IP addresses) and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Handler:
    """aiosmtpd's hooks: keeps what arrives; refuses or breaks on request."""

    received: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → reply, e.g. "550 …"
    data_reply: str = ""  # instead of 250 after the message, e.g. "451 …"
    drop_after_data: bool = False  # keep the message, then close without a reply
    stall_after_data: float = 0.0  # keep the message, then wait this long before the reply
    commands: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.commands.append("EHLO")
        session.host_name = hostname
        return responses

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        self.commands.append("NOOP")
        return "250 OK"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.commands.append("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.commands.append("RCPT")
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("DATA")
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope, parsed))
        if self.drop_after_data:
            assert server.transport is not None
            server.transport.abort()
        if self.stall_after_data:
            await asyncio.sleep(self.stall_after_data)
        return self.data_reply or "250 2.0.0 Message accepted for delivery"


class Authenticator:
    """AUTH LOGIN/PLAIN against one user and password."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.tries: list[str] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.tries.append(mechanism)
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    host: str
    port: int
    ca_file: Path
    handler: Handler
    auth: Authenticator | None

    @property
    def received(self) -> list[tuple[Envelope, EmailMessage]]:
        return self.handler.received


@contextmanager
def mail_server(
    tmp_path: Path,
    *,
    security: str = "starttls",
    user: str = "",
    password: str = "",
    auth_required: bool = False,
    mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"),
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> Iterator[Server]:
    """An SMTP server on 127.0.0.1: ``security`` "starttls" (offers STARTTLS; AUTH only after
    it), "ssl" (TLS from the first byte) or "none"; AUTH LOGIN/PLAIN if ``user`` is given. The
    CA to trust it (its own certificate, for ``names``) is ``Server.ca_file``."""
    cert, key = certificate(*names)
    folder = tmp_path / f"smtp-{security}-{free_port()}"
    folder.mkdir()
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    handler = Handler()
    auth = Authenticator(user, password) if user else None
    kwargs: dict[str, Any] = {
        "server_hostname": "mail.test",
        "authenticator": auth,
        "auth_required": auth_required,
        "auth_require_tls": True,  # never a password in clear, as real servers
        "auth_exclude_mechanism": {"LOGIN", "PLAIN"} - set(mechanisms),
        "ready_timeout": 10.0,
    }
    if security == "starttls":
        kwargs["tls_context"] = tls
    elif security == "ssl":
        kwargs["ssl_context"] = tls
        # aiosmtpd sees TLS only when STARTTLS made it; here every byte is TLS already
        kwargs["auth_require_tls"] = False
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Server("localhost", port, folder / "cert.pem", handler, auth)
    finally:
        controller.stop()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a connect that times out on the
    greeting)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()
