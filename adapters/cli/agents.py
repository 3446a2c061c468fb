"""``fleetsync agent create|import|list|move|retire``.

An agent's key pair is stored in the key store *before* its creation event is
saved: a key without an agent is harmless, an agent without its key could never
sign its engrams. Everything that can be checked (slug, persona, count, name,
duplicate agent) is checked before either is written.

Retiring is the mirror image: the agent is retired, its engram tombstoned (the
key signs the tombstone), and only then, with ``--destroy-key``, the key
destroyed; a tombstone that cannot be confirmed keeps the key (exit 2).

Names follow :mod:`domain.names`: ``--name`` and the persona's ``name_pool``
obey the same rule, and a name a live agent of the persona already has is
refused unless ``--force``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapters.bootstrap import Fleet
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
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.usecases.apply import NOT_PUBLISHED, Publication, publish
from adapters.usecases.filters import resolve_agent
from domain.aggregates import Agent, AgentRetired
from domain.application import AgentExists, NewAgent, UnknownAgent
from domain.errors import InvalidInput
from domain.names import check_name, check_unique, pick_names
from domain.planner import Status
from domain.slugs import persona_slug
from projections.view import FleetView

EXIT_NOT_DONE = 2  # a retire whose key had to be kept: its tombstone is still due
MAX_COUNT = 100_000
# Agents a create lists one by one unless asked (--list); more are summarised.
LIST_UP_TO = 10
AGENT_HELP = "the agent: its name, short id (8+ hex characters of its key), hex key or npub"


def register(commands: Subcommands) -> None:
    agent = commands.add_parser("agent", help="create, import, list, move and retire agents")
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


# -- argument checks -------------------------------------------------------------------


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"--count must be between 1 and {MAX_COUNT}, not {count}")
    return count


def new_names(
    view: FleetView, count: int, *, name: str | None, pool: Sequence[str], slug: str, force: bool
) -> list[str]:
    """Names for new agents of persona ``slug``: ``--name`` as given (unique among the
    persona's live agents unless ``force``), else picked to avoid every name in the fleet.
    """
    if name is not None and count == 1:
        live = {a.name for a in view.agents(persona=slug, include_retired=False)}
        return [check_unique(name, live, slug, force=force)]
    taken = {a.name for a in view.agents()}
    return pick_names(count, name=name, pool=pool, slug=slug, taken=taken)


# -- commands --------------------------------------------------------------------------


def _agent_doc(agent: Agent) -> dict[str, object]:
    return {
        "pubkey": agent.pubkey,
        "npub": PublicKey.from_hex(agent.pubkey).npub(),
        "name": agent.name,
        "persona": agent.persona_slug,
        "origin": agent.origin,
    }


def _print_agents(
    ctx: Context, agents: Sequence[Agent], verb: str, publication: Publication
) -> int:
    """The agents created (all with --json or --list, else up to LIST_UP_TO), then
    what was published for them, as ``apply`` reports it; returns the exit code."""
    docs = [_agent_doc(a) for a in agents]
    if ctx.json:
        ctx.emit_json({"agents": docs, "publish": publication_doc(publication)})
        return publication_code(publication)
    listed = bool(getattr(ctx.args, "list", False)) or len(docs) <= LIST_UP_TO
    slug = agents[0].persona_slug
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
    slug = persona_slug(ctx.args.persona)
    count = check_count(ctx.args.count)
    name = check_name(ctx.args.name, "--name") if ctx.args.name is not None else None
    with ctx.fleet() as fleet:
        persona = fleet.app.get_persona(slug)  # unknown or deleted: fail before any key exists
        names = new_names(
            fleet.view(),
            count,
            name=name,
            pool=persona.content.get("name_pool") or [],
            slug=slug,
            force=ctx.args.force,
        )
        keys = [SecretKey.generate() for _ in range(count)]
        fleet.keystore.put_many(keys)
        agents = fleet.app.create_agents(
            [NewAgent(k.public_key.hex, slug, n) for k, n in zip(keys, names, strict=True)],
            ctx.settings.actor,
        )
        publication = (
            NOT_PUBLISHED
            if ctx.args.no_apply
            else publish(fleet, progress=progress_for(ctx), only=[a.pubkey for a in agents])
        )
    return _print_agents(ctx, agents, "created", publication)


def run_import(ctx: Context) -> int:
    slug = persona_slug(ctx.args.persona)
    name = check_name(ctx.args.name, "--name") if ctx.args.name is not None else None
    key = read_secret_key(ctx, ctx.args.nsec)
    pubkey = key.public_key.hex
    with ctx.fleet() as fleet:
        if pubkey == fleet.owner.public_key.hex:
            raise InvalidInput("that is the owner's key; an agent needs a key pair of its own")
        persona = fleet.app.get_persona(slug)
        try:
            fleet.app.get_agent(pubkey)
        except UnknownAgent:
            pass
        else:
            raise AgentExists(f"agent {pubkey} already exists; see 'fleetsync agent list'")
        pool = persona.content.get("name_pool") or []
        name = new_names(fleet.view(), 1, name=name, pool=pool, slug=slug, force=ctx.args.force)[0]
        fleet.keystore.put(key)
        agents = fleet.app.create_agents(
            [NewAgent(pubkey, slug, name)], ctx.settings.actor, origin="imported"
        )
        publication = (
            NOT_PUBLISHED
            if ctx.args.no_apply
            else publish(fleet, progress=progress_for(ctx), only=[pubkey])
        )
    return _print_agents(ctx, agents, "imported", publication)


def run_list(ctx: Context) -> int:
    slug = persona_slug(ctx.args.persona) if ctx.args.persona else None
    with ctx.fleet() as fleet:
        view = fleet.view()
        if slug is not None and view.persona(slug) is None:
            fleet.app.get_persona(slug)  # raises the usual "no persona" error
        rows = view.agents(persona=slug, include_retired=ctx.args.all)
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
        pubkey = resolve_agent(fleet.view(), ctx.args.agent)
        agent = fleet.app.get_agent(pubkey)
        if agent.persona_slug != slug:
            live = {a.name for a in fleet.view().agents(persona=slug, include_retired=False)}
            check_unique(agent.name, live, slug, force=ctx.args.force)
        fleet.app.move_agent(pubkey, slug, ctx.settings.actor)
    if ctx.json:
        ctx.emit_json({"pubkey": pubkey, "persona": slug})
    else:
        ctx.out(f"agent {pubkey} now follows persona {slug!r}")
    return 0


def run_retire(ctx: Context) -> int:
    destroy = ctx.args.destroy_key
    actor = ctx.settings.actor
    with ctx.fleet() as fleet:
        pubkey = resolve_agent(fleet.view(), ctx.args.agent)
        agent = fleet.app.get_agent(pubkey)
        if agent.retired and not destroy:
            raise AgentRetired(f"agent {pubkey} is already retired")
        if destroy and agent.key_destroyed:
            raise InvalidInput(f"the key of agent {pubkey} is already destroyed")
        if destroy:
            ctx.confirm(
                f"destroying the secret key of agent {pubkey} ({agent.name!r}) cannot be "
                "undone: it can never sign again"
            )
        # Retired first, tombstoned next, key destroyed last: a crash in between
        # leaves a retired agent with its key (safe, and rerunning finishes the
        # job), never a live agent without one, nor an engram holding the
        # persona's secrets that nobody can sign a tombstone for any more.
        if not agent.retired:
            fleet.app.retire_agent(pubkey, actor)
        if not ctx.args.no_apply or destroy:
            _tombstone_now(ctx, fleet, pubkey)
        row = fleet.view().agent(pubkey)
        due = row is not None and row.status == Status.TOMBSTONE_DUE
        if destroy and not due:
            fleet.keystore.destroy(pubkey)
            fleet.app.record_key_destroyed(pubkey, actor)
    destroyed = bool(destroy) and not due
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


def _tombstone_now(ctx: Context, fleet: Fleet, pubkey: str) -> None:
    """Tombstone a just-retired agent's engram now, best effort: the caller reads the
    agent's status afterwards and says whether it is done (apply catches up)."""
    view = fleet.view()
    row = view.agent(pubkey)
    if row is not None and row.status == Status.TOMBSTONE_DUE:
        publish(fleet, progress=progress_for(ctx), only=[pubkey])
