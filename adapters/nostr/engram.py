"""NIP-AE engrams (``kind:30174``): addressing, sealing, validity and head selection.

The fleet-update adapters call this to write an agent's engram (sealed and
signed *as the agent*, encrypted for the agent-owner pair) and to read the
current head back, as the owner or as the agent: the NIP-44 conversation key
is symmetric, so both build the same :class:`Conversation`.

Validity follows *Head selection* rules 1-5 in order, and a failure names the
rule (:class:`InvalidEngram`). The signature is checked before anything is
decrypted, as NIP-44 requires. Head selection discards invalid candidates
first, so junk with a late timestamp can never become the head.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.nostr.errors import DecryptionError, NostrError
from adapters.nostr.event import (
    Discarded,
    Event,
    EventFault,
    InvalidEvent,
    UnsignedEvent,
    why_invalid,
)
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.nostr.nip44 import ConversationKey, pad
from domain.deletions import DELETION_KIND as DELETION_KIND
from domain.engram_body import (
    Body,
    BodyRuleBroken,
    EncodedBody,
    MemoryBody,
    checked_body,
    decode_body,
    memory_body,
)
from domain.engram_size import ENGRAM_KIND as ENGRAM_KIND
from domain.errors import InvalidEngramBody
from domain.slugs import engram_slug

if TYPE_CHECKING:
    from adapters.ports import Signer

ALT_TEXT = "encrypted agent memory record"
_D_TAG_PREFIX = b"agent-memory/v1/d-tag\x00"
_D_TAG_CACHE_LIMIT = 4096


def derive_d_tag(conv_key: ConversationKey | bytes, slug: str) -> str:
    """``lower_hex(HMAC-SHA256(K_c, "agent-memory/v1/d-tag" || 0x00 || slug))``.

    Raises :class:`domain.errors.InvalidSlug` for a slug outside the NIP-AE grammar.
    """
    key = conv_key.secret_bytes() if isinstance(conv_key, ConversationKey) else conv_key
    if len(key) != 32:
        raise ValueError("conversation key must be 32 bytes")
    message = _D_TAG_PREFIX + engram_slug(slug).encode("utf-8")
    return hmac.digest(key, message, hashlib.sha256).hex()


@dataclass(frozen=True, slots=True)
class Conversation:
    """One agent-owner pair and its NIP-44 conversation key, built once per agent.

    Deriving the key costs an ECDH; sealing for an agent reuses it, and the
    ``d`` tag of each slug is computed once.
    """

    agent: PublicKey
    owner: PublicKey
    key: ConversationKey = field(repr=False)
    _d_tags: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def for_agent(cls, agent_sk: SecretKey, owner: PublicKey) -> Conversation:
        return cls(agent_sk.public_key, owner, ConversationKey.derive(agent_sk, owner))

    @classmethod
    def for_owner(cls, owner_sk: SecretKey, agent: PublicKey) -> Conversation:
        return cls(agent, owner_sk.public_key, ConversationKey.derive(owner_sk, agent))

    def d_tag(self, slug: str) -> str:
        cached = self._d_tags.get(slug)
        if cached is None:
            cached = derive_d_tag(self.key, slug)
            if len(self._d_tags) >= _D_TAG_CACHE_LIMIT:
                self._d_tags.clear()
            self._d_tags[slug] = cached
        return cached


class InvalidEngram(NostrError):
    """An event is not a valid engram; ``rule`` is the *Head selection* rule (1-5) it fails."""

    def __init__(self, rule: int, message: str, event_id: str | None = None) -> None:
        super().__init__(f"NIP-AE rule {rule}: {message}")
        self.rule = rule
        self.message = message
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class PreparedBody:
    """A body checked and padded once, ready to be sealed for any number of agents.

    Build it with :func:`prepare_body`. The persona engram's body is the same
    for every agent of a persona version, so checking, encoding and padding it
    once saves that per seal. ``text`` may hold secrets (``env_vars``) and
    stays out of ``repr``.
    """

    slug: str
    text: str = field(repr=False)
    padded: bytes = field(repr=False)


def prepare_body(body: str | EncodedBody) -> PreparedBody:
    """Pad a body for NIP-44; text from elsewhere is first checked as a reader would.

    An :class:`domain.engram_body.EncodedBody` was built valid and is not
    parsed again. Text raises :class:`domain.errors.TooLarge` past the cap
    (never truncated) and :class:`domain.errors.InvalidEngramBody` for a body
    a reader would discard.
    """
    if isinstance(body, str):
        try:
            body = checked_body(body)
        except BodyRuleBroken as exc:
            raise InvalidEngramBody(f"refusing to seal an invalid body: {exc.message}") from exc
    return PreparedBody(body.slug, body.text, pad(body.utf8))


def seal(
    agent: Signer,
    conversation: Conversation,
    body: str | EncodedBody | PreparedBody,
    created_at: int,
    *,
    nonce: bytes | None = None,
    aux: bytes | None = None,
    alt: bool = False,
) -> Event:
    """Encrypt ``body`` for the pair, tag it and sign it as the agent (``agent`` is
    its signer).

    Tags are exactly ``["d", d]`` and ``["p", owner]``, plus the NIP-31 ``alt``
    tag when ``alt`` is set. ``nonce`` and ``aux`` are for reproducible tests
    only; a retry must resend the *same* signed event, not seal again.
    """
    if agent.public_key != conversation.agent:
        raise ValueError("the signer given is not the conversation's agent key")
    if type(created_at) is not int or created_at < 0:
        raise ValueError("created_at must be a non-negative integer")
    prepared = body if isinstance(body, PreparedBody) else prepare_body(body)
    if nonce is None and aux is None:
        # One getrandom call for both rather than two: a syscall is paid per seal.
        randomness = os.urandom(64)
        nonce, aux = randomness[:32], randomness[32:]
    d_tag = conversation.d_tag(prepared.slug)
    content = conversation.key.encrypt_padded(prepared.padded, nonce)
    tags: tuple[tuple[str, ...], ...] = (("d", d_tag), ("p", conversation.owner.hex))
    if alt:
        tags += (("alt", ALT_TEXT),)
    return agent.sign(UnsignedEvent(created_at, ENGRAM_KIND, tags, content), aux=aux)


@dataclass(frozen=True, slots=True)
class ValidEngram:
    """An event that passed rules 1-5, with its decrypted body (kept out of ``repr``)."""

    event: Event
    body: Body = field(repr=False)

    @property
    def slug(self) -> str:
        return self.body.slug

    @property
    def is_tombstone(self) -> bool:
        return isinstance(self.body, MemoryBody) and self.body.value is None


def validate(conversation: Conversation, event: Event, slug: str | None = None) -> ValidEngram:
    """Apply *Head selection* rules 1-5 in order; raise :class:`InvalidEngram` at the first miss.

    With ``slug``, the event must also be the record of that slug (checked
    under rule 4, where the body's slug is tied to the ``d`` tag).
    """
    d_tag = _check_envelope(conversation, event)
    _check_signature(event)
    try:
        text = conversation.key.decrypt(event.content)
    except DecryptionError as exc:
        raise InvalidEngram(
            3, f"content does not decrypt under the conversation key: {exc}", event.id
        ) from exc
    try:
        body = decode_body(text, derives_to_d=lambda found: conversation.d_tag(found) == d_tag)
    except BodyRuleBroken as exc:
        raise InvalidEngram(exc.rule, exc.message, event.id) from exc
    if slug is not None and body.slug != slug:
        raise InvalidEngram(4, f"event is the record of {body.slug!r}, not of {slug!r}", event.id)
    return ValidEngram(event, body)


def _check_envelope(conversation: Conversation, event: Event) -> str:
    """Rule 1; returns the ``d`` tag value."""
    if event.kind != ENGRAM_KIND:
        raise InvalidEngram(1, f"kind is {event.kind}, not {ENGRAM_KIND}", event.id)
    if event.pubkey != conversation.agent.hex:
        raise InvalidEngram(
            1, f"authored by {event.pubkey}, not by the agent {conversation.agent.hex}", event.id
        )
    d_tag = _single_tag(event, "d")
    owner = _single_tag(event, "p")
    if owner != conversation.owner.hex:
        raise InvalidEngram(
            1, f"p tag names {owner}, not the owner {conversation.owner.hex}", event.id
        )
    return d_tag


def _single_tag(event: Event, name: str) -> str:
    found = [tag for tag in event.tags if tag and tag[0] == name]
    if len(found) != 1:
        raise InvalidEngram(1, f"has {len(found)} {name!r} tags; exactly one is required", event.id)
    if len(found[0]) < 2:
        raise InvalidEngram(1, f"the {name!r} tag has no value", event.id)
    return found[0][1]


def _check_signature(event: Event) -> None:
    """Rule 2 (NIP-01): the id matches the serialization and the signature verifies."""
    try:
        reason = why_invalid(event)
    except (InvalidEvent, ValueError) as exc:
        raise InvalidEngram(2, f"event cannot be checked: {exc}", event.id) from exc
    if reason is EventFault.BAD_ID:
        raise InvalidEngram(2, "id does not match the event's serialization", event.id)
    if reason is not None:
        raise InvalidEngram(2, "signature does not verify", event.id)


@dataclass(frozen=True, slots=True)
class HeadSelection:
    """The head of one slug over a set of candidates, and what was set aside."""

    head: ValidEngram | None
    superseded: tuple[ValidEngram, ...]
    discarded: tuple[Discarded[InvalidEngram], ...]


def select_head(
    conversation: Conversation, slug: str, candidates: Iterable[Event]
) -> HeadSelection:
    """Discard invalid candidates, then take the greatest ``created_at`` (ties: lowest id).

    Candidates usually come from the union of several relays, so the same
    event arrives more than once: identical copies count once. A copy with a
    forged signature is discarded without hiding a valid copy of the same id.
    """
    valid: dict[str, ValidEngram] = {}
    discarded: list[Discarded[InvalidEngram]] = []
    seen: set[Event] = set()
    for event in candidates:
        if event in seen:
            continue
        seen.add(event)
        try:
            engram = validate(conversation, event, slug)
        except InvalidEngram as exc:
            discarded.append(Discarded(event, exc))
            continue
        # Two valid copies of one id differ only in signature (BIP-340 aux
        # randomness); keep one deterministically.
        kept = valid.get(event.id)
        if kept is None or event.sig < kept.event.sig:
            valid[event.id] = engram
    ranked = sorted(valid.values(), key=lambda e: (-e.event.created_at, e.event.id))
    return HeadSelection(
        head=ranked[0] if ranked else None,
        superseded=tuple(ranked[1:]),
        discarded=tuple(discarded),
    )


def tombstone_body(slug: str) -> PreparedBody:
    """The NIP-AE tombstone of a memory slug: ``{"slug": slug, "value": null}``."""
    return prepare_body(memory_body(slug, None))


def deletion_request(agent: Signer, tombstone: Event, *, aux: bytes | None = None) -> Event:
    """The NIP-09 deletion request that follows a tombstone, signed by the agent.

    One ``a`` tag naming the record (``30174:<agent>:<d>``) and ``["k", "30174"]``,
    as NIP-AE asks. Relays that honour it delete every version of the record up to
    the request's ``created_at``; that is one second before the tombstone's, so
    they drop every engram it replaced (each is older: a write supersedes its head
    by at least a second) and keep the tombstone, which stays the head for readers
    of relays that ignore deletions. One target only: some relays refuse more.
    """
    if tombstone.kind != ENGRAM_KIND or tombstone.pubkey != agent.public_key.hex:
        raise ValueError("a deletion request follows a tombstone by the same agent")
    d_tag = next(tag[1] for tag in tombstone.tags if tag[0] == "d")
    unsigned = UnsignedEvent(
        max(tombstone.created_at - 1, 0),
        DELETION_KIND,
        (("a", f"{ENGRAM_KIND}:{tombstone.pubkey}:{d_tag}"), ("k", str(ENGRAM_KIND))),
        "",
    )
    return agent.sign(unsigned, aux=aux)
