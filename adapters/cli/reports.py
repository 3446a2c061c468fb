"""``fleetsync plan|status|audit``: the read side, from the fleet view and the log.

``plan`` follows ``terraform plan -detailed-exitcode``: 0 when nothing is to
do, 2 when engrams are to be published, 1 on error. It only reads: nothing is
published or recorded.

Neither ``plan`` nor ``status`` reads the relays: both answer from the log, as
of the relays' last readings (``refresh``, or the refresh ``apply`` starts
with), and say so. When the last reading of a configured relay failed, or it
was never read, what the log says is unverified: they exit 3 (``plan`` only
when it has nothing else to report: changes pending is 2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from adapters.cli.output import (
    EXIT_UNVERIFIED,
    Context,
    filters_of,
    short,
)
from adapters.usecases import reports as queries
from domain.errors import InvalidInput
from domain.planner import Action, Assessment, PublishCommand, Status
from projections.audit import (
    AgentAudit,
    AsOf,
    AuditEntry,
    PersonaAudit,
    describe_cause,
)
from projections.rows import RelayRow

EXIT_CHANGES_PENDING = 2


def _when(at: str | None) -> str:
    return f"{at[:19]} UTC" if at else "never"


def describe_read(relay: RelayRow) -> str:
    """One relay's last reading, for people."""
    if relay.failed_at is not None:
        return (
            f"{relay.url}: could not be read at {_when(relay.failed_at)}: {relay.error} "
            f"(last read: {_when(relay.read_at)})"
        )
    if relay.read_at is None:
        return f"{relay.url}: never read"
    return f"{relay.url}: read {_when(relay.read_at)} ({relay.read_agents} agent(s))"


def read_docs(relays: Sequence[RelayRow]) -> list[dict[str, Any]]:
    return [
        {
            "url": r.url,
            "read_at": r.read_at,
            "read_agents": r.read_agents,
            "failed_at": r.failed_at,
            "error": r.error,
            "verified": r.verified,
        }
        for r in relays
    ]


def unverified_note(unverified: Sequence[RelayRow]) -> str:
    urls = ", ".join(r.url for r in unverified)
    return (
        f"not verified: the log's word is not checked against {urls}; "
        "'fleetsync refresh' reads the relays again"
    )


def run_plan(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        result = queries.plan(fleet, filters_of(ctx))
    commands, rows, conflicts = result.commands, result.rows, result.conflicts
    position, relays, unverified = result.position, result.relays, result.unverified
    docs: list[dict[str, Any]] = []
    for command in commands:
        row = rows[command.pubkey]
        docs.append(
            {
                "agent": command.pubkey,
                "name": row.name,
                "persona": command.persona_slug,
                "action": _action(command),
                "digest": command.digest,
                "secrets_digest": command.secrets_digest,
                "current_digest": row.head_digest,
                "reasons": [r.value for r in command.reasons],
                "causes": list(command.causes),
                "resend_event_id": command.resend_event_id,
                # apply records this command's events at the next version, or not at all
                "agent_version": command.agent_version,
                # a resend goes to these relays only (empty: every relay)
                "relays": list(command.relays),
            }
        )
    tombstones = sum(1 for c in commands if c.action is Action.TOMBSTONE)
    exit_code = (
        EXIT_CHANGES_PENDING if commands or conflicts else EXIT_UNVERIFIED if unverified else 0
    )
    if ctx.json:
        ctx.emit_json(
            {
                "position": position,
                "changes": len(docs),
                "commands": docs,
                "conflicts": list(conflicts),
                "verified": not unverified,
                "relay_reads": read_docs(relays),
            }
        )
        return exit_code
    basis = _basis(position, relays)
    if conflicts:
        ctx.out(
            f"{len(conflicts)} agent(s) in conflict: another writer's engram is the head; "
            "they wait for a person ('fleetsync apply --overwrite-conflicts')"
        )
    if not docs:
        if unverified:
            ctx.out(f"nothing to do by the log, {basis}")
            ctx.out(unverified_note(unverified))
        elif not conflicts:
            ctx.out(f"nothing to do: every agent carries its persona's current version ({basis})")
        return exit_code
    ctx.table(
        ["AGENT", "NAME", "PERSONA", "ACTION", "FROM", "TO", "REASONS", "CAUSES"],
        [
            (
                short(d["agent"], 16),
                d["name"] or "",
                d["persona"],
                d["action"],
                short(d["current_digest"]),
                "tombstone" if "tombstone" in d["action"] else short(d["digest"]),
                ",".join(d["reasons"]),
                ",".join(str(c) for c in d["causes"]),
            )
            for d in docs
        ],
    )
    publish = len(docs) - tombstones
    also = f", {tombstones} to tombstone" if tombstones else ""
    ctx.out(f"{publish} engram(s) to publish{also} ({basis})")
    if unverified:
        ctx.out(unverified_note(unverified))
    return exit_code


def _basis(position: int, relays: Sequence[RelayRow]) -> str:
    """What a plan is based on: the log, as of the relays' last readings."""
    if not relays:
        return f"log position {position}; no relays configured"
    reads = "; ".join(describe_read(r) for r in relays)
    return f"log position {position}, as of the relays' last reads: {reads}"


def _action(command: PublishCommand) -> str:
    """publish | resend | tombstone | resend-tombstone (a sealed one awaits confirmation)."""
    if command.action is Action.TOMBSTONE:
        return "resend-tombstone" if command.resend_event_id else "tombstone"
    return "resend" if command.resend_event_id else "publish"


def run_status(ctx: Context) -> int:
    with ctx.fleet() as fleet:
        result = queries.status(fleet, filters_of(ctx))
    personas, by_persona, totals = result.personas, result.counts, result.totals
    position, relays, unverified = result.position, result.relays, result.unverified
    exit_code = EXIT_UNVERIFIED if unverified else 0
    statuses = [s.value for s in Status]
    if ctx.json:
        ctx.emit_json(
            {
                "position": position,
                "relays": [r.url for r in relays],
                "verified": not unverified,
                "relay_reads": read_docs(relays),
                "totals": {s: totals[s] for s in statuses if totals[s]},
                "personas": [
                    {
                        "slug": p.slug,
                        "revision": p.revision,
                        "deleted": p.deleted,
                        "digest": p.digest,
                        "agents": {
                            s: by_persona.get(p.slug, Counter())[s]
                            for s in statuses
                            if by_persona.get(p.slug, Counter())[s]
                        },
                    }
                    for p in personas
                ],
            }
        )
        return exit_code
    if relays:
        ctx.out(f"log position {position}, as of the relays' last reads:")
        for relay in relays:
            ctx.out(f"  {describe_read(relay)}")
    else:
        ctx.out(f"log position {position}; relays: none")
    if not personas:
        ctx.out("no personas")
        return exit_code
    shown = [s for s in statuses if totals[s]] or [Status.IN_SYNC.value]
    # What the log last saw in sync is not in sync now if a relay was not read.
    headers = [
        "IN-SYNC (UNVERIFIED)" if unverified and s == Status.IN_SYNC.value else s.upper()
        for s in shown
    ]
    ctx.table(
        ["PERSONA", "REV", "DIGEST", *headers],
        [
            (
                p.slug + (" (deleted)" if p.deleted else ""),
                p.revision,
                short(p.digest),
                *(by_persona.get(p.slug, Counter())[s] for s in shown),
            )
            for p in personas
        ],
    )
    if unverified:
        ctx.out(unverified_note(unverified))
    return exit_code


def parse_as_of(text: str | None) -> AsOf:
    """``--as-of``: a log position (an integer) or an ISO-8601 time (naive means local)."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--as-of {text!r} is neither a log position (an integer) nor an ISO-8601 time "
            "such as 2026-01-31T12:00:00Z"
        ) from None
    # Stored timestamps are UTC-aware; a naive time is the user's local time.
    return when if when.tzinfo is not None else when.astimezone()


def _as_of_doc(as_of: AsOf) -> str | int | None:
    return as_of.isoformat() if isinstance(as_of, datetime) else as_of


def _entry_doc(entry: AuditEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "at": entry.at,
        "what": entry.what,
        "summary": entry.summary,
        "details": entry.details,
    }


def _assessment_doc(assessment: Assessment | None) -> dict[str, Any] | None:
    if assessment is None:
        return None
    return {
        "status": assessment.status.value,
        "reasons": [r.value for r in assessment.reasons],
        "causes": list(assessment.causes),
        "digest": assessment.digest,
        "secrets_digest": assessment.secrets_digest,
    }


def run_audit(ctx: Context) -> int:
    as_of = parse_as_of(ctx.args.as_of)
    with ctx.fleet() as fleet:
        result = queries.audit(fleet, filters_of(ctx), as_of)
    if isinstance(result, AgentAudit):
        return _print_agent_audit(ctx, result, as_of)
    return _print_persona_audit(ctx, result, as_of)


def _print_agent_audit(ctx: Context, audit: AgentAudit, as_of: AsOf) -> int:
    state = audit.state
    if ctx.json:
        ctx.emit_json(
            {
                "agent": audit.pubkey,
                "as_of": _as_of_doc(as_of),
                "exists": state is not None,
                "name": state.name if state else None,
                "persona": state.persona_slug if state else None,
                "retired": state.retired if state else None,
                "key_destroyed": state.key_destroyed if state else None,
                "carried_digest": state.head_digest if state else None,
                "published_digest": state.published_digest if state else None,
                "persona_digest": audit.persona.digest if audit.persona else None,
                "assessment": _assessment_doc(audit.assessment),
                "entries": [_entry_doc(e) for e in audit.entries],
            }
        )
        return 0
    when = f" as of {_as_of_doc(as_of)}" if as_of is not None else ""
    if state is None:
        ctx.out(f"agent {audit.pubkey} did not exist yet{when}")
        return 0
    verdict = audit.assessment
    status = verdict.status.value if verdict else state.status
    reasons = (
        f" ({', '.join(r.value for r in verdict.reasons)})" if verdict and verdict.reasons else ""
    )
    ctx.out(f"agent {audit.pubkey} {state.name!r}{when}")
    wanted = audit.persona.digest if audit.persona else None
    ctx.out(f"  persona:   {state.persona_slug} at {short(wanted)}")
    ctx.out(f"  carries:   {short(state.head_digest)} ({state.head_state or 'nothing known'})")
    ctx.out(f"  status:    {status}{reasons}")
    ctx.out()
    ctx.table(
        ["POS", "AT", "WHAT", "DETAILS"],
        [(e.position, e.at[:19], e.what, e.summary) for e in audit.entries],
    )
    return 0


def _print_persona_audit(ctx: Context, audit: PersonaAudit, as_of: AsOf) -> int:
    revision_of = {v.digest: v.revision for v in audit.versions if not v.deleted}
    if ctx.json:
        ctx.emit_json(
            {
                "persona": audit.slug,
                "as_of": _as_of_doc(as_of),
                "versions": [
                    {
                        "revision": v.revision,
                        "position": v.position,
                        "at": v.at,
                        "actor": v.actor,
                        "digest": v.digest,
                        "secrets_digest": v.secrets_digest,
                        "deleted": v.deleted,
                        "cause": v.cause,
                    }
                    for v in audit.versions
                ],
                "carriers": audit.carriers,
                "agents": [
                    {
                        "pubkey": a.pubkey,
                        "name": a.name,
                        "status": a.status,
                        "carried_digest": a.head_digest if a.head_state == "valid" else None,
                    }
                    for a in audit.agents
                ],
            }
        )
        return 0
    when = f" as of {_as_of_doc(as_of)}" if as_of is not None else ""
    if not audit.versions:
        ctx.out(f"persona {audit.slug!r} did not exist yet{when}")
        return 0
    ctx.out(f"persona {audit.slug!r}{when}: {len(audit.versions)} event(s)")
    ctx.table(
        ["REV", "POS", "AT", "BY", "CHANGE", "DIGEST", "SECRETS", "CAUSE"],
        [
            (
                v.revision,
                v.position,
                v.at[:19],
                v.actor,
                "deleted" if v.deleted else "saved",
                short(v.digest),
                short(v.secrets_digest),
                describe_cause(v.cause),
            )
            for v in audit.versions
        ],
    )
    ctx.out()
    if not audit.agents:
        ctx.out("no agents follow it")
        return 0
    ctx.table(
        ["AGENT", "NAME", "STATUS", "CARRIES"],
        [
            (
                a.pubkey,
                a.name,
                a.status,
                _carried(a.head_digest if a.head_state == "valid" else None, revision_of),
            )
            for a in audit.agents
        ],
    )
    return 0


def _carried(digest: str | None, revision_of: dict[str, int]) -> str:
    if digest is None:
        return "nothing"
    revision = revision_of.get(digest)
    return f"{short(digest)} (rev {revision})" if revision else f"{short(digest)} (unknown)"
