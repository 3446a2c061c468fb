"""Another writer's engram on a real relay, through the CLI.

Someone holding an agent's key (the agent itself, the buzz desktop) writes new
content as its ``mem/persona`` engram, with nostr-sdk as the client. ``apply``
must not write over it: the agent is a conflict, and ``apply`` and ``plan``
exit 2 (not in sync) naming it, with nothing planned. ``apply
--overwrite-conflicts`` writes over it, and ``audit`` says what was replaced
and by whose key it had been signed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from adapters.bootstrap import bootstrap
from adapters.nostr.engram import Conversation
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.nostr.signer import KeySigner
from adapters.settings import Settings
from domain.engram_body import PersonaEngram, Provenance
from domain.persona import PersonaContent
from tests.integration.harness import Fleetsync
from tests.support.sdk import sdk_publish

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write."}


def _write_as_the_agent(fs: Fleetsync, relay_url: str, pubkey: str, prompt: str) -> str:
    """Publish new content as the agent's engram, signed with its key; returns its id."""
    with bootstrap(Settings.load(home=fs.home, environ=fs.environ)) as fleet:
        secret = fleet.keystore.get(pubkey)
        owner = fleet.owner.public_key
    content = PersonaContent(display_name="Writer", system_prompt=prompt)
    body = prepare_persona_body(
        PersonaEngram(content, Provenance(owner.hex, "writer", content.digest()))
    )
    conv = Conversation.for_agent(secret, owner)
    event = seal_persona_engram(KeySigner(secret), conv, body, int(time.time()) + 2)
    assert sdk_publish(relay_url, json.dumps(event.to_dict())).accepted
    return event.id


def test_another_writers_engram_is_a_conflict_until_a_person_overwrites_it(
    any_relay_url: str, tmp_path: Path
) -> None:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", any_relay_url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", "2", "--no-apply")
    assert fs.json("apply")["summary"]["published"] == 2
    victim = sorted(a["pubkey"] for a in fs.json("agent", "list"))[0]
    foreign = _write_as_the_agent(fs, any_relay_url, victim, "My own idea.")

    held = fs.json("apply", expect=2)
    assert held["summary"] == {**held["summary"], "published": 0, "conflicts": 1, "unchanged": 1}
    assert [a["agent"] for a in held["agents"]] == [victim]
    plan = fs.json("plan", expect=2)  # not in sync, though nothing is planned
    assert (plan["changes"], plan["conflicts"]) == (0, [victim])
    assert "wait for a person" in fs("plan", expect=2)
    assert json.loads(fs("--json", "status"))["totals"]["conflict"] == 1

    forced = fs.json("apply", "--overwrite-conflicts")
    assert forced["summary"]["published"] == 1
    audit = fs.json("audit", "--agent", victim)
    [sealed] = [e for e in audit["entries"] if e["what"] == "engram sealed"][-1:]
    assert sealed["details"]["reasons"] == ["overwrite-conflict"]
    assert sealed["details"]["replaces"]["event_id"] == foreign
    assert sealed["details"]["replaces"]["signer"] == victim
    assert sealed["details"]["replaces"]["origin"] == "foreign"
    text = fs("audit", "--agent", victim)
    assert f"replaces valid head {foreign[:12]}" in text
