"""Folding log records into the fleet view, a batch at a time.

The fold reads rows through a :class:`ViewStore` and keeps the ones it touched
in memory; :meth:`Fold.flush` recomputes the status of every touched agent and
hands the changed rows, with the new position, to the store in one write. So
the cost of a batch is proportional to the agents its events concern: a
persona edit touches that persona's agents, not the fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from domain.digests import aliases_of
from domain.persona import PersonaContent, StoredContent
from domain.planner import HeadOrigin, assess
from domain.ports import RecordFields
from domain.versioning import upcast
from projections.rows import (
    AGENT_COLUMNS,
    CREATED_POSITION,
    NEW_TAIL,
    PERSONA_SLUG,
    REASONS,
    STATUS,
    VERSION,
    AgentRow,
    PersonaRow,
    RelayRow,
)


class ViewStore(Protocol):
    """Where the fleet view's rows live (memory for replays, SQLite for the CLI)."""

    def position(self) -> int: ...

    def persona(self, slug: str) -> PersonaRow | None: ...

    def agent(self, agent_id: str) -> AgentRow | None: ...

    def agents_of_persona(self, slug: str) -> Iterable[AgentRow]: ...

    def persona_slugs(self) -> list[str]: ...

    def relays(self) -> list[RelayRow]:
        """The configured relays, in the order they were added."""
        ...

    def mark(self) -> str:
        """``originator_id:version`` of the record at ``position()`` ("" before any)."""
        ...

    def write(
        self,
        expected_position: int,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
        mark: str,
        relays: Iterable[RelayRow] | None = None,
    ) -> None:
        """``relays``, when given, replace the relay rows (None leaves them as they are)."""
        ...


# What the fold computes, by revision: bump it when a column comes out differently
# from the same log (the columns and their types name the rest of a stored view's
# layout by themselves: rows.ROW_LAYOUT), so views folded by older rules are rebuilt.
RULES = 1

_PREFIX = "domain.aggregates:"


def _class_versions() -> dict[str, int]:
    """Each stored event class's topic, and the version it is at now."""
    from eventsourcing.utils import get_topic

    from domain import aggregates

    versions = {}
    for aggregate in (
        aggregates.Persona,
        aggregates.Agent,
        aggregates.RelayList,
        aggregates.RelayReading,
        aggregates.RelayTraffic,
    ):
        for value in vars(aggregate).values():
            if isinstance(value, type) and hasattr(value, "class_version"):
                versions[get_topic(value)] = value.class_version
    return versions


# The columns a new agent's row starts with, as Fold.apply lists them.
NEW_COLUMNS = (
    "agent_id",
    "pubkey",
    "name",
    "persona_slug",
    "owner_pubkey",
    "origin",
    "created_at",
    "created_position",
    "assigned_position",
    "status",
    "reasons",
)
if AGENT_COLUMNS[: len(NEW_COLUMNS)] != NEW_COLUMNS or len(NEW_COLUMNS) != REASONS + 1:
    raise TypeError("Fold.apply builds a new agent's row in an order AgentRow no longer has")

_VERSIONS = _class_versions()
# Topics whose event class is still at version 1: their state is current as stored.
_CURRENT_TOPICS = frozenset(topic for topic, v in _VERSIONS.items() if v == 1)
_AGENT_CREATED = _PREFIX + "Agent.Created"


class Fold:
    """One batch of the projection: apply records, then flush the touched rows."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        self.start = store.position()
        self.position = self.start
        self.mark = ""
        self.personas: dict[str, PersonaRow | None] = {}
        self.agents: dict[str, AgentRow] = {}
        self.members: dict[str, set[str]] = {}
        self.dirty_personas: set[str] = set()
        self.dirty_agents: set[str] = set()
        self._blank: dict[str, tuple[str, str]] = {}
        self._relays: dict[str, RelayRow] | None = None  # read when first needed
        self._relay_urls: tuple[str, ...] | None = None
        self.dirty_relays = False

    # -- row access through the batch cache ------------------------------------------

    def persona(self, slug: str) -> PersonaRow | None:
        if slug not in self.personas:
            self.personas[slug] = self.store.persona(slug)
        return self.personas[slug]

    def agent(self, agent_id: str) -> AgentRow | None:
        row = self.agents.get(agent_id)
        if row is None:
            # Misses are not kept: a consistent log has no events about unknown
            # agents, and the table stays the batch's rows alone (see view.replay).
            row = self.store.agent(agent_id)
            if row is not None:
                self.agents[agent_id] = row
        return row

    def members_of(self, slug: str) -> set[str]:
        if slug not in self.members:
            # Read the rows with the ids: a persona edit then needs no lookup per agent.
            members = self.members[slug] = set()
            for row in self.store.agents_of_persona(slug):
                agent_id = row[0]
                members.add(agent_id)
                if agent_id not in self.agents:  # a row this batch changed is newer
                    self.agents[agent_id] = row
        return self.members[slug]

    def relays(self) -> dict[str, RelayRow]:
        """The configured relays by URL, as of the records folded so far."""
        if self._relays is None:
            self._relays = {r.url: r for r in self.store.relays()}
        return self._relays

    def relay_urls(self) -> tuple[str, ...]:
        """What the planner judges each agent against."""
        if self._relay_urls is None:
            self._relay_urls = tuple(self.relays())
        return self._relay_urls

    def _touch_agent(self, agent_id: str, version: int) -> AgentRow | None:
        """The row an event about the agent changes, now as of that event's version."""
        row = self.agent(agent_id)
        if row is not None:
            row[VERSION] = version
            self.dirty_agents.add(row.agent_id)
        return row

    # -- applying records --------------------------------------------------------------

    def apply(self, records: Iterable[RecordFields]) -> int:
        """Fold records in; returns how many there were."""
        handlers = _HANDLERS
        current = _CURRENT_TOPICS
        versions = _VERSIONS
        # A replay is mostly one Agent.Created per agent: that event is folded here,
        # inline, with the batch's tables held in locals. As a handler it cost a
        # call and a dozen attribute lookups per agent, a fifth of a full replay.
        agents, members, personas = self.agents, self.members, self.personas
        blank, dirty_personas = self._blank, self.dirty_personas
        # Once Agent.Created moves past version 1, every stored one needs an upcast.
        created_moved_on = _AGENT_CREATED not in current
        position = self.position
        count = 0
        originator_id, version = "", 0
        for count, (position, originator_id, version, topic, state) in enumerate(records, 1):  # noqa: B007 (the count is the result)
            if topic == _AGENT_CREATED:
                if created_moved_on or "class_version" in state:
                    state = upcast(topic, state)
                slug = state["persona_slug"]
                # A new agent has no history, so its verdict is its persona's verdict
                # for blank agents (AgentRow.is_blank), judged once per persona
                # version. Any later event about the agent or its persona marks it
                # dirty and settle() judges it again.
                judged = blank.get(slug)
                status, reasons = judged if judged is not None else ("", "")
                # The columns in AGENT_COLUMNS order (NEW_COLUMNS, then NEW_TAIL). A
                # list display, not a call: the cheapest way to build the one row per
                # agent a replay makes.
                agents[originator_id] = row = AgentRow(
                    [
                        originator_id,
                        state["pubkey"],
                        state["name"],
                        slug,
                        state["owner_pubkey"],
                        state["origin"],
                        state["timestamp"],
                        position,
                        position,
                        status,
                        reasons,
                        *NEW_TAIL,
                    ]
                )
                if judged is None:
                    row[STATUS], row[REASONS] = blank[slug] = self._judge(row)
                in_persona = members.get(slug)
                if in_persona is None:
                    in_persona = self.members_of(slug)
                in_persona.add(originator_id)
                persona = personas.get(slug)
                if persona is None:
                    persona = self.persona(slug)
                if persona is not None:
                    persona.agent_count += 1
                    dirty_personas.add(slug)
                continue
            handler = handlers.get(topic)
            if handler is not None:
                # State stored at its class's current version needs no upcast (a
                # version past 1 is stored with it, version 1 is stored without).
                if state.get("class_version", 1) != versions.get(topic, 1):
                    state = upcast(topic, state)
                handler(self, position, originator_id, version, state)
        self.position = position
        if count:
            # Which record the view stops at: a later run checks the log still has it.
            self.mark = f"{originator_id}:{version}"
        return count

    def _persona_saved(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        slug = state["slug"]
        row = self.persona(slug)
        if row is None:
            row = PersonaRow(slug, "", "", False, 0, 0, "", "", "")
            self.personas[slug] = row
        row.digest = state["digest"]
        members = state["content"]
        # The content's digests by the other rules (digests_of), worked out from which
        # members it carries: most saves hash nothing and build no PersonaContent.
        row.aliases = " ".join(
            aliases_of(
                StoredContent(members),
                row.digest,
                state["digest_rule"],
                lambda: PersonaContent.from_members(members),
            )
        )
        row.secrets_digest = state["secrets_digest"]
        row.deleted = False
        row.revision += 1
        row.position = position
        row.display_name = state["content"]["display_name"]
        row.actor = state["actor"]
        row.saved_at = str(state["timestamp"])
        self._blank.pop(slug, None)
        self.dirty_personas.add(slug)
        self.dirty_agents.update(self.members_of(slug))

    def _persona_deleted(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self.persona(state["slug"])
        if row is None:
            return
        row.deleted = True
        row.position = position
        row.actor = state["actor"]
        self._blank.pop(row.slug, None)
        self.dirty_personas.add(row.slug)
        self.dirty_agents.update(self.members_of(row.slug))

    def _count(self, slug: str, delta: int) -> None:
        persona = self.persona(slug)
        if persona is not None:
            persona.agent_count += delta
            self.dirty_personas.add(slug)

    def _agent_moved(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is None:
            return
        self.members_of(row.persona_slug).discard(row.agent_id)
        self._count(row.persona_slug, -1)
        row.persona_slug = state["persona_slug"]
        row.assigned_position = position
        self.members_of(row.persona_slug).add(row.agent_id)
        self._count(row.persona_slug, +1)

    def _agent_retired(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is not None:
            row.retired = True
            row.retired_position = position
            row.pending_event_id = row.pending_digest = row.pending_secrets_digest = None
            self._count(row.persona_slug, -1)

    def _agent_key_destroyed(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is not None:
            row.key_destroyed = True

    def _agent_attested(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        # Nothing the view shows, but the agent's version moves: an apply records
        # its publication events at the version the view knows.
        self._touch_agent(originator_id, version)

    def _engram_sealed(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is not None:
            row.pending_event_id = state["event"]["id"]
            row.pending_digest = state["digest"]
            row.pending_secrets_digest = state["secrets_digest"]
            row.pending_position = position

    def _answered(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        # Changes nothing the planner reads, but the agent's version moves on.
        self._touch_agent(originator_id, version)

    def _published(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is not None:
            held = state["held_by"]
            self._confirm(
                row,
                position,
                state["event_id"],
                state["digest"],
                state["secrets_digest"],
                # Confirmed before the read said where (v2): every relay of the time.
                list(self.relay_urls()) if held is None else held,
            )

    def _confirm(
        self,
        row: AgentRow,
        position: int,
        event_id: str,
        digest: str | None,
        secrets_digest: str | None,
        held_by: list[str],
    ) -> None:
        row.published_digest = digest
        row.published_secrets_digest = secrets_digest
        row.published_event_id = event_id
        row.published_position = position
        self._set_head(row, "valid", digest, secrets_digest, event_id)
        row.head_position = position
        row.head_observed = False
        row.head_origin = ""
        row.head_relays = held_by
        # Whatever was sealed before this confirmation is settled or superseded.
        row.pending_event_id = row.pending_digest = row.pending_secrets_digest = None
        row.tombstone_event_id = None

    def _publish_failed(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is not None and row.pending_event_id == state["event_id"]:
            row.pending_event_id = row.pending_digest = row.pending_secrets_digest = None
        if row is not None and row.tombstone_event_id == state["event_id"]:
            row.tombstone_event_id = None

    def _conflict(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is None:
            return
        row.conflict_digest = state["digest"]
        row.conflict_position = position
        row.conflict_reason = state["reason"]
        row.conflict_head_event_id = state["head_event_id"]
        if state["event_id"] is not None and row.pending_event_id == state["event_id"]:
            row.pending_event_id = row.pending_digest = row.pending_secrets_digest = None
        if state["event_id"] is not None and row.tombstone_event_id == state["event_id"]:
            row.tombstone_event_id = None

    def _observed(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is None:
            return
        event_id, origin = state["head_event_id"], state["origin"]
        if event_id is not None and event_id == row.pending_event_id and state["state"] == "valid":
            # Our latest seal found as the head is that seal confirmed, however the
            # record was written (before heads were judged, a refresh recorded it so).
            digest, secrets = row.pending_digest, row.pending_secrets_digest
            self._confirm(row, position, event_id, digest, secrets, state["held_by"])
            return
        if origin == HeadOrigin.UNKNOWN and event_id == row.published_event_id:
            origin = HeadOrigin.OURS  # recorded before heads were judged: the log knows it
        self._set_head(row, state["state"], state["digest"], state["secrets_digest"], event_id)
        row.head_position = position
        row.head_observed = True
        row.head_origin = origin
        row.head_relays = state["held_by"]
        if state["head_event_id"] == row.tombstone_event_id and state["state"] == "tombstone":
            row.tombstone_event_id = None  # our tombstone is the head after all

    def _relay_added(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        relays = self.relays()
        if state["url"] not in relays:
            relays[state["url"]] = RelayRow(state["url"], position)
            self._relays_changed()

    def _relay_removed(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        if self.relays().pop(state["url"], None) is not None:
            self._relays_changed()

    def _relays_changed(self) -> None:
        """Every agent is judged again: sync state is per agent and relay."""
        self._relay_urls = None
        self.dirty_relays = True
        for slug in self.store.persona_slugs():
            self.dirty_agents.update(self.members_of(slug))
        for slug in self.members:  # personas this batch has not written yet
            self.dirty_agents.update(self.members[slug])

    def _relays_read(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        relays = self.relays()
        at = str(state["timestamp"])
        for url in state["answered"]:
            row = relays.get(url)
            if row is not None:
                row.read_at, row.read_position, row.read_agents = at, position, state["agents"]
                row.failed_at = row.error = None
        for url, error in state["failed"].items():
            row = relays.get(url)
            if row is not None:
                row.failed_at, row.error = at, error
        self.dirty_relays = True

    def _tombstone_sealed(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is not None:
            row.tombstone_event_id = state["event"]["id"]
            row.tombstone_position = position

    def _tombstoned(
        self, position: int, originator_id: str, version: int, state: dict[str, Any]
    ) -> None:
        row = self._touch_agent(originator_id, version)
        if row is None:
            return
        self._set_head(row, "tombstone", None, None, state["event_id"])
        row.head_position = position
        row.head_observed = False
        row.head_origin = ""
        row.head_relays = state["relays"]
        row.tombstone_event_id = None
        row.pending_event_id = row.pending_digest = row.pending_secrets_digest = None

    @staticmethod
    def _set_head(
        row: AgentRow,
        state: str,
        digest: str | None,
        secrets_digest: str | None,
        event_id: str | None,
    ) -> None:
        row.head_state = state
        row.head_digest = digest
        row.head_secrets_digest = secrets_digest
        row.head_event_id = event_id

    # -- writing the batch ---------------------------------------------------------------

    def _judge(self, row: AgentRow) -> tuple[str, str]:
        persona = self.persona(row[PERSONA_SLUG])
        verdict = assess(
            row.facts(),
            persona.facts() if persona is not None else None,
            relays=self.relay_urls(),
        )
        return verdict.status.value, ",".join(reason.value for reason in verdict.reasons)

    def settle(self) -> tuple[list[PersonaRow], list[AgentRow]]:
        """Judge every touched agent again; returns the touched personas and those agents.

        Agents created in the batch and not touched since already carry their
        status and are not among them (see ``flush``).
        """
        agents: list[AgentRow] = []
        for agent_id in self.dirty_agents:
            row = self.agent(agent_id)
            if row is None:
                continue
            slug = row[PERSONA_SLUG]
            blank = row.is_blank()
            if blank and slug in self._blank:
                row[STATUS], row[REASONS] = self._blank[slug]
            else:
                row[STATUS], row[REASONS] = verdict = self._judge(row)
                if blank:
                    self._blank[slug] = verdict
            agents.append(row)
        personas = [p for s in self.dirty_personas if (p := self.persona(s)) is not None]
        return personas, agents

    def flush(self) -> tuple[int, int]:
        """Settle the batch and write it to the store; returns (personas, agents) written."""
        personas, agents = self.settle()
        dirty = self.dirty_agents
        # Agents created in the batch (their status set as they were folded).
        start = self.start
        agents.extend(
            row
            for agent_id, row in self.agents.items()
            if row[CREATED_POSITION] > start and agent_id not in dirty
        )
        relays = list(self.relays().values()) if self.dirty_relays else None
        self.store.write(self.start, self.position, personas, agents, self.mark, relays)
        return len(personas), len(agents)


# Topic -> handler, as plain functions: bound methods kept on the fold made every
# fold a reference cycle, so a replay's fold (and all its rows) lived on until the
# cyclic collector, paused during replays, got round to it. A process that
# replayed several times then held the rows of every replay at once, and each
# replay ran slower than the first (``scripts/bench plan`` reports a replay's
# time and the peak memory of the process doing it).
_HANDLERS: dict[str, Callable[[Fold, int, str, int, dict[str, Any]], None]] = {
    _PREFIX + "Persona.Created": Fold._persona_saved,
    _PREFIX + "Persona.Saved": Fold._persona_saved,
    _PREFIX + "Persona.Deleted": Fold._persona_deleted,
    _PREFIX + "Agent.Moved": Fold._agent_moved,
    _PREFIX + "Agent.Retired": Fold._agent_retired,
    _PREFIX + "Agent.KeyDestroyed": Fold._agent_key_destroyed,
    _PREFIX + "Agent.Attested": Fold._agent_attested,
    _PREFIX + "Agent.EngramSealed": Fold._engram_sealed,
    _PREFIX + "Agent.RelaysAnswered": Fold._answered,
    _PREFIX + "Agent.Published": Fold._published,
    _PREFIX + "Agent.PublishFailed": Fold._publish_failed,
    _PREFIX + "Agent.ConflictDetected": Fold._conflict,
    _PREFIX + "Agent.HeadObserved": Fold._observed,
    _PREFIX + "RelayList.Added": Fold._relay_added,
    _PREFIX + "RelayList.Removed": Fold._relay_removed,
    _PREFIX + "RelayReading.Created": Fold._relays_read,
    _PREFIX + "Agent.TombstoneSealed": Fold._tombstone_sealed,
    _PREFIX + "Agent.Tombstoned": Fold._tombstoned,
}
