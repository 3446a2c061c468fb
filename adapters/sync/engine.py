"""The reconciler: refresh, plan, then carry out publish commands idempotently.

This room orchestrates; the steps live in rooms of their own (reading heads,
sealing, confirming), the verdict in the domain, and what it hands back in
:mod:`adapters.sync.report`.

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
   :class:`adapters.sync.heads.Reading`), and the reading is recorded
   (``RelayReading``) so ``status`` and ``plan`` can say what they are based
   on (reading heads: :mod:`adapters.sync.heads`);
2. **plan** — the pure planner over the caught-up view;
3. **seal** — for each command, either take the sealed-but-unconfirmed (or
   the published) event from the log (a resend: the *identical* event, to the
   relays that lack it) or seal a new one with
   ``created_at = max(now, head + 1)``; new seals are saved to the log in one
   transaction per batch *before* anything is sent, at the agent version the
   plan was made at (so a plan another process overtook is refused whole;
   :mod:`adapters.sync.sealing`);
4. **send** to every configured relay (through the
   :class:`adapters.ports.RelayGateway`, whatever transport reaches each);
5. **confirm** — read back the heads of everything not refused by every relay
   and record ``Published`` (the head is ours: the ack policy met, or its OK
   lost; under ``--ack all`` every relay sent to acknowledged it or returned it
   on read-back), ``ConflictDetected`` after the
   ``HeadObserved`` it lost to (another writer's engram is the head; the
   planner's policy decides what comes next), ``PublishFailed`` (every relay
   refused for good) or ``RelaysAnswered`` (no verdict yet: the next apply
   resends). The verdict is the domain's (:func:`domain.verdict.judge`);
   :mod:`adapters.sync.confirm` reads back and records it.

Once the commands are carried out, what they cost each relay's wire
(connections, the most open at once, NIP-42 handshakes, HTTP requests) is
recorded as a ``RelayTraffic`` and reported with the verdicts.

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
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from eventsourcing.domain import Aggregate

from adapters.nostr.keys import SecretKey
from adapters.ports import AgentSource, EventWriter, KeySource, Progress, RelayGateway, Signer
from adapters.store.writer import ApplicationWriter
from adapters.sync.confirm import confirm
from adapters.sync.heads import (
    HeadReader,
    Reading,
    believed_heads,
    cancel_all,
    observation,
)
from adapters.sync.report import AgentVerdict, ApplyReport
from adapters.sync.sealing import Opened, Sealer, Work
from domain.aggregates import Agent, RelayReading, RelayTraffic
from domain.application import FleetApplication
from domain.clock import MAX_AHEAD
from domain.planner import Assessment, ForeignHeads, PublishCommand, Status
from domain.verdict import Verdict, policy_met
from projections.gcpause import cyclic_gc_paused
from projections.rows import AgentRow
from projections.view import FleetView

# Batches' worth of engrams sealed but not yet confirmed, besides the batch being
# sealed. A batch is out for several times as long as it takes to seal (store,
# wait for the previous batch's send, send, read back, record): with fewer,
# sealing stopped to wait for the oldest batch's read-back (``scripts/bench
# apply`` shows the effect of a change here).
IN_FLIGHT = 4
# The last batches get smaller (halving, down to this), so the batch still out
# when sealing ends is a small one: the apply ends that much sooner.
TAIL_BATCH = 50


class Reconciler:
    """One command's reconciler: refresh, plan and carry out (see the module docstring)."""

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
        max_ahead: int = MAX_AHEAD,
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
        self.gateway = gateway
        self.batch_size = batch_size
        self.ack_all = ack_all
        self.foreign_heads = foreign_heads
        self.progress = progress
        self.reader = HeadReader(owner, digest_key, keys, gateway, batch_size=batch_size)
        self.sealer = Sealer(
            app, owner, keys, self.reader, self._load, clock=clock, max_ahead=max_ahead
        )
        self.confirmed = 0  # our own seals a refresh found as heads (see refresh)
        self.reading: Reading | None = None  # the last refresh's

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
        known = {row.pubkey: believed_heads(row) for row in live}
        reading = self.reading = Reading(asked=len(live))
        heads = await self.reader.read_heads(
            list(rows), known={k: v for k, v in known.items() if v}, reading=reading
        )
        self.reader.keep_learned_d_tags()
        observations = [
            (row.pubkey, seen)
            for row in live
            if (head := heads.get(row.pubkey)) is not None
            and (seen := observation(row, head)) is not None
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
        started = datetime.now(UTC).isoformat()
        # The view is caught up by whoever handed it over (Fleet.reconciler); it is
        # caught up again here only to fold what the refresh recorded.
        view = self.view
        wanted = set(only) if only is not None else None
        # Retired agents too: one may be due a tombstone (refresh picks those out).
        scope = [view.agent(agent)] if agent else view.agents(persona)
        agents = [a for a in scope if a is not None and (wanted is None or a.pubkey in wanted)]
        observed = 0
        if refresh:
            observed = await self.refresh(agents)
            view.catch_up()
        commands = view.plan(
            persona=persona,
            agent=agent,
            overwrite_conflicts=overwrite_conflicts,
            foreign_heads=self.foreign_heads,
        )
        if wanted is not None:
            commands = [c for c in commands if c.pubkey in wanted]
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
        unreadable: dict[str, str] = {}
        unverified = 0
        if refresh and self.reading is not None:
            # Nor is an agent some relay did not answer for: nothing is known of it.
            unreadable = dict(self.reading.failed)
            unverified = len(idle & self.reading.unverified)
        verdicts = held + await self._carry_out(commands)
        traffic = dict(self.gateway.traffic())
        if commands:
            # What carrying them out cost each relay's wire, beside the verdicts it
            # carried (audit shows it with them).
            relays = {url: t.as_dict() for url, t in traffic.items()}
            await self.writer.save([RelayTraffic(relays, len(commands), started)])
        # The view is not caught up here: whoever reads it next folds these events
        # (FleetView.catch_up is incremental), and an apply ends the command.
        return ApplyReport(
            planned=len(commands),
            observed=observed,
            verdicts=tuple(verdicts),
            unchanged=len(idle) - unverified,
            relays=tuple(self.gateway.urls),
            unverified=unverified,
            unreadable=unreadable,
            refreshed=refresh,
            confirmed=self.confirmed if refresh else 0,
            traffic=traffic,
        )

    async def _carry_out(self, commands: Sequence[PublishCommand]) -> list[AgentVerdict]:
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
        verdicts: list[AgentVerdict] = []
        out: deque[tuple[asyncio.Task[list[AgentVerdict]], list[AgentVerdict], int]] = deque()
        done = unsettled = 0

        async def settle_oldest() -> None:
            nonlocal done, unsettled
            task, early, size = out.popleft()
            verdicts.extend(early)
            verdicts.extend(await task)
            done += size
            unsettled -= size
            if self.progress is not None:
                self.progress(done, len(commands))

        if self.progress is not None:
            self.progress(0, len(commands))  # the reading is over: publishing starts
        batches = [
            commands[start:stop] for start, stop in batch_bounds(len(commands), self.batch_size)
        ]
        keys: deque[asyncio.Future[Opened]] = deque()
        try:
            for n, batch in enumerate(batches):
                if not keys:
                    keys.append(self.sealer.open_keys(batch))
                if n + 1 < len(batches):
                    # The next batch's keys are decrypted while this one is sealed.
                    keys.append(self.sealer.open_keys(batches[n + 1]))
                missing = [c.pubkey for c in batch if c.pubkey not in self.reader.heads]
                if missing:
                    await self.reader.read_heads(missing)
                opened = await keys.popleft()
                work, early, sealed = await self.sealer.seal(batch, opened)
                # The batch's signers go along: the HTTP bridge signs each request as
                # the event's author, and the keys are open already.
                task = asyncio.create_task(self._store_send_and_confirm(sealed, work, opened[0]))
                out.append((task, early, len(batch)))
                unsettled += len(batch)
                while unsettled > IN_FLIGHT * self.batch_size:
                    await settle_oldest()
            while out:
                await settle_oldest()
        finally:
            await cancel_all([*(task for task, _, _ in out), *keys])
        return verdicts

    async def _store_send_and_confirm(
        self, sealed: Sequence[Agent], work: Sequence[Work], signers: Mapping[str, Signer]
    ) -> list[AgentVerdict]:
        # The seals are in the log before a single byte goes to a relay. The commit
        # runs off the event loop (see adapters.store.writer): the next batch is
        # sealed meanwhile.
        await self.writer.save(sealed)
        if not work:
            return []
        only = {w.event.id: w.command.relays for w in work if w.command.relays}
        answers = await self.gateway.publish([w.event for w in work], only or None, signers)
        for w in work:
            w.answers = answers.get(w.event.id, [])
        # NIP-AE: the tombstone replaces the engram first; the deletion request for
        # what came before follows, and only once the tombstone is acknowledged.
        follow = [
            w
            for w in work
            if w.deletion is not None
            and policy_met((a.outcome for a in w.answers), ack_all=self.ack_all)
        ]
        if follow:
            answered = await self.gateway.publish(
                [w.deletion for w in follow if w.deletion], None, signers
            )
            for w in follow:
                assert w.deletion is not None
                w.deletion_answers = answered.get(w.deletion.id, [])
        return await confirm(work, self.reader, self._load, self.writer, ack_all=self.ack_all)

    def _load(self, pubkeys: Sequence[str]) -> dict[str, Agent]:
        if self.agents is not None:
            return self.agents.load(pubkeys)
        return {pubkey: self.app.get_agent(pubkey) for pubkey in pubkeys}


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


def _held(item: Assessment) -> AgentVerdict:
    """The verdict on an agent whose conflict stands: nothing was written."""
    facts = item.agent
    head = facts.head.event_id if facts.head is not None else None
    # The whole id: the text output groups verdicts by their detail without ids.
    written = "another writer's engram" if head is None else f"another writer's engram {head}"
    return AgentVerdict(
        facts.pubkey,
        facts.persona_slug,
        Verdict.CONFLICT,
        None,
        f"{written} is the head; waiting for a person "
        "(apply --overwrite-conflicts, or FLEETSYNC_FOREIGN_HEADS=self-heal)",
    )
