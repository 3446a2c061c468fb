"""Parsing persona content (NIP-AP): required fields, types, secrets, strict JSON."""

from __future__ import annotations

import pytest

from domain import strictjson
from domain.errors import InvalidPersona
from domain.persona import (
    PersonaContent,
    PersonaDefinition,
    parse_definition,
    parse_public_content,
    secrets_digest,
    validate_env_vars,
)


def test_a_full_persona_parses_into_its_fields() -> None:
    content = parse_public_content(
        '{"display_name":"D","system_prompt":"S","avatar_url":"https://a","runtime":"goose",'
        '"model":"m","provider":"p","name_pool":["x","y"]}'
    )
    assert content == PersonaContent("D", "S", "https://a", "goose", "m", "p", ("x", "y"))


def test_optional_fields_default_to_null_and_an_empty_pool() -> None:
    content = parse_public_content('{"display_name":"D","system_prompt":"S"}')
    assert (content.avatar_url, content.runtime, content.model, content.provider) == (None,) * 4
    assert content.name_pool == ()


def test_unknown_members_are_ignored() -> None:
    content = parse_public_content(
        '{"display_name":"D","system_prompt":"S","temperature":0.2,"tools":[{"name":"x"}]}'
    )
    assert content == PersonaContent("D", "S")


def test_public_json_round_trips() -> None:
    content = PersonaContent("D\n", "S\x00", None, "r", None, "p", ("é", "\U0001f680"))
    assert parse_public_content(content.public_json()) == content


@pytest.mark.parametrize("missing", ["display_name", "system_prompt"])
def test_a_missing_required_field_is_named(missing: str) -> None:
    members = {"display_name": '"D"', "system_prompt": '"S"'}
    del members[missing]
    text = "{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}"
    with pytest.raises(InvalidPersona, match=f"missing the required field '{missing}'"):
        parse_public_content(text)


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("display_name", "42", "display_name must be a string, not a number"),
        ("system_prompt", "null", "system_prompt must be a string, not null"),
        ("avatar_url", "true", "avatar_url must be a string, not a boolean"),
        ("runtime", "[]", "runtime must be a string, not an array"),
        ("model", "{}", "model must be a string, not an object"),
        ("provider", "1.5", "provider must be a string, not a number"),
        ("name_pool", '"Ada"', "name_pool must be an array of strings, not str"),
        ("name_pool", "null", "name_pool must be an array of strings, not null"),
        ("name_pool", '["a",2]', r"name_pool\[1\] must be a string, not a number"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_with_its_name(
    member: str, value: str, message: str
) -> None:
    members = {"display_name": '"D"', "system_prompt": '"S"', member: value}
    text = "{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}"
    with pytest.raises(InvalidPersona, match=message):
        parse_public_content(text)


def test_env_vars_in_public_content_are_refused() -> None:
    with pytest.raises(InvalidPersona, match="must not contain env_vars"):
        parse_public_content('{"display_name":"D","system_prompt":"S","env_vars":{}}')


def test_env_vars_are_accepted_in_a_saved_definition() -> None:
    definition = parse_definition(
        '{"display_name":"D","system_prompt":"S","env_vars":{"B_KEY":"2","A_KEY":"1"}}'
    )
    assert list(definition.env_vars) == ["A_KEY", "B_KEY"]


def test_a_definition_never_shows_its_secrets_in_repr() -> None:
    definition = PersonaDefinition(PersonaContent("D", "S"), {"TOKEN": "hunter2"})
    assert "hunter2" not in repr(definition)


@pytest.mark.parametrize(
    ("env_vars", "message"),
    [
        ('{"1BAD":"x"}', "not a valid environment variable name"),
        ('{"OK":1}', "must be a string, not a number"),
        ('{"OK":"a\\u0000b"}', "contains a NUL character"),
        ('["OK"]', "env_vars must be an object of strings, not an array"),
    ],
)
def test_malformed_env_vars_are_refused_without_echoing_the_value(
    env_vars: str, message: str
) -> None:
    with pytest.raises(InvalidPersona, match=message) as info:
        parse_definition('{"display_name":"D","system_prompt":"S","env_vars":' + env_vars + "}")
    assert "a\x00b" not in str(info.value)


def test_a_lone_surrogate_is_refused_as_not_utf8() -> None:
    with pytest.raises(InvalidPersona, match="lone surrogate"):
        parse_public_content('{"display_name":"\\ud800","system_prompt":"S"}')
    with pytest.raises(InvalidPersona, match="lone surrogate"):
        parse_public_content('{"display_name":"D","system_prompt":"S","name_pool":["\\udfff"]}')


def test_a_surrogate_pair_escape_is_a_single_valid_character() -> None:
    content = parse_public_content('{"display_name":"\\ud83d\\ude80","system_prompt":"S"}')
    assert content.display_name == "\U0001f680"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ('["display_name"]', "must be a JSON object, not an array"),
        ('"x"', "must be a JSON object, not str"),
        ('{"display_name":"D","system_prompt":"S","display_name":"E"}', "duplicate member"),
        ('{"display_name":"D","system_prompt":NaN}', "NaN is not valid JSON"),
    ],
)
def test_text_that_is_not_a_strict_json_object_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidPersona, match=message):
        parse_public_content(text)


def test_strict_json_finds_a_duplicate_member_nested_deep() -> None:
    deep = '{"a":[1,{"b":{"c":[{"d":{"e":1,"f":{"g":[{"h":0,"h":1}]}}}]}}]}'
    with pytest.raises(strictjson.StrictJSONError, match="duplicate member name 'h'"):
        strictjson.loads(deep)
    assert strictjson.loads(deep.replace('"h":1', '"i":1'))["a"][1]["b"]["c"][0]["d"]["e"] == 1


def test_strict_json_treats_escaped_and_plain_spellings_of_a_name_as_duplicates() -> None:
    with pytest.raises(strictjson.StrictJSONError, match="duplicate"):
        strictjson.loads('{"slug":"a","\\u0073lug":"b"}')


def test_strict_json_allows_the_same_name_in_sibling_objects() -> None:
    assert strictjson.loads('[{"a":1},{"a":2}]') == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("text", ["Infinity", "[-Infinity]", '{"x":NaN}'])
def test_strict_json_refuses_non_finite_numbers(text: str) -> None:
    with pytest.raises(strictjson.StrictJSONError):
        strictjson.loads(text)


def test_strict_json_refuses_absurd_nesting_instead_of_crashing() -> None:
    with pytest.raises(strictjson.StrictJSONError):
        strictjson.loads("[" * 100_000 + "]" * 100_000)


def test_the_secrets_digest_is_keyed_and_order_independent() -> None:
    key_a, key_b = b"a" * 32, b"b" * 32
    first = validate_env_vars({"B": "2", "A": "1"})
    assert secrets_digest(key_a, first) == secrets_digest(key_a, {"A": "1", "B": "2"})
    assert secrets_digest(key_a, first) != secrets_digest(key_b, first)
    assert secrets_digest(key_a, first) != secrets_digest(key_a, {"A": "1", "B": "3"})
    with pytest.raises(ValueError, match="at least 32 bytes"):
        secrets_digest(b"short", first)
