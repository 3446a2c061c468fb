"""Provenance audits: replay one agent's or one persona's history.

"Which persona version was this agent meant to carry on that day, who wrote
it, which relays acknowledged it": the answer is in the agent's stream and in
the streams of the personas it followed, merged in log order. ``as_of`` (a log
position or a time) cuts the history there and folds what is left, so the
status shown is the one the engine would have computed then.

Each apply that carried one of the agent's engrams (or tombstones) shows what
it cost each relay's wire (its ``RelayTraffic`` record: connections, the most
open at once, NIP-42 handshakes, HTTP requests).

Every engram sealed while another writer's engram was the agent's head (found
by a refresh or by a read-back) says what it replaces: that head's event id,
created_at, the persona version it carried, who wrote it (every head is signed
with the agent's key; its ``origin`` says whether it was new content or a
stale copy) and why it was written over.

A persona's version history (:func:`persona_versions`) is computed here once:
``persona show --history`` and ``audit --persona`` both read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.ids import agent_id, persona_id, relay_list_id
from domain.planner import Assessment, ForeignHeads, assess
from domain.ports import EventLog, LogRecord
from domain.versioning import upcast
from projections.fold import Fold
from projections.memory import MemoryViewStore
from projections.rows import AgentRow, PersonaRow

AsOf = int | datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    position: int
    at: str
    what: str  # the event's name, e.g. "persona saved", "published"
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentAudit:
    pubkey: str
    entries: list[AuditEntry]
    state: AgentRow | None
    persona: PersonaRow | None
    assessment: Assessment | None


@dataclass(frozen=True, slots=True)
class PersonaVersion:
    """One saved (or deleted) version of a persona; a deletion keeps the digests it ended."""

    revision: int
    position: int
    at: str
    actor: str
    digest: str
    secrets_digest: str
    deleted: bool
    # created | content | secrets | content+secrets | saved | restored | deleted
    change: str
    cause: dict[str, Any] | None = None  # what brought the version in (describe_cause)


@dataclass(frozen=True, slots=True)
class PersonaAudit:
    slug: str
    versions: list[PersonaVersion]
    carriers: dict[str, list[str]]  # carried digest (or "none") -> agent pubkeys
    agents: list[AgentRow]


def _before(record: LogRecord, as_of: AsOf) -> bool:
    if as_of is None:
        return True
    if isinstance(as_of, int):
        return record.position <= as_of
    stamp = datetime.fromisoformat(str(record.state["timestamp"]))
    return stamp <= as_of


def _short(digest: str | None) -> str:
    return digest[:12] if digest else "-"


def describe_cause(cause: dict[str, Any] | None) -> str:
    """What brought a persona version in (or asked for its deletion), for people ("" for
    the owner's own save)."""
    if not cause:
        return ""
    if cause.get("kind") == "relay":
        # A persona save names a kind:30175 head; a deletion, the NIP-09 request (kind:5).
        return (
            f"kind:{cause.get('event_kind', 30175)} event {cause.get('event_id')} "
            f"(created_at {cause.get('created_at')}) read from {cause.get('relay')}"
        )
    if cause.get("kind") == "team":
        return f"team {cause.get('team')} from {cause.get('source')}"
    if cause.get("kind") == "buzz":
        return f"import buzz from {cause.get('source')}"
    return str(cause)


def _describe(record: LogRecord, state: dict[str, Any]) -> tuple[str, str]:
    name = record.topic.rsplit(":", 1)[-1]
    s = state
    match name:
        case "Persona.Created" | "Persona.Saved":
            cause = describe_cause(s.get("cause"))
            return "persona saved", (
                f"persona {s['slug']} now {_short(s['digest'])} "
                f"(secrets {_short(s['secrets_digest'])}) by {s['actor']}"
                + (f", from {cause}" if cause else "")
            )
        case "Persona.Deleted":
            cause = describe_cause(s.get("cause"))
            return "persona deleted", (
                f"persona {s['slug']} deleted by {s['actor']}"
                + (f", as asked by {cause}" if cause else "")
            )
        case "Agent.Created":
            return "agent created", (
                f"{s['origin']} as {s['name']!r} from persona {s['persona_slug']} by {s['actor']}"
            )
        case "Agent.Moved":
            return "agent moved", f"moved to persona {s['persona_slug']} by {s['actor']}"
        case "Agent.Retired":
            return "agent retired", f"retired by {s['actor']}"
        case "Agent.KeyDestroyed":
            return "key destroyed", f"secret key destroyed by {s['actor']}"
        case "Agent.Attested":
            if s["tag"] is None:
                return "attestation withdrawn", f"owner attestation withdrawn by {s['actor']}"
            return "attested", (
                f"owner {_short(s['tag'][1])} attestation {s['origin']} by {s['actor']}"
                + (f" (conditions {s['tag'][2]})" if s["tag"][2] else "")
            )
        case "Agent.EngramSealed":
            ev = s["event"]
            return "engram sealed", (
                f"event {_short(ev.get('id'))} created_at {ev.get('created_at')} "
                f"for {_short(s['digest'])}, signed by the agent, because "
                f"{', '.join(s['reasons'])} (caused by log positions "
                f"{', '.join(map(str, s['causes']))})"
            )
        case "Agent.RelaysAnswered":
            return "relays answered", f"{_short(s['event_id'])}: {_answers(s['answers'])}"
        case "Agent.Published":
            return "published", (
                f"{_short(s['digest'])} as event {_short(s['event_id'])} {_confirmation(s)}"
                + (f", held by {', '.join(s['held_by']) or 'no relay'}" if s["held_by"] else "")
            )
        case "Agent.PublishFailed":
            return "publish failed", f"event {_short(s['event_id'])}: {s['reason']}"
        case "Agent.ConflictDetected":
            return "conflict", (
                f"head {_short(s['head_event_id'])} (created_at {s['head_created_at']}) "
                f"is not ours: {s['reason']}"
            )
        case "Agent.TombstoneSealed":
            ev, deletion = s["event"], s["deletion"]
            return "tombstone sealed", (
                f"tombstone {_short(ev.get('id'))} created_at {ev.get('created_at')} and "
                f"deletion request {_short(deletion.get('id'))}, signed by the agent, because "
                f"{', '.join(s['reasons'])} (caused by log positions "
                f"{', '.join(map(str, s['causes']))})"
            )
        case "Agent.Tombstoned":
            return "tombstoned", (
                f"tombstone {_short(s['event_id'])} is the head, acknowledged by "
                f"{', '.join(s['relays']) or 'no relay'} ({_answers(s['answers'])}); "
                f"deletion request {_short(s['deletion_id'])}: "
                f"{_answers(s['deletion_answers'])}"
            )
        case "Agent.HeadObserved":
            written = f" written by {_WRITERS[s['origin']]}" if s["origin"] in _WRITERS else ""
            return "head observed", (
                f"{s['state']} head {_short(s['head_event_id'])} carrying {_short(s['digest'])}"
                f"{written} on {', '.join(s['relays']) or 'no relay'}"
                f" (held by {', '.join(s['held_by']) or 'no relay'})"
            )
        case "RelayTraffic.Created":
            relays = "; ".join(_traffic(url, wire) for url, wire in sorted(s["relays"].items()))
            return "relay traffic", (
                f"the apply that carried {s['commands']} command(s): {relays or 'no relay'}"
            )
        case "RelayList.Added":
            return "relay added", f"relay {s['url']} added by {s['actor']}"
        case "RelayList.Removed":
            return "relay removed", f"relay {s['url']} removed by {s['actor']}"
    return name, ""


_WRITERS = {
    "ours": "this fleet (an engram it sealed)",
    "stale": "another writer (a version this fleet sealed before, or older than its last)",
    "foreign": "another writer (new content)",
    "unknown": "an unjudged writer (recorded before heads were judged)",
}


def _traffic(url: str, wire: dict[str, Any]) -> str:
    """One relay's line of a ``RelayTraffic`` record."""
    connections = _counted(wire.get("connections", 0), "connection")
    if wire.get("wire") == "http-bridge":
        requests = _counted(wire.get("requests", 0), "request")
        return f"{url} over http-bridge: {requests} over {connections}"
    via = f", writes over its bridge {wire['writes_via']}" if wire.get("writes_via") else ""
    return (
        f"{url} over {wire.get('wire', 'websocket')}: {connections} "
        f"(at most {wire.get('most_open', 0)} open at once), "
        f"{_counted(wire.get('handshakes', 0), 'NIP-42 handshake')}{via}"
    )


def _counted(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"


# The records an apply's confirm step writes for an agent: the apply's traffic
# record (RelayTraffic) follows them.
_CARRIED = frozenset(
    f"domain.aggregates:Agent.{name}"
    for name in ("Published", "RelaysAnswered", "PublishFailed", "Tombstoned", "ConflictDetected")
)
TRAFFIC_TOPIC = "domain.aggregates:RelayTraffic.Created"


def _traffic_records(log: EventLog, own: Sequence[LogRecord], as_of: AsOf) -> list[LogRecord]:
    """The traffic records of the applies that carried the agent's outcomes: for each
    outcome an apply recorded, the first traffic record after it, when that apply
    began no later than the outcome (one that crashed first recorded none)."""
    found: dict[int, LogRecord] = {}
    for record in own:
        if record.topic not in _CARRIED or record.state.get("confirmed_by") == "refresh":
            continue
        traffic = log.first_after(record.position, TRAFFIC_TOPIC)
        if traffic is None or traffic.position in found or not _before(traffic, as_of):
            continue
        began = datetime.fromisoformat(str(traffic.state["started"]))
        if began <= datetime.fromisoformat(str(record.state["timestamp"])):
            found[traffic.position] = traffic
    return list(found.values())


def _confirmation(s: dict[str, Any]) -> str:
    relays = ", ".join(s["relays"]) or "no relay"
    match s["confirmed_by"]:
        case "read-back":
            return (
                f"confirmed by read-back: the head is ours though no OK met the ack policy "
                f"(acknowledged by {relays}; {_answers(s['answers'])})"
            )
        case "refresh":
            return "confirmed by a refresh that found it as the head"
    return f"acknowledged by {relays} ({_answers(s['answers'])})"


def _replaced(head: dict[str, Any], sealed: dict[str, Any]) -> dict[str, Any]:
    """What an engram sealed while ``head`` (another writer's) was the head replaces."""
    return {
        "event_id": head.get("head_event_id"),
        "created_at": head.get("head_created_at"),
        "digest": head.get("digest"),
        "state": head.get("state"),
        "origin": head.get("origin", "unknown"),
        # The relays are asked for the agent's own events only: whoever wrote the
        # head held the agent's key.
        "signer": sealed["event"].get("pubkey"),
    }


def _answers(answers: list[dict[str, str]]) -> str:
    parts = []
    for a in answers:
        message = f" {a.get('message')!r}" if a.get("message") else ""
        parts.append(f"{a.get('relay')} {a.get('outcome')}{message}")
    return "; ".join(parts) or "no answer"


def _entries(records: Iterable[LogRecord]) -> list[AuditEntry]:
    out = []
    # Another writer's engram the log last saw as the head (None: ours, or none).
    foreign: dict[str, Any] | None = None
    for record in records:
        state = upcast(record.topic, record.state)
        what, summary = _describe(record, state)
        details = {k: v for k, v in state.items() if k not in ("timestamp", "originator_topic")}
        details.pop("sealed_env_vars", None)  # ciphertext, but nothing an auditor reads
        name = record.topic.rsplit(":", 1)[-1]
        if name == "Agent.HeadObserved":
            written_elsewhere = state["origin"] not in ("", "ours")
            foreign = state if written_elsewhere and state["state"] != "missing" else None
        elif name == "Agent.ConflictDetected" and state["head_event_id"] is not None:
            if foreign is None or foreign.get("head_event_id") != state["head_event_id"]:
                foreign = {
                    "head_event_id": state["head_event_id"],
                    "head_created_at": state["head_created_at"],
                    "state": "valid",
                }
        elif name == "Agent.Published":
            foreign = None
        elif name == "Agent.EngramSealed" and foreign is not None:
            replaced = details["replaces"] = _replaced(foreign, state)
            summary += (
                f"; replaces {replaced['state']} head {_short(replaced['event_id'])} "
                f"(created_at {replaced['created_at']}, carrying {_short(replaced['digest'])}, "
                f"{replaced['origin']}) signed with the agent's key {_short(replaced['signer'])}"
            )
        out.append(AuditEntry(record.position, str(state["timestamp"]), what, summary, details))
    return out


def _fold(records: Sequence[LogRecord]) -> MemoryViewStore:
    store = MemoryViewStore()
    fold = Fold(store)
    fold.apply(records)
    fold.flush()
    return store


_RELAYS = "\0relays"  # the relay list's records, kept beside the persona streams


def _history(
    log: EventLog, pubkey: str, as_of: AsOf, persona_streams: dict[str, list[LogRecord]]
) -> list[LogRecord]:
    """The agent's records and those of every persona it followed, in log order.

    ``persona_streams`` keeps each persona's records as read, so that auditing a
    persona's agents reads its stream once, not once per agent.
    """
    own = [r for r in log.stream(agent_id(pubkey).hex) if _before(r, as_of)]
    slugs = {r.state["persona_slug"] for r in own if "persona_slug" in r.state}
    records = list(own)
    for slug in sorted(slugs):
        if slug not in persona_streams:
            persona_streams[slug] = [
                r for r in log.stream(persona_id(slug).hex) if _before(r, as_of)
            ]
        records.extend(persona_streams[slug])
    # The relays configured then: whether the agent's engram was on each of them
    # is part of its status.
    if _RELAYS not in persona_streams:
        persona_streams[_RELAYS] = [r for r in log.stream(relay_list_id().hex) if _before(r, as_of)]
    records.extend(persona_streams[_RELAYS])
    # What the applies that carried its engrams cost each relay's wire.
    records.extend(_traffic_records(log, own, as_of))
    records.sort(key=lambda r: r.position)
    return records


def audit_agent(
    log: EventLog,
    pubkey: str,
    as_of: AsOf = None,
    foreign_heads: ForeignHeads = ForeignHeads.CONFLICT,
) -> AgentAudit:
    """The agent's history merged with that of every persona it followed; its status
    judged with ``foreign_heads`` as the policy for another writer's head."""
    records = _history(log, pubkey, as_of, {})
    store = _fold(records)
    state = store.agent_by_pubkey(pubkey)
    persona = store.persona(state.persona_slug) if state else None
    relays = tuple(r.url for r in store.relays())
    verdict = (
        assess(state.facts(), persona.facts() if persona else None, foreign_heads, relays)
        if state
        else None
    )
    return AgentAudit(pubkey, _entries(records), state, persona, verdict)


def persona_versions(records: Iterable[LogRecord], as_of: AsOf = None) -> list[PersonaVersion]:
    """A persona's versions from its stream (in version order), up to ``as_of``.

    Each save is a new revision; ``change`` says what it changed against the
    version before (``restored``: saved again after a deletion with nothing
    changed). A deletion keeps the revision and the digests it ended.
    """
    versions: list[PersonaVersion] = []
    revision = 0
    digest = secrets = ""
    deleted = False
    for record in records:
        if not _before(record, as_of):
            break
        state = upcast(record.topic, record.state)
        kind = record.topic.rsplit(".", 1)[-1]
        if kind == "Deleted":
            change = "deleted"
            deleted = True
        else:
            revision += 1
            if kind == "Created":
                change = "created"
            else:
                parts = []
                if state["digest"] != digest:
                    parts.append("content")
                if state["secrets_digest"] != secrets:
                    parts.append("secrets")
                change = "+".join(parts) if parts else ("restored" if deleted else "saved")
            digest, secrets, deleted = state["digest"], state["secrets_digest"], False
        versions.append(
            PersonaVersion(
                revision,
                record.position,
                str(state["timestamp"]),
                state["actor"],
                digest,
                secrets,
                kind == "Deleted",
                change,
                state.get("cause"),
            )
        )
    return versions


def persona_history(log: EventLog, slug: str, as_of: AsOf = None) -> list[PersonaVersion]:
    """Every version of the persona ``slug`` in the log (up to ``as_of``)."""
    return persona_versions(log.stream(persona_id(slug).hex), as_of)


def audit_persona(
    log: EventLog, slug: str, member_pubkeys: Iterable[str], as_of: AsOf = None
) -> PersonaAudit:
    """A persona's versions, and which version each of ``member_pubkeys`` carries."""
    stream = log.stream(persona_id(slug).hex)
    versions = persona_versions(stream, as_of)
    carriers: dict[str, list[str]] = {}
    agents: list[AgentRow] = []
    # The members' histories take this persona's records from the stream read above.
    persona_streams = {slug: [r for r in stream if _before(r, as_of)]}
    for pubkey in member_pubkeys:
        # Only the agent's state as of then: its timeline is not part of this report.
        state = _fold(_history(log, pubkey, as_of, persona_streams)).agent_by_pubkey(pubkey)
        if state is None or state.persona_slug != slug:
            continue
        agents.append(state)
        carried = state.head_digest if state.head_state == "valid" else None
        carriers.setdefault(carried or "none", []).append(pubkey)
    return PersonaAudit(slug, versions, carriers, agents)
