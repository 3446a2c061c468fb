"""How commands show an apply: its progress display and its one report.

``fleetsync apply`` and the publish that follows ``persona save``, ``agent
create`` and ``agent import`` are the same use case
(:func:`adapters.usecases.apply.apply`) with the same progress display
(:class:`ProgressBar`: stderr, only on a terminal, never with ``--json`` or
``--quiet``) and the same report (:func:`print_report`: one line per result and
cause, then the counts; or the JSON document of :func:`report_doc`, which lists
every agent).

After a save or a create (:func:`adapters.usecases.apply.publish`) the
fleet-update reference's rule holds: a relay failure never undoes or fails the
change just recorded. It is reported as it is (:func:`print_publication`), and
the command exits with apply's codes: 0 recorded and published (or nothing to
publish), 2 recorded but some agents are not in sync (``fleetsync apply``
retries), 3 recorded but a relay could not be read. 1 always means an error
that recorded nothing, so a script never retries a create that happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TextIO

from adapters.cli.output import EXIT_UNVERIFIED, Context, short
from adapters.sync.report import AgentVerdict, ApplyReport
from adapters.usecases.apply import NO_APPLY, NO_RELAYS, Publication
from domain.text import escape
from domain.verdict import SETTLED, Verdict

EXIT_NOT_IN_SYNC = 2
# How often the progress line is redrawn while nothing else happens: a wait on a
# silent relay shows its seconds passing.
TICK = 0.5


class ProgressBar:
    """One line on a terminal's stderr, redrawn in place: the step, how far, how long.

    Until the engine reports the engrams to publish, the apply is reading what
    the relays hold; from then on the bar counts engrams settled (published or
    not). :meth:`running` also redraws it every :data:`TICK` seconds. The
    :class:`adapters.ports.ProgressDisplay` of the command line.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        timeout: float | None = None,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.timeout = timeout
        self.width = width
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.total: int | None = None
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.draw()

    def line(self) -> str:
        elapsed = f"{int(self.clock() - self.started)} s"
        if self.total is None:
            limit = f"; a silent relay is given up after {self.timeout:g} s" if self.timeout else ""
            return f"reading what the relays hold ... {elapsed}{limit}"
        if self.total == 0:
            return f"nothing to publish ... {elapsed}"
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        return f"[{bar}] {self.done:,}/{self.total:,} engrams ... {elapsed}"

    def draw(self) -> None:
        # \x1b[K clears what a longer earlier line left on the right.
        self.stream.write(f"\r{self.line()}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ProgressBar]:
        """Draw now and every :data:`TICK` seconds until the block ends; then end the line."""

        async def tick() -> None:
            while True:
                self.draw()
                await asyncio.sleep(TICK)

        ticker = asyncio.create_task(tick())
        try:
            yield self
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self.finish()


def progress_for(ctx: Context) -> ProgressBar | None:
    """The progress display for a command: on a terminal's stderr, unless --json/--quiet."""
    stream = ctx.stderr if ctx.stderr is not None else sys.stderr
    if getattr(ctx.args, "quiet", False) or ctx.json or not stream.isatty():
        return None
    return ProgressBar(stream, timeout=ctx.settings.relay_timeout)


# -- the report -------------------------------------------------------------------------


def report_code(report: ApplyReport) -> int:
    """0 in sync; 2 some agents not in sync (a relay refused an engram for good counts,
    though others hold it); 3 nothing known wrong, but a relay was not read."""
    if not report.converged:
        return EXIT_NOT_IN_SYNC
    return 0 if report.verified else EXIT_UNVERIFIED


def report_doc(report: ApplyReport) -> dict[str, Any]:
    """The report as JSON: the counts, and every agent with its result and detail."""
    return {
        "relays": report.relays,
        "verified": report.verified,
        "unreadable": report.unreadable,
        "observed_drift": report.observed,
        "confirmed_by_refresh": report.confirmed,
        "summary": report.summary(),
        "traffic": {url: traffic.as_dict() for url, traffic in report.traffic.items()},
        "agents": [
            {
                "agent": o.pubkey,
                "persona": o.persona_slug,
                "result": o.verdict,
                "event_id": o.event_id,
                "detail": o.detail,
            }
            for o in report.verdicts
        ],
    }


def report_lines(report: ApplyReport) -> list[str]:
    """The report for people: a line per (result, cause), then the counts."""
    lines = verdict_lines(report.verdicts)
    for url, why in report.unreadable.items():
        lines.append(f"relay {url} could not be read: {why}")
    if report.confirmed:
        lines.append(f"refresh: {confirmed_line(report.confirmed)}")
    if report.observed:
        lines.append(f"refresh: {report.observed} agent(s) hold something other than the log said")
    for url, traffic in report.traffic.items():
        lines.append(f"relay {url} over {traffic.describe()}")
    lines.append(
        "published {published}, tombstoned {tombstoned}, unchanged {unchanged}, "
        "unverified {unverified}, failed {failed}, unknown {unknown}, "
        "conflicts {conflicts}".format(**report.summary())
        + f" (relays: {', '.join(report.relays) or 'none'})"
    )
    if not report.refreshed:
        lines.append("relays not read first (--no-refresh): 'unchanged' is the log's word")
    if report.unverified:
        lines.append(
            f"not verified: {report.unverified} agent(s) could not be read on every relay, "
            "so whether they are in sync is unknown"
        )
    return lines


def confirmed_line(count: int) -> str:
    """What a refresh that found our own engrams (their OK lost) says about them."""
    return (
        f"{count} engram(s) sealed here were found as heads though their OK was lost: "
        "recorded as published"
    )


def print_report(ctx: Context, report: ApplyReport) -> int:
    """Print an apply's report (text or ``--json``); returns apply's exit code."""
    if ctx.json:
        ctx.emit_json(report_doc(report))
    else:
        for line in report_lines(report):
            ctx.out(line)
    return report_code(report)


# The order groups are printed in: what needs a person first.
_VERDICT_ORDER = {Verdict.CONFLICT: 0, Verdict.FAILED: 1, Verdict.UNKNOWN: 2}
_EXAMPLES = 3
_HEX_ID = re.compile(r"\s*\(?\b[0-9a-f]{64}\b\)?")


def cause_of(verdict: AgentVerdict) -> str:
    """What a verdict's detail says, without the ids that make each agent's different."""
    return " ".join(_HEX_ID.sub("", verdict.detail).split()) or "no detail"


def verdict_lines(verdicts: Iterable[AgentVerdict]) -> list[str]:
    """One line per (verdict, cause) for every agent not settled, or settled with
    something to say (published, but not on every relay): the count, the cause,
    and a few of the agents (``--json`` and ``audit`` have every one).

    A relay down for a whole apply fails thousands of agents for one reason: it
    is one line, not one per agent.
    """
    groups: dict[tuple[Verdict, str], list[AgentVerdict]] = {}
    for agent in verdicts:
        if agent.verdict not in SETTLED or agent.detail:
            groups.setdefault((agent.verdict, cause_of(agent)), []).append(agent)
    ordered = sorted(
        groups.items(), key=lambda item: (_VERDICT_ORDER.get(item[0][0], 9), -len(item[1]))
    )
    lines = []
    for (verdict, cause), members in ordered:
        names = ", ".join(short(o.pubkey, 16) for o in members[:_EXAMPLES])
        more = len(members) - _EXAMPLES
        agents = f"{names} and {more:,} more" if more > 0 else names
        lines.append(f"{verdict} {len(members):,}: {cause} (agents: {agents})")
    return lines


# -- publishing what a command just recorded ----------------------------------------------


def publication_code(publication: Publication) -> int:
    """The exit code of a command after its publish: apply's, or 2 if it could not run."""
    if publication.report is not None:
        return report_code(publication.report)
    return EXIT_NOT_IN_SYNC if publication.error is not None else 0


def publication_doc(publication: Publication) -> dict[str, Any]:
    """For ``--json``: ``published`` says whether every engram is out and confirmed."""
    doc: dict[str, Any] = {
        "attempted": publication.report is not None or publication.error is not None,
        "published": publication_code(publication) == 0 and publication.report is not None,
        "skipped": publication.skipped,
        "error": publication.error,
    }
    if publication.report is not None:
        doc.update(report_doc(publication.report))
    return doc


def print_publication(ctx: Context, publication: Publication, what: str) -> int:
    """The text report of a publish after ``what`` (e.g. "the persona is saved");
    warnings on stderr. Returns the command's exit code."""
    err = ctx.stderr if ctx.stderr is not None else sys.stderr
    report = publication.report
    if report is not None:
        for line in report_lines(report):
            ctx.out(line)
        if not report.converged:
            trouble = sum(
                1 for v in report.verdicts if v.verdict is not Verdict.PUBLISHED or v.refused_by
            )
            err.write(
                f"fleetsync: warning: {what}, but {trouble} agent(s) are not in sync yet; "
                "'fleetsync apply' retries\n"
            )
        elif not report.verified:
            err.write(
                f"fleetsync: warning: {what}, but a relay could not be read, so whether its "
                "agents are in sync is unknown; 'fleetsync apply' retries\n"
            )
    elif publication.error is not None:
        err.write(
            # The message may quote a relay: escape what a terminal would obey.
            f"fleetsync: warning: {what}, but nothing was published "
            f"({escape(publication.error)}); "
            "'fleetsync apply' retries\n"
        )
    elif publication.skipped == NO_RELAYS:
        err.write(
            "fleetsync: note: no relays configured, nothing published yet "
            "('fleetsync relay add URL', then 'fleetsync apply')\n"
        )
    elif publication.skipped == NO_APPLY:
        ctx.out("not published (--no-apply); 'fleetsync apply' publishes")
    return publication_code(publication)
