"""The relay client against a fake relay that misbehaves in one way per test.

Two rules hold throughout: nothing is reported stored that the relay did not
acknowledge, and a resend is the exact frame sent the first time (the client never
alters or re-signs an event).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from adapters.nostr.event import Event
from adapters.nostr.keys import SecretKey
from adapters.nostr.signer import KeySigner
from adapters.ports import SignerLookup, Transport
from adapters.relay import (
    Answer,
    Outcome,
    PermanentRelayError,
    PublishResult,
    RelayConnection,
    RelayPool,
    RetryPolicy,
    TemporaryRelayError,
)
from adapters.relay.bridge import BridgeTransport
from adapters.relay.messages import event_frame
from adapters.relay.traffic import Traffic
from adapters.relay.urls import bridge_twin
from tests.faults.fake_relay import (
    Behaviour,
    DropAfter,
    DuplicateFalse,
    EmptyIdRefusal,
    FakeConnection,
    FakeRelay,
    Filters,
    Garbage,
    NeverAnswer,
    RateLimit,
    Refuse,
    RequireAuth,
    ThrottleAfterRefusal,
)
from tests.faults.samples import batch, engram_like
from tests.support.relays import free_port

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
# Short delays so retries and reconnects take milliseconds, not seconds.
FAST = RetryPolicy(
    base_delay=0.02, max_delay=0.1, connect_attempts=2, reconnects=3, max_send_gap=0.1
)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(50):
            return await scenario()

    return asyncio.run(bounded())


async def publish(
    relay: FakeRelay,
    events: list[Event],
    *,
    window: int = 8,
    timeout: float = 5.0,
    signers: SignerLookup | None = None,
    retry: RetryPolicy = FAST,
) -> dict[str, Answer]:
    async with RelayConnection(relay.url, retry=retry) as conn:
        return await conn.publish_many(events, window=window, timeout=timeout, signers=signers)


def assert_resends_are_identical(relay: FakeRelay, events: list[Event]) -> None:
    frames = {event.id: event_frame(event) for event in events}
    for received in relay.frames("EVENT"):
        assert received.text == frames[received.event_id]


def assert_only_acknowledged_are_stored(relay: FakeRelay, results: dict[str, Answer]) -> None:
    for event_id, result in results.items():
        if result.stored:
            assert event_id in relay.stored, f"{event_id} reported stored but the relay lacks it"


# -- answers ---------------------------------------------------------------------------


def test_a_well_behaved_relay_accepts_every_event_of_a_batch() -> None:
    _, _, events = batch(40, agents=4)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay() as relay:
            return relay, await publish(relay, events)

    relay, results = run(scenario)
    assert [r.outcome for r in results.values()] == [Outcome.ACCEPTED] * 40
    assert list(results) == [e.id for e in events]
    assert all(r.attempts == 1 for r in results.values())
    assert set(relay.stored) == {e.id for e in events}
    assert_resends_are_identical(relay, events)


class HoldAnswers(Behaviour):
    """Answers every EVENT after ``delay`` from a task of its own, tracking the backlog."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.outstanding = 0
        self.most_outstanding = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)

        async def answer_later() -> None:
            await asyncio.sleep(self.delay)
            self.outstanding -= 1
            await conn.store_and_ok(event)

        task = asyncio.create_task(answer_later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def test_events_are_pipelined_but_never_more_than_the_window_await_an_answer() -> None:
    _, _, events = batch(30)
    behaviour = HoldAnswers(delay=0.05)

    async def scenario() -> tuple[dict[str, Answer], float]:
        async with FakeRelay(behaviour) as relay:
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await publish(relay, events, window=6)
            return results, loop.time() - started

    results, elapsed = run(scenario)
    assert all(r.outcome is Outcome.ACCEPTED for r in results.values())
    assert behaviour.most_outstanding == 6
    # One round trip per event would take 30 x 50 ms; six at a time take a sixth of it.
    assert elapsed < 30 * 0.05 / 2


def test_duplicate_with_false_counts_as_success() -> None:
    _, _, events = batch(5)

    async def scenario() -> dict[str, Answer]:
        async with FakeRelay(DuplicateFalse(everything=True)) as relay:
            return await publish(relay, events)

    results = run(scenario)
    for result in results.values():
        assert result.outcome is Outcome.DUPLICATE
        assert result.stored
        assert (result.prefix, result.message, result.attempts) == (
            "duplicate",
            "duplicate: exists",
            1,
        )


def test_publishing_the_same_events_again_is_duplicate_on_a_nostr_relay_like_relay() -> None:
    _, _, events = batch(6)

    async def scenario() -> tuple[dict[str, Answer], dict[str, Answer]]:
        async with FakeRelay(DuplicateFalse()) as relay:
            first = await publish(relay, events)
            second = await publish(relay, events)
            return first, second

    first, second = run(scenario)
    assert {r.outcome for r in first.values()} == {Outcome.ACCEPTED}
    assert {r.outcome for r in second.values()} == {Outcome.DUPLICATE}


def test_the_same_event_twice_in_one_batch_is_sent_once() -> None:
    _, _, events = batch(3)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay() as relay:
            return relay, await publish(relay, [*events, events[0], events[1]])

    relay, results = run(scenario)
    assert len(results) == 3
    assert sorted(relay.event_ids()) == sorted(e.id for e in events)


@pytest.mark.parametrize(
    "message",
    [
        "invalid: bad signature",
        "blocked: you are banned",
        "restricted: not allowed to write",
        "pow: difficulty 26 is less than 30",
        "mute: no one was listening",
        "whatever: an unknown prefix",
        "",
        "no prefix at all",
    ],
)
def test_permanent_refusals_are_reported_and_not_retried(message: str) -> None:
    _, _, events = batch(3)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(Refuse(message)) as relay:
            return relay, await publish(relay, events)

    relay, results = run(scenario)
    for result in results.values():
        assert result.outcome is Outcome.PERMANENT
        assert not result.stored
        assert result.attempts == 1
        assert result.message == message
    assert len(relay.event_ids()) == 3


def test_error_answers_are_retried_a_bounded_number_of_times_then_temporary() -> None:
    _, _, events = batch(2)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(Refuse("error: could not connect to the database")) as relay:
            return relay, await publish(relay, events)

    relay, results = run(scenario)
    for result in results.values():
        assert result.outcome is Outcome.TEMPORARY
        assert result.prefix == "error"
        assert result.attempts == FAST.error_retries + 1
    assert Counter(relay.event_ids()) == {e.id: FAST.error_retries + 1 for e in events}
    assert_resends_are_identical(relay, events)


def test_no_answer_within_the_timeout_is_unknown_not_failed() -> None:
    _, _, events = batch(6)
    silent = events[2].id

    async def scenario() -> tuple[dict[str, Answer], float]:
        async with FakeRelay(NeverAnswer({silent})) as relay:
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await publish(relay, events, timeout=0.5)
            return results, loop.time() - started

    results, elapsed = run(scenario)
    assert results[silent].outcome is Outcome.UNKNOWN
    assert not results[silent].stored
    assert results[silent].attempts == 1
    assert (results[silent].prefix, results[silent].message) == ("", "")
    others = [r for event_id, r in results.items() if event_id != silent]
    assert all(r.outcome is Outcome.ACCEPTED for r in others)
    assert 0.5 <= elapsed < 3


def test_a_relay_that_never_answers_leaves_every_event_unknown() -> None:
    _, _, events = batch(4)

    async def scenario() -> dict[str, Answer]:
        async with FakeRelay(NeverAnswer()) as relay:
            return await publish(relay, events, timeout=0.3)

    results = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.UNKNOWN}


def test_rate_limited_events_are_retried_at_a_slower_pace() -> None:
    _, _, events = batch(10)
    interval = 0.3

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(RateLimit(burst=3, interval=interval)) as relay:
            retry = RetryPolicy(base_delay=0.05, max_delay=0.5, rate_limited_retries=8)
            return relay, await publish(relay, events, window=8, retry=retry)

    relay, results = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert max(r.attempts for r in results.values()) > 1
    frames = relay.frames("EVENT")
    gaps = [b.at - a.at for a, b in itertools.pairwise(frames)]
    # The burst went out back to back; once told to slow down the client spaced its
    # EVENTs (resends included) at least as far apart as the relay wants.
    assert min(gaps[:2]) < interval / 3
    assert statistics.median(gaps[-5:]) >= interval
    assert_resends_are_identical(relay, events)


def test_rate_limited_retries_are_bounded_and_end_temporary() -> None:
    _, _, events = batch(2)

    async def scenario() -> dict[str, Answer]:
        async with FakeRelay(Refuse("rate-limited: slow down")) as relay:
            retry = RetryPolicy(
                base_delay=0.01, max_delay=0.02, rate_limited_retries=2, max_send_gap=0.05
            )
            async with RelayConnection(relay.url, retry=retry) as conn:
                return await conn.publish_many(events, window=2, timeout=5)

    results = run(scenario)
    assert {(r.outcome, r.attempts) for r in results.values()} == {(Outcome.TEMPORARY, 3)}


# -- NIP-42 ----------------------------------------------------------------------------


def test_auth_required_triggers_one_nip42_auth_and_one_resend() -> None:
    keys, _, events = batch(5)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(RequireAuth()) as relay:
            results = await publish(
                relay, events, signers={keys[0].public_key.hex: KeySigner(keys[0])}.get
            )
            return relay, results

    relay, results = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert {r.attempts for r in results.values()} == {2}
    auths = relay.frames("AUTH")
    assert len(auths) == 1
    assert auths[0].data[1]["pubkey"] == keys[0].public_key.hex
    assert Counter(relay.event_ids()) == {e.id: 2 for e in events}
    assert_resends_are_identical(relay, events)


def test_auth_is_done_once_per_author() -> None:
    keys, _, events = batch(6, agents=2)
    by_pubkey = {key.public_key.hex: KeySigner(key) for key in keys}

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(RequireAuth()) as relay:
            return relay, await publish(relay, events, signers=by_pubkey.get)

    relay, results = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert sorted(a.data[1]["pubkey"] for a in relay.frames("AUTH")) == sorted(by_pubkey)


def test_auth_required_without_the_authors_key_is_reported_not_retried() -> None:
    _, _, events = batch(2)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(RequireAuth()) as relay:
            return relay, await publish(relay, events, signers=lambda _: None)

    relay, results = run(scenario)
    assert {(r.outcome, r.prefix, r.attempts) for r in results.values()} == {
        (Outcome.PERMANENT, "auth-required", 1)
    }
    assert relay.frames("AUTH") == []


def test_a_refused_auth_leaves_the_event_auth_required_without_a_resend() -> None:
    keys, _, events = batch(3)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(RequireAuth(accept_auth=False)) as relay:
            return relay, await publish(relay, events, signers=lambda _: KeySigner(keys[0]))

    relay, results = run(scenario)
    assert {(r.outcome, r.prefix, r.attempts) for r in results.values()} == {
        (Outcome.PERMANENT, "auth-required", 1)
    }
    assert len(relay.frames("AUTH")) == 1
    assert all("AUTH refused" in r.message for r in results.values())


class SilentOnAuth(RequireAuth):
    """Asks for AUTH, then never answers it."""

    async def on_auth(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        return


def test_an_auth_the_relay_never_answers_leaves_the_events_temporary_not_refused() -> None:
    """The relay refused nothing: the events never sent with an AUTH go again next time."""
    keys, _, events = batch(2)

    async def scenario() -> dict[str, Answer]:
        async with FakeRelay(SilentOnAuth()) as relay:
            return await publish(
                relay, events, timeout=0.5, signers={keys[0].public_key.hex: KeySigner(keys[0])}.get
            )

    results = run(scenario)
    assert {(r.outcome, r.message) for r in results.values()} == {
        (Outcome.TEMPORARY, "auth-required: no answer to our AUTH")
    }


# -- connections -------------------------------------------------------------------------


def test_a_relay_that_drops_the_connection_mid_batch_gets_only_the_unanswered_events_again() -> (
    None
):
    _, _, events = batch(20)
    behaviour = DropAfter(answered=5)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(behaviour) as relay:
            return relay, await publish(relay, events, window=8)

    relay, results = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert relay.connections == 2
    answered = set(behaviour.answered_ids)
    assert len(answered) == 5
    second = relay.event_ids(connection=2)
    assert len(second) == len(set(second))
    assert set(second) == {e.id for e in events} - answered
    assert all(results[i].attempts == 1 for i in answered)
    assert_resends_are_identical(relay, events)


class DropEveryConnection(Behaviour):
    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        await conn.drop()


def test_a_relay_that_keeps_dropping_leaves_sent_events_unknown_and_unsent_ones_temporary() -> None:
    _, _, events = batch(12)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(DropEveryConnection()) as relay:
            return relay, await publish(relay, events, window=2)

    relay, results = run(scenario)
    assert relay.connections == FAST.reconnects + 1
    for result in results.values():
        assert not result.stored
        expected = Outcome.UNKNOWN if result.attempts else Outcome.TEMPORARY
        assert result.outcome is expected
    assert any(r.attempts == 0 for r in results.values())


def test_an_unreachable_relay_is_a_temporary_error_with_the_cause_kept() -> None:
    _, _, events = batch(1)
    url = f"ws://127.0.0.1:{free_port()}"

    async def scenario() -> None:
        async with RelayConnection(url, retry=FAST) as conn:
            await conn.publish_many(events)

    with pytest.raises(TemporaryRelayError) as caught:
        run(scenario)
    assert isinstance(caught.value.__cause__, aiohttp.ClientError | OSError)
    assert caught.value.url == url


def test_a_url_the_relay_does_not_serve_is_a_permanent_error() -> None:
    async def scenario() -> None:
        async with FakeRelay() as relay, RelayConnection(relay.url + "/nope") as conn:
            await conn.query([{"kinds": [1]}], timeout=2)

    with pytest.raises(PermanentRelayError, match="404"):
        run(scenario)


class RefusingHandshakes(FakeRelay):
    """A relay that answers the websocket handshakes ``refused`` picks (1-based)
    with ``503 Service Unavailable`` and ``Retry-After``; the others it serves."""

    def __init__(
        self, behaviour: Behaviour, refused: Callable[[int], bool], retry_after: str
    ) -> None:
        super().__init__(behaviour)
        self.refused = refused
        self.retry_after = retry_after
        self.handshakes: list[float] = []  # loop time of each handshake request

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        self.handshakes.append(asyncio.get_running_loop().time())
        if self.refused(len(self.handshakes)):
            raise web.HTTPServiceUnavailable(headers={"Retry-After": self.retry_after})
        return await super()._handle(request)


def test_a_relay_that_asks_for_longer_than_the_command_has_is_not_asked_again() -> None:
    retry = RetryPolicy(base_delay=0.02, max_delay=0.1, connect_attempts=3)

    async def scenario() -> tuple[RefusingHandshakes, float]:
        relay = RefusingHandshakes(Behaviour(), lambda _: True, retry_after="30")
        async with relay, RelayConnection(relay.url, connect_timeout=3.0, retry=retry) as conn:
            start = asyncio.get_running_loop().time()
            with pytest.raises(TemporaryRelayError, match="503") as caught:
                await conn.connect()
            assert caught.value.delay == 30.0
            return relay, asyncio.get_running_loop().time() - start

    relay, elapsed = run(scenario)
    assert len(relay.handshakes) == 1, "asked again before the relay said it would answer"
    assert elapsed < 1.0


def test_a_relay_that_asks_to_wait_is_asked_again_no_sooner_than_it_said() -> None:
    _, _, events = batch(3)
    retry = RetryPolicy(base_delay=0.02, max_delay=0.1, connect_attempts=3)

    async def scenario() -> tuple[RefusingHandshakes, dict[str, Answer]]:
        relay = RefusingHandshakes(Behaviour(), lambda n: n == 1, retry_after="1")
        async with relay, RelayConnection(relay.url, connect_timeout=5.0, retry=retry) as conn:
            return relay, await conn.publish_many(events, timeout=5.0)

    relay, results = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    first, second = relay.handshakes
    assert second - first >= 1.0


def test_a_lost_connection_is_not_restored_against_the_relays_word_within_the_timeout() -> None:
    _, _, events = batch(6)

    async def scenario() -> tuple[RefusingHandshakes, dict[str, Answer]]:
        # The first socket answers two EVENTs and dies; every later handshake is
        # refused with Retry-After: 30, past the 2 s the run has to reconnect.
        relay = RefusingHandshakes(DropAfter(2), lambda n: n > 1, retry_after="30")
        async with relay:
            return relay, await publish(relay, events, window=1, timeout=2.0)

    relay, results = run(scenario)
    assert len(relay.handshakes) == 2, "one reconnect, then the relay's word is taken"
    assert [r.outcome for r in results.values()].count(Outcome.ACCEPTED) == 2
    assert Outcome.ACCEPTED not in {r.outcome for r in list(results.values())[2:]}


# -- garbage and anonymous answers -------------------------------------------------------


def test_garbage_frames_do_not_break_the_reader() -> None:
    _, _, events = batch(5)

    async def scenario() -> tuple[dict[str, Answer], Any]:
        async with FakeRelay(Garbage()) as relay:
            async with RelayConnection(relay.url, retry=FAST) as conn:
                results = await conn.publish_many(events, window=3, timeout=5)
                found = await conn.query([{"kinds": [30174]}], timeout=5)
            return results, found

    results, found = run(scenario)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert {e.id for e in found.events} == {e.id for e in events}
    assert found.complete
    assert found.subscriptions[0].skipped == 2


def test_an_ok_with_an_empty_id_is_attributed_when_only_one_event_can_be_its() -> None:
    _, _, events = batch(6)
    bad = events[3].id

    async def scenario() -> dict[str, Answer]:
        async with FakeRelay(EmptyIdRefusal({bad})) as relay:
            return await publish(relay, events, window=6)

    results = run(scenario)
    assert results[bad].outcome is Outcome.PERMANENT
    assert results[bad].prefix == "invalid"
    assert all(results[e.id].stored for e in events if e.id != bad)


def test_identical_empty_id_refusals_are_attributed_once_the_rest_is_answered() -> None:
    _, _, events = batch(8)
    bad = {events[1].id, events[6].id}

    async def scenario() -> dict[str, Answer]:
        async with FakeRelay(EmptyIdRefusal(bad)) as relay:
            return await publish(relay, events, window=8)

    results = run(scenario)
    assert {results[i].outcome for i in bad} == {Outcome.PERMANENT}
    assert all(r.stored for i, r in results.items() if i not in bad)


class Chaos(Behaviour):
    """Per EVENT, at random: accept, duplicate-false, refuse, stay silent, or drop."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.acknowledged: set[str] = set()

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        roll = self.random.random()
        event_id = str(event["id"])
        if roll < 0.05:
            await conn.drop()
        elif roll < 0.15:
            return
        elif roll < 0.25:
            await conn.ok(event_id, False, "invalid: no")
        elif roll < 0.35:
            await conn.ok(event_id, False, "rate-limited: easy")
        else:
            conn.relay.stored[event_id] = event
            self.acknowledged.add(event_id)
            await conn.ok(event_id, roll < 0.9, "" if roll < 0.6 else "duplicate: exists")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nothing_is_marked_stored_that_the_relay_did_not_acknowledge(seed: int) -> None:
    _, _, events = batch(40, agents=3)
    chaos = Chaos(seed)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer]]:
        async with FakeRelay(chaos) as relay:
            return relay, await publish(relay, events, window=8, timeout=0.4)

    relay, results = run(scenario)
    assert set(results) == {e.id for e in events}
    for event_id, result in results.items():
        if result.stored:
            assert event_id in chaos.acknowledged
    assert_only_acknowledged_are_stored(relay, results)
    assert_resends_are_identical(relay, events)


# -- queries ----------------------------------------------------------------------------


def test_a_query_keeps_the_results_of_several_subscriptions_apart() -> None:
    keys, owner, events = batch(30, agents=3)

    async def scenario() -> Any:
        async with FakeRelay() as relay, RelayConnection(relay.url) as conn:
            await conn.publish_many(events)
            filters = [
                {"kinds": [30174], "authors": [k.public_key.hex], "#p": [owner]} for k in keys
            ]
            return await conn.query(filters, timeout=5)

    found = run(scenario)
    assert found.complete
    assert [s.count for s in found.subscriptions] == [10, 10, 10]
    assert {e.id for e in found.events} == {e.id for e in events}


def test_a_query_with_a_filter_of_five_hundred_authors_works() -> None:
    agents = [SecretKey.generate() for _ in range(500)]
    owner = SecretKey.generate().public_key.hex
    events = [engram_like(agent, owner, 0) for agent in agents]

    async def scenario() -> Any:
        async with FakeRelay() as relay, RelayConnection(relay.url) as conn:
            await conn.publish_many(events)
            authors = [a.public_key.hex for a in agents]
            return await conn.query(
                [{"kinds": [30174], "authors": authors, "#p": [owner]}], timeout=10
            )

    found = run(scenario)
    assert found.complete
    assert len(found.events) == 500


class ClosedOnReq(Behaviour):
    async def on_req(self, conn: FakeConnection, sub_id: str, filters: Filters) -> None:
        await conn.send(["CLOSED", sub_id, "auth-required: members only"])


def test_a_subscription_the_relay_closes_is_flagged_not_complete() -> None:
    async def scenario() -> Any:
        async with FakeRelay(ClosedOnReq()) as relay, RelayConnection(relay.url) as conn:
            return await conn.query([{"kinds": [1]}], timeout=5)

    found = run(scenario)
    assert not found.complete
    assert found.subscriptions[0].closed == "auth-required: members only"
    assert found.events == ()


class NoEose(Behaviour):
    async def on_req(self, conn: FakeConnection, sub_id: str, filters: Filters) -> None:
        for event in conn.relay.matching(filters):
            await conn.send(["EVENT", sub_id, event])


def test_a_query_that_gets_no_eose_in_time_returns_what_it_got_flagged_incomplete() -> None:
    _, _, events = batch(3)

    async def scenario() -> Any:
        async with FakeRelay(NoEose()) as relay, RelayConnection(relay.url) as conn:
            await conn.publish_many(events)
            return await conn.query([{"kinds": [30174]}], timeout=0.5)

    found = run(scenario)
    assert not found.complete
    assert len(found.events) == 3


class DropFirstReq(Behaviour):
    async def on_req(self, conn: FakeConnection, sub_id: str, filters: Filters) -> None:
        if conn.number == 1:
            await conn.drop()
            return
        await conn.serve_stored(sub_id, filters)


def test_a_query_is_asked_again_after_the_connection_drops() -> None:
    _, _, events = batch(3)

    async def scenario() -> Any:
        async with FakeRelay(DropFirstReq()) as relay:
            relay.stored.update({e.id: e.to_dict() for e in events})
            async with RelayConnection(relay.url, retry=FAST) as conn:
                return await conn.query([{"kinds": [30174]}], timeout=5)

    found = run(scenario)
    assert found.complete
    assert len(found.events) == 3


# -- the pool --------------------------------------------------------------------------


def test_the_pool_publishes_to_every_relay_and_reports_each_one() -> None:
    _, _, events = batch(4)
    unreachable = f"ws://127.0.0.1:{free_port()}"

    async def scenario() -> Any:
        async with FakeRelay() as good, FakeRelay(Refuse("blocked: no")) as strict:
            urls = [
                good.url,
                good.url + "/",
                strict.url.upper().replace("WS://", "ws://"),
                unreachable,
            ]
            async with RelayPool(urls, retry=FAST) as pool:
                assert len(pool.urls) == 3
                results = await pool.publish_many(events)
                found = await pool.query([{"kinds": [30174]}], timeout=3)
            return good.url, strict.url, results, found

    good_url, strict_url, results, found = run(scenario)
    assert set(results) == {good_url, strict_url, unreachable}
    assert {r.outcome for r in results[good_url].answers.values()} == {Outcome.ACCEPTED}
    assert {r.outcome for r in results[strict_url].answers.values()} == {Outcome.PERMANENT}
    assert isinstance(results[unreachable].error, TemporaryRelayError)
    assert {(r.outcome, r.attempts) for r in results[unreachable].answers.values()} == {
        (Outcome.TEMPORARY, 0)
    }
    assert {e.id for e in found.events} == {e.id for e in events}
    assert set(found.answered) == {good_url, strict_url}
    assert set(found.failed) == {unreachable}


def test_the_pool_reaches_relays_through_the_transports_it_is_given_and_reports_canonically() -> (
    None
):
    _, _, events = batch(3)
    opened: list[str] = []

    async def scenario() -> tuple[str, str, dict[str, PublishResult]]:
        async with FakeRelay() as relay:
            written = relay.url.replace("ws://", "WS://") + "/"

            def transport_for(url: str) -> Transport:
                opened.append(url)
                return RelayConnection(url, retry=FAST)

            async with RelayPool([written], transport_for=transport_for) as pool:
                return relay.url, written, await pool.publish_many(events)

    canonical, written, results = run(scenario)
    assert opened == [written], "the transport is opened on the form written"
    assert list(results) == [canonical]
    answers = results[canonical].answers
    assert {(a.relay, a.outcome) for a in answers.values()} == {(canonical, Outcome.ACCEPTED)}
    assert {a.event_id for a in answers.values()} == {e.id for e in events}


class _BridgeNotThere:
    """The bridge of a relay listed by both its URLs, unreachable (its requests go to a
    port nobody listens on): the one fault this stands in for."""

    def __init__(self, twin: str) -> None:
        self.url = self.canonical_url = twin
        self._dead = BridgeTransport(f"http://127.0.0.1:{free_port()}", connect_timeout=2)

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int,
        timeout: float,
        signers: SignerLookup | None = None,
    ) -> dict[str, Answer]:
        return await self._dead.publish_many(
            events, window=window, timeout=timeout, signers=signers
        )

    async def query(self, filters: Any, *, timeout: float, reader: Any = None) -> Any:
        return await self._dead.query(filters, timeout=timeout, reader=reader)

    def traffic(self) -> Traffic:
        return self._dead.traffic()

    async def close(self) -> None:
        await self._dead.close()


def test_a_relay_listed_by_both_urls_is_written_over_the_websocket_when_its_bridge_is_down() -> (
    None
):
    keys, _, events = batch(3)
    signers = {k.public_key.hex: KeySigner(k) for k in keys}

    async def scenario() -> tuple[str, str, dict[str, PublishResult], int]:
        async with FakeRelay() as relay:
            twin = bridge_twin(relay.url)
            assert twin is not None

            def transport_for(url: str) -> Transport:
                if url == twin:
                    return _BridgeNotThere(twin)
                return RelayConnection(url, retry=FAST)

            async with RelayPool([relay.url, twin], transport_for=transport_for) as pool:
                assert pool.bridged == {relay.url: twin}
                results = await pool.publish_many(events, signers=signers.get)
            return relay.url, twin, results, len(relay.frames("EVENT"))

    ws_url, twin, results, sent = run(scenario)
    assert results[twin].error is not None
    assert {a.outcome for a in results[ws_url].answers.values()} == {Outcome.ACCEPTED}
    assert {a.relay for a in results[ws_url].answers.values()} == {ws_url}
    assert sent == len(events)


def test_a_socket_throttled_after_an_anonymous_refusal_is_replaced_by_a_fresh_one() -> None:
    _, _, events = batch(40)
    bad = {events[2].id, events[20].id}
    behaviour = ThrottleAfterRefusal(bad, throttle=0.5)

    async def scenario() -> tuple[FakeRelay, dict[str, Answer], float]:
        async with FakeRelay(behaviour) as relay:
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await publish(relay, events, window=16)
            return relay, results, loop.time() - started

    relay, results, elapsed = run(scenario)
    assert {results[i].outcome for i in bad} == {Outcome.PERMANENT}
    # Events resent on the fresh socket may come back as duplicates: stored either way.
    assert all(r.stored for i, r in results.items() if i not in bad)
    assert_only_acknowledged_are_stored(relay, results)
    assert_resends_are_identical(relay, events)
    # Staying on the throttled socket would cost 0.5 s (then 1 s) for each later event.
    assert elapsed < 5
    assert relay.connections >= 2
