"""The digest rules buzz has used, against the worked examples of buzz-interop.md §5.4
(canonical bytes and digests copied from the reference, not computed by the code
under test), and the properties that keep a change of rule from moving any agent."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.digests import (
    CURRENT,
    ERA_B,
    ERA_L,
    RULES,
    SEED,
    aliases_of,
    digests_of,
    expresses,
    names_version,
)
from domain.engram_body import PersonaEngram, Provenance, decode_persona_body, encode_persona_body
from domain.errors import InvalidPersona
from domain.persona import (
    ABSENT_MEMBERS,
    PersonaContent,
    StoredContent,
    parse_definition,
    parse_public_content,
)
from domain.versioning import upcast

REVIEWER = (
    '{"description":"Reviews pull requests.","session_policy":"thread","parallelism":2,'
    '"respond_to_allowlist":["79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"],'
    '"respond_to":"allowlist","runtime":"claude","acp_command":"buzz-janet-acp",'
    '"system_prompt":"Review every PR.","display_name":"Reviewer"}'
)
EVENT_1 = (
    '{"display_name":"Test Agent","system_prompt":"You are a test assistant.",'
    '"avatar_url":"https://example.com/avatar.png","runtime":"goose","model":"claude-opus-4",'
    '"provider":"anthropic","name_pool":["Alpha","Beta"]}'
)


def test_buzz_is_current_rule_is_era_l() -> None:
    assert CURRENT is ERA_L
    assert list(RULES) == ["seed", "era-b", "era-l"]


def test_worked_example_1_digests_the_same_in_every_era() -> None:
    content = parse_public_content('{"display_name":"Minimal","system_prompt":"Hello."}')
    for rule in (SEED, ERA_B, ERA_L):
        assert rule.canonical_json(content) == '{"display_name":"Minimal","system_prompt":"Hello."}'
        assert (
            rule.digest(content)
            == "a688308235ffaeca366db62eaa11579fae5d4c492275a1cb3aa42a3782d3249a"
        )


def test_worked_example_2_an_avatar_moves_the_digest_between_the_seed_and_buzz() -> None:
    content = parse_public_content(EVENT_1)
    assert ERA_L.canonical_json(content) == EVENT_1
    assert ERA_B.digest(content) == ERA_L.digest(content)
    assert (
        ERA_L.digest(content) == "e3ff4a614faff90eb22dfd51b8c2eb7838ef43eda23766a3a01a0018a8370537"
    )
    assert (
        SEED.digest(content) == "bfcb40e3a03ae457dc07f0583ea892348ff520609c8faf6e27fde0d59b339064"
    )


def test_worked_example_3_every_member_buzz_knows() -> None:
    content = parse_public_content(REVIEWER)
    assert ERA_L.canonical_json(content) == (
        '{"display_name":"Reviewer","system_prompt":"Review every PR.",'
        '"acp_command":"buzz-janet-acp","runtime":"claude","respond_to":"allowlist",'
        '"respond_to_allowlist":["79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"],'
        '"parallelism":2,"session_policy":"thread"}'
    )
    assert content.digest() == "c434991f334c9d54f6d57162363de9b1b1246c4e9d0e00455765f8c8dc862b70"
    undescribed = dataclasses.replace(content, description=None)
    assert undescribed.digest() == content.digest()
    channel = dataclasses.replace(content, session_policy="channel")
    assert '"session_policy"' not in ERA_L.canonical_json(channel)
    assert channel.digest() == "f7ec520a8c319c7418a1770d3da8535fcdf51397a10e0da6c6a8eb59d9f7b16d"
    assert ERA_B.digest(content) == (
        "c566f7270ee65267845a9cc6edf36505da4b4cee682963fdced81fee003178a0"
    )
    assert SEED.canonical_json(content) == (
        '{"display_name":"Reviewer","system_prompt":"Review every PR.","runtime":"claude"}'
    )
    assert (
        SEED.digest(content) == "6eda1c8968d7d02047245c09a2b096aa3422246c846892bc469c6a43490df9c7"
    )


def test_an_earlier_rule_blind_to_a_member_in_use_names_no_version() -> None:
    content = parse_public_content(REVIEWER)
    assert not expresses(SEED, content)
    assert not expresses(ERA_B, content)  # acp_command, session_policy thread
    assert digests_of(content) == (content.digest(),)
    assert not names_version(SEED.digest(content), "seed", content)
    assert names_version(content.digest(), "era-l", content)
    assert not names_version(content.digest(), "a-rule-from-the-future", content)


def test_a_persona_event_stored_before_rules_had_names_was_digested_by_the_seed() -> None:
    state: dict[str, Any] = {"slug": "s", "digest": "ab" * 32, "class_version": 1}
    assert upcast("domain.aggregates:Persona.Saved", state)["digest_rule"] == "seed"
    assert upcast("domain.aggregates:Persona.Created", state)["digest_rule"] == "seed"


# Hypothesis: content as buzz could hold it.

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
SECRET = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
HEX64 = st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)


@st.composite
def contents(draw: st.DrawFn) -> PersonaContent:
    allowlist = tuple(draw(st.lists(HEX64, max_size=3)))
    modes = ["owner-only", "anyone", *(["allowlist"] if allowlist else [])]
    return PersonaContent(
        display_name=draw(TEXT),
        system_prompt=draw(TEXT),
        avatar_url=draw(st.none() | TEXT),
        runtime=draw(st.none() | TEXT),
        model=draw(st.none() | TEXT),
        provider=draw(st.none() | TEXT),
        name_pool=tuple(draw(st.lists(TEXT, max_size=3))),
        acp_command=draw(st.none() | TEXT),
        respond_to=draw(st.none() | st.sampled_from(modes)),
        respond_to_allowlist=allowlist,
        parallelism=draw(st.none() | st.integers(1, 32)),
        description=draw(st.none() | TEXT),
        session_policy=draw(st.sampled_from(["channel", "thread"])),
    )


@given(contents(), st.randoms())
def test_the_digest_does_not_depend_on_the_member_order_of_the_input(
    content: PersonaContent, rnd: Any
) -> None:
    members = list(content.public_members().items())
    rnd.shuffle(members)
    reread = parse_public_content(json.dumps(dict(members)))
    assert reread == content
    for rule in RULES.values():
        assert rule.digest(reread) == rule.digest(content)
    # A definition file in any member order too, env_vars anywhere among them.
    members.insert(rnd.randrange(len(members) + 1), ("env_vars", {"TOKEN": "zq-secret-value"}))
    assert parse_definition(json.dumps(dict(members))).content.digest() == content.digest()


# A value for each member that came after the seed, other than the one each rule
# leaves out; a property sets a drawn subset of them on content that has none.
LATER: dict[str, Any] = {
    "avatar_url": "https://example.com/a.png",
    "respond_to": "anyone",
    "respond_to_allowlist": ("ab" * 32,),
    "parallelism": 3,
    "acp_command": "buzz-acp",
    "session_policy": "thread",
    "description": "Public words.",
}
NONE_LATER: dict[str, Any] = {
    "avatar_url": None,
    "respond_to": None,
    "respond_to_allowlist": (),
    "parallelism": None,
    "acp_command": None,
    "session_policy": "channel",
    "description": None,
}


@given(contents(), st.sets(st.sampled_from(sorted(LATER))))
def test_the_seed_and_current_rules_agree_exactly_without_an_avatar_or_a_later_member(
    content: PersonaContent, later: set[str]
) -> None:
    # The reference's words (§5.4), not the registry's: an avatar moves the digest
    # between the seed and B, so does respond_to, respond_to_allowlist or
    # parallelism; acp_command or session_policy "thread" between B and L; a
    # description never.
    content = dataclasses.replace(content, **{**NONE_LATER, **{m: LATER[m] for m in later}})
    agree = SEED.digest(content) == CURRENT.digest(content)
    assert agree == (later <= {"description"})


@given(contents(), st.sets(st.sampled_from(sorted(LATER))))
def test_era_b_and_current_agree_exactly_without_acp_command_or_thread_sessions(
    content: PersonaContent, later: set[str]
) -> None:
    content = dataclasses.replace(content, **{**NONE_LATER, **{m: LATER[m] for m in later}})
    agree = ERA_B.digest(content) == CURRENT.digest(content)
    assert agree == (not later & {"acp_command", "session_policy"})


@given(contents(), st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), SECRET))
def test_content_round_trips_through_file_store_and_engram(
    content: PersonaContent, env: dict[str, str]
) -> None:
    file_text = json.dumps({**content.canonical_members(), "env_vars": env})
    saved = parse_definition(file_text)
    assert saved.content == content
    stored = PersonaContent.from_members(json.loads(json.dumps(saved.content.public_members())))
    assert stored == content
    provenance = Provenance("ab" * 32, "p", stored.digest())
    body = encode_persona_body(PersonaEngram(stored, provenance, env))
    read = decode_persona_body(body)
    assert read is not None
    assert read.content == content
    assert dict(read.env_vars) == env
    assert read.content_matches_provenance
    assert parse_public_content(content.public_json()) == content


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        ("respond_to", '"everyone"', "not a recognized mode"),
        ("respond_to", '"allowlist"', "needs at least one public key"),
        ("respond_to_allowlist", '["abc"]', r"respond_to_allowlist\[0\]"),
        ("respond_to_allowlist", "null", "must be an array"),
        ("parallelism", "0", "from 1 to 32"),
        ("parallelism", "33", "from 1 to 32"),
        ("parallelism", "2.0", "whole number"),
        ("parallelism", "true", "whole number"),
        ("description", '"' + "x" * 281 + '"', "at most 280"),
        ("session_policy", '"threads"', "session_policy must be one of"),
        ("acp_command", "7", "acp_command must be a string"),
    ],
)
def test_a_bad_member_of_an_owner_definition_is_refused_with_its_name(
    member: str, value: str, message: str
) -> None:
    text = f'{{"display_name":"D","system_prompt":"S","{member}":{value}}}'
    with pytest.raises(InvalidPersona, match=message):
        parse_definition(text)


def test_relay_content_reads_session_policy_as_buzz_does() -> None:
    for value in ('"threads"', "null", "7", '"channel"'):
        text = f'{{"display_name":"D","system_prompt":"S","session_policy":{value}}}'
        assert parse_public_content(text).session_policy == "channel"


def test_the_rule_reference_bytes_are_sha256() -> None:
    text = '{"display_name":"Minimal","system_prompt":"Hello."}'
    assert SEED.digest(parse_public_content(text)) == hashlib.sha256(text.encode()).hexdigest()


# A persona event's view row lists its content's other digests (aliases_of), worked
# out without hashing where it can: the same as digests_of's, whatever made the digest.


@st.composite
def stored_contents(draw: st.DrawFn) -> tuple[PersonaContent, dict[str, Any]]:
    """Content, and its members as a persona event stores them: every member (v3), or
    with some absent ones left out (as older events stored them), session_policy
    null, left out or anything but "thread" when it is the default."""
    content = draw(contents())
    if draw(st.booleans()):
        # Half the time content an earlier rule could have digested, but for a few members.
        later = draw(st.sets(st.sampled_from(sorted(LATER))))
        content = dataclasses.replace(content, **{**NONE_LATER, **{m: LATER[m] for m in later}})
    members = content.public_members()
    for name in draw(st.sets(st.sampled_from(sorted(ABSENT_MEMBERS)))):
        if members[name] == ABSENT_MEMBERS[name]:
            del members[name]
    if content.session_policy == "channel":
        policy = draw(st.sampled_from(["channel", None, "Thread", 7, "left out"]))
        members.pop("session_policy", None)
        if policy != "left out":
            members["session_policy"] = policy
    return content, members


@given(stored_contents(), st.sampled_from([*RULES, "era-z"]), st.data())
def test_a_persona_events_aliases_are_its_contents_other_digests_whichever_rule_made_it(
    stored: tuple[PersonaContent, dict[str, Any]], made_by: str, data: st.DataObject
) -> None:
    content, members = stored
    assert PersonaContent.from_members(members) == content
    made = RULES.get(made_by)
    # A known rule's digest of the content (even one that could not have made it);
    # for a rule this fleetsync does not know, any digest, the content's own or not.
    digest = (
        made.digest(content)
        if made is not None
        else data.draw(st.sampled_from(digests_of(content)) | HEX64)
    )
    built: list[PersonaContent] = []

    def build() -> PersonaContent:
        built.append(PersonaContent.from_members(members))
        return built[-1]

    expected = tuple(found for found in digests_of(content) if found != digest)
    assert aliases_of(StoredContent(members), digest, made_by, build) == expected
    assert len(built) <= 1


def test_aliases_of_content_no_rule_digests_otherwise_build_no_content() -> None:
    content = parse_public_content('{"display_name":"D","system_prompt":"S","model":"m"}')

    def build() -> PersonaContent:
        raise AssertionError("built the content, when which members it carries said enough")

    members = StoredContent(content.public_members())
    for each in RULES.values():
        assert aliases_of(members, each.digest(content), each.name, build) == ()


def test_aliases_of_avatar_content_name_the_seed_digest_or_the_current_one() -> None:
    content = parse_public_content(EVENT_1)
    members = StoredContent(content.public_members())
    seed, current = SEED.digest(content), CURRENT.digest(content)
    assert aliases_of(members, current, CURRENT.name, lambda: content) == (seed,)
    assert aliases_of(members, current, ERA_B.name, lambda: content) == (seed,)
    assert aliases_of(members, seed, SEED.name, lambda: content) == (current,)
