"""Running the reconciler from a command: ``apply``, and the best-effort publish
that follows ``agent create``, ``agent import`` and ``persona save``.

Best effort means what the fleet-update reference asks of agent creation: a
relay failure is reported (one line on stderr) and never undoes or fails the
command that created the agent; the next ``fleetsync apply`` catches up.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from adapters.bootstrap import Fleet
from adapters.errors import AdapterError
from adapters.sync.engine import ApplyReport


class ProgressBar:
    """A one-line bar on a terminal's stderr, redrawn in place."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} engrams")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def apply_now(
    fleet: Fleet,
    *,
    persona: str | None = None,
    agent: str | None = None,
    only: Sequence[str] | None = None,
    progress: ProgressBar | None = None,
    refresh: bool = True,
    overwrite_conflicts: bool = False,
    ack_all: bool = False,
) -> ApplyReport:
    async def run() -> ApplyReport:
        async with fleet.reconciler(progress=progress, ack_all=ack_all) as reconciler:
            return await reconciler.apply(
                persona=persona,
                agent=agent,
                only=only,
                refresh=refresh,
                overwrite_conflicts=overwrite_conflicts,
            )

    return asyncio.run(run())


def publish_best_effort(
    fleet: Fleet,
    *,
    persona: str | None = None,
    only: Sequence[str] | None = None,
    err: TextIO | None = None,
) -> ApplyReport | None:
    """Publish right away what was just changed; report trouble, never raise it."""
    err = err if err is not None else sys.stderr
    if not fleet.app.relay_urls():
        err.write(
            "fleetsync: note: no relays configured, nothing published yet "
            "('fleetsync relay add URL', then 'fleetsync apply')\n"
        )
        return None
    try:
        report = apply_now(fleet, persona=persona, only=only)
    except AdapterError as exc:
        err.write(f"fleetsync: warning: not published yet ({exc}); 'fleetsync apply' retries\n")
        return None
    if not report.converged:
        summary = report.summary()
        err.write(
            "fleetsync: warning: {failed} failed, {unknown} unknown, {conflicts} conflicts; "
            "'fleetsync apply' retries\n".format(**summary)
        )
    for url, why in report.unreadable.items():
        err.write(f"fleetsync: warning: relay {url} could not be read: {why}\n")
    return report
