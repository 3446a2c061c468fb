"""The relay client against the two real relays (nostr-relay and rust-nostr's LocalRelay).

What RELAYS.md measured with a bare socket is checked here through the client:
pipelined batches land and read back, duplicates count as stored whichever boolean
the relay picks, nostr-relay hands back older addressable versions, rust-nostr
answers ``error: unknown`` for them, bad signatures come back with an empty id,
and the stock rate limit of 60 EVENTs a minute is honoured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from adapters.nostr.keys import SecretKey
from adapters.relay import Outcome, QueryResult, RelayConnection, RelayPool, RetryPolicy
from tests.faults.samples import batch, engram_like, forged
from tests.support.relays import start_rust_relay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]], limit: float = 100) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(limit):
            return await scenario()

    return asyncio.run(bounded())


def test_a_pipelined_batch_is_accepted_and_read_back(any_relay_url: str) -> None:
    keys, owner, events = batch(300, agents=30)

    async def scenario() -> tuple[dict[str, Outcome], QueryResult]:
        async with RelayConnection(any_relay_url) as conn:
            results = await conn.publish_many(events, window=64, timeout=20)
            authors = [k.public_key.hex for k in keys]
            found = await conn.query(
                [{"kinds": [30174], "authors": authors, "#p": [owner]}], timeout=20
            )
        return {i: r.outcome for i, r in results.items()}, found

    outcomes, found = run(scenario)
    assert set(outcomes.values()) == {Outcome.ACCEPTED}
    assert found.complete
    assert {e.id: e for e in found.events} == {e.id: e for e in events}


def test_publishing_the_same_events_again_counts_as_stored_on_either_relay(
    any_relay_url: str,
) -> None:
    _, _, events = batch(20)

    async def scenario() -> list[tuple[Outcome, str, int]]:
        async with RelayConnection(any_relay_url) as conn:
            await conn.publish_many(events)
            again = await conn.publish_many(events)
        return [(r.outcome, r.prefix, r.attempts) for r in again.values()]

    assert set(run(scenario)) == {(Outcome.DUPLICATE, "duplicate", 1)}


def test_nostr_relay_returns_an_older_version_of_an_addressable_event(nostr_relay_url: str) -> None:
    agent, owner = SecretKey.generate(), SecretKey.generate().public_key.hex
    d = "ab" * 32
    newer = engram_like(agent, owner, 0, created_at=1_700_000_100, d=d)
    older = engram_like(agent, owner, 0, created_at=1_700_000_000, d=d)

    async def scenario() -> tuple[list[Outcome], QueryResult]:
        async with RelayConnection(nostr_relay_url) as conn:
            first = await conn.publish(newer)
            second = await conn.publish(older)
            found = await conn.query([{"kinds": [30174], "#d": [d]}], timeout=10)
        return [first.outcome, second.outcome], found

    outcomes, found = run(scenario)
    assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    # The client passes on whatever the relay holds; head selection picks the newest.
    assert {e.id for e in found.events} == {newer.id, older.id}


def test_rust_relay_answers_error_unknown_for_an_older_version(rust_relay_url: str) -> None:
    agent, owner = SecretKey.generate(), SecretKey.generate().public_key.hex
    d = "cd" * 32
    newer = engram_like(agent, owner, 0, created_at=1_700_000_100, d=d)
    older = engram_like(agent, owner, 0, created_at=1_700_000_000, d=d)
    retry = RetryPolicy(error_retries=1, base_delay=0.05)

    async def scenario() -> tuple[Outcome, str, int, QueryResult]:
        async with RelayConnection(rust_relay_url, retry=retry) as conn:
            await conn.publish(newer)
            stale = await conn.publish(older)
            found = await conn.query([{"kinds": [30174], "#d": [d]}], timeout=10)
        return stale.outcome, stale.message, stale.attempts, found

    outcome, message, attempts, found = run(scenario)
    assert (outcome, message, attempts) == (Outcome.TEMPORARY, "error: unknown", 2)
    assert [e.id for e in found.events] == [newer.id]


def test_nostr_relay_refuses_a_bad_signature_with_an_empty_id_and_the_client_attributes_it(
    nostr_relay_url: str,
) -> None:
    _, _, events = batch(8)
    events[6] = forged(events[6])

    async def scenario() -> dict[str, tuple[Outcome, str]]:
        async with RelayConnection(nostr_relay_url) as conn:
            results = await conn.publish_many(events, window=8, timeout=10)
        return {i: (r.outcome, r.prefix) for i, r in results.items()}

    results = run(scenario)
    assert results.pop(events[6].id) == (Outcome.PERMANENT, "invalid")
    # Events resent on the fresh socket that the first one had stored come back duplicate.
    assert {outcome.stored for outcome, _ in results.values()} == {True}


def test_nostr_relays_throttle_after_a_refusal_does_not_hold_up_the_rest_of_the_batch(
    nostr_relay_url: str,
) -> None:
    _, _, events = batch(60)
    events[2] = forged(events[2])

    async def scenario() -> tuple[dict[str, Outcome], float]:
        loop = asyncio.get_running_loop()
        async with RelayConnection(nostr_relay_url) as conn:
            started = loop.time()
            results = await conn.publish_many(events, window=16, timeout=10)
            elapsed = loop.time() - started
        return {i: r.outcome for i, r in results.items()}, elapsed

    outcomes, elapsed = run(scenario)
    assert outcomes.pop(events[2].id) is Outcome.PERMANENT
    assert {o.stored for o in outcomes.values()} == {True}
    # On the refusing socket each of the 57 later events would wait 2 s for its OK.
    assert elapsed < 15


def test_heads_of_many_agents_are_read_in_batched_author_filters(rust_relay_url: str) -> None:
    agents = [SecretKey.generate() for _ in range(600)]
    owner = SecretKey.generate().public_key.hex
    events = [engram_like(agent, owner, 0) for agent in agents]
    authors = [a.public_key.hex for a in agents]
    filters = [
        {"kinds": [30174], "authors": authors[start : start + 500], "#p": [owner]}
        for start in range(0, len(authors), 500)
    ]

    async def scenario() -> QueryResult:
        async with RelayConnection(rust_relay_url) as conn:
            await conn.publish_many(events)
            return await conn.query(filters, timeout=20)

    found = run(scenario)
    assert found.complete
    assert [s.count for s in found.subscriptions] == [500, 100]
    assert {e.id for e in found.events} == {e.id for e in events}


def test_a_pool_of_both_relays_publishes_everywhere_and_reads_the_union(
    nostr_relay_url: str, rust_relay_url: str
) -> None:
    _, owner, events = batch(50, agents=5)

    async def scenario() -> tuple[set[Outcome], tuple[str, ...], int]:
        urls = [nostr_relay_url, rust_relay_url + "/", rust_relay_url]
        async with RelayPool(urls) as pool:
            results = await pool.publish_many(events)
            found = await pool.query([{"kinds": [30174], "#p": [owner]}], timeout=20)
        outcomes = {r.outcome for result in results.values() for r in result.answers.values()}
        return outcomes, found.answered, len(found.events)

    outcomes, answered, count = run(scenario)
    assert outcomes == {Outcome.ACCEPTED}
    assert sorted(answered) == sorted([nostr_relay_url, rust_relay_url])
    assert count == 50


@pytest.mark.slow
@pytest.mark.timeout(100)
def test_the_rust_relay_at_its_stock_rate_limit_gets_every_event_eventually() -> None:
    _, _, events = batch(70)

    async def scenario() -> dict[str, tuple[Outcome, int]]:
        with start_rust_relay(rate_limit=None) as relay:
            async with RelayConnection(relay.url) as conn:
                results = await conn.publish_many(events, window=64, timeout=10)
        return {i: (r.outcome, r.attempts) for i, r in results.items()}

    started = time.monotonic()
    results = run(scenario, limit=90)
    assert {outcome for outcome, _ in results.values()} == {Outcome.ACCEPTED}
    # The stock limit of 60 a minute was hit and honoured, not avoided.
    assert max(attempts for _, attempts in results.values()) > 1
    assert time.monotonic() - started < 90
