"""The relay fixtures start real relays, and those relays behave as RELAYS.md says.

The quirk tests pin down behaviour other tests depend on; if a relay upgrade changes
it, they fail here first, with a clear name, instead of somewhere obscure.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.nip01 import connect, fetch_nip11
from tests.support.relays import free_port, start_nostr_relay, start_rust_relay, websocket_accepts
from tests.support.sdk import sdk_keys, sdk_sign_event

pytestmark = pytest.mark.integration

ADDRESSABLE_KIND = 30174


def _forge_signature(event_json: str) -> str:
    event = json.loads(event_json)
    event["sig"] = "00" * 64
    return json.dumps(event)


def test_each_relay_accepts_an_event_and_returns_it_in_a_query(any_relay_url: str) -> None:
    sec, pub = sdk_keys()
    event = sdk_sign_event(sec, 1, [["t", "fleetsync"]], "hello", int(time.time()))

    async def scenario() -> None:
        async with connect(any_relay_url) as client:
            assert await client.publish(event) == ["OK", json.loads(event)["id"], True, ""]
            stored = await client.query({"authors": [pub]})
        assert stored == [json.loads(event)]

    asyncio.run(scenario())


def test_each_relay_refuses_a_bad_signature(any_relay_url: str) -> None:
    sec, _ = sdk_keys()
    forged = _forge_signature(sdk_sign_event(sec, 1, [], "forged", int(time.time())))

    async def scenario() -> None:
        async with connect(any_relay_url) as client:
            answer = await client.publish(forged)
        assert answer[0] == "OK"
        assert answer[2] is False
        assert answer[3].startswith("invalid:")

    asyncio.run(scenario())


def test_nostr_relay_fixture_accepts_old_timestamps_and_large_content(
    nostr_relay_url: str,
) -> None:
    sec, _ = sdk_keys()
    old = sdk_sign_event(sec, 1, [], "fixed timestamp", 1_700_000_000)
    big = sdk_sign_event(sec, 1, [], "x" * 50_000, int(time.time()))

    async def scenario() -> None:
        async with connect(nostr_relay_url) as client:
            assert (await client.publish(old))[2:] == [True, ""]
            assert (await client.publish(big))[2:] == [True, ""]

    asyncio.run(scenario())


def test_nostr_relay_refuses_a_duplicate_as_duplicate_exists(nostr_relay_url: str) -> None:
    sec, _ = sdk_keys()
    event = sdk_sign_event(sec, 1, [], "twice", int(time.time()))
    event_id = json.loads(event)["id"]

    async def scenario() -> None:
        async with connect(nostr_relay_url) as client:
            await client.publish(event)
            assert await client.publish(event) == ["OK", event_id, False, "duplicate: exists"]

    asyncio.run(scenario())


def test_rust_relay_acknowledges_a_duplicate_as_ok_true(rust_relay_url: str) -> None:
    sec, _ = sdk_keys()
    event = sdk_sign_event(sec, 1, [], "twice", int(time.time()))
    event_id = json.loads(event)["id"]

    async def scenario() -> None:
        async with connect(rust_relay_url) as client:
            await client.publish(event)
            answer = await client.publish(event)
        assert answer == ["OK", event_id, True, "duplicate: already have this event"]

    asyncio.run(scenario())


def test_nostr_relay_answers_a_bad_signature_with_an_empty_id_after_a_throttle(
    nostr_relay_url: str,
) -> None:
    sec, _ = sdk_keys()
    forged = _forge_signature(sdk_sign_event(sec, 1, [], "forged", int(time.time())))

    async def scenario() -> float:
        async with connect(nostr_relay_url) as client:
            started = time.monotonic()
            assert await client.publish(forged) == ["OK", "", False, "invalid: Bad signature"]
            return time.monotonic() - started

    assert asyncio.run(scenario()) >= 1.5


def test_rust_relay_refuses_an_older_version_of_an_addressable_event(rust_relay_url: str) -> None:
    sec, pub = sdk_keys()
    now = int(time.time())
    newer = sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "p"]], "newer", now)
    older = sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "p"]], "older", now - 60)

    async def scenario() -> None:
        async with connect(rust_relay_url) as client:
            await client.publish(newer)
            answer = await client.publish(older)
            assert answer == ["OK", json.loads(older)["id"], False, "error: unknown"]
            stored = await client.query({"kinds": [ADDRESSABLE_KIND], "authors": [pub]})
        assert [e["content"] for e in stored] == ["newer"]

    asyncio.run(scenario())


def test_nostr_relay_stores_an_older_version_of_an_addressable_event_beside_the_newer(
    nostr_relay_url: str,
) -> None:
    sec, pub = sdk_keys()
    now = int(time.time())
    newer = sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "p"]], "newer", now)
    older = sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "p"]], "older", now - 60)

    async def scenario() -> None:
        async with connect(nostr_relay_url) as client:
            await client.publish(newer)
            assert (await client.publish(older))[2] is True
            stored = await client.query({"kinds": [ADDRESSABLE_KIND], "authors": [pub]})
        assert sorted(e["content"] for e in stored) == ["newer", "older"]

    asyncio.run(scenario())


def test_each_relay_replaces_an_addressable_event_with_a_newer_version(
    any_relay_url: str,
) -> None:
    sec, pub = sdk_keys()
    now = int(time.time())
    older = sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "p"]], "older", now - 60)
    newer = sdk_sign_event(sec, ADDRESSABLE_KIND, [["d", "p"]], "newer", now)

    async def scenario() -> None:
        async with connect(any_relay_url) as client:
            await client.publish(older)
            await client.publish(newer)
            stored = await client.query({"kinds": [ADDRESSABLE_KIND], "authors": [pub]})
        assert [e["content"] for e in stored] == ["newer"]

    asyncio.run(scenario())


def test_rust_relay_rate_limits_the_61st_event_per_minute_by_default(tmp_path: Path) -> None:
    sec, _ = sdk_keys()
    now = int(time.time())
    events = [sdk_sign_event(sec, 1, [], f"n{i}", now) for i in range(61)]

    async def scenario(url: str) -> list[bool]:
        async with connect(url) as client:
            return [bool((await client.publish(event))[2]) for event in events]

    with start_rust_relay(rate_limit=None, tmp_path=tmp_path) as relay:
        accepted = asyncio.run(scenario(relay.url))
    assert accepted == [True] * 60 + [False]


def test_rust_relay_fixture_lifts_the_rate_limit(rust_relay_url: str) -> None:
    sec, _ = sdk_keys()
    now = int(time.time())
    events = [sdk_sign_event(sec, 1, [], f"n{i}", now) for i in range(100)]

    async def scenario() -> list[bool]:
        async with connect(rust_relay_url) as client:
            return [bool((await client.publish(event))[2]) for event in events]

    assert all(asyncio.run(scenario()))


def test_nostr_relay_serves_a_nip11_document(nostr_relay_url: str) -> None:
    answer = asyncio.run(fetch_nip11(nostr_relay_url))
    assert answer is not None
    status, body = answer
    assert status == 200
    assert 1 in json.loads(body)["supported_nips"]


def test_rust_relay_serves_no_nip11_document(rust_relay_url: str) -> None:
    assert asyncio.run(fetch_nip11(rust_relay_url)) is None


def test_stopping_a_relay_frees_its_port_and_removes_its_files(tmp_path: Path) -> None:
    for relay in (start_nostr_relay(tmp_path), start_rust_relay(tmp_path=tmp_path)):
        relay.stop()
        relay.stop()  # idempotent, so fixtures and tests may both call it
        assert relay.process.returncode is not None
        assert not relay.workdir.exists()
        assert not websocket_accepts(relay.port)


def test_websocket_probe_says_no_for_a_port_nobody_listens_on() -> None:
    assert not websocket_accepts(free_port())
