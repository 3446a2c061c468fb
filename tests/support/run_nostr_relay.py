"""Run the ``nostr-relay`` package's server (uvicorn, single process) with a given config.

Usage: ``python run_nostr_relay.py CONFIG_YAML``

Same as ``nostr-relay -c CONFIG_YAML serve --use-uvicorn`` (which also applies the
SQLite schema migrations), plus one addition: when stdin reaches EOF the server is
asked to stop, so a relay never outlives a test process that died without cleaning up.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from nostr_relay.cli import main as nostr_relay_cli


def _stop_when_stdin_closes() -> None:
    sys.stdin.read()
    # uvicorn treats SIGTERM as a graceful shutdown, which also closes the SQLite store.
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit(f"usage: {sys.argv[0]} CONFIG_YAML")
    threading.Thread(target=_stop_when_stdin_closes, daemon=True).start()
    # --use-uvicorn keeps it a single process; gunicorn would fork workers we'd have to reap.
    nostr_relay_cli(["-c", argv[0], "serve", "--use-uvicorn"])


if __name__ == "__main__":
    main(sys.argv[1:])
