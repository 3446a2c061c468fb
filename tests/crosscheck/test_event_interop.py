"""Signed events against rust-nostr: engrams, personas and plain events, both directions."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.nostr.engram import ENGRAM_KIND, Conversation, seal, validate
from adapters.nostr.event import Event, compute_id, verify
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_engram import (
    open_persona_engram,
    prepare_persona_body,
    seal_persona_engram,
)
from adapters.nostr.persona_event import build_persona_event, parse_persona_event
from adapters.nostr.signer import KeySigner
from domain.engram_body import MemoryBody, PersonaEngram, Provenance, encode_memory_body
from domain.persona import PersonaContent
from tests.crosscheck.strategies import (
    awkward_text,
    env_vars,
    memory_slugs,
    persona_contents,
    persona_slugs,
    secret_keys,
)
from tests.support.examples import examples
from tests.support.sdk import (
    sdk_nip44_decrypt,
    sdk_nip44_encrypt,
    sdk_sign_event,
    sdk_verify_event_json,
)

PROPERTY = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
timestamps = st.integers(min_value=0, max_value=2**32)


@PROPERTY
@given(
    agent=secret_keys,
    owner=secret_keys,
    slug=memory_slugs,
    value=st.none() | awkward_text(),
    created_at=timestamps,
    alt=st.booleans(),
)
def test_nostr_sdk_verifies_and_decrypts_our_engrams(
    agent: SecretKey,
    owner: SecretKey,
    slug: str,
    value: str | None,
    created_at: int,
    alt: bool,
) -> None:
    body = encode_memory_body(slug, value)
    event = seal(
        KeySigner(agent), Conversation.for_agent(agent, owner.public_key), body, created_at, alt=alt
    )
    wire = event.to_json()
    assert sdk_verify_event_json(wire)
    content = json.loads(wire)["content"]
    assert sdk_nip44_decrypt(owner.secret_hex(), agent.public_key.hex, content) == body
    assert sdk_nip44_decrypt(agent.secret_hex(), owner.public_key.hex, content) == body


@PROPERTY
@given(
    agent=secret_keys,
    owner=secret_keys,
    slug=memory_slugs,
    value=st.none() | awkward_text(),
    created_at=timestamps,
)
def test_we_validate_engrams_written_by_nostr_sdk_as_owner_and_agent(
    agent: SecretKey, owner: SecretKey, slug: str, value: str | None, created_at: int
) -> None:
    as_owner = Conversation.for_owner(owner, agent.public_key)
    body = encode_memory_body(slug, value)
    content = sdk_nip44_encrypt(agent.secret_hex(), owner.public_key.hex, body)
    tags = [["d", as_owner.d_tag(slug)], ["p", owner.public_key.hex]]
    wire = sdk_sign_event(agent.secret_hex(), ENGRAM_KIND, tags, content, created_at)
    event = Event.from_json(wire)
    assert event.id == compute_id(event.pubkey, created_at, ENGRAM_KIND, event.tags, content)
    for side in (as_owner, Conversation.for_agent(agent, owner.public_key)):
        assert validate(side, event, slug).body == MemoryBody(slug, value)


@PROPERTY
@given(
    agent=secret_keys,
    owner=secret_keys,
    content=persona_contents,
    persona_slug=persona_slugs,
    secrets=env_vars,
)
def test_nostr_sdk_verifies_our_persona_engrams_and_its_plaintext_reads_back(
    agent: SecretKey,
    owner: SecretKey,
    content: PersonaContent,
    persona_slug: str,
    secrets: dict[str, str],
) -> None:
    engram = PersonaEngram(
        content, Provenance(owner.public_key.hex, persona_slug, content.digest()), secrets
    )
    prepared = prepare_persona_body(engram)
    as_agent = Conversation.for_agent(agent, owner.public_key)
    event = seal_persona_engram(KeySigner(agent), as_agent, prepared, 1_700_000_000)
    assert sdk_verify_event_json(event.to_json())
    text = sdk_nip44_decrypt(owner.secret_hex(), agent.public_key.hex, event.content)
    assert text == prepared.text
    opened = validate(Conversation.for_owner(owner, agent.public_key), event, "mem/persona")
    assert open_persona_engram(opened) == engram


@PROPERTY
@given(owner=secret_keys, slug=persona_slugs, content=persona_contents, created_at=timestamps)
def test_nostr_sdk_verifies_our_persona_events(
    owner: SecretKey, slug: str, content: PersonaContent, created_at: int
) -> None:
    event = build_persona_event(KeySigner(owner), slug, content, created_at)
    assert sdk_verify_event_json(event.to_json())
    theirs = Event.from_json(
        sdk_sign_event(owner.secret_hex(), 30175, [["d", slug]], event.content, created_at)
    )
    assert theirs.id == event.id
    assert parse_persona_event(theirs, owner.public_key) == (slug, content)


tag_names = st.sampled_from(["alt", "title", "summary", "subject", "x-custom"])
tags = st.lists(st.tuples(tag_names, awkward_text(max_size=30)).map(list), max_size=4)


@PROPERTY
@given(
    signer=secret_keys,
    kind=st.integers(min_value=0, max_value=65535),
    tags=tags,
    content=awkward_text(max_size=300),
    created_at=timestamps,
)
def test_we_verify_events_signed_by_nostr_sdk_and_compute_the_same_id(
    signer: SecretKey, kind: int, tags: list[list[str]], content: str, created_at: int
) -> None:
    wire = sdk_sign_event(signer.secret_hex(), kind, tags, content, created_at)
    event = Event.from_json(wire)
    verify(event)
    assert event.pubkey == signer.public_key.hex
    assert event.content == content
    assert [list(t) for t in event.tags] == tags
    assert event.id == compute_id(signer.public_key.hex, created_at, kind, event.tags, content)


def test_nostr_sdk_refuses_our_event_once_tampered() -> None:
    agent, owner = SecretKey.generate(), SecretKey.generate()
    event = seal(
        KeySigner(agent),
        Conversation.for_agent(agent, owner.public_key),
        encode_memory_body("mem/a", "x"),
        1,
    )
    assert sdk_verify_event_json(event.to_json())
    assert not sdk_verify_event_json(dataclasses.replace(event, created_at=2).to_json())
    assert not sdk_verify_event_json(dataclasses.replace(event, sig="00" * 64).to_json())


def test_the_nip_ap_reference_events_get_the_same_ids_from_nostr_sdk() -> None:
    owner = SecretKey.from_hex("00" * 31 + "01")
    base = PersonaContent(
        "Test Agent",
        "You are a test assistant.",
        "https://example.com/avatar.png",
        "goose",
        "claude-opus-4",
        "anthropic",
        ("Alpha", "Beta"),
    )
    updated = dataclasses.replace(
        base,
        system_prompt="You are an updated test assistant.",
        name_pool=("Alpha", "Beta", "Gamma"),
    )
    for slug, content, created_at in (
        ("test-agent", base, 1_700_000_000),
        ("test-agent", updated, 1_700_000_002),
    ):
        ours = build_persona_event(KeySigner(owner), slug, content, created_at, aux=bytes(32))
        assert sdk_verify_event_json(ours.to_json())
        theirs = Event.from_json(
            sdk_sign_event(owner.secret_hex(), 30175, [["d", slug]], ours.content, created_at)
        )
        assert theirs.id == ours.id
    minimal = '{"display_name":"Minimal","system_prompt":"Hello."}'
    theirs = Event.from_json(
        sdk_sign_event(owner.secret_hex(), 30175, [["d", "minimal"]], minimal, 1_700_000_001)
    )
    assert theirs.id == compute_id(owner.public_key.hex, 1_700_000_001, 30175, theirs.tags, minimal)
    assert parse_persona_event(theirs, owner.public_key) == (
        "minimal",
        PersonaContent("Minimal", "Hello."),
    )
