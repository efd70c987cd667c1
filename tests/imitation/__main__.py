"""``python -m tests.imitation``: serve the imitation until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from tests.imitation.core import GRAMMAR, FaultError
from tests.imitation.server import Imitation
from tests.imitation.webhook import GET_CONTENT, SCHEMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.imitation", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--record", type=Path, help="append every created item to FILE (JSONL)")
    parser.add_argument("--faults", default="", help=GRAMMAR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--webhook-scheme", choices=SCHEMES, default="auto")
    parser.add_argument(
        "--webhook-get",
        choices=sorted(GET_CONTENT),
        default="path",
        help="what a Standard Webhooks GET signs in the body's place (default: 'GET <path>')",
    )
    parser.add_argument(
        "--facebook-page",
        action="append",
        metavar="ID[=NAME]",
        help="a Page the test token may publish to (default: the example config's)",
    )
    parser.add_argument("--zalo-app-id", default="1000000000000000000")
    parser.add_argument("--zalo-oa-id", default="2000000000000000000")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    pages = None
    if args.facebook_page:
        pages = dict(p.partition("=")[::2] for p in args.facebook_page)
        pages = {k: v or f"Page {k}" for k, v in pages.items()}
    try:
        imitation = Imitation(
            host=args.host,
            port=args.port,
            record=args.record,
            faults=args.faults,
            seed=args.seed,
            webhook_scheme=args.webhook_scheme,
            webhook_get=args.webhook_get,
            facebook_pages=pages,
            zalo_app_id=args.zalo_app_id,
            zalo_oa_id=args.zalo_oa_id,
        )
    except FaultError as exc:
        print(f"error: --faults: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    imitation.start()
    print(f"imitation listening on {imitation.url}", flush=True)
    while not stop.wait(0.5):
        pass
    imitation.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
