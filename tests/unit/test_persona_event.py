"""NIP-AP persona events: building, checking, and selecting the head."""

from __future__ import annotations

import dataclasses

import pytest

from adapters.nostr.event import Event, sign_event, why_invalid
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_event import (
    ALT_TEXT,
    PERSONA_KIND,
    InvalidPersonaEvent,
    PersonaFault,
    build_persona_event,
    parse_persona_event,
    select_persona_head,
)
from adapters.nostr.signer import KeySigner
from domain.errors import InvalidSlug, TooLarge
from domain.persona import PersonaContent

OWNER = SecretKey.from_hex("00" * 31 + "01")
STRANGER = SecretKey.from_hex("44" * 32)
T0 = 1_700_000_000
TEST_AGENT = PersonaContent(
    display_name="Test Agent",
    system_prompt="You are a test assistant.",
    avatar_url="https://example.com/avatar.png",
    runtime="goose",
    model="claude-opus-4",
    provider="anthropic",
    name_pool=("Alpha", "Beta"),
)


def _raw(
    content: str,
    tags: list[list[str]] | None = None,
    *,
    kind: int = PERSONA_KIND,
    signer: SecretKey = OWNER,
    created_at: int = T0,
) -> Event:
    return sign_event(
        signer,
        created_at=created_at,
        kind=kind,
        tags=[["d", "test-agent"]] if tags is None else tags,
        content=content,
    )


def test_the_reference_event_1_is_built_with_the_exact_body_of_the_vector() -> None:
    event = build_persona_event(KeySigner(OWNER), "test-agent", TEST_AGENT, T0, aux=bytes(32))
    assert event.kind == 30175
    assert event.pubkey == "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    assert event.tags == (("d", "test-agent"),)
    assert event.content == (
        '{"display_name":"Test Agent","system_prompt":"You are a test assistant.",'
        '"avatar_url":"https://example.com/avatar.png","runtime":"goose",'
        '"model":"claude-opus-4","provider":"anthropic","name_pool":["Alpha","Beta"]}'
    )
    assert why_invalid(event) is None
    assert (
        build_persona_event(KeySigner(OWNER), "test-agent", TEST_AGENT, T0, aux=bytes(32)) == event
    )


def test_a_built_event_parses_back_to_its_slug_and_content() -> None:
    content = PersonaContent("Zoë", "line\nbreak\x00", name_pool=("\U0001f680",))
    event = build_persona_event(KeySigner(OWNER), "zoe", content, T0)
    assert parse_persona_event(event, OWNER.public_key) == ("zoe", content)
    assert parse_persona_event(event) == ("zoe", content)


def test_the_minimal_reference_body_parses() -> None:
    event = _raw('{"display_name":"Minimal","system_prompt":"Hello."}', [["d", "minimal"]])
    assert parse_persona_event(event) == ("minimal", PersonaContent("Minimal", "Hello."))


def test_the_alt_tag_is_added_only_when_asked() -> None:
    event = build_persona_event(KeySigner(OWNER), "p", TEST_AGENT, T0, alt=True)
    assert event.tags == (("d", "p"), ("alt", ALT_TEXT))
    assert parse_persona_event(event)[0] == "p"


@pytest.mark.parametrize("slug", ["", "Upper", "-lead", "a" * 65, "has space", "mem/persona"])
def test_an_invalid_slug_is_refused_when_building(slug: str) -> None:
    with pytest.raises(InvalidSlug):
        build_persona_event(KeySigner(OWNER), slug, TEST_AGENT, T0)


def test_a_persona_over_the_size_limit_is_refused() -> None:
    with pytest.raises(TooLarge, match="at most 65535"):
        build_persona_event(KeySigner(OWNER), "big", PersonaContent("D", "x" * 65_535), T0)


def _fault(event: Event, owner: SecretKey | None = None) -> PersonaFault:
    with pytest.raises(InvalidPersonaEvent) as info:
        parse_persona_event(event, None if owner is None else owner.public_key)
    assert info.value.event_id == event.id
    return info.value.fault


def test_an_event_of_another_kind_is_refused() -> None:
    assert _fault(_raw(TEST_AGENT.public_json(), kind=30174)) is PersonaFault.KIND


def test_an_event_by_another_author_is_refused_when_the_owner_is_given() -> None:
    event = _raw(TEST_AGENT.public_json(), signer=STRANGER)
    assert _fault(event, OWNER) is PersonaFault.AUTHOR
    assert parse_persona_event(event)[0] == "test-agent"


@pytest.mark.parametrize(
    "tags",
    [[], [["d", "a"], ["d", "b"]], [["d"]], [["d", "Bad"]], [["d", ""]], [["alt", "x"]]],
)
def test_exactly_one_d_tag_with_a_valid_slug_is_required(tags: list[list[str]]) -> None:
    assert _fault(_raw(TEST_AGENT.public_json(), tags)) is PersonaFault.D_TAG


def test_other_tags_do_not_matter() -> None:
    event = _raw(TEST_AGENT.public_json(), [["client", "x"], ["d", "ok"], ["t", "a", "b"]])
    assert parse_persona_event(event)[0] == "ok"


def test_a_tampered_or_forged_event_is_refused() -> None:
    event = build_persona_event(KeySigner(OWNER), "p", TEST_AGENT, T0)
    tampered = dataclasses.replace(event, content=event.content.replace("test", "evil"))
    forged = dataclasses.replace(event, sig="00" * 64)
    assert _fault(tampered) is PersonaFault.SIGNATURE
    assert _fault(forged) is PersonaFault.SIGNATURE


@pytest.mark.parametrize(
    "content",
    [
        '{"display_name":"D","system_prompt":"S","env_vars":{"K":"v"}}',
        '{"display_name":"D"}',
        '{"display_name":"D","system_prompt":5}',
        '{"display_name":"D","system_prompt":"S","system_prompt":"T"}',
        "not json",
        "[]",
    ],
)
def test_content_that_is_not_a_valid_public_persona_is_refused(content: str) -> None:
    assert _fault(_raw(content)) is PersonaFault.CONTENT


def test_env_vars_in_content_are_refused_with_an_explanation() -> None:
    event = _raw('{"display_name":"D","system_prompt":"S","env_vars":{"K":"v"}}')
    with pytest.raises(InvalidPersonaEvent, match="must not contain env_vars"):
        parse_persona_event(event)


def test_the_newest_valid_persona_event_is_the_head() -> None:
    first = build_persona_event(KeySigner(OWNER), "test-agent", TEST_AGENT, T0)
    updated = dataclasses.replace(TEST_AGENT, system_prompt="You are an updated test assistant.")
    third = build_persona_event(KeySigner(OWNER), "test-agent", updated, T0 + 2)
    selection = select_persona_head([first, third], owner=OWNER.public_key, slug="test-agent")
    assert selection.head is not None
    assert selection.head.event == third
    assert selection.head.content == updated
    assert selection.superseded == (first,)


def test_a_tie_goes_to_the_lowest_id() -> None:
    events = [
        build_persona_event(
            KeySigner(OWNER), "p", dataclasses.replace(TEST_AGENT, model=f"m{i}"), T0
        )
        for i in range(5)
    ]
    selection = select_persona_head(events)
    assert selection.head is not None
    assert selection.head.event.id == min(e.id for e in events)


def test_forged_and_foreign_events_are_discarded_before_selection() -> None:
    good = build_persona_event(KeySigner(OWNER), "p", TEST_AGENT, T0)
    forged_later = dataclasses.replace(
        build_persona_event(KeySigner(OWNER), "p", TEST_AGENT, T0 + 50), sig="11" * 64
    )
    by_stranger = build_persona_event(KeySigner(STRANGER), "p", TEST_AGENT, T0 + 60)
    other_slug = build_persona_event(KeySigner(OWNER), "q", TEST_AGENT, T0 + 70)
    selection = select_persona_head(
        [forged_later, good, by_stranger, other_slug, good], owner=OWNER.public_key, slug="p"
    )
    assert selection.head is not None
    assert selection.head.event == good
    faults = {d.event.id: d.error.fault for d in selection.discarded}
    assert faults == {
        forged_later.id: PersonaFault.SIGNATURE,
        by_stranger.id: PersonaFault.AUTHOR,
        other_slug.id: PersonaFault.D_TAG,
    }


def test_a_newest_event_with_unusable_content_is_reported_not_skipped() -> None:
    good = build_persona_event(KeySigner(OWNER), "p", TEST_AGENT, T0)
    broken = _raw('{"display_name":"D"}', [["d", "p"]], created_at=T0 + 1)
    selection = select_persona_head([good, broken])
    assert selection.head is None
    assert selection.unusable_head is not None
    assert selection.unusable_head.event == broken
    assert selection.unusable_head.error.fault is PersonaFault.CONTENT
    assert selection.superseded == (good,)


def test_events_of_several_personas_need_an_address() -> None:
    a = build_persona_event(KeySigner(OWNER), "a", TEST_AGENT, T0)
    b = build_persona_event(KeySigner(OWNER), "b", TEST_AGENT, T0)
    with pytest.raises(ValueError, match="several personas"):
        select_persona_head([a, b])
    selection = select_persona_head([a, b], slug="b")
    assert selection.head is not None
    assert selection.head.slug == "b"


def test_no_events_means_no_head() -> None:
    selection = select_persona_head([])
    assert selection.head is None
    assert selection.unusable_head is None
