"""NIP-49 encrypted keys: the spec's test vector, round trips, and every refusal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr import bech32, nip49
from adapters.nostr.keys import SecretKey
from tests.crosscheck.strategies import secret_keys
from tests.support.examples import examples

# NIP-49, "Test Data": decrypted with password 'nostr' (log_n 16).
SPEC_NCRYPTSEC = (
    "ncryptsec1qgg9947rlpvqu76pj5ecreduf9jxhselq2nae2kghhvd5g7dgjtcxfqtd67p9m0w57lspw8gsq6yphnm"
    "8623nsl8xn9j4jdzz84zm3frztj3z7s35vpzmqf6ksu8r89qk5z2zxfmu5gv8th8wclt0h4p"
)
SPEC_SECRET = "3501454135014541350145413501453fefb02227e449e57cf4d3a3ce05378683"
FAST = 4  # log_n for tests that are not about the work factor


def test_the_spec_vector_decrypts_to_the_spec_key() -> None:
    key, security = nip49.decrypt(SPEC_NCRYPTSEC, "nostr")
    assert key.secret_hex() == SPEC_SECRET
    assert security == nip49.INSECURE


def test_the_spec_vector_refuses_another_password() -> None:
    with pytest.raises(nip49.NcryptsecError, match="wrong password"):
        nip49.decrypt(SPEC_NCRYPTSEC, "nostr ")


def test_an_encrypted_key_is_91_bytes_under_the_ncryptsec_prefix() -> None:
    text = nip49.encrypt(SecretKey.generate(), "pw", log_n=FAST)
    assert text.startswith("ncryptsec1")
    payload = bech32.decode("ncryptsec", text, size=91)
    assert payload[0] == 0x02
    assert payload[1] == FAST


def test_the_same_inputs_with_the_same_salt_and_nonce_give_the_spec_layout() -> None:
    key = SecretKey.from_hex(SPEC_SECRET)
    text = nip49.encrypt(
        key, "nostr", log_n=FAST, key_security=nip49.SECURE, salt=b"s" * 16, nonce=b"n" * 24
    )
    payload = bech32.decode("ncryptsec", text, size=91)
    assert payload[2:18] == b"s" * 16
    assert payload[18:42] == b"n" * 24
    assert payload[42] == nip49.SECURE
    assert len(payload[43:]) == 48  # 32 key bytes and a 16-byte tag


@settings(max_examples=examples(25), deadline=None)
@given(key=secret_keys, password=st.text(max_size=40), security=st.sampled_from([0, 1, 2]))
def test_any_key_and_password_round_trip(key: SecretKey, password: str, security: int) -> None:
    text = nip49.encrypt(key, password, log_n=FAST, key_security=security)
    assert nip49.decrypt(text, password) == (key, security)


def test_passwords_are_compared_after_nfkc_normalisation() -> None:
    key = SecretKey.generate()
    # "ﬁ" (U+FB01) is "fi" under NFKC; an "é" typed as e + combining accent is one "é".
    text = nip49.encrypt(key, "\ufb01le caf\u00e9", log_n=FAST)
    assert nip49.decrypt(text, "file cafe\u0301")[0] == key


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t[:-1] + ("q" if t[-1] != "q" else "p"), "checksum"),
        (lambda t: "nsec1" + t[len("ncryptsec1") :], "prefix"),
        (lambda t: t[:60], "not an ncryptsec"),
    ],
)
def test_damaged_strings_are_refused_before_any_work(mangle: object, message: str) -> None:
    text = nip49.encrypt(SecretKey.generate(), "pw", log_n=FAST)
    with pytest.raises(nip49.NcryptsecError, match=message):
        nip49.decrypt(mangle(text), "pw")  # type: ignore[operator]


def _with_byte(text: str, index: int, value: int) -> str:
    payload = bytearray(bech32.decode("ncryptsec", text, size=91))
    payload[index] = value
    return bech32.encode("ncryptsec", bytes(payload))


def test_an_unknown_version_is_refused() -> None:
    text = _with_byte(nip49.encrypt(SecretKey.generate(), "pw", log_n=FAST), 0, 0x01)
    with pytest.raises(nip49.NcryptsecError, match="version"):
        nip49.decrypt(text, "pw")


def test_a_work_factor_past_the_bound_is_refused_without_running_scrypt() -> None:
    text = _with_byte(nip49.encrypt(SecretKey.generate(), "pw", log_n=FAST), 1, 40)
    with pytest.raises(nip49.NcryptsecError, match="log_n 40"):
        nip49.decrypt(text, "pw")


def test_a_changed_key_security_byte_fails_authentication() -> None:
    text = nip49.encrypt(SecretKey.generate(), "pw", log_n=FAST, key_security=nip49.SECURE)
    with pytest.raises(nip49.NcryptsecError, match="wrong password"):
        nip49.decrypt(_with_byte(text, 42, nip49.INSECURE), "pw")
