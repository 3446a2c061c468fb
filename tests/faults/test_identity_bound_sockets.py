"""A websocket relay that binds one identity per socket (the buzz double), at the
moments the crash test once lost an engram: the switch to a socket per author while
other calls are still on the shared socket, and a per-author socket cut after its
EVENT arrived and before the relay answered; and at the moments that test the
per-author socket's AUTH before its first EVENT: a fresh challenge mid-connection
(crossing that AUTH, or after it) and auth events the relay's clock finds expired.

The rule under test: a connection closed before an answer is temporary, and the
identical event is sent again on a fresh socket within the retry policy; what the
relay stores is found by reading it back, never assumed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import pytest

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip44 import conversation_key, encrypt
from adapters.nostr.signer import KeySigner
from adapters.ports import Signer
from adapters.relay import RelayConnection, RetryPolicy
from adapters.relay.identities import IdentityBoundRelay
from domain.verdict import Outcome
from tests.support.buzz_relay import BuzzRelay

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
FAST = RetryPolicy(base_delay=0.02, max_delay=0.1, connect_attempts=2, reconnects=3)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(30):
            return await scenario()

    return asyncio.run(bounded())


def engram(agent: SecretKey, owner: SecretKey) -> Event:
    """A kind:30174 event with the NIP-44 v2 content buzz's envelope check wants."""
    content = encrypt("engram body", conversation_key(agent, owner.public_key))
    return sign_event(
        agent,
        created_at=int(time.time()),
        kind=30174,
        tags=[["d", os.urandom(32).hex()], ["p", owner.public_key.hex]],
        content=content,
    )


class Fleet:
    """An owner, its agents and one engram each; the relay reached as fleetsync reaches it."""

    def __init__(self, relay: BuzzRelay, agents: int) -> None:
        self.relay = relay
        self.owner = SecretKey.generate()
        self.agents = [SecretKey.generate() for _ in range(agents)]
        self.events = [engram(agent, self.owner) for agent in self.agents]
        signers: dict[str, Signer] = {a.public_key.hex: KeySigner(a) for a in self.agents}
        self.signers = signers.get
        self.reader = KeySigner(self.owner)
        self.transport = IdentityBoundRelay(
            relay.url, lambda url: RelayConnection(url, connect_timeout=5.0, retry=FAST)
        )

    def filters(self) -> list[dict[str, object]]:
        """The owner's read of its agents' engrams (buzz's ``#p`` rule, reference §1.6)."""
        owner = self.owner.public_key.hex
        return [
            {"kinds": [30174], "authors": [a.public_key.hex], "#p": [owner]} for a in self.agents
        ]

    async def read_as_owner(self) -> set[str]:
        """Ids the relay returns to the owner; every subscription must have ended in EOSE."""
        result = await self.transport.query(self.filters(), timeout=5.0, reader=self.reader)
        assert result.complete, result.subscriptions
        return {event.id for event in result.events}

    async def publish(self, events: list[Event]) -> dict[str, Outcome]:
        answers = await self.transport.publish_many(
            events, window=8, timeout=5.0, signers=self.signers
        )
        return {event_id: answer.outcome for event_id, answer in answers.items()}

    def heads(self) -> set[str]:
        """The ids the relay holds as heads at the events' addresses."""
        found = (self.relay.head(30174, e.pubkey, e.tags[0][1]) for e in self.events)
        return {head["id"] for head in found if head is not None}


STORED = {Outcome.ACCEPTED, Outcome.DUPLICATE}


def not_authenticated(relay: BuzzRelay) -> list[str]:
    """Ids of the EVENTs the relay refused with ``auth-required:`` (socket not AUTHed)."""
    return [eid for eid, _, message in relay.auth_refusals if message.startswith("auth-required")]


def test_each_authors_socket_authenticates_before_its_first_event_so_none_is_refused() -> None:
    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=5)
            try:
                assert await fleet.read_as_owner() == set()
                answers = await fleet.publish(fleet.events)
                assert set(answers.values()) <= STORED, answers
                assert not_authenticated(relay) == []
                agents = {a.public_key.hex for a in fleet.agents}
                agents_auth = [r for r in relay.auth_log if r.pubkey in agents]
                assert sorted(r.pubkey for r in agents_auth) == sorted(agents)
                assert all(r.accepted for r in agents_auth)
                assert fleet.heads() == {e.id for e in fleet.events}
            finally:
                await fleet.transport.close()

    run(scenario)


def test_a_relay_that_sends_no_challenge_at_connect_is_waited_for_once_not_per_socket() -> None:
    """A relay that challenges only with its first auth-required answer: the sockets
    open when that shows wait for a challenge once (the timeout), the later ones send
    their EVENT first and authenticate when refused. Waiting on every socket would
    cost the timeout per round of ``max_open`` sockets (4 rounds here)."""

    async def scenario() -> None:
        async with BuzzRelay() as relay:
            relay.faults.challenge_at_connect = False
            fleet = Fleet(relay, agents=8)
            fleet.transport = IdentityBoundRelay(
                relay.url,
                lambda url: RelayConnection(url, connect_timeout=5.0, retry=FAST),
                max_open=2,
            )
            try:
                assert await fleet.read_as_owner() == set()
                started = time.monotonic()
                answers = await fleet.transport.publish_many(
                    fleet.events, window=8, timeout=1.0, signers=fleet.signers
                )
                took = time.monotonic() - started
                assert {a.outcome for a in answers.values()} <= STORED, answers
                assert fleet.heads() == {e.id for e in fleet.events}
                assert sorted(not_authenticated(relay)) == sorted(e.id for e in fleet.events)
                assert 1.0 <= took < 2.5, took
            finally:
                await fleet.transport.close()

    run(scenario)


def test_a_publish_queued_behind_the_one_that_finds_one_identity_per_socket_goes_per_author() -> (
    None
):
    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=2)
            try:
                # As in an apply: the heads were read first, so the shared socket is the owner's.
                assert await fleet.read_as_owner() == set()
                first, second = await asyncio.gather(
                    fleet.publish(fleet.events[:1]), fleet.publish(fleet.events[1:])
                )
                assert fleet.transport.per_identity
                assert set({**first, **second}.values()) <= STORED, (first, second)
                assert fleet.heads() == {e.id for e in fleet.events}
                assert await fleet.read_as_owner() == {e.id for e in fleet.events}
            finally:
                await fleet.transport.close()

    run(scenario)


def test_a_read_on_the_shared_socket_at_the_switch_to_one_per_author_still_ends() -> None:
    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=3)
            try:
                assert await fleet.read_as_owner() == set()
                # The read goes out on the shared socket behind the EVENTs the relay is
                # about to refuse as another identity's, and the relay is slow, so the
                # switch comes before its answer: the switch must not cut it off.
                relay.faults.answer_delay = 0.05
                published, read = await asyncio.gather(
                    fleet.publish(fleet.events), fleet.read_as_owner()
                )
                assert fleet.transport.per_identity
                assert set(published.values()) <= STORED, published
                assert read <= {e.id for e in fleet.events}
                assert await fleet.read_as_owner() == {e.id for e in fleet.events}
            finally:
                await fleet.transport.close()

    run(scenario)


@pytest.mark.parametrize("cuts", [1, 2])
def test_a_per_author_socket_cut_before_the_ok_gets_the_identical_event_on_a_fresh_socket(
    cuts: int,
) -> None:
    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=1)
            try:
                assert await fleet.read_as_owner() == set()
                # The shared socket is the owner's, so the engram is refused there and
                # sent on its author's socket, authenticated as the author: cut there.
                relay.faults.cut_before_ok = cuts
                event = fleet.events[0]
                answers = await fleet.publish([event])
                assert relay.cut_events == [event.id] * cuts, "the same event, unaltered"
                assert answers == {event.id: Outcome.ACCEPTED}
                assert fleet.heads() == {event.id}
                assert await fleet.read_as_owner() == {event.id}
            finally:
                await fleet.transport.close()

    run(scenario)


def test_a_socket_cut_more_often_than_the_retry_policy_allows_leaves_the_event_unknown() -> None:
    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=1)
            try:
                assert await fleet.read_as_owner() == set()
                relay.faults.cut_before_ok = 100
                event = fleet.events[0]
                answers = await fleet.publish([event])
                # Sent, never answered: the relay may hold it; never called published.
                assert answers == {event.id: Outcome.UNKNOWN}
                assert fleet.heads() == set()
                assert len(relay.cut_events) == 1 + FAST.reconnects
            finally:
                relay.faults.cut_before_ok = 0
                await fleet.transport.close()

    run(scenario)


def test_a_fresh_challenge_mid_connection_makes_each_identity_authenticate_again() -> None:
    """NIP-42: a relay may send a new challenge at any time, and the identity is
    forgotten. The double sends one on every socket before a given frame: on an
    author's socket its EVENT (frame 2, after its AUTH) is refused as not
    authenticated, so the author answers the new challenge and resends; on the
    owner's reading socket the
    REQs asked again after its AUTH (frame 4 on) are closed, so it authenticates again."""

    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=2)
            try:
                assert await fleet.read_as_owner() == set()
                relay.faults.rechallenge_after_frames = 1
                answers = await fleet.publish(fleet.events)
                assert set(answers.values()) <= STORED, answers
                assert fleet.heads() == {e.id for e in fleet.events}
                relay.faults.rechallenge_after_frames = 3
                assert await fleet.read_as_owner() == {e.id for e in fleet.events}
                challenged = [r for r in relay.auth_log if r.accepted]
                # Each author twice (before and after the new challenge), the owner
                # once on the shared socket and twice on its reading socket.
                assert len(challenged) == 2 * 2 + 3, challenged
            finally:
                await fleet.transport.close()

    run(scenario)


@pytest.mark.parametrize("rotations", [FAST.socket_rotations, 0])
def test_an_auth_refused_because_a_new_challenge_crossed_it_blames_no_author(
    rotations: int,
) -> None:
    """The new challenge arrives while the author's first AUTH to the old one is on
    its way, on every socket: the relay refuses an answer to a challenge it replaced,
    which says nothing about the author. On a fresh socket the EVENT goes first (a
    first AUTH would be crossed again) and the AUTH its refusal asks for passes; with
    no fresh socket left it is temporary (the same event goes again next time), never
    permanent."""

    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=1)
            fleet.transport = IdentityBoundRelay(
                relay.url,
                lambda url: RelayConnection(
                    url, connect_timeout=5.0, retry=replace(FAST, socket_rotations=rotations)
                ),
            )
            try:
                assert await fleet.read_as_owner() == set()
                relay.faults.rechallenge_after_frames = 0
                event = fleet.events[0]
                answers = await fleet.transport.publish_many(
                    [event], window=8, timeout=5.0, signers=fleet.signers
                )
                crossed = [r for r in relay.auth_log if r.pubkey == event.pubkey]
                assert crossed[0].accepted is False
                if rotations:
                    assert answers[event.id].outcome is Outcome.ACCEPTED, answers
                    assert [r.accepted for r in crossed] == [False, True]
                    assert fleet.heads() == {event.id}
                else:
                    assert answers[event.id].outcome is Outcome.TEMPORARY, answers
                    assert "replaced its AUTH challenge" in answers[event.id].message
                    assert fleet.heads() == set()
            finally:
                await fleet.transport.close()

    run(scenario)


def test_an_auth_refused_as_verification_failed_is_temporary_and_names_the_clock() -> None:
    """buzz words every failed check of an AUTH event alike; fleetsync signs right, so
    the likely cause is a clock outside the 60 s window: no refusal of the author."""

    async def scenario() -> None:
        async with BuzzRelay() as relay:
            fleet = Fleet(relay, agents=1)
            try:
                assert await fleet.read_as_owner() == set()
                relay.faults.clock_skew = 120
                event = fleet.events[0]
                answers = await fleet.transport.publish_many(
                    [event], window=8, timeout=5.0, signers=fleet.signers
                )
                answer = answers[event.id]
                assert answer.outcome is Outcome.TEMPORARY, answer
                assert "auth-required: verification failed" in answer.message
                assert "clock" in answer.message
                assert event.pubkey in answer.message
                assert fleet.transport.canonical_url in answer.message
                assert not_authenticated(relay) == []  # refused at its AUTH, never sent
                relay.faults.clock_skew = 0
                assert await fleet.publish([event]) == {event.id: Outcome.ACCEPTED}
            finally:
                await fleet.transport.close()

    run(scenario)
