"""The nostr-sdk wrappers in tests/support/sdk.py do what their names promise.

They are the independent oracle for cross-implementation tests, so they are checked
against published vectors and against real relays, never against fleetsync itself.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nostr_sdk
import pytest

from tests.support.sdk import (
    sdk_fetch_events,
    sdk_hex_from_bech32,
    sdk_keys,
    sdk_nip44_decrypt,
    sdk_nip44_encrypt,
    sdk_npub,
    sdk_nsec,
    sdk_public_key,
    sdk_publish,
    sdk_sign_event,
    sdk_verify_event_json,
)

VECTORS_FILE = Path(__file__).parent.parent / "vectors" / "nip44.vectors.json"


def _nip44_vectors() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text())["v2"]["valid"][
        "encrypt_decrypt"
    ]
    return cases


def test_sdk_nip44_roundtrips_between_two_key_pairs() -> None:
    alice_sec, alice_pub = sdk_keys()
    bob_sec, bob_pub = sdk_keys()
    payload = sdk_nip44_encrypt(alice_sec, bob_pub, "persona ✓ engram")
    assert sdk_nip44_decrypt(bob_sec, alice_pub, payload) == "persona ✓ engram"


@pytest.mark.parametrize("case", _nip44_vectors()[:3])
def test_sdk_nip44_decrypts_the_official_vectors(case: dict[str, str]) -> None:
    sender_pub = sdk_public_key(case["sec1"])
    assert sdk_nip44_decrypt(case["sec2"], sender_pub, case["payload"]) == case["plaintext"]


def test_sdk_nip44_decrypt_refuses_a_tampered_payload() -> None:
    alice_sec, alice_pub = sdk_keys()
    bob_sec, bob_pub = sdk_keys()
    payload = sdk_nip44_encrypt(alice_sec, bob_pub, "secret")
    tampered = payload[:-8] + ("A" if payload[-8] != "A" else "B") + payload[-7:]
    with pytest.raises(nostr_sdk.NostrSdkError):
        sdk_nip44_decrypt(bob_sec, alice_pub, tampered)


def test_sdk_signed_event_keeps_exact_tags_content_and_created_at_and_verifies() -> None:
    sec, pub = sdk_keys()
    tags = [["d", "persona"], ["p", "not-hex"], ["e", "x", "", "root"], ["single"]]
    event = json.loads(sdk_sign_event(sec, 30174, tags, "body", 1_700_000_000))
    assert event["pubkey"] == pub
    assert event["kind"] == 30174
    assert event["tags"] == tags
    assert event["content"] == "body"
    assert event["created_at"] == 1_700_000_000
    assert sdk_verify_event_json(json.dumps(event))


def test_sdk_verify_refuses_a_bad_signature_a_tampered_body_and_garbage() -> None:
    sec, _ = sdk_keys()
    event = json.loads(sdk_sign_event(sec, 1, [], "body", 1_700_000_000))
    forged = {**event, "sig": "00" * 64}
    tampered = {**event, "content": "other body"}
    assert not sdk_verify_event_json(json.dumps(forged))
    assert not sdk_verify_event_json(json.dumps(tampered))
    assert not sdk_verify_event_json("{}")
    assert not sdk_verify_event_json("not json")


def test_sdk_bech32_matches_the_nip19_examples() -> None:
    pub = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
    sec = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
    assert sdk_npub(pub) == "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
    assert sdk_nsec(sec) == "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
    assert sdk_hex_from_bech32(sdk_npub(pub)) == pub
    assert sdk_hex_from_bech32(sdk_nsec(sec)) == sec


@pytest.mark.integration
def test_sdk_publish_then_fetch_returns_the_same_event(any_relay_url: str) -> None:
    sec, pub = sdk_keys()
    event = sdk_sign_event(sec, 30174, [["d", "persona"]], "v1", int(time.time()))
    result = sdk_publish(any_relay_url, event)
    assert result.accepted
    assert result.event_id == json.loads(event)["id"]
    fetched = sdk_fetch_events(any_relay_url, {"kinds": [30174], "authors": [pub]}, timeout=5)
    assert [json.loads(e) for e in fetched] == [json.loads(event)]


@pytest.mark.integration
def test_sdk_publish_reports_nostr_relays_duplicate_refusal(nostr_relay_url: str) -> None:
    sec, _ = sdk_keys()
    event = sdk_sign_event(sec, 1, [], "twice", int(time.time()))
    sdk_publish(nostr_relay_url, event)
    again = sdk_publish(nostr_relay_url, event)
    assert not again.accepted
    assert again.message == "duplicate: exists"
