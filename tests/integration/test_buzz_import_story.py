"""The buzz take-over story (issue 13): a buzz home of 20 agents whose engrams buzz
wrote on a real relay is imported; ``plan`` right after has nothing to do and
``apply`` publishes nothing; one persona edited moves only its agents, and so
does an edit buzz publishes as a ``kind:30175`` that ``persona pull`` takes in.

The engrams are written as the seed's ``fleet_update.rs`` wrote them
(fleet-update-behaviour.md, "The engram body"; ``persona_events.rs`` and
``buzz-core`` ``engram.rs`` at the seed): the content members in the seed's
order, the provenance with buzz's own persona id as slug (``builtin:fizz``, the
team's ``Lep``) and the seed digest, then ``env_vars``; no ``secrets_digest``.
Nothing of fleetsync's makes them: the body is serialised here, encrypted with
rust-nostr's NIP-44 v2 (nostr-sdk, as buzz's ``build_event`` does), addressed by
a ``d`` tag computed here, tagged ``d`` then ``p`` and signed by rust-nostr.
What is on the relay is read back with nostr-sdk too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import coincurve
import pytest

from adapters.nostr.keys import SecretKey
from domain.slugs import buzz_d_tag
from tests.integration.harness import Fleetsync
from tests.support.buzz_appdata import (
    BuzzAgentSpec,
    BuzzPersonaSpec,
    fizz,
    team_record,
    write_seed_tree,
)
from tests.support.sdk import sdk_fetch_events, sdk_nip44_encrypt, sdk_publish, sdk_sign_event

pytestmark = pytest.mark.integration

WRITER_ID = "6f1c3d2e-8a4b-4c5d-9e6f-7a8b9c0d1e2f"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def buzz_engram_body(persona: BuzzPersonaSpec, owner_hex: str) -> str:
    """A ``mem/persona`` body as the seed's desktop serialised it."""
    members: dict[str, Any] = {"display_name": persona.display_name}
    if persona.avatar_url is not None:
        members["avatar_url"] = persona.avatar_url
    members["system_prompt"] = persona.system_prompt
    for name in ("runtime", "model", "provider"):
        if getattr(persona, name) is not None:
            members[name] = getattr(persona, name)
    if persona.name_pool:
        members["name_pool"] = list(persona.name_pool)
    digest = hashlib.sha256(_compact(members).encode("utf-8")).hexdigest()
    slug = persona.source_team_persona_slug or persona.id  # persona_d_tag at the seed
    value: dict[str, Any] = {
        **members,
        "provenance": {
            "owner_pubkey": owner_hex,
            "kind": 30175,
            "slug": slug,
            "source_version": digest,
        },
    }
    if persona.env_vars:
        value["env_vars"] = dict(sorted(persona.env_vars.items()))
    return _compact({"slug": "mem/persona", "value": _compact(value)})


def buzz_engram(agent: SecretKey, owner_hex: str, body: str, created_at: int) -> str:
    """A ``kind:30174`` as buzz's ``engram::build_event`` makes it: NIP-44 v2 from the
    agent to the owner, ``d`` = HMAC-SHA256(conversation key, "agent-memory/v1/d-tag"
    NUL slug), tags exactly ``d`` and ``p``, signed by the agent."""
    shared = coincurve.PublicKey(b"\x02" + bytes.fromhex(owner_hex)).multiply(
        bytes.fromhex(agent.secret_hex())
    )
    conversation_key = hmac.digest(b"nip44-v2", shared.format()[1:], hashlib.sha256)
    d_tag = hmac.new(
        conversation_key, b"agent-memory/v1/d-tag\x00mem/persona", hashlib.sha256
    ).hexdigest()
    content = sdk_nip44_encrypt(agent.secret_hex(), owner_hex, body)
    tags = [["d", d_tag], ["p", owner_hex]]
    return sdk_sign_event(agent.secret_hex(), 30174, tags, content, created_at)


def engram_heads(url: str, agents: list[BuzzAgentSpec]) -> dict[str, str]:
    """Each agent's ``kind:30174`` on the relay, read by nostr-sdk: pubkey -> event id
    (one per agent: every engram here is ``mem/persona``)."""
    found = [
        json.loads(e)
        for e in sdk_fetch_events(url, {"kinds": [30174], "authors": [a.pubkey for a in agents]})
    ]
    heads = {e["pubkey"]: e["id"] for e in found}
    assert len(heads) == len(found), "an agent with two engrams on the relay"
    return heads


def buzz_home(
    owner: SecretKey, *, buzz_slugs: bool
) -> tuple[list[BuzzPersonaSpec], list[BuzzAgentSpec]]:
    """20 agents: with ``buzz_slugs``, 4 of the built-in Fizz and 8 of a team persona
    whose team slug is ``Lep``; else 12 of a second plain persona. 8 of Writer either way."""
    writer = BuzzPersonaSpec(
        id=WRITER_ID,
        display_name="Writer",
        system_prompt="You write clearly.",
        model="claude-opus-4",
        provider="anthropic",
        env_vars={"ANTHROPIC_API_KEY": "sk-buzz-story-secret"},
    )
    lep = BuzzPersonaSpec(
        id="0b6a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        display_name="Lep",
        system_prompt="You pollinate ideas.",
        source_team="pollinators",
        source_team_persona_slug="Lep",
    )
    plain = BuzzPersonaSpec(
        id="2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
        display_name="Reader",
        system_prompt="You read closely.",
        name_pool=["Rae", "Rex"],
    )
    counts = ((fizz(), 4), (writer, 8), (lep, 8)) if buzz_slugs else ((writer, 8), (plain, 12))
    agents = [
        BuzzAgentSpec(SecretKey.generate(), f"{p.display_name}-{i}", p.id, owner)
        for p, n in counts
        for i in range(n)
    ]
    return [p for p, _ in counts], agents


@pytest.mark.parametrize(
    "buzz_slugs",
    [
        False,
        True,
    ],
    ids=["plain-slugs", "builtin-and-team-slugs"],
)
def test_a_buzz_home_whose_engrams_buzz_wrote_is_taken_over_without_a_republish(
    any_relay_url: str, tmp_path: Path, buzz_slugs: bool
) -> None:
    owner = SecretKey.generate()
    personas, agents = buzz_home(owner, buzz_slugs=buzz_slugs)
    by_id = {p.id: p for p in personas}
    now = int(time.time()) - 60
    for agent in agents:
        body = buzz_engram_body(by_id[str(agent.persona_id)], owner.public_key.hex)
        event = buzz_engram(agent.key, owner.public_key.hex, body, now)
        assert sdk_publish(any_relay_url, event).accepted
    written_by_buzz = engram_heads(any_relay_url, agents)
    assert len(written_by_buzz) == 20
    root = write_seed_tree(
        tmp_path / "buzz", personas, agents, [team_record("pollinators", "Pollinators", [])]
    )

    fs = Fleetsync(tmp_path / "home")
    fs("init", "--owner-nsec", owner.nsec())
    fs("relay", "add", any_relay_url)
    doc = fs.json("import", "buzz", str(root))
    assert len(doc["agents"]) == 20
    # The import reads the engrams buzz wrote, so the very next plan knows them.
    assert (doc["heads"]["agents"], doc["heads"]["verified"]) == (20, True), doc["heads"]

    plan = fs.json("plan")
    assert plan["changes"] == 0, plan
    assert {a["status"] for a in fs.json("agent", "list")} == {"in-sync"}
    first = fs.json("apply")
    assert first["summary"]["published"] == 0, first
    assert engram_heads(any_relay_url, agents) == written_by_buzz  # nothing was written

    edited = {
        "display_name": "Writer",
        "system_prompt": "You write clearly and briefly.",
        "model": "claude-opus-4",
        "provider": "anthropic",
        "env_vars": {"ANTHROPIC_API_KEY": "sk-buzz-story-secret"},
    }
    fs.save(WRITER_ID, edited, tmp_path, "--no-apply")
    moved = fs.json("plan", expect=2)
    writers = {a.pubkey for a in agents if a.persona_id == WRITER_ID}
    assert {c["agent"] for c in moved["commands"]} == writers
    assert fs.json("apply")["summary"]["published"] == len(writers)
    after_edit = engram_heads(any_relay_url, agents)
    assert {a for a in after_edit if after_edit[a] != written_by_buzz[a]} == writers

    # An edit in buzz: the owner's new kind:30175 head, pulled, moves that persona's agents.
    other = personas[-1]
    d_tag = buzz_d_tag(other.source_team_persona_slug or other.id)
    content = {"display_name": other.display_name, "system_prompt": "Edited in buzz."}
    edit = sdk_sign_event(
        owner.secret_hex(), 30175, [["d", d_tag]], _compact(content), int(time.time()) + 2
    )
    assert sdk_publish(any_relay_url, edit).accepted
    pulled = fs.json("persona", "pull")
    assert [t["slug"] for t in pulled["taken"]] == [d_tag]
    followers = {a.pubkey for a in agents if a.persona_id == other.id}
    assert pulled["publish"]["summary"]["published"] == len(followers)
    after_pull = engram_heads(any_relay_url, agents)
    assert {a for a in after_pull if after_pull[a] != after_edit[a]} == followers
    assert fs.json("plan")["changes"] == 0
