"""The apply use case, and the refresh it starts with.

:func:`apply` refreshes what the relays hold, plans, publishes and confirms.
``fleetsync apply`` calls it, and so does :func:`publish`, the publish that
follows ``persona save``, ``persona delete``, ``agent create|import|retire``:
one path, the same report (:class:`adapters.sync.report.ApplyReport`).

An apply catches the fleet view up with the log once, before it resolves its
filters and plans; the reconciler folds what its own refresh records, and
nothing else.

After a change was recorded, :func:`publish` follows the fleet-update
reference's rule: a relay or store failure of the publish never undoes or
fails the change; it is part of the :class:`Publication` it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from adapters.bootstrap import Fleet
from adapters.errors import AdapterError
from adapters.ports import ProgressDisplay
from adapters.sync.heads import Reading
from adapters.sync.report import ApplyReport
from adapters.usecases.filters import EVERYONE, Filters, resolve

if TYPE_CHECKING:
    from adapters.relay.traffic import Traffic


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """What to apply: the filters, and how (``--no-refresh``, ``--ack all``, ...).

    ``only`` narrows the scope to these agents (what a command just recorded).
    """

    filters: Filters = EVERYONE
    only: tuple[str, ...] | None = None
    refresh: bool = True
    overwrite_conflicts: bool = False
    ack_all: bool = False


def apply(
    fleet: Fleet, request: ApplyRequest, progress: ProgressDisplay | None = None
) -> ApplyReport:
    """Refresh, plan, publish and confirm what ``request`` asks for; returns the report."""
    view = fleet.view()
    scope = resolve(view, request.filters, fleet.app.teams)
    only = request.only
    if scope.team is not None:
        # Retired agents too: their engrams' tombstones are part of an apply.
        members = [a.pubkey for a in view.agents() if scope.covers(a.persona_slug)]
        in_team = set(members)
        only = tuple(members if only is None else (p for p in only if p in in_team))

    async def run() -> ApplyReport:
        async with fleet.reconciler(progress, ack_all=request.ack_all, view=view) as reconciler:
            return await reconciler.apply(
                persona=scope.persona,
                agent=scope.agent,
                only=only,
                refresh=request.refresh,
                overwrite_conflicts=request.overwrite_conflicts,
            )

    async def shown() -> ApplyReport:
        if progress is None:
            return await run()
        async with progress.running():
            return await run()

    return asyncio.run(shown())


# Why a publish after a change did not run.
NO_APPLY = "--no-apply"
NO_RELAYS = "no relays configured"


@dataclass(frozen=True, slots=True)
class Publication:
    """How the publish after a change went: its apply report, or why there was none.

    ``skipped`` is set when nothing was to be published (:data:`NO_APPLY`,
    :data:`NO_RELAYS`, no agents, ...); ``error`` when the apply could not run
    at all (the change stands; ``fleetsync apply`` retries).
    """

    report: ApplyReport | None = None
    skipped: str | None = None
    error: str | None = None


NOT_PUBLISHED = Publication(skipped=NO_APPLY)


def publish(
    fleet: Fleet,
    *,
    persona: str | None = None,
    only: Sequence[str] | None = None,
    progress: ProgressDisplay | None = None,
) -> Publication:
    """Publish right away what a command just recorded, through :func:`apply`.

    Never raises a relay or store failure of the publish: the change is recorded
    already, so the failure is part of the result.
    """
    if not fleet.app.relay_urls():
        return Publication(skipped=NO_RELAYS)
    request = ApplyRequest(
        filters=Filters(persona=persona), only=tuple(only) if only is not None else None
    )
    try:
        report = apply(fleet, request, progress)
    except AdapterError as exc:
        return Publication(error=str(exc))
    return Publication(report=report)


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a refresh read: ``agents`` live agents asked about, ``observed`` heads other
    than the log said, ``confirmed`` of our own engrams found as heads (their OK lost),
    and how the reading went (relays read in full, relays not read and why, agents some
    relay did not answer for, and what it cost each relay's wire: ``traffic``, by URL)."""

    agents: int
    observed: int
    confirmed: int
    read: tuple[str, ...]
    unreadable: dict[str, str] = field(default_factory=dict)
    unverified: int = 0
    relays: tuple[str, ...] = ()
    traffic: Mapping[str, Traffic] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return not self.unreadable and not self.unverified


def refresh(
    fleet: Fleet, filters: Filters = EVERYONE, *, only: Collection[str] | None = None
) -> Refreshed:
    """Read the live agents' heads from the relays and record what differs from the log
    (with ``only``, just the agents of those public keys)."""
    view = fleet.view()
    scope = resolve(view, filters)
    agents = view.agents(scope.persona, include_retired=False)
    if only is not None:
        agents = [a for a in agents if a.pubkey in only]

    async def run() -> tuple[int, int, Reading | None, dict[str, Traffic]]:
        async with fleet.reconciler(view=view) as reconciler:
            observed = await reconciler.refresh(agents)
            # A refresh writes nothing: no relay's writes went over its bridge.
            traffic = {
                u: replace(t, writes_via="") for u, t in reconciler.gateway.traffic().items()
            }
            return observed, reconciler.confirmed, reconciler.reading, traffic

    observed, confirmed, reading, traffic = asyncio.run(run())
    live = len(agents)
    return Refreshed(
        agents=live,
        observed=observed,
        confirmed=confirmed,
        read=tuple(reading.read) if reading is not None else (),
        unreadable=dict(reading.failed) if reading is not None else {},
        unverified=len(reading.unverified) if reading is not None else live,
        relays=tuple(fleet.app.relay_urls()),
        traffic=traffic,
    )
