"""Engram bodies and the persona engram value: encoding, decoding, limits."""

from __future__ import annotations

import json

import pytest

from domain.engram_body import (
    BodyRuleBroken,
    CoreBody,
    MemoryBody,
    PersonaEngram,
    Provenance,
    decode_body,
    decode_persona_body,
    decode_persona_value,
    encode_memory_body,
    encode_persona_body,
    encode_persona_value,
)
from domain.engram_size import MAX_PLAINTEXT_BYTES
from domain.errors import InvalidEngramBody, TooLarge
from domain.persona import PersonaContent

OWNER = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
CONTENT = PersonaContent(
    display_name="Zoë",
    system_prompt='Say "hi".\nThen\tstop.\x01',
    avatar_url=None,
    runtime="goose",
    model=None,
    provider="anthropic",
    name_pool=("Ada", "Bö"),
)


def _engram(secrets: str | None = "cd" * 32) -> PersonaEngram:
    return PersonaEngram(
        content=CONTENT,
        provenance=Provenance(OWNER, "release-bot", CONTENT.digest(), secrets),
        env_vars={"Z_TOKEN": "z\u00e9", "A_KEY": "a"},
    )


def test_a_persona_engram_round_trips_through_its_body() -> None:
    engram = _engram()
    decoded = decode_persona_body(encode_persona_body(engram))
    assert decoded == engram
    assert decoded is not None
    assert decoded.content_matches_provenance


def test_the_value_is_canonical_members_then_provenance_then_sorted_env_vars() -> None:
    value = encode_persona_value(_engram())
    assert value == (
        '{"display_name":"Zoë","system_prompt":"Say \\"hi\\".\\nThen\\tstop.\\u0001",'
        '"runtime":"goose","provider":"anthropic","name_pool":["Ada","Bö"],'
        f'"provenance":{{"owner_pubkey":"{OWNER}","kind":30175,"slug":"release-bot",'
        f'"source_version":"{CONTENT.digest()}","digest_rule":"era-l",'
        f'"secrets_digest":"{"cd" * 32}"}},'
        '"env_vars":{"A_KEY":"a","Z_TOKEN":"zé"}}'
    )


def test_the_body_is_a_memory_body_whose_value_is_a_json_string() -> None:
    body = json.loads(encode_persona_body(_engram()))
    assert list(body) == ["slug", "value"]
    assert body["slug"] == "mem/persona"
    assert isinstance(body["value"], str)


def test_empty_env_vars_are_omitted() -> None:
    engram = PersonaEngram(CONTENT, Provenance(OWNER, "p", CONTENT.digest()))
    value = json.loads(encode_persona_value(engram))
    assert "env_vars" not in value
    assert "secrets_digest" not in value["provenance"]


def test_a_reader_ignores_members_it_does_not_know() -> None:
    value = json.loads(encode_persona_value(_engram()))
    value["future"] = {"anything": [1, 2]}
    value["provenance"]["signed_by"] = "someone"
    value["provenance"]["schema"] = 2
    assert decode_persona_value(json.dumps(value)) == _engram()


def test_a_reader_works_without_a_secrets_digest() -> None:
    value = json.loads(encode_persona_value(_engram()))
    del value["provenance"]["secrets_digest"]
    decoded = decode_persona_value(json.dumps(value))
    assert decoded.provenance.secrets_digest is None
    assert decoded.provenance.source_version == CONTENT.digest()


def test_a_body_written_before_secrets_digest_existed_is_read() -> None:
    value = (
        '{"display_name":"Old","system_prompt":"S","provenance":{"owner_pubkey":"'
        + OWNER
        + '","kind":30175,"slug":"old","source_version":"'
        + "ab" * 32
        + '"},"env_vars":{"K":"v"}}'
    )
    decoded = decode_persona_value(value)
    assert decoded.env_vars == {"K": "v"}
    # Written before rules had names: the seed's rule made its digest.
    assert decoded.provenance == Provenance(OWNER, "old", "ab" * 32, None, "seed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("owner_pubkey", "AB" * 32), "owner_pubkey"),
        (("kind", 30174), "provenance.kind must be 30175"),
        (("kind", 30175.0), "provenance.kind must be 30175"),
        (("kind", True), "provenance.kind must be 30175"),
        (("slug", ""), "provenance.slug"),
        (("slug", 7), "provenance.slug"),
        (("source_version", "xyz"), "source_version"),
        (("secrets_digest", 5), "secrets_digest"),
    ],
)
def test_bad_provenance_is_refused(change: tuple[str, object], message: str) -> None:
    value = json.loads(encode_persona_value(_engram()))
    value["provenance"][change[0]] = change[1]
    with pytest.raises(InvalidEngramBody, match=message):
        decode_persona_value(json.dumps(value))


def test_a_missing_provenance_is_refused() -> None:
    with pytest.raises(InvalidEngramBody, match="no 'provenance'"):
        decode_persona_value('{"display_name":"D","system_prompt":"S"}')


def test_a_duplicate_member_inside_the_value_is_refused() -> None:
    with pytest.raises(InvalidEngramBody, match="duplicate"):
        decode_persona_value('{"display_name":"D","display_name":"E","system_prompt":"S"}')


def test_a_tombstone_decodes_to_none() -> None:
    assert decode_persona_body('{"slug":"mem/persona","value":null}') is None


def test_another_slug_is_not_a_persona_body() -> None:
    with pytest.raises(InvalidEngramBody, match="mem/persona"):
        decode_persona_body('{"slug":"mem/other","value":"{}"}')


def test_memory_and_core_bodies_decode_and_ignore_unknown_members() -> None:
    assert decode_body('{"value":"v","slug":"mem/a/b","x":1}') == MemoryBody("mem/a/b", "v")
    assert decode_body('{"slug":"core","profile":"p","y":[]}') == CoreBody("p")


def test_a_memory_body_never_shows_its_value_in_repr() -> None:
    body = MemoryBody("mem/persona", '{"env_vars":{"TOKEN":"hunter2"}}')
    assert "hunter2" not in repr(body)
    assert "hunter2" not in repr(_engram())


def test_a_body_of_exactly_the_limit_is_encoded_and_one_byte_more_is_refused() -> None:
    overhead = len(encode_memory_body("mem/x", ""))
    exact = encode_memory_body("mem/x", "a" * (MAX_PLAINTEXT_BYTES - overhead))
    assert len(exact.encode()) == MAX_PLAINTEXT_BYTES
    with pytest.raises(TooLarge, match="65536 bytes"):
        encode_memory_body("mem/x", "a" * (MAX_PLAINTEXT_BYTES - overhead + 1))


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    overhead = len(encode_memory_body("mem/x", ""))
    room = MAX_PLAINTEXT_BYTES - overhead
    with pytest.raises(TooLarge):
        encode_memory_body("mem/x", "€" * (room // 3 + 1))
    assert len(encode_memory_body("mem/x", "€" * (room // 3)).encode()) <= MAX_PLAINTEXT_BYTES


def test_a_persona_too_big_for_an_engram_is_refused_not_truncated() -> None:
    big = PersonaContent("D", "x" * MAX_PLAINTEXT_BYTES)
    engram = PersonaEngram(big, Provenance(OWNER, "p", big.digest()))
    with pytest.raises(TooLarge, match="Shorten"):
        encode_persona_body(engram)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"slug":"mem/a","value":"x","value":"y"}', 3),
        ("[1]", 3),
        ('{"slug":"mem/a","value":"\\ud800"}', 3),
        ('{"slug":"Mem/a","value":"x"}', 4),
        ('{"value":"x"}', 4),
        ('{"slug":"mem/a","value":1}', 5),
        ('{"slug":"mem/a"}', 5),
        ('{"slug":"core"}', 5),
    ],
)
def test_decode_body_names_the_first_nip_ae_rule_a_body_breaks(text: str, rule: int) -> None:
    with pytest.raises(BodyRuleBroken) as info:
        decode_body(text)
    assert info.value.rule == rule


def test_a_slug_that_does_not_derive_to_the_d_tag_breaks_rule_4_before_the_shape() -> None:
    with pytest.raises(BodyRuleBroken) as info:
        decode_body('{"slug":"mem/a","value":1}', derives_to_d=lambda slug: False)
    assert info.value.rule == 4


def test_a_memory_body_with_a_slug_outside_the_grammar_is_not_built() -> None:
    with pytest.raises(InvalidEngramBody, match="grammar"):
        encode_memory_body("Mem/a", "x")


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("builtin:fizz", "builtin-fizz"),
        ("Lep", "lep"),
        ("_ops", "a_ops"),
        ("CodeReviewer", "codereviewer"),
    ],
)
def test_a_provenance_slug_buzz_wrote_is_read_as_buzz_normalises_it(
    written: str, read: str
) -> None:
    value = json.loads(encode_persona_value(_engram()))
    value["provenance"]["slug"] = written
    assert decode_persona_value(json.dumps(value)).provenance.slug == read
