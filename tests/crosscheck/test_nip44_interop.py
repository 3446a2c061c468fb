"""NIP-44 v2 against rust-nostr: each side decrypts what the other encrypts."""

from __future__ import annotations

import base64

import nostr_sdk as ns
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.nostr import nip44
from adapters.nostr.errors import DecryptionError
from adapters.nostr.keys import SecretKey
from tests.crosscheck.strategies import awkward_text, control_chars, secret_keys
from tests.support.examples import examples
from tests.support.sdk import sdk_nip44_decrypt, sdk_nip44_encrypt

PROPERTY = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
plaintexts = st.one_of(awkward_text(min_size=1), st.text(control_chars, min_size=1))


@PROPERTY
@given(sender=secret_keys, receiver=secret_keys, text=plaintexts)
def test_nostr_sdk_decrypts_our_payloads(sender: SecretKey, receiver: SecretKey, text: str) -> None:
    payload = nip44.ConversationKey.derive(sender, receiver.public_key).encrypt(text)
    assert sdk_nip44_decrypt(receiver.secret_hex(), sender.public_key.hex, payload) == text
    assert sdk_nip44_decrypt(sender.secret_hex(), receiver.public_key.hex, payload) == text


@PROPERTY
@given(sender=secret_keys, receiver=secret_keys, text=plaintexts)
def test_we_decrypt_nostr_sdk_payloads(sender: SecretKey, receiver: SecretKey, text: str) -> None:
    payload = sdk_nip44_encrypt(sender.secret_hex(), receiver.public_key.hex, text)
    assert nip44.ConversationKey.derive(receiver, sender.public_key).decrypt(payload) == text
    assert nip44.decrypt(payload, nip44.conversation_key(sender, receiver.public_key)) == text


def _text_of_size(size: int) -> str:
    text = "é" * (size // 2) + "x" * (size % 2)
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("size", [1, 32, 33, 65_408, 65_409, 65_535])
def test_nostr_sdk_decrypts_our_payloads_at_the_padding_edges(size: int) -> None:
    a, b = SecretKey.generate(), SecretKey.generate()
    text = _text_of_size(size)
    ours = nip44.ConversationKey.derive(a, b.public_key).encrypt(text)
    assert sdk_nip44_decrypt(b.secret_hex(), a.public_key.hex, ours) == text


# rust-nostr 0.45 refuses to *encrypt* more than 65,408 bytes ("message too
# long"), though NIP-44 allows 65,535 and it decrypts them; a full-size engram
# is therefore readable by it, but it could not have written one.
@pytest.mark.parametrize("size", [1, 32, 33, 65_408])
def test_we_decrypt_nostr_sdk_payloads_at_the_padding_edges(size: int) -> None:
    a, b = SecretKey.generate(), SecretKey.generate()
    text = _text_of_size(size)
    theirs = sdk_nip44_encrypt(a.secret_hex(), b.public_key.hex, text)
    assert nip44.ConversationKey.derive(b, a.public_key).decrypt(theirs) == text


def test_a_payload_tampered_by_one_bit_is_refused_by_both() -> None:
    a, b = SecretKey.generate(), SecretKey.generate()
    payload = sdk_nip44_encrypt(a.secret_hex(), b.public_key.hex, "hello")
    raw = bytearray(base64.b64decode(payload))
    raw[40] ^= 1
    tampered = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionError, match="invalid MAC"):
        nip44.ConversationKey.derive(b, a.public_key).decrypt(tampered)
    with pytest.raises(ns.NostrSdkError):
        sdk_nip44_decrypt(b.secret_hex(), a.public_key.hex, tampered)
