"""The persona engram on the wire: sealed once per agent, opened by owner and agent."""

from __future__ import annotations

import pytest

from adapters.nostr.engram import Conversation, prepare_body, seal, select_head
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_engram import (
    open_persona_engram,
    open_persona_head,
    prepare_persona_body,
    seal_persona_engram,
)
from adapters.nostr.signer import KeySigner
from domain import strictjson
from domain.engram_body import PersonaEngram, Provenance, encode_memory_body, encode_persona_body
from domain.errors import InvalidEngramBody
from domain.persona import PersonaContent, secrets_digest
from domain.slugs import PERSONA_ENGRAM_SLUG

OWNER = SecretKey.from_hex("22" * 32)
AGENTS = [SecretKey.from_hex(f"{i:02x}" * 32) for i in (0x51, 0x52, 0x53)]
T0 = 1_700_000_000
CONTENT = PersonaContent(
    "Shepherd", "Watch releases.\nNever merge red.", runtime="goose", name_pool=("Ada",)
)
ENV = {"GITHUB_TOKEN": "ghp_secret", "REGION": "eu-west-1"}
ENGRAM = PersonaEngram(
    CONTENT,
    Provenance(OWNER.public_key.hex, "shepherd", CONTENT.digest(), secrets_digest(b"k" * 32, ENV)),
    ENV,
)


def test_one_prepared_body_is_sealed_for_every_agent_and_each_owner_reads_it_back() -> None:
    prepared = prepare_persona_body(ENGRAM)
    for agent in AGENTS:
        as_agent = Conversation.for_agent(agent, OWNER.public_key)
        event = seal_persona_engram(KeySigner(agent), as_agent, prepared, T0)
        as_owner = Conversation.for_owner(OWNER, agent.public_key)
        opened = open_persona_head(select_head(as_owner, PERSONA_ENGRAM_SLUG, [event]))
        assert opened == ENGRAM
        assert opened.content_matches_provenance
        assert open_persona_head(select_head(as_agent, PERSONA_ENGRAM_SLUG, [event])) == ENGRAM


def test_the_body_text_can_be_passed_instead_of_a_prepared_body() -> None:
    agent = AGENTS[0]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    event = seal_persona_engram(KeySigner(agent), conv, prepare_persona_body(ENGRAM).text, T0)
    assert open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, [event])) == ENGRAM


def test_the_newest_persona_engram_wins() -> None:
    agent = AGENTS[1]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    newer_content = PersonaContent("Shepherd", "Watch releases closely.")
    newer = PersonaEngram(
        newer_content, Provenance(OWNER.public_key.hex, "shepherd", newer_content.digest())
    )
    old = seal_persona_engram(KeySigner(agent), conv, prepare_persona_body(ENGRAM), T0)
    new = seal_persona_engram(KeySigner(agent), conv, prepare_persona_body(newer), T0 + 1)
    opened = open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, [new, old]))
    assert opened is not None
    assert opened.provenance.source_version == newer_content.digest()
    assert opened.env_vars == {}


def test_no_head_or_a_tombstone_reads_as_no_persona() -> None:
    agent = AGENTS[2]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    assert open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, [])) is None
    tomb = seal(KeySigner(agent), conv, encode_memory_body(PERSONA_ENGRAM_SLUG, None), T0)
    assert open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, [tomb])) is None


def test_only_the_mem_persona_record_is_a_persona_engram() -> None:
    agent = AGENTS[0]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    with pytest.raises(InvalidEngramBody, match="mem/persona"):
        seal_persona_engram(
            KeySigner(agent), conv, prepare_body(encode_memory_body("mem/x", "{}")), T0
        )
    other = seal(KeySigner(agent), conv, encode_memory_body("mem/x", "{}"), T0)
    head = select_head(conv, "mem/x", [other]).head
    assert head is not None
    with pytest.raises(InvalidEngramBody, match="mem/persona"):
        open_persona_engram(head)


def test_a_valid_record_whose_value_is_not_a_persona_is_reported() -> None:
    agent = AGENTS[0]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    event = seal(
        KeySigner(agent), conv, encode_memory_body(PERSONA_ENGRAM_SLUG, '{"display_name":"x"}'), T0
    )
    with pytest.raises(InvalidEngramBody, match="system_prompt"):
        open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, [event]))


def test_the_persona_secrets_stay_out_of_reprs() -> None:
    prepared = prepare_persona_body(ENGRAM)
    agent = AGENTS[0]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    head = select_head(
        conv, PERSONA_ENGRAM_SLUG, [seal_persona_engram(KeySigner(agent), conv, prepared, T0)]
    )
    for text in (repr(prepared), repr(head), repr(ENGRAM)):
        assert "ghp_secret" not in text


def test_a_persona_body_is_padded_without_being_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = encode_persona_body(ENGRAM)

    def no_parse(text: str | bytes) -> object:
        raise AssertionError("a body built valid was parsed again")

    monkeypatch.setattr(strictjson, "loads", no_parse)
    prepared = prepare_persona_body(ENGRAM)
    assert prepared.text == expected
    assert prepared.slug == PERSONA_ENGRAM_SLUG


def test_text_from_elsewhere_is_still_checked_before_sealing() -> None:
    with pytest.raises(InvalidEngramBody, match="refusing to seal"):
        prepare_body('{"slug":"mem/persona","value":1}')


def test_engram_and_persona_head_selection_report_the_same_discarded_type() -> None:
    from adapters.nostr.event import Discarded
    from adapters.nostr.persona_event import select_persona_head

    agent = AGENTS[0]
    conv = Conversation.for_agent(agent, OWNER.public_key)
    not_an_engram = seal_persona_engram(KeySigner(agent), conv, prepare_persona_body(ENGRAM), T0)
    engram_side = select_head(
        Conversation.for_agent(AGENTS[1], OWNER.public_key), PERSONA_ENGRAM_SLUG, [not_an_engram]
    )
    persona_side = select_persona_head([not_an_engram])
    assert [type(d) for d in engram_side.discarded] == [Discarded]
    assert [type(d) for d in persona_side.discarded] == [Discarded]
