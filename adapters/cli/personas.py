"""``fleetsync persona save|list|show|delete``: their arguments and output.

What each does is :mod:`adapters.usecases.personas`. Secrets (``env_vars``) are
read from the definition file and sealed by the application; they are never
printed: ``show`` lists their names only.
"""

from __future__ import annotations

from typing import Any

from adapters.cli.output import (
    Context,
    Subcommands,
    add_json_flag,
    add_yes_flag,
    read_bounded,
    short,
)
from adapters.cli.publish import (
    PUBLISH_EPILOG,
    add_publish_flags,
    print_publication,
    progress_for,
    publication_code,
    publication_doc,
)
from adapters.usecases.personas import delete_persona, list_personas, save_persona, show_persona
from domain.errors import InvalidPersona
from domain.persona import parse_definition
from domain.slugs import persona_slug

# Far above what can be saved (an engram body is at most 40,960 bytes, see
# domain.engram_size) even with generous JSON escapes and indentation; the
# bound only keeps a wrong file (a log, a device) from being read whole.
MAX_DEFINITION_BYTES = 1_048_576


def register(commands: Subcommands) -> None:
    persona = commands.add_parser("persona", help="save, list, show and delete personas")
    sub = persona.add_subparsers(dest="persona_command", metavar="ACTION", required=True)

    save = sub.add_parser(
        "save",
        help="create or update a persona from a JSON definition",
        description="Save a persona from JSON: display_name and system_prompt (required), "
        "avatar_url, runtime, model, provider, name_pool, and env_vars (secrets, sealed "
        "at rest, never published in the persona). Saving an identical definition "
        "records nothing.",
        epilog=PUBLISH_EPILOG,
    )
    save.add_argument("slug", metavar="SLUG", help="persona slug: ^[a-z0-9][a-z0-9_-]{0,63}$")
    save.add_argument("file", metavar="FILE|-", help="JSON definition file, or '-' for stdin")
    add_publish_flags(save, "its agents' engrams")
    add_json_flag(save)
    save.set_defaults(func=run_save)

    listing = sub.add_parser("list", help="list personas")
    listing.add_argument("--all", action="store_true", help="include deleted personas")
    add_json_flag(listing)
    listing.set_defaults(func=run_list)

    show = sub.add_parser(
        "show",
        help="show a persona (secrets hidden)",
        description="Show a persona's current version: its public members, the names of "
        "its env_vars (never their values) and its digests; --history lists every version.",
    )
    show.add_argument("slug", metavar="SLUG", help="the persona's slug")
    show.add_argument(
        "--history", action="store_true", help="list every saved version: when, who, digest"
    )
    add_json_flag(show)
    show.set_defaults(func=run_show)

    delete = sub.add_parser(
        "delete",
        help="delete a persona (its history is kept)",
        description="Delete a persona. Its agents stay, without a persona to follow, until "
        "moved or retired; the engrams they hold on the relays (the persona and its "
        "secrets) are tombstoned right away, or by the next apply. With live agents it "
        "asks first (or takes --yes).",
    )
    delete.add_argument("slug", metavar="SLUG", help="the persona's slug")
    delete.add_argument(
        "--no-apply",
        action="store_true",
        help="do not tombstone its agents' engrams now ('fleetsync apply' will)",
    )
    add_yes_flag(delete, "delete a persona that live agents follow")
    add_json_flag(delete)
    delete.set_defaults(func=run_delete)


def read_definition_text(ctx: Context, source: str) -> str:
    """The text of FILE, or of stdin for '-', read up to :data:`MAX_DEFINITION_BYTES`.

    A longer file is refused without reading the rest (``/dev/zero`` ends it
    too); not UTF-8 is bad input, not a crash.
    """
    where = "stdin" if source == "-" else source
    raw = read_bounded(ctx, source, MAX_DEFINITION_BYTES)
    if raw is None:
        raise InvalidPersona(
            f"{where} is larger than {MAX_DEFINITION_BYTES:,} bytes, the limit for a persona "
            "definition"
        )
    try:
        # utf-8-sig: editors on some systems prepend a BOM, which JSON parsers refuse.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidPersona(f"{where} is not UTF-8 text") from None


def run_save(ctx: Context) -> int:
    # Everything is validated before the store is opened: bad input writes nothing.
    slug = persona_slug(ctx.args.slug)
    definition = parse_definition(read_definition_text(ctx, ctx.args.file))
    with ctx.fleet() as fleet:
        result = save_persona(
            fleet, slug, definition, publish_now=not ctx.args.no_apply, progress=progress_for(ctx)
        )
    saved, agents, publication = result.saved, result.agents, result.publication
    if ctx.json:
        ctx.emit_json(
            {
                "slug": saved.slug,
                "changed": saved.changed,
                "revision": saved.revision,
                "digest": saved.digest,
                "secrets_digest": saved.secrets_digest,
                "agents": agents,
                "publish": publication_doc(publication),
            }
        )
        return publication_code(publication)
    if not saved.changed:
        ctx.out(f"persona {slug!r} unchanged (revision {saved.revision})")
        return 0
    ctx.out(f"saved persona {slug!r}: revision {saved.revision}, digest {saved.digest}")
    if agents:
        ctx.out(f"{agents:,} agent(s) follow it")
    return print_publication(ctx, publication, "the persona is saved")


def run_list(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        rows = list_personas(fleet, include_deleted=ctx.args.all)
    if ctx.json:
        ctx.emit_json(
            [
                {
                    "slug": r.slug,
                    "revision": r.revision,
                    "deleted": r.deleted,
                    "digest": r.digest,
                    "secrets_digest": r.secrets_digest,
                    "display_name": r.display_name,
                    "agents": r.agent_count,
                    "saved_at": r.saved_at,
                    "actor": r.actor,
                    "position": r.position,
                }
                for r in rows
            ]
        )
        return 0
    if not rows:
        ctx.out("no personas; save one with 'fleetsync persona save SLUG FILE'")
        return 0
    ctx.table(
        ["SLUG", "REV", "AGENTS", "DIGEST", "SAVED", "BY", "NAME"],
        [
            (
                r.slug + (" (deleted)" if r.deleted else ""),
                r.revision,
                r.agent_count,
                short(r.digest),
                r.saved_at[:19],
                r.actor,
                r.display_name,
            )
            for r in rows
        ],
    )
    return 0


def run_show(ctx: Context) -> int:
    slug = persona_slug(ctx.args.slug)
    with ctx.fleet() as fleet:
        persona = show_persona(fleet, slug, history=ctx.args.history)
    members, env_names, history = persona.members, list(persona.env_names), persona.history
    if ctx.json:
        doc: dict[str, Any] = {
            "slug": slug,
            "revision": persona.revision,
            "deleted": persona.deleted,
            "digest": persona.digest,
            "secrets_digest": persona.secrets_digest,
            "content": members,
            "env_vars": env_names,  # names only: the values are secrets
        }
        if history is not None:
            doc["history"] = [
                {
                    "revision": v.revision,
                    "position": v.position,
                    "timestamp": v.at,
                    "actor": v.actor,
                    "change": v.change,
                    "digest": v.digest,
                    "secrets_digest": v.secrets_digest,
                    "cause": v.cause,
                }
                for v in history
            ]
        ctx.emit_json(doc)
        return 0
    ctx.out(f"persona:        {slug}" + (" (deleted)" if persona.deleted else ""))
    ctx.out(f"revision:       {persona.revision}")
    ctx.out(f"digest:         {persona.digest}")
    ctx.out(f"secrets digest: {persona.secrets_digest}")
    for name in ("display_name", "avatar_url", "runtime", "model", "provider"):
        if members[name] is not None:
            ctx.out(f"{name + ':':<15} {members[name]}")
    if members["name_pool"]:
        ctx.out(f"name_pool:      {', '.join(members['name_pool'])}")
    if env_names:
        ctx.out(f"env_vars:       {', '.join(f'{n} (hidden)' for n in env_names)}")
    ctx.out("system_prompt:")
    for line in str(members["system_prompt"]).splitlines() or [""]:
        ctx.out(f"  {line}")
    if history is not None:
        ctx.out()
        ctx.table(
            ["REV", "POS", "SAVED", "BY", "CHANGE", "DIGEST", "SECRETS"],
            [
                (
                    v.revision,
                    v.position,
                    v.at[:19],
                    v.actor,
                    v.change,
                    short(v.digest),
                    short(v.secrets_digest),
                )
                for v in history
            ],
        )
    return 0


def run_delete(ctx: Context) -> int:
    slug = persona_slug(ctx.args.slug)
    with ctx.fleet() as fleet:
        result = delete_persona(
            fleet,
            slug,
            confirm=ctx.confirm,
            publish_now=not ctx.args.no_apply,
            progress=progress_for(ctx),
        )
    publication = result.publication
    if ctx.json:
        ctx.emit_json(
            {
                "slug": slug,
                "deleted": True,
                "tombstones": publication_doc(publication) if publication is not None else None,
            }
        )
        return publication_code(publication) if publication is not None else 0
    ctx.out(f"deleted persona {slug!r}; its history is kept ('persona show --history')")
    if publication is None:
        return 0
    return print_publication(ctx, publication, "the persona is deleted")
