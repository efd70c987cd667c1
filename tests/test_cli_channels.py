"""``publisher channels check`` and ``publisher sandbox`` from the command line.

``channels check`` runs in-process with click's CliRunner in a copy of the campaign; the sandbox
command runs as a real subprocess (``python -m publisher sandbox``) and is stopped by a signal.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

import publisher
from publisher.app import use_sandbox
from publisher.channels import build, endpoint
from publisher.channels.base import Outgoing
from publisher.cli.main import cli
from publisher.config import Config, load_config
from publisher.content import read_messages
from publisher.render import Renderer
from publisher.sandbox.server import Sandbox
from tests.mailcfg import no_mail_campaign

# The shipped campaign mails (portal_pbgdpl is an email channel, [mail] is set): the check has a
# row for the mail server and, under a sandbox, one for its IMAP server, where the desk replies.
MAIL_ROWS = {"mail", "imap"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["channels", "check", *args])


@pytest.fixture
def no_secrets(config: Config, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No channel secret in the environment (the campaign copy has no .env file either), nor
    the mail server's password."""
    names = sorted({name for ch in config.channels.values() for name in ch.secrets.values()})
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert config.mail is not None
    monkeypatch.delenv(config.mail.password_env, raising=False)
    assert names and not (config.env_file and config.env_file.exists())
    return names


def rows(output: str) -> dict[str, list[str]]:
    """Each channel's table row: the lines from the one that starts with its id to the next."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        first = line.split("│")[1].strip()
        if first:
            current = found.setdefault(first, [])
            assert not current, f"channel {first} has two rows"
        if current is not None:
            current.append(line)
    return found


def result_cell(lines: list[str]) -> str:
    """The ``result`` column of one (possibly wrapped) row, as one string."""
    return " ".join(line.split("│")[-2].strip() for line in lines)


def assert_all_ok(result: Result, config: Config, url: str | None = None) -> None:
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert set(table) == set(config.channels) | MAIL_ROWS
    for cid, lines in table.items():
        cell = result_cell(lines)
        assert cell.startswith("ok: "), cell
        channel = config.channels.get(cid)
        if channel is None or channel.adapter == "email":  # the sandbox's SMTP or IMAP server
            assert "127.0.0.1:" in cell, f"{cid} was not pointed at the sandbox's mail"
        elif url is not None:
            assert url in lines[0], f"{cid} was not pointed at the sandbox at {url}"
    assert "FAILED" not in result.output and "Traceback" not in result.output


def test_check_with_an_in_process_sandbox_says_every_channel_is_ok(
    config: Config, no_secrets: list[str]
) -> None:
    result = invoke("--sandbox")
    assert_all_ok(result, config, "http://127.0.0.1:")
    assert result.stderr == ""
    for cid in config.channels:
        assert cid in result.stdout


def test_check_encrypts_the_zalo_tokens_with_the_configured_token_key(
    config: Config, no_secrets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import text

    from publisher.store.db import Database

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PUBLISHER_TOKEN_KEYS", key)
    result = invoke("--sandbox")
    assert_all_ok(result, config)
    db = Database(config.database_url)
    try:
        with db.engine.connect() as conn:
            (secret,) = conn.execute(text("SELECT secret FROM channel_token")).one()
    finally:
        db.close()
    assert json.loads(Fernet(key).decrypt(secret.encode()))["access_token"]
    monkeypatch.setenv("PUBLISHER_TOKEN_KEYS", f"{key},not-a-key")
    bad = invoke("--sandbox")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: PUBLISHER_TOKEN_KEYS: key 2 of 2 is not a Fernet key")
    assert key not in bad.output


def test_check_without_secrets_names_every_missing_variable(
    config: Config, no_secrets: list[str]
) -> None:
    result = invoke()
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    table = rows(result.stdout)
    assert set(table) == {*config.channels, "mail"}  # one row per channel and the mail's, no more
    assert config.mail is not None
    no_mail_password = f"the environment variable {config.mail.password_env} is empty or unset"
    for cid, lines in table.items():
        cell = result_cell(lines)
        assert cell.startswith("FAILED: "), cell
        channel = config.channels.get(cid)
        if channel is None or channel.adapter == "email":  # the mail row, the email channel
            assert no_mail_password in cell, cell
            continue
        assert endpoint(channel) in lines[0]
        for role, name in channel.secrets.items():
            assert f"{name} ({role}) is empty or unset" in cell, cell
    for name in no_secrets:
        assert len(re.findall(rf"\b{name}\b", result.stdout)) == 1, name
    assert result.stderr.strip() == f"{len(table)} channel(s) failed the check."


def test_check_against_a_running_sandbox_by_url(config: Config, no_secrets: list[str]) -> None:
    with Sandbox() as box:
        result = invoke("--sandbox-url", box.url)
        assert_all_ok(result, config, box.url)
        assert box.tokens.counter == 1  # the Zalo check refreshed once from the sandbox seed
    assert box.records() == []  # checking publishes nothing


def test_check_against_an_unreachable_sandbox_says_so(
    campaign: Path, no_secrets: list[str]
) -> None:
    """Each channel's row says it cannot reach the sandbox (a campaign without mail: with mail,
    the sandbox is asked first where it takes mail, and that is the one line said)."""
    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        mailing = invoke("--sandbox-url", url)
        config = load_config(no_mail_campaign(campaign))
        result = invoke("--sandbox-url", url)
    assert mailing.exit_code == 1 and mailing.stdout == ""
    assert mailing.stderr.startswith(
        f"error: --sandbox-url: the sandbox at {url} did not say where it takes mail"
    )
    assert len(mailing.stderr.splitlines()) == 1
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    table = rows(result.stdout)
    assert set(table) == set(config.channels)
    for cid, lines in table.items():
        cell = result_cell(lines)
        assert cell.startswith("FAILED: "), (cid, cell)
        assert re.search(r"ConnectError|cannot reach", cell), (cid, cell)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sandbox", "--sandbox-url", "http://127.0.0.1:9"], "give --sandbox or --sandbox-url"),
        (["--sandbox-url", "127.0.0.1:8765"], "is not an http(s) URL"),
    ],
)
def test_bad_sandbox_options_give_one_line(
    config: Config, no_secrets: list[str], args: list[str], message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --sandbox"), result.stderr
    assert message in lines[0]


# -- publisher sandbox, as a process ---------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment for a child Python: it imports this checkout's publisher from any cwd."""
    root = str(Path(publisher.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


class Served:
    """``python -m publisher sandbox`` running; its stdout lines arrive on a queue."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "publisher", "sandbox", *args],
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            # Started as a shell script's background job is (SIGINT ignored): the sandbox
            # still stops on Ctrl-C's signal.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [self.lines.put(x) for x in stdout], daemon=True).start()

    def line(self, timeout: float = 20.0) -> str:
        try:
            return self.lines.get(timeout=timeout).rstrip("\n")
        except queue.Empty:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"no output from the sandbox; stderr: {err}") from None

    def stop(self, signum: int, timeout: float = 5.0) -> int:
        """Signal the sandbox; the test fails (TimeoutExpired) if it has not exited in time."""
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return code


@pytest.fixture
def served(campaign: Path, tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    record = tmp_path / "out" / "sandbox.jsonl"
    process = Served(
        campaign, "--port", "0", "--smtp-port", "0", "--imap-port", "0", "--record", str(record)
    )
    yield process, record
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sandbox_command_serves_records_and_stops_promptly(
    served: tuple[Served, Path], campaign: Path, signum: int
) -> None:
    process, record = served
    config = load_config(no_mail_campaign(campaign))  # portal_pbgdpl: the webhook channel
    first = process.line()
    m = re.fullmatch(
        r"publisher sandbox at (http://127\.0\.0\.1:(\d+))\s+\(Ctrl-C to stop\)", first
    )
    assert m, first
    url = m.group(1)
    assert int(m.group(2)) > 0  # --port 0 picked a free port and says which
    said = [process.line() for _ in range(8)]
    (mail,) = [line for line in said if line.lstrip().startswith("mail:")]
    smtp = httpx.get(url + "/_sandbox/smtp", timeout=10).json()
    assert smtp["port"] > 0 and f"smtp://127.0.0.1:{smtp['port']} " in mail  # --smtp-port 0 too

    page = httpx.get(url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "0 accepted item(s)" in page.text

    # Publish one real slogan through it with the portal's webhook adapter.
    cfg, secrets = use_sandbox(config, url)
    message = next(m for m in read_messages(cfg)[0] if m.kind == "slogan")
    render = Renderer(cfg).render(message, "portal_pbgdpl")
    post = Outgoing(
        1, str(uuid.uuid4()), "portal_pbgdpl", "slogan", render.fields, datetime.now(UTC)
    )
    with httpx.Client(timeout=10) as client:
        adapter = build(
            cfg.channels["portal_pbgdpl"], secrets.for_channel("portal_pbgdpl"), client=client
        )
        receipt = adapter.publish(post)
    lines = record.read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 1
    item = json.loads(lines[0])
    assert (item["platform"], item["channel"]) == ("webhook", "portal_pbgdpl")
    assert item["remote_id"] == receipt.remote_id and item["text"] == render.text
    page = httpx.get(url + "/", timeout=10)
    assert "1 accepted item(s)" in page.text and f'id="webhook-{receipt.remote_id}"' in page.text
    listed = httpx.get(url + "/_sandbox/records", timeout=10).json()
    assert [r["remote_id"] for r in listed] == [receipt.remote_id]

    code = process.stop(signum)  # a clean stop either way, even with SIGINT ignored at start
    assert code == 0, process.proc.stderr.read() if process.proc.stderr else ""
    assert "Traceback" not in (process.proc.stderr.read() if process.proc.stderr else "")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=2)
    assert record.read_bytes().decode("utf-8").splitlines() == lines  # the record survives
