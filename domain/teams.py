"""Teams: named groups of personas, as buzz keeps them.

A team has an id (a legacy persona pack's ``id``, a buzz team's ``kind:30176``
``d`` tag such as a UUID or ``builtin-team:welcome``, or a name given at
import), a name, an optional description and instructions, and the slugs of
the personas it groups. Where a team came from (``pack:DIR``,
``snapshot:FILE``, ``relay:EVENT_ID``) is recorded with each version, so the
audit says what made it.

Every team lives in one aggregate, :class:`Teams`: teams are few and small,
and one stream keeps membership changes in one order. Saving a team identical
to the one recorded records nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidInput

# buzz accepts pack ids of [a-zA-Z0-9._-] (at most 128, not starting with '.', at
# least one alphanumeric); its built-in team ids add ':' (``builtin-team:welcome``).
_TEAM_ID = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}")
_ALNUM = re.compile(r"[A-Za-z0-9]")
MAX_TEAM_NAME_CHARS = 256
_TEAMS_NAMESPACE = UUID("0b7d4c55-27f5-4b8a-9a0f-6f3f8b8e2c11")


class InvalidTeam(InvalidInput):
    """A team id, name or member list breaks the rules."""


class UnknownTeam(InvalidInput):
    """No team with that id is recorded."""


def team_id(text: str) -> str:
    """Return ``text`` if it is a valid team id, else raise :class:`InvalidTeam`."""
    if _TEAM_ID.fullmatch(text) is None or _ALNUM.search(text) is None:
        raise InvalidTeam(
            f"invalid team id {text!r}: use 1-128 characters from A-Z, a-z, 0-9, '.', '_', "
            "':' and '-', not starting with '.', with at least one letter or digit"
        )
    return text


def team_id_from_name(name: str) -> str:
    """A team id for a team known only by its name (a ``buzz-team-snapshot``):
    lowercase, runs of anything outside ``[a-z0-9._-]`` become ``-``."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")[:128]
    if not text or _ALNUM.search(text) is None:
        raise InvalidTeam(f"team name {name!r} gives no usable team id; give one with --id ID")
    return text


@dataclass(frozen=True, slots=True)
class TeamDefinition:
    """One version of a team, as recorded."""

    team: str
    name: str
    description: str | None
    instructions: str | None
    personas: tuple[str, ...]  # persona slugs, in the team's order
    source: str  # where this version came from: pack:DIR, snapshot:FILE, relay:ID

    def __post_init__(self) -> None:
        team_id(self.team)
        if not self.name.strip():
            raise InvalidTeam(f"team {self.team!r} has a blank name")
        if len(self.name) > MAX_TEAM_NAME_CHARS:
            raise InvalidTeam(
                f"team {self.team!r} has a name of {len(self.name)} characters; "
                f"at most {MAX_TEAM_NAME_CHARS}"
            )
        if len(set(self.personas)) != len(self.personas):
            raise InvalidTeam(f"team {self.team!r} names a persona twice")

    def members(self) -> dict[str, Any]:
        """What is compared and recorded (the source is recorded, not compared)."""
        return {
            "name": self.name,
            "description": self.description,
            "instructions": self.instructions,
            "personas": list(self.personas),
        }

    @classmethod
    def from_record(cls, team: str, record: dict[str, Any]) -> TeamDefinition:
        return cls(
            team,
            record["name"],
            record["description"],
            record["instructions"],
            tuple(record["personas"]),
            record["source"],
        )


def teams_id() -> UUID:
    return uuid5(_TEAMS_NAMESPACE, "teams")


class Teams(Aggregate):
    """Every team of the fleet: its current version, and its history as events."""

    class Created(Aggregate.Created):
        class_version = 1

    class Saved(Aggregate.Event):
        """A team's new version: name, description, instructions, member personas."""

        class_version = 1
        team: str
        name: str
        description: str | None
        instructions: str | None
        personas: list[str]
        source: str
        actor: str

    class Removed(Aggregate.Event):
        """A team removed; ``cause`` names the NIP-09 request ``team pull`` read from
        the relays, when the removal came from there (v1 had none)."""

        class_version = 2
        team: str
        actor: str
        cause: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cause"] = None

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return teams_id()

    @event(Created)
    def __init__(self) -> None:
        self.teams: dict[str, dict[str, Any]] = {}

    def get(self, team: str) -> TeamDefinition | None:
        record = self.teams.get(team)
        return None if record is None else TeamDefinition.from_record(team, record)

    def save(self, definition: TeamDefinition, actor: str) -> bool:
        """Record ``definition``; identical to the current version, records nothing."""
        current = self.teams.get(definition.team)
        if current is not None and _compared(current) == definition.members():
            return False
        self._save(
            definition.team,
            definition.name,
            definition.description,
            definition.instructions,
            list(definition.personas),
            definition.source,
            actor,
        )
        return True

    @event(Saved)
    def _save(
        self,
        team: str,
        name: str,
        description: str | None,
        instructions: str | None,
        personas: list[str],
        source: str,
        actor: str,
    ) -> None:
        self.teams[team] = {
            "name": name,
            "description": description,
            "instructions": instructions,
            "personas": list(personas),
            "source": source,
        }

    def remove(self, team: str, actor: str, cause: dict[str, Any] | None = None) -> None:
        if team not in self.teams:
            raise UnknownTeam(f"no team {team!r}; see 'fleetsync team list'")
        self._remove(team, actor, cause)

    @event(Removed)
    def _remove(self, team: str, actor: str, cause: dict[str, Any] | None) -> None:
        del self.teams[team]

    def teams_of(self, slug: str) -> list[str]:
        """The ids of the teams ``slug`` is a member of."""
        return sorted(t for t, r in self.teams.items() if slug in r["personas"])


def _compared(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("name", "description", "instructions", "personas")}
