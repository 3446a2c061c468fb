"""NIP-49 against rust-nostr: each side opens what the other sealed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr import nip49
from adapters.nostr.keys import SecretKey
from tests.crosscheck.strategies import secret_keys
from tests.support.examples import examples
from tests.support.sdk import sdk_ncryptsec, sdk_ncryptsec_decrypt

passwords = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=24)


@settings(max_examples=examples(10), deadline=None)
@given(key=secret_keys, password=passwords)
def test_nostr_sdk_opens_our_ncryptsec(key: SecretKey, password: str) -> None:
    text = nip49.encrypt(key, password, log_n=4)
    assert sdk_ncryptsec_decrypt(text, password) == key.secret_hex()


@settings(max_examples=examples(10), deadline=None)
@given(key=secret_keys, password=passwords)
def test_we_open_nostr_sdks_ncryptsec(key: SecretKey, password: str) -> None:
    text = sdk_ncryptsec(key.secret_hex(), password, 4)
    assert nip49.decrypt(text, password)[0] == key


def test_both_sides_normalise_the_password_to_nfkc() -> None:
    key = SecretKey.generate()
    assert sdk_ncryptsec_decrypt(nip49.encrypt(key, "\ufb01", log_n=4), "fi") == key.secret_hex()
    assert nip49.decrypt(sdk_ncryptsec(key.secret_hex(), "\ufb01", 4), "fi")[0] == key
