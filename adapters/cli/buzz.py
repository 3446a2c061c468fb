"""``fleetsync import buzz [APP_DATA_DIR]``: take over a buzz desktop's personas and agents.

Reads buzz's app data (:mod:`adapters.buzz.appdata`), the keyring item of
its keys when an agent's key is not in the file (:mod:`adapters.buzz.keyring`),
and records the import all or nothing (:mod:`adapters.usecases.import_buzz`). No
key is ever printed, in text or ``--json``.
"""

from __future__ import annotations

from pathlib import Path

from adapters.buzz import keyring as buzz_keyring
from adapters.buzz.appdata import default_app_data_dir, read_app_data
from adapters.cli.commands import BUZZ_IMPORT_LISTS_UP_TO
from adapters.cli.output import EXIT_UNVERIFIED, Context
from adapters.usecases.apply import Refreshed
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
    read_heads,
)


def run_import_buzz(ctx: Context) -> int:
    args = ctx.args
    root = Path(args.app_data) if args.app_data else default_app_data_dir(ctx.environ)
    data = read_app_data(root)
    service = args.keyring_service

    def secrets() -> buzz_keyring.BuzzSecrets:
        return buzz_keyring.read_secrets(service)

    with ctx.fleet() as fleet:
        plan = import_buzz(fleet, data, secrets, dry_run=args.dry_run)
        no_relays = not fleet.app.relay_urls()
        heads = None if args.dry_run or args.no_refresh else read_heads(fleet, plan)
    code = 0 if heads is None or heads.verified else EXIT_UNVERIFIED
    if ctx.json:
        doc = plan_doc(plan, dry_run=args.dry_run)
        doc["heads"] = _heads_doc(heads)
        ctx.emit_json(doc)
        return code
    _print(ctx, plan, dry_run=args.dry_run)
    recorded = any(s.action in (CREATE, MOVE) for s in plan.agents)
    if heads is not None:
        for url, why in heads.unreadable.items():
            ctx.out(f"relay {url} could not be read: {why}")
        read = heads.agents - heads.unverified
        ctx.out(
            f"read the engrams of {read} of {heads.agents} imported agent(s) on every relay; "
            "'fleetsync plan' shows what 'fleetsync apply' would publish"
        )
        if heads.unverified:
            ctx.out(
                f"not verified: {heads.unverified} agent(s) could not be read on every relay; "
                "'fleetsync refresh' reads them again"
            )
    elif recorded and not args.dry_run:
        why = "--no-refresh" if args.no_refresh else "no relay is configured"
        fix = "run" if args.no_refresh or not no_relays else "add buzz's relay and run"
        ctx.out(
            f"the engrams buzz wrote were not read ({why}): {fix} 'fleetsync refresh' "
            "before 'fleetsync plan', which until then counts every imported agent as "
            "never published"
        )
    return code


def _heads_doc(heads: Refreshed | None) -> dict[str, object] | None:
    if heads is None:
        return None
    return {
        "agents": heads.agents,
        "observed": heads.observed,
        "verified": heads.verified,
        "read": list(heads.read),
        "unreadable": dict(heads.unreadable),
        "unverified": heads.unverified,
    }


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
        listed = shown if ctx.args.list else shown[:BUZZ_IMPORT_LISTS_UP_TO]
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
        ctx.out("imported")
    else:
        ctx.out("nothing to import: this fleet already holds all of it")
