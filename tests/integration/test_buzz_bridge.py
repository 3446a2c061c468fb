"""fleetsync over a buzz relay's HTTP bridge (the buzz double): the apply story, and what
the bridge answers when it refuses, limits or breaks."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip44 import conversation_key, encrypt
from adapters.nostr.signer import KeySigner
from adapters.ports import Signer
from adapters.relay import RelayPool
from adapters.relay.bridge import BridgeTransport
from adapters.sync.gateway import PoolGateway
from domain.verdict import Outcome
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import BuzzRelay, HttpAnswer

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": "one"}}


def _fleet(tmp_path: Path, relay: BuzzRelay, count: int = 3) -> tuple[Fleetsync, list[str]]:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", relay.http_url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(count), "--no-apply")
    return fs, sorted(a["pubkey"] for a in fs.json("agent", "list"))


def _heads(relay: BuzzRelay, agents: list[str]) -> dict[str, Any]:
    heads = {}
    for agent in agents:
        found = [e for e in relay.events.values() if e["kind"] == 30174 and e["pubkey"] == agent]
        heads[agent] = max(found, key=lambda e: e["created_at"]) if found else None
    return heads


def test_the_apply_story_over_the_bridge_publishes_confirms_and_moves_only_what_changed(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs, agents = _fleet(tmp_path, buzz_double)
    first = fs.json("apply")
    assert first["summary"]["published"] == 3
    heads = _heads(buzz_double, agents)
    assert all(heads[a] is not None for a in agents)
    # Every request was signed for itself: NIP-98 by the event's author for writes,
    # by the owner for the read-back; nothing was refused.
    assert {status for _, status in buzz_double.http_requests} == {200}
    assert fs.json("apply")["summary"]["unchanged"] == 3
    fs("plan")  # exit 0: in sync, read over the bridge
    edited = {**WRITER, "system_prompt": "Write better."}
    fs.save("writer", edited, tmp_path, "--no-apply")
    second = fs.json("apply")
    assert second["summary"]["published"] == 3
    assert {a: h["id"] for a, h in _heads(buzz_double, agents).items()} != {
        a: h["id"] for a, h in heads.items()
    }
    fs("refresh")  # exit 0: the bridge was read in full
    fs("status")  # exit 0: every agent in sync as of that reading


def test_a_relay_list_mixing_the_bridge_and_a_websocket_relay_converges_on_both(
    buzz_double: BuzzRelay, rust_relay_url: str, tmp_path: Path
) -> None:
    fs, agents = _fleet(tmp_path, buzz_double, count=2)
    fs("relay", "add", rust_relay_url)
    result = fs.json("apply")
    assert result["summary"]["published"] == 2
    assert all(_heads(buzz_double, agents).values())
    assert fs.json("apply")["summary"]["unchanged"] == 2


def test_a_rate_limit_without_retry_after_is_waited_out_from_the_body(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs, _ = _fleet(tmp_path, buzz_double, count=1)
    buzz_double.faults.http_answers.append(
        HttpAnswer.error(429, "rate-limited: quota exceeded; retry in 1s")
    )
    assert fs.json("apply")["summary"]["published"] == 1
    assert [s for _, s in buzz_double.http_requests].count(429) == 1


def test_a_server_error_every_time_is_temporary_and_nothing_is_marked_published(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs, _ = _fleet(tmp_path, buzz_double, count=1)
    buzz_double.faults.http_answers.extend([HttpAnswer.error(500, "internal server error")] * 40)
    code, out, _ = fs.run("--json", "apply")
    assert code != 0
    doc = json.loads(out)
    assert doc["summary"]["published"] == 0
    buzz_double.faults.http_answers.clear()
    assert fs.json("apply")["summary"]["published"] == 1


def test_a_garbage_body_with_200_is_never_a_success(buzz_double: BuzzRelay, tmp_path: Path) -> None:
    fs, agents = _fleet(tmp_path, buzz_double, count=1)
    buzz_double.faults.http_answers.extend([HttpAnswer.garbage(200)] * 40)
    code, out, _ = fs.run("--json", "apply")
    assert code != 0
    assert json.loads(out)["summary"]["published"] == 0
    assert _heads(buzz_double, agents)[agents[0]] is None


def test_an_agent_of_a_member_is_admitted_by_its_attestation_on_a_closed_relay(
    tmp_path: Path,
) -> None:
    with BuzzRelay(require_relay_membership=True, allow_nip_oa_auth=True).serving() as relay:
        fs = Fleetsync(tmp_path / "home")
        fs("init")
        relay.members.add(SecretKey.from_hex(fs.owner_secret()).public_key.hex)
        fs("relay", "add", relay.http_url)
        fs.save("writer", WRITER, tmp_path, "--no-apply")
        fs("agent", "create", "--persona", "writer", "--count", "2", "--no-apply")
        agents = sorted(a["pubkey"] for a in fs.json("agent", "list"))
        assert fs.json("apply")["summary"]["published"] == 2
        assert all(_heads(relay, agents).values())
        # Writes sent before the relay asked were refused for want of membership, and
        # sent again with the owner's attestation in x-auth-tag.
        statuses = [s for path, s in relay.http_requests if path == "/events"]
        assert 1 <= statuses.count(403) <= 2
        assert statuses.count(200) == 2
        assert set(relay.owner_links) <= set(agents)


def test_a_closed_relay_refusing_the_owner_is_a_permanent_failure_naming_agent_and_relay(
    tmp_path: Path,
) -> None:
    with BuzzRelay(require_relay_membership=True, allow_nip_oa_auth=True).serving() as relay:
        fs, agents = _fleet(tmp_path, relay, count=1)
        code, out, err = fs.run("apply")
        assert code != 0
        text = out + err
        assert agents[0] in text or agents[0][:16] in text
        assert "relay_membership_required" in text or "not a relay member" in text


def test_http_200_with_accepted_false_is_a_refusal(buzz_double: BuzzRelay, tmp_path: Path) -> None:
    fs, agents = _fleet(tmp_path, buzz_double, count=1)
    refusal = b'{"event_id":"x","accepted":false,"message":"blocked: not today"}'
    buzz_double.faults.http_answers.extend([HttpAnswer(200, refusal)] * 10)
    code, out, err = fs.run("apply")
    assert code != 0
    assert "blocked: not today" in out + err
    assert _heads(buzz_double, agents)[agents[0]] is None


def test_a_skewed_clock_is_named_as_clock_skew(buzz_double: BuzzRelay, tmp_path: Path) -> None:
    fs, _ = _fleet(tmp_path, buzz_double, count=1)
    buzz_double.faults.clock_skew = 300
    code, out, err = fs.run("apply")
    assert code != 0
    assert "clock skew" in out + err
    buzz_double.faults.clock_skew = 0
    assert fs.json("apply")["summary"]["published"] == 1


def test_relay_list_shows_each_relays_wire_and_authentication(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", buzz_double.http_url)
    fs("relay", "add", buzz_double.url)
    doc = fs.json("relay", "list")
    assert doc["relays"] == [buzz_double.http_url, buzz_double.url]
    assert [(w["url"], w["kind"]) for w in doc["wires"]] == [
        (buzz_double.http_url, "http-bridge"),
        (buzz_double.url, "websocket"),
    ]
    assert "NIP-98" in doc["wires"][0]["auth"]
    assert "NIP-42" in doc["wires"][1]["auth"]
    text = fs("relay", "list")
    assert "http-bridge" in text
    assert "websocket" in text


def _engram(agent: SecretKey, owner: SecretKey) -> Event:
    content = encrypt("engram body", conversation_key(agent, owner.public_key))
    tags = [["d", os.urandom(32).hex()], ["p", owner.public_key.hex]]
    return sign_event(agent, created_at=int(time.time()), kind=30174, tags=tags, content=content)


def test_bridge_requests_are_signed_with_the_signers_the_caller_holds(
    buzz_double: BuzzRelay,
) -> None:
    """The reconciler hands the gateway the signers of the batch it sealed (their keys
    are open already): each NIP-98 header is signed with them, and the gateway's own
    lookup (the key store) is asked only about an author the caller did not hand over."""
    owner = SecretKey.generate()
    held = [SecretKey.generate() for _ in range(3)]
    other = SecretKey.generate()
    asked: list[str] = []

    def key_store(pubkey: str) -> Signer | None:
        asked.append(pubkey)
        return KeySigner(other) if pubkey == other.public_key.hex else None

    events = [_engram(agent, owner) for agent in [*held, other]]

    async def publish() -> dict[str, list[Any]]:
        gateway = PoolGateway(
            RelayPool([buzz_double.http_url], transport_for=BridgeTransport),
            window=8,
            timeout=10,
            query_timeout=10,
            signers=key_store,
        )
        try:
            return await gateway.publish(
                events, None, {k.public_key.hex: KeySigner(k) for k in held}
            )
        finally:
            await gateway.close()

    answers = asyncio.run(publish())
    assert all(a.stored for e in events for a in answers[e.id])
    assert {e.id for e in events} <= set(buzz_double.events)
    assert asked == [other.public_key.hex]


def test_a_request_queued_behind_a_slow_relay_is_signed_when_it_is_sent(
    buzz_double: BuzzRelay,
) -> None:
    """The NIP-98 header is signed when the request's turn comes, not when it joins the
    queue: with one request in flight at a time and half a second per answer, the last
    of eight is checked four seconds after the first joined; the relay's clock is 57 s
    ahead (its auth window is 60 s), so a header signed on joining the queue would be
    refused as expired, and one signed on sending has seconds to spare."""
    owner = SecretKey.generate()
    agents = [SecretKey.generate() for _ in range(8)]
    events = [_engram(agent, owner) for agent in agents]
    signers = {a.public_key.hex: KeySigner(a) for a in agents}
    buzz_double.faults.answer_delay = 0.5
    buzz_double.faults.clock_skew = 57

    async def publish() -> dict[str, Any]:
        bridge = BridgeTransport(buzz_double.http_url, concurrency=1)
        try:
            return await bridge.publish_many(events, window=1, timeout=30, signers=signers.get)
        finally:
            await bridge.close()

    answers = asyncio.run(publish())
    assert [answers[e.id].stored for e in events] == [True] * 8
    assert {status for _, status in buzz_double.http_requests} == {200}


@pytest.mark.parametrize(
    "garbage",
    [
        HttpAnswer.garbage(200),
        HttpAnswer(200, b'{"event_id":"x","accepted":"yes","message":""}'),
        HttpAnswer(200, b'{"event_id":"x","message":""}'),
    ],
    ids=["html", "accepted not a boolean", "no accepted"],
)
def test_an_answer_that_is_not_the_bridges_json_is_never_an_acceptance_nor_a_read(
    buzz_double: BuzzRelay, garbage: HttpAnswer
) -> None:
    """Below the read-back: the answer itself is not taken for an acceptance (the log
    records each relay's answer, and audit shows it), and a read that got junk is cut
    short, never an empty result."""
    owner = SecretKey.generate()
    agent = SecretKey.generate()
    event = _engram(agent, owner)

    async def scenario() -> tuple[Any, Any]:
        bridge = BridgeTransport(buzz_double.http_url)
        try:
            buzz_double.faults.http_answers.append(garbage)
            answers = await bridge.publish_many(
                [event], window=1, timeout=5, signers={agent.public_key.hex: KeySigner(agent)}.get
            )
            buzz_double.faults.http_answers.append(garbage)
            read = await bridge.query(
                [{"kinds": [30174], "authors": [agent.public_key.hex]}],
                timeout=5,
                reader=KeySigner(agent),
            )
            return answers[event.id], read
        finally:
            await bridge.close()

    answer, read = asyncio.run(scenario())
    assert not answer.stored
    assert answer.outcome is not Outcome.ACCEPTED
    assert "not the bridge's JSON" in answer.message
    assert not read.complete
    assert "not a JSON array" in str(read.subscriptions[0].closed)


def test_an_apply_over_the_bridge_keeps_its_connections_alive_and_bounded(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    """120 engrams and their reads go over keep-alive connections, at most the relay
    window of them (FLEETSYNC_RELAY_WINDOW, the connector's limit), never one per
    request."""
    fs, _ = _fleet(tmp_path, buzz_double, count=120)
    fs.environ["FLEETSYNC_RELAY_WINDOW"] = "8"
    doc = fs.json("apply")
    assert doc["summary"]["published"] == 120
    traffic = doc["traffic"][buzz_double.http_url]
    assert traffic["requests"] == len(buzz_double.http_requests) >= 120
    assert traffic["connections"] <= 8
