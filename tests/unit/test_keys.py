"""Keys: hex and NIP-19 forms, BIP-340 signing, and refusals of malformed keys."""

from __future__ import annotations

import pytest

from adapters.nostr import bech32
from adapters.nostr.errors import InvalidKey
from adapters.nostr.keys import PublicKey, SecretKey, verify_schnorr

# BIP-340 test vector 0.
VECTOR0_SECRET = "00" * 31 + "03"
VECTOR0_PUBLIC = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
VECTOR0_SIG = (
    "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca8215"
    "25f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0"
)
# NIP-AP's pinned test key.
ONE = "00" * 31 + "01"
ONE_PUBLIC = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_bip340_vector_0_signs_with_the_pinned_prefix_and_verifies() -> None:
    key = SecretKey.from_hex(VECTOR0_SECRET)
    sig = key.sign_schnorr(bytes(32), aux=bytes(32))
    assert key.public_key.hex == VECTOR0_PUBLIC
    assert sig.hex().startswith("e907831f80")
    assert sig.hex() == VECTOR0_SIG
    assert verify_schnorr(key.public_key.bytes, bytes(32), sig)


def test_zero_aux_is_not_the_same_as_fresh_aux() -> None:
    key = SecretKey.from_hex(VECTOR0_SECRET)
    assert key.sign_schnorr(bytes(32)).hex() != VECTOR0_SIG


def test_a_signature_does_not_verify_for_another_message_or_key() -> None:
    key = SecretKey.from_hex(VECTOR0_SECRET)
    sig = key.sign_schnorr(bytes(32), aux=bytes(32))
    assert not verify_schnorr(key.public_key.bytes, b"\x01" + bytes(31), sig)
    assert not verify_schnorr(SecretKey.from_hex(ONE).public_key.bytes, bytes(32), sig)
    assert not verify_schnorr(key.public_key.bytes, bytes(32), sig[:63])


def test_the_nip_ap_test_key_has_the_generator_as_public_key() -> None:
    assert SecretKey.from_hex(ONE).public_key.hex == ONE_PUBLIC


def test_hex_keys_round_trip_and_accept_uppercase() -> None:
    key = SecretKey.generate()
    assert SecretKey.from_hex(key.secret_hex()) == key
    assert SecretKey.from_hex(key.secret_hex().upper()) == key
    assert PublicKey.from_hex(key.public_key.hex) == key.public_key


def test_nsec_and_npub_round_trip() -> None:
    key = SecretKey.generate()
    assert key.nsec().startswith("nsec1")
    assert key.public_key.npub().startswith("npub1")
    assert SecretKey.parse(key.nsec()) == key
    assert SecretKey.parse(f"  {key.nsec()}\n") == key
    assert PublicKey.parse(key.public_key.npub()) == key.public_key
    assert PublicKey.parse(key.public_key.hex) == key.public_key


def test_the_generator_key_has_its_well_known_npub() -> None:
    npub = PublicKey.from_hex(ONE_PUBLIC).npub()
    assert npub == "npub10xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqpkge6d"


def test_a_secret_key_never_shows_in_its_repr() -> None:
    key = SecretKey.generate()
    for text in (repr(key), str(key), f"{key}"):
        assert key.secret_hex() not in text
        assert "hidden" in text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", "64 hex characters"),
        ("zz" * 32, "64 hex characters"),
        ("00" * 33, "64 hex characters"),
        ("00" * 32, "zero or not below the secp256k1 group order"),
        (f"{SECP256K1_ORDER:064x}", "zero or not below the secp256k1 group order"),
    ],
)
def test_a_malformed_secret_key_is_refused_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(InvalidKey, match=fragment):
        SecretKey.from_hex(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("12" * 31, "64 hex characters"),
        ("g" * 64, "64 hex characters"),
        ("00" * 31 + "05", "not the x coordinate of a secp256k1 point"),
        ("ff" * 32, "not the x coordinate of a secp256k1 point"),
    ],
)
def test_a_malformed_public_key_is_refused_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(InvalidKey, match=fragment):
        PublicKey.from_hex(text)


def test_raw_keys_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(InvalidKey, match="32 bytes, got 31"):
        SecretKey(bytes(31))
    with pytest.raises(InvalidKey, match="32 bytes, got 33"):
        PublicKey(bytes(33))


def test_an_npub_is_not_accepted_as_an_nsec() -> None:
    npub = SecretKey.generate().public_key.npub()
    with pytest.raises(InvalidKey, match="expected prefix 'nsec'"):
        SecretKey.from_nsec(npub)


def test_a_bech32_key_with_a_bad_checksum_is_refused() -> None:
    nsec = SecretKey.generate().nsec()
    broken = nsec[:-1] + ("q" if nsec[-1] != "q" else "p")
    with pytest.raises(InvalidKey, match="checksum"):
        SecretKey.parse(broken)


def test_a_mixed_case_bech32_key_is_refused() -> None:
    npub = SecretKey.generate().public_key.npub()
    with pytest.raises(InvalidKey, match="mixed case"):
        PublicKey.parse("npub1" + npub[5:].upper())


def test_an_uppercase_bech32_key_is_accepted() -> None:
    key = SecretKey.generate()
    assert PublicKey.from_npub(key.public_key.npub().upper()) == key.public_key


def test_a_bech32_payload_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(bech32.Bech32Error, match="31 bytes"):
        bech32.decode("npub", bech32.encode("npub", bytes(31)))


def test_ecdh_is_symmetric() -> None:
    a, b = SecretKey.generate(), SecretKey.generate()
    assert a.ecdh_x(b.public_key) == b.ecdh_x(a.public_key)
