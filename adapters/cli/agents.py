"""``fleetsync agent create|import|list|move|retire|attest``: their arguments and output.

What each does is :mod:`adapters.usecases.agents`: keys stored before agents,
everything checked before either is written; retired, tombstoned, and only then,
with ``--destroy-key``, the key destroyed (a tombstone that cannot be confirmed
keeps the key: exit 2). Names follow :mod:`domain.names`: ``--name`` and the
persona's ``name_pool`` obey the same rule, and a name a live agent of the
persona already has is refused unless ``--force``.
"""

from __future__ import annotations

import sys

from adapters.cli.output import Context, Subcommands, add_json_flag, add_yes_flag
from adapters.cli.publish import (
    PUBLISH_EPILOG,
    add_publish_flags,
    print_publication,
    progress_for,
    publication_code,
    publication_doc,
)
from adapters.cli.setup import read_secret_key
from adapters.cli.teams import add_team_flag
from adapters.usecases.agents import (
    AgentsAdded,
    NewAgentShown,
    attest_agent,
    attest_unattested,
    check_count,
    create_agents,
    import_agent,
    list_agents,
    move_agent,
    retire_agent,
)
from domain.errors import InvalidInput
from domain.names import check_name
from domain.slugs import persona_slug

EXIT_NOT_DONE = 2  # a retire whose key had to be kept: its tombstone is still due
# Agents a create lists one by one unless asked (--list); more are summarised.
LIST_UP_TO = 10
AGENT_HELP = "the agent: its name, short id (8+ hex characters of its key), hex key or npub"


def register(commands: Subcommands) -> None:
    agent = commands.add_parser(
        "agent", help="create, import, list, move, retire and attest agents"
    )
    sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)

    create = sub.add_parser(
        "create",
        help="create agents (new key pairs) from a persona",
        description="Create N agents in one transaction. Names: --name (suffixed -1..-N "
        "when N > 1), else the persona's name_pool in turn (suffixed on reuse), else "
        "SLUG-1, SLUG-2, ...",
        epilog=PUBLISH_EPILOG,
    )
    create.add_argument(
        "--persona", required=True, metavar="SLUG", help="the persona the agents follow"
    )
    create.add_argument(
        "--count", type=int, default=1, metavar="N", help="how many agents (default: 1)"
    )
    create.add_argument(
        "--name",
        metavar="NAME",
        help="their name (suffixed -1..-N when N > 1): 1-128 characters, no control or "
        "bidi characters",
    )
    create.add_argument(
        "--force",
        action="store_true",
        help="allow a --name another live agent of the persona already has",
    )
    add_publish_flags(create, "their engrams")
    create.add_argument(
        "--list",
        action="store_true",
        help=f"list every agent created (default: up to {LIST_UP_TO}; --json lists them all)",
    )
    add_json_flag(create)
    create.set_defaults(func=run_create)

    imp = sub.add_parser(
        "import", help="adopt an existing key pair as an agent", epilog=PUBLISH_EPILOG
    )
    imp.add_argument(
        "--nsec",
        required=True,
        metavar="NSEC|-",
        help="the agent's secret key (nsec, hex, or a NIP-49 ncryptsec opened with "
        "$FLEETSYNC_BACKUP_PASSPHRASE or a prompt); '-' reads it from stdin, which keeps "
        "it out of shell history",
    )
    imp.add_argument("--persona", required=True, metavar="SLUG", help="the persona it follows")
    imp.add_argument(
        "--name", metavar="NAME", help="its name (default: the next from the name_pool)"
    )
    imp.add_argument(
        "--force",
        action="store_true",
        help="allow a --name another live agent of the persona already has",
    )
    add_publish_flags(imp, "its engram")
    add_json_flag(imp)
    imp.set_defaults(func=run_import)

    listing = sub.add_parser("list", help="list agents and their reconcile status")
    listing.add_argument("--persona", metavar="SLUG", help="only agents of this persona")
    add_team_flag(listing, "agents")
    listing.add_argument("--all", action="store_true", help="include retired agents")
    add_json_flag(listing)
    listing.set_defaults(func=run_list)

    move = sub.add_parser("move", help="make an agent follow another persona")
    move.add_argument("agent", metavar="AGENT", help=AGENT_HELP)
    move.add_argument(
        "--persona", required=True, metavar="SLUG", help="the persona it follows from now on"
    )
    move.add_argument(
        "--force",
        action="store_true",
        help="move it even if a live agent of that persona has the same name",
    )
    add_json_flag(move)
    move.set_defaults(func=run_move)

    retire = sub.add_parser(
        "retire",
        help="retire an agent (no more engrams; its engram is tombstoned)",
        description="Retire an agent: it gets no more engrams, and the engram it holds on "
        "the relays (the persona and its secrets) is tombstoned right away (NIP-AE "
        "replacement with a null value, then a NIP-09 deletion request), or by the next "
        "apply. --destroy-key destroys its secret key only once that tombstone is "
        "confirmed: the key is what signs it. Exit 2 when the key was kept for that reason.",
    )
    retire.add_argument("agent", metavar="AGENT", help=AGENT_HELP)
    retire.add_argument(
        "--destroy-key",
        action="store_true",
        help="also destroy its secret key (irreversible; the agent can never sign again)",
    )
    retire.add_argument(
        "--no-apply",
        action="store_true",
        help="do not tombstone its engram now ('fleetsync apply' will)",
    )
    add_yes_flag(retire, "destroy the key")
    add_json_flag(retire)
    retire.set_defaults(func=run_retire)

    attest = sub.add_parser(
        "attest",
        help="mint a fresh owner attestation (NIP-OA) for an agent",
        description="Sign a new NIP-OA attestation of the agent with the owner key and keep "
        "it in the log in place of the one it had: the 'auth' tag a buzz relay that admits "
        "members' agents asks for. Agents get one when they are created or imported; "
        "retiring an agent withdraws it. With --missing, every live agent that has none "
        "(made before attestations existed) gets one, in one transaction.",
    )
    attest.add_argument("agent", metavar="AGENT", nargs="?", help=AGENT_HELP)
    attest.add_argument(
        "--missing",
        action="store_true",
        help="attest every live agent that has no attestation (instead of AGENT)",
    )
    add_json_flag(attest)
    attest.set_defaults(func=run_attest)


# -- argument checks -------------------------------------------------------------------


# -- commands --------------------------------------------------------------------------


def _agent_doc(agent: NewAgentShown) -> dict[str, object]:
    return {
        "pubkey": agent.pubkey,
        "npub": agent.npub,
        "name": agent.name,
        "persona": agent.persona,
        "origin": agent.origin,
    }


def _print_agents(ctx: Context, added: AgentsAdded, verb: str) -> int:
    """The agents created (all with --json or --list, else up to LIST_UP_TO), then
    what was published for them, as ``apply`` reports it; returns the exit code."""
    agents, publication = added.agents, added.publication
    docs = [_agent_doc(a) for a in agents]
    if ctx.json:
        ctx.emit_json({"agents": docs, "publish": publication_doc(publication)})
        return publication_code(publication)
    listed = bool(getattr(ctx.args, "list", False)) or len(docs) <= LIST_UP_TO
    slug = agents[0].persona
    if listed:
        ctx.out(f"{verb} {len(agents):,} agent(s) of persona {slug!r}:")
        ctx.table(["NAME", "PUBKEY", "NPUB"], [(d["name"], d["pubkey"], d["npub"]) for d in docs])
    else:
        ctx.out(
            f"{verb} {len(agents):,} agent(s) of persona {slug!r}: "
            f"{docs[0]['name']} ... {docs[-1]['name']} "
            f"(--list shows each; so does 'fleetsync agent list --persona {slug}')"
        )
    return print_publication(ctx, publication, f"the agent(s) are {verb}")


def run_create(ctx: Context) -> int:
    # Checked before the store is opened: bad input writes nothing.
    slug = persona_slug(ctx.args.persona)
    count = check_count(ctx.args.count)
    name = check_name(ctx.args.name, "--name") if ctx.args.name is not None else None
    with ctx.fleet() as fleet:
        added = create_agents(
            fleet,
            slug,
            count,
            name=name,
            force=ctx.args.force,
            publish_now=not ctx.args.no_apply,
            progress=progress_for(ctx),
        )
    return _print_agents(ctx, added, "created")


def run_import(ctx: Context) -> int:
    slug = persona_slug(ctx.args.persona)
    name = check_name(ctx.args.name, "--name") if ctx.args.name is not None else None
    key = read_secret_key(ctx, ctx.args.nsec)
    with ctx.fleet() as fleet:
        added = import_agent(
            fleet,
            key,
            slug,
            name=name,
            force=ctx.args.force,
            publish_now=not ctx.args.no_apply,
            progress=progress_for(ctx),
        )
    return _print_agents(ctx, added, "imported")


def run_list(ctx: Context) -> int:
    slug = persona_slug(ctx.args.persona) if ctx.args.persona else None
    with ctx.fleet() as fleet:
        rows = list_agents(fleet, slug, include_retired=ctx.args.all, team=ctx.args.team)
    if ctx.json:
        ctx.emit_json(
            [
                {
                    "pubkey": r.pubkey,
                    "name": r.name,
                    "persona": r.persona_slug,
                    "status": r.status,
                    "reasons": [x for x in r.reasons.split(",") if x],
                    "origin": r.origin,
                    "created_at": r.created_at,
                    "retired": r.retired,
                    "key_destroyed": r.key_destroyed,
                    "published_digest": r.published_digest,
                    "head_digest": r.head_digest,
                }
                for r in rows
            ]
        )
        return 0
    if not rows:
        ctx.out("no agents; create some with 'fleetsync agent create --persona SLUG'")
        return 0
    ctx.table(
        ["PUBKEY", "NAME", "PERSONA", "STATUS", "CREATED"],
        [
            (
                r.pubkey,
                r.name,
                r.persona_slug,
                r.status + (" (key destroyed)" if r.key_destroyed else ""),
                r.created_at[:19],
            )
            for r in rows
        ],
    )
    return 0


def run_move(ctx: Context) -> int:
    slug = persona_slug(ctx.args.persona)
    with ctx.fleet() as fleet:
        moved = move_agent(fleet, ctx.args.agent, slug, force=ctx.args.force)
    if ctx.json:
        ctx.emit_json({"pubkey": moved.pubkey, "persona": moved.persona})
    else:
        ctx.out(f"agent {moved.pubkey} now follows persona {moved.persona!r}")
    return 0


def run_attest(ctx: Context) -> int:
    if (ctx.args.agent is None) == (not ctx.args.missing):
        raise InvalidInput("name one AGENT to attest, or give --missing (not both)")
    if ctx.args.missing:
        with ctx.fleet() as fleet:
            minted = attest_unattested(fleet)
        if ctx.json:
            ctx.emit_json(
                {
                    "attested": [
                        {"pubkey": d.pubkey, "owner": d.owner, "conditions": d.conditions}
                        for d in minted
                    ]
                }
            )
        else:
            ctx.out(f"{len(minted)} agent(s) without an attestation got one")
        return 0
    with ctx.fleet() as fleet:
        done = attest_agent(fleet, ctx.args.agent)
    if ctx.json:
        ctx.emit_json({"pubkey": done.pubkey, "owner": done.owner, "conditions": done.conditions})
    else:
        ctx.out(f"agent {done.pubkey} has a fresh attestation by owner {done.owner}")
    return 0


def run_retire(ctx: Context) -> int:
    destroy = bool(ctx.args.destroy_key)
    with ctx.fleet() as fleet:
        result = retire_agent(
            fleet,
            ctx.args.agent,
            destroy_key=destroy,
            confirm=ctx.confirm,
            publish_now=not ctx.args.no_apply,
            progress=progress_for(ctx),
        )
    pubkey, destroyed, due = result.pubkey, result.key_destroyed, result.tombstone_due
    if ctx.json:
        ctx.emit_json(
            {"pubkey": pubkey, "retired": True, "key_destroyed": destroyed, "tombstone_due": due}
        )
    else:
        ctx.out(f"retired agent {pubkey}" + ("; its secret key is destroyed" if destroyed else ""))
        if due:
            ctx.out(
                "its engram on the relays still holds its persona's secrets and is not "
                "tombstoned yet; 'fleetsync apply' does it"
            )
    if destroy and due:
        # The key is what signs the tombstone: it stays until the tombstone is confirmed.
        err = ctx.stderr if ctx.stderr is not None else sys.stderr
        err.write(
            "fleetsync: warning: the secret key was NOT destroyed: the agent's engram is "
            "not tombstoned yet and only its key can sign the tombstone; run 'fleetsync "
            f"apply', then 'fleetsync agent retire {pubkey} --destroy-key' again\n"
        )
        return EXIT_NOT_DONE
    return 0
