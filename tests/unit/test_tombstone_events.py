"""The tombstone of a persona engram and the NIP-09 deletion request that follows it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.nostr.engram import (
    Conversation,
    deletion_request,
    seal,
    tombstone_body,
    validate,
)
from adapters.nostr.event import why_invalid
from adapters.nostr.keys import SecretKey
from adapters.nostr.signer import KeySigner
from domain.slugs import PERSONA_ENGRAM_SLUG

AGENT, OWNER = SecretKey.generate(), SecretKey.generate()


def test_the_tombstone_reads_back_as_a_tombstone_of_mem_persona() -> None:
    conv = Conversation.for_agent(AGENT, OWNER.public_key)
    event = seal(KeySigner(AGENT), conv, tombstone_body(PERSONA_ENGRAM_SLUG), 1_700_000_000)
    engram = validate(Conversation.for_owner(OWNER, AGENT.public_key), event, PERSONA_ENGRAM_SLUG)
    assert engram.is_tombstone


@given(created_at=st.integers(1, 2**32))
def test_the_deletion_request_names_the_record_and_predates_the_tombstone_by_a_second(
    created_at: int,
) -> None:
    conv = Conversation.for_agent(AGENT, OWNER.public_key)
    tombstone = seal(KeySigner(AGENT), conv, tombstone_body(PERSONA_ENGRAM_SLUG), created_at)
    deletion = deletion_request(KeySigner(AGENT), tombstone)
    d_tag = conv.d_tag(PERSONA_ENGRAM_SLUG)
    assert deletion.kind == 5
    assert deletion.pubkey == AGENT.public_key.hex
    assert [list(t) for t in deletion.tags] == [
        ["a", f"30174:{AGENT.public_key.hex}:{d_tag}"],
        ["k", "30174"],
    ]
    # Relays delete versions up to its created_at: every older one, not the tombstone.
    assert deletion.created_at == created_at - 1
    assert why_invalid(deletion) is None


def test_a_deletion_request_is_only_signed_by_the_tombstones_author() -> None:
    conv = Conversation.for_agent(AGENT, OWNER.public_key)
    tombstone = seal(KeySigner(AGENT), conv, tombstone_body(PERSONA_ENGRAM_SLUG), 100)
    with pytest.raises(ValueError, match="same agent"):
        deletion_request(KeySigner(SecretKey.generate()), tombstone)
