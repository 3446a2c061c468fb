"""The signer port's key-holding implementation, and the NIP-42 AUTH event made through it."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from adapters.nostr.event import UnsignedEvent, sign_event, verify
from adapters.nostr.keys import SecretKey, verify_schnorr
from adapters.nostr.nip42 import AUTH_KIND, auth_event
from adapters.nostr.signer import KeySigner
from adapters.ports import Signer

KEY = SecretKey.from_hex("7f" * 32)
SIGNER: Signer = KeySigner(KEY)

TAGS = st.lists(st.lists(st.text(max_size=8), min_size=1, max_size=3), max_size=4)


@given(st.integers(0, 2**32), st.integers(0, 65535), TAGS, st.text(max_size=64))
def test_an_event_signed_through_the_port_is_the_one_the_key_signs_and_verifies(
    created_at: int, kind: int, tags: list[list[str]], content: str
) -> None:
    aux = bytes(32)
    event = SIGNER.sign(UnsignedEvent(created_at, kind, tags, content), aux=aux)
    verify(event)
    assert event.pubkey == KEY.public_key.hex
    direct = sign_event(KEY, created_at=created_at, kind=kind, tags=tags, content=content, aux=aux)
    assert event == direct


def test_a_digest_signed_through_the_port_verifies_under_the_identitys_key() -> None:
    digest = hashlib.sha256(b"nostr:agent-auth:example").digest()
    signature = SIGNER.sign_digest(digest)
    assert verify_schnorr(KEY.public_key.bytes, digest, signature)


def test_a_signer_never_shows_its_secret() -> None:
    shown = f"{SIGNER!r} {SIGNER!s}"
    assert KEY.secret_hex() not in shown
    assert KEY.nsec() not in shown
    assert KEY.public_key.hex in shown
    public = [name for name in dir(SIGNER) if not name.startswith("_")]
    assert sorted(public) == ["public_key", "sign", "sign_digest"]


def test_the_nip42_auth_event_names_the_relay_and_the_challenge_and_is_signed_by_the_signer() -> (
    None
):
    event = auth_event(SIGNER, "wss://relay.example.com", "c" * 64, 1_700_000_000)
    verify(event)
    assert event.kind == AUTH_KIND == 22242
    assert event.pubkey == KEY.public_key.hex
    assert event.tags == (("relay", "wss://relay.example.com"), ("challenge", "c" * 64))
    assert event.content == ""
