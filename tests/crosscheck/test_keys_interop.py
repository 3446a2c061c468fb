"""Keys against rust-nostr: the same public key and the same NIP-19 strings."""

from __future__ import annotations

from hypothesis import given, settings

from adapters.nostr.keys import PublicKey, SecretKey
from tests.crosscheck.strategies import secret_keys
from tests.support.examples import examples
from tests.support.sdk import (
    sdk_hex_from_bech32,
    sdk_keys,
    sdk_npub,
    sdk_nsec,
    sdk_public_key,
)


@settings(max_examples=examples(50), deadline=None)
@given(key=secret_keys)
def test_public_keys_and_nip19_strings_match_nostr_sdk(key: SecretKey) -> None:
    assert sdk_public_key(key.secret_hex()) == key.public_key.hex
    assert sdk_nsec(key.secret_hex()) == key.nsec()
    assert sdk_npub(key.public_key.hex) == key.public_key.npub()
    assert sdk_hex_from_bech32(key.nsec()) == key.secret_hex()
    assert sdk_hex_from_bech32(key.public_key.npub()) == key.public_key.hex


def test_we_read_keys_generated_by_nostr_sdk_in_every_form() -> None:
    secret_hex, public_hex = sdk_keys()
    key = SecretKey.parse(sdk_nsec(secret_hex))
    assert key == SecretKey.parse(secret_hex)
    assert key.public_key == PublicKey.parse(sdk_npub(public_hex)) == PublicKey.parse(public_hex)
