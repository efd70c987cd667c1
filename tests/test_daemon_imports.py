"""What a daemon process imports: not what only other commands, or the sandbox's own server,
use (each is megabytes of memory held for the process's whole life; bench item 4)."""

from __future__ import annotations

import subprocess
import sys

DAEMON = (
    "publisher.cli.run",
    "publisher.app",
    "publisher.dispatch.daemon",
    "publisher.dispatch.rehearsal",
    "publisher.channels.email_desk",
    "publisher.channels.facebook",
    "publisher.channels.zalo",
    "publisher.channels.wordpress",
    "publisher.channels.webhook",
    "publisher.sandbox.client",
)
NOT_LOADED = ("docx", "lxml", "pygments", "httpx._main", "publisher.sandbox.restore")


def test_a_daemon_loads_no_document_builder_no_cli_of_httpx_no_sandbox_server() -> None:
    code = (
        "import sys\n"
        f"for m in {DAEMON!r}: __import__(m)\n"
        f"print(','.join(m for m in {NOT_LOADED!r} if sys.modules.get(m) is not None))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_httpx_still_works_without_its_cli() -> None:
    import httpx

    import publisher  # noqa: F401 - refuses httpx._main

    assert httpx.Client is not None and callable(httpx.main)
