"""Signed sample events for relay tests: kind-30174-like, one ``d`` per index.

The content is random hex standing in for NIP-44 ciphertext; relays do not look
inside it. Shared by the fault tests and the relay-client integration tests.
"""

from __future__ import annotations

import os
import time

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey

ENGRAM_KIND = 30174


def engram_like(
    agent: SecretKey,
    owner_pubkey: str,
    index: int,
    *,
    created_at: int | None = None,
    d: str | None = None,
) -> Event:
    """A signed addressable event shaped like a NIP-AE engram (``d`` and ``p`` tags)."""
    return sign_event(
        agent,
        created_at=int(time.time()) if created_at is None else created_at,
        kind=ENGRAM_KIND,
        tags=[["d", d if d is not None else f"{index:064x}"], ["p", owner_pubkey]],
        content=os.urandom(48).hex(),
    )


def batch(count: int, *, agents: int = 1) -> tuple[list[SecretKey], str, list[Event]]:
    """``count`` events from ``agents`` agent keys (round robin) for one owner."""
    keys = [SecretKey.generate() for _ in range(agents)]
    owner = SecretKey.generate().public_key.hex
    events = [engram_like(keys[i % agents], owner, i) for i in range(count)]
    return keys, owner, events


def forged(event: Event) -> Event:
    """The same event with a signature that does not verify."""
    return Event(
        event.id, event.pubkey, event.created_at, event.kind, event.tags, event.content, "00" * 64
    )
