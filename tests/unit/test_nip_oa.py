"""NIP-OA owner attestations: the spec's test vector, its invalid vectors, and the grammar."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip_oa import (
    Attestation,
    InvalidAttestation,
    mint,
    parse_conditions,
    signed_message,
    verify_event,
)
from adapters.nostr.signer import KeySigner

OWNER = SecretKey.from_hex("00" * 31 + "01")
AGENT = SecretKey.from_hex("00" * 31 + "02")
OWNER_HEX = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
AGENT_HEX = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
CONDITIONS = "kind=1&created_at<1713957000"
VECTOR_SIG = (
    "8b7df2575caf0a108374f8471722b233c53f9ff827a8b0f91861966c3b9dd5cb"
    "2e189eae9f49d72187674c2f5bd244145e10ff86c9f257ffe65a1ee5f108b369"
)
VECTOR_TAG_BYTES_HEX = (
    "5b2261757468222c2237396265363637656639646362626163353561303632393563653837306230"
    "373032396266636462326463653238643935396632383135623136663831373938222c226b696e64"
    "3d3126637265617465645f61743c31373133393537303030222c2238623764663235373563616630"
    "6131303833373466383437313732326232333363353366396666383237613862306639313836313936"
    "3663336239646435636232653138396561653966343964373231383736373463326635626432343431"
    "343565313066663836633966323537666665363561316565356631303862333639225d"
)
SIGNED_EVENT = {
    "id": "d892a65e7677e0554ebb70ee16deeb6a0727dba46450fb4bc001291d7bff971b",
    "pubkey": AGENT_HEX,
    "created_at": 1713956400,
    "kind": 1,
    "tags": [["auth", OWNER_HEX, CONDITIONS, VECTOR_SIG]],
    "content": "owner-attested agent event",
    "sig": "7fd38992b70b5e9e113644e51b4c8ee2227f3bdd402b1855f8786c0600394ab3"
    "ec2621742a7bad0b0000b93d4d1ae6e39525f286a3c1029f43f46c3359a6c76f",
}


def test_the_spec_vector_keys_and_signed_message_are_what_the_spec_says() -> None:
    assert OWNER.public_key.hex == OWNER_HEX
    assert AGENT.public_key.hex == AGENT_HEX
    assert signed_message(AGENT_HEX, CONDITIONS).hex() == (
        "08cdecd55af4c28d3801fd69615dcf5cc04fab3bc134b38a840bf157197069a6"
    )


def test_the_spec_vector_tag_verifies_and_serialises_to_the_spec_bytes() -> None:
    attestation = Attestation.from_tag(["auth", OWNER_HEX, CONDITIONS, VECTOR_SIG])
    attestation.verify(AGENT_HEX)
    assert attestation.to_json().encode().hex() == VECTOR_TAG_BYTES_HEX
    assert Attestation.from_json(attestation.to_json()) == attestation


def test_the_spec_signed_event_example_carries_a_verified_attestation() -> None:
    event = Event.from_dict(SIGNED_EVENT)
    found = verify_event(event)
    assert found is not None
    assert found.owner == OWNER_HEX


def test_a_minted_attestation_verifies_for_its_agent_only() -> None:
    attestation = mint(KeySigner(OWNER), AGENT_HEX, CONDITIONS)
    attestation.verify(AGENT_HEX)
    assert attestation.owner == OWNER_HEX
    assert attestation.conditions == CONDITIONS
    other = SecretKey.generate().public_key.hex
    with pytest.raises(InvalidAttestation, match="does not verify"):
        attestation.verify(other)


def test_minting_refuses_self_attestation_and_bad_conditions() -> None:
    with pytest.raises(InvalidAttestation, match="self-attestation"):
        mint(KeySigner(OWNER), OWNER_HEX)
    with pytest.raises(InvalidAttestation, match="malformed"):
        mint(KeySigner(OWNER), AGENT_HEX, "kind=01")


def _event_with(tags: list[list[str]], *, secret: SecretKey = AGENT) -> Event:
    return sign_event(secret, created_at=1713956400, kind=1, tags=tags, content="x")


def test_an_event_with_two_auth_tags_has_no_valid_attestation() -> None:
    tag = list(mint(KeySigner(OWNER), AGENT_HEX).tag())
    assert verify_event(_event_with([tag, tag])) is None


@pytest.mark.parametrize(
    "tag",
    [
        ["auth", OWNER_HEX, ""],
        ["auth", OWNER_HEX, "", VECTOR_SIG, "extra"],
    ],
)
def test_an_auth_tag_with_other_than_four_elements_is_rejected(tag: list[str]) -> None:
    with pytest.raises(InvalidAttestation, match="four elements"):
        verify_event(_event_with([tag]))


@pytest.mark.parametrize(
    "conditions",
    [
        "kind=1&",
        "kind=01",
        "&kind=1",
        "kind=1&&kind=2",
        "kind=1 ",
        "Kind=1",
        "kind=65536",
        "created_at<4294967296",
        "created_at=1",
        "kind=-1",
        "kind=１",
    ],
)
def test_malformed_conditions_are_rejected(conditions: str) -> None:
    with pytest.raises(InvalidAttestation):
        parse_conditions(conditions)
    with pytest.raises(InvalidAttestation):
        Attestation.from_tag(["auth", OWNER_HEX, conditions, VECTOR_SIG])


def test_a_self_attestation_on_an_event_is_rejected() -> None:
    tag = ["auth", AGENT_HEX, "", AGENT.sign_schnorr(signed_message(AGENT_HEX, "")).hex()]
    with pytest.raises(InvalidAttestation, match="self-attestation"):
        verify_event(_event_with([tag]))


def test_a_well_formed_tag_on_an_event_with_a_bad_signature_gives_no_provenance() -> None:
    tampered = dict(SIGNED_EVENT, sig=str(SIGNED_EVENT["sig"])[:-1] + "0")
    with pytest.raises(InvalidAttestation, match="not valid"):
        verify_event(Event.from_dict(tampered))
    changed = dict(SIGNED_EVENT, content="changed")
    with pytest.raises(InvalidAttestation, match="not valid"):
        verify_event(Event.from_dict(changed))


def test_every_clause_is_evaluated_against_the_event() -> None:
    tag = list(
        mint(
            KeySigner(OWNER), AGENT_HEX, "kind=1&created_at<1713957000&created_at>1713956000"
        ).tag()
    )
    assert verify_event(_event_with([tag])) is not None
    late = sign_event(AGENT, created_at=1713957000, kind=1, tags=[tag], content="x")
    with pytest.raises(InvalidAttestation, match="conditions"):
        verify_event(late)
    wrong_kind = sign_event(AGENT, created_at=1713956400, kind=7, tags=[tag], content="x")
    with pytest.raises(InvalidAttestation, match="conditions"):
        verify_event(wrong_kind)


def test_uppercase_hex_is_malformed() -> None:
    with pytest.raises(InvalidAttestation, match="owner key"):
        Attestation.from_tag(["auth", OWNER_HEX.upper(), "", VECTOR_SIG])
    with pytest.raises(InvalidAttestation, match="signature"):
        Attestation.from_tag(["auth", OWNER_HEX, "", VECTOR_SIG.upper()])


clauses = st.one_of(
    st.integers(0, 65535).map(lambda n: f"kind={n}"),
    st.integers(0, 4294967295).map(lambda n: f"created_at<{n}"),
    st.integers(0, 4294967295).map(lambda n: f"created_at>{n}"),
)
conditions_strings = st.lists(clauses, max_size=4).map("&".join)


@settings(max_examples=40, deadline=None)
@given(conditions=conditions_strings, flip=st.integers(0, 127))
def test_any_change_to_the_signature_or_conditions_breaks_a_minted_attestation(
    conditions: str, flip: int
) -> None:
    attestation = mint(KeySigner(OWNER), AGENT_HEX, conditions)
    attestation.verify(AGENT_HEX)
    digit = attestation.sig[flip]
    other = "0" if digit != "0" else "1"
    broken = Attestation(
        attestation.owner, conditions, attestation.sig[:flip] + other + attestation.sig[flip + 1 :]
    )
    with pytest.raises(InvalidAttestation):
        broken.verify(AGENT_HEX)
    reordered = "&".join(reversed(conditions.split("&")))
    if reordered != conditions:
        with pytest.raises(InvalidAttestation):
            Attestation(attestation.owner, reordered, attestation.sig).verify(AGENT_HEX)
