"""NIP-AP persona events (``kind:30175``): building, checking and head selection.

The owner's persona definitions live on relays as plaintext addressable
events. The fleet-update adapters build them when a persona is saved and read
them back to find the current version of each persona (whose digest decides
whether agents' engrams are stale).

A failure names what is wrong (:class:`InvalidPersonaEvent` with a
:class:`PersonaFault`). Head selection discards events whose *envelope* is
invalid (kind, author, id and signature, ``d`` tag) before choosing the newest;
if the newest signed event carries unusable content, the selection says so
rather than silently falling back to an older version.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.nostr.errors import NostrError
from adapters.nostr.event import (
    Discarded,
    Event,
    EventFault,
    InvalidEvent,
    UnsignedEvent,
    why_invalid,
)
from adapters.nostr.keys import PublicKey
from domain.engram_body import check_plaintext_size
from domain.errors import InvalidPersona
from domain.persona import PERSONA_KIND, PersonaContent, parse_public_content
from domain.slugs import is_persona_slug, persona_slug

if TYPE_CHECKING:
    from adapters.ports import Signer

ALT_TEXT = "agent persona definition"

__all__ = [
    "ALT_TEXT",
    "PERSONA_KIND",
    "Discarded",
    "InvalidPersonaEvent",
    "PersonaFault",
    "PersonaSelection",
    "ValidPersona",
    "build_persona_event",
    "parse_persona_event",
    "select_persona_head",
]


class PersonaFault(enum.Enum):
    """Which check a persona event fails."""

    KIND = "kind"
    AUTHOR = "author"
    D_TAG = "d-tag"
    SIGNATURE = "signature"
    CONTENT = "content"


class InvalidPersonaEvent(NostrError):
    """An event is not a usable NIP-AP persona; ``fault`` says which check failed."""

    def __init__(self, fault: PersonaFault, message: str, event_id: str | None = None) -> None:
        super().__init__(f"persona event {fault.value}: {message}")
        self.fault = fault
        self.message = message
        self.event_id = event_id


def build_persona_event(
    owner: Signer,
    slug: str,
    content: PersonaContent,
    created_at: int,
    aux: bytes | None = None,
    *,
    alt: bool = False,
) -> Event:
    """Sign ``content`` as the owner's persona ``slug`` (``owner`` is its signer).

    Tags are ``[["d", slug]]`` (plus the NIP-31 ``alt`` tag when asked).
    Raises :class:`domain.errors.InvalidSlug` for a bad slug and
    :class:`domain.errors.TooLarge` for content over 65,535 bytes (NIP-AP
    *Writing*, step 2).
    """
    persona_slug(slug)
    body = content.public_json()
    check_plaintext_size(len(body.encode("utf-8")), what=f"persona {slug!r} as JSON")
    tags: list[tuple[str, ...]] = [("d", slug)]
    if alt:
        tags.append(("alt", ALT_TEXT))
    return owner.sign(UnsignedEvent(created_at, PERSONA_KIND, tags, body), aux=aux)


@dataclass(frozen=True, slots=True)
class ValidPersona:
    """A persona event that passed every check, with its slug and parsed content."""

    event: Event
    slug: str
    content: PersonaContent


def parse_persona_event(event: Event, owner: PublicKey | None = None) -> tuple[str, PersonaContent]:
    """Check ``event`` as a NIP-AP persona (by ``owner`` when given); return slug and content."""
    slug = _check_envelope(event, owner)
    return slug, _parse_content(event, slug)


def _check_envelope(event: Event, owner: PublicKey | None) -> str:
    if event.kind != PERSONA_KIND:
        raise InvalidPersonaEvent(
            PersonaFault.KIND, f"kind is {event.kind}, not {PERSONA_KIND}", event.id
        )
    if owner is not None and event.pubkey != owner.hex:
        raise InvalidPersonaEvent(
            PersonaFault.AUTHOR, f"authored by {event.pubkey}, not by {owner.hex}", event.id
        )
    d_tags = [tag for tag in event.tags if tag and tag[0] == "d"]
    if len(d_tags) != 1:
        raise InvalidPersonaEvent(
            PersonaFault.D_TAG, f"has {len(d_tags)} d tags; exactly one is required", event.id
        )
    slug = d_tags[0][1] if len(d_tags[0]) >= 2 else ""
    if not is_persona_slug(slug):
        raise InvalidPersonaEvent(
            PersonaFault.D_TAG, f"d tag {slug!r} is not a valid persona slug", event.id
        )
    try:
        reason = why_invalid(event)
    except (InvalidEvent, ValueError) as exc:
        raise InvalidPersonaEvent(
            PersonaFault.SIGNATURE, f"event cannot be checked: {exc}", event.id
        ) from exc
    if reason is EventFault.BAD_ID:
        raise InvalidPersonaEvent(
            PersonaFault.SIGNATURE, "id does not match the event's serialization", event.id
        )
    if reason is not None:
        raise InvalidPersonaEvent(PersonaFault.SIGNATURE, "signature does not verify", event.id)
    return slug


def _parse_content(event: Event, slug: str) -> PersonaContent:
    try:
        return parse_public_content(event.content)
    except InvalidPersona as exc:
        raise InvalidPersonaEvent(
            PersonaFault.CONTENT, f"persona {slug!r}: {exc}", event.id
        ) from exc


@dataclass(frozen=True, slots=True)
class PersonaSelection:
    """The head of one persona address over a set of events.

    ``head`` is ``None`` when no event is valid, or when the newest signed
    event's content is unusable; that event is then in ``unusable_head`` so
    the caller can report it (an older version is *not* taken instead: the
    owner did publish the newer one).
    """

    head: ValidPersona | None
    unusable_head: Discarded[InvalidPersonaEvent] | None
    superseded: tuple[Event, ...]
    discarded: tuple[Discarded[InvalidPersonaEvent], ...]


def select_persona_head(
    events: Iterable[Event], *, owner: PublicKey | None = None, slug: str | None = None
) -> PersonaSelection:
    """NIP-33 head (greatest ``created_at``, ties lowest id) among envelope-valid events.

    Events by another author than ``owner`` or for another slug than ``slug``
    are discarded. Without ``owner`` and ``slug`` the events must already
    share one address (as a filter on author and ``#d`` returns them);
    otherwise :class:`ValueError` is raised, since a head across personas
    means nothing.
    """
    candidates: dict[str, tuple[Event, str]] = {}
    discarded: list[Discarded[InvalidPersonaEvent]] = []
    seen: set[Event] = set()
    for event in events:
        if event in seen:
            continue
        seen.add(event)
        try:
            event_slug = _check_envelope(event, owner)
            if slug is not None and event_slug != slug:
                raise InvalidPersonaEvent(
                    PersonaFault.D_TAG, f"is persona {event_slug!r}, not {slug!r}", event.id
                )
        except InvalidPersonaEvent as exc:
            discarded.append(Discarded(event, exc))
            continue
        kept = candidates.get(event.id)
        if kept is None or event.sig < kept[0].sig:
            candidates[event.id] = (event, event_slug)
    addresses = {(event.pubkey, event_slug) for event, event_slug in candidates.values()}
    if len(addresses) > 1:
        raise ValueError(
            "events belong to several personas; pass owner and slug to select one head"
        )
    ranked = sorted(candidates.values(), key=lambda item: (-item[0].created_at, item[0].id))
    if not ranked:
        return PersonaSelection(None, None, (), tuple(discarded))
    newest, newest_slug = ranked[0]
    superseded = tuple(event for event, _ in ranked[1:])
    try:
        content = _parse_content(newest, newest_slug)
    except InvalidPersonaEvent as exc:
        return PersonaSelection(None, Discarded(newest, exc), superseded, tuple(discarded))
    return PersonaSelection(
        ValidPersona(newest, newest_slug, content), None, superseded, tuple(discarded)
    )
