"""`python -m tests.harness.realism --host H --port P`: the realism moto server.

The same server `moto.server` runs (moto's dispatcher app on werkzeug's
threaded server with moto's request handler), with the realism patches and
middleware added. SIGTERM/SIGINT exit cleanly so the harness can stop it.
"""

from __future__ import annotations

import argparse
import os
import signal
from types import FrameType

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from tests.harness.realism.app import build_app
from tests.harness.realism.state import RealismState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.realism")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # moto builds some URLs from MOTO_PORT, as `moto.server` sets it.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    server = make_server(
        args.host,
        args.port,
        build_app(RealismState()),
        threaded=True,
        request_handler=MotoRequestHandler,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"realism moto server on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
