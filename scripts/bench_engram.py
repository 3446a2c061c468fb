"""Benchmark: sealing a ~1 KB persona engram (NIP-44 encrypt + NIP-01 sign).

Run by ``scripts/bench engram``. Three figures, timed in this one process:

- fleetsync: :func:`adapters.nostr.engram.seal` with the agent's conversation
  key and key pair cached, and the body prepared once (the fleet-update case:
  one body per persona version, sealed for every agent of it). The cached
  conversation key keeps its HMAC pad states, so its HKDF expand costs less
  than the floor's three plain HMACs; the second line seals from the text;
- nostr-sdk (rust-nostr) doing the same work: NIP-44 v2 encryption of the same
  body to the owner, an event with the same kind, tags and time, signed by the
  agent's keys. Its Python API has no conversation-key cache, so every call
  also pays an ECDH: that is the cost a nostr-sdk caller pays;
- the crypto floor: the summed cost of the primitives one seal cannot avoid,
  each timed alone with its inputs ready — BIP-340 signing with a loaded
  libsecp256k1 key pair, SHA-256 of the serialized event, ChaCha20 over the
  padded body and HMAC-SHA256 over nonce and ciphertext (``cryptography`` and
  ``hmac``, as a straightforward implementation calls them), and the HKDF
  expand (three HMAC-SHA256).

Every figure is the best of several repeats (the least disturbed run).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import timeit
from collections.abc import Callable
from typing import Any

import nostr_sdk as ns
from coincurve._libsecp256k1 import ffi, lib
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from adapters.nostr import nip44
from adapters.nostr.engram import ENGRAM_KIND, Conversation, prepare_body, seal
from adapters.nostr.event import Event, serialize_for_id
from adapters.nostr.keys import _CTX, SecretKey
from domain.engram_body import PersonaEngram, Provenance, encode_persona_body
from domain.persona import PersonaContent

CREATED_AT = 1_700_000_000


def persona_body(owner_hex: str) -> str:
    """A realistic persona engram body of about 1 KB."""
    content = PersonaContent(
        display_name="Release Shepherd",
        system_prompt=(
            "You are the release shepherd for the platform team. Watch the release "
            "branches, summarise what changed since the last tag, chase missing "
            "changelog entries, and never merge on a red build. When unsure, ask the "
            "owner in the team channel and wait; précis first, détails après. Keep "
            "the release notes short, link every pull request, and name who approved it."
        ),
        avatar_url="https://example.com/avatars/release-shepherd.png",
        runtime="goose",
        model="claude-opus-4",
        provider="anthropic",
        name_pool=("Ada", "Brendan", "Chidi", "Dagny"),
    )
    engram = PersonaEngram(
        content=content,
        provenance=Provenance(owner_hex, "release-shepherd", content.digest(), "ab" * 32),
        env_vars={"GITHUB_TOKEN": "ghp_" + "x" * 36, "SLACK_WEBHOOK": "https://hooks/" + "y" * 40},
    )
    return encode_persona_body(engram)


def best_per_call(stmt: Callable[[], Any], number: int, repeat: int) -> float:
    """Seconds per call of the least disturbed of ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench engram", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best is kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply iteration counts")
    args = parser.parse_args(argv)
    repeat = args.repeat

    def n(base: int) -> int:
        return max(1, int(base * args.scale))

    agent = SecretKey.generate()
    owner = SecretKey.generate()
    body = persona_body(owner.public_key.hex)
    body_bytes = body.encode("utf-8")
    padded = nip44.pad(body_bytes)

    # fleetsync: conversation key and key pair cached per agent, body prepared once.
    conversation = Conversation.for_agent(agent, owner.public_key)
    prepared = prepare_body(body)

    def ours() -> Event:
        return seal(agent, conversation, prepared, CREATED_AT)

    sample = ours()
    d_tag = sample.tags[0][1]

    # nostr-sdk: the same work through its public Python API.
    sdk_keys = ns.Keys.parse(agent.secret_hex())
    sdk_secret = sdk_keys.secret_key()
    sdk_owner = ns.PublicKey.parse(owner.public_key.hex)
    sdk_tags = [ns.Tag.parse(["d", d_tag]), ns.Tag.parse(["p", owner.public_key.hex])]
    sdk_time = ns.Timestamp.from_secs(CREATED_AT)
    sdk_kind = ns.Kind(ENGRAM_KIND)
    v2 = ns.Nip44Version.V2

    def sdk() -> ns.Event:
        content = ns.nip44_encrypt(sdk_secret, sdk_owner, body, v2)
        builder = ns.EventBuilder(sdk_kind, content).tags(sdk_tags)
        return builder.custom_created_at(sdk_time).finalize(sdk_keys)

    _check_agreement(sample, sdk(), conversation, owner, body)

    # The floor's primitives, each with its inputs built beforehand.
    keypair = ffi.new("secp256k1_keypair *")
    assert lib.secp256k1_keypair_create(_CTX, keypair, agent.secret_bytes())
    sig_out = ffi.new("unsigned char[64]")
    msg32, aux32 = os.urandom(32), os.urandom(32)
    serialized = serialize_for_id(
        sample.pubkey, sample.created_at, sample.kind, sample.tags, sample.content
    )
    conv_key = conversation.key.secret_bytes()
    nonce = os.urandom(32)
    chacha_key, chacha_nonce, hmac_key = nip44.message_keys(conv_key, nonce)
    nonce16 = b"\x00\x00\x00\x00" + chacha_nonce
    nonce_and_ciphertext = nonce + padded
    hkdf_1 = nonce + b"\x01"
    hkdf_2 = os.urandom(32) + nonce + b"\x02"
    hkdf_3 = os.urandom(32) + nonce + b"\x03"
    sha256 = hashlib.sha256

    def sign() -> int:
        return int(lib.secp256k1_schnorrsig_sign32(_CTX, sig_out, msg32, keypair, aux32))

    def event_hash() -> bytes:
        return sha256(serialized).digest()

    def chacha() -> bytes:
        cipher = Cipher(algorithms.ChaCha20(chacha_key, nonce16), mode=None)
        return cipher.encryptor().update(padded)

    def mac() -> bytes:
        return hmac.digest(hmac_key, nonce_and_ciphertext, sha256)

    def hkdf_expand() -> bytes:
        hmac.digest(conv_key, hkdf_1, sha256)
        hmac.digest(conv_key, hkdf_2, sha256)
        return hmac.digest(conv_key, hkdf_3, sha256)

    floor_parts = {
        "sign": best_per_call(sign, n(4000), repeat),
        "sha256": best_per_call(event_hash, n(10000), repeat),
        "chacha20": best_per_call(chacha, n(10000), repeat),
        "hmac": best_per_call(mac, n(10000), repeat),
        "hkdf": best_per_call(hkdf_expand, n(5000), repeat),
    }
    floor = sum(floor_parts.values())
    t_ours = best_per_call(ours, n(4000), repeat)
    t_unprepared = best_per_call(
        lambda: seal(agent, conversation, body, CREATED_AT), n(1000), repeat
    )
    t_sdk = best_per_call(sdk, n(300), repeat)

    def line(name: str, seconds: float, note: str = "") -> str:
        return f"  {name:<22}{1 / seconds:>9,.0f} seals/s  {seconds * 1e6:7.1f} µs{note}"

    parts = " + ".join(f"{k} {v * 1e6:.1f}" for k, v in floor_parts.items())
    print(
        f"engram seal: {len(body_bytes):,}-byte persona engram body "
        f"({len(padded):,} bytes padded), {len(sample.to_json()):,}-byte event, "
        f"best of {repeat}"
    )
    print(line("fleetsync", t_ours, "  (conversation key, key pair and padded body cached)"))
    print(line("fleetsync, body as str", t_unprepared, "  (body checked and padded per seal)"))
    print(line("nostr-sdk", t_sdk, "  (no conversation-key cache; uniffi copies strings)"))
    print(line("crypto floor", floor, f"  = {parts}"))
    print(f"  ours/floor {floor / t_ours:.2f}   ours/sdk {t_sdk / t_ours:.2f}")
    return 0


def _check_agreement(
    ours: Event, theirs: ns.Event, conversation: Conversation, owner: SecretKey, body: str
) -> None:
    """Refuse to time anything unless both sides produce events the other accepts."""
    parsed = ns.Event.from_json(ours.to_json())
    if not parsed.verify():
        raise SystemExit("nostr-sdk does not verify our event: not benchmarking a broken seal")
    agent_pk = ns.PublicKey.parse(conversation.agent.hex)
    owner_sk = ns.SecretKey.parse(owner.secret_hex())
    if ns.nip44_decrypt(owner_sk, agent_pk, ours.content) != body:
        raise SystemExit("nostr-sdk does not decrypt our payload to the body")
    if conversation.key.decrypt(theirs.content()) != body:
        raise SystemExit("we do not decrypt nostr-sdk's payload to the body")
    mine = Event.from_json(theirs.as_json())
    if [list(t) for t in mine.tags] != [list(t) for t in ours.tags]:
        raise SystemExit("nostr-sdk's event does not carry the same tags")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
