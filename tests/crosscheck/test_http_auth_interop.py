"""NIP-42, NIP-98 and NIP-OA against independent implementations: rust-nostr and the buzz
double."""

from __future__ import annotations

import base64
import hashlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.nostr.keys import SecretKey
from adapters.nostr.nip42 import auth_event
from adapters.nostr.nip98 import authorization_header, http_auth_event
from adapters.nostr.nip_oa import Attestation, mint
from adapters.nostr.signer import KeySigner
from tests.crosscheck.strategies import secret_keys
from tests.support.buzz_relay import OaInvalid, auth_tag_of, mint_oa_tag, verify_oa_tag
from tests.support.sdk import sdk_read_event

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
bodies = st.binary(max_size=2048)
urls = st.sampled_from(
    ["http://127.0.0.1:7000/events", "https://relay.example.com/query", "http://[::1]:80/count"]
)


@PROPERTY
@given(secret=secret_keys, url=urls, body=bodies, created_at=st.integers(0, 2**32))
def test_rust_nostr_reads_our_nip98_event_with_the_tags_a_bridge_checks(
    secret: SecretKey, url: str, body: bytes, created_at: int
) -> None:
    header = authorization_header(KeySigner(secret), url, "post", body, created_at=created_at)
    assert header.startswith("Nostr ")
    event = sdk_read_event(base64.b64decode(header[6:], validate=True).decode("utf-8"))
    assert event is not None, "nostr-sdk did not verify the NIP-98 event"
    assert event.kind == 27235
    assert event.content == ""
    assert event.pubkey == secret.public_key.hex
    assert event.created_at == created_at
    names = [tag[0] for tag in event.tags]
    assert names == ["u", "method", "payload", "nonce"]
    assert event.tags[0] == ["u", url]
    assert event.tags[1] == ["method", "POST"]
    assert event.tags[2] == ["payload", hashlib.sha256(body).hexdigest()]


def test_two_nip98_events_for_the_same_request_in_the_same_second_differ() -> None:
    secret = SecretKey.generate()
    first = http_auth_event(KeySigner(secret), "http://h/events", "POST", b"{}", created_at=1)
    second = http_auth_event(KeySigner(secret), "http://h/events", "POST", b"{}", created_at=1)
    assert first.id != second.id


@PROPERTY
@given(
    owner=secret_keys,
    agent=secret_keys,
    conditions=st.sampled_from(
        ["", "kind=22242", "created_at<4294967295", "kind=27235&created_at>0"]
    ),
)
def test_the_buzz_double_verifies_our_attestations_and_we_verify_its(
    owner: SecretKey, agent: SecretKey, conditions: str
) -> None:
    if owner.public_key.hex == agent.public_key.hex:
        return  # k and n - k share an x-only key: an agent attesting itself
    ours = mint(KeySigner(owner), agent.public_key.hex, conditions)
    assert verify_oa_tag(ours.to_json(), agent.public_key.hex, 1) == owner.public_key.hex
    theirs = Attestation.from_tag(mint_oa_tag(owner, agent.public_key.hex, conditions))
    theirs.verify(agent.public_key.hex)
    stranger = SecretKey.generate().public_key.hex
    try:
        verify_oa_tag(ours.to_json(), stranger, 1)
    except OaInvalid:
        pass
    else:
        raise AssertionError("the double accepted an attestation for another agent")


def test_the_compact_json_is_what_buzz_stores_as_auth_tag() -> None:
    owner, agent = SecretKey.generate(), SecretKey.generate()
    attestation = mint(KeySigner(owner), agent.public_key.hex)
    assert attestation.to_json() == json.dumps(list(attestation.tag()), separators=(",", ":"))


@PROPERTY
@given(
    owner=secret_keys,
    agent=secret_keys,
    relay=st.sampled_from(["ws://127.0.0.1:7000", "wss://relay.example.com", "ws://[::1]:80"]),
    challenge=st.text(min_size=1, max_size=80),
    created_at=st.integers(0, 2**32),
)
def test_rust_nostr_reads_our_nip42_auth_event_carrying_the_owners_attestation(
    owner: SecretKey, agent: SecretKey, relay: str, challenge: str, created_at: int
) -> None:
    if owner.public_key.hex == agent.public_key.hex:
        return  # k and n - k share an x-only key: an agent attesting itself
    tag = mint(KeySigner(owner), agent.public_key.hex).tag()
    signed = auth_event(KeySigner(agent), relay, challenge, created_at, tag)
    event = sdk_read_event(signed.to_json())
    assert event is not None, "nostr-sdk did not verify the NIP-42 AUTH event"
    assert event.kind == 22242
    assert event.content == ""
    assert event.pubkey == agent.public_key.hex
    assert event.created_at == created_at
    # buzz's agents send relay, challenge, auth (reference §1.2), and buzz reads the
    # one auth tag back as the JSON text it verifies: the double's extractor does too.
    assert event.tags == [["relay", relay], ["challenge", challenge], list(tag)]
    extracted = auth_tag_of({"tags": event.tags})
    assert extracted is not None
    assert verify_oa_tag(extracted, agent.public_key.hex, created_at) == owner.public_key.hex


def test_an_auth_event_without_an_attestation_has_only_relay_and_challenge() -> None:
    signed = auth_event(KeySigner(SecretKey.generate()), "ws://h", "c", 1)
    assert [list(t) for t in signed.tags] == [["relay", "ws://h"], ["challenge", "c"]]
