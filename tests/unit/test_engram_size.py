"""The computed size of a sealed engram is the size of the engram really sealed.

The domain computes it from the body's length alone (no keys, no I/O); these
tests seal real events with real keys and compare byte counts.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr.engram import ALT_TEXT, Conversation, seal
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.nostr.signer import KeySigner
from adapters.relay.messages import event_frame
from domain.engram_body import (
    PersonaEngram,
    Provenance,
    check_relay_size,
    encode_memory_body,
)
from domain.engram_size import (
    ENGRAM_TAGS,
    MAX_EVENT_BYTES,
    MAX_PLAINTEXT_BYTES,
    max_engram_body_bytes,
    sealed_engram_message_size,
    sealed_engram_size,
)
from domain.errors import TooLarge
from domain.persona import PersonaContent
from tests.support.examples import examples

AGENT = SecretKey.from_hex("11" * 32)
OWNER = SecretKey.from_hex("22" * 32)
AS_AGENT = Conversation.for_agent(AGENT, OWNER.public_key)
NOW = 1_764_900_000
# Up to 18 digits: created_at of any width a real clock will give, and more.
CREATED_AT = st.integers(0, 10**18)
WRAPPER = len(encode_memory_body("mem/notes", ""))


def _body_of(size: int, fill: str) -> str:
    """A ``mem/notes`` body of exactly ``size`` UTF-8 bytes, ``fill`` repeated inside."""
    value_bytes = size - WRAPPER
    per = len(encode_memory_body("mem/notes", fill).encode("utf-8")) - WRAPPER  # '"' is 2
    text = fill * (value_bytes // per) + "x" * (value_bytes % per)
    return encode_memory_body("mem/notes", text)


@settings(max_examples=examples(60), deadline=None)
@given(
    size=st.integers(WRAPPER, MAX_PLAINTEXT_BYTES),
    fill=st.sampled_from(["x", "\u00e9", "\u65e5", "\U0001f680", '"', "\\"]),
    created_at=CREATED_AT,
    alt=st.booleans(),
)
def test_the_computed_size_is_the_size_of_the_sealed_event(
    size: int, fill: str, created_at: int, alt: bool
) -> None:
    body = _body_of(size, fill)
    assert len(body.encode("utf-8")) == size
    event = seal(KeySigner(AGENT), AS_AGENT, body, created_at, alt=alt)
    tags = (*ENGRAM_TAGS, ("alt", ALT_TEXT)) if alt else ENGRAM_TAGS
    assert sealed_engram_size(size, created_at=created_at, tags=tags) == len(
        event.to_json().encode("utf-8")
    )
    if not alt:
        frame = event_frame(event).encode("utf-8")
        assert sealed_engram_message_size(size, created_at=created_at) == len(frame)


@settings(max_examples=examples(20), deadline=None)
@given(prompt=st.text(max_size=3000), created_at=CREATED_AT)
def test_a_persona_engram_is_as_large_as_computed(prompt: str, created_at: int) -> None:
    content = PersonaContent(display_name="Writer", system_prompt=prompt)
    provenance = Provenance(OWNER.public_key.hex, "writer", content.digest(), "ef" * 32)
    body = prepare_persona_body(PersonaEngram(content, provenance, {"K": "v"}))
    event = seal_persona_engram(KeySigner(AGENT), AS_AGENT, body, created_at)
    expected = sealed_engram_size(len(body.text.encode("utf-8")), created_at=created_at)
    assert expected == len(event.to_json().encode("utf-8"))


def test_the_reported_60000_byte_prompt_makes_an_87963_byte_event() -> None:
    content = PersonaContent(display_name="Big", system_prompt="x" * 60_000)
    provenance = Provenance(OWNER.public_key.hex, "big", content.digest(), "ef" * 32)
    body = prepare_persona_body(PersonaEngram(content, provenance))
    assert sealed_engram_size(len(body.text), created_at=NOW) == 87_963
    assert len(seal_persona_engram(KeySigner(AGENT), AS_AGENT, body, NOW).to_json()) == 87_963


def test_the_largest_accepted_body_fits_and_one_byte_more_does_not() -> None:
    largest = max_engram_body_bytes(created_at=NOW)
    assert sealed_engram_message_size(largest, created_at=NOW) <= MAX_EVENT_BYTES
    assert sealed_engram_message_size(largest + 1, created_at=NOW) > MAX_EVENT_BYTES
    check_relay_size(_body_of(largest, "x"), created_at=NOW)
    with pytest.raises(TooLarge) as info:
        check_relay_size(_body_of(largest + 1, "x"), created_at=NOW)
    message = str(info.value)
    size = f"{sealed_engram_message_size(largest + 1, created_at=NOW):,}-byte event message"
    assert size in message
    assert f"at most {MAX_EVENT_BYTES:,} bytes" in message
    assert f"may be at most {largest:,}" in message
