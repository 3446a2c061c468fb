"""The pure planner: from what the log says about each agent, decide what to publish.

:func:`assess` judges one agent against its persona's current version;
:func:`plan` turns assessments into publish commands. Both are functions of
their arguments only (the configured relays are one of them: sync state is per
agent *and* relay, so an engram missing on one relay is work to do), so
planning twice over the same facts gives the same commands, and the
projection can hand over only the agents that need something without
changing the outcome.

A retired agent, or one whose persona was deleted, gets no new engram; but if
its last known head is still a valid engram of ours (the one we last
published, so it holds the persona and its secrets) and its key is still
here to sign with, the planner asks for that engram to be **tombstoned**
(NIP-AE: a replacement whose body's ``value`` is null, then a NIP-09 deletion
request for what came before). A head that is not ours (another writer's) is
left alone; a head already a tombstone, or missing, needs nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import NamedTuple

# The planner's inputs, verdicts and commands are NamedTuples rather than frozen
# dataclasses: just as immutable, and a replay or a fleet-wide plan builds one per
# agent, where a frozen dataclass's __init__ (an object.__setattr__ per field)
# would cost twice as much.


class Status(enum.StrEnum):
    IN_SYNC = "in-sync"
    OUT_OF_DATE = "out-of-date"
    NEVER_PUBLISHED = "never-published"
    PENDING = "pending"
    PARTIAL = "partial"  # carries its persona's current version, but not on every relay
    CONFLICT = "conflict"
    PERSONA_DELETED = "persona-deleted"
    RETIRED = "retired"
    # Retired, or its persona deleted, and its head still holds the persona's secrets.
    TOMBSTONE_DUE = "tombstone-due"


# The statuses the planner acts on; every other status yields no command.
ACTIONABLE = frozenset(
    {
        Status.OUT_OF_DATE,
        Status.NEVER_PUBLISHED,
        Status.PENDING,
        Status.PARTIAL,
        Status.TOMBSTONE_DUE,
    }
)


class Reason(enum.StrEnum):
    MISSING = "missing"  # no engram has ever been confirmed for this agent
    STALE_CONTENT = "stale-content"  # the persona's content changed
    ROTATED_SECRETS = "rotated-secrets"  # same content, different env_vars
    DRIFT = "drift"  # a relay holds something other than what we published
    UNCONFIRMED = "unconfirmed"  # sealed for this version, not yet confirmed: resend
    OVERWRITE = "overwrite-conflict"  # a person chose to write over another writer's head
    MISSING_ON_RELAY = "missing-on-relay"  # a configured relay does not hold the current engram
    RETIRED = "retired"  # tombstone: the agent was retired
    PERSONA_DELETED = "persona-deleted"  # tombstone: the agent's persona was deleted


class Action(enum.StrEnum):
    PUBLISH = "publish"  # the persona's current version
    TOMBSTONE = "tombstone"  # NIP-AE tombstone, then a NIP-09 deletion request


class HeadOrigin(enum.StrEnum):
    """Who wrote a head read from the relays, as judged when it was read.

    Every candidate head is signed with the agent's key (the relays are asked for
    the agent's events only); what tells fleetsync's own writes from another
    writer's (the agent itself, the buzz desktop) is the log: the ids of the
    engrams it sealed and the persona versions they carried.
    """

    OURS = "ours"  # an engram this fleet sealed for the agent (its id is in the log)
    # Another writer's copy of something old: a persona version this fleet sealed
    # for the agent before, or older than its last confirmed publish (for an
    # imported agent never published here: older than its import).
    STALE = "stale"
    # Another writer's new content: a version this fleet never sealed for the
    # agent, newer than its last confirmed publish (or with none yet).
    FOREIGN = "foreign"
    # Recorded before heads were classified: the seed's rule (a drift, rewritten).
    UNKNOWN = "unknown"


class ForeignHeads(enum.StrEnum):
    """What the planner does about a FOREIGN head (``FLEETSYNC_FOREIGN_HEADS``)."""

    CONFLICT = "conflict"  # wait for a person (apply --overwrite-conflicts)
    SELF_HEAL = "self-heal"  # write the persona's version over it, as a drift


def classify_head(
    *, ours: bool, digest_sealed_before: bool, after_last_publish: bool
) -> HeadOrigin:
    """The origin of an agent's head, from what the log knows about the agent.

    ``ours``: the head's event id is one this fleet sealed for the agent;
    ``digest_sealed_before``: the persona version it carries is one this fleet
    sealed for the agent; ``after_last_publish``: it was created after the
    agent's last confirmed publish (or there is none).
    """
    if ours:
        return HeadOrigin.OURS
    if digest_sealed_before or not after_last_publish:
        return HeadOrigin.STALE
    return HeadOrigin.FOREIGN


class PersonaFacts(NamedTuple):
    slug: str
    digest: str
    secrets_digest: str
    deleted: bool
    position: int  # log position of the save (or delete) that made this version
    # The same content's digests by every other rule of domain.digests: an engram
    # carrying one of them carries this version (no republish when the rule changes).
    aliases: tuple[str, ...] = ()


class HeadFacts(NamedTuple):
    """What we last knew the relays to hold: from a confirmed publish or a read-back."""

    state: str  # "valid" | "missing" | "tombstone"
    digest: str | None
    secrets_digest: str | None
    event_id: str | None
    position: int
    observed: bool  # True when it came from reading relays, not from our own publish
    origin: str = ""  # a HeadOrigin for an observed engram; "" for ours or a missing head
    relays: tuple[str, ...] = ()  # the relays known to hold the head event

    @property
    def foreign(self) -> bool:
        """Read from the relays and not an engram this fleet sealed."""
        return self.observed and self.origin != HeadOrigin.OURS


class AgentFacts(NamedTuple):
    agent_id: str
    pubkey: str
    persona_slug: str
    retired: bool
    assigned_position: int  # creation or last move to this persona
    head: HeadFacts | None
    published_digest: str | None  # our last confirmed publication
    pending_event_id: str | None
    pending_digest: str | None
    pending_secrets_digest: str | None
    pending_position: int
    conflict_digest: str | None
    conflict_position: int
    conflict_head_event_id: str | None = None  # the other writer's head we lost to
    version: int = 1  # the agent aggregate's version these facts are as of
    published_event_id: str | None = None  # our last confirmed publication's event
    published_secrets_digest: str | None = None
    key_destroyed: bool = False
    retired_position: int = 0
    tombstone_event_id: str | None = None  # a tombstone sealed and not yet confirmed
    tombstone_position: int = 0


class Assessment(NamedTuple):
    agent: AgentFacts
    status: Status
    reasons: tuple[Reason, ...] = ()
    causes: tuple[int, ...] = ()  # log positions of the events behind the status
    digest: str | None = None  # the persona version the agent should carry
    secrets_digest: str | None = None
    relays: tuple[str, ...] = ()  # PARTIAL: the relays that lack the current engram


class PublishCommand(NamedTuple):
    """Publish (or resend) the ``mem/persona`` engram of one persona version to one agent,
    or, with ``action`` TOMBSTONE, its tombstone (``digest`` and ``secrets_digest`` are
    then those of the head it replaces)."""

    agent_id: str
    pubkey: str
    persona_slug: str
    digest: str
    secrets_digest: str
    reasons: tuple[Reason, ...]
    causes: tuple[int, ...]
    resend_event_id: str | None = None  # set when a sealed event awaits confirmation
    # The agent's version when this was decided: the command's events are stored at
    # the next version or not at all, so a decision made on facts that have since
    # changed can never be carried out.
    agent_version: int = 1
    # Where to send it: a resend of the current engram goes to the relays that lack
    # it; empty means every configured relay.
    relays: tuple[str, ...] = ()
    action: Action = Action.PUBLISH

    @property
    def key(self) -> str:
        """What makes two commands the same publish: one agent, one persona version
        (or one agent's tombstone)."""
        if self.action is Action.TOMBSTONE:
            return f"{self.pubkey}:{Action.TOMBSTONE.value}"
        return f"{self.pubkey}:{self.digest}:{self.secrets_digest}"


def assess(
    agent: AgentFacts,
    persona: PersonaFacts | None,
    foreign_heads: ForeignHeads = ForeignHeads.CONFLICT,
    relays: Sequence[str] = (),
) -> Assessment:
    """Judge one agent against the current version of the persona it follows, on
    each of the configured ``relays``.

    ``foreign_heads`` is the policy for another writer's new content as the
    head (:class:`HeadOrigin` ``FOREIGN``), whether a refresh or a read-back
    found it: a conflict that waits for a person, or a drift written over.
    A stale copy written by someone else is always written over, and an
    engram this fleet sealed is never a drift.
    """
    if agent.retired:
        return _laid_to_rest(agent, Status.RETIRED, Reason.RETIRED, agent.retired_position)
    if persona is None or persona.deleted:
        gone = persona.position if persona is not None else 0
        return _laid_to_rest(agent, Status.PERSONA_DELETED, Reason.PERSONA_DELETED, gone)

    head = agent.head
    head_position = head.position if head is not None else 0
    # The digests that name this version, by whichever rule each was made (its own
    # and its aliases), and its secrets, held once: assess runs for every agent of a
    # replay, where a call per digest tested cost about an eighth of assess's time.
    named = (persona.digest, *persona.aliases)
    secrets = persona.secrets_digest
    # A conflict on this version stands until a person overrides it, the persona
    # moves on, or the relays show a head other than the one we lost to; or the
    # policy says the head it lost to is to be written over.
    if (
        agent.conflict_digest in named
        and agent.conflict_position > persona.position
        and (
            head is None
            or head_position < agent.conflict_position
            or head.event_id == agent.conflict_head_event_id
        )
        and not _written_over(agent, head, foreign_heads)
    ):
        return _verdict(agent, persona, Status.CONFLICT, (), (agent.conflict_position,))
    carries = (
        head is not None
        and head.state == "valid"
        and head.digest in named
        and head.secrets_digest == secrets
    )
    if agent.pending_digest in named and agent.pending_secrets_digest == secrets and not carries:
        # Sealed for this version but not confirmed: resend that very event.
        return _verdict(
            agent, persona, Status.PENDING, (Reason.UNCONFIRMED,), (agent.pending_position,)
        )
    if head is None:
        return _verdict(
            agent,
            persona,
            Status.NEVER_PUBLISHED,
            (Reason.MISSING,),
            (agent.assigned_position, persona.position),
        )
    if (
        not carries
        and head.observed
        and head.origin == HeadOrigin.FOREIGN
        and foreign_heads is ForeignHeads.CONFLICT
    ):
        # Another writer's new content: replacing it is a person's decision.
        return _verdict(agent, persona, Status.CONFLICT, (), (head.position,))
    if head.state != "valid" or head.digest is None:
        if (
            relays
            and head.state == "missing"
            and head.observed
            and agent.published_event_id is not None
            and agent.published_digest in named
            and agent.published_secrets_digest == secrets
        ):
            # Our current engram is gone from every relay read (a relay lost its
            # data): the very event goes again, to every relay.
            return _verdict(
                agent,
                persona,
                Status.PARTIAL,
                (Reason.MISSING_ON_RELAY,),
                (head.position,),
                tuple(relays),
            )
        if head.foreign and agent.published_digest is not None:
            return _verdict(agent, persona, Status.OUT_OF_DATE, (Reason.DRIFT,), (head.position,))
        return _verdict(
            agent,
            persona,
            Status.NEVER_PUBLISHED,
            (Reason.MISSING,),
            (agent.assigned_position, persona.position, head.position),
        )
    if head.digest not in named:
        drifted = head.foreign and head.digest != agent.published_digest
        reason = Reason.DRIFT if drifted else Reason.STALE_CONTENT
    elif head.secrets_digest != secrets:
        reason = Reason.ROTATED_SECRETS
    else:
        held = head.relays
        missing = tuple(relay for relay in relays if relay not in held)
        if missing:
            return _verdict(
                agent,
                persona,
                Status.PARTIAL,
                (Reason.MISSING_ON_RELAY,),
                (head.position,),
                missing,
            )
        return _verdict(agent, persona, Status.IN_SYNC, (), (head.position,))
    return _verdict(
        agent,
        persona,
        Status.OUT_OF_DATE,
        (reason,),
        (persona.position, head.position, agent.assigned_position),
    )


def _written_over(agent: AgentFacts, head: HeadFacts | None, policy: ForeignHeads) -> bool:
    """Whether the head a recorded conflict lost to is, by policy, to be written over."""
    if policy is ForeignHeads.SELF_HEAL:
        return True
    return (
        head is not None
        and head.event_id == agent.conflict_head_event_id
        and head.origin == HeadOrigin.STALE
    )


def _laid_to_rest(agent: AgentFacts, status: Status, reason: Reason, position: int) -> Assessment:
    """A retired agent, or one whose persona is gone: is there an engram to tombstone?

    Only while its key is here to sign, and its last known head is a valid engram:
    a tombstone sealed and not yet confirmed is resent; otherwise the head must be
    the engram we last published (another writer's is not ours to remove).
    """
    causes: tuple[int, ...] = (position,) if position else ()
    head = agent.head
    if agent.key_destroyed or head is None or head.state != "valid":
        return Assessment(agent, status, causes=causes)
    if agent.tombstone_event_id is not None:
        reasons: tuple[Reason, ...] = (reason, Reason.UNCONFIRMED)
        causes += (agent.tombstone_position,)
    elif head.event_id is not None and (
        head.event_id == agent.published_event_id or head.origin == HeadOrigin.OURS
    ):
        reasons = (reason,)
        causes += (head.position,)
    else:
        return Assessment(agent, status, causes=causes)
    return Assessment(
        agent,
        Status.TOMBSTONE_DUE,
        reasons,
        tuple(sorted(set(causes))),
        head.digest,
        head.secrets_digest,
    )


def _verdict(
    agent: AgentFacts,
    persona: PersonaFacts,
    status: Status,
    reasons: tuple[Reason, ...],
    causes: tuple[int, ...],
    relays: tuple[str, ...] = (),
) -> Assessment:
    return Assessment(
        agent,
        status,
        reasons,
        tuple(sorted(set(causes))),
        persona.digest,
        persona.secrets_digest,
        relays,
    )


def plan(
    assessments: Iterable[Assessment], *, overwrite_conflicts: bool = False
) -> list[PublishCommand]:
    """Publish commands for every actionable assessment, in a stable order.

    Conflicts get a command only with ``overwrite_conflicts``: writing over
    another writer's engram is a person's decision.
    """
    commands = []
    for item in assessments:
        if item.status is Status.TOMBSTONE_DUE:
            commands.append(_tombstone(item))
            continue
        digest, secrets = item.digest, item.secrets_digest
        if digest is None or secrets is None:
            continue
        reasons = item.reasons
        if item.status is Status.CONFLICT and overwrite_conflicts:
            reasons = (Reason.OVERWRITE,)
        elif item.status not in ACTIONABLE:
            continue
        agent = item.agent
        resend: str | None = None
        targets: tuple[str, ...] = ()
        if item.status is Status.PENDING:
            resend = agent.pending_event_id
        elif item.status is Status.PARTIAL:
            resend = _current_event(agent, digest, secrets)
            # Only the head itself, ours and stored, goes to just the relays that lack
            # it; our sealed event for this version goes everywhere; anything else is
            # sealed anew, for every relay.
            head = agent.head
            if resend is not None and (head is None or head.event_id in (resend, None)):
                targets = item.relays
        commands.append(
            PublishCommand(
                agent_id=agent.agent_id,
                pubkey=agent.pubkey,
                persona_slug=agent.persona_slug,
                digest=digest,
                secrets_digest=secrets,
                reasons=reasons,
                causes=item.causes,
                resend_event_id=resend,
                agent_version=agent.version,
                relays=targets,
            )
        )
    commands.sort(key=lambda c: (c.persona_slug, c.pubkey))
    return commands


def _current_event(agent: AgentFacts, digest: str, secrets_digest: str) -> str | None:
    """The id of our own stored event that carries this version, if any: one sealed
    for it and not yet confirmed (never seal a second), else the head when it is our
    published event (or was, before every relay lost it)."""
    if agent.pending_event_id is not None and (
        agent.pending_digest,
        agent.pending_secrets_digest,
    ) == (digest, secrets_digest):
        return agent.pending_event_id
    head = agent.head
    if head is None:
        return None
    if head.state == "missing":
        return agent.published_event_id
    if head.event_id is not None and head.event_id == agent.published_event_id:
        return head.event_id
    return None


def _tombstone(item: Assessment) -> PublishCommand:
    agent = item.agent
    return PublishCommand(
        agent_id=agent.agent_id,
        pubkey=agent.pubkey,
        persona_slug=agent.persona_slug,
        digest=item.digest or "",
        secrets_digest=item.secrets_digest or "",
        reasons=item.reasons,
        causes=item.causes,
        resend_event_id=agent.tombstone_event_id,
        agent_version=agent.version,
        action=Action.TOMBSTONE,
    )
