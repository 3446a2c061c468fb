"""The canonical persona digest, against canonical bytes written out by hand.

Each expected value below was derived from the rule in the fleet-update
reference (fixed member order, nulls and an empty ``name_pool`` omitted,
standard JSON escapes, non-ASCII verbatim), not produced by the code under
test. The digest is then SHA-256 of exactly those bytes. Where the member order
matters, the test names the rule (``SEED``: the seed's order); buzz's eras are
tested against the reference's worked examples in test_digest_rules.py.
"""

from __future__ import annotations

import hashlib

import pytest

from domain.digests import SEED
from domain.persona import PersonaContent, parse_definition, parse_public_content


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_the_reference_worked_example_is_already_canonical() -> None:
    text = '{"display_name":"Minimal","system_prompt":"Hello."}'
    content = parse_public_content(text)
    assert (
        content.canonical_json().encode() == b'{"display_name":"Minimal","system_prompt":"Hello."}'
    )
    assert content.digest() == _sha256(b'{"display_name":"Minimal","system_prompt":"Hello."}')


def test_member_order_of_the_input_does_not_matter_and_nulls_and_an_empty_pool_drop_out() -> None:
    shuffled = (
        '{"name_pool":[],"provider":null,"system_prompt":"Be brief.","model":null,'
        '"display_name":"Shuffled","runtime":null,"avatar_url":null}'
    )
    expected = b'{"display_name":"Shuffled","system_prompt":"Be brief."}'
    content = parse_public_content(shuffled)
    assert content.canonical_json().encode() == expected
    assert content.digest() == _sha256(expected)


def test_every_member_appears_in_canonical_order_whatever_the_input_order() -> None:
    shuffled = (
        '{"name_pool":["A","B"],"provider":"anthropic","model":"claude-opus-4",'
        '"runtime":"goose","system_prompt":"Hi","avatar_url":"https://example.com/a.png",'
        '"display_name":"Full"}'
    )
    expected = (
        b'{"display_name":"Full","avatar_url":"https://example.com/a.png",'
        b'"system_prompt":"Hi","runtime":"goose","model":"claude-opus-4",'
        b'"provider":"anthropic","name_pool":["A","B"]}'
    )
    assert SEED.canonical_json(parse_public_content(shuffled)).encode() == expected
    assert SEED.digest(parse_public_content(shuffled)) == _sha256(expected)


def test_the_reference_event_1_body_digests_to_its_canonical_reordering() -> None:
    # NIP-AP test vector Event 1: public order puts system_prompt second.
    body = (
        '{"display_name":"Test Agent","system_prompt":"You are a test assistant.",'
        '"avatar_url":"https://example.com/avatar.png","runtime":"goose",'
        '"model":"claude-opus-4","provider":"anthropic","name_pool":["Alpha","Beta"]}'
    )
    expected = (
        b'{"display_name":"Test Agent","avatar_url":"https://example.com/avatar.png",'
        b'"system_prompt":"You are a test assistant.","runtime":"goose",'
        b'"model":"claude-opus-4","provider":"anthropic","name_pool":["Alpha","Beta"]}'
    )
    assert SEED.digest(parse_public_content(body)) == _sha256(expected)


def test_unknown_members_of_relay_content_are_not_part_of_the_digest() -> None:
    published = (
        '{"version":7,"display_name":"X","extra":{"nested":[1,2,{"deep":null}]},'
        '"system_prompt":"Y","runtime":null}'
    )
    expected = b'{"display_name":"X","system_prompt":"Y"}'
    content = parse_public_content(published)
    assert content.canonical_json().encode() == expected
    assert content.digest() == _sha256(expected)


def test_env_vars_are_not_part_of_the_digest() -> None:
    saved = (
        '{"display_name":"X","system_prompt":"Y","env_vars":{"API_KEY":"s3cret"},"runtime":null}'
    )
    expected = b'{"display_name":"X","system_prompt":"Y"}'
    definition = parse_definition(saved)
    assert definition.content.canonical_json().encode() == expected
    assert definition.content.digest() == _sha256(expected)
    assert definition.env_vars == {"API_KEY": "s3cret"}


def test_non_ascii_is_written_verbatim_as_utf8_and_slashes_are_not_escaped() -> None:
    # The input spells the rocket and the e-diaeresis as JSON escapes.
    text = (
        '{"display_name":"Zo\\u00eb \\ud83d\\ude80","system_prompt":"\u65e5\u672c\u8a9e a/b",'
        '"name_pool":["\u00c5sa"]}'
    )
    expected = (
        b'{"display_name":"Zo\xc3\xab \xf0\x9f\x9a\x80",'
        b'"system_prompt":"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e a/b",'
        b'"name_pool":["\xc3\x85sa"]}'
    )
    content = parse_public_content(text)
    assert content.canonical_json().encode("utf-8") == expected
    assert content.digest() == _sha256(expected)


def test_control_characters_get_short_escapes_where_json_has_them_else_lowercase_u() -> None:
    text = (
        '{"display_name":"Ctl",'
        '"system_prompt":"a\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0000i\\u001Fj\\u007fk\\u2028l"}'
    )
    expected = (
        b'{"display_name":"Ctl",'
        b'"system_prompt":"a\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0000i\\u001fj\x7fk\xe2\x80\xa8l"}'
    )
    content = parse_public_content(text)
    assert content.system_prompt == 'a"b\\c\nd\re\tf\bg\fh\x00i\x1fj\x7fk\u2028l'
    assert content.canonical_json().encode("utf-8") == expected
    assert content.digest() == _sha256(expected)


def test_empty_strings_are_kept_since_only_null_is_omitted() -> None:
    content = PersonaContent(display_name="", system_prompt="", avatar_url="", name_pool=("",))
    seed = b'{"display_name":"","avatar_url":"","system_prompt":"","name_pool":[""]}'
    assert SEED.canonical_json(content).encode() == seed
    assert SEED.digest(content) == _sha256(seed)
    current = b'{"display_name":"","system_prompt":"","avatar_url":"","name_pool":[""]}'
    assert content.canonical_json().encode() == current
    assert content.digest() == _sha256(current)


@pytest.mark.parametrize(
    "text",
    [
        '{"display_name":"A","system_prompt":"B"}',
        '{"system_prompt":"B","display_name":"A"}',
        '{ "system_prompt" : "B" ,\n "display_name":"A", "name_pool": [], "model": null }',
        '{"display_name":"\\u0041","system_prompt":"\\u0042","unknown":true}',
    ],
)
def test_equivalent_texts_share_one_digest(text: str) -> None:
    assert parse_public_content(text).digest() == _sha256(
        b'{"display_name":"A","system_prompt":"B"}'
    )
