"""The fleet view: reconcile status per agent, kept up to date from the log.

``catch_up`` folds only the records after the view's position (incremental);
``rebuild`` replays the whole log into memory and replaces the stored view in
one write (a full replay must give exactly what the increments gave). The
planner reads its input from here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from domain.planner import (
    ACTIONABLE,
    Assessment,
    ForeignHeads,
    PersonaFacts,
    PublishCommand,
    Status,
    assess,
    plan,
)
from domain.ports import EventLog
from projections.errors import ProjectionConflict
from projections.fold import Fold, ViewStore
from projections.gcpause import cyclic_gc_paused
from projections.memory import MemoryViewStore
from projections.rows import AgentRow, PersonaRow, RelayRow

logger = logging.getLogger(__name__)


class QueryableViewStore(ViewStore, Protocol):
    def persona_slugs(self) -> list[str]: ...

    def agent_by_pubkey(self, pubkey: str) -> AgentRow | None: ...

    def list_personas(self) -> list[PersonaRow]: ...

    def list_agents(
        self,
        persona: str | None = None,
        statuses: Iterable[str] | None = None,
        include_retired: bool = True,
    ) -> list[AgentRow]: ...

    def replace_all(
        self,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
        mark: str,
        relays: Iterable[RelayRow] = (),
    ) -> None: ...


class FleetView:
    def __init__(self, log: EventLog, store: QueryableViewStore, batch_size: int = 20_000) -> None:
        self.log = log
        self.store = store
        self.batch_size = batch_size

    @property
    def position(self) -> int:
        return self.store.position()

    def catch_up(self, attempts: int = 5) -> int:
        """Fold every record after the view's position; returns how many were read.

        A view whose last record is no longer in the log (an older copy of the
        event store was restored, or another one put in its place) is rebuilt
        from scratch first: folding on from its position would mix two histories.
        """
        position = self.store.position()
        if not self._log_holds(position):
            logger.warning("the view does not match the event log; rebuilding it from the log")
            return self.rebuild()
        if position == 0 and self.log.max_position() > self.batch_size:
            # A new view over a long log: one replay in memory and one bulk write
            # beat folding it batch by batch into the stored view.
            return self.rebuild()
        total = 0
        conflicts = 0
        while True:
            fold = Fold(self.store)
            records = self.log.read(fold.start, self.batch_size)
            if not records:
                return total
            fold.apply(records)
            try:
                fold.flush()
            except ProjectionConflict:
                # Another process folded the same records first; read on from there.
                conflicts += 1
                if conflicts >= attempts:
                    raise
                continue
            total += len(records)

    def matches_log(self) -> bool:
        """Whether the record the view last folded is still in the log, unchanged."""
        return self._log_holds(self.store.position())

    def _log_holds(self, position: int) -> bool:
        if position == 0:
            return True
        found = self.log.read(position - 1, 1)
        if not found or found[0].position != position:
            return False
        record = found[0]
        return self.store.mark() == f"{record.originator_id}:{record.originator_version}"

    def rebuild(self) -> int:
        """Replay the whole log from scratch and replace the stored view with the result."""
        memory, count = replay(self.log)
        self.store.replace_all(
            memory.position(),
            memory.personas.values(),
            memory.agents.values(),
            memory.mark(),
            memory.relays(),
        )
        return count

    # -- queries ---------------------------------------------------------------------------

    def personas(self) -> list[PersonaRow]:
        return self.store.list_personas()

    def persona(self, slug: str) -> PersonaRow | None:
        return self.store.persona(slug)

    def agents(self, persona: str | None = None, include_retired: bool = True) -> list[AgentRow]:
        return self.store.list_agents(persona=persona, include_retired=include_retired)

    def agent(self, pubkey: str) -> AgentRow | None:
        return self.store.agent_by_pubkey(pubkey)

    def agents_matching(self, reference: str, min_prefix: int) -> list[AgentRow]:
        """Agents (retired ones too) named ``reference``, or whose public key starts
        with it when it is at least ``min_prefix`` hex characters (a short id).

        One scan of the view: names have no index, and a lookup runs once per command.
        """
        prefix = reference.lower()
        by_prefix = len(prefix) >= min_prefix and _HEX.issuperset(prefix)
        return [
            row
            for row in self.store.list_agents()
            if row.name == reference or (by_prefix and row.pubkey.startswith(prefix))
        ]

    def relays(self) -> list[RelayRow]:
        """The configured relays, and when each was last read (see RelayRow)."""
        return self.store.relays()

    def assessments(
        self,
        persona: str | None = None,
        agent: str | None = None,
        statuses: Iterable[Status] | None = None,
        foreign_heads: ForeignHeads = ForeignHeads.CONFLICT,
    ) -> list[Assessment]:
        """Assess agents (filtered by persona slug, agent pubkey and/or stored status)."""
        # Assessing a fleet builds a few long-lived objects per agent: unpaused, the
        # collector walked the whole heap five times over while 100,000 agents were
        # planned, half of the plan's time (``scripts/bench plan``).
        with cyclic_gc_paused(long_lived=True):
            return self._assessed(persona, agent, statuses, foreign_heads)[0]

    def _assessed(
        self,
        persona: str | None,
        agent: str | None,
        statuses: Iterable[Status] | None,
        foreign_heads: ForeignHeads,
    ) -> tuple[list[Assessment], list[AgentRow]]:
        """The assessments, and the rows they were made from (in the same order)."""
        wanted = None if statuses is None else [s.value for s in statuses]
        if agent is not None:
            row = self.store.agent_by_pubkey(agent)
            rows = [row] if row is not None and (wanted is None or row.status in wanted) else []
            if persona is not None:
                rows = [r for r in rows if r.persona_slug == persona]
        else:
            rows = self.store.list_agents(persona=persona, statuses=wanted)
        personas: dict[str, PersonaFacts | None] = {}
        relays = tuple(r.url for r in self.store.relays())
        out = []
        for row in rows:
            slug = row.persona_slug
            if slug not in personas:
                found = self.store.persona(slug)
                personas[slug] = found.facts() if found is not None else None
            out.append(assess(row.facts(), personas[slug], foreign_heads, relays))
        return out, rows

    def plan(
        self,
        persona: str | None = None,
        agent: str | None = None,
        *,
        overwrite_conflicts: bool = False,
        foreign_heads: ForeignHeads = ForeignHeads.CONFLICT,
    ) -> list[PublishCommand]:
        """Publish commands for the agents that need one (only those are read).

        The stored statuses are judged with the default policy for another
        writer's head (a conflict); ``foreign_heads`` judges them again here.
        """
        with cyclic_gc_paused(long_lived=True):  # see assessments()
            # Only the assessments: the rows go before the commands are made.
            statuses = _planned_statuses(overwrite_conflicts, foreign_heads)
            assessed = self._assessed(persona, agent, statuses, foreign_heads)[0]
            return plan(assessed, overwrite_conflicts=overwrite_conflicts)

    def plan_with_rows(
        self,
        persona: str | None = None,
        agent: str | None = None,
        *,
        overwrite_conflicts: bool = False,
        foreign_heads: ForeignHeads = ForeignHeads.CONFLICT,
    ) -> tuple[list[PublishCommand], dict[str, AgentRow]]:
        """The plan, and the row of every agent it names, by pubkey (for reports).

        The rows are those the plan was made from: looking each one up again
        afterwards cost a query per command, which dominated the time of a large plan.
        """
        with cyclic_gc_paused(long_lived=True):  # see assessments()
            statuses = _planned_statuses(overwrite_conflicts, foreign_heads)
            assessed, rows = self._assessed(persona, agent, statuses, foreign_heads)
            commands = plan(assessed, overwrite_conflicts=overwrite_conflicts)
            by_pubkey = {row.pubkey: row for row in rows}
            return commands, {c.pubkey: by_pubkey[c.pubkey] for c in commands}


_HEX = frozenset("0123456789abcdef")


def _planned_statuses(overwrite_conflicts: bool, foreign_heads: ForeignHeads) -> frozenset[Status]:
    """The statuses a plan reads rows of: conflicts too when they may be written over."""
    if overwrite_conflicts or foreign_heads is ForeignHeads.SELF_HEAL:
        return ACTIONABLE | {Status.CONFLICT}
    return ACTIONABLE


def replay(log: EventLog) -> tuple[MemoryViewStore, int]:
    """Fold the whole log into a fresh in-memory view."""
    memory = MemoryViewStore()
    fold = Fold(memory)
    # A replay allocates one long-lived row per agent and nothing cyclic.
    with cyclic_gc_paused(long_lived=True):
        count = fold.apply(log.scan(0))
        personas, _ = fold.settle()
        # Every agent of a replay from scratch was created in it, so the fold's own
        # table is the whole view.
        relays = fold.relays().values()
        memory.adopt(fold.position, personas, fold.agents, fold.members, fold.mark, relays)
    return memory, count
