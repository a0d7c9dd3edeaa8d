"""``python -m ledgerdrill.platforms.sandbox.erp --config FILE --port PORT --replica NAME``.

The config file (0600) holds the secrets; nothing secret is on the command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from ledgerdrill.platforms.sandbox.erp.app import create_app
from ledgerdrill.platforms.sandbox.erp.config import ErpConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgerdrill.platforms.sandbox.erp")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replica", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"%(asctime)s {options.replica} %(levelname)s %(name)s: %(message)s",
    )
    config = ErpConfig.load(options.config)
    app = create_app(config, options.replica)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    # uvicorn handles SIGTERM/SIGINT itself: stop accepting, finish in-flight requests
    # (at most timeout_graceful_shutdown), run the lifespan shutdown (closes the pool)
    server.run()
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads abandoned on a frozen database must not keep the process alive.
    os._exit(0 if server.started else 1)


if __name__ == "__main__":
    sys.exit(main())
