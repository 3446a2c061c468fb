"""The owner's own events on the relays: persona events (``kind:30175``), their NIP-09
deletions, and reading the owner's addressable events of a kind back.

Everything goes through the relay seam (:class:`adapters.relay.RelayPool`, any
transport) and is signed through the signer port as the owner. Nothing here is
reported as published on a relay's word alone: an ``OK true`` (even
``duplicate:``, which buzz also answers for an event it did not keep as the
head) is an acknowledgement; *published* means the relay returned the event as
the head of its address when read back (:attr:`OwnerEventOnRelay.held`).

- :func:`publish_persona` signs the persona's public content as NIP-AP asks
  (``created_at = max(now, head + 1)`` over what the relays hold), unless the
  relays' head already carries that very content (nothing is sent then).
- :func:`publish_persona_deletion` sends ``kind:5`` with ``["a",
  "30175:<owner>:<slug>"]`` and ``["k", "30175"]``, dated no earlier than the head
  it deletes (buzz re-dates its tombstones the same way), and reads back both the
  request and whether the relay still serves the persona.

Both are dated by the one rule every write over a head follows
(:func:`domain.clock.choose_created_at`, as an agent's engram is): a head so far in
the future that our event would be dated more than
:data:`domain.clock.MAX_AHEAD` s past our clock is a conflict
(:attr:`OwnerEventResult.conflict`), and nothing is signed or sent.
- :func:`read_owner_events` reads every event of a kind by the owner, with which
  relays returned each one and which relays could not be read (and why).
- :func:`deletion_requests` turns the owner's ``kind:5`` events read back into the
  requests :mod:`domain.deletions` settles the owner's addresses with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.nostr.event import Event, UnsignedEvent, is_valid
from adapters.nostr.persona_event import build_persona_event, select_persona_head
from adapters.relay import Answer, RelayPool
from domain.clock import HeadTooFarAhead, choose_created_at
from domain.deletions import DELETION_KIND, DeletionRequest, deletion_request
from domain.errors import InvalidPersona
from domain.persona import PERSONA_KIND, PersonaContent, parse_public_content

if TYPE_CHECKING:
    from adapters.ports import Signer


@dataclass(frozen=True, slots=True)
class OwnerRead:
    """Every event of one kind by the owner that the relays returned."""

    events: tuple[Event, ...]
    held: Mapping[str, tuple[str, ...]]  # event id -> the relays that returned it
    answered: tuple[str, ...]  # relays read in full
    unreadable: Mapping[str, str]  # relay -> why it could not be read (in full)

    def cause(self, request: DeletionRequest) -> dict[str, Any]:
        """The recorded cause of a deletion taken from ``request``, one of these events:
        the request and the relays that returned it (what the audit shows)."""
        relays = list(self.held.get(request.event_id, ()))
        return {
            "kind": "relay",
            "event_kind": DELETION_KIND,
            "event_id": request.event_id,
            "created_at": request.created_at,
            "relay": relays[0] if relays else None,
            "relays": relays,
        }


# What ``--json`` and the text say of a relay the event never went to.
NOT_SENT = "not-sent"


@dataclass(frozen=True, slots=True)
class OwnerEventOnRelay:
    """One relay's part in publishing an owner event: its :class:`Answer` (None: the
    event never went to it), and what the read-back found."""

    relay: str
    answer: Answer | None
    held: bool  # read back: the relay returns our event (as the head, for a persona)
    still_served: bool = False  # deletions: the relay still returns the persona's head

    @property
    def said(self) -> str:
        """What the relay answered, in the answer's words: its
        :class:`domain.verdict.Outcome` value, or :data:`NOT_SENT`."""
        return self.answer.outcome.value if self.answer is not None else NOT_SENT

    @property
    def message(self) -> str:
        """The relay's message with its answer (empty when it said nothing)."""
        return self.answer.message if self.answer is not None else ""


@dataclass(frozen=True, slots=True)
class OwnerEventResult:
    """How publishing one owner event went. ``event_id`` is None when nothing was sent
    (the relays' head already carries the content: ``unchanged``; or the head is too far
    in the future to write after: ``conflict``)."""

    kind: int
    slug: str
    event_id: str | None
    created_at: int | None
    relays: tuple[OwnerEventOnRelay, ...]
    unchanged: tuple[str, ...] = ()  # relays whose head already carried this content
    error: str | None = None  # the publish could not run at all (no relay reachable, ...)
    conflict: HeadTooFarAhead | None = None  # the head's date forbids the write

    @property
    def published(self) -> bool:
        """Every relay holds it (read back), or already held the same content."""
        if self.error is not None or self.conflict is not None:
            return False
        return all(r.held for r in self.relays) and bool(self.relays or self.unchanged)

    def doc(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "slug": self.slug,
            "event_id": self.event_id,
            "created_at": self.created_at,
            "published": self.published,
            "unchanged": list(self.unchanged),
            "error": self.error,
            "conflict": _conflict_doc(self.conflict),
            "relays": [
                {
                    "relay": r.relay,
                    "answer": r.said,
                    "message": r.message,
                    "read_back": r.held,
                    **({"still_served": r.still_served} if self.kind == DELETION_KIND else {}),
                }
                for r in self.relays
            ],
        }


def _conflict_doc(conflict: HeadTooFarAhead | None) -> dict[str, Any] | None:
    if conflict is None:
        return None
    return {
        "reason": "clock-poisoned",
        "head_event_id": conflict.head_event_id,
        "head_created_at": conflict.head_created_at,
        "ahead": conflict.ahead,
        "max_ahead": conflict.max_ahead,
        "detail": conflict.describe(),
    }


def _dated_over(
    before: OwnerRead, now: int | None, *, strictly_after: bool
) -> int | HeadTooFarAhead:
    """The ``created_at`` of an owner event written over the newest valid event the
    relays returned (:func:`domain.clock.choose_created_at`), or the conflict."""
    newest = _newest(before.events)
    return choose_created_at(
        int(time.time()) if now is None else now,
        newest.created_at if newest is not None else None,
        head_event_id=newest.id if newest is not None else None,
        strictly_after=strictly_after,
    )


def _newest(events: Sequence[Event]) -> Event | None:
    """The newest valid event of ``events`` (ties: the lowest id, as NIP-01 replaces),
    the head a write over them has to outrank.

    Only events whose id and signature verify: a relay serving a forgery in the
    owner's name, dated far ahead, would otherwise turn every save into a conflict,
    and no honest relay keeps a forgery as the head our write must outrank.
    """
    return min(
        (e for e in events if is_valid(e)), key=lambda e: (-e.created_at, e.id), default=None
    )


def _filter(kind: int, owner: str, d_tag: str | None = None) -> dict[str, Any]:
    filter_: dict[str, Any] = {"kinds": [kind], "authors": [owner]}
    if d_tag is not None:
        filter_["#d"] = [d_tag]
    return filter_


async def read_owner_events(
    pool: RelayPool, owner: Signer, kind: int, *, timeout: float, d_tag: str | None = None
) -> OwnerRead:
    """Every ``kind`` event by the owner (of one ``d`` tag when given), read as the owner."""
    result = await pool.query(
        [_filter(kind, owner.public_key.hex, d_tag)], timeout=timeout, reader=owner
    )
    held: dict[str, list[str]] = {}
    for url, answer in result.per_relay.items():
        for event in answer.events:
            held.setdefault(event.id, []).append(url)
    unreadable = {url: str(exc) or type(exc).__name__ for url, exc in result.failed.items()}
    for url in result.partial:
        closed = [s.closed for s in result.per_relay[url].subscriptions if s.closed]
        unreadable[url] = (
            f"closed the request: {closed[0]}" if closed else "did not finish answering in time"
        )
    return OwnerRead(
        events=tuple(e for e in result.events if e.pubkey == owner.public_key.hex),
        held={event_id: tuple(urls) for event_id, urls in held.items()},
        answered=tuple(result.answered),
        unreadable=unreadable,
    )


def deletion_requests(events: Sequence[Event], owner: str, kind: int) -> list[DeletionRequest]:
    """The NIP-09 requests among ``events`` against ``owner``'s events of ``kind``: only
    the owner's, with a valid id and signature (:func:`domain.deletions.deletion_request`
    says what each one names)."""
    requests: list[DeletionRequest] = []
    for event in events:
        if event.kind != DELETION_KIND or event.pubkey != owner:
            continue
        if not is_valid(event):
            continue
        request = deletion_request(
            event.id, event.pubkey, event.created_at, event.tags, owner=owner, kind=kind
        )
        if request is not None:
            requests.append(request)
    return requests


def _persona_head_per_relay(read: OwnerRead, owner: Signer, slug: str) -> dict[str, Event | None]:
    """Each relay read's head for persona ``slug`` (None: it holds no valid one)."""
    heads: dict[str, Event | None] = {}
    for url in read.answered:
        mine = [e for e in read.events if url in read.held.get(e.id, ())]
        selection = select_persona_head(mine, owner=owner.public_key, slug=slug)
        head = selection.head.event if selection.head is not None else None
        if selection.unusable_head is not None:
            head = selection.unusable_head.event
        heads[url] = head
    return heads


async def publish_persona(
    pool: RelayPool,
    owner: Signer,
    slug: str,
    content: PersonaContent,
    *,
    timeout: float,
    now: int | None = None,
) -> OwnerEventResult:
    """Publish persona ``slug``'s public content as the owner; confirmed by read-back."""
    before = await read_owner_events(pool, owner, PERSONA_KIND, timeout=timeout, d_tag=slug)
    heads = _persona_head_per_relay(before, owner, slug)
    body = content.public_json()
    unchanged = tuple(
        url for url, head in heads.items() if head is not None and _same(head, body, content)
    )
    targets = [url for url in pool.urls if url not in unchanged]
    if not targets:
        return OwnerEventResult(PERSONA_KIND, slug, None, None, (), unchanged)
    created_at = _dated_over(before, now, strictly_after=True)
    if isinstance(created_at, HeadTooFarAhead):
        return OwnerEventResult(PERSONA_KIND, slug, None, None, (), unchanged, conflict=created_at)
    event = build_persona_event(owner, slug, content, created_at)
    return await _send_and_read_back(pool, owner, event, slug, targets, unchanged, timeout=timeout)


def _same(head: Event, body: str, content: PersonaContent) -> bool:
    """Does a relay's head carry ``content`` (byte for byte, or the same digest)?"""
    if head.content == body:
        return True
    try:
        return parse_public_content(head.content).digest() == content.digest()
    except InvalidPersona:  # an unusable head is not the content: publish over it
        return False


async def publish_persona_deletion(
    pool: RelayPool, owner: Signer, slug: str, *, timeout: float, now: int | None = None
) -> OwnerEventResult:
    """Send the NIP-09 deletion of persona ``slug``; read back the request, and whether
    each relay still serves the persona (honouring a deletion is the relay's policy)."""
    before = await read_owner_events(pool, owner, PERSONA_KIND, timeout=timeout, d_tag=slug)
    created_at = _dated_over(before, now, strictly_after=False)
    if isinstance(created_at, HeadTooFarAhead):
        return OwnerEventResult(DELETION_KIND, slug, None, None, (), conflict=created_at)
    owner_hex = owner.public_key.hex
    tags = (("a", f"{PERSONA_KIND}:{owner_hex}:{slug}"), ("k", str(PERSONA_KIND)))
    deletion = owner.sign(UnsignedEvent(created_at, DELETION_KIND, tags, ""))
    return await _send_and_read_back(pool, owner, deletion, slug, pool.urls, (), timeout=timeout)


async def _send_and_read_back(
    pool: RelayPool,
    owner: Signer,
    event: Event,
    slug: str,
    targets: Sequence[str],
    unchanged: tuple[str, ...],
    *,
    timeout: float,
) -> OwnerEventResult:
    owner_hex = owner.public_key.hex

    def signers(pubkey: str) -> Signer | None:
        return owner if pubkey == owner_hex else None

    only = {event.id: list(targets)} if set(targets) != set(pool.urls) else None
    results = await pool.publish_many([event], timeout=timeout, signers=signers, only=only)
    # The read-back: the event by id, and (for a persona) the head of its address.
    is_deletion = event.kind == DELETION_KIND
    by_id, heads = await asyncio.gather(
        pool.query([{"ids": [event.id]}], timeout=timeout, reader=owner),
        read_owner_events(pool, owner, PERSONA_KIND, timeout=timeout, d_tag=slug),
    )
    head_of = _persona_head_per_relay(heads, owner, slug)
    on_relays: list[OwnerEventOnRelay] = []
    for url in targets:
        result = results.get(url)
        answer = result.answers.get(event.id) if result is not None else None
        returned = url in by_id.per_relay and any(
            e.id == event.id for e in by_id.per_relay[url].events
        )
        head = head_of.get(url)
        if is_deletion:
            held = returned
            still = head is not None and head.created_at <= event.created_at
        else:
            held = returned and head is not None and head.id == event.id
            still = False
        on_relays.append(OwnerEventOnRelay(url, answer, held, still))
    return OwnerEventResult(
        event.kind, slug, event.id, event.created_at, tuple(on_relays), unchanged
    )
