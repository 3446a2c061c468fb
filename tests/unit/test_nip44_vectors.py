"""The official NIP-44 v2 test vectors, every case, valid and invalid."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.nostr import nip44
from adapters.nostr.errors import DecryptionError, EncryptionError, InvalidKey
from adapters.nostr.keys import PublicKey, SecretKey

VECTORS_FILE = Path(__file__).parent.parent / "vectors" / "nip44.vectors.json"
VECTORS_SHA256 = "269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040"


def _load() -> dict[str, Any]:
    raw = VECTORS_FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == VECTORS_SHA256, "vector file was altered"
    data: dict[str, Any] = json.loads(raw)["v2"]
    return data


V = _load()


def test_the_vector_file_is_the_official_one() -> None:
    assert hashlib.sha256(VECTORS_FILE.read_bytes()).hexdigest() == VECTORS_SHA256


@pytest.mark.parametrize("case", V["valid"]["get_conversation_key"])
def test_conversation_key_matches_the_vector(case: dict[str, str]) -> None:
    sec = SecretKey.from_hex(case["sec1"])
    pub = PublicKey.from_hex(case["pub2"])
    assert nip44.conversation_key(sec, pub).hex() == case["conversation_key"]


def test_message_keys_match_every_vector() -> None:
    group = V["valid"]["get_message_keys"]
    conv = bytes.fromhex(group["conversation_key"])
    for case in group["keys"]:
        key, nonce, mac_key = nip44.message_keys(conv, bytes.fromhex(case["nonce"]))
        assert (key.hex(), nonce.hex(), mac_key.hex()) == (
            case["chacha_key"],
            case["chacha_nonce"],
            case["hmac_key"],
        )


@pytest.mark.parametrize(("unpadded", "padded"), V["valid"]["calc_padded_len"])
def test_padded_length_matches_the_vector(unpadded: int, padded: int) -> None:
    assert nip44.calc_padded_len(unpadded) == padded


@pytest.mark.parametrize("case", V["valid"]["encrypt_decrypt"])
def test_encrypt_and_decrypt_reproduce_the_vector(case: dict[str, str]) -> None:
    sec1 = SecretKey.from_hex(case["sec1"])
    sec2 = SecretKey.from_hex(case["sec2"])
    conv = nip44.conversation_key(sec1, sec2.public_key)
    assert conv.hex() == case["conversation_key"]
    assert nip44.conversation_key(sec2, sec1.public_key) == conv
    payload = nip44.encrypt(case["plaintext"], conv, bytes.fromhex(case["nonce"]))
    assert payload == case["payload"]
    assert nip44.decrypt(case["payload"], conv) == case["plaintext"]


@pytest.mark.parametrize("case", V["valid"]["encrypt_decrypt_long_msg"])
def test_long_messages_reproduce_the_vector_digests(case: dict[str, Any]) -> None:
    conv = bytes.fromhex(case["conversation_key"])
    plaintext = case["pattern"] * case["repeat"]
    assert hashlib.sha256(plaintext.encode()).hexdigest() == case["plaintext_sha256"]
    payload = nip44.encrypt(plaintext, conv, bytes.fromhex(case["nonce"]))
    assert hashlib.sha256(payload.encode()).hexdigest() == case["payload_sha256"]
    assert nip44.decrypt(payload, conv) == plaintext


@pytest.mark.parametrize("length", V["invalid"]["encrypt_msg_lengths"])
def test_encrypting_a_message_of_invalid_length_is_refused(length: int) -> None:
    with pytest.raises(EncryptionError):
        nip44.encrypt("a" * length, bytes(32))


@pytest.mark.parametrize("case", V["invalid"]["get_conversation_key"])
def test_invalid_keys_for_a_conversation_key_are_refused(case: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        nip44.conversation_key(SecretKey.from_hex(case["sec1"]), PublicKey.from_hex(case["pub2"]))


@pytest.mark.parametrize("case", V["invalid"]["decrypt"], ids=lambda c: c["note"])
def test_invalid_payloads_are_refused(case: dict[str, str]) -> None:
    with pytest.raises(DecryptionError):
        nip44.decrypt(case["payload"], bytes.fromhex(case["conversation_key"]))
