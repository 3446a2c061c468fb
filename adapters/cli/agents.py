"""``fleetsync agent create|import|list|move|retire|attest``: what they print.

What each does is :mod:`adapters.usecases.agents`: keys stored before agents,
everything checked before either is written; retired, tombstoned, and only then,
with ``--destroy-key``, the key destroyed (a tombstone that cannot be confirmed
keeps the key: exit 2). Names follow :mod:`domain.names`: ``--name`` and the
persona's ``name_pool`` obey the same rule, and a name a live agent of the
persona already has is refused unless ``--force``.
"""

from __future__ import annotations

import sys

from adapters.cli.commands import CREATE_LISTS_UP_TO
from adapters.cli.output import Context
from adapters.cli.publish import (
    print_publication,
    progress_for,
    publication_code,
    publication_doc,
)
from adapters.cli.setup import read_secret_key
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
    """The agents created (all with --json or --list, else up to CREATE_LISTS_UP_TO), then
    what was published for them, as ``apply`` reports it; returns the exit code."""
    agents, publication = added.agents, added.publication
    docs = [_agent_doc(a) for a in agents]
    if ctx.json:
        ctx.emit_json({"agents": docs, "publish": publication_doc(publication)})
        return publication_code(publication)
    listed = bool(getattr(ctx.args, "list", False)) or len(docs) <= CREATE_LISTS_UP_TO
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
