"""The rows of the fleet view: one per persona, one per agent, one per relay.

Rows are mutable while a batch of events is folded into them, then written
out; their ``facts()`` are the immutable inputs the pure planner takes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any

from domain.planner import AgentFacts, HeadFacts, PersonaFacts


@dataclass(slots=True)
class PersonaRow:
    slug: str
    digest: str
    secrets_digest: str
    deleted: bool
    revision: int
    position: int
    display_name: str
    actor: str
    saved_at: str
    agent_count: int = 0

    def facts(self) -> PersonaFacts:
        return PersonaFacts(
            self.slug, self.digest, self.secrets_digest, self.deleted, self.position
        )


@dataclass(slots=True)
class RelayRow:
    """A configured relay, and how the refreshes that read it went.

    ``read_at`` is when a reading last got every answer it asked this relay for;
    ``failed_at`` and ``error`` say that a later one could not read it, and stay
    until a reading gets through again.
    """

    url: str
    added_position: int
    read_at: str | None = None
    read_position: int = 0
    read_agents: int = 0  # how many agents that reading asked about
    failed_at: str | None = None
    error: str | None = None

    @property
    def verified(self) -> bool:
        """Read, and not failed since: what the log says about it has been checked."""
        return self.read_at is not None and self.failed_at is None


RELAY_COLUMNS = tuple(f.name for f in fields(RelayRow))


class AgentRow(list[Any]):
    """One agent's row: a list of its column values, read and written by name.

    A list rather than a dataclass because a full replay builds one row per
    agent and writes them all: a list is built, copied and encoded by orjson
    (as a JSON array) at C speed, where turning a thirty-field object into
    values cost more than folding the event that made it. The columns are
    declared below in storage order; each becomes a property over its index.
    """

    __slots__ = ()

    agent_id: str
    pubkey: str
    name: str
    persona_slug: str
    owner_pubkey: str
    origin: str
    created_at: str
    created_position: int
    assigned_position: int
    status: str
    reasons: str
    retired: bool
    key_destroyed: bool
    head_state: str | None
    head_digest: str | None
    head_secrets_digest: str | None
    head_event_id: str | None
    head_position: int
    head_observed: bool
    published_digest: str | None
    published_event_id: str | None
    published_position: int
    pending_event_id: str | None
    pending_digest: str | None
    pending_secrets_digest: str | None
    pending_position: int
    conflict_digest: str | None
    conflict_position: int
    conflict_reason: str | None
    conflict_head_event_id: str | None
    # The agent aggregate's version as of the last event folded: an apply records
    # its events at the next one without replaying the agent (see Agent.at_version).
    version: int
    # Who wrote the head (a HeadOrigin) when it was read from the relays; "" when
    # the head is our own publish or none was read.
    head_origin: str
    # The relays known to hold the head event (None until there is a head).
    head_relays: list[str] | None
    published_secrets_digest: str | None
    retired_position: int
    # A tombstone sealed and not yet confirmed (see Agent.TombstoneSealed).
    tombstone_event_id: str | None
    tombstone_position: int

    def is_blank(self) -> bool:
        """True for a live agent with no publication history: no head, seal or conflict.

        Every such agent of one persona gets the same status and reasons, which
        lets a replay assess one of them and reuse the verdict.
        """
        return (
            self[HEAD_STATE] is None
            and self[PENDING_DIGEST] is None
            and self[CONFLICT_DIGEST] is None
            and not self[RETIRED]
        )

    def facts(self) -> AgentFacts:
        (
            agent_id,
            pubkey,
            _name,
            persona_slug,
            _owner,
            _origin,
            _created_at,
            _created_position,
            assigned_position,
            _status,
            _reasons,
            retired,
            key_destroyed,
            head_state,
            head_digest,
            head_secrets_digest,
            head_event_id,
            head_position,
            head_observed,
            published_digest,
            published_event_id,
            _published_position,
            pending_event_id,
            pending_digest,
            pending_secrets_digest,
            pending_position,
            conflict_digest,
            conflict_position,
            _conflict_reason,
            conflict_head_event_id,
            version,
            head_origin,
            head_relays,
            published_secrets_digest,
            retired_position,
            tombstone_event_id,
            tombstone_position,
        ) = self
        head = None
        if head_state is not None:
            head = HeadFacts(
                head_state,
                head_digest,
                head_secrets_digest,
                head_event_id,
                head_position,
                head_observed,
                head_origin,
                tuple(head_relays or ()),
            )
        return AgentFacts(
            agent_id,
            pubkey,
            persona_slug,
            retired,
            assigned_position,
            head,
            published_digest,
            pending_event_id,
            pending_digest,
            pending_secrets_digest,
            pending_position,
            conflict_digest,
            conflict_position,
            conflict_head_event_id,
            version,
            published_event_id,
            published_secrets_digest,
            key_destroyed,
            retired_position,
            tombstone_event_id,
            tombstone_position,
        )


AGENT_COLUMNS: tuple[str, ...] = tuple(AgentRow.__annotations__)


def _column(index: int) -> property:
    def set_value(row: AgentRow, value: Any) -> None:
        row[index] = value

    return property(operator.itemgetter(index), set_value)


for _index, _name in enumerate(AGENT_COLUMNS):
    setattr(AgentRow, _name, _column(_index))

STATUS = AGENT_COLUMNS.index("status")
REASONS = AGENT_COLUMNS.index("reasons")
RETIRED = AGENT_COLUMNS.index("retired")
HEAD_STATE = AGENT_COLUMNS.index("head_state")
PENDING_DIGEST = AGENT_COLUMNS.index("pending_digest")
CONFLICT_DIGEST = AGENT_COLUMNS.index("conflict_digest")
PERSONA_SLUG = AGENT_COLUMNS.index("persona_slug")
CREATED_POSITION = AGENT_COLUMNS.index("created_position")
VERSION = AGENT_COLUMNS.index("version")

# Every column after ``reasons`` for a new agent: no history, and version 1
# (eventsourcing creates every aggregate at version 1). The fold builds a new
# agent's row inline, as a list display ending in these (see Fold.apply).
NEW_TAIL: tuple[Any, ...] = (False, False, None, None, None, None, 0, False)
NEW_TAIL += (None, None, 0, None, None, None, 0, None, 0, None, None, 1, "", None, None, 0, None, 0)
assert len(NEW_TAIL) == len(AGENT_COLUMNS) - REASONS - 1


PERSONA_COLUMNS = tuple(f.name for f in fields(PersonaRow))


def as_tuple(row: PersonaRow | RelayRow, columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in columns)
