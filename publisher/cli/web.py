"""``publisher web``: the board's web app, served by uvicorn (publisher.web.app)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from publisher.cli.common import cli, config_option, open_queue, read_config, say
from publisher.errors import InputError


@cli.command("web")
@config_option
@click.option("--host", default=None, help="Listen on this address (default: [web] host).")
@click.option(
    "--port", type=int, default=None, help="Listen on this port (default: [web] port, 8080)."
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="IPS",
    help="Proxies whose X-Forwarded-Proto/-For are believed (comma-separated; default: "
    "$FORWARDED_ALLOW_IPS, else 127.0.0.1, i.e. an nginx on this machine).",
)
def web(
    config_path: Path, host: str | None, port: int | None, forwarded_allow_ips: str | None
) -> None:
    """Serve the board's web app: calendar, previews, editing and approval in the browser.

    \b
    Create the accounts first, then start it beside `publisher run`:
      publisher user add tuan.la            # asks for the password
      publisher web --config config.toml    # http://127.0.0.1:8080/
    One process; put nginx with TLS in front of it (README: "The board's web app").
    """
    import uvicorn

    from publisher.web.app import create_app
    from publisher.web.context import WebContext

    config = read_config(config_path)
    host = host or config.web.host
    port = port if port is not None else config.web.port
    if not 1 <= port <= 65535:
        raise InputError("--port", f"{port} is not a port", "a number from 1 to 65535, e.g. 8080")
    app = create_app(WebContext(config, open_queue(config)))
    say(f"The board's web app: http://{host}:{port}/ (Ctrl+C stops it).")
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=1,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips or os.environ.get("FORWARDED_ALLOW_IPS"),
        server_header=False,
        log_level="info",
    )
