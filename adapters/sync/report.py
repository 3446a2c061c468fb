"""What an apply reports: the verdict on each agent, and the counts the CLI prints.

The values the reconciler (:mod:`adapters.sync.engine`) hands back to the
commands (``apply``, ``refresh``, ``persona save`` ...); they decide nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.relay.traffic import Traffic
from domain.verdict import SETTLED, Verdict


@dataclass(frozen=True, slots=True)
class AgentVerdict:
    """What became of one agent in an apply: the :class:`domain.verdict.Verdict` on
    it, the event it is about, and (``detail``) why, for people."""

    pubkey: str
    persona_slug: str
    verdict: Verdict
    event_id: str | None = None
    detail: str = ""
    # Published, yet these configured relays refused it for good: the agent is
    # partial, and stays so until they take it or are removed.
    refused_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, repr=False)
class ApplyReport:
    """What one apply did: counts for the summary, and the verdict on each agent.

    The reconciler gathers the parts as the apply goes and makes the report once,
    at the end (:meth:`adapters.sync.engine.Reconciler.apply`).
    """

    planned: int = 0
    observed: int = 0  # drift recorded by the refresh
    verdicts: tuple[AgentVerdict, ...] = ()
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

    def count(self, verdict: Verdict) -> int:
        return sum(1 for o in self.verdicts if o.verdict is verdict)

    @property
    def converged(self) -> bool:
        """Every agent settled, and on every relay that answered for good."""
        return all(o.verdict in SETTLED and not o.refused_by for o in self.verdicts)

    def summary(self) -> dict[str, int]:
        return {
            "published": self.count(Verdict.PUBLISHED),
            "tombstoned": self.count(Verdict.TOMBSTONED),
            "unchanged": self.unchanged,
            "failed": self.count(Verdict.FAILED),
            "unknown": self.count(Verdict.UNKNOWN),
            "conflicts": self.count(Verdict.CONFLICT),
            "unverified": self.unverified,
        }

    @property
    def verified(self) -> bool:
        """Every relay was read for every agent in scope (vacuously, with --no-refresh)."""
        return not self.unverified and not self.unreadable

    def __repr__(self) -> str:
        # Counts, not every verdict: asyncio.run formats the repr of the task that
        # returned this report as it ends (Python 3.11 restoring the SIGINT
        # handler), and the repr of thousands of verdicts was a visible part of
        # every large apply.
        return f"ApplyReport(planned={self.planned}, observed={self.observed}, {self.summary()})"
