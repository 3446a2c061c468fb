"""The owner's own persona file is held to rules relay content is not.

Unknown members are an error (a misspelt ``env_var`` would drop the secrets),
and no ``env_vars`` value may show up in a public field. Content read from a
relay and engram bodies stay lenient, as NIP-AP and NIP-AE ask of readers.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.engram_body import PersonaEngram, Provenance, decode_persona_value
from domain.errors import InvalidInput, InvalidPersona
from domain.persona import (
    MIN_SECRET_SUBSTRING_CHARS,
    PersonaContent,
    PersonaDefinition,
    check_owner_definition,
    exposed_secret,
    parse_definition,
    parse_public_content,
)

BASE = {"display_name": "Writer", "system_prompt": "You write clearly."}


def _text(**members: object) -> str:
    return json.dumps({**BASE, **members})


def test_a_misspelt_env_vars_is_named_with_what_it_probably_meant() -> None:
    with pytest.raises(InvalidPersona) as info:
        parse_definition(_text(env_var={"OPENAI_API_KEY": "sk-secret-value"}))
    message = str(info.value)
    assert "unknown member(s) 'env_var' (did you mean 'env_vars'?)" in message
    assert "sk-secret-value" not in message


def test_every_unknown_member_is_named() -> None:
    with pytest.raises(InvalidPersona, match=r"'modle' \(did you mean 'model'\?\), 'zzz'"):
        parse_definition(_text(modle="gpt", zzz=1))


def test_known_members_are_all_accepted() -> None:
    text = _text(
        avatar_url="https://a/b.png",
        runtime="r",
        model="m",
        provider="p",
        name_pool=["Ann"],
        env_vars={"K": "v"},
    )
    assert parse_definition(text).content.model == "m"


def test_relay_content_and_engram_bodies_still_ignore_unknown_members() -> None:
    assert parse_public_content(_text(future_member=1)).display_name == "Writer"
    content = PersonaContent.from_members(BASE)
    provenance = Provenance("ab" * 32, "writer", content.digest())
    members = {**content.canonical_members(), "provenance": provenance.members(), "later": [1]}
    engram = decode_persona_value(json.dumps(members))
    assert engram == PersonaEngram(content, provenance)


def _definition(env: dict[str, str], **content: object) -> PersonaDefinition:
    return PersonaDefinition(PersonaContent.from_members({**BASE, **content}), env)


def test_a_secret_inside_the_system_prompt_is_refused_naming_variable_and_field() -> None:
    definition = _definition(
        {"TOKEN": "sk-live-123456"}, system_prompt="Use the key sk-live-123456 for calls."
    )
    with pytest.raises(InvalidPersona) as info:
        check_owner_definition(definition, "writer")
    message = str(info.value)
    assert "env_vars['TOKEN']" in message
    assert "public field system_prompt" in message
    assert "sk-live-123456" not in message


def test_a_secret_equal_to_a_public_value_is_refused_whatever_its_length() -> None:
    assert exposed_secret(_definition({}).content, {"N": "1"}) is None
    content = _definition({}, model="1", name_pool=["Ann", "x"]).content
    assert exposed_secret(content, {"N": "1"}) == ("N", "model")
    assert exposed_secret(content, {"WHO": "x"}) == ("WHO", "name_pool[1]")
    assert exposed_secret(content, {"S": "writer"}, slug="writer") == ("S", "slug")


def test_a_short_secret_inside_a_longer_public_text_is_not_taken_for_a_leak() -> None:
    content = _definition({}, system_prompt="Answer in 1 to 3 sentences.").content
    assert exposed_secret(content, {"N": "1", "M": "3 sente"}) is None
    assert exposed_secret(content, {"N": "3 senten"}) == ("N", "system_prompt")


def test_an_empty_secret_exposes_nothing() -> None:
    assert exposed_secret(_definition({}, runtime="").content, {"E": ""}) is None


FIELDS = st.sampled_from(["display_name", "system_prompt", "runtime", "model", "provider"])


@given(
    secret=st.text(min_size=MIN_SECRET_SUBSTRING_CHARS, max_size=40),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    field=FIELDS,
)
def test_a_long_enough_secret_anywhere_in_a_public_field_is_refused(
    secret: str, before: str, after: str, field: str
) -> None:
    content = PersonaContent.from_members({**BASE, field: before + secret + after})
    found = exposed_secret(content, {"SECRET": secret})
    assert found is not None
    assert found[0] == "SECRET"


@given(rest=st.text(max_size=40), field=FIELDS, inside=st.booleans())
def test_no_part_of_a_secret_shows_in_the_refusal(rest: str, field: str, inside: bool) -> None:
    secret = "\u00a7" + rest  # a character no message contains, so any echo would show
    assume(not inside or len(secret) >= MIN_SECRET_SUBSTRING_CHARS)
    content = {**BASE, field: f"see {secret} here" if inside else secret}
    definition = PersonaDefinition(PersonaContent.from_members(content), {"SECRET": secret})
    with pytest.raises(InvalidPersona) as info:
        check_owner_definition(definition)
    assert "\u00a7" not in str(info.value)


def test_name_pool_entries_obey_the_name_rule_at_save() -> None:
    with pytest.raises(InvalidInput, match=r"name_pool\[0\]"):
        check_owner_definition(_definition({}, name_pool=["\u202eAnn"]))
    with pytest.raises(InvalidInput, match="more than once"):
        check_owner_definition(_definition({}, name_pool=["Ann", "Ann"]))
