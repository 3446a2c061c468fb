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

import argparse
from pathlib import Path
from typing import Any

from adapters.cli.output import EXIT_UNVERIFIED, Context, Subcommands, add_json_flag
from adapters.cli.publish import (
    PUBLISH_EPILOG,
    add_publish_flags,
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


def register(commands: Subcommands) -> None:
    team = commands.add_parser("team", help="teams: groups of personas, brought in from buzz")
    sub = team.add_subparsers(dest="team_command", metavar="ACTION", required=True)

    imp = sub.add_parser(
        "import",
        help="bring a team in: a buzz-team-snapshot file or a legacy persona-pack directory",
        description="Bring a team and its personas in, as persona saves and a team, all or "
        "nothing. PATH is a buzz-team-snapshot v1 file (.team.json or .team.png) or a legacy "
        "persona-pack directory (.plugin/plugin.json and *.persona.md files; needs "
        "FLEETSYNC_LEGACY_TEAM_SYNC, on by default). Importing the same team again records "
        "nothing; a changed pack is brought in with 'team sync'.",
        epilog=PUBLISH_EPILOG,
    )
    imp.add_argument("path", metavar="PATH", help="a .team.json / .team.png file or a pack dir")
    imp.add_argument(
        "--id",
        metavar="ID",
        help="the team's id for a snapshot (default: made from its name); a pack's is its id",
    )
    add_publish_flags(imp, "changed personas' engrams")
    add_json_flag(imp)
    imp.set_defaults(func=run_import)

    sync = sub.add_parser(
        "sync",
        help="bring an imported persona pack's changes in",
        description="Update an imported team from its persona-pack directory (or snapshot "
        "file, with --id as imported): personas' public content is updated (their env_vars "
        "are kept), new personas are added, personas that left the pack leave the team and "
        "are deleted unless an agent follows them. Needs FLEETSYNC_LEGACY_TEAM_SYNC for a "
        "directory. Run again, it records nothing.",
        epilog=PUBLISH_EPILOG,
    )
    sync.add_argument("path", metavar="PATH", help="the pack directory (or snapshot file)")
    sync.add_argument("--id", metavar="ID", help="the team's id, for a snapshot file")
    add_publish_flags(sync, "changed personas' engrams")
    add_json_flag(sync)
    sync.set_defaults(func=run_sync)

    pull = sub.add_parser(
        "pull",
        help="follow the owner's buzz teams (kind:30176) on the relays",
        description="Read the owner's kind:30176 team events from every relay and record "
        "the newest valid one of each team as its version: name, description, "
        "instructions and member personas (buzz persona ids, taken as the slugs buzz makes "
        "of them; one naming no persona here is left out and reported: 'persona pull' "
        "first). A team the owner asked to delete (a NIP-09 kind:5 request, by event id or "
        "by address, with nothing written since) is removed, the request recorded as the "
        "cause; anyone else's request is ignored. Events with a bad envelope, signature or "
        "content are set aside with their reason. Pulling again records nothing. Exit 3 "
        "when a relay could not be read.",
    )
    add_json_flag(pull)
    pull.set_defaults(func=run_pull)

    listing = sub.add_parser("list", help="list teams and their personas")
    add_json_flag(listing)
    listing.set_defaults(func=run_list)

    show = sub.add_parser("show", help="show one team: name, instructions, personas, source")
    show.add_argument("team", metavar="TEAM", help="the team's id, as 'team list' shows it")
    add_json_flag(show)
    show.set_defaults(func=run_show)

    remove = sub.add_parser(
        "remove",
        help="forget a team (its personas stay)",
        description="Remove a team: its personas and their agents stay as they are.",
    )
    remove.add_argument("team", metavar="TEAM", help="the team's id")
    add_json_flag(remove)
    remove.set_defaults(func=run_remove)


def add_team_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--team TEAM``: narrow a command to the personas of one team (and their agents)."""
    parser.add_argument("--team", metavar="TEAM", help=f"only {what} of this team's personas")


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
