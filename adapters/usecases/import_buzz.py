"""``import buzz``: bring a buzz desktop's personas and agents into a fleet, all or nothing.

:func:`import_buzz` is the use case. :func:`plan_import` reads nothing but
what it is given (the checked app data, a way to read buzz's keyring item,
the fleet) and decides every step before
anything is written; a record fleetsync cannot take raises
:class:`adapters.buzz.appdata.BuzzDataError` naming the file and the record.
:func:`carry_out` then stores the keys the fleet lacks and records every
persona version and agent in ONE transaction of the event store, so an import
is recorded whole or not at all; a second import of the same data records
nothing.

What an import does, and does not:

- a persona is saved under the slug buzz publishes it under (its
  ``normalize_d_tag``, :func:`domain.slugs.buzz_d_tag`); members fleetsync's
  persona does not have are named in the report as not carried, never dropped
  unsaid;
- an agent keeps its key pair (the key comes from ``private_key_nsec``, else
  from buzz's keyring item) and is created as ``imported``; an agent already
  here moves to the persona buzz links it to, and is otherwise left as it is
  (names are not changed, retired agents stay retired);
- an agent whose persona buzz no longer has is imported following that
  persona's slug, which no persona here holds: it shows ``persona-deleted``,
  as buzz shows it orphaned; an agent linked to no persona at all is skipped
  and named in the report (fleetsync keeps agents in step with a persona);
- each team of ``teams.json`` is recorded as a fleetsync team of the
  personas imported with it (members buzz no longer has are named, not kept);
- nothing is deleted or retired, and nothing is published: ``plan`` shows
  what ``apply`` would write. For ``plan`` to know what buzz wrote, the heads
  of the agents an import recorded are read from the relays right after it
  (:func:`read_heads`, a refresh of those agents), unless there is no relay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.domain import Aggregate

from adapters.attestation import IMPORTED, MINTED, checked_import, mint_tag
from adapters.bootstrap import Fleet
from adapters.buzz.appdata import (
    BuzzAgent,
    BuzzAppData,
    BuzzDataError,
    BuzzPersona,
    BuzzTeam,
)
from adapters.buzz.keyring import BuzzSecrets
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.usecases.apply import Refreshed, refresh
from domain import strictjson
from domain.aggregates import Agent
from domain.application import UnknownAgent
from domain.errors import DomainError, InvalidInput
from domain.names import check_name
from domain.persona import DEFINITION_MEMBERS, PersonaDefinition, parse_definition
from domain.slugs import buzz_d_tag
from domain.teams import TeamDefinition, Teams

CREATE = "create"
UPDATE = "update"
MOVE = "move"
UNCHANGED = "unchanged"
SKIP = "skip"
KEY_FROM_FILE = "file"
KEY_FROM_KEYRING = "keyring"
KEY_HERE = "here"  # the key store already holds it
ORIGIN = "imported"

SecretsReader = Callable[[], BuzzSecrets]


@dataclass(frozen=True, slots=True)
class PersonaStep:
    slug: str
    buzz_id: str
    action: str  # create | update | unchanged
    not_carried: tuple[str, ...]  # buzz members fleetsync's persona has no place for
    builtin: bool
    team: str | None
    definition: PersonaDefinition = field(repr=False)


@dataclass(frozen=True, slots=True)
class AgentStep:
    pubkey: str
    name: str
    persona: str | None  # the slug it follows (None: skipped)
    action: str  # create | move | unchanged | skip
    key_from: str | None  # file | keyring | here; None when skipped
    persona_missing: bool = False  # buzz no longer has its persona
    attestation: tuple[str, ...] | None = None
    note: str | None = None
    key: SecretKey | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class TeamStep:
    id: str
    name: str
    action: str  # create | update | unchanged
    personas: tuple[str, ...]  # slugs
    missing: tuple[str, ...]  # buzz ids of member personas buzz no longer has


@dataclass(frozen=True, slots=True)
class ImportPlan:
    data: BuzzAppData
    personas: tuple[PersonaStep, ...]
    agents: tuple[AgentStep, ...]
    teams: tuple[TeamStep, ...]
    notes: tuple[str, ...]
    aggregates: tuple[Aggregate, ...] = field(repr=False)
    changes: bool = False  # whether carrying it out writes anything

    @property
    def keys(self) -> list[SecretKey]:
        """The keys the key store lacks, to be stored before the events."""
        return [s.key for s in self.agents if s.key is not None and s.key_from != KEY_HERE]


def plan_import(fleet: Fleet, data: BuzzAppData, secrets: SecretsReader) -> ImportPlan:
    """Every step of the import, checked; nothing is written."""
    actor = fleet.settings.actor
    notes: list[str] = []
    aggregates: list[Aggregate] = []
    slug_of = {p.id: p.slug for p in data.personas}
    persona_steps: list[PersonaStep] = []
    for persona in data.personas:
        persona_step, persona_aggregate = _persona_step(fleet, persona, actor)
        persona_steps.append(persona_step)
        aggregates.append(persona_aggregate)
    not_carried = sorted({m for s in persona_steps for m in s.not_carried})
    if not_carried:
        notes.append(
            f"not carried: {', '.join(not_carried)}: fleetsync's persona has no such member "
            "yet; the personas listed with them keep the rest"
        )

    owner = fleet.owner.public_key.hex
    reader = _LazySecrets(secrets)
    agent_steps: list[AgentStep] = []
    for agent in data.agents:
        if agent.pubkey == owner:
            raise BuzzDataError(
                f"{agent.where}: that is this home's owner key; an agent needs a key of its own"
            )
        step, aggregate = _agent_step(fleet, agent, slug_of, reader, actor)
        agent_steps.append(step)
        if aggregate is not None:
            aggregates.append(aggregate)
    foreign_owners = {
        s.attestation[1] for s in agent_steps if s.attestation and s.attestation[1] != owner
    }
    identity = reader.loaded.identity if reader.loaded is not None else None
    if identity is not None and identity.public_key.hex != owner:
        foreign_owners.add(identity.public_key.hex)
    if foreign_owners:
        shown = ", ".join(PublicKey.from_hex(k).npub() for k in sorted(foreign_owners))
        notes.append(
            f"buzz's owner identity ({shown}) is not this home's owner "
            f"({PublicKey.from_hex(owner).npub()}): apply writes every engram anew under "
            "this owner; to keep buzz's engrams, import into a home made with "
            "'fleetsync init --owner-from-buzz'"
        )
    teams_aggregate = fleet.app.teams()
    teams = tuple(_team_step(teams_aggregate, team, slug_of, actor) for team in data.teams)
    if any(t.action != UNCHANGED for t in teams):
        # Only then: a home that never had a team gets an empty Teams, whose
        # creation an import with nothing to do must not record.
        aggregates.append(teams_aggregate)
    changes = any(s.key is not None for s in agent_steps) or any(
        agg.pending_events for agg in aggregates
    )
    return ImportPlan(
        data,
        tuple(persona_steps),
        tuple(agent_steps),
        teams,
        tuple(notes),
        tuple(aggregates),
        changes,
    )


def import_buzz(
    fleet: Fleet, data: BuzzAppData, secrets: SecretsReader, *, dry_run: bool
) -> ImportPlan:
    """Plan the import of ``data`` and, unless ``dry_run``, carry it out; returns the plan."""
    plan = plan_import(fleet, data, secrets)
    if not dry_run:
        carry_out(fleet, plan)
    return plan


def read_heads(fleet: Fleet, plan: ImportPlan) -> Refreshed | None:
    """Read from the relays the heads of the agents ``plan`` created or moved, as
    ``refresh`` reads them, so that ``plan`` knows the engrams buzz wrote (an agent
    whose engram carries its persona already is in sync, not ``missing``).

    ``None`` when the import recorded no agent or the fleet has no relay. Reading
    is not part of the import: a relay that cannot be read leaves it recorded,
    and the result says so.
    """
    recorded = {s.pubkey for s in plan.agents if s.action in (CREATE, MOVE)}
    if not recorded or not fleet.app.relay_urls():
        return None
    return refresh(fleet, only=recorded)


def carry_out(fleet: Fleet, plan: ImportPlan) -> None:
    """Store the keys the fleet lacks, then record every event in one transaction.

    Keys first: a key without an agent is harmless, an agent without its key
    could never publish.
    """
    keys = plan.keys
    if keys:
        fleet.keystore.put_many(keys)
    fleet.app.record_all(plan.aggregates)


# -- personas ---------------------------------------------------------------------------


def _persona_step(fleet: Fleet, persona: BuzzPersona, actor: str) -> tuple[PersonaStep, Aggregate]:
    carried = {k: v for k, v in persona.members.items() if k in DEFINITION_MEMBERS}
    dropped = tuple(sorted(k for k in persona.members if k not in DEFINITION_MEMBERS))
    try:
        # The same parse and rules as 'persona save' of a definition file.
        definition = parse_definition(strictjson.dumps_compact(carried))
        aggregate, saved = fleet.app.persona_version(
            persona.slug, definition, actor, cause={"kind": "buzz", "source": persona.file}
        )
    except DomainError as exc:
        raise BuzzDataError(f"{persona.where}: {exc}") from None
    if not saved.changed:
        action = UNCHANGED
    elif aggregate.revision == 1:
        action = CREATE
    else:
        action = UPDATE
    step = PersonaStep(
        persona.slug, persona.id, action, dropped, persona.builtin, persona.team, definition
    )
    return step, aggregate


# -- teams ------------------------------------------------------------------------------


def _team_step(teams: Teams, team: BuzzTeam, slug_of: dict[str, str], actor: str) -> TeamStep:
    """A team of teams.json as a fleetsync team of the personas imported with it (the
    members buzz no longer has are left out, and named)."""
    slugs = tuple(dict.fromkeys(slug_of[i] for i in team.persona_ids if i in slug_of))
    missing = tuple(i for i in team.persona_ids if i not in slug_of)
    try:
        definition = TeamDefinition(
            team.id, team.name, team.description, team.instructions, slugs, f"buzz:{team.file}"
        )
    except DomainError as exc:
        raise BuzzDataError(f"{team.where}: {exc}") from None
    current = teams.get(team.id)
    changed = teams.save(definition, actor)
    action = UNCHANGED if not changed else CREATE if current is None else UPDATE
    return TeamStep(team.id, team.name, action, slugs, missing)


# -- agents -----------------------------------------------------------------------------


class _LazySecrets:
    """buzz's keyring item, read the first time an agent needs it and not before:
    an import of keys that are all in the file never touches the keyring."""

    def __init__(self, read: SecretsReader) -> None:
        self._read = read
        self.loaded: BuzzSecrets | None = None

    def key(self, pubkey: str) -> SecretKey | None:
        if self.loaded is None:
            self.loaded = self._read()
        return self.loaded.agents.get(pubkey)


def _agent_step(
    fleet: Fleet,
    agent: BuzzAgent,
    slug_of: dict[str, str],
    secrets: _LazySecrets,
    actor: str,
) -> tuple[AgentStep, Aggregate | None]:
    try:
        name = check_name(agent.name, "name")
    except DomainError as exc:
        raise BuzzDataError(f"{agent.where}: {exc}") from None
    if agent.persona_id is None:
        note = "linked to no persona in buzz; 'fleetsync agent import' can adopt its key"
        return AgentStep(agent.pubkey, name, None, SKIP, None, note=note), None
    slug = slug_of.get(agent.persona_id)
    missing = slug is None
    if slug is None:
        slug = buzz_d_tag(agent.persona_id)
    try:
        existing: Agent | None = fleet.app.get_agent(agent.pubkey)
    except UnknownAgent:
        existing = None
    here = fleet.keystore.has(agent.pubkey)
    if existing is not None and fleet.keystore.is_destroyed(agent.pubkey):
        note = "retired here and its key destroyed; left as it is"
        return AgentStep(agent.pubkey, name, slug, UNCHANGED, None, missing, note=note), None
    key, key_from = (None, KEY_HERE) if here else _key_of(agent, secrets)
    if existing is None:
        created = Agent(agent.pubkey, slug, fleet.owner.public_key.hex, name, ORIGIN, actor)
        created.attest(*_attestation(fleet, agent), actor)
        step = AgentStep(
            agent.pubkey, name, slug, CREATE, key_from, missing, agent.auth_tag, key=key
        )
        return step, created
    notes = []
    if existing.name != name:
        notes.append(f"named {existing.name!r} here, {name!r} in buzz: the name is kept")
    action = UNCHANGED
    if existing.persona_slug != slug:
        if existing.retired:
            notes.append(f"retired here; buzz links it to {slug!r}: left retired")
        else:
            existing.move(slug, actor)
            action = MOVE
    step = AgentStep(
        agent.pubkey,
        existing.name,
        slug,
        action,
        key_from,
        missing,
        agent.auth_tag,
        "; ".join(notes) or None,
        key,
    )
    return step, existing


def _attestation(fleet: Fleet, agent: BuzzAgent) -> tuple[list[str], str]:
    """buzz's own attestation of the agent when it is this fleet's owner's and verifies;
    else one minted now (a tag by another owner cannot speak for this one)."""
    if agent.auth_tag is not None:
        try:
            tag = checked_import(agent.auth_tag, agent.pubkey, fleet.owner.public_key.hex)
        except InvalidInput:
            pass
        else:
            return list(tag), IMPORTED
    return list(mint_tag(fleet.owner, agent.pubkey)), MINTED


def _key_of(agent: BuzzAgent, secrets: _LazySecrets) -> tuple[SecretKey, str]:
    if agent.key is not None:
        return agent.key, KEY_FROM_FILE
    key = secrets.key(agent.pubkey)
    if key is None:
        raise BuzzDataError(
            f"{agent.where}: has no private_key_nsec, and buzz's keyring item has no entry "
            f"'agent:{agent.pubkey}': without its key the agent could never publish"
        )
    return key, KEY_FROM_KEYRING


# -- the report -------------------------------------------------------------------------


def plan_doc(plan: ImportPlan, *, dry_run: bool) -> dict[str, Any]:
    """The plan as --json shows it: no key, no secret value, ever."""
    return {
        "app_data": str(plan.data.root),
        "era": plan.data.era,
        "files": [str(f) for f in plan.data.files],
        "dry_run": dry_run,
        "recorded": plan.changes and not dry_run,
        "personas": [
            {
                "slug": s.slug,
                "buzz_id": s.buzz_id,
                "action": s.action,
                "builtin": s.builtin,
                "team": s.team,
                "env_vars": sorted(s.definition.env_vars),
                "not_carried": list(s.not_carried),
            }
            for s in plan.personas
        ],
        "agents": [
            {
                "pubkey": s.pubkey,
                "npub": PublicKey.from_hex(s.pubkey).npub(),
                "name": s.name,
                "persona": s.persona,
                "action": s.action,
                "key_from": s.key_from,
                "persona_missing": s.persona_missing,
                "attestation": list(s.attestation) if s.attestation else None,
                "note": s.note,
            }
            for s in plan.agents
        ],
        "teams": [
            {
                "id": t.id,
                "name": t.name,
                "action": t.action,
                "personas": list(t.personas),
                "missing": list(t.missing),
            }
            for t in plan.teams
        ],
        "notes": list(plan.notes),
    }


def count(steps: Sequence[PersonaStep] | Sequence[AgentStep], action: str) -> int:
    return sum(1 for s in steps if s.action == action)
