"""Persona use cases: save, list, show and delete.

A save or a delete that leaves agents with something to publish publishes it
right away through :func:`adapters.usecases.apply.publish` (the apply use
case), unless asked not to. Secrets (``env_vars``) never leave here: what
:func:`show_persona` returns names them only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.bootstrap import Fleet
from adapters.errors import AdapterError
from adapters.owner_events import OwnerEventResult
from adapters.ports import ProgressDisplay
from adapters.usecases.apply import NOT_PUBLISHED, Publication, publish
from adapters.usecases.persona_events import (
    publish_persona_deletion_event,
    publish_persona_event,
)
from domain.application import PersonaSaved
from domain.persona import PersonaDefinition
from domain.slugs import persona_slug
from projections.audit import PersonaVersion, persona_history
from projections.errors import ProjectionError
from projections.rows import PersonaRow

# Asked before a destructive step, with a sentence saying what will happen;
# raises to refuse (nothing has changed yet when it is asked).
Confirm = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PersonaSave:
    """A save: what was recorded, how many live agents follow the persona, the publish."""

    saved: PersonaSaved
    agents: int
    publication: Publication
    # The owner's kind:30175 (FLEETSYNC_PUBLISH_PERSONAS); None when the setting is off.
    persona_event: OwnerEventResult | None = None


def save_persona(
    fleet: Fleet,
    slug: str,
    definition: PersonaDefinition,
    *,
    publish_now: bool = True,
    progress: ProgressDisplay | None = None,
) -> PersonaSave:
    """Record a new version of persona ``slug`` (nothing if identical); publish it to
    its agents right away unless ``publish_now`` is false."""
    saved = fleet.app.save_persona(persona_slug(slug), definition, fleet.settings.actor)
    # Unchanged too: a relay that missed the last publish gets it now (nothing is sent
    # where the head carries the content already).
    persona_event = (
        publish_persona_event(fleet, saved.slug) if fleet.settings.publish_personas else None
    )
    if not saved.changed:
        return PersonaSave(saved, 0, Publication(skipped="persona unchanged"), persona_event)
    agents = _agent_count(fleet, saved.slug)
    if not agents:
        publication = Publication(skipped="no agents follow it")
    elif not publish_now:
        publication = NOT_PUBLISHED
    else:
        publication = publish(fleet, persona=saved.slug, progress=progress)
    return PersonaSave(saved, agents, publication, persona_event)


def _agent_count(fleet: Fleet, slug: str) -> int:
    """How many live agents follow ``slug``; only a hint, so a view failure is not fatal.

    The persona is already saved when this runs: failing the command now would
    report an error for a change that was recorded.
    """
    try:
        row = fleet.view().persona(slug)
    except (AdapterError, ProjectionError):
        return 0
    return row.agent_count if row is not None else 0


def list_personas(fleet: Fleet, *, include_deleted: bool = False) -> tuple[PersonaRow, ...]:
    """Every persona (deleted ones too with ``include_deleted``), as the view has them."""
    return tuple(r for r in fleet.view().personas() if include_deleted or not r.deleted)


@dataclass(frozen=True, slots=True)
class PersonaShown:
    """A persona's current version: public members, the names of its secrets, digests;
    and its version history when asked for."""

    slug: str
    revision: int
    deleted: bool
    digest: str
    secrets_digest: str
    members: dict[str, Any]
    env_names: tuple[str, ...]  # names only: the values are secrets
    history: tuple[PersonaVersion, ...] | None = None
    digest_rule: str = ""  # the rule of domain.digests that made ``digest``


def show_persona(fleet: Fleet, slug: str, *, history: bool = False) -> PersonaShown:
    """Persona ``slug`` (deleted ones too), and with ``history`` every version of it."""
    slug = persona_slug(slug)
    persona = fleet.app.get_persona(slug, include_deleted=True)
    definition = fleet.app.persona_definition(persona)
    return PersonaShown(
        slug=slug,
        revision=persona.revision,
        deleted=persona.deleted,
        digest=persona.digest,
        secrets_digest=persona.secrets_digest,
        members=definition.content.public_members(),
        env_names=tuple(sorted(definition.env_vars)),
        history=tuple(persona_history(fleet.log(), slug)) if history else None,
        digest_rule=persona.digest_rule,
    )


@dataclass(frozen=True, slots=True)
class PersonaDeletion:
    """A deletion: the live agents left without a persona, and the publish of their
    tombstones (None when there was none to try)."""

    slug: str
    live: int
    publication: Publication | None
    # The NIP-09 deletion of its kind:30175 (FLEETSYNC_PUBLISH_PERSONAS); None when off.
    persona_event: OwnerEventResult | None = None


def delete_persona(
    fleet: Fleet,
    slug: str,
    *,
    confirm: Confirm,
    publish_now: bool = True,
    progress: ProgressDisplay | None = None,
) -> PersonaDeletion:
    """Delete persona ``slug`` (its history is kept); with live agents, ``confirm`` is
    asked first. Their engrams are tombstoned right away unless ``publish_now`` is false."""
    slug = persona_slug(slug)
    fleet.app.get_persona(slug)  # unknown or already deleted: say so before asking
    row = fleet.view().persona(slug)
    live = row.agent_count if row is not None else 0
    if live:
        confirm(
            f"persona {slug!r} has {live} live agent(s); deleting it leaves them without "
            "a persona and tombstones their engrams on the relays"
        )
    fleet.app.delete_persona(slug, fleet.settings.actor)
    persona_event = (
        publish_persona_deletion_event(fleet, slug) if fleet.settings.publish_personas else None
    )
    # Its agents' engrams are tombstoned now, through apply (best effort).
    publication = None
    if live and publish_now:
        publication = publish(fleet, persona=slug, progress=progress)
    return PersonaDeletion(slug, live, publication, persona_event)
