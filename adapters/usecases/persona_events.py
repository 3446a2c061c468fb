"""Personas on the relays: the owner's public ``kind:30175`` events.

With ``FLEETSYNC_PUBLISH_PERSONAS`` on, ``persona save`` publishes the persona's
public content as the owner (:func:`publish_persona_event`; ``env_vars`` never:
:func:`domain.persona.check_owner_definition` already refused a definition
that would show a secret in public, and the public content has no place for
them) and ``persona delete`` its NIP-09 deletion
(:func:`publish_persona_deletion_event`). Either is confirmed by read-back
(:mod:`adapters.owner_events`); a relay failure never undoes the save or the
deletion, it is reported.

:func:`pull_personas` reads the owner's ``kind:30175`` events and ``kind:5``
deletion requests from every relay. Versions the owner asked to delete are set
aside (:mod:`domain.deletions`: one rule for persona and team pulls); of the
rest it keeps the newest valid head per slug (events whose envelope or
signature is bad are set aside, each with its reason; a newest head whose
content is unusable is reported and its slug left alone, never replaced by an
older version), and records each head :mod:`domain.persona_pull` takes in as a
persona save whose cause is that event (id, created_at, the relays that
returned it): a persona edited in buzz moves its agents. A persona the relays
hold deleted is deleted here, with the request as the deletion's cause, as buzz
removes a persona when the owner's request arrives; its agents' engrams are
tombstoned as ``persona delete`` does (unless ``publish_now`` is false). The
persona's ``env_vars`` stay as saved here (relay content never carries them).
Pulling again records nothing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.bootstrap import Fleet, NoRelays
from adapters.errors import AdapterError
from adapters.nostr.event import Event, is_valid
from adapters.nostr.persona_event import select_persona_head
from adapters.nostr.signer import KeySigner
from adapters.owner_events import (
    OwnerEventResult,
    OwnerRead,
    deletion_requests,
    publish_persona,
    publish_persona_deletion,
    read_owner_events,
)
from adapters.ports import ProgressDisplay
from adapters.relay import RelayPool
from adapters.usecases.apply import NOT_PUBLISHED, Publication, publish
from domain.deletions import DELETION_KIND, AddressVersion, deleted_addresses, deleted_versions
from domain.errors import InvalidInput
from domain.persona import PERSONA_KIND, PersonaContent, PersonaDefinition
from domain.persona_pull import LocalPersona, PersonaHead, PullAction, decide, decide_deletions
from domain.slugs import is_persona_slug
from projections.audit import PersonaVersion, persona_history

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


def publish_persona_event(fleet: Fleet, slug: str) -> OwnerEventResult:
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
        return OwnerEventResult(PERSONA_KIND, slug, None, None, (), error=str(exc))


def publish_persona_deletion_event(fleet: Fleet, slug: str) -> OwnerEventResult:
    """Publish the NIP-09 deletion of the owner's persona ``slug``; never raises a relay
    failure."""
    timeout = fleet.settings.relay_timeout
    try:
        return _with_pool(
            fleet, lambda pool, owner: publish_persona_deletion(pool, owner, slug, timeout=timeout)
        )
    except AdapterError as exc:
        return OwnerEventResult(DELETION_KIND, slug, None, None, (), error=str(exc))


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
class DeletedHere:
    """A persona deleted here because the owner asked for it on the relays (NIP-09)."""

    slug: str
    event_id: str  # the deletion request
    created_at: int
    agents: int  # its live agents, whose engrams are tombstoned


@dataclass(frozen=True, slots=True)
class PersonaPull:
    taken: tuple[Taken, ...]
    skipped: tuple[Skipped, ...]
    read: tuple[str, ...]  # relays read in full
    unreadable: dict[str, str]  # relay -> why not
    agents: int  # live agents of the personas taken in or deleted
    publication: Publication
    deleted: tuple[DeletedHere, ...] = ()

    @property
    def verified(self) -> bool:
        return not self.unreadable


def pull_personas(
    fleet: Fleet, *, publish_now: bool = True, progress: ProgressDisplay | None = None
) -> PersonaPull:
    """Take in the owner's persona heads from the relays, and the deletions the owner
    asked for there (see the module docstring)."""
    timeout = fleet.settings.relay_timeout

    async def both(pool: RelayPool, owner: KeySigner) -> tuple[OwnerRead, OwnerRead]:
        return await asyncio.gather(
            read_owner_events(pool, owner, PERSONA_KIND, timeout=timeout),
            read_owner_events(pool, owner, DELETION_KIND, timeout=timeout),
        )

    read, deletions = _with_pool(fleet, both)
    owner = fleet.owner.public_key.hex
    requests = deletion_requests(deletions.events, owner, PERSONA_KIND)
    versions = _versions(read.events, owner)
    gone = deleted_versions(versions, requests)
    skipped: list[Skipped] = [
        Skipped(
            v.d,
            v.event_id,
            f"the owner asked to delete it (NIP-09 request {gone[v.event_id].event_id})",
        )
        for v in versions
        if v.event_id in gone
    ]
    heads, contents, invalid = _heads(fleet, tuple(e for e in read.events if e.id not in gone))
    skipped.extend(invalid)
    app = fleet.app
    history = _LocalHistory(fleet)
    requested = deleted_addresses(
        versions, requests, history.recorded() if any(r.ids for r in requests) else {}
    )
    slugs = {h.slug for h in heads} | set(requested)
    local = {slug: mine for slug in slugs if (mine := history.local(slug)) is not None}
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
    view = fleet.view()
    agents = [a.pubkey for t in taken for a in view.agents(persona=t.slug, include_retired=False)]
    deleted: list[DeletedHere] = []
    for asked in decide_deletions(requested, local):
        request = asked.request
        if not asked.delete:
            skipped.append(Skipped(asked.slug, request.event_id, asked.reason))
            continue
        live = [a.pubkey for a in view.agents(persona=asked.slug, include_retired=False)]
        cause = deletions.cause(request)
        app.delete_persona(asked.slug, fleet.settings.actor, cause=cause)
        deleted.append(DeletedHere(asked.slug, request.event_id, request.created_at, len(live)))
        agents.extend(live)
    if not taken and not deleted:
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
        _both_read(read, deletions),
        {**deletions.unreadable, **read.unreadable},
        len(agents),
        publication,
        tuple(deleted),
    )


def _both_read(read: OwnerRead, deletions: OwnerRead) -> tuple[str, ...]:
    """The relays read in full for both the personas and the deletion requests."""
    return tuple(url for url in read.answered if url in deletions.answered)


def _versions(events: tuple[Event, ...], owner: str) -> list[AddressVersion]:
    """Each of the owner's persona events with a valid id and signature, by its address."""
    versions: list[AddressVersion] = []
    for event in events:
        d_tags = [tag[1] for tag in event.tags if len(tag) >= 2 and tag[0] == "d"]
        if event.kind != PERSONA_KIND or event.pubkey != owner or len(d_tags) != 1:
            continue
        if not is_valid(event):
            continue
        versions.append(AddressVersion(d_tags[0], event.id, event.created_at))
    return versions


class _LocalHistory:
    """The personas saved here, as the pull weighs them against the relays.

    A version's time is when it was written: for one taken in from a relay event,
    that event's ``created_at`` (it was written in buzz then), else when it was
    recorded here.
    """

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._last: dict[str, PersonaVersion | None] = {}

    def _latest(self, slug: str) -> PersonaVersion | None:
        if slug not in self._last:
            versions = persona_history(self._fleet.log(), slug)
            self._last[slug] = versions[-1] if versions else None
        return self._last[slug]

    def local(self, slug: str) -> LocalPersona | None:
        persona = self._fleet.app.find_persona(slug)
        if persona is None:
            return None
        written = int(persona.modified_on.timestamp())
        latest = self._latest(slug)
        cause = latest.cause if latest is not None else None
        if cause is not None and cause.get("kind") == "relay":
            written = int(cause.get("created_at") or written)
        return LocalPersona(persona.digest, written, persona.deleted)

    def recorded(self) -> dict[str, str]:
        """Each live persona whose current version came from a relay event: that event."""
        found: dict[str, str] = {}
        for row in self._fleet.view().personas():
            latest = self._latest(row.slug)
            if latest is None or latest.deleted or latest.cause is None:
                continue
            if latest.cause.get("kind") == "relay":
                found[row.slug] = str(latest.cause.get("event_id"))
        return found


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
