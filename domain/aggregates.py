"""The event-sourced aggregates: personas, agents (with their engram
publication lifecycle) and the configured relay list.

Every event class declares ``class_version`` so history written today still
loads after a change: bump it and add ``upcast_vN_vN+1(state)`` to the class
(eventsourcing's Mapper and :mod:`domain.versioning` both apply them). Event
topics are module paths, so these classes must not move without
``eventsourcing.utils.register_topic`` aliases.

Version history (what each upcast fills in for state stored by the version before):

- ``Persona.Created`` v2 and ``Persona.Saved`` v2 add ``cause`` (what brought the
  version in, when not the owner's own file); v1 had none.
- ``Persona.Created`` v3 and ``Persona.Saved`` v3 add ``digest_rule``, the rule of
  :mod:`domain.digests` that made ``digest``. Before, every digest was made by the
  seed's rule (``seed``).
- ``Persona.Deleted`` v2 adds ``cause``: the NIP-09 request ``persona pull`` read
  from the relays, when the deletion came from there; v1 had none.

- ``Agent.Published`` v3 and ``Agent.HeadObserved`` v3 add ``held_by``, the relays
  a read found the event on (sync state is per agent and relay). Before, nothing
  said: an acknowledged ``Published`` is taken as held by the relays that
  acknowledged it, one confirmed otherwise as held by every relay configured
  then (``None``: the fleet view knows which those were), a ``HeadObserved`` of
  a valid or tombstone head as held by the relays it names, a missing one by none.

Event attributes are JSON values only (str, int, bool, None, lists, dicts);
the store's transcoder relies on it. Secrets never appear in them in the
clear: ``sealed_env_vars`` is ciphertext from the vault port.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.digests import CURRENT, UNNAMED
from domain.errors import InvalidInput, PermanentDomainError
from domain.ids import agent_id, persona_id, relay_list_id
from domain.persona import ABSENT_MEMBERS
from domain.planner import HeadOrigin, classify_head

CURRENT_DIGEST_RULE = CURRENT.name
UNNAMED_DIGEST_RULE = UNNAMED  # what made a digest recorded before rules had names


def _as_current(content: dict[str, Any]) -> dict[str, Any]:
    """Stored persona content with the members added since it was stored, at their
    absent values (content stored before buzz's later members lacks them)."""
    return {**ABSENT_MEMBERS, **content}


# What Agent.at_version gives as creation and modification time: it has no history.
_UNKNOWN_TIME = datetime.fromtimestamp(0, UTC)


class AgentRetired(PermanentDomainError):
    """The operation needs a live agent and this one is retired."""


class Persona(Aggregate):
    """A persona definition owned by the fleet's owner, addressed by slug."""

    class Created(Aggregate.Created):
        class_version = 3
        slug: str
        content: dict[str, Any]
        digest: str
        secrets_digest: str
        sealed_env_vars: str
        actor: str
        # What brought this version in, when not the owner's own file: a relay
        # event ({"kind": "relay", "event_id", "relay", "created_at"}) or a team
        # ({"kind": "team", "team", "source"}). Version 1 had none.
        cause: dict[str, Any] | None
        digest_rule: str  # the rule of domain.digests that made digest; v3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cause"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["digest_rule"] = UNNAMED_DIGEST_RULE

    class Saved(Aggregate.Event):
        class_version = 3
        slug: str
        content: dict[str, Any]
        digest: str
        secrets_digest: str
        sealed_env_vars: str
        actor: str
        cause: dict[str, Any] | None  # as in Created
        digest_rule: str  # as in Created

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cause"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["digest_rule"] = UNNAMED_DIGEST_RULE

    class Deleted(Aggregate.Event):
        class_version = 2
        slug: str
        actor: str
        cause: dict[str, Any] | None  # as in Created: a request read from the relays

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cause"] = None

    @staticmethod
    def create_id(slug: str, *_: Any, **__: Any) -> UUID:
        return persona_id(slug)

    @event(Created)
    def __init__(
        self,
        slug: str,
        content: dict[str, Any],
        digest: str,
        secrets_digest: str,
        sealed_env_vars: str,
        actor: str,
        cause: dict[str, Any] | None = None,
        digest_rule: str = CURRENT_DIGEST_RULE,
    ) -> None:
        self.slug = slug
        self.revision = 0
        self._take_version(content, digest, secrets_digest, sealed_env_vars, digest_rule)

    def differs_from(self, content: dict[str, Any], secrets_digest: str) -> bool:
        """Whether ``content`` (stored members) and secrets are another version than this.

        Content is compared as values, not by digest: a digest made by an earlier
        rule names the same content, and ``description`` is in no digest.
        """
        return (
            self.deleted
            or secrets_digest != self.secrets_digest
            or _as_current(content) != _as_current(self.content)
        )

    def save(
        self,
        content: dict[str, Any],
        digest: str,
        secrets_digest: str,
        sealed_env_vars: str,
        actor: str,
        cause: dict[str, Any] | None = None,
        digest_rule: str = CURRENT_DIGEST_RULE,
    ) -> bool:
        """Record a new version; identical content (and secrets) records nothing."""
        if not self.differs_from(content, secrets_digest):
            return False
        self._save(
            self.slug, content, digest, secrets_digest, sealed_env_vars, actor, cause, digest_rule
        )
        return True

    @event(Saved)
    def _save(
        self,
        slug: str,
        content: dict[str, Any],
        digest: str,
        secrets_digest: str,
        sealed_env_vars: str,
        actor: str,
        cause: dict[str, Any] | None,
        digest_rule: str,
    ) -> None:
        self._take_version(content, digest, secrets_digest, sealed_env_vars, digest_rule)

    def _take_version(
        self,
        content: dict[str, Any],
        digest: str,
        secrets_digest: str,
        sealed_env_vars: str,
        digest_rule: str,
    ) -> None:
        self.content = content
        self.digest = digest
        self.digest_rule = digest_rule  # the rule of domain.digests that made ``digest``
        self.secrets_digest = secrets_digest
        self.sealed_env_vars = sealed_env_vars
        self.deleted = False
        self.revision += 1

    def delete(self, actor: str, cause: dict[str, Any] | None = None) -> None:
        if self.deleted:
            raise InvalidInput(f"persona {self.slug!r} is already deleted")
        self._delete(self.slug, actor, cause)

    @event(Deleted)
    def _delete(self, slug: str, actor: str, cause: dict[str, Any] | None) -> None:
        self.deleted = True


class Agent(Aggregate):
    """An agent key pair made from a persona, and its ``mem/persona`` engram history."""

    class Created(Aggregate.Created):
        class_version = 1
        pubkey: str
        persona_slug: str
        owner_pubkey: str
        name: str
        origin: str  # "created" or "imported"
        actor: str

    class Moved(Aggregate.Event):
        class_version = 1
        persona_slug: str
        actor: str

    class Retired(Aggregate.Event):
        class_version = 1
        actor: str

    class KeyDestroyed(Aggregate.Event):
        class_version = 1
        actor: str

    class Attested(Aggregate.Event):
        """The owner's NIP-OA attestation of this agent, the ``auth`` tag a
        membership relay admits it by: ``minted`` by fleetsync or ``imported``
        (brought in from another tool), it replaces any earlier one; ``withdrawn``
        (``tag`` None) when the agent is retired, so it is presented no more."""

        class_version = 1
        tag: list[str] | None  # ["auth", owner hex, conditions, sig hex]
        origin: str  # minted | imported | withdrawn
        actor: str

    class EngramSealed(Aggregate.Event):
        """A publish was decided (why, and which log events caused it) and its engram
        signed; stored before anything is sent, so every retry resends this event."""

        class_version = 1
        event: dict[str, Any]
        persona_slug: str
        digest: str
        secrets_digest: str
        reasons: list[str]
        causes: list[int]

        def apply(self, aggregate: Agent) -> None:
            aggregate.unsettled[self.event["id"]] = self.event
            aggregate.sealed[self.event["id"]] = self.digest

    class RelaysAnswered(Aggregate.Event):
        """What each relay answered to one send of a sealed engram that did not
        (yet) count as published: outcome accepted | duplicate | temporary |
        permanent | unknown, with the OK prefix and message."""

        class_version = 1
        event_id: str
        answers: list[dict[str, str]]

        def apply(self, aggregate: Agent) -> None:
            pass  # a record of what the relays said; the engram stays unsettled

    class Published(Aggregate.Event):
        """The sealed event is on the relays: the head read back is that very event.

        ``confirmed_by`` says how that was found: ``acknowledged`` (the ack policy
        was met and the read-back head is ours), ``read-back`` (no OK met the
        policy, the relays' answers were lost, but the read-back head is ours) or
        ``refresh`` (a later refresh found it as the head). Version 1 knew only
        the first.
        """

        class_version = 3
        event_id: str
        digest: str
        secrets_digest: str
        relays: list[str]  # the relays that acknowledged it
        answers: list[dict[str, str]]
        confirmed_by: str
        # The relays the read found it on; None (before v3) for every relay then.
        # Recorded again for the same event when it is resent to relays that lack it.
        held_by: list[str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["confirmed_by"] = "acknowledged"

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            acknowledged = state["confirmed_by"] == "acknowledged"
            state["held_by"] = list(state["relays"]) if acknowledged else None

        def apply(self, aggregate: Agent) -> None:
            sealed = aggregate.unsettled.get(self.event_id)
            if sealed is not None:
                if isinstance(created_at := sealed.get("created_at"), int):
                    aggregate.published_at = created_at
                # The published event stays at hand: a relay that lacks it (added
                # later, or one that lost its data) gets this very event again.
                aggregate.published_event = sealed
            elif (aggregate.published_event or {}).get("id") != self.event_id:
                aggregate.published_event = None
            # Anything sealed earlier is superseded once a newer engram is confirmed.
            aggregate.unsettled.clear()
            aggregate.tombstone = None

    class PublishFailed(Aggregate.Event):
        """Every relay refused the sealed event permanently: it will never land."""

        class_version = 1
        event_id: str
        reason: str

        def apply(self, aggregate: Agent) -> None:
            aggregate.unsettled.pop(self.event_id, None)
            aggregate.drop_tombstone(self.event_id)

    class ConflictDetected(Aggregate.Event):
        """Another writer's engram is the head (or the head's clock is poisoned)."""

        class_version = 1
        event_id: str | None
        digest: str
        head_event_id: str | None
        head_created_at: int | None
        reason: str

        def apply(self, aggregate: Agent) -> None:
            if self.event_id is not None:
                aggregate.unsettled.pop(self.event_id, None)
                aggregate.drop_tombstone(self.event_id)

    class TombstoneSealed(Aggregate.Event):
        """A tombstone was decided for the agent's engram (retired, or its persona
        deleted, while the head still held the persona's secrets): the NIP-AE
        replacement with a null ``value``, and the NIP-09 deletion request sent
        after it, both signed by the agent. Stored before anything is sent, so
        every retry resends these two events."""

        class_version = 1
        event: dict[str, Any]
        deletion: dict[str, Any]
        reasons: list[str]
        causes: list[int]

        def apply(self, aggregate: Agent) -> None:
            aggregate.tombstone = {"event": self.event, "deletion": self.deletion}

    class Tombstoned(Aggregate.Event):
        """The tombstone met the ack policy and was read back as the head; the
        deletion request went out after it (``deletion_answers``: what the relays
        said to it; honouring it is their policy)."""

        class_version = 1
        event_id: str
        deletion_id: str
        relays: list[str]  # the relays that acknowledged the tombstone
        answers: list[dict[str, str]]
        deletion_answers: list[dict[str, str]]

        def apply(self, aggregate: Agent) -> None:
            aggregate.unsettled.clear()
            aggregate.tombstone = None

    class HeadObserved(Aggregate.Event):
        """What the relays hold as head, read back during refresh or verification.

        ``origin`` (a :class:`domain.planner.HeadOrigin`) says who wrote it, as
        judged from this agent's history when it was read: ``ours``, ``stale``,
        ``foreign``, or "" for a missing head. Version 1 did not judge: its
        records read as ``unknown``.
        """

        class_version = 3
        head_event_id: str | None
        head_created_at: int | None
        digest: str | None
        secrets_digest: str | None
        state: str  # missing | valid | tombstone
        relays: list[str]  # the relays read
        origin: str
        # The relays known to hold the head event: those read that returned it, and
        # those that held it before and could not be read this time.
        held_by: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["origin"] = HeadOrigin.UNKNOWN.value if state["state"] != "missing" else ""

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["held_by"] = list(state["relays"]) if state["state"] != "missing" else []

    @staticmethod
    def create_id(pubkey: str, *_: Any, **__: Any) -> UUID:
        return agent_id(pubkey)

    @event(Created)
    def __init__(
        self,
        pubkey: str,
        persona_slug: str,
        owner_pubkey: str,
        name: str,
        origin: str,
        actor: str,
    ) -> None:
        self.pubkey = pubkey
        self.persona_slug = persona_slug
        self.owner_pubkey = owner_pubkey
        self.name = name
        self.origin = origin
        self.retired = False
        self.key_destroyed = False
        # the owner's NIP-OA ``auth`` tag for this agent, if one was minted or imported
        self.attestation: list[str] | None = None
        # event id -> signed event, for every sealed engram not yet settled
        self.unsettled: dict[str, dict[str, Any]] = {}
        # event id -> persona digest, for every engram ever sealed for this agent
        self.sealed: dict[str, str] = {}
        # created_at of the last engram confirmed on the relays
        self.published_at: int | None = None
        # the signed event last published, for relays that lack it
        self.published_event: dict[str, Any] | None = None
        # the sealed tombstone and deletion request not yet settled ("event", "deletion")
        self.tombstone: dict[str, dict[str, Any]] | None = None

    @classmethod
    def at_version(cls, id: UUID, pubkey: str, persona_slug: str, version: int) -> Agent:
        """A live agent known to be at ``version``, for recording publication events
        without replaying its history.

        An apply decides from the fleet view, which knows each agent's version; it
        records its events on this handle, and the store takes them only at the
        next version (its unique (id, version) refuses them if the agent has moved
        on since), so a decision made on stale facts is never carried out. The
        handle is the agent as its creation alone would make it, created at
        ``version``: it knows nothing of earlier seals (``unsettled`` is empty: a
        resend needs the agent itself), nor its owner, name or origin (empty); it
        is for recording, not reading. ``id`` is the agent's aggregate id as the
        view holds it (``agent_id(pubkey)``; deriving it again costs more than parsing).
        """
        attributes: dict[str, Any] = {
            "originator_topic": get_topic(cls),
            "originator_id": id,
            "originator_version": version,
            "timestamp": _UNKNOWN_TIME,
            "pubkey": pubkey,
            "persona_slug": persona_slug,
            "owner_pubkey": "",
            "name": "",
            "origin": "",
            "actor": "",
        }
        created = cls.Created(**attributes)
        # Mutating a creation event builds the aggregate as replay does, recording nothing.
        agent = created.mutate(None)
        assert isinstance(agent, cls)
        return agent

    def drop_tombstone(self, event_id: str) -> None:
        """Forget the unsettled tombstone if ``event_id`` is its event."""
        if self.tombstone is not None and self.tombstone["event"].get("id") == event_id:
            self.tombstone = None

    def _require_live(self) -> None:
        if self.retired:
            raise AgentRetired(f"agent {self.pubkey} is retired")

    def move(self, persona_slug: str, actor: str) -> None:
        self._require_live()
        if persona_slug == self.persona_slug:
            raise InvalidInput(f"agent {self.pubkey} already follows persona {persona_slug!r}")
        self._move(persona_slug, actor)

    @event(Moved)
    def _move(self, persona_slug: str, actor: str) -> None:
        self.persona_slug = persona_slug

    def retire(self, actor: str) -> None:
        self._require_live()
        self._retire(actor)
        if self.attestation is not None:
            self._attest(None, "withdrawn", actor)

    def attest(self, tag: list[str], origin: str, actor: str) -> bool:
        """Keep the owner's attestation ``tag`` (checked by the caller: the domain
        has no signatures); the same tag again records nothing."""
        self._require_live()
        if origin not in ("minted", "imported"):
            raise InvalidInput(f"an attestation is minted or imported, not {origin!r}")
        if len(tag) != 4 or tag[0] != "auth" or not all(isinstance(t, str) for t in tag):
            raise InvalidInput("an attestation is an ['auth', owner, conditions, sig] tag")
        if tag[1] == self.pubkey:
            raise InvalidInput("an agent cannot attest itself (NIP-OA self-attestation)")
        if self.attestation == list(tag):
            return False
        self._attest(list(tag), origin, actor)
        return True

    @event(Attested)
    def _attest(self, tag: list[str] | None, origin: str, actor: str) -> None:
        self.attestation = tag

    @event(Retired)
    def _retire(self, actor: str) -> None:
        self.retired = True
        self.unsettled.clear()

    def destroy_key(self, actor: str) -> None:
        if not self.retired:
            raise InvalidInput(f"agent {self.pubkey} must be retired before its key is destroyed")
        if self.key_destroyed:
            raise InvalidInput(f"the key of agent {self.pubkey} is already destroyed")
        self._destroy_key(actor)

    @event(KeyDestroyed)
    def _destroy_key(self, actor: str) -> None:
        self.key_destroyed = True

    # The publication events an apply records for every engram (sealed, answered,
    # published, failed, conflict, observed) are classes with their own ``apply``,
    # triggered by name: the @event decorator's argument binding cost more than
    # the event itself.

    def record_sealed(
        self,
        event: dict[str, Any],
        persona_slug: str,
        digest: str,
        secrets_digest: str,
        reasons: list[str],
        causes: list[int],
    ) -> None:
        self._require_live()
        if event.get("pubkey") != self.pubkey:
            raise InvalidInput("a sealed engram must be authored by its agent")
        self.trigger_event(
            self.EngramSealed,
            event=event,
            persona_slug=persona_slug,
            digest=digest,
            secrets_digest=secrets_digest,
            reasons=reasons,
            causes=causes,
        )

    def record_tombstone_sealed(
        self,
        event: dict[str, Any],
        deletion: dict[str, Any],
        reasons: list[str],
        causes: list[int],
    ) -> None:
        """Record a sealed tombstone; allowed for retired agents (that is what it is for)."""
        if self.key_destroyed:
            raise InvalidInput(f"the key of agent {self.pubkey} is destroyed: it cannot sign")
        if event.get("pubkey") != self.pubkey or deletion.get("pubkey") != self.pubkey:
            raise InvalidInput("a tombstone and its deletion request must be authored by the agent")
        self.trigger_event(
            self.TombstoneSealed, event=event, deletion=deletion, reasons=reasons, causes=causes
        )

    def record_tombstoned(
        self,
        event_id: str,
        deletion_id: str,
        relays: list[str],
        answers: list[dict[str, str]],
        deletion_answers: list[dict[str, str]],
    ) -> None:
        self.trigger_event(
            self.Tombstoned,
            event_id=event_id,
            deletion_id=deletion_id,
            relays=relays,
            answers=answers,
            deletion_answers=deletion_answers,
        )

    def record_answers(self, event_id: str, answers: list[dict[str, str]]) -> None:
        self.trigger_event(self.RelaysAnswered, event_id=event_id, answers=answers)

    def record_published(
        self,
        event_id: str,
        digest: str,
        secrets_digest: str,
        relays: list[str],
        answers: list[dict[str, str]],
        confirmed_by: str = "acknowledged",
        held_by: list[str] | None = None,
    ) -> None:
        """``held_by``: the relays the read found it on (default: ``relays``)."""
        self.trigger_event(
            self.Published,
            event_id=event_id,
            digest=digest,
            secrets_digest=secrets_digest,
            relays=relays,
            answers=answers,
            confirmed_by=confirmed_by,
            held_by=list(relays) if held_by is None else held_by,
        )

    def record_failed(self, event_id: str, reason: str) -> None:
        self.trigger_event(self.PublishFailed, event_id=event_id, reason=reason)

    def record_conflict(
        self,
        event_id: str | None,
        digest: str,
        head_event_id: str | None,
        head_created_at: int | None,
        reason: str,
    ) -> None:
        self.trigger_event(
            self.ConflictDetected,
            event_id=event_id,
            digest=digest,
            head_event_id=head_event_id,
            head_created_at=head_created_at,
            reason=reason,
        )

    def record_observed(
        self,
        head_event_id: str | None,
        head_created_at: int | None,
        digest: str | None,
        secrets_digest: str | None,
        state: str,
        relays: list[str],
        origin: str = "",
        held_by: list[str] | None = None,
    ) -> None:
        """``held_by``: the relays holding the head (default: ``relays``, none if missing)."""
        if held_by is None:
            held_by = list(relays) if state != "missing" else []
        self.trigger_event(
            self.HeadObserved,
            head_event_id=head_event_id,
            head_created_at=head_created_at,
            digest=digest,
            secrets_digest=secrets_digest,
            state=state,
            relays=relays,
            origin=origin,
            held_by=held_by,
        )

    def origin_of(self, event_id: str | None, digest: str | None, created_at: int | None) -> str:
        """Who wrote a head the relays hold for this agent (a ``HeadOrigin``, or "" for
        none), judged from the engrams sealed for it and its last confirmed publish
        (for an imported agent never published, its import).
        Needs the agent's history: a handle from :meth:`at_version` knows none."""
        if event_id is None:
            return ""
        since = self.published_at
        if since is None and self.origin == "imported":
            # An agent taken over (its key imported) was written for before: what
            # the tool it came from wrote until then is old, not a new idea of
            # another writer's to wait for a person over.
            since = int(self.created_on.timestamp())
        origin = classify_head(
            ours=event_id in self.sealed,
            digest_sealed_before=digest is not None and digest in self.sealed.values(),
            after_last_publish=since is None or (created_at is not None and created_at >= since),
        )
        return origin.value


class RelayList(Aggregate):
    """The relays every engram is written to (NIP-AE's agreed list)."""

    class Created(Aggregate.Created):
        class_version = 1

    class Added(Aggregate.Event):
        class_version = 1
        url: str
        actor: str

    class Removed(Aggregate.Event):
        class_version = 1
        url: str
        actor: str

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return relay_list_id()

    @event(Created)
    def __init__(self) -> None:
        self.urls: list[str] = []

    def add(self, url: str, actor: str) -> bool:
        """Add a canonical URL; adding one already present records nothing."""
        if url in self.urls:
            return False
        self._add(url, actor)
        return True

    @event(Added)
    def _add(self, url: str, actor: str) -> None:
        self.urls.append(url)

    def remove(self, url: str, actor: str) -> None:
        if url not in self.urls:
            raise InvalidInput(f"relay {url} is not configured")
        self._remove(url, actor)

    @event(Removed)
    def _remove(self, url: str, actor: str) -> None:
        self.urls.remove(url)


class RelayReading(Aggregate):
    """One reading of the relays by a refresh: which relays answered for every agent
    asked about, and why the others could not be read.

    A new aggregate per reading (its only event is its creation), so recording
    one never loads or contends with anything. The fleet view keeps, per relay,
    when it was last read and whether that worked: ``status`` and ``plan`` say
    what their answers are based on, and a relay that could not be read is never
    taken as evidence that agents are in sync.
    """

    class Created(Aggregate.Created):
        class_version = 1
        answered: list[str]  # relays that answered every request
        failed: dict[str, str]  # relay -> why it could not be read (in full)
        agents: int  # how many agents' heads were asked for

    @event(Created)
    def __init__(self, answered: list[str], failed: dict[str, str], agents: int) -> None:
        self.answered = answered
        self.failed = failed
        self.agents = agents


class RelayTraffic(Aggregate):
    """What one apply's relay traffic was, relay by relay: the wire, the connections
    opened and the most open at once, the NIP-42 handshakes, the HTTP requests,
    and the bridge a websocket relay's writes went over.

    Recorded once an apply has carried out its commands (``started`` is when the
    apply began, so an audit can tell which outcomes it carried). A new
    aggregate per apply, as :class:`RelayReading`.
    """

    class Created(Aggregate.Created):
        class_version = 1
        relays: dict[str, dict[str, Any]]  # relay -> {wire, connections, most_open, ...}
        commands: int  # the engrams and tombstones the apply carried out
        started: str  # ISO time the apply began

    @event(Created)
    def __init__(self, relays: dict[str, dict[str, Any]], commands: int, started: str) -> None:
        self.relays = relays
        self.commands = commands
        self.started = started
