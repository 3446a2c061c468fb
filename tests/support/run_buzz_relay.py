"""Run the buzz relay double (``buzz_relay.py``) as its own process.

Usage: ``python run_buzz_relay.py``

Prints the double's websocket URL (``ws://127.0.0.1:PORT``; its HTTP bridge is
``http://`` on the same port) as one line on stdout once it accepts connections,
then serves until stdin reaches EOF (the parent closed the pipe or died) or the
process is signalled. A process of its own so that a benchmark can tell the
double's CPU time from its client's: in a thread of the client's process they
share one interpreter and one clock. Strings reach rust-nostr in one copy
(:func:`tests.support.buzz_relay.sdk_strings_copied_at_once`), so the double
does not spend its time on the bindings' byte-by-byte loop.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# Run as a script from a work directory: the checkout's root holds ``tests``.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.buzz_relay import BuzzRelay, sdk_strings_copied_at_once


async def serve() -> None:
    relay = BuzzRelay()
    await relay.start()
    print(relay.url, flush=True)
    # Blocking on stdin ties our lifetime to the parent's: EOF means it is gone.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await relay.stop()


def main() -> int:
    with sdk_strings_copied_at_once():
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
