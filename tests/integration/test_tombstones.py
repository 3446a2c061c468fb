"""Tombstoning against real relays: a retired agent's, and a deleted persona's agents'
engrams stop holding the persona's secrets.

Checked with nostr-sdk (rust-nostr), not our own code: the agent's newest
``mem/persona`` engram decrypts (as the owner) to a tombstone body, no engram
left on the relay carries the secret, and the agent's NIP-09 deletion request
names the record. A rerun does nothing; a crash between storing the seals and
sending them resends the identical events.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import bootstrap
from adapters.settings import Settings
from adapters.store.eventlog import SQLiteEventLog
from tests.integration.harness import Fleetsync
from tests.support.relays import start_nostr_relay, start_rust_relay
from tests.support.sdk import sdk_fetch_events, sdk_nip44_decrypt, sdk_verify_event_json

pytestmark = pytest.mark.integration

SECRET = "sk-tombstone-test-secret-value"
WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": SECRET}}


@pytest.fixture(params=["nostr-relay", "rust-relay"])
def relay_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    relay = start_nostr_relay(tmp_path) if request.param == "nostr-relay" else start_rust_relay()
    with relay:
        yield relay.url


def events(url: str, kind: int, author: str) -> list[dict[str, Any]]:
    found = [json.loads(e) for e in sdk_fetch_events(url, {"kinds": [kind], "authors": [author]})]
    assert all(sdk_verify_event_json(json.dumps(e)) for e in found)
    return found


def assert_tombstoned(url: str, owner: str, agent: str) -> dict[str, Any]:
    """The head is a tombstone, no engram left holds the secret, the deletion is there."""
    engrams = events(url, 30174, agent)
    assert engrams, "no engram at all"
    bodies = {e["id"]: json.loads(sdk_nip44_decrypt(owner, agent, e["content"])) for e in engrams}
    head = min(engrams, key=lambda e: (-e["created_at"], e["id"]))
    assert bodies[head["id"]] == {"slug": "mem/persona", "value": None}
    assert not any(SECRET in json.dumps(b) for b in bodies.values()), "the secret is still there"
    (deletion,) = events(url, 5, agent)
    d_tag = next(t[1] for t in head["tags"] if t[0] == "d")
    assert deletion["tags"] == [["a", f"30174:{agent}:{d_tag}"], ["k", "30174"]]
    assert deletion["created_at"] == head["created_at"] - 1  # every older version, not it
    return head


def start(tmp_path: Path, url: str, agents: int) -> tuple[Fleetsync, list[str]]:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", url)
    fs.save("writer", WRITER, tmp_path)
    fs("agent", "create", "--persona", "writer", "--count", str(agents))
    pubkeys = sorted(a["pubkey"] for a in fs.json("agent", "list"))
    return fs, pubkeys


def test_retiring_an_agent_tombstones_its_engram_and_a_rerun_does_nothing(
    relay_url: str, tmp_path: Path
) -> None:
    fs, (gone, kept) = start(tmp_path, relay_url, 2)
    owner = fs.owner_secret()
    assert any(
        SECRET in sdk_nip44_decrypt(owner, gone, e["content"])
        for e in events(relay_url, 30174, gone)
    )

    retired = fs.json("agent", "retire", gone)
    assert retired["tombstone_due"] is False
    head = assert_tombstoned(relay_url, owner, gone)
    assert events(relay_url, 5, kept) == []  # the other agent is untouched

    audit = fs.json("audit", "--agent", gone)
    whats = [e["what"] for e in audit["entries"]]
    assert whats[-3:] == ["tombstone sealed", "tombstoned", "relay traffic"]
    assert audit["entries"][-2]["details"]["event_id"] == head["id"]

    fs("plan")  # exit 0: nothing to do
    before = (events(relay_url, 30174, gone), events(relay_url, 5, gone))
    again = fs.json("apply")
    assert again["summary"]["tombstoned"] == again["summary"]["published"] == 0
    assert (events(relay_url, 30174, gone), events(relay_url, 5, gone)) == before


def test_deleting_a_persona_tombstones_every_agent_of_it(relay_url: str, tmp_path: Path) -> None:
    fs, agents = start(tmp_path, relay_url, 3)
    owner = fs.owner_secret()
    fs("persona", "delete", "writer", "--yes")
    for agent in agents:
        assert_tombstoned(relay_url, owner, agent)
    statuses = {a["status"] for a in fs.json("agent", "list")}
    assert statuses == {"persona-deleted"}
    assert fs.json("apply")["summary"]["tombstoned"] == 0


def test_the_key_is_destroyed_only_after_the_tombstone_is_confirmed(
    relay_url: str, tmp_path: Path
) -> None:
    fs, (gone, _) = start(tmp_path, relay_url, 2)
    retired = fs.json("agent", "retire", gone, "--destroy-key", "--yes")
    assert retired["key_destroyed"] is True
    assert_tombstoned(relay_url, fs.owner_secret(), gone)


def test_a_crash_between_seal_and_send_resends_the_identical_tombstone_and_deletion(
    relay_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, (gone, _) = start(tmp_path, relay_url, 2)
    fs("agent", "retire", gone, "--no-apply")
    plan = fs.json("plan", expect=2)
    assert [c["action"] for c in plan["commands"]] == ["tombstone"]

    class Crash(Exception):
        pass

    async def crash(*_: object) -> None:
        raise Crash

    async def apply_and_crash() -> None:
        with bootstrap(Settings.load(home=fs.home, environ=fs.environ)) as fleet:
            async with fleet.reconciler() as reconciler:
                monkeypatch.setattr(reconciler.gateway, "publish", crash)
                await reconciler.apply()

    with pytest.raises(Crash):
        asyncio.run(apply_and_crash())
    assert events(relay_url, 5, gone) == []  # nothing was sent
    log = SQLiteEventLog(fs.home / "events.sqlite")
    try:
        (sealed,) = [
            r.state for r in log.read(0, 100_000) if r.topic.endswith("Agent.TombstoneSealed")
        ]
    finally:
        log.close()
    assert fs.json("plan", expect=2)["commands"][0]["action"] == "resend-tombstone"

    assert fs.json("apply")["summary"]["tombstoned"] == 1
    head = assert_tombstoned(relay_url, fs.owner_secret(), gone)
    assert head == sealed["event"]
    assert events(relay_url, 5, gone) == [sealed["deletion"]]


def test_a_key_whose_tombstone_cannot_be_confirmed_is_kept_and_the_command_says_so(
    tmp_path: Path,
) -> None:
    with start_nostr_relay(tmp_path) as relay:
        fs, (gone, _) = start(tmp_path, relay.url, 2)
    # The relay is gone: the tombstone cannot be sent, so the key that signs it stays.
    fs.environ["FLEETSYNC_RELAY_TIMEOUT"] = "1"
    code, out, err = fs.run("--json", "agent", "retire", gone, "--destroy-key", "--yes")
    assert code == 2, (out, err)
    assert json.loads(out) == {
        "pubkey": gone,
        "retired": True,
        "key_destroyed": False,
        "tombstone_due": True,
    }
    assert "the secret key was NOT destroyed" in err
    (row,) = [a for a in fs.json("agent", "list", "--all") if a["pubkey"] == gone]
    assert (row["status"], row["key_destroyed"]) == ("tombstone-due", False)
    # Sealed and stored before the send failed: the next apply resends that very event.
    assert [c["action"] for c in fs.json("plan", expect=2)["commands"]] == ["resend-tombstone"]
