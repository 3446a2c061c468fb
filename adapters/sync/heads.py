"""Reading the relays: each agent's ``mem/persona`` head, validated, with the relays
holding it, and how the reading went relay by relay.

A :class:`HeadReader` asks the relays (through the reconciler's
:class:`adapters.ports.RelayGateway`) for the engrams of many agents at once, by
``d`` tag, and picks each agent's head by NIP-AE head selection, decrypted as
the owner. It keeps what it learns for the rest of the command: each agent's
conversation (an ECDH) and ``d`` tag, and the heads it read (the sealing step
writes over them). A head the log already records (or the engram it last
sealed), found again with nothing that could beat it, is not opened again, and
a read-back that finds our own event byte for byte needs no decryption: a
refresh with nothing new costs a query per batch, not crypto per agent.

The helpers at the end compare a head with what the log believes of an agent
(:func:`believed_heads`, :func:`observation`): what a refresh has to record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.errors import AdapterError
from adapters.keystore import KeyStoreCorrupt
from adapters.nostr.engram import Conversation, HeadSelection, select_head
from adapters.nostr.event import Event, compute_id
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.nostr.persona_engram import open_persona_engram
from adapters.ports import KeySource, RelayGateway
from adapters.sync.gateway import FetchResult
from domain.errors import DomainError
from domain.persona import secrets_digest
from domain.slugs import PERSONA_ENGRAM_SLUG
from domain.verdict import outranks
from projections.rows import AgentRow

logger = logging.getLogger(__name__)

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

    def take(self, batch: Sequence[str], fetched: FetchResult) -> None:
        self.answered.update(fetched.answered)
        for url in fetched.failed:
            self.failed.setdefault(url, fetched.errors.get(url, "could not be read"))
        if fetched.failed or not fetched.answered:
            self.unverified.update(batch)

    @property
    def read(self) -> list[str]:
        """The relays that answered every request."""
        return sorted(self.answered - set(self.failed))


class HeadReader:
    """Reads agents' heads for one command, keeping each agent's conversation and
    ``d`` tag, and the last head read (:attr:`heads`)."""

    def __init__(
        self,
        owner: SecretKey,
        digest_key: bytes,
        keys: KeySource,
        gateway: RelayGateway,
        *,
        batch_size: int = 1000,
    ) -> None:
        self.owner = owner
        self.digest_key = digest_key
        self.keys = keys
        self.gateway = gateway
        self.batch_size = batch_size
        self._conversations: dict[str, Conversation] = {}
        self._d_tags: dict[str, str] = {}  # each agent's mem/persona d tag
        self._learned: dict[str, str] = {}  # d tags derived here, not yet kept
        self.heads: dict[str, RelayHead] = {}

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
        asked: deque[tuple[list[str], asyncio.Task[FetchResult]]] = deque()
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
            await cancel_all(fetch for _, fetch in asked)
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

    def keep_learned_d_tags(self) -> None:
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
        asked: tuple[list[str], asyncio.Task[FetchResult]],
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

    def knows(self, pubkey: str) -> bool:
        """Is the agent's conversation derived already?"""
        return pubkey in self._conversations

    def adopt(self, conversations: Mapping[str, Conversation]) -> None:
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


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel what is still running (after an error) and wait until it has stopped.

    Gathering the finished ones too retrieves their exceptions: the first error
    is the one raised, the others would otherwise be logged as never retrieved.
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _derive_conversations(owner: SecretKey, pubkeys: Sequence[str]) -> list[Conversation]:
    return [Conversation.for_owner(owner, PublicKey.from_hex(pubkey)) for pubkey in pubkeys]


def _same_head(row: AgentRow, head: RelayHead) -> bool:
    """Does the log already believe what the relays now show (head and holders aside)?"""
    if row.head_state is None:
        return head.state == "missing"  # never written, still absent: nothing new
    return (row.head_state, row.head_event_id) == (head.state, head.event_id)


def observation(row: AgentRow, head: RelayHead) -> tuple[RelayHead, list[str]] | None:
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


def _beats(event: Event, other: Event) -> bool:
    """Would ``event`` win over ``other`` in NIP-AE head selection?"""
    return outranks(event.created_at, event.id, other.created_at, other.id)


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


def believed_heads(row: AgentRow) -> tuple[RelayHead, ...]:
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
