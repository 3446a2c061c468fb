"""What an apply reports: each agent's outcome, and the counts the CLI prints.

The values the reconciler (:mod:`adapters.sync.engine`) hands back to the
commands (``apply``, ``refresh``, ``persona save`` ...); they decide nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.relay.traffic import Traffic
from domain.verdict import SETTLED


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """What became of one agent in an apply (``result`` is a
    :class:`domain.verdict.Verdict` value; ``detail`` says why, for people)."""

    pubkey: str
    persona_slug: str
    result: str  # published | tombstoned | failed | unknown | conflict
    event_id: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, repr=False)
class ApplyReport:
    """What one apply did: counts for the summary, and each agent's outcome.

    The reconciler gathers the parts as the apply goes and makes the report once,
    at the end (:meth:`adapters.sync.engine.Reconciler.apply`).
    """

    planned: int = 0
    observed: int = 0  # drift recorded by the refresh
    outcomes: tuple[AgentOutcome, ...] = ()
    unchanged: int = 0  # nothing to do, and every relay was read for them
    relays: tuple[str, ...] = ()
    # Agents with nothing planned whose heads some relay did not answer for: not
    # known to be in sync, so not counted as unchanged.
    unverified: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)  # relay -> why it was not read
    refreshed: bool = True  # False with --no-refresh: "unchanged" is the log's word
    # Engrams we sealed whose OK was lost, found as heads by the refresh: published.
    confirmed: int = 0
    # What each relay's wire cost: connections, the most open at once, NIP-42
    # handshakes, HTTP requests (adapters.relay.traffic).
    traffic: Mapping[str, Traffic] = field(default_factory=dict)

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def converged(self) -> bool:
        return all(o.result in SETTLED for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        return {
            "published": self.count("published"),
            "tombstoned": self.count("tombstoned"),
            "unchanged": self.unchanged,
            "failed": self.count("failed"),
            "unknown": self.count("unknown"),
            "conflicts": self.count("conflict"),
            "unverified": self.unverified,
        }

    @property
    def verified(self) -> bool:
        """Every relay was read for every agent in scope (vacuously, with --no-refresh)."""
        return not self.unverified and not self.unreadable

    def __repr__(self) -> str:
        # Counts, not every outcome: asyncio.run formats the repr of the task that
        # returned this report as it ends (Python 3.11 restoring the SIGINT
        # handler), and the repr of thousands of outcomes was a visible part of
        # every large apply.
        return f"ApplyReport(planned={self.planned}, observed={self.observed}, {self.summary()})"
