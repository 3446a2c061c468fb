"""Measure how the two test relays answer edge cases; the source of the table in RELAYS.md.

Run from the repository root: ``.venv/bin/python -m tests.support.measure_relays``.
Uses the bare NIP-01 client and events signed by nostr-sdk, so neither fleetsync code
nor an SDK client's own filtering colours the answers. Every wait is bounded; most of
a run is spent in nostr-relay's throttling after rejected events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.nip01 import connect, fetch_nip11
from tests.support.relays import RelayProcess, start_nostr_relay, start_rust_relay
from tests.support.sdk import sdk_keys, sdk_sign_event

ADDRESSABLE_KIND = 30174


async def _measure(url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    sec, pub = sdk_keys()
    now = int(time.time())
    async with connect(url) as client:
        event = sdk_sign_event(sec, 1, [], "hello", now)
        results["a new event"] = await client.publish_timed(event)
        results["b duplicate"] = await client.publish_timed(event)

        versions = {
            age: sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "persona"]], f"v-{age}", now - age)
            for age in (20, 10, 30)
        }
        results["d1 addressable v(now-20)"] = await client.publish_timed(versions[20])
        results["d2 addressable newer v(now-10)"] = await client.publish_timed(versions[10])
        results["d3 addressable OLDER v(now-30)"] = await client.publish_timed(versions[30])
        stored = await client.query(
            {"kinds": [ADDRESSABLE_KIND], "authors": [pub], "#d": ["persona"]}
        )
        results["e REQ returns versions"] = sorted(e["content"] for e in stored)

        # NIP-01: on equal created_at the event with the lowest id is the one to keep.
        ties = sorted(
            (
                sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "tie"]], f"tie-{n}", now)
                for n in range(2)
            ),
            key=lambda e: str(json.loads(e)["id"]),
        )
        results["d4 same created_at, higher id"] = await client.publish_timed(ties[1])
        results["d5 same created_at, lower id"] = await client.publish_timed(ties[0])
        stored = await client.query({"kinds": [ADDRESSABLE_KIND], "authors": [pub], "#d": ["tie"]})
        lowest = json.loads(ties[0])["id"]
        results["e2 REQ after tie"] = sorted(
            "lower id" if e["id"] == lowest else "higher id" for e in stored
        )

    # Rejections go on their own connection: nostr-relay slows the rest of a
    # connection down after each one.
    async with connect(url) as client:
        forged = json.loads(sdk_sign_event(sec, 1, [], "forged", now))
        forged["sig"] = "00" * 64
        results["c bad signature"] = await client.publish_timed(json.dumps(forged))
        tampered = json.loads(sdk_sign_event(sec, 1, [], "original", now))
        tampered["content"] = "tampered"
        results["c2 id does not match body"] = await client.publish_timed(json.dumps(tampered))
        after = sdk_sign_event(sec, 1, [], "after two bad ones", now)
        results["c3 good event after 2 bad ones (same conn)"] = await client.publish_timed(after)

    async with connect(url) as client:
        future = sdk_sign_event(sec, 1, [], "future", now + 2 * 3600)
        results["h created_at now+2h"] = await client.publish_timed(future)

    results["g NIP-11"] = await fetch_nip11(url)
    return results


async def _measure_rate_limit(url: str, burst: int = 70) -> dict[str, Any] | str:
    sec, _ = sdk_keys()
    now = int(time.time())
    async with connect(url) as client:
        for index in range(burst):
            answer = await client.publish(sdk_sign_event(sec, 1, [], f"n{index}", now))
            if not answer[2]:
                break
        else:
            return f"all {burst} accepted"
    async with connect(url) as fresh:
        on_new_connection = await fresh.publish(sdk_sign_event(sec, 1, [], "fresh", now))
    return {
        "first refused EVENT (1-based)": index + 1,
        "answer": answer,
        "next EVENT on a new connection": on_new_connection,
    }


async def _measure_stock_limits(url: str) -> dict[str, Any]:
    sec, _ = sdk_keys()
    now = int(time.time())
    big = sdk_sign_event(sec, 1, [], "x" * 5000, now)
    old = sdk_sign_event(sec, 1, [], "old", now - 400 * 24 * 3600)
    # One connection each, so the throttle after the first refusal does not add up.
    async with connect(url) as client:
        too_big = await client.publish_timed(big)
    async with connect(url) as client:
        too_old = await client.publish_timed(old)
    return {"5000-char content": too_big, "created_at 400 days ago": too_old}


def _run(start: Callable[[], RelayProcess], probe: Callable[[str], Awaitable[Any]]) -> Any:
    with start() as relay:
        return asyncio.run(asyncio.wait_for(probe(relay.url), timeout=60))


def main() -> None:
    report = {
        "nostr-relay": _run(start_nostr_relay, _measure),
        "rust LocalRelay": _run(start_rust_relay, _measure),
        "rust LocalRelay default rate limit": _run(
            lambda: start_rust_relay(rate_limit=None), _measure_rate_limit
        ),
        "nostr-relay with stock size and age limits": _run(
            lambda: start_nostr_relay(max_event_size=4096, max_event_age=31_536_000),
            _measure_stock_limits,
        ),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
