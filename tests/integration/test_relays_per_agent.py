"""Sync state is per agent and relay, checked against real relays.

A relay added to a fleet that is in sync must get every live agent's current
engram on the next apply: the very events the other relay holds (same ids),
nothing sealed anew. A relay that lost its data (a fresh one at the same URL)
is noticed by ``refresh`` and gets the same events again from ``apply``.
What each relay holds is read with nostr-sdk, not with our own client.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.harness import Fleetsync
from tests.support.relays import start_nostr_relay, start_rust_relay
from tests.support.sdk import sdk_fetch_events

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": "one"}}


def engram_ids(url: str, agents: list[str]) -> set[str]:
    """Ids of every kind:30174 event by these agents that nostr-sdk gets from ``url``."""
    found = sdk_fetch_events(url, {"kinds": [30174], "authors": agents})
    return {json.loads(event)["id"] for event in found}


def fleet_in_sync(tmp_path: Path, relay_url: str, agents: int) -> tuple[Fleetsync, list[str]]:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", relay_url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(agents), "--no-apply")
    assert fs.json("apply")["summary"]["published"] == agents
    return fs, sorted(a["pubkey"] for a in fs.json("agent", "list"))


def test_a_relay_added_later_gets_every_agents_current_engram_as_the_identical_event(
    tmp_path: Path,
) -> None:
    with start_nostr_relay(tmp_path) as first, start_rust_relay(tmp_path=tmp_path) as second:
        fs, agents = fleet_in_sync(tmp_path, first.url, 3)
        published = engram_ids(first.url, agents)
        assert len(published) == 3
        added = fs("relay", "add", second.url)
        assert "3 agent(s) lack their engram there" in added

        plan = fs.json("plan", expect=2)
        assert plan["changes"] == 3
        assert {c["action"] for c in plan["commands"]} == {"resend"}
        assert {tuple(c["reasons"]) for c in plan["commands"]} == {("missing-on-relay",)}
        assert {tuple(c["relays"]) for c in plan["commands"]} == {(second.url,)}
        assert {c["resend_event_id"] for c in plan["commands"]} == published
        status = fs.json("status", expect=3)  # the new relay was never read
        assert status["totals"] == {"partial": 3}

        filled = fs.json("apply", "--ack", "all")
        assert filled["summary"]["published"] == 3
        assert engram_ids(second.url, agents) == published, "the very events, not new ones"
        assert engram_ids(first.url, agents) == published, "nothing new sealed"

        again = fs.json("apply")
        assert again["summary"] == {**again["summary"], "published": 0, "unchanged": 3}
        fs("plan")  # exit 0
        assert fs.json("status")["totals"] == {"in-sync": 3}


def test_a_relay_that_lost_its_data_is_noticed_by_refresh_and_refilled_by_apply(
    tmp_path: Path,
) -> None:
    with start_nostr_relay(tmp_path) as keeper:
        lost = start_rust_relay(tmp_path=tmp_path)
        try:
            fs, agents = fleet_in_sync(tmp_path, keeper.url, 2)
            fs("relay", "add", lost.url)
            assert fs.json("apply")["summary"]["published"] == 2
            published = engram_ids(keeper.url, agents)
            assert engram_ids(lost.url, agents) == published
            fs("plan")  # in sync on both

            port = lost.port
            lost.stop()
            lost = start_rust_relay(tmp_path=tmp_path, port=port)  # same URL, nothing in it
            assert engram_ids(lost.url, agents) == set()
            fs("plan")  # the log cannot know yet

            refreshed = fs.json("refresh")
            assert refreshed["observed_drift"] == 2
            plan = fs.json("plan", expect=2)
            assert {tuple(c["relays"]) for c in plan["commands"]} == {(lost.url,)}
            assert {c["resend_event_id"] for c in plan["commands"]} == published

            assert fs.json("apply")["summary"]["published"] == 2
            assert engram_ids(lost.url, agents) == published
            assert engram_ids(keeper.url, agents) == published
            fs("plan")
        finally:
            lost.stop()


def test_the_only_relay_losing_its_data_gets_the_identical_events_again(tmp_path: Path) -> None:
    relay = start_rust_relay(tmp_path=tmp_path)
    try:
        fs, agents = fleet_in_sync(tmp_path, relay.url, 2)
        published = engram_ids(relay.url, agents)
        port = relay.port
        relay.stop()
        relay = start_rust_relay(tmp_path=tmp_path, port=port)
        assert fs.json("refresh")["observed_drift"] == 2
        plan = fs.json("plan", expect=2)
        assert {tuple(c["reasons"]) for c in plan["commands"]} == {("missing-on-relay",)}
        assert {c["resend_event_id"] for c in plan["commands"]} == published
        assert fs.json("apply")["summary"]["published"] == 2
        assert engram_ids(relay.url, agents) == published
    finally:
        relay.stop()
