"""The whole story against real relays, checked by an independent client.

Create personas and agents, apply, and check with nostr-sdk (rust-nostr), not
with our own code, that every agent's newest ``mem/persona`` engram verifies,
decrypts as the owner and names the persona's current digest. Then: applying
again publishes nothing; editing a persona republishes only its agents;
rotating a secret republishes its agents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Fleetsync
from tests.support.relays import start_nostr_relay, start_rust_relay
from tests.support.sdk import sdk_fetch_events, sdk_nip44_decrypt, sdk_verify_event_json

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": "one"}}
CRITIC = {"display_name": "Critic", "system_prompt": "Criticise."}


def heads_seen_by_nostr_sdk(url: str, owner_sec: str, agents: list[str]) -> dict[str, Any]:
    """Per agent, the newest valid engram as nostr-sdk sees it, decrypted as the owner."""
    events = [json.loads(e) for e in sdk_fetch_events(url, {"kinds": [30174], "authors": agents})]
    heads: dict[str, Any] = {}
    for event in sorted(events, key=lambda e: (-e["created_at"], e["id"])):
        if event["pubkey"] in heads:
            continue
        assert sdk_verify_event_json(json.dumps(event))
        body = json.loads(sdk_nip44_decrypt(owner_sec, event["pubkey"], event["content"]))
        assert body["slug"] == "mem/persona"
        heads[event["pubkey"]] = json.loads(body["value"])
    return heads


@pytest.fixture(params=["nostr-relay", "rust-relay"])
def relay_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    relay = start_nostr_relay(tmp_path) if request.param == "nostr-relay" else start_rust_relay()
    with relay:
        yield relay.url


def test_apply_brings_every_engram_in_line_and_only_what_changed_moves(
    relay_url: str, tmp_path: Path
) -> None:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", relay_url)
    writer = fs.save("writer", WRITER, tmp_path, "--no-apply")
    critic = fs.save("critic", CRITIC, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", "3", "--no-apply")
    fs("agent", "create", "--persona", "critic", "--count", "2", "--no-apply")
    agents = {a["pubkey"]: a["persona"] for a in fs.json("agent", "list")}
    writers = sorted(k for k, p in agents.items() if p == "writer")
    critics = sorted(k for k, p in agents.items() if p == "critic")

    first = fs.json("apply")
    assert first["summary"]["published"] == 5
    owner = fs.owner_secret()
    heads = heads_seen_by_nostr_sdk(relay_url, owner, sorted(agents))
    assert {k: h["provenance"]["source_version"] for k, h in heads.items()} == {
        **dict.fromkeys(writers, writer["digest"]),
        **dict.fromkeys(critics, critic["digest"]),
    }
    assert all(heads[k]["env_vars"] == {"KEY": "one"} for k in writers)
    assert all("env_vars" not in heads[k] for k in critics)

    again = fs.json("apply")
    assert again["summary"]["published"] == 0
    assert again["summary"]["unchanged"] == 5
    fs("plan")  # exit 0: nothing to do

    edited = fs.save("writer", {**WRITER, "system_prompt": "Write better."}, tmp_path, "--no-apply")
    plan = fs.json("plan", expect=2)
    assert sorted(c["agent"] for c in plan["commands"]) == writers
    moved = fs.json("apply")
    assert sorted(o["agent"] for o in moved["agents"] if o["result"] == "published") == writers
    heads = heads_seen_by_nostr_sdk(relay_url, owner, sorted(agents))
    assert {k: heads[k]["provenance"]["source_version"] for k in writers} == dict.fromkeys(
        writers, edited["digest"]
    )
    assert {k: heads[k]["provenance"]["source_version"] for k in critics} == dict.fromkeys(
        critics, critic["digest"]
    )

    rotated = fs.save(
        "writer", {**WRITER, "system_prompt": "Write better.", "env_vars": {"KEY": "two"}}, tmp_path
    )
    assert rotated["digest"] == edited["digest"], "a secret is not part of the public digest"
    fs("plan")  # saving published right away: nothing left
    heads = heads_seen_by_nostr_sdk(relay_url, owner, writers)
    assert all(heads[k]["env_vars"] == {"KEY": "two"} for k in writers)


def test_every_configured_relay_gets_the_same_engram(tmp_path: Path) -> None:
    with start_nostr_relay(tmp_path) as slow, start_rust_relay() as fast:
        fs = Fleetsync(tmp_path / "home")
        fs("init")
        fs("relay", "add", slow.url)
        fs("relay", "add", fast.url + "/")  # canonicalized: not a third relay
        assert len(fs.json("relay", "list")["relays"]) == 2
        fs.save("writer", WRITER, tmp_path)
        created = fs.json("agent", "create", "--persona", "writer", "--count", "2")["agents"]
        pubkeys = sorted(a["pubkey"] for a in created)
        owner = fs.owner_secret()
        on_slow = heads_seen_by_nostr_sdk(slow.url, owner, pubkeys)
        on_fast = heads_seen_by_nostr_sdk(fast.url, owner, pubkeys)
        assert on_slow == on_fast
        assert sorted(on_slow) == pubkeys
