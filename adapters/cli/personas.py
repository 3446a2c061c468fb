"""``fleetsync persona save|list|show|delete|pull``: what they print.

What each does is :mod:`adapters.usecases.personas`. Secrets (``env_vars``) are
read from the definition file and sealed by the application; they are never
printed: ``show`` lists their names only.
"""

from __future__ import annotations

import sys
from typing import Any

from adapters.cli.output import (
    EXIT_UNVERIFIED,
    Context,
    read_bounded,
    short,
)
from adapters.cli.publish import (
    print_publication,
    progress_for,
    publication_code,
    publication_doc,
)
from adapters.owner_events import OwnerEventResult
from adapters.usecases.persona_events import pull_personas
from adapters.usecases.personas import delete_persona, list_personas, save_persona, show_persona
from domain.errors import InvalidPersona
from domain.persona import CONTENT_MEMBERS, parse_definition
from domain.slugs import persona_slug
from domain.text import escape

# Far above what can be saved (an engram body is at most 40,960 bytes, see
# domain.engram_size) even with generous JSON escapes and indentation; the
# bound only keeps a wrong file (a log, a device) from being read whole.
MAX_DEFINITION_BYTES = 1_048_576


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
    event = result.persona_event
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
                "persona_event": event.doc() if event is not None else None,
            }
        )
        return combined(publication_code(publication), persona_event_code(event))
    if not saved.changed:
        ctx.out(f"persona {slug!r} unchanged (revision {saved.revision})")
        print_persona_event(ctx, event)
        return persona_event_code(event)
    ctx.out(f"saved persona {slug!r}: revision {saved.revision}, digest {saved.digest}")
    print_persona_event(ctx, event)
    if agents:
        ctx.out(f"{agents:,} agent(s) follow it")
    code = print_publication(ctx, publication, "the persona is saved")
    return combined(code, persona_event_code(event))


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
            "digest_rule": persona.digest_rule,
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
    ctx.out(f"digest:         {persona.digest} ({persona.digest_rule} rule)")
    ctx.out(f"secrets digest: {persona.secrets_digest}")
    for name in CONTENT_MEMBERS:
        value = members.get(name)
        if name == "system_prompt" or value is None or value == []:
            continue
        shown = ", ".join(value) if isinstance(value, list) else value
        ctx.out(f"{name + ':':<15} {shown}")
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
    publication, event = result.publication, result.persona_event
    if ctx.json:
        ctx.emit_json(
            {
                "slug": slug,
                "deleted": True,
                "tombstones": publication_doc(publication) if publication is not None else None,
                "persona_event": event.doc() if event is not None else None,
            }
        )
        code = publication_code(publication) if publication is not None else 0
        return combined(code, persona_event_code(event))
    ctx.out(f"deleted persona {slug!r}; its history is kept ('persona show --history')")
    print_persona_event(ctx, event)
    if publication is None:
        return persona_event_code(event)
    code = print_publication(ctx, publication, "the persona is deleted")
    return combined(code, persona_event_code(event))


def persona_event_code(event: OwnerEventResult | None) -> int:
    """0 when the owner's event is read back from every relay (or no setting asked for
    it), 2 when some relay does not hold it or a head too far in the future forbade
    writing it (the change stands: saving again retries)."""
    return 0 if event is None or event.published else 2


def combined(*codes: int) -> int:
    """The exit code of a command whose parts each have one: not in sync (2) first."""
    return 2 if 2 in codes else max(codes)


def print_persona_event(ctx: Context, event: OwnerEventResult | None) -> None:
    """How the owner's kind:30175 (or its deletion) fared; never "published" unless
    every relay returned it when read back."""
    if event is None:
        return
    what = "deletion request" if event.kind == 5 else "persona event (kind:30175)"
    if event.error is not None:
        _warn(ctx, f"the {what} was not published: {event.error}")
        return
    for url in event.unchanged:
        ctx.out(f"{what}: {url} already holds this content")
    if event.conflict is not None:
        # Nothing was signed: the head's date would drag ours past what relays take.
        _warn(ctx, f"the {what} was not published: conflict: {event.conflict.describe()}")
        return
    for relay in event.relays:
        if relay.held:
            extra = ""
            if relay.still_served:
                extra = " (it still serves the persona: honouring a deletion is its policy)"
            ctx.out(f"{what} {event.event_id} published on {relay.relay}, read back{extra}")
        else:
            said = relay.said + (f": {relay.message}" if relay.message else "")
            ctx.out(f"{what} {event.event_id} NOT read back from {relay.relay} ({said})")
    if not event.published:
        _warn(ctx, f"the {what} is not on every relay yet; run the command again to retry")


def _warn(ctx: Context, text: str) -> None:
    err = ctx.stderr if ctx.stderr is not None else sys.stderr
    # The text may quote a relay: escape what a terminal would obey.
    err.write(f"fleetsync: warning: {escape(text)}\n")


def run_pull(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        result = pull_personas(fleet, publish_now=not ctx.args.no_apply, progress=progress_for(ctx))
    unverified = 0 if result.verified else EXIT_UNVERIFIED
    code = combined(publication_code(result.publication), unverified)
    if ctx.json:
        ctx.emit_json(
            {
                "taken": [
                    {
                        "slug": t.slug,
                        "event_id": t.event_id,
                        "created_at": t.created_at,
                        "revision": t.revision,
                        "reason": t.reason,
                    }
                    for t in result.taken
                ],
                "deleted": [
                    {
                        "slug": d.slug,
                        "event_id": d.event_id,
                        "created_at": d.created_at,
                        "agents": d.agents,
                    }
                    for d in result.deleted
                ],
                "skipped": [
                    {"slug": s.slug, "event_id": s.event_id, "reason": s.reason}
                    for s in result.skipped
                ],
                "read": list(result.read),
                "unreadable": result.unreadable,
                "verified": result.verified,
                "agents": result.agents,
                "publish": publication_doc(result.publication),
            }
        )
        return code
    for url, why in result.unreadable.items():
        ctx.out(f"relay {url} could not be read: {why}")
    for t in result.taken:
        ctx.out(
            f"took in persona {t.slug!r} from event {t.event_id} (created_at {t.created_at}): "
            f"revision {t.revision}, {t.reason}"
        )
    for d in result.deleted:
        ctx.out(
            f"deleted persona {d.slug!r} as the owner asked on the relays (NIP-09 request "
            f"{d.event_id}, created_at {d.created_at}); {d.agents} live agent(s) followed it"
        )
    for s in result.skipped:
        where = f"persona {s.slug!r}" if s.slug is not None else "an event"
        ctx.out(f"skipped {where} ({s.event_id}): {s.reason}")
    ctx.out(
        f"{len(result.taken)} persona(s) taken in, {len(result.deleted)} deleted, "
        f"{len(result.skipped)} event(s) skipped "
        f"(relays read: {', '.join(result.read) or 'none'})"
    )
    if not result.verified:
        ctx.out("not verified: a relay could not be read, so what it holds is unknown")
    if result.agents:
        ctx.out(f"{result.agents:,} agent(s) follow the personas taken in or deleted")
        return combined(
            print_publication(ctx, result.publication, "the personas are saved"), unverified
        )
    return code
