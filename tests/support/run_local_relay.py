"""Run rust-nostr's in-memory ``LocalRelay`` (from the ``nostr-sdk`` wheel) as its own process.

Usage: ``python run_local_relay.py PORT [--rate-limit N] [--max-reqs N] [--lmdb DIR]
[--nip42 read|write|both]``

Prints the relay URL as one line on stdout once it accepts connections, then serves
until stdin reaches EOF (the parent closed the pipe or died) or the process is signalled.
It is a separate process so that the relay's Rust runtime can never block or outlive
the test process's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import nostr_sdk

# nostr-sdk's defaults are 60 EVENTs per minute per connection, which a test that
# publishes a batch hits immediately, and 500 open REQs per connection.
DEFAULT_MAX_REQS = 500


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="EVENTs per minute per connection (omit for nostr-sdk's default of 60)",
    )
    parser.add_argument("--max-reqs", type=int, default=DEFAULT_MAX_REQS)
    parser.add_argument(
        "--lmdb",
        metavar="DIR",
        help="store events in LMDB under DIR (the default in-memory store keeps at most 75,000)",
    )
    parser.add_argument(
        "--nip42",
        choices=("read", "write", "both"),
        help="require NIP-42 authentication for reads, writes or both",
    )
    return parser.parse_args(argv)


async def _start(
    port: int, rate_limit: int | None, max_reqs: int, lmdb: str | None, nip42: str | None = None
) -> nostr_sdk.LocalRelay:
    # The generated bindings annotate every method except a few zero-argument __init__s.
    builder = nostr_sdk.LocalRelayBuilder()  # type: ignore[no-untyped-call]
    builder = builder.addr("127.0.0.1").port(port)
    if lmdb is not None:
        builder = builder.database(await nostr_sdk.NostrLmdb.open(lmdb))
    if rate_limit is not None:
        builder = builder.rate_limit(
            nostr_sdk.RateLimit(max_reqs=max_reqs, notes_per_minute=rate_limit)
        )
    if nip42 is not None:
        mode = getattr(nostr_sdk.LocalRelayBuilderNip42Mode, nip42.upper())
        builder = builder.nip42(nostr_sdk.LocalRelayBuilderNip42(mode=mode))
    relay = builder.build()
    # run() only spawns the server on the library's own runtime and returns once it is
    # bound, so the relay keeps serving after this coroutine and its event loop finish.
    await relay.run()
    return relay


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    relay = asyncio.run(_start(args.port, args.rate_limit, args.max_reqs, args.lmdb, args.nip42))
    url = asyncio.run(relay.url())
    print(str(url), flush=True)
    # Blocking on stdin ties our lifetime to the parent's: EOF means it is gone.
    sys.stdin.read()
    relay.shutdown()
    if args.lmdb is not None:
        # The LMDB store crashes the interpreter's own shutdown (it is dropped after
        # the library's runtime): leave without it, there is nothing left to flush.
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
