"""The cached NIP-44 conversation key agrees with the plain functions and hides itself."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr import nip44
from adapters.nostr.errors import DecryptionError
from adapters.nostr.keys import SecretKey
from tests.support.examples import examples

KEY = bytes(range(32))


@settings(max_examples=examples(50))
@given(nonce=st.binary(min_size=32, max_size=32), key=st.binary(min_size=32, max_size=32))
def test_message_keys_match_a_plain_hkdf_expand(nonce: bytes, key: bytes) -> None:
    t1 = hmac.digest(key, nonce + b"\x01", hashlib.sha256)
    t2 = hmac.digest(key, t1 + nonce + b"\x02", hashlib.sha256)
    t3 = hmac.digest(key, t2 + nonce + b"\x03", hashlib.sha256)
    okm = t1 + t2 + t3
    assert nip44.ConversationKey(key).message_keys(nonce) == (okm[:32], okm[32:44], okm[44:76])


@settings(max_examples=examples(50))
@given(text=st.text(min_size=1), nonce=st.binary(min_size=32, max_size=32))
def test_the_cached_key_encrypts_exactly_like_the_plain_function(text: str, nonce: bytes) -> None:
    cached = nip44.ConversationKey(KEY)
    payload = cached.encrypt(text, nonce)
    assert payload == nip44.encrypt(text, KEY, nonce)
    assert cached.encrypt_padded(nip44.pad(text.encode()), nonce) == payload
    assert nip44.decrypt(payload, KEY) == text
    assert cached.decrypt(payload) == text


def test_a_payload_under_another_key_fails_its_mac() -> None:
    payload = nip44.ConversationKey(KEY).encrypt("hello")
    with pytest.raises(DecryptionError, match="invalid MAC"):
        nip44.ConversationKey(bytes(32)).decrypt(payload)


def test_the_derived_key_is_symmetric_and_equal_by_value() -> None:
    a, b = SecretKey.generate(), SecretKey.generate()
    assert nip44.ConversationKey.derive(a, b.public_key) == nip44.ConversationKey.derive(
        b, a.public_key
    )
    assert nip44.ConversationKey(KEY) != nip44.ConversationKey(bytes(32))
    assert hash(nip44.ConversationKey(KEY)) == hash(nip44.ConversationKey(bytes(KEY)))


def test_the_key_never_shows_in_repr_or_str() -> None:
    key = nip44.ConversationKey(KEY)
    assert KEY.hex() not in repr(key)
    assert KEY.hex() not in str(key)


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        nip44.ConversationKey(bytes(31))
    with pytest.raises(ValueError, match="32 bytes"):
        nip44.ConversationKey(KEY).message_keys(bytes(31))
