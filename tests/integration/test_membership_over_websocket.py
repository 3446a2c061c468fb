"""A buzz relay that admits only its members and their agents, spoken to over its
websocket (the buzz double): each agent's NIP-42 AUTH carries its owner's attestation
(NIP-OA ``auth`` tag), and an agent the relay will not admit fails for good, named with
the relay and the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import bootstrap
from adapters.nostr.keys import SecretKey
from adapters.settings import Settings
from domain.application import NewAgent
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import AUTH_NOT_MEMBER, BuzzRelay

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": "one"}}


@pytest.fixture
def closed_relay() -> Iterator[BuzzRelay]:
    """A closed buzz relay that admits members' agents by their owner's attestation."""
    with BuzzRelay(require_relay_membership=True, allow_nip_oa_auth=True).serving() as relay:
        yield relay


def _member_fleet(tmp_path: Path, relay: BuzzRelay, url: str, count: int) -> Fleetsync:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    relay.members.add(SecretKey.from_hex(fs.owner_secret()).public_key.hex)
    fs("relay", "add", url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    if count:
        fs("agent", "create", "--persona", "writer", "--count", str(count), "--no-apply")
    return fs


def _agent_without_attestation(fs: Fleetsync) -> str:
    """An agent as fleetsync made them before attestations existed: no ``Agent.Attested``."""
    key = SecretKey.generate()
    with bootstrap(Settings.load(home=fs.home, environ=fs.environ)) as fleet:
        fleet.keystore.put(key)
        fleet.app.create_agents([NewAgent(key.public_key.hex, "writer", "old-timer")], "test")
    return key.public_key.hex


def _head(relay: BuzzRelay, agent: str) -> Any:
    found = [e for e in relay.events.values() if e["kind"] == 30174 and e["pubkey"] == agent]
    return max(found, key=lambda e: e["created_at"]) if found else None


def test_agents_of_a_member_are_admitted_over_websocket_by_the_attestation_in_their_auth(
    closed_relay: BuzzRelay, tmp_path: Path
) -> None:
    fs = _member_fleet(tmp_path, closed_relay, closed_relay.url, 3)
    agents = {a["pubkey"] for a in fs.json("agent", "list")}
    assert fs.json("apply")["summary"]["published"] == 3
    assert all(_head(closed_relay, a) is not None for a in agents)
    ws = [r for r in closed_relay.auth_log if r.transport == "ws"]
    # Every agent was admitted as the member's agent: by the attestation its AUTH carried.
    assert {r.pubkey for r in ws if r.accepted} >= agents
    assert not [r for r in ws if r.message == AUTH_NOT_MEMBER]
    assert closed_relay.owner_links == dict.fromkeys(agents, next(iter(closed_relay.members)))
    fs("refresh")  # exit 0: read in full as the owner, a member in its own right
    assert fs.json("apply")["summary"]["unchanged"] == 3


@pytest.mark.parametrize("wire", ["websocket", "http-bridge"])
def test_an_agent_without_an_attestation_fails_for_good_naming_itself_the_relay_and_why(
    closed_relay: BuzzRelay, tmp_path: Path, wire: str
) -> None:
    url = closed_relay.url if wire == "websocket" else closed_relay.http_url
    fs = _member_fleet(tmp_path, closed_relay, url, 2)
    old = _agent_without_attestation(fs)
    code, out, _ = fs.run("--json", "apply")
    assert code == 2
    doc = json.loads(out)
    assert doc["summary"]["published"] == 2
    assert doc["summary"]["failed"] == 1
    failed = [o for o in doc["agents"] if o["result"] == "failed"]
    assert [o["agent"] for o in failed] == [old]
    detail = failed[0]["detail"]
    assert url in detail
    assert old in detail
    assert (AUTH_NOT_MEMBER if wire == "websocket" else "relay_membership_required") in detail
    assert "fleetsync agent attest" in detail
    assert _head(closed_relay, old) is None
    # Once attested (every agent that has none: only it), the agent is admitted.
    attested = fs.json("agent", "attest", "--missing")["attested"]
    assert [a["pubkey"] for a in attested] == [old]
    assert fs.json("agent", "attest", "--missing")["attested"] == []
    assert fs.json("apply")["summary"]["published"] == 1
    assert _head(closed_relay, old) is not None


def test_a_retired_agents_withdrawn_attestation_is_not_presented_and_its_tombstone_fails(
    closed_relay: BuzzRelay, tmp_path: Path
) -> None:
    fs = _member_fleet(tmp_path, closed_relay, closed_relay.url, 1)
    [agent] = [a["pubkey"] for a in fs.json("agent", "list")]
    assert fs.json("apply")["summary"]["published"] == 1
    fs("agent", "retire", agent, "--yes", "--no-apply")
    code, out, _ = fs.run("--json", "apply")
    assert code == 2
    [outcome] = json.loads(out)["agents"]
    assert (outcome["agent"], outcome["result"]) == (agent, "failed")
    assert closed_relay.url in outcome["detail"]
    assert agent in outcome["detail"]
    assert AUTH_NOT_MEMBER in outcome["detail"]
    refused = [r for r in closed_relay.auth_log if r.pubkey == agent and not r.accepted]
    assert [r.message for r in refused] == [AUTH_NOT_MEMBER]


@pytest.mark.parametrize("wire", ["websocket", "http-bridge"])
def test_an_attestation_by_an_owner_who_is_not_a_member_is_refused_naming_it_as_presented(
    closed_relay: BuzzRelay, tmp_path: Path, wire: str
) -> None:
    url = closed_relay.url if wire == "websocket" else closed_relay.http_url
    fs = _member_fleet(tmp_path, closed_relay, url, 1)
    closed_relay.members.clear()
    closed_relay.members.add(SecretKey.generate().public_key.hex)  # someone else's relay now
    code, out, _ = fs.run("--json", "apply")
    assert code != 0
    doc = json.loads(out)
    assert doc["summary"]["published"] == 0
    assert doc["summary"]["failed"] == 1, "refused for good, with the attestation presented"
    [outcome] = doc["agents"]
    detail = outcome["detail"]
    assert outcome["agent"] in detail
    assert url in detail
    if wire == "websocket":
        assert "with its owner's attestation" in detail
        assert AUTH_NOT_MEMBER in detail
    else:
        assert "with its owner's attestation (x-auth-tag)" in detail
        assert "relay_membership_required" in detail
