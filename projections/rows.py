"""The rows of the fleet view: one per persona, one per agent.

Rows are mutable while a batch of events is folded into them, then written
out; their ``facts()`` are the immutable inputs the pure planner takes.
"""

from __future__ import annotations

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
class AgentRow:
    agent_id: str
    pubkey: str
    name: str
    persona_slug: str
    owner_pubkey: str
    origin: str
    created_at: str
    created_position: int
    assigned_position: int
    retired: bool = False
    key_destroyed: bool = False
    head_state: str | None = None
    head_digest: str | None = None
    head_secrets_digest: str | None = None
    head_event_id: str | None = None
    head_position: int = 0
    head_observed: bool = False
    published_digest: str | None = None
    published_event_id: str | None = None
    published_position: int = 0
    pending_event_id: str | None = None
    pending_digest: str | None = None
    pending_secrets_digest: str | None = None
    pending_position: int = 0
    conflict_digest: str | None = None
    conflict_position: int = 0
    conflict_reason: str | None = None
    conflict_head_event_id: str | None = None
    status: str = ""
    reasons: str = ""

    def facts(self) -> AgentFacts:
        head = None
        if self.head_state is not None:
            head = HeadFacts(
                self.head_state,
                self.head_digest,
                self.head_secrets_digest,
                self.head_event_id,
                self.head_position,
                self.head_observed,
            )
        return AgentFacts(
            agent_id=self.agent_id,
            pubkey=self.pubkey,
            persona_slug=self.persona_slug,
            retired=self.retired,
            assigned_position=self.assigned_position,
            head=head,
            published_digest=self.published_digest,
            pending_event_id=self.pending_event_id,
            pending_digest=self.pending_digest,
            pending_secrets_digest=self.pending_secrets_digest,
            pending_position=self.pending_position,
            conflict_digest=self.conflict_digest,
            conflict_position=self.conflict_position,
            conflict_head_event_id=self.conflict_head_event_id,
        )


PERSONA_COLUMNS = tuple(f.name for f in fields(PersonaRow))
AGENT_COLUMNS = tuple(f.name for f in fields(AgentRow))


def as_tuple(row: PersonaRow | AgentRow, columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in columns)
