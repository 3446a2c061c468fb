"""Personas on the relays: the owner's public ``kind:30175`` events.

With ``FLEETSYNC_PUBLISH_PERSONAS`` on, ``persona save`` publishes the persona's
public content as the owner (:func:`publish_persona_event`; ``env_vars`` never:
:func:`domain.persona.check_owner_definition` already refused a definition
that would show a secret in public, and the public content has no place for
them) and ``persona delete`` its NIP-09 deletion
(:func:`publish_persona_deletion_event`). Either is confirmed by read-back
(:mod:`adapters.owner_events`); a relay failure never undoes the save or the
deletion, it is reported.

:func:`pull_personas` reads the owner's ``kind:30175`` events from every
relay, keeps the newest valid head per slug (events whose envelope or
signature is bad are set aside, each with its reason; a newest head whose
content is unusable is reported and its slug left alone, never replaced by an
older version; a head the owner asked to delete with NIP-09 is not taken in,
nor deleted here: that tombstones its agents, so ``persona delete`` does it),
and records each head :mod:`domain.persona_pull` takes in as a
persona save whose cause is that event (id, created_at, the relays that
returned it): a persona edited in buzz moves its agents. The persona's
``env_vars`` stay as saved here (relay content never carries them). Pulling
again records nothing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.bootstrap import Fleet, NoRelays
from adapters.errors import AdapterError
from adapters.nostr.event import Event, why_invalid
from adapters.nostr.persona_event import select_persona_head
from adapters.nostr.signer import KeySigner
from adapters.owner_events import (
    DELETION_KIND,
    OwnerPublication,
    OwnerRead,
    publish_persona,
    publish_persona_deletion,
    read_owner_events,
)
from adapters.ports import ProgressDisplay
from adapters.relay import RelayPool
from adapters.usecases.apply import NOT_PUBLISHED, Publication, publish
from domain.errors import InvalidInput
from domain.persona import PERSONA_KIND, PersonaContent, PersonaDefinition
from domain.persona_pull import LocalPersona, PersonaHead, PullAction, decide
from domain.slugs import is_persona_slug

T = TypeVar("T")


def _with_pool(fleet: Fleet, work: Callable[[RelayPool, KeySigner], Awaitable[T]]) -> T:
    urls = fleet.app.relay_urls()
    if not urls:
        raise NoRelays("no relays configured; add one with 'fleetsync relay add URL'")

    async def run() -> T:
        pool = fleet.relay_pool(urls)
        try:
            return await work(pool, KeySigner(fleet.owner))
        finally:
            await pool.close()

    return asyncio.run(run())


def publish_persona_event(fleet: Fleet, slug: str) -> OwnerPublication:
    """Publish persona ``slug``'s current public content as the owner's ``kind:30175``
    (nothing is sent to a relay whose head carries it already). Never raises a relay
    failure: it is part of the result."""
    persona = fleet.app.get_persona(slug)
    content = PersonaContent.from_members(persona.content)
    timeout = fleet.settings.relay_timeout
    try:
        return _with_pool(
            fleet, lambda pool, owner: publish_persona(pool, owner, slug, content, timeout=timeout)
        )
    except AdapterError as exc:
        return OwnerPublication(PERSONA_KIND, slug, None, None, (), error=str(exc))


def publish_persona_deletion_event(fleet: Fleet, slug: str) -> OwnerPublication:
    """Publish the NIP-09 deletion of the owner's persona ``slug``; never raises a relay
    failure."""
    timeout = fleet.settings.relay_timeout
    try:
        return _with_pool(
            fleet, lambda pool, owner: publish_persona_deletion(pool, owner, slug, timeout=timeout)
        )
    except AdapterError as exc:
        return OwnerPublication(DELETION_KIND, slug, None, None, (), error=str(exc))


@dataclass(frozen=True, slots=True)
class Taken:
    slug: str
    event_id: str
    created_at: int
    revision: int
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    slug: str | None  # None: the event names no usable slug
    event_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PersonaPull:
    taken: tuple[Taken, ...]
    skipped: tuple[Skipped, ...]
    read: tuple[str, ...]  # relays read in full
    unreadable: dict[str, str]  # relay -> why not
    agents: int  # live agents of the personas taken in
    publication: Publication

    @property
    def verified(self) -> bool:
        return not self.unreadable


def pull_personas(
    fleet: Fleet, *, publish_now: bool = True, progress: ProgressDisplay | None = None
) -> PersonaPull:
    """Take in the owner's persona heads from the relays (see the module docstring)."""
    timeout = fleet.settings.relay_timeout

    async def both(pool: RelayPool, owner: KeySigner) -> tuple[OwnerRead, OwnerRead]:
        return await asyncio.gather(
            read_owner_events(pool, owner, PERSONA_KIND, timeout=timeout),
            read_owner_events(pool, owner, DELETION_KIND, timeout=timeout),
        )

    read, deletions = _with_pool(fleet, both)
    heads, contents, skipped = _heads(fleet, read.events)
    heads = _not_deleted(fleet, heads, deletions.events, skipped)
    app = fleet.app
    local: dict[str, LocalPersona] = {}
    for slug in {h.slug for h in heads}:
        persona = app.find_persona(slug)
        if persona is not None:
            local[slug] = LocalPersona(
                persona.digest, int(persona.modified_on.timestamp()), persona.deleted
            )
    taken: list[Taken] = []
    for decision in decide(heads, local):
        head = decision.head
        if decision.action is PullAction.SKIP:
            skipped.append(Skipped(head.slug, head.event_id, decision.reason))
            continue
        existing = app.find_persona(head.slug)
        env = app.persona_definition(existing).env_vars if existing is not None else {}
        relays = list(read.held.get(head.event_id, ()))
        cause = {
            "kind": "relay",
            "event_id": head.event_id,
            "created_at": head.created_at,
            "relay": relays[0] if relays else None,
            "relays": relays,
        }
        try:
            saved = app.save_persona(
                head.slug,
                PersonaDefinition(contents[head.event_id], env),
                fleet.settings.actor,
                cause=cause,
            )
        except InvalidInput as exc:
            skipped.append(Skipped(head.slug, head.event_id, f"cannot be saved here: {exc}"))
            continue
        if saved.changed:
            taken.append(
                Taken(head.slug, head.event_id, head.created_at, saved.revision, decision.reason)
            )
    agents = [
        a.pubkey for t in taken for a in fleet.view().agents(persona=t.slug, include_retired=False)
    ]
    if not taken:
        publication = Publication(skipped="nothing taken in")
    elif not agents:
        publication = Publication(skipped="no agents follow them")
    elif not publish_now:
        publication = NOT_PUBLISHED
    else:
        publication = publish(fleet, only=agents, progress=progress)
    return PersonaPull(
        tuple(taken),
        tuple(skipped),
        tuple(read.answered),
        dict(read.unreadable),
        len(agents),
        publication,
    )


def _not_deleted(
    fleet: Fleet, heads: list[PersonaHead], deletions: tuple[Event, ...], skipped: list[Skipped]
) -> list[PersonaHead]:
    """``heads`` without those the owner asked to delete (NIP-09, an ``a`` tag naming the
    address, dated no earlier than the head); each left out is reported. The persona
    here is not deleted: that tombstones its agents, so a person decides
    (``persona delete``)."""
    owner = fleet.owner.public_key.hex
    latest: dict[str, Event] = {}
    for deletion in deletions:
        if deletion.kind != DELETION_KIND or deletion.pubkey != owner or why_invalid(deletion):
            continue
        for tag in deletion.tags:
            prefix = f"{PERSONA_KIND}:{owner}:"
            if len(tag) >= 2 and tag[0] == "a" and tag[1].startswith(prefix):
                slug = tag[1][len(prefix) :]
                if slug not in latest or deletion.created_at > latest[slug].created_at:
                    latest[slug] = deletion
    kept = []
    for head in heads:
        request = latest.get(head.slug)
        if request is not None and request.created_at >= head.created_at:
            skipped.append(
                Skipped(
                    head.slug,
                    head.event_id,
                    f"the owner asked to delete it (NIP-09 request {request.id}); not taken "
                    "in, and not deleted here ('fleetsync persona delete' does that)",
                )
            )
        else:
            kept.append(head)
    return kept


def _heads(
    fleet: Fleet, events: tuple[Event, ...]
) -> tuple[list[PersonaHead], dict[str, PersonaContent], list[Skipped]]:
    """The newest valid head of each slug among ``events``, their contents by event id,
    and every event set aside with why."""
    owner = fleet.owner.public_key
    by_d: dict[str, list[Event]] = defaultdict(list)
    skipped: list[Skipped] = []
    for event in events:
        d_tags = [tag[1] for tag in event.tags if len(tag) >= 2 and tag[0] == "d"]
        if len(d_tags) != 1 or not is_persona_slug(d_tags[0]):
            named = d_tags[0] if len(d_tags) == 1 else None
            skipped.append(
                Skipped(
                    None,
                    event.id,
                    f"its d tag {named!r} is not a valid persona slug"
                    if named is not None
                    else f"has {len(d_tags)} d tags; exactly one is required",
                )
            )
            continue
        by_d[d_tags[0]].append(event)
    heads: list[PersonaHead] = []
    contents: dict[str, PersonaContent] = {}
    for slug, group in sorted(by_d.items()):
        selection = select_persona_head(group, owner=owner, slug=slug)
        for discarded in selection.discarded:
            skipped.append(Skipped(slug, discarded.event.id, discarded.error.message))
        if selection.unusable_head is not None:
            unusable = selection.unusable_head
            skipped.append(
                Skipped(
                    slug,
                    unusable.event.id,
                    f"the newest event is unusable ({unusable.error.message}); the persona "
                    "is left as it is here",
                )
            )
            continue
        if selection.head is None:
            continue
        valid = selection.head
        contents[valid.event.id] = valid.content
        heads.append(
            PersonaHead(slug, valid.event.id, valid.event.created_at, valid.content.digest())
        )
    return heads, contents, skipped
