"""Upgrading fleetsync past a change of digest rule republishes nothing.

``tests/fixtures/seed_rule_home`` is a home and its relay's engrams as fleetsync
wrote them while it digested personas by the seed's rule (made by
``tests/fixtures/make_seed_rule_home.py`` with that code). One persona has an
avatar and a name pool, so the seed's rule and buzz's current one give it
different digests. Today's code reads the same home and relay: the engrams carry
the same content, so plan has nothing to do and apply publishes nothing, even
after a refresh has read every head back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures.make_seed_rule_home import PERSONAS
from tests.integration.harness import Fleetsync
from tests.support.relays import start_nostr_relay
from tests.support.sdk import sdk_publish

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "seed_rule_home"
RELAY_PORT = 58821  # the port of the relay the fixture's home has configured


def test_a_home_written_under_the_seed_digest_rule_has_nothing_to_do_after_the_upgrade(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE / "home", home)
    events = json.loads((FIXTURE / "relay-events.json").read_text(encoding="utf-8"))
    with start_nostr_relay(tmp_path, port=RELAY_PORT) as relay:
        for event in events:
            assert sdk_publish(relay.url, json.dumps(event)).accepted
        fs = Fleetsync(home)
        assert fs.json("plan")["changes"] == 0
        fs("refresh")
        after_refresh = fs.json("plan")
        assert after_refresh["changes"] == 0, after_refresh
        assert fs.json("apply")["summary"]["published"] == 0
        statuses = {a["status"] for a in fs.json("agent", "list")}
        assert statuses == {"in-sync"}


def test_after_the_upgrade_only_a_hashed_change_moves_the_agents(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE / "home", home)
    events = json.loads((FIXTURE / "relay-events.json").read_text(encoding="utf-8"))
    with start_nostr_relay(tmp_path, port=RELAY_PORT) as relay:
        for event in events:
            assert sdk_publish(relay.url, json.dumps(event)).accepted
        fs = Fleetsync(home)
        shepherd = dict(PERSONAS["shepherd"])
        # The same file again: the same content, whatever rule digested it then.
        assert fs.save("shepherd", shepherd, tmp_path)["changed"] is False
        # A description is carried but hashed by no rule: a new version, no agent moves.
        described = {**shepherd, "description": "Keeps releases on track."}
        assert fs.save("shepherd", described, tmp_path, "--no-apply")["changed"] is True
        assert fs.json("plan")["changes"] == 0
        # A hashed member moves the persona's three agents, and only them.
        edited = {**described, "parallelism": 4}
        fs.save("shepherd", edited, tmp_path, "--no-apply")
        moved = fs.json("plan", expect=2)
        assert {c["persona"] for c in moved["commands"]} == {"shepherd"}
        assert len(moved["commands"]) == 3
        assert fs.json("apply")["summary"]["published"] == 3
        assert fs.json("plan")["changes"] == 0
