"""The reconciler: refresh, plan, then carry out publish commands idempotently.

One ``apply`` goes:

1. **refresh** — read every managed agent's ``mem/persona`` head from the
   relays (validated, decrypted as the owner) and record it where it differs
   from what the log believes: the engram we last sealed is ``Published``
   (confirmed by the refresh), anything else ``HeadObserved`` with who wrote it
   (ours, a stale copy, another writer's new content). The relays are asked by
   ``d`` tag, which the key store keeps for each agent (no ECDH per agent), and
   a head the log already records (or the engram it last sealed), found again
   with nothing newer, is not opened again: an apply with nothing to do costs a
   query per batch, not crypto per agent.
   Sync state is per agent *and* relay: each head is recorded with the relays
   that returned it, so a relay added later, or one that lost its data, shows
   up as missing the engram. A relay that could not be read is evidence of
   nothing: the agents it was asked about stay unverified (see
   :class:`Reading`), and the reading is recorded (``RelayReading``) so
   ``status`` and ``plan`` can say what they are based on;
2. **plan** — the pure planner over the caught-up view;
3. **seal** — for each command, either take the sealed-but-unconfirmed (or
   the published) event from the log (a resend: the *identical* event, to the
   relays that lack it) or seal a new one with
   ``created_at = max(now, head + 1)``; new seals are saved to the log in one
   transaction per batch *before* anything is sent, at the agent version the
   plan was made at (so a plan another process overtook is refused whole);
4. **send** to every configured relay (pipelined by the relay client);
5. **confirm** — read back the heads of everything not refused by every relay
   and record ``Published`` (the head is ours: the ack policy met, or its OK
   lost; under ``--ack all`` every relay sent to acknowledged it or returned it
   on read-back), ``ConflictDetected`` after the
   ``HeadObserved`` it lost to (another writer's engram is the head; the
   planner's policy decides what comes next), ``PublishFailed`` (every relay
   refused for good) or ``RelaysAnswered`` (no verdict yet: the next apply
   resends).

A tombstone command (a retired agent, or one whose persona was deleted, whose
engram still holds the persona's secrets) goes the same way: sealed as the
NIP-AE tombstone with its NIP-09 deletion request, both stored in one
``TombstoneSealed`` before either is sent; the tombstone is sent, then (once
the ack policy is met) the deletion request; the read-back must show the
tombstone as the head for ``Tombstoned`` to be recorded. Retired agents are
refreshed only while a tombstone is due, so the one sealed is sealed over the
head the relays hold now.

Steps 3-5 run per batch, and batches overlap: batch k+1 is sealed and stored
while batch k is sent and read back, so the relays and this process work at
the same time (see ``Reconciler._carry_out``).

A crash anywhere leaves either nothing sent (crash before the seal was stored)
or a stored seal that the next run resends byte for byte, so one persona
version never yields two different events for one agent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from adapters.errors import AdapterError
from adapters.keystore import KeyStoreCorrupt
from adapters.nostr.engram import (
    ClockPoisoned,
    Conversation,
    HeadSelection,
    PreparedBody,
    deletion_request,
    next_created_at,
    seal,
    select_head,
    tombstone_body,
)
from adapters.nostr.event import Event, compute_id
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.nostr.persona_engram import (
    open_persona_engram,
    prepare_persona_body,
    seal_persona_engram,
)
from adapters.nostr.signer import KeySigner
from adapters.ports import AgentSource, EventWriter, KeySource, RelayGateway, Signer
from adapters.relay.answers import Answer, Outcome
from adapters.store.writer import ApplicationWriter
from adapters.sync.gateway import Fetched
from domain.aggregates import Agent, RelayReading
from domain.application import FleetApplication
from domain.engram_body import PersonaEngram, Provenance
from domain.errors import DomainError
from domain.persona import secrets_digest
from domain.planner import Action, Assessment, ForeignHeads, HeadOrigin, PublishCommand, Status
from domain.slugs import PERSONA_ENGRAM_SLUG
from projections.gcpause import cyclic_gc_paused
from projections.rows import AgentRow
from projections.view import FleetView

logger = logging.getLogger(__name__)

# Batches' worth of engrams sealed but not yet confirmed, besides the batch being
# sealed. A batch is out for several times as long as it takes to seal (store,
# wait for the previous batch's send, send, read back, record): with fewer,
# sealing stopped to wait for the oldest batch's read-back (``scripts/bench
# apply`` shows the effect of a change here).
IN_FLIGHT = 4
# The last batches get smaller (halving, down to this), so the batch still out
# when sealing ends is a small one: the apply ends that much sooner.
TAIL_BATCH = 50
# Agents (authors, and as many d tags) in one request for heads: relays bound the
# size of a message (128 KB is common) and of a filter; 500 make about 70 KB.
AUTHORS_PER_REQUEST = 500
# Seals (or ECDHs, in a refresh) between two yields to the event loop while a
# batch is prepared: the batches already out go on meanwhile.
SEALS_PER_YIELD = 32


@dataclass(frozen=True, slots=True)
class RelayHead:
    """The validated head of one agent's ``mem/persona`` on the relays."""

    state: str  # valid | tombstone | missing
    event_id: str | None
    created_at: int | None
    digest: str | None
    secrets_digest: str | None
    relays: tuple[str, ...] = ()  # the relays that returned the head event
    read: tuple[str, ...] = ()  # the relays that answered for this agent


_MISSING = RelayHead("missing", None, None, None, None)


@dataclass
class Reading:
    """How one refresh's requests for heads went, relay by relay.

    A relay counts as read only if it answered every request in full; an agent
    counts as verified only if every configured relay answered for it.
    """

    asked: int = 0  # agents asked about
    answered: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # relay -> why (the first reason)
    unverified: set[str] = field(default_factory=set)  # agents some relay did not answer for

    def take(self, batch: Sequence[str], fetched: Fetched) -> None:
        self.answered.update(fetched.answered)
        for url in fetched.failed:
            self.failed.setdefault(url, fetched.errors.get(url, "could not be read"))
        if fetched.failed or not fetched.answered:
            self.unverified.update(batch)

    @property
    def read(self) -> list[str]:
        """The relays that answered every request."""
        return sorted(self.answered - set(self.failed))


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    pubkey: str
    persona_slug: str
    result: str  # published | tombstoned | failed | unknown | conflict
    event_id: str | None = None
    detail: str = ""


# The results that leave an agent as the plan wanted it.
SETTLED = frozenset({"published", "tombstoned"})


@dataclass(repr=False)
class ApplyReport:
    planned: int = 0
    observed: int = 0  # drift recorded by the refresh
    outcomes: list[AgentOutcome] = field(default_factory=list)
    unchanged: int = 0  # nothing to do, and every relay was read for them
    relays: list[str] = field(default_factory=list)
    # Agents with nothing planned whose heads some relay did not answer for: not
    # known to be in sync, so not counted as unchanged.
    unverified: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)  # relay -> why it was not read
    refreshed: bool = True  # False with --no-refresh: "unchanged" is the log's word
    # Engrams we sealed whose OK was lost, found as heads by the refresh: published.
    confirmed: int = 0

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def converged(self) -> bool:
        return all(o.result in SETTLED for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        return {
            "published": self.count("published"),
            "tombstoned": self.count("tombstoned"),
            "unchanged": self.unchanged,
            "failed": self.count("failed"),
            "unknown": self.count("unknown"),
            "conflicts": self.count("conflict"),
            "unverified": self.unverified,
        }

    @property
    def verified(self) -> bool:
        """Every relay was read for every agent in scope (vacuously, with --no-refresh)."""
        return not self.unverified and not self.unreadable

    def __repr__(self) -> str:
        # Counts, not every outcome: asyncio.run formats the repr of the task that
        # returned this report as it ends (Python 3.11 restoring the SIGINT
        # handler), and the repr of thousands of outcomes was a visible part of
        # every large apply.
        return f"ApplyReport(planned={self.planned}, observed={self.observed}, {self.summary()})"


@dataclass
class _Work:
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


Progress = Callable[[int, int], None]


class Reconciler:
    def __init__(
        self,
        app: FleetApplication,
        view: FleetView,
        keys: KeySource,
        owner: SecretKey,
        digest_key: bytes,
        gateway: RelayGateway,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 1000,
        max_ahead: int = 3600,
        ack_all: bool = False,
        foreign_heads: ForeignHeads = ForeignHeads.CONFLICT,
        progress: Progress | None = None,
        agents: AgentSource | None = None,
        writer: EventWriter | None = None,
    ) -> None:
        self.app = app
        self.agents = agents
        self.writer: EventWriter = writer if writer is not None else ApplicationWriter(app)
        self.view = view
        self.keys = keys
        self.owner = owner
        self.digest_key = digest_key
        self.gateway = gateway
        self.clock = clock
        self.batch_size = batch_size
        self.max_ahead = max_ahead
        self.ack_all = ack_all
        self.foreign_heads = foreign_heads
        self.progress = progress
        self._conversations: dict[str, Conversation] = {}
        self._d_tags: dict[str, str] = {}  # each agent's mem/persona d tag
        self._learned: dict[str, str] = {}  # d tags derived here, not yet kept
        self._bodies: dict[tuple[str, str, str], PreparedBody] = {}
        self._tombstone = tombstone_body(PERSONA_ENGRAM_SLUG)
        self.heads: dict[str, RelayHead] = {}
        self.confirmed = 0  # our own seals a refresh found as heads (see refresh)
        self.reading: Reading | None = None  # the last refresh's

    # -- reading the relays ------------------------------------------------------------

    def conversation(self, pubkey: str) -> Conversation:
        """The owner's side of the pair: reads (and ``d`` tags) need no agent key."""
        conv = self._conversations.get(pubkey)
        if conv is None:
            conv = Conversation.for_owner(self.owner, PublicKey.from_hex(pubkey))
            self._conversations[pubkey] = conv
        return conv

    async def read_heads(
        self,
        pubkeys: Sequence[str],
        ours: dict[str, Event] | None = None,
        known: Mapping[str, Sequence[RelayHead]] | None = None,
        reading: Reading | None = None,
    ) -> dict[str, RelayHead]:
        """The validated ``mem/persona`` head of each agent, over every relay's answer,
        with the relays that returned it. An agent no relay answered for has none.

        ``ours`` are events just sent (a read-back), ``known`` the heads the log
        records (and the engram it last sealed): any one, found again on the
        relays with nothing that could beat it, is the head without being
        opened again.

        Agents are asked for in batches (one filter of at most
        ``AUTHORS_PER_REQUEST`` authors): a request per agent would cost a round
        trip each. The filter names each agent's ``d`` tag, which the key store
        keeps; one it lacks is derived (an ECDH) while the relays answer the
        previous batch.
        """
        heads: dict[str, RelayHead] = {}
        owner = self.owner.public_key.hex
        asked: deque[tuple[list[str], asyncio.Task[Fetched]]] = deque()
        try:
            step = min(self.batch_size, AUTHORS_PER_REQUEST)
            for start in range(0, len(pubkeys), step):
                batch = list(pubkeys[start : start + step])
                d_tags = await self._persona_d_tags(batch)
                asked.append(
                    (batch, asyncio.create_task(self.gateway.fetch_engrams(batch, owner, d_tags)))
                )
                if len(asked) > 1:
                    await self._take_heads(asked.popleft(), ours, known, heads, reading)
            while asked:
                await self._take_heads(asked.popleft(), ours, known, heads, reading)
        finally:
            await _cancel(fetch for _, fetch in asked)
        self.heads.update(heads)
        return heads

    async def _persona_d_tags(self, pubkeys: Sequence[str]) -> list[str]:
        """Each agent's ``mem/persona`` d tag: known, kept by the key store, or derived."""
        missing = [pubkey for pubkey in pubkeys if pubkey not in self._d_tags]
        if missing:
            self._d_tags.update(self.keys.persona_d_tags(missing))
            unknown = [pubkey for pubkey in missing if pubkey not in self._d_tags]
            await self._derive_conversations(unknown)
            for pubkey in unknown:
                d_tag = self.conversation(pubkey).d_tag(PERSONA_ENGRAM_SLUG)
                self._d_tags[pubkey] = self._learned[pubkey] = d_tag
        return [self._d_tags[pubkey] for pubkey in pubkeys]

    def _keep_learned_d_tags(self) -> None:
        if not self._learned:
            return
        try:
            self.keys.remember_persona_d_tags(self._learned)
        except AdapterError as exc:
            # Only a saving for later applies: they derive them again.
            logger.info("could not keep %d derived d tags: %s", len(self._learned), exc)
        self._learned.clear()

    async def _derive_conversations(self, pubkeys: Sequence[str]) -> None:
        """Derive the conversations of the agents not seen before: an ECDH each.

        Only for d tags the key store does not keep (keys stored before schema 2,
        agents whose key is not here), and then they are most of the refresh
        while the relays have little to do. libsecp256k1 lets go of the GIL while
        it multiplies, so a worker thread derives half of them while this thread
        derives the other half, yielding to the event loop as it goes (the
        previous batch's request is still on its way).
        """
        new = [pubkey for pubkey in dict.fromkeys(pubkeys) if pubkey not in self._conversations]
        half = len(new) // 2 if len(new) >= 2 * SEALS_PER_YIELD else 0
        theirs = None
        if half:
            theirs = asyncio.get_running_loop().run_in_executor(
                None, _derive_conversations, self.owner, new[:half]
            )
        try:
            for n, pubkey in enumerate(new[half:], 1):
                if n % SEALS_PER_YIELD == 0:
                    await asyncio.sleep(0)
                self.conversation(pubkey)
            if theirs is not None:
                self._conversations.update(zip(new[:half], await theirs, strict=True))
        except BaseException:
            if theirs is not None:
                theirs.cancel()  # the thread finishes its share; nobody waits for it
            raise

    async def _take_heads(
        self,
        asked: tuple[list[str], asyncio.Task[Fetched]],
        ours: dict[str, Event] | None,
        known: Mapping[str, Sequence[RelayHead]] | None,
        heads: dict[str, RelayHead],
        reading: Reading | None = None,
    ) -> None:
        batch, fetch = asked
        fetched = await fetch
        if reading is not None:
            reading.take(batch, fetched)
        if not fetched.answered:
            return  # no relay answered: nothing is known, nothing is recorded
        by_author: dict[str, list[Event]] = {}
        for event in fetched.events:
            by_author.setdefault(event.pubkey, []).append(event)
        read = tuple(fetched.answered)
        held = fetched.held
        for pubkey in batch:
            mine = ours.get(pubkey) if ours else None
            believed = known.get(pubkey, ()) if known else ()
            head = self._head_of(pubkey, by_author.get(pubkey, []), mine, believed)
            # Which relays hold it: only those that answered in full count as read;
            # one that returned the event holds it even if it did not finish.
            holders = (
                ()
                if head.event_id is None
                else tuple(held.get(head.event_id, ()) if held is not None else read)
            )
            heads[pubkey] = RelayHead(
                head.state,
                head.event_id,
                head.created_at,
                head.digest,
                head.secrets_digest,
                holders,
                read,
            )

    def _head_of(
        self,
        pubkey: str,
        events: list[Event],
        mine: Event | None = None,
        known: Sequence[RelayHead] = (),
    ) -> RelayHead:
        if not events:
            return _MISSING  # the common case on a fleet's first apply
        if mine is not None and len(events) == 1 and events[0] == mine:
            # The common read-back: the relays hold ours, byte for byte, and nothing
            # else for this agent (so nothing that could beat it).
            return RelayHead("valid", mine.id, mine.created_at, None, None)
        for believed in known:
            if (again := _still_the_head(events, believed)) is not None:
                # The common refresh: nothing new since the log last saw this agent's
                # head (or the relays hold the engram it last sealed, and nothing newer).
                return again
        conv = self.conversation(pubkey)
        d_tag = conv.d_tag(PERSONA_ENGRAM_SLUG)
        candidates = [e for e in events if d_tag in e.tag_values("d")]
        if mine is not None and mine in candidates:
            # Reading back what we just sealed: only events that would beat ours under
            # head selection need validating; ours is known good, byte for byte.
            contenders = [e for e in candidates if e != mine and _beats(e, mine)]
            if not contenders:
                return RelayHead("valid", mine.id, mine.created_at, None, None)
            candidates = [mine, *contenders]
        selection: HeadSelection = select_head(conv, PERSONA_ENGRAM_SLUG, candidates)
        head = selection.head
        if head is None:
            return _MISSING
        if head.is_tombstone:
            return RelayHead("tombstone", head.event.id, head.event.created_at, None, None)
        try:
            engram = open_persona_engram(head)
        except DomainError as exc:
            # A valid NIP-AE record whose value is not a persona: carries nothing we know.
            logger.info("agent %s: mem/persona head %s unreadable: %s", pubkey, head.event.id, exc)
            return RelayHead("valid", head.event.id, head.event.created_at, None, None)
        assert engram is not None
        # What it really carries: the digest of its content (a provenance claim that
        # does not match the content counts for nothing), and our keyed digest of
        # its secrets, so engrams written by other tools compare too.
        return RelayHead(
            "valid",
            head.event.id,
            head.event.created_at,
            engram.content.digest(),
            secrets_digest(self.digest_key, engram.env_vars),
        )

    async def refresh(self, agents: Sequence[AgentRow]) -> int:
        """Record what the relays hold where it differs from the log; returns how many
        heads other than the log's belief were recorded.

        The engram an agent last sealed, found as its head, is recorded as
        ``Published`` (confirmed by the refresh: its OK was lost, or the apply
        that sent it stopped before the read-back), not as something other than
        the log said; any other head is recorded with who wrote it (see
        :meth:`Agent.origin_of`). ``self.confirmed`` counts the former. Either
        names the relays holding it: a head the log knows, found on other relays
        than it believed, is recorded again.

        Also records the reading itself (which relays answered, which could not
        be read and why) and keeps it as :attr:`reading`.

        Live agents are read, and retired ones whose engram is due a tombstone (it
        is sealed over their head, which must be the one the relays hold now).
        """
        live = [a for a in agents if not a.retired or a.status == Status.TOMBSTONE_DUE]
        rows = {row.pubkey: row for row in live}
        known = {row.pubkey: _believed(row) for row in live}
        reading = self.reading = Reading(asked=len(live))
        heads = await self.read_heads(
            list(rows), known={k: v for k, v in known.items() if v}, reading=reading
        )
        self._keep_learned_d_tags()
        observations = [
            (row.pubkey, seen)
            for row in live
            if (head := heads.get(row.pubkey)) is not None
            and (seen := _observation(row, head)) is not None
        ]
        aggregates = self._load([pubkey for pubkey, _ in observations])
        changed: list[Aggregate] = []
        observed = 0
        for pubkey, (head, held_by) in observations:
            row, agent = rows[pubkey], aggregates[pubkey]
            if (
                head.state == "valid"
                and head.event_id is not None
                and head.event_id == row.pending_event_id
                and row.pending_digest is not None
                and row.pending_secrets_digest is not None
            ):
                agent.record_published(
                    head.event_id,
                    row.pending_digest,
                    row.pending_secrets_digest,
                    [],
                    [],
                    "refresh",
                    held_by,
                )
                self.confirmed += 1
            else:
                origin = agent.origin_of(head.event_id, head.digest, head.created_at)
                agent.record_observed(
                    head.event_id,
                    head.created_at,
                    head.digest,
                    head.secrets_digest,
                    head.state,
                    list(head.read),
                    origin,
                    held_by,
                )
                observed += 1
            changed.append(agent)
        if live and (reading.answered or reading.failed):
            changed.append(RelayReading(reading.read, dict(reading.failed), len(live)))
        if changed:
            await self.writer.save(changed)
        return observed

    # -- apply ---------------------------------------------------------------------------

    async def apply(
        self,
        persona: str | None = None,
        agent: str | None = None,
        *,
        only: Sequence[str] | None = None,
        refresh: bool = True,
        overwrite_conflicts: bool = False,
    ) -> ApplyReport:
        """Refresh, plan and carry out; ``persona``/``agent``/``only`` narrow the scope."""
        # An apply keeps a few objects per engram alive until its batch is
        # confirmed: the collector rescanned them all every few hundred engrams.
        with cyclic_gc_paused():
            return await self._apply(persona, agent, only, refresh, overwrite_conflicts)

    async def _apply(
        self,
        persona: str | None,
        agent: str | None,
        only: Sequence[str] | None,
        refresh: bool,
        overwrite_conflicts: bool,
    ) -> ApplyReport:
        report = ApplyReport(relays=list(self.gateway.urls))
        # The view is caught up by whoever handed it over (Fleet.reconciler); it is
        # caught up again here only to fold what the refresh recorded.
        view = self.view
        wanted = set(only) if only is not None else None
        # Retired agents too: one may be due a tombstone (refresh picks those out).
        scope = [view.agent(agent)] if agent else view.agents(persona)
        agents = [a for a in scope if a is not None and (wanted is None or a.pubkey in wanted)]
        report.refreshed = refresh
        if refresh:
            report.observed = await self.refresh(agents)
            report.confirmed = self.confirmed
            view.catch_up()
        commands = view.plan(
            persona=persona,
            agent=agent,
            overwrite_conflicts=overwrite_conflicts,
            foreign_heads=self.foreign_heads,
        )
        if wanted is not None:
            commands = [c for c in commands if c.pubkey in wanted]
        report.planned = len(commands)
        # A conflict left standing is not "unchanged": it waits for a person.
        planned = {c.pubkey for c in commands}
        held = [
            _held(item)
            for item in view.assessments(
                persona, agent, [Status.CONFLICT], foreign_heads=self.foreign_heads
            )
            if item.status is Status.CONFLICT
            and item.agent.pubkey not in planned
            and (wanted is None or item.agent.pubkey in wanted)
        ]
        idle = {a.pubkey for a in agents if not a.retired} - planned - {o.pubkey for o in held}
        if refresh and self.reading is not None:
            # Nor is an agent some relay did not answer for: nothing is known of it.
            report.unreadable = dict(self.reading.failed)
            report.unverified = len(idle & self.reading.unverified)
        report.unchanged = len(idle) - report.unverified
        report.outcomes = held + await self._carry_out(commands)
        # The view is not caught up here: whoever reads it next folds these events
        # (FleetView.catch_up is incremental), and an apply ends the command.
        return report

    async def _carry_out(self, commands: Sequence[PublishCommand]) -> list[AgentOutcome]:
        """Seal and store batch k+1 while batch k is sent and confirmed.

        One process does it all, and the relays work in parallel with it: while
        a batch is on its way (the relay client keeps its window full whenever
        this coroutine yields) the next one is sealed and stored, so neither
        side waits for the other. A batch is handed to the relays only once the
        transaction holding its seals has committed. At most ``IN_FLIGHT``
        batches' worth of engrams are out at once; their publishes go one after
        another (one window per connection), their read-backs overlap the next
        publish. Whatever is out when the last batch is sealed is the time the
        apply still takes: the last batches are smaller (see :func:`batch_bounds`).
        """
        outcomes: list[AgentOutcome] = []
        out: deque[tuple[asyncio.Task[list[AgentOutcome]], list[AgentOutcome], int]] = deque()
        done = unsettled = 0

        async def settle_oldest() -> None:
            nonlocal done, unsettled
            task, early, size = out.popleft()
            outcomes.extend(early)
            outcomes.extend(await task)
            done += size
            unsettled -= size
            if self.progress is not None:
                self.progress(done, len(commands))

        if self.progress is not None:
            self.progress(0, len(commands))  # the reading is over: publishing starts
        batches = [
            commands[start:stop] for start, stop in batch_bounds(len(commands), self.batch_size)
        ]
        keys: deque[asyncio.Future[_Opened]] = deque()
        try:
            for n, batch in enumerate(batches):
                if not keys:
                    keys.append(self._open_keys(batch))
                if n + 1 < len(batches):
                    # The next batch's keys are decrypted while this one is sealed.
                    keys.append(self._open_keys(batches[n + 1]))
                missing = [c.pubkey for c in batch if c.pubkey not in self.heads]
                if missing:
                    await self.read_heads(missing)
                work, early, sealed = await self._seal(batch, await keys.popleft())
                task = asyncio.create_task(self._store_send_and_confirm(sealed, work))
                out.append((task, early, len(batch)))
                unsettled += len(batch)
                while unsettled > IN_FLIGHT * self.batch_size:
                    await settle_oldest()
            while out:
                await settle_oldest()
        finally:
            await _cancel([*(task for task, _, _ in out), *keys])
        return outcomes

    def _open_keys(self, commands: Sequence[PublishCommand]) -> asyncio.Future[_Opened]:
        """Start decrypting the secret keys a batch's new seals need, on a worker thread.

        Reading them is a query on this thread. Decrypting them, and building the
        key pair each needs to sign and the conversation each needs to encrypt
        (libsecp256k1, without the GIL), run beside the sealing of the batch before.
        """
        fresh = [c.pubkey for c in commands if c.resend_event_id is None]
        sealed = self.keys.sealed_many(fresh) if fresh else {}
        unknown = frozenset(pubkey for pubkey in sealed if pubkey not in self._conversations)
        return asyncio.get_running_loop().run_in_executor(
            None, _open_for_sealing, self.keys, sealed, self.owner, unknown
        )

    async def _store_send_and_confirm(
        self, sealed: Sequence[Agent], work: Sequence[_Work]
    ) -> list[AgentOutcome]:
        # The seals are in the log before a single byte goes to a relay. The commit
        # runs off the event loop (see adapters.store.writer): the next batch is
        # sealed meanwhile.
        await self.writer.save(sealed)
        if not work:
            return []
        only = {w.event.id: w.command.relays for w in work if w.command.relays}
        answers = await self.gateway.publish([w.event for w in work], only or None)
        for w in work:
            w.answers = answers.get(w.event.id, [])
        # NIP-AE: the tombstone replaces the engram first; the deletion request for
        # what came before follows, and only once the tombstone is acknowledged.
        follow = [w for w in work if w.deletion is not None and self._policy_met(w.answers)]
        if follow:
            answered = await self.gateway.publish([w.deletion for w in follow if w.deletion])
            for w in follow:
                assert w.deletion is not None
                w.deletion_answers = answered.get(w.deletion.id, [])
        return await self._confirm(work)

    async def _seal(
        self, commands: Sequence[PublishCommand], opened: _Opened
    ) -> tuple[list[_Work], list[AgentOutcome], list[Agent]]:
        """Resend stored seals and seal the rest; returns the work, the outcomes
        already known, and the agents whose new events must be stored before
        any of the work is sent. ``opened`` is what :meth:`_open_keys` prepared
        for the batch.

        Yields to the event loop every ``SEALS_PER_YIELD`` seals, so the batches
        already out keep their relay windows full meanwhile.
        """
        work: list[_Work] = []
        early: list[AgentOutcome] = []
        now = int(self.clock())
        to_save: list[Agent] = []
        signers, conversations = opened
        self._adopt(conversations)
        # Only a resend needs the agent's history (the sealed event it holds); a new
        # seal is recorded at the version the plan was made at (Agent.at_version).
        resent = self._load([c.pubkey for c in commands if c.resend_event_id is not None])
        for n, command in enumerate(commands, 1):
            if n % SEALS_PER_YIELD == 0:
                await asyncio.sleep(0)
            conv = self.conversation(command.pubkey)
            agent = resent.get(command.pubkey)
            if agent is None:
                agent = Agent.at_version(
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
            head = self.heads.get(command.pubkey)
            try:
                created_at = next_created_at(now, head.created_at if head else None, self.max_ahead)
            except ClockPoisoned as exc:
                agent.record_conflict(
                    None,
                    command.digest,
                    head.event_id if head else None,
                    head.created_at if head else None,
                    f"clock-poisoned: {exc}",
                )
                to_save.append(agent)
                early.append(
                    AgentOutcome(command.pubkey, command.persona_slug, "conflict", None, str(exc))
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
                work.append(_Work(command, agent, event, conv, resend=False, deletion=deletion))
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
            work.append(_Work(command, agent, event, conv, resend=False))
        return work, early, to_save

    def _adopt(self, conversations: Mapping[str, Conversation]) -> None:
        """Take the conversations a worker derived, checking each against the d tag
        the refresh asked the relays for (a wrong kept d tag would have hidden the
        agent's head from it)."""
        for pubkey, conv in conversations.items():
            d_tag = conv.d_tag(PERSONA_ENGRAM_SLUG)
            kept = self._d_tags.setdefault(pubkey, d_tag)
            if kept != d_tag:
                raise KeyStoreCorrupt(
                    f"the key store's d tag for agent {pubkey} does not match its key; "
                    "nothing was sealed for it"
                )
            self._conversations.setdefault(pubkey, conv)

    def _load(self, pubkeys: Sequence[str]) -> dict[str, Agent]:
        if self.agents is not None:
            return self.agents.load(pubkeys)
        return {pubkey: self.app.get_agent(pubkey) for pubkey in pubkeys}

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
            provenance = Provenance(
                self.owner.public_key.hex,
                command.persona_slug,
                command.digest,
                command.secrets_digest,
            )
            body = prepare_persona_body(
                PersonaEngram(definition.content, provenance, definition.env_vars)
            )
            self._bodies[key] = body
        return body

    async def _confirm(self, work: Sequence[_Work]) -> list[AgentOutcome]:
        """Read back the heads of everything some relay may hold, and record the verdicts.

        Not only what the ack policy accepted: an OK can be lost on its way back
        (the relay stored the event, the answer timed out), and our own event read
        back as the head is proof that it landed. Only what every relay refused
        for good is not asked for.
        """
        ours = {w.command.pubkey: w.event for w in work if not _refused_by_all(w.answers)}
        heads = await self.read_heads(list(ours), ours) if ours else {}
        # Who wrote a head that beat ours is judged from the agent's history, which
        # the handle the seal was recorded on does not hold: load the few that lost.
        lost = [
            w.command.pubkey
            for w in work
            if (head := heads.get(w.command.pubkey)) is not None
            and head.event_id not in (None, w.event.id)
            and _newer(head, w.event)
        ]
        histories = self._load(lost) if lost else {}
        outcomes = [
            self._verdict(w, heads.get(w.command.pubkey), histories.get(w.command.pubkey))
            for w in work
        ]
        await self.writer.save(w.agent for w in work)
        return outcomes

    def _policy_met(self, answers: Iterable[Answer]) -> bool:
        answers = list(answers)
        ok = [a for a in answers if a.outcome.stored]
        if self.ack_all:
            return bool(answers) and len(ok) == len(answers)
        return bool(ok)

    def _verdict(self, w: _Work, head: RelayHead | None, history: Agent | None) -> AgentOutcome:
        command, agent, event = w.command, w.agent, w.event
        records = [a.as_dict() for a in w.answers]
        acked = [a.relay for a in w.answers if a.outcome.stored]
        slug = command.persona_slug
        if head is not None:
            if head.event_id == event.id and w.deletion is not None:
                agent.record_tombstoned(
                    event.id,
                    w.deletion.id,
                    acked,
                    records,
                    [a.as_dict() for a in w.deletion_answers],
                )
                return AgentOutcome(command.pubkey, slug, "tombstoned", event.id)
            if head.event_id == event.id:
                # The head read back is ours: published, with or without the OKs. A
                # relay that returned it holds it, whatever became of its OK; with
                # --ack all every relay sent to must have said so or returned it.
                confirmed_by = "acknowledged" if self._policy_met(w.answers) else "read-back"
                holding = set(acked) | set(head.relays)
                if (
                    confirmed_by == "acknowledged"
                    or not self.ack_all
                    or (w.answers and all(a.relay in holding for a in w.answers))
                ):
                    agent.record_published(
                        event.id,
                        command.digest,
                        command.secrets_digest,
                        acked,
                        records,
                        confirmed_by,
                        list(head.relays),
                    )
                    return AgentOutcome(command.pubkey, slug, "published", event.id)
            elif head.event_id is not None and _newer(head, event):
                agent.record_answers(event.id, records)
                # The head it lost to, and who wrote it: the planner's policy for
                # another writer's head reads it (see domain.planner.assess).
                origin = (
                    history.origin_of(head.event_id, head.digest, head.created_at)
                    if (history is not None)
                    else HeadOrigin.FOREIGN.value
                )
                agent.record_observed(
                    head.event_id,
                    head.created_at,
                    head.digest,
                    head.secrets_digest,
                    head.state,
                    list(head.read),
                    origin,
                    list(head.relays),
                )
                agent.record_conflict(
                    event.id,
                    command.digest,
                    head.event_id,
                    head.created_at,
                    "another writer's engram is the head",
                )
                return AgentOutcome(
                    command.pubkey,
                    slug,
                    "conflict",
                    event.id,
                    f"another writer's engram is the head ({head.event_id})",
                )
        agent.record_answers(event.id, records)
        if w.answers and all(a.outcome is Outcome.PERMANENT for a in w.answers):
            reason = "; ".join(a.describe() for a in w.answers)
            if not command.relays:
                # Sent everywhere and refused everywhere: it will never land.
                agent.record_failed(event.id, f"refused by every relay: {reason}")
            # A resend to the relays that lack it was refused there, while others
            # hold it: it stays the agent's current engram (never sealed anew for
            # this), and the next apply asks those relays again.
            return AgentOutcome(command.pubkey, slug, "failed", event.id, reason)
        detail = "; ".join(a.describe() for a in w.answers)
        if self._policy_met(w.answers):
            # Acknowledged, yet not confirmed: say which half of the confirmation failed.
            detail += (
                "; no relay answered the read-back"
                if head is None
                else "; the read-back did not return it"
            )
        return AgentOutcome(command.pubkey, slug, "unknown", event.id, detail or "no relay")


# A batch's signers (each holding an agent's opened key), and the conversations
# derived for those not yet known.
_Opened = tuple[dict[str, Signer], dict[str, Conversation]]


def _open_for_sealing(
    keys: KeySource, sealed: Mapping[str, str], owner: SecretKey, unknown: frozenset[str]
) -> _Opened:
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


def _derive_conversations(owner: SecretKey, pubkeys: Sequence[str]) -> list[Conversation]:
    return [Conversation.for_owner(owner, PublicKey.from_hex(pubkey)) for pubkey in pubkeys]


def batch_bounds(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each batch of ``total`` commands: ``size`` at most.

    Full batches until two are left; from there each batch is half of what
    remains (at least ``TAIL_BATCH``, or all that is left), so the apply's last
    batch, which nothing overlaps, is a small one.
    """
    floor = min(TAIL_BATCH, size)
    start = 0
    while start < total:
        remaining = total - start
        if remaining >= 2 * size:
            count = size
        else:
            count = min(size, max(remaining // 2, min(floor, remaining)))
        yield start, start + count
        start += count


async def _cancel(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel what is still running (after an error) and wait until it has stopped.

    Gathering the finished ones too retrieves their exceptions: the first error
    is the one raised, the others would otherwise be logged as never retrieved.
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _same_head(row: AgentRow, head: RelayHead) -> bool:
    """Does the log already believe what the relays now show (head and holders aside)?"""
    if row.head_state is None:
        return head.state == "missing"  # never written, still absent: nothing new
    return (row.head_state, row.head_event_id) == (head.state, head.event_id)


def _observation(row: AgentRow, head: RelayHead) -> tuple[RelayHead, list[str]] | None:
    """What a refresh records about one agent: the head and the relays holding it, or
    None when the log already believes exactly that.

    Relays that did not answer this time keep what the log believed of them: a
    relay that could not be read is evidence of nothing, either way.
    """
    believed: list[str] = row.head_relays or []
    unread = [url for url in believed if url not in head.read]
    if head.state == "missing" and unread and row.head_state is not None:
        # Nothing on the relays read; those not read may still hold what the log knows.
        if unread == believed:
            return None
        kept = RelayHead(
            row.head_state, row.head_event_id, None, row.head_digest, row.head_secrets_digest
        )
        return kept, unread
    if head.event_id is not None and head.event_id == row.head_event_id and unread:
        held = [url for url in believed if url in unread or url in head.relays]
        held += [url for url in head.relays if url not in held]
    else:
        held = list(head.relays)
    if _same_head(row, head) and (held == believed or set(held) == set(believed)):
        return None
    return head, held


def _outranks(created_at: int, event_id: str, other: Event) -> bool:
    """Would (created_at, event_id) win over ``other`` in NIP-AE head selection?"""
    return (-created_at, event_id) < (-other.created_at, other.id)


def _beats(event: Event, other: Event) -> bool:
    return _outranks(event.created_at, event.id, other)


def _still_the_head(events: Sequence[Event], known: RelayHead) -> RelayHead | None:
    """``known`` again, if the relays still hold that very event and nothing newer.

    The log recorded this head after validating it (signature, encryption, body),
    and an event id is the hash of everything but the signature: an event that
    hashes to it carries the same content. Anything that would outrank it, even
    an invalid event, sends the caller through full head selection instead.
    """
    same = next((e for e in events if e.id == known.event_id), None)
    if (
        same is None
        or compute_id(same.pubkey, same.created_at, same.kind, same.tags, same.content) != same.id
    ):
        return None
    if any(e.id != same.id and _beats(e, same) for e in events):
        return None
    return RelayHead(known.state, same.id, same.created_at, known.digest, known.secrets_digest)


def _believed(row: AgentRow) -> tuple[RelayHead, ...]:
    """What the log says an agent's head could be: the engram it last sealed (newer
    than anything before it) and the head it last recorded."""
    believed = []
    if row.pending_event_id is not None:
        believed.append(
            RelayHead(
                "valid",
                row.pending_event_id,
                None,
                row.pending_digest,
                row.pending_secrets_digest,
            )
        )
    if row.head_state is not None and row.head_event_id is not None:
        believed.append(
            RelayHead(
                row.head_state,
                row.head_event_id,
                None,
                row.head_digest,
                row.head_secrets_digest,
            )
        )
    return tuple(believed)


def _refused_by_all(answers: Sequence[Answer]) -> bool:
    return bool(answers) and all(a.outcome is Outcome.PERMANENT for a in answers)


def _newer(head: RelayHead, event: Event) -> bool:
    return _outranks(head.created_at or 0, head.event_id or "", event)


def _held(item: Assessment) -> AgentOutcome:
    """The outcome of an agent whose conflict stands: nothing was written."""
    facts = item.agent
    head = facts.head.event_id if facts.head is not None else None
    # The whole id: the text output groups outcomes by their detail without ids.
    written = "another writer's engram" if head is None else f"another writer's engram {head}"
    return AgentOutcome(
        facts.pubkey,
        facts.persona_slug,
        "conflict",
        None,
        f"{written} is the head; waiting for a person "
        "(apply --overwrite-conflicts, or FLEETSYNC_FOREIGN_HEADS=self-heal)",
    )


def _resend(command: PublishCommand, agent: Agent, conv: Conversation) -> _Work | None:
    """The stored seal a resend command names, as work (``None``: not in the log)."""
    wanted = command.resend_event_id
    if wanted is None:
        return None
    if command.action is Action.TOMBSTONE:
        stored = agent.tombstone
        if stored is None or stored["event"].get("id") != wanted:
            return None
        return _Work(
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
    return None if event is None else _Work(command, agent, Event.from_dict(event), conv, True)


def _failed(command: PublishCommand, reason: str) -> AgentOutcome:
    return AgentOutcome(command.pubkey, command.persona_slug, "failed", None, reason)
