"""The persona engram (NIP-AE slug ``mem/persona``) on the wire.

Fleet update seals one for every agent of a persona version and reads an
agent's current one (as the owner) to compare its ``source_version`` with the
persona's digest. The body text is identical for all agents of a version, so
it is built and prepared once (:func:`prepare_persona_body`) and sealed per
agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.nostr.engram import (
    Conversation,
    HeadSelection,
    PreparedBody,
    ValidEngram,
    prepare_body,
    seal,
)
from adapters.nostr.event import Event
from domain.engram_body import (
    MemoryBody,
    PersonaEngram,
    decode_persona_value,
    encode_persona,
)
from domain.errors import InvalidEngramBody
from domain.slugs import PERSONA_ENGRAM_SLUG

if TYPE_CHECKING:
    from adapters.ports import Signer


def prepare_persona_body(engram: PersonaEngram) -> PreparedBody:
    """Encode, check and pad a persona engram body once for all the agents of a version.

    The body is built valid, so it is padded without being parsed again.
    """
    return prepare_body(encode_persona(engram))


def seal_persona_engram(
    agent: Signer,
    conversation: Conversation,
    body: PreparedBody | str,
    created_at: int,
    *,
    nonce: bytes | None = None,
    aux: bytes | None = None,
) -> Event:
    """Seal a ``mem/persona`` body (prepared, or as text) for one agent."""
    prepared = body if isinstance(body, PreparedBody) else prepare_body(body)
    if prepared.slug != PERSONA_ENGRAM_SLUG:
        raise InvalidEngramBody(
            f"a persona engram is the {PERSONA_ENGRAM_SLUG!r} record, not {prepared.slug!r}"
        )
    return seal(agent, conversation, prepared, created_at, nonce=nonce, aux=aux)


def open_persona_engram(engram: ValidEngram) -> PersonaEngram | None:
    """The persona an engram carries; ``None`` for a tombstone.

    Raises :class:`domain.errors.InvalidEngramBody` when the record is valid
    NIP-AE but its value is not a persona engram.
    """
    body = engram.body
    if not isinstance(body, MemoryBody) or body.slug != PERSONA_ENGRAM_SLUG:
        raise InvalidEngramBody(f"expected the {PERSONA_ENGRAM_SLUG!r} record, got {body.slug!r}")
    if body.value is None:
        return None
    return decode_persona_value(body.value)


def open_persona_head(selection: HeadSelection) -> PersonaEngram | None:
    """The persona carried by a ``mem/persona`` head; ``None`` when absent or tombstoned."""
    if selection.head is None:
        return None
    return open_persona_engram(selection.head)
