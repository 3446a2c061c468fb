"""Sealing: the events an apply sends, sealed once and stored before they are sent.

For each publish command of a batch a :class:`Sealer` either takes the sealed
but unconfirmed (or the published) event from the agent's history (a resend:
the *identical* event, to the relays that lack it) or seals a new one with
``created_at = max(now, head + 1)`` (:func:`domain.clock.choose_created_at`, which
refuses a head too far in the future) through the agent's signer, recording it
on the agent (``EngramSealed``, or ``TombstoneSealed`` with its NIP-09
deletion request) at the version the plan was made at, so a plan another
process overtook is refused whole when stored. The result is the batch's
:class:`Work`: one item per command on its way through send and confirm.

The persona body is prepared once per persona version; the agents' keys are
decrypted on a worker thread while the batch before is sealed
(:meth:`Sealer.open_keys`), each into a signer that keeps it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from adapters.nostr.engram import (
    Conversation,
    PreparedBody,
    deletion_request,
    seal,
    tombstone_body,
)
from adapters.nostr.event import Event
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.nostr.signer import KeySigner
from adapters.ports import KeySource, Signer
from adapters.relay.answers import Answer
from adapters.store.internals import agent_at_version
from adapters.sync.heads import SEALS_PER_YIELD, HeadReader
from adapters.sync.report import AgentVerdict
from domain.aggregates import Agent
from domain.application import FleetApplication
from domain.clock import MAX_AHEAD, HeadTooFarAhead, choose_created_at
from domain.engram_body import PersonaEngram, Provenance
from domain.planner import Action, PublishCommand
from domain.slugs import PERSONA_ENGRAM_SLUG
from domain.verdict import Verdict


@dataclass
class Work:
    """One command on its way through seal, send and confirm."""

    command: PublishCommand
    agent: Agent
    event: Event
    conversation: Conversation
    resend: bool
    answers: list[Answer] = field(default_factory=list)
    # A tombstone's NIP-09 deletion request, sent once the tombstone is acknowledged.
    deletion: Event | None = None
    deletion_answers: list[Answer] = field(default_factory=list)


# A batch's signers (each holding an agent's opened key), and the conversations
# derived for those not yet known.
Opened = tuple[dict[str, Signer], dict[str, Conversation]]


def _open_for_sealing(
    keys: KeySource, sealed: Mapping[str, str], owner: SecretKey, unknown: frozenset[str]
) -> Opened:
    signers: dict[str, Signer] = {
        pubkey: KeySigner(secret) for pubkey, secret in keys.open_many(sealed).items()
    }
    # The owner's side of the pair: the same conversation key (ECDH is symmetric),
    # and the agents' keys stay inside their signers.
    conversations = {
        pubkey: Conversation.for_owner(owner, PublicKey.from_hex(pubkey))
        for pubkey in signers
        if pubkey in unknown
    }
    return signers, conversations


class Sealer:
    """Seals (or takes from the log) the events of each batch of publish commands."""

    def __init__(
        self,
        app: FleetApplication,
        owner: SecretKey,
        keys: KeySource,
        reader: HeadReader,
        load: Callable[[Sequence[str]], dict[str, Agent]],
        *,
        clock: Callable[[], float] = time.time,
        max_ahead: int = MAX_AHEAD,
    ) -> None:
        self.app = app
        self.owner = owner
        self.keys = keys
        self.reader = reader
        self.load = load
        self.clock = clock
        self.max_ahead = max_ahead
        self._bodies: dict[tuple[str, str, str], PreparedBody] = {}
        self._tombstone = tombstone_body(PERSONA_ENGRAM_SLUG)

    def open_keys(self, commands: Sequence[PublishCommand]) -> asyncio.Future[Opened]:
        """Start decrypting the secret keys a batch's new seals need, on a worker thread.

        Reading them is a query on this thread. Decrypting them, and building the
        key pair each needs to sign and the conversation each needs to encrypt
        (libsecp256k1, without the GIL), run beside the sealing of the batch before.
        """
        fresh = [c.pubkey for c in commands if c.resend_event_id is None]
        sealed = self.keys.sealed_many(fresh) if fresh else {}
        unknown = frozenset(pubkey for pubkey in sealed if not self.reader.knows(pubkey))
        return asyncio.get_running_loop().run_in_executor(
            None, _open_for_sealing, self.keys, sealed, self.owner, unknown
        )

    async def seal(
        self, commands: Sequence[PublishCommand], opened: Opened
    ) -> tuple[list[Work], list[AgentVerdict], list[Agent]]:
        """Resend stored seals and seal the rest; returns the work, the verdicts
        already known, and the agents whose new events must be stored before
        any of the work is sent. ``opened`` is what :meth:`open_keys` prepared
        for the batch.

        Yields to the event loop every ``SEALS_PER_YIELD`` seals, so the batches
        already out keep their relay windows full meanwhile.
        """
        work: list[Work] = []
        early: list[AgentVerdict] = []
        now = int(self.clock())
        to_save: list[Agent] = []
        signers, conversations = opened
        self.reader.adopt(conversations)
        # Only a resend needs the agent's history (the sealed event it holds); a new
        # seal is recorded at the version the plan was made at (Agent.at_version, as
        # the store's agent_at_version makes it).
        resent = self.load([c.pubkey for c in commands if c.resend_event_id is not None])
        for n, command in enumerate(commands, 1):
            if n % SEALS_PER_YIELD == 0:
                await asyncio.sleep(0)
            conv = self.reader.conversation(command.pubkey)
            agent = resent.get(command.pubkey)
            if agent is None:
                agent = agent_at_version(
                    UUID(command.agent_id),
                    command.pubkey,
                    command.persona_slug,
                    command.agent_version,
                )
            else:
                if agent.version != command.agent_version:
                    # Someone else wrote about this agent since the plan: its facts
                    # are stale (a new seal's events would be refused by the store).
                    early.append(_failed(command, "the agent changed while applying; run again"))
                    continue
                resent_work = _resend(command, agent, conv)
                if resent_work is not None:
                    work.append(resent_work)
                    continue
            signer = signers.get(command.pubkey)
            if signer is None:
                early.append(_failed(command, "the agent's secret key is not in the key store"))
                continue
            tombstone = command.action is Action.TOMBSTONE
            body = self._tombstone if tombstone else self._body(command)
            if body is None:
                early.append(_failed(command, "the persona changed while applying; run again"))
                continue
            head = self.reader.heads.get(command.pubkey)
            created_at = choose_created_at(
                now,
                head.created_at if head else None,
                head_event_id=head.event_id if head else None,
                max_ahead=self.max_ahead,
            )
            if isinstance(created_at, HeadTooFarAhead):
                detail = created_at.describe()
                agent.record_conflict(
                    None,
                    command.digest,
                    created_at.head_event_id,
                    created_at.head_created_at,
                    f"clock-poisoned: {detail}",
                )
                to_save.append(agent)
                early.append(
                    AgentVerdict(
                        command.pubkey, command.persona_slug, Verdict.CONFLICT, None, detail
                    )
                )
                continue
            if tombstone:
                event = seal(signer, conv, body, created_at)
                deletion = deletion_request(signer, event)
                agent.record_tombstone_sealed(
                    event.to_dict(),
                    deletion.to_dict(),
                    [r.value for r in command.reasons],
                    list(command.causes),
                )
                to_save.append(agent)
                work.append(Work(command, agent, event, conv, resend=False, deletion=deletion))
                continue
            # The owner's side of the pair is the agent's too (same key, same tags),
            # and it holds the d tag the refresh derived already.
            event = seal_persona_engram(signer, conv, body, created_at)
            agent.record_sealed(
                event.to_dict(),
                command.persona_slug,
                command.digest,
                command.secrets_digest,
                [r.value for r in command.reasons],
                list(command.causes),
            )
            to_save.append(agent)
            work.append(Work(command, agent, event, conv, resend=False))
        return work, early, to_save

    def _body(self, command: PublishCommand) -> PreparedBody | None:
        key = (command.persona_slug, command.digest, command.secrets_digest)
        body = self._bodies.get(key)
        if body is None:
            persona = self.app.get_persona(command.persona_slug)
            if (persona.digest, persona.secrets_digest) != (
                command.digest,
                command.secrets_digest,
            ):
                return None
            definition = self.app.persona_definition(persona)
            # A new engram carries the current rule's digest, whichever rule made the
            # one recorded for this version (the planner takes either as this version).
            provenance = Provenance(
                self.owner.public_key.hex,
                command.persona_slug,
                definition.content.digest(),
                command.secrets_digest,
            )
            body = prepare_persona_body(
                PersonaEngram(definition.content, provenance, definition.env_vars)
            )
            self._bodies[key] = body
        return body


def _resend(command: PublishCommand, agent: Agent, conv: Conversation) -> Work | None:
    """The stored seal a resend command names, as work (``None``: not in the log)."""
    wanted = command.resend_event_id
    if wanted is None:
        return None
    if command.action is Action.TOMBSTONE:
        stored = agent.tombstone
        if stored is None or stored["event"].get("id") != wanted:
            return None
        return Work(
            command,
            agent,
            Event.from_dict(stored["event"]),
            conv,
            resend=True,
            deletion=Event.from_dict(stored["deletion"]),
        )
    event = agent.unsettled.get(wanted)
    current = agent.published_event
    if event is None and current is not None and current["id"] == wanted:
        event = current  # the published event, for relays that lack it
    return None if event is None else Work(command, agent, Event.from_dict(event), conv, True)


def _failed(command: PublishCommand, reason: str) -> AgentVerdict:
    return AgentVerdict(command.pubkey, command.persona_slug, Verdict.FAILED, None, reason)
