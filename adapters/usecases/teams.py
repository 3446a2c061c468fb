"""The team use cases: bringing a team in, listing, showing and removing teams.

Bringing a team in (:func:`bring_in`): a legacy persona pack, a
``buzz-team-snapshot`` or a ``kind:30176`` team event (read by
:mod:`adapters.teams`) becomes persona saves and a team version, in one
transaction, then the changed personas are published to their agents.

The rules, whatever the source (:func:`bring_in`):

- **import** records a team not recorded yet. Run again on the same input it
  records nothing; on an input that has changed since, it refuses and points
  at ``team sync`` (buzz: "already installed ... use sync").
- **sync** brings a recorded team up to date, as buzz's ``sync_team_from_dir``
  did: its personas' public content is updated (their ``env_vars`` are kept,
  as buzz kept them), new personas are added, and a persona that left the
  team leaves its member list; it is deleted as well when no live agent
  follows it and no other team has it (buzz deleted it only when no agent
  used it).
- A persona slug already saved outside the team is never taken over: the
  input is refused, naming the persona.
- Every persona is checked before anything is recorded: a bad input records
  nothing (:meth:`domain.application.FleetApplication.save_team`).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.bootstrap import Fleet, NoRelays
from adapters.errors import PermanentAdapterError
from adapters.nostr.signer import KeySigner
from adapters.nostr.team_event import TEAM_KIND, SetAside, select_team_heads, team_versions
from adapters.owner_events import OwnerRead, deletion_requests, read_owner_events
from adapters.ports import ProgressDisplay
from adapters.usecases.apply import NOT_PUBLISHED, Publication, publish
from domain.application import TeamSaved
from domain.deletions import DELETION_KIND, deleted_addresses, deleted_versions
from domain.errors import InvalidInput
from domain.persona import PersonaDefinition
from domain.slugs import buzz_d_tag
from domain.teams import TeamDefinition, team_id

RELAY_SOURCE = "relay:"  # a team version's source when a kind:30176 event brought it


class Mode(enum.StrEnum):
    IMPORT = "import"
    SYNC = "sync"


class TeamRefused(PermanentAdapterError):
    """The team cannot be brought in as asked; nothing was recorded."""


@dataclass(frozen=True, slots=True)
class TeamInput:
    """A team and its personas (slug, definition), read from a pack, snapshot or event."""

    team: TeamDefinition
    personas: tuple[tuple[str, PersonaDefinition], ...]
    what: str  # how to name the input in messages: the pack directory, the file
    notes: tuple[str, ...] = ()  # what the input held that was left out, for the user


@dataclass(frozen=True, slots=True)
class TeamReport:
    team: str
    mode: Mode
    saved: TeamSaved
    kept: tuple[str, ...]  # personas that left the team but are still followed

    @property
    def added(self) -> list[str]:
        return [p.slug for p in self.saved.personas if p.changed and p.revision == 1]

    @property
    def updated(self) -> list[str]:
        return [p.slug for p in self.saved.personas if p.changed and p.revision > 1]

    @property
    def unchanged(self) -> list[str]:
        return [p.slug for p in self.saved.personas if not p.changed]


@dataclass(frozen=True, slots=True)
class TeamBroughtIn:
    report: TeamReport
    agents: int  # live agents of the personas whose content changed
    publication: Publication


def bring_in(
    fleet: Fleet,
    given: TeamInput,
    mode: Mode,
    *,
    publish_now: bool = True,
    progress: ProgressDisplay | None = None,
) -> TeamBroughtIn:
    """Record ``given`` as ``mode`` says (see the module docstring), then publish the
    changed personas to their agents unless ``publish_now`` is false."""
    report = record_team(fleet, given, mode, fleet.settings.actor)
    changed = [p.slug for p in report.saved.personas if p.changed]
    agents = _agents_of(fleet, changed)
    if not changed:
        publication = Publication(skipped="nothing changed")
    elif not agents:
        publication = Publication(skipped="no agents follow them")
    elif not publish_now:
        publication = NOT_PUBLISHED
    else:
        publication = publish(fleet, only=agents, progress=progress)
    return TeamBroughtIn(report, len(agents), publication)


def _agents_of(fleet: Fleet, slugs: list[str]) -> list[str]:
    if not slugs:
        return []
    view = fleet.view()
    return [a.pubkey for slug in slugs for a in view.agents(persona=slug, include_retired=False)]


@dataclass(frozen=True, slots=True)
class TeamPulled:
    team: str
    event_id: str
    changed: bool
    personas: tuple[str, ...]
    left_out: tuple[str, ...]  # persona ids naming no persona here


@dataclass(frozen=True, slots=True)
class TeamRemoved:
    """A team removed here because the owner asked for it on the relays (NIP-09)."""

    team: str
    event_id: str  # the deletion request
    created_at: int


@dataclass(frozen=True, slots=True)
class TeamPull:
    pulled: tuple[TeamPulled, ...]
    skipped: tuple[SetAside, ...]
    read: tuple[str, ...]
    unreadable: dict[str, str]
    removed: tuple[TeamRemoved, ...] = ()

    @property
    def verified(self) -> bool:
        return not self.unreadable


def pull_teams(fleet: Fleet) -> TeamPull:
    """Follow the owner's ``kind:30176`` team events: the newest valid head of each team
    is recorded as that team's version (nothing when it is the version recorded), and
    a team the owner asked to delete (NIP-09, :mod:`domain.deletions`: the same rule as
    ``persona pull``) is removed, the request recorded as the removal's cause.

    The event's ``persona_ids`` are buzz's persona ids; each names the persona whose
    slug buzz makes of it (:func:`domain.slugs.buzz_d_tag`), and one naming no persona
    here is left out and reported ('persona pull' first brings the owner's personas).
    What an older client's event leaves out (``instructions``, ``persona_ids``) keeps
    the value recorded here. As with a head, what the relays hold decides: a deleted
    team is removed here whatever brought its version in.
    """
    owner = KeySigner(fleet.owner)
    timeout = fleet.settings.relay_timeout
    urls = fleet.app.relay_urls()
    if not urls:
        raise NoRelays("no relays configured; add one with 'fleetsync relay add URL'")

    async def read() -> tuple[OwnerRead, OwnerRead]:
        pool = fleet.relay_pool(urls)
        try:
            return await asyncio.gather(
                read_owner_events(pool, owner, TEAM_KIND, timeout=timeout),
                read_owner_events(pool, owner, DELETION_KIND, timeout=timeout),
            )
        finally:
            await pool.close()

    found, deletions = asyncio.run(read())
    requests = deletion_requests(deletions.events, owner.public_key.hex, TEAM_KIND)
    versions = team_versions(found.events, owner.public_key)
    gone = deleted_versions(versions, requests)
    selection = select_team_heads((e for e in found.events if e.id not in gone), owner.public_key)
    skipped = [
        SetAside(
            v.d,
            v.event_id,
            f"the owner asked to delete it (NIP-09 request {gone[v.event_id].event_id})",
        )
        for v in versions
        if v.event_id in gone
    ]
    skipped += list(selection.discarded) + list(selection.unusable)
    pulled: list[TeamPulled] = []
    app = fleet.app
    for head in selection.heads:
        try:
            ident = team_id(head.team)
        except InvalidInput as exc:
            skipped.append(SetAside(head.team, head.event.id, str(exc)))
            continue
        current = app.teams().get(ident)
        content = head.content
        left_out: list[str] = []
        if content.persona_ids is None:
            personas = current.personas if current is not None else ()
        else:
            kept: list[str] = []
            for buzz_id in content.persona_ids:
                slug = buzz_d_tag(buzz_id)
                persona = app.find_persona(slug)
                if persona is None or persona.deleted:
                    left_out.append(buzz_id)
                elif slug not in kept:
                    kept.append(slug)
            personas = tuple(kept)
        instructions = content.instructions
        if not content.instructions_given and current is not None:
            instructions = current.instructions
        try:
            definition = TeamDefinition(
                ident,
                content.name,
                content.description,
                instructions,
                personas,
                f"{RELAY_SOURCE}{head.event.id}",
            )
        except InvalidInput as exc:
            skipped.append(SetAside(head.team, head.event.id, str(exc)))
            continue
        saved = app.save_team(definition, (), fleet.settings.actor)
        pulled.append(TeamPulled(ident, head.event.id, saved.changed, personas, tuple(left_out)))
    teams = app.teams()
    recorded = {
        team: record["source"].removeprefix(RELAY_SOURCE)
        for team, record in teams.teams.items()
        if record["source"].startswith(RELAY_SOURCE)
    }
    removed: list[TeamRemoved] = []
    for team, request in sorted(deleted_addresses(versions, requests, recorded).items()):
        if teams.get(team) is None:
            asked = f"the owner asked to delete it (NIP-09 request {request.event_id})"
            skipped.append(SetAside(team, request.event_id, f"{asked}; not here"))
            continue
        cause = deletions.cause(request)
        app.remove_team(team, fleet.settings.actor, cause=cause)
        removed.append(TeamRemoved(team, request.event_id, request.created_at))
    return TeamPull(
        tuple(pulled),
        tuple(skipped),
        tuple(url for url in found.answered if url in deletions.answered),
        {**deletions.unreadable, **found.unreadable},
        tuple(removed),
    )


def list_teams(fleet: Fleet) -> tuple[TeamDefinition, ...]:
    teams = fleet.app.teams()
    return tuple(found for t in sorted(teams.teams) if (found := teams.get(t)) is not None)


def show_team(fleet: Fleet, team: str) -> TeamDefinition:
    return fleet.app.get_team(team_id(team))


def remove_team(fleet: Fleet, team: str) -> str:
    ident = team_id(team)
    fleet.app.remove_team(ident, fleet.settings.actor)
    return ident


def record_team(fleet: Fleet, given: TeamInput, mode: Mode, actor: str) -> TeamReport:
    """Record ``given`` as ``mode`` says, without publishing."""
    app = fleet.app
    team = given.team
    teams = app.teams()
    current = teams.get(team.team)
    if mode is Mode.SYNC and current is None:
        raise TeamRefused(
            f"no team {team.team!r} to sync; bring it in first with 'fleetsync team import'"
        )
    personas: list[tuple[str, PersonaDefinition]] = []
    for slug, definition in given.personas:
        existing = app.find_persona(slug)
        owners = teams.teams_of(slug)
        if existing is not None and not existing.deleted and team.team not in owners:
            where = f"team {owners[0]!r}" if owners else "no team"
            raise TeamRefused(
                f"{given.what}: persona {slug!r} is already saved here (in {where}), not as "
                f"part of team {team.team!r}; it is not taken over. Delete or rename it first"
            )
        if mode is Mode.SYNC and existing is not None and not existing.deleted:
            # buzz's sync updates the public content only; the secrets stay as they are.
            definition = PersonaDefinition(
                definition.content, app.persona_definition(existing).env_vars
            )
        try:  # checked here to name the persona; save_team checks again, atomically
            app.persona_version(slug, definition, actor)
        except InvalidInput as exc:
            raise TeamRefused(f"{given.what}: persona {slug!r}: {exc}") from None
        personas.append((slug, definition))
    delete: list[str] = []
    kept: list[str] = []
    if current is not None:
        for slug in current.personas:
            if slug in team.personas:
                continue
            still_followed = _live_agents(fleet, slug) > 0
            in_other_team = [t for t in teams.teams_of(slug) if t != team.team]
            (kept if still_followed or in_other_team else delete).append(slug)
    if mode is Mode.IMPORT and current is not None and _would_change(fleet, team, personas):
        raise TeamRefused(
            f"team {team.team!r} is already imported and {given.what} differs from it; "
            "'fleetsync team sync' brings the changes in"
        )
    saved = app.save_team(team, personas, actor, delete=delete if mode is Mode.SYNC else ())
    return TeamReport(team.team, mode, saved, tuple(kept))


def _would_change(
    fleet: Fleet, team: TeamDefinition, personas: Sequence[tuple[str, PersonaDefinition]]
) -> bool:
    app = fleet.app
    current = app.teams().get(team.team)
    if current is None or current.members() != team.members():
        return True
    for slug, definition in personas:
        _, saved = app.persona_version(slug, definition, "check")
        if saved.changed:
            return True
    return False


def _live_agents(fleet: Fleet, slug: str) -> int:
    row = fleet.view().persona(slug)
    return row.agent_count if row is not None else 0
