"""An in-memory view store: full replays fold into it before a bulk write,
and tests and audits use it as the simplest correct store."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from domain.ids import agent_id as agent_id_of
from projections.errors import ProjectionConflict
from projections.rows import AgentRow, PersonaRow, RelayRow


class MemoryViewStore:
    def __init__(self) -> None:
        self._position = 0
        self._mark = ""
        self.personas: dict[str, PersonaRow] = {}
        self.agents: dict[str, AgentRow] = {}
        self._members: dict[str, set[str]] = {}
        self._relays: list[RelayRow] = []

    def position(self) -> int:
        return self._position

    def mark(self) -> str:
        return self._mark

    # Rows are handed out as copies so a batch that fails to write leaves no trace.
    def persona(self, slug: str) -> PersonaRow | None:
        row = self.personas.get(slug)
        return copy.copy(row) if row is not None else None

    def agent(self, agent_id: str) -> AgentRow | None:
        row = self.agents.get(agent_id)
        return AgentRow(row) if row is not None else None

    def agent_by_pubkey(self, pubkey: str) -> AgentRow | None:
        row = self.agent(agent_id_of(pubkey).hex)
        return row if row is not None and row.pubkey == pubkey else None

    def agents_of_persona(self, slug: str) -> list[AgentRow]:
        return [AgentRow(self.agents[agent_id]) for agent_id in self._members.get(slug, ())]

    def persona_slugs(self) -> list[str]:
        return sorted(self.personas)

    def relays(self) -> list[RelayRow]:
        return [copy.copy(r) for r in self._relays]

    def write(
        self,
        expected_position: int,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
        mark: str,
        relays: Iterable[RelayRow] | None = None,
    ) -> None:
        if expected_position != self._position:
            raise ProjectionConflict("the view moved on while this batch was folded")
        for persona in personas:
            self.personas[persona.slug] = persona
        for agent in agents:
            old = self.agents.get(agent.agent_id)
            if old is not None:
                self._members.get(old.persona_slug, set()).discard(agent.agent_id)
            self._members.setdefault(agent.persona_slug, set()).add(agent.agent_id)
            self.agents[agent.agent_id] = agent
        if relays is not None:
            self._relays = list(relays)
        self._position = position
        self._mark = mark

    def adopt(
        self,
        position: int,
        personas: Iterable[PersonaRow],
        agents: dict[str, AgentRow],
        members: dict[str, set[str]],
        mark: str,
        relays: Iterable[RelayRow] = (),
    ) -> None:
        """Take over the rows of a replay from scratch (``members`` must match ``agents``)."""
        self.__init__()  # type: ignore[misc]
        self._relays = list(relays)
        self.personas = {p.slug: p for p in personas}
        self.agents = agents
        self._members = members
        self._position = position
        self._mark = mark

    def list_personas(self) -> list[PersonaRow]:
        return [copy.copy(self.personas[s]) for s in sorted(self.personas)]

    def list_agents(
        self,
        persona: str | None = None,
        statuses: Iterable[str] | None = None,
        include_retired: bool = True,
    ) -> list[AgentRow]:
        wanted = None if statuses is None else set(statuses)
        rows = [
            AgentRow(row)
            for row in self.agents.values()
            if (persona is None or row.persona_slug == persona)
            and (wanted is None or row.status in wanted)
            and (include_retired or not row.retired)
        ]
        rows.sort(key=lambda r: (r.persona_slug, r.created_position))
        return rows

    def replace_all(
        self,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
        mark: str,
        relays: Iterable[RelayRow] = (),
    ) -> None:
        self.__init__()  # type: ignore[misc]
        self.write(0, position, personas, agents, mark, relays)
