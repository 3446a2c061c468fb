"""NIP-01 event ids: the serialization's edge cases, signing and verification."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.nostr.event import (
    Event,
    EventFault,
    InvalidEvent,
    compute_id,
    serialize_for_id,
    sign_event,
    verify,
    why_invalid,
)
from adapters.nostr.keys import SecretKey

PUB = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
ONE = SecretKey.from_hex("00" * 31 + "01")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plain", b'"plain"'),
        ('quote " here', b'"quote \\" here"'),
        ("back\\slash", b'"back\\\\slash"'),
        ("line\nfeed", b'"line\\nfeed"'),
        ("carriage\rreturn", b'"carriage\\rreturn"'),
        ("tab\there", b'"tab\\there"'),
        ("back\bspace", b'"back\\bspace"'),
        ("form\ffeed", b'"form\\ffeed"'),
        ("nul\x00byte", b'"nul\\u0000byte"'),
        ("unit\x1fsep", b'"unit\\u001fsep"'),
        ("escape\x1bchar", b'"escape\\u001bchar"'),
        ("del\x7fchar", b'"del\x7fchar"'),
        ("a/slash", b'"a/slash"'),
        ("caf\u00e9", b'"caf\xc3\xa9"'),
        ("line\u2028sep", b'"line\xe2\x80\xa8sep"'),
        ("rocket \U0001f680", b'"rocket \xf0\x9f\x9a\x80"'),
        ("", b'""'),
    ],
)
def test_content_is_serialized_with_exactly_the_json_escapes_nip01_requires(
    content: str, expected: bytes
) -> None:
    raw = serialize_for_id(PUB, 1, 1, (), content)
    assert raw == b'[0,"' + PUB.encode() + b'",1,1,[],' + expected + b"]"


def test_serialization_agrees_with_the_nip_ae_reference_recipe() -> None:
    content = 'mixed \x00\x01\x08\t\n\x0b\x0c\r\x1f "\\/ é 日本 \U0001f680 \u2028\x7f'
    tags = (("d", "x\ny"), ("p", PUB, "wss://relay.example/\u00e9"))
    recipe = json.dumps(
        [0, PUB, 1700000000, 30174, [list(t) for t in tags], content],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    assert serialize_for_id(PUB, 1700000000, 30174, tags, content) == recipe


def test_tags_and_large_numbers_are_serialized_compactly() -> None:
    raw = serialize_for_id(PUB, 4102444800, 30175, (("d", "a"), ("alt", "b", "")), "x")
    assert raw == (b'[0,"' + PUB.encode() + b'",4102444800,30175,[["d","a"],["alt","b",""]],"x"]')


def test_the_id_is_the_sha256_of_the_serialization() -> None:
    raw = serialize_for_id(PUB, 1, 1, (), "hi")
    assert compute_id(PUB, 1, 1, (), "hi") == hashlib.sha256(raw).hexdigest()


def test_a_lone_surrogate_cannot_be_serialized() -> None:
    with pytest.raises(InvalidEvent) as info:
        serialize_for_id(PUB, 1, 1, (), "bad \ud800")
    assert info.value.fault is EventFault.MALFORMED


def test_a_signed_event_verifies_and_round_trips_through_json() -> None:
    event = sign_event(ONE, created_at=1700000000, kind=1, tags=[["t", "x"]], content="hé\n")
    verify(event)
    assert why_invalid(event) is None
    again = Event.from_json(event.to_json())
    assert again == event


def test_tampering_with_any_signed_field_is_detected() -> None:
    event = sign_event(ONE, created_at=1700000000, kind=1, tags=[["t", "x"]], content="hello")
    for change in (
        {"content": "hellO"},
        {"created_at": 1700000001},
        {"kind": 2},
        {"tags": (("t", "y"),)},
    ):
        assert why_invalid(dataclasses.replace(event, **change)) is EventFault.BAD_ID
    forged_sig = ("0" if event.sig[0] != "0" else "1") + event.sig[1:]
    assert why_invalid(dataclasses.replace(event, sig=forged_sig)) is EventFault.BAD_SIGNATURE
    with pytest.raises(InvalidEvent, match="does not verify"):
        verify(dataclasses.replace(event, sig=forged_sig))


def test_an_event_signed_by_another_key_under_our_pubkey_fails_its_signature() -> None:
    other = SecretKey.generate()
    event = sign_event(other, created_at=1, kind=1, tags=(), content="x")
    claimed_id = compute_id(PUB, 1, 1, (), "x")
    forged = dataclasses.replace(event, pubkey=PUB, id=claimed_id)
    assert why_invalid(forged) is EventFault.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"id": "AB" * 32}, "id is not 64 lowercase hex"),
        ({"pubkey": "ab" * 31}, "pubkey is not 64 lowercase hex"),
        ({"sig": "ab" * 63}, "sig is not 128 lowercase hex"),
        ({"created_at": -1}, "created_at"),
        ({"created_at": True}, "created_at"),
        ({"created_at": 1.5}, "created_at"),
        ({"kind": 70000}, "kind"),
        ({"content": None}, "content is not a string"),
        ({"tags": [["d", 1]]}, "tags"),
        ({"tags": "d"}, "tags"),
    ],
)
def test_a_wire_event_of_the_wrong_shape_is_refused(
    change: dict[str, object], fragment: str
) -> None:
    event = sign_event(ONE, created_at=1, kind=1, tags=(), content="x").to_dict()
    event.update(change)
    with pytest.raises(InvalidEvent, match=fragment):
        Event.from_dict(event)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="not JSON"):
        Event.from_json("{")


HEX_ALPHABET = set("0123456789abcdef")


HEX_64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
NEAR_HEX = st.text(alphabet="0123456789abcdefABCDEF٣g \n", min_size=62, max_size=66)


@given(HEX_64 | NEAR_HEX | HEX_64.map(lambda h: h[:-1] + "\n"))
def test_an_id_is_accepted_exactly_when_it_is_64_lowercase_hex_digits(candidate: str) -> None:
    event = sign_event(ONE, created_at=1, kind=1, tags=(), content="x").to_dict()
    event["id"] = candidate
    well_formed = len(candidate) == 64 and set(candidate) <= HEX_ALPHABET
    if well_formed:
        assert Event.from_dict(event).id == candidate
    else:
        with pytest.raises(InvalidEvent, match="id is not 64 lowercase hex"):
            Event.from_dict(event)


@given(st.lists(st.lists(st.text(max_size=5) | st.integers(), max_size=3), max_size=4))
def test_tags_are_accepted_exactly_when_they_are_arrays_of_strings(
    tags: list[list[object]],
) -> None:
    event = sign_event(ONE, created_at=1, kind=1, tags=(), content="x").to_dict()
    event["tags"] = tags
    if all(isinstance(v, str) for tag in tags for v in tag):
        assert Event.from_dict(event).tags == tuple(tuple(tag) for tag in tags)
    else:
        with pytest.raises(InvalidEvent, match="tags"):
            Event.from_dict(event)
