"""``fleetsync team import|sync|list|show|remove``: teams of personas, brought in from buzz.

``team import PATH`` takes a ``buzz-team-snapshot`` v1 file (``.team.json`` or
``.team.png``) or a legacy persona-pack directory; ``team sync DIR`` brings an
imported pack's changes in. Pack directories are behind the
``FLEETSYNC_LEGACY_TEAM_SYNC`` setting (on by default, as buzz's seed had
them); with it off they are refused, naming what replaces them. What is
recorded, and when an import refuses, is :mod:`adapters.usecases.teams`'s.
Personas whose content changed are published to their agents right away, as
``persona save`` does (``--no-apply`` leaves it to ``apply``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.cli.output import EXIT_UNVERIFIED, Context
from adapters.cli.publish import (
    print_publication,
    progress_for,
    publication_code,
    publication_doc,
)
from adapters.errors import PermanentAdapterError
from adapters.teams.pack import read_pack
from adapters.teams.snapshot import read_snapshot
from adapters.usecases.teams import (
    Mode,
    TeamInput,
    TeamReport,
    bring_in,
    list_teams,
    pull_teams,
    remove_team,
    show_team,
)
from domain.teams import team_id

LEGACY_OFF = (
    "legacy persona-pack teams are turned off (FLEETSYNC_LEGACY_TEAM_SYNC); import a "
    "buzz-team-snapshot v1 file instead ('fleetsync team import FILE.team.json', exported "
    "from buzz), or follow the owner's buzz teams on the relays ('fleetsync team pull')"
)


class LegacyTeamsOff(PermanentAdapterError):
    """A persona-pack directory was given while legacy team sync is off."""


def read_team_input(ctx: Context, path_text: str, ident: str | None) -> TeamInput:
    """A snapshot file, or (when legacy team sync is on) a persona-pack directory."""
    path = Path(path_text)
    if path.is_dir():
        if not ctx.settings.legacy_team_sync:
            raise LegacyTeamsOff(LEGACY_OFF)
        if ident is not None:
            raise PermanentAdapterError(
                "--id is for snapshot files; a persona pack's team id is its plugin.json id"
            )
        pack = read_pack(path)
        return TeamInput(
            pack.team(), tuple((p.slug, p.definition) for p in pack.personas), str(pack.directory)
        )
    snapshot = read_snapshot(path, team_id(ident) if ident is not None else None)
    return TeamInput(snapshot.team, snapshot.personas, str(path), snapshot.notes)


def run_import(ctx: Context) -> int:
    return _bring_in(ctx, Mode.IMPORT)


def run_sync(ctx: Context) -> int:
    return _bring_in(ctx, Mode.SYNC)


def _bring_in(ctx: Context, mode: Mode) -> int:
    # Everything is read and checked before the store is opened: a bad input writes nothing.
    given = read_team_input(ctx, ctx.args.path, ctx.args.id)
    with ctx.fleet() as fleet:
        result = bring_in(
            fleet, given, mode, publish_now=not ctx.args.no_apply, progress=progress_for(ctx)
        )
    report, publication = result.report, result.publication
    if ctx.json:
        ctx.emit_json(
            _report_doc(report, given)
            | {"agents": result.agents, "publish": publication_doc(publication)}
        )
        return publication_code(publication)
    _print_report(ctx, report, given)
    if not result.agents:
        return 0
    ctx.out(f"{result.agents:,} agent(s) follow the changed personas")
    return print_publication(ctx, publication, f"the team is {mode.value}ed")


def _report_doc(report: TeamReport, given: TeamInput) -> dict[str, Any]:
    return {
        "team": report.team,
        "mode": report.mode.value,
        "source": given.team.source,
        "recorded": report.saved.recorded,
        "team_changed": report.saved.changed,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deleted": list(report.saved.deleted),
        "kept": list(report.kept),
        "notes": list(given.notes),
    }


def _print_report(ctx: Context, report: TeamReport, given: TeamInput) -> None:
    if not report.saved.recorded:
        ctx.out(
            f"team {report.team!r} unchanged ({len(report.unchanged)} persona(s)); nothing recorded"
        )
    else:
        verb = "imported" if report.mode is Mode.IMPORT else "synced"
        ctx.out(
            f"{verb} team {report.team!r}: {len(report.added)} persona(s) added, "
            f"{len(report.updated)} updated, {len(report.unchanged)} unchanged, "
            f"{len(report.saved.deleted)} deleted"
        )
        for label, slugs in (("added", report.added), ("updated", report.updated)):
            if slugs:
                ctx.out(f"  {label}: {', '.join(slugs)}")
        if report.saved.deleted:
            ctx.out(
                "  deleted (left the team, no agent follows them): "
                + ", ".join(report.saved.deleted)
            )
    if report.kept:
        ctx.out(
            f"  left the team but kept (agents follow them, or another team has them): "
            f"{', '.join(report.kept)}"
        )
    for note in given.notes:
        ctx.out(f"  note: {note}")


def run_pull(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        result = pull_teams(fleet)
    code = 0 if result.verified else EXIT_UNVERIFIED
    if ctx.json:
        ctx.emit_json(
            {
                "teams": [
                    {
                        "team": p.team,
                        "event_id": p.event_id,
                        "changed": p.changed,
                        "personas": list(p.personas),
                        "left_out": list(p.left_out),
                    }
                    for p in result.pulled
                ],
                "removed": [
                    {"team": r.team, "event_id": r.event_id, "created_at": r.created_at}
                    for r in result.removed
                ],
                "skipped": [
                    {"team": s.team, "event_id": s.event_id, "reason": s.reason}
                    for s in result.skipped
                ],
                "read": list(result.read),
                "unreadable": result.unreadable,
                "verified": result.verified,
            }
        )
        return code
    for url, why in result.unreadable.items():
        ctx.out(f"relay {url} could not be read: {why}")
    for p in result.pulled:
        state = "recorded" if p.changed else "unchanged"
        ctx.out(
            f"team {p.team!r} from event {p.event_id}: {state}, personas "
            f"{', '.join(p.personas) or '(none)'}"
        )
        if p.left_out:
            ctx.out(
                f"  left out (no such persona here; 'fleetsync persona pull' first): "
                f"{', '.join(p.left_out)}"
            )
    for r in result.removed:
        ctx.out(
            f"removed team {r.team!r} as the owner asked on the relays (NIP-09 request "
            f"{r.event_id}, created_at {r.created_at})"
        )
    for s in result.skipped:
        where = f"team {s.team!r}" if s.team is not None else "an event"
        ctx.out(f"skipped {where} ({s.event_id}): {s.reason}")
    changed = sum(1 for p in result.pulled if p.changed)
    ctx.out(
        f"{changed} team(s) recorded, {len(result.pulled) - changed} unchanged, "
        f"{len(result.removed)} removed, "
        f"{len(result.skipped)} event(s) skipped (relays read: {', '.join(result.read) or 'none'})"
    )
    if not result.verified:
        ctx.out("not verified: a relay could not be read, so what it holds is unknown")
    return code


def run_list(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        found = list_teams(fleet)
    if ctx.json:
        ctx.emit_json(
            [
                {"team": t.team, "name": t.name, "personas": list(t.personas), "source": t.source}
                for t in found
            ]
        )
        return 0
    if not found:
        ctx.out("no teams; bring one in with 'fleetsync team import PATH'")
        return 0
    ctx.table(
        ["TEAM", "NAME", "PERSONAS", "SOURCE"],
        [(t.team, t.name, ", ".join(t.personas), t.source) for t in found],
    )
    return 0


def run_show(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        team = show_team(fleet, ctx.args.team)
    if ctx.json:
        ctx.emit_json({"team": team.team, **team.members(), "source": team.source})
        return 0
    ctx.out(f"team:         {team.team}")
    ctx.out(f"name:         {team.name}")
    if team.description is not None:
        ctx.out(f"description:  {team.description}")
    ctx.out(f"personas:     {', '.join(team.personas) or '(none)'}")
    ctx.out(f"source:       {team.source}")
    if team.instructions is not None:
        ctx.out("instructions:")
        for line in team.instructions.splitlines() or [""]:
            ctx.out(f"  {line}")
    return 0


def run_remove(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        ident = remove_team(fleet, ctx.args.team)
    if ctx.json:
        ctx.emit_json({"team": ident, "removed": True})
    else:
        ctx.out(f"removed team {ident!r}; its personas stay")
    return 0
