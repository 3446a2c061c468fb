"""rust-nostr (``nostr-sdk`` Python bindings) as an independent oracle for cross-checks.

Everything here uses nostr-sdk only, never project code, so a test can compare what
fleetsync produces with what a second, widely used implementation produces or accepts.
Keys travel as lowercase hex strings and events as JSON strings, the common ground
between the two. Network helpers are synchronous (each runs its own ``asyncio.run``)
and must therefore be called from sync code, not from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import nostr_sdk as ns


def sdk_keys() -> tuple[str, str]:
    """A fresh key pair as ``(secret_hex, public_hex)``."""
    keys = ns.Keys.generate()
    return keys.secret_key().to_hex(), keys.public_key().to_hex()


def sdk_public_key(sec_hex: str) -> str:
    """The x-only public key (hex) belonging to a secret key (hex or nsec)."""
    return ns.Keys.parse(sec_hex).public_key().to_hex()


def sdk_nip44_encrypt(sec_hex: str, peer_pub_hex: str, plaintext: str) -> str:
    """NIP-44 v2 payload (base64) from ``sec`` to ``peer`` with a random nonce."""
    return ns.nip44_encrypt(
        ns.SecretKey.parse(sec_hex),
        ns.PublicKey.parse(peer_pub_hex),
        plaintext,
        ns.Nip44Version.V2,
    )


def sdk_nip44_decrypt(sec_hex: str, peer_pub_hex: str, payload: str) -> str:
    """Plaintext of a NIP-44 payload; raises ``ns.NostrSdkError`` if it does not authenticate."""
    return ns.nip44_decrypt(ns.SecretKey.parse(sec_hex), ns.PublicKey.parse(peer_pub_hex), payload)


def sdk_verify_event_json(event_json: str) -> bool:
    """True only if nostr-sdk parses the event AND both its id and its signature check out.

    ``Event.from_json`` alone verifies nothing, and ``verify_signature`` alone checks the
    signature against the *stated* id, so a tampered body passes it; ``verify`` does both.
    """
    try:
        return ns.Event.from_json(event_json).verify()
    except ns.NostrSdkError:
        return False


def sdk_sign_event(
    sec_hex: str,
    kind: int,
    tags: list[list[str]],
    content: str,
    created_at: int,
) -> str:
    """Event JSON signed by nostr-sdk, with exactly these tags (order and values) and time.

    ``Tag.parse`` keeps the raw strings, even for tags it would reject when built with a
    typed constructor (e.g. ``["p", "not-hex"]``), and the builder adds no tags of its own.
    """
    event = (
        ns.EventBuilder(ns.Kind(kind), content)
        .tags([ns.Tag.parse(tag) for tag in tags])
        .custom_created_at(ns.Timestamp.from_secs(created_at))
        .finalize(ns.Keys.parse(sec_hex))
    )
    return event.as_json()


@dataclass(frozen=True)
class SdkEvent:
    """An event as nostr-sdk reads it, after checking its id and signature."""

    pubkey: str
    kind: int
    created_at: int
    tags: list[list[str]]
    content: str


def sdk_read_event(event_json: str) -> SdkEvent | None:
    """The event nostr-sdk parses from ``event_json``, or None unless its id and sig verify."""
    try:
        event = ns.Event.from_json(event_json)
        if not event.verify():
            return None
    except ns.NostrSdkError:
        return None
    return SdkEvent(
        pubkey=event.author().to_hex(),
        kind=event.kind().as_u16(),
        created_at=event.created_at().as_secs(),
        tags=[list(tag.to_vec()) for tag in event.tags()],
        content=event.content(),
    )


def sdk_nsec(sec_hex: str) -> str:
    """NIP-19 ``nsec1...`` encoding of a hex secret key."""
    return ns.SecretKey.parse(sec_hex).to_bech32()


def sdk_npub(pub_hex: str) -> str:
    """NIP-19 ``npub1...`` encoding of a hex public key."""
    return ns.PublicKey.parse(pub_hex).to_bech32()


def sdk_hex_from_bech32(bech32: str) -> str:
    """Hex behind an ``npub1...`` or ``nsec1...`` string."""
    if bech32.startswith("nsec1"):
        return ns.SecretKey.parse(bech32).to_hex()
    return ns.PublicKey.parse(bech32).to_hex()


@dataclass(frozen=True)
class PublishResult:
    """What the relay said about one EVENT, as reported by the nostr-sdk client."""

    event_id: str
    accepted: bool
    message: str  # the relay's OK message when it refused; "" when accepted


def sdk_fetch_events(
    relay_url: str, filter_dict: dict[str, Any], timeout: float = 5.0
) -> list[str]:
    """Events (as JSON) matching one NIP-01 filter, fetched by nostr-sdk's ``Client``.

    Returns after EOSE or ``timeout`` seconds. The client drops events that fail
    verification or do not match the filter, so this shows what a strict client sees,
    not every byte the relay sent.
    """
    return asyncio.run(_fetch(relay_url, filter_dict, timeout))


def sdk_publish(relay_url: str, event_json: str, timeout: float = 5.0) -> PublishResult:
    """Send one event with nostr-sdk's ``Client`` and report the relay's OK answer.

    The client verifies the event locally first; an invalid one raises
    ``ns.NostrSdkError`` here instead of reaching the relay (use a raw websocket for that).
    """
    return asyncio.run(_publish(relay_url, event_json, timeout))


async def _connected_client(relay_url: str, timeout: float) -> tuple[ns.Client, ns.RelayUrl]:
    # The generated bindings annotate every method except a few zero-argument __init__s.
    client = ns.Client()  # type: ignore[no-untyped-call]
    url = ns.RelayUrl.parse(relay_url)
    await client.add_relay(url)
    await client.connect(timedelta(seconds=timeout))
    return client, url


async def _fetch(relay_url: str, filter_dict: dict[str, Any], timeout: float) -> list[str]:
    client, url = await _connected_client(relay_url, timeout)
    try:
        target = ns.ReqTarget.single(url, [ns.Filter.from_json(json.dumps(filter_dict))])
        events = await client.fetch_events(target, timeout=timedelta(seconds=timeout))
        return [event.as_json() for event in events]
    finally:
        await client.shutdown()


async def _publish(relay_url: str, event_json: str, timeout: float) -> PublishResult:
    event = ns.Event.from_json(event_json)
    client, url = await _connected_client(relay_url, timeout)
    try:
        output = await client.send_event(
            event, ns.SendEventTarget.to([url]), ok_timeout=timedelta(seconds=timeout)
        )
    finally:
        await client.shutdown()
    refusals = list(output.failed.values())
    return PublishResult(
        event_id=output.id.to_hex(),
        accepted=bool(output.success) and not refusals,
        message=refusals[0] if refusals else "",
    )


def sdk_ncryptsec(sec_hex: str, password: str, log_n: int) -> str:
    """NIP-49: nostr-sdk's ``ncryptsec`` of a key (key security: not tracked)."""
    secret = ns.SecretKey.parse(sec_hex)
    encrypted = ns.EncryptedSecretKey(secret, password, log_n, ns.KeySecurity.UNKNOWN)
    return str(encrypted.to_bech32())


def sdk_ncryptsec_decrypt(ncryptsec: str, password: str) -> str:
    """NIP-49: the hex secret key nostr-sdk reads from an ``ncryptsec``."""
    return str(ns.EncryptedSecretKey.from_bech32(ncryptsec).decrypt(password).to_hex())
