"""``fleetsync import buzz [APP_DATA_DIR]``: take over a buzz desktop's personas and agents.

Reads buzz's app data (:mod:`adapters.buzz.appdata`), the keyring item of
its keys when an agent's key is not in the file (:mod:`adapters.buzz.keyring`),
and records the import all or nothing (:mod:`adapters.usecases.import_buzz`). No
key is ever printed, in text or ``--json``.
"""

from __future__ import annotations

from pathlib import Path

from adapters.buzz import keyring as buzz_keyring
from adapters.buzz.appdata import APP_IDENTIFIER, default_app_data_dir, read_app_data
from adapters.cli.output import Context, Subcommands, add_json_flag
from adapters.usecases.import_buzz import (
    CREATE,
    MOVE,
    SKIP,
    UNCHANGED,
    UPDATE,
    ImportPlan,
    count,
    import_buzz,
    plan_doc,
)

# How many agents the text report lists one by one; --json lists them all.
LIST_UP_TO = 20


def register(commands: Subcommands) -> None:
    imp = commands.add_parser("import", help="take over another tool's fleet (buzz)")
    sub = imp.add_subparsers(dest="import_source", metavar="SOURCE", required=True)
    buzz = sub.add_parser(
        "buzz",
        help="import the buzz desktop's personas and agents (agents keep their keys)",
        description="Import every persona and agent of a buzz desktop app-data directory, "
        "of any era (personas.json beside managed-agents.json, or definitions folded into "
        "managed-agents.json). Agents keep their key pairs: a key comes from "
        "private_key_nsec, else from buzz's OS keyring item (service buzz-desktop, user "
        "secrets), and goes straight into the sealed key store. All or nothing: a record "
        "fleetsync cannot take stops the import, naming the file and the record, and "
        "nothing is written. Importing the same data again records nothing. Nothing is "
        "published: 'fleetsync plan' shows what 'apply' would write.",
    )
    buzz.add_argument(
        "app_data",
        nargs="?",
        metavar="APP_DATA_DIR",
        help=f"buzz's app-data directory (default: {APP_IDENTIFIER} in the user's data "
        "directory: $XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/Application Support "
        "on macOS, %%APPDATA%% on Windows)",
    )
    buzz.add_argument(
        "--dry-run", action="store_true", help="show what the import would do; write nothing"
    )
    buzz.add_argument(
        "--keyring-service",
        default=buzz_keyring.SERVICE,
        metavar="NAME",
        help=f"the keyring service buzz keeps its keys under (default: {buzz_keyring.SERVICE};"
        " a debug build of buzz uses buzz-desktop-dev)",
    )
    buzz.add_argument(
        "--list", action="store_true", help=f"list every agent (default: up to {LIST_UP_TO})"
    )
    add_json_flag(buzz)
    buzz.set_defaults(func=run_import_buzz)


def run_import_buzz(ctx: Context) -> int:
    args = ctx.args
    root = Path(args.app_data) if args.app_data else default_app_data_dir(ctx.environ)
    data = read_app_data(root)
    service = args.keyring_service

    def secrets() -> buzz_keyring.BuzzSecrets:
        return buzz_keyring.read_secrets(service)

    with ctx.fleet() as fleet:
        plan = import_buzz(fleet, data, secrets, dry_run=args.dry_run)
    if ctx.json:
        ctx.emit_json(plan_doc(plan, dry_run=args.dry_run))
        return 0
    _print(ctx, plan, dry_run=args.dry_run)
    return 0


def _print(ctx: Context, plan: ImportPlan, *, dry_run: bool) -> None:
    data = plan.data
    would = "would " if dry_run else ""
    ctx.out(f"buzz app data {data.root} ({data.era} layout)")
    ctx.out(
        f"personas: {would}create {count(plan.personas, CREATE)}, "
        f"{would}update {count(plan.personas, UPDATE)}, "
        f"{count(plan.personas, UNCHANGED)} unchanged"
    )
    changed = [s for s in plan.personas if s.action != UNCHANGED]
    if changed:
        ctx.table(
            ["ACTION", "SLUG", "BUZZ ID", "NOT CARRIED"],
            [(s.action, s.slug, s.buzz_id, ", ".join(s.not_carried)) for s in changed],
        )
    ctx.out(
        f"agents: {would}create {count(plan.agents, CREATE)}, "
        f"{would}move {count(plan.agents, MOVE)}, "
        f"{count(plan.agents, UNCHANGED)} unchanged, {count(plan.agents, SKIP)} skipped"
    )
    shown = [s for s in plan.agents if s.action != UNCHANGED or s.note]
    if shown:
        listed = shown if ctx.args.list else shown[:LIST_UP_TO]
        ctx.table(
            ["ACTION", "NAME", "PUBKEY", "PERSONA", "KEY FROM", "NOTE"],
            [
                (
                    s.action,
                    s.name,
                    s.pubkey,
                    (s.persona or "-") + (" (gone in buzz)" if s.persona_missing else ""),
                    s.key_from or "-",
                    s.note or "",
                )
                for s in listed
            ],
        )
        if len(listed) < len(shown):
            ctx.out(f"... and {len(shown) - len(listed)} more (--list shows every one)")
    for team in plan.teams:
        members = ", ".join(team.personas) or "no persona"
        gone = f"; {len(team.missing)} persona(s) gone in buzz" if team.missing else ""
        action = team.action if team.action == UNCHANGED else f"{would}{team.action}"
        ctx.out(f"team {team.name!r} ({team.id}, {action}): {members}{gone}")
    for note in plan.notes:
        ctx.note(note)
    if dry_run:
        ctx.out("dry run: nothing was written")
    elif plan.changes:
        ctx.out("imported; 'fleetsync plan' shows what 'fleetsync apply' would publish")
    else:
        ctx.out("nothing to import: this fleet already holds all of it")
