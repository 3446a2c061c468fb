"""The fleet application: loads aggregates, calls them, saves their events.

It holds the write side only. Which agents are out of date, and why, is the
projections' job; this class answers "is this request allowed" and records
what happened.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain import digests, strictjson
from domain.aggregates import Agent, Persona, RelayList
from domain.engram_body import (
    PersonaEngram,
    Provenance,
    check_relay_size,
    encode_persona_body,
)
from domain.errors import PermanentDomainError, TemporaryDomainError
from domain.ids import agent_id, persona_id, relay_list_id
from domain.persona import (
    PersonaContent,
    PersonaDefinition,
    canonical_env_json,
    check_owner_definition,
    secrets_digest,
)
from domain.ports import SecretsVault
from domain.slugs import persona_slug
from domain.teams import TeamDefinition, Teams, UnknownTeam, teams_id


class UnknownPersona(PermanentDomainError):
    """No persona with that slug exists (or it was deleted)."""


class UnknownAgent(PermanentDomainError):
    """No agent with that public key exists."""


class AgentExists(PermanentDomainError):
    """An agent with that public key already exists."""


class ConcurrentChange(TemporaryDomainError):
    """Another writer recorded events for the same aggregates first."""


@dataclass(frozen=True, slots=True)
class PersonaSaved:
    slug: str
    changed: bool
    revision: int
    digest: str
    secrets_digest: str


@dataclass(frozen=True, slots=True)
class TeamSaved:
    team: str
    changed: bool  # the team itself (name, description, instructions, members)
    personas: tuple[PersonaSaved, ...]
    deleted: tuple[str, ...]  # personas deleted because they left the team

    @property
    def recorded(self) -> bool:
        return self.changed or bool(self.deleted) or any(p.changed for p in self.personas)


@dataclass(frozen=True, slots=True)
class NewAgent:
    pubkey: str
    persona_slug: str
    name: str
    # The owner's NIP-OA ``auth`` tag for it, checked by the caller, and where it came from.
    attestation: tuple[str, ...] | None = None
    attestation_origin: str = "minted"


class FleetApplication(Application[Any]):
    """Write side of fleetsync, over whichever event store the environment selects."""

    name = "fleetsync"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        vault: SecretsVault,
        owner_pubkey: str,
    ) -> None:
        super().__init__(env)
        self.vault = vault
        self.owner_pubkey = owner_pubkey

    # -- personas -----------------------------------------------------------------

    def save_persona(
        self,
        slug: str,
        definition: PersonaDefinition,
        actor: str,
        *,
        now: int | None = None,
        cause: dict[str, Any] | None = None,
    ) -> PersonaSaved:
        """Record a new version of a persona, if it differs from the current one.

        Refused before anything is recorded: a definition breaking the owner's
        rules (:func:`domain.persona.check_owner_definition`), and one whose
        engram NIP-44 could not carry or relays would not accept (``now``, the
        engram's ``created_at``, defaults to the clock). ``cause`` says what
        brought the version in when it is not the owner's own file (a relay
        event, a team); the audit shows it.
        """
        persona, saved = self.persona_version(slug, definition, actor, now=now, cause=cause)
        if saved.changed:
            self.save(persona)
        return saved

    def persona_version(
        self,
        slug: str,
        definition: PersonaDefinition,
        actor: str,
        *,
        now: int | None = None,
        cause: dict[str, Any] | None = None,
    ) -> tuple[Persona, PersonaSaved]:
        """:meth:`save_persona` without the save: the persona aggregate, with the new
        version pending when it differs, for a caller that records many in one
        transaction (:meth:`record_all`)."""
        persona_slug(slug)
        check_owner_definition(definition, slug)
        content = definition.content
        digest = content.digest()
        env_digest = secrets_digest(self.vault.digest_key, definition.env_vars)
        # Refuse now what could never be sealed: the body is the same for every agent.
        body = encode_persona_body(
            PersonaEngram(
                content,
                Provenance(self.owner_pubkey, slug, digest, env_digest),
                definition.env_vars,
            )
        )
        check_relay_size(body, created_at=int(time.time()) if now is None else now)
        persona = self._find_persona(slug)
        members = content.public_members()
        if persona is not None and not persona.differs_from(members, env_digest):
            # The same content: its recorded digest may be an earlier rule's, and stays.
            return persona, PersonaSaved(slug, False, persona.revision, persona.digest, env_digest)
        sealed = self.vault.seal(canonical_env_json(definition.env_vars).encode("utf-8"))
        rule = digests.CURRENT.name
        if persona is None:
            persona = Persona(slug, members, digest, env_digest, sealed, actor, cause, rule)
        else:
            persona.save(members, digest, env_digest, sealed, actor, cause, rule)
        return persona, PersonaSaved(slug, True, persona.revision, digest, env_digest)

    def record_all(self, aggregates: Sequence[Aggregate]) -> None:
        """Save the pending events of ``aggregates`` in one transaction: all or none."""
        pending = [agg for agg in aggregates if agg.pending_events]
        if not pending:
            return
        try:
            self.save(*pending)
        except IntegrityError as exc:  # a concurrent writer got there first
            raise ConcurrentChange(
                "another command changed these personas or agents at the same time; "
                "nothing was recorded, run it again"
            ) from exc

    def find_persona(self, slug: str) -> Persona | None:
        """The persona ``slug`` (deleted or not), or None if none was ever saved."""
        return self._find_persona(persona_slug(slug))

    # -- teams --------------------------------------------------------------------

    def teams(self) -> Teams:
        """Every team (an empty :class:`Teams` when none was ever saved)."""
        try:
            teams: Teams = self.repository.get(teams_id())
        except AggregateNotFoundError:
            teams = Teams()
        return teams

    def get_team(self, team: str) -> TeamDefinition:
        found = self.teams().get(team)
        if found is None:
            raise UnknownTeam(f"no team {team!r}; see 'fleetsync team list'")
        return found

    def save_team(
        self,
        definition: TeamDefinition,
        personas: Sequence[tuple[str, PersonaDefinition]],
        actor: str,
        *,
        delete: Sequence[str] = (),
    ) -> TeamSaved:
        """Record a team and its personas in one transaction: all of it, or nothing.

        Every persona is checked (and refused, with nothing recorded) before
        anything is saved; ``delete`` names personas that left the team and
        that no agent follows any more. Identical content records nothing.
        """
        cause = {"kind": "team", "team": definition.team, "source": definition.source}
        pending: list[Aggregate] = []
        saved: list[PersonaSaved] = []
        for slug, persona_definition in personas:
            persona, result = self.persona_version(slug, persona_definition, actor, cause=cause)
            saved.append(result)
            pending.append(persona)
        deleted: list[str] = []
        for slug in delete:
            gone = self._find_persona(slug)
            if gone is not None and not gone.deleted:
                gone.delete(actor)
                pending.append(gone)
                deleted.append(slug)
        teams = self.teams()
        team_changed = teams.save(definition, actor)
        pending.append(teams)
        self.record_all(pending)
        return TeamSaved(definition.team, team_changed, tuple(saved), tuple(deleted))

    def remove_team(self, team: str, actor: str, cause: dict[str, Any] | None = None) -> None:
        """Remove ``team``; ``cause`` says what asked for it when not the owner here."""
        teams = self.teams()
        teams.remove(team, actor, cause)
        self.save(teams)

    def delete_persona(self, slug: str, actor: str, cause: dict[str, Any] | None = None) -> None:
        """Delete persona ``slug``; ``cause`` says what asked for it when not the owner here."""
        persona = self.get_persona(slug)
        persona.delete(actor, cause)
        self.save(persona)

    def get_persona(self, slug: str, *, include_deleted: bool = False) -> Persona:
        persona = self._find_persona(persona_slug(slug))
        if persona is None or (persona.deleted and not include_deleted):
            raise UnknownPersona(f"no persona {slug!r}; see 'fleetsync persona list'")
        return persona

    def _find_persona(self, slug: str) -> Persona | None:
        try:
            persona: Persona = self.repository.get(persona_id(slug))
        except AggregateNotFoundError:
            return None
        return persona

    def persona_definition(self, persona: Persona) -> PersonaDefinition:
        """Rebuild a definition (secrets included) from a persona aggregate."""
        env = strictjson.loads(self.vault.open(persona.sealed_env_vars).decode("utf-8"))
        return PersonaDefinition(PersonaContent.from_members(persona.content), env)

    # -- agents -------------------------------------------------------------------

    def create_agents(
        self, agents: Sequence[NewAgent], actor: str, *, origin: str = "created"
    ) -> list[Agent]:
        """Create agents in one transaction: all of them are recorded, or none."""
        seen: set[str] = set()
        created: list[Agent] = []
        live_personas: dict[str, bool] = {}
        for new in agents:
            if new.persona_slug not in live_personas:
                self.get_persona(new.persona_slug)
                live_personas[new.persona_slug] = True
            if new.pubkey in seen or self._find_agent(new.pubkey) is not None:
                raise AgentExists(f"agent {new.pubkey} already exists")
            seen.add(new.pubkey)
            agent = Agent(new.pubkey, new.persona_slug, self.owner_pubkey, new.name, origin, actor)
            if new.attestation is not None:
                agent.attest(list(new.attestation), new.attestation_origin, actor)
            created.append(agent)
        try:
            self.save(*created)
        except IntegrityError as exc:  # a concurrent writer created one first
            raise AgentExists("one of these agents was created concurrently") from exc
        return created

    def get_agent(self, pubkey: str) -> Agent:
        agent = self._find_agent(pubkey)
        if agent is None:
            raise UnknownAgent(f"no agent {pubkey}; see 'fleetsync agent list'")
        return agent

    def _find_agent(self, pubkey: str) -> Agent | None:
        try:
            agent: Agent = self.repository.get(agent_id(pubkey))
        except AggregateNotFoundError:
            return None
        return agent

    def move_agent(self, pubkey: str, slug: str, actor: str) -> None:
        self.get_persona(slug)
        agent = self.get_agent(pubkey)
        agent.move(slug, actor)
        self.save(agent)

    def retire_agent(self, pubkey: str, actor: str) -> Agent:
        agent = self.get_agent(pubkey)
        agent.retire(actor)
        self.save(agent)
        return agent

    def attest_agent(self, pubkey: str, tag: list[str], origin: str, actor: str) -> bool:
        """Keep (or replace) an agent's owner attestation; False when it is the same."""
        agent = self.get_agent(pubkey)
        changed = agent.attest(tag, origin, actor)
        if changed:
            self.save(agent)
        return changed

    def record_key_destroyed(self, pubkey: str, actor: str) -> None:
        agent = self.get_agent(pubkey)
        agent.destroy_key(actor)
        self.save(agent)

    # -- relays -------------------------------------------------------------------

    def relay_urls(self) -> list[str]:
        try:
            relays: RelayList = self.repository.get(relay_list_id())
        except AggregateNotFoundError:
            return []
        return list(relays.urls)

    def add_relay(self, canonical_url: str, actor: str) -> bool:
        relays = self._relay_list()
        added = relays.add(canonical_url, actor)
        if added:
            self.save(relays)
        return added

    def remove_relay(self, canonical_url: str, actor: str) -> None:
        relays = self._relay_list()
        relays.remove(canonical_url, actor)
        self.save(relays)

    def _relay_list(self) -> RelayList:
        try:
            relays: RelayList = self.repository.get(relay_list_id())
        except AggregateNotFoundError:
            relays = RelayList()
        return relays
