"""The read side's use cases: plan, status and audit, from the fleet view and the log.

None of them reads the relays or records anything: they answer from the log,
as of the relays' last readings (a refresh, or the one an apply starts with),
and say which relays' word the log lacks (:attr:`Plan.unverified`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.bootstrap import Fleet
from adapters.usecases.filters import EVERYONE, Filters, resolve
from domain.errors import InvalidInput
from domain.planner import PublishCommand, Status
from projections.audit import AgentAudit, AsOf, PersonaAudit, audit_agent, audit_persona
from projections.rows import AgentRow, PersonaRow, RelayRow
from projections.view import FleetView


def relay_reads(view: FleetView) -> tuple[tuple[RelayRow, ...], tuple[RelayRow, ...]]:
    """The configured relays, and those whose word the log lacks: the last reading
    could not read them, or none ever did (only counted while there are live agents)."""
    relays = tuple(view.relays())
    if not any(p.agent_count for p in view.personas()):
        return relays, ()
    return relays, tuple(r for r in relays if not r.verified)


@dataclass(frozen=True, slots=True)
class Plan:
    """What an apply would do: a command per engram to publish (with its agent's row),
    the agents in conflict that wait for a person, and what it is based on."""

    position: int
    commands: tuple[PublishCommand, ...]
    rows: Mapping[str, AgentRow]  # pubkey -> the row of each planned agent
    conflicts: tuple[str, ...]
    relays: tuple[RelayRow, ...]
    unverified: tuple[RelayRow, ...]


def plan(fleet: Fleet, filters: Filters = EVERYONE) -> Plan:
    view = fleet.view()
    scope = resolve(view, filters, fleet.app.teams)
    policy = fleet.settings.foreign_heads
    commands, rows = view.plan_with_rows(
        persona=scope.persona, agent=scope.agent, foreign_heads=policy
    )
    commands = [c for c in commands if scope.covers(c.persona_slug)]
    # Conflicts get no command, but their agents are not in sync: they wait for a person.
    planned = {c.pubkey for c in commands}
    conflicts = tuple(
        item.agent.pubkey
        for item in view.assessments(
            scope.persona, scope.agent, [Status.CONFLICT], foreign_heads=policy
        )
        if item.status is Status.CONFLICT
        and item.agent.pubkey not in planned
        and scope.covers(item.agent.persona_slug)
    )
    relays, unverified = relay_reads(view)
    return Plan(view.position, tuple(commands), rows, conflicts, relays, unverified)


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """Each persona's agents counted by reconcile status, as the log records it."""

    position: int
    personas: tuple[PersonaRow, ...]
    counts: Mapping[str, Counter[str]]  # persona slug -> status -> agents
    totals: Counter[str]  # status -> agents
    relays: tuple[RelayRow, ...]
    unverified: tuple[RelayRow, ...]


def status(fleet: Fleet, filters: Filters = EVERYONE) -> FleetStatus:
    view = fleet.view()
    scope = resolve(view, filters, fleet.app.teams)
    slug = scope.persona
    personas = tuple(
        p for p in view.personas() if (slug is None or p.slug == slug) and scope.covers(p.slug)
    )
    agents = [a for a in view.agents(persona=slug) if scope.covers(a.persona_slug)]
    relays, unverified = relay_reads(view)
    counts: dict[str, Counter[str]] = {}
    for row in agents:
        counts.setdefault(row.persona_slug, Counter())[row.status] += 1
    totals: Counter[str] = Counter(row.status for row in agents)
    return FleetStatus(view.position, personas, counts, totals, relays, unverified)


def check_as_of(as_of: AsOf, end: int, now: datetime) -> AsOf:
    """Refuse an ``--as-of`` the log cannot answer yet: past its last position, or a future time.

    A later position or time would be answered as of now, silently; asking for
    it is a typo or a wrong log.
    """
    if isinstance(as_of, int) and as_of > end:
        raise InvalidInput(
            f"--as-of {as_of} is beyond the end of the log (its last position is {end})"
        )
    if isinstance(as_of, datetime) and as_of > now:
        raise InvalidInput(
            f"--as-of {as_of.isoformat()} is in the future (it is now {now.isoformat()})"
        )
    return as_of


def audit(fleet: Fleet, filters: Filters, as_of: AsOf = None) -> AgentAudit | PersonaAudit:
    """Replay an agent's history (``filters.agent``), or a persona's versions and which
    of them its agents carry (``filters.persona``), as of a log position or time."""
    check_as_of(as_of, fleet.log().max_position(), datetime.now(UTC))
    view = fleet.view()
    scope = resolve(view, filters)
    if scope.agent is not None:
        return audit_agent(fleet.log(), scope.agent, as_of, fleet.settings.foreign_heads)
    if scope.persona is None:
        raise InvalidInput("an audit is of an agent or of a persona: give one")
    # Agents that followed the persona earlier and moved on count at an earlier
    # time, so a historical question considers every agent.
    members = view.agents(persona=scope.persona if as_of is None else None)
    return audit_persona(fleet.log(), scope.persona, [a.pubkey for a in members], as_of)
