"""Every persona member buzz knows goes file -> persona save -> persona show -> engram on
a real relay -> read back by the owner, unchanged; and the engram's provenance names
the digest rule that made its digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.nostr.engram import Conversation, select_head
from adapters.nostr.event import Event
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.nostr.persona_engram import open_persona_head
from domain.digests import CURRENT
from domain.persona import PersonaContent
from domain.slugs import PERSONA_ENGRAM_SLUG
from tests.integration.harness import Fleetsync
from tests.support.sdk import sdk_fetch_events

pytestmark = pytest.mark.integration

REVIEWER = {
    "display_name": "Reviewer",
    "system_prompt": "Review every PR.",
    "acp_command": "buzz-janet-acp",
    "avatar_url": "https://example.com/reviewer.png",
    "runtime": "claude",
    "model": "claude-opus-4",
    "provider": "anthropic",
    "name_pool": ["Rae", "Rex"],
    "respond_to": "allowlist",
    "respond_to_allowlist": ["79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798"],
    "parallelism": 2,
    "description": "Reviews pull requests.",
    "session_policy": "thread",
}


def test_every_member_survives_save_show_and_the_engram(
    nostr_relay_url: str, tmp_path: Path
) -> None:
    owner = SecretKey.generate()
    fs = Fleetsync(tmp_path / "home")
    fs("init", "--owner-nsec", owner.nsec())
    fs("relay", "add", nostr_relay_url)
    saved = fs.save("reviewer", {**REVIEWER, "env_vars": {"TOKEN": "t0ken-value"}}, tmp_path)
    shown = fs.json("persona", "show", "reviewer")
    assert shown["content"] == REVIEWER
    assert shown["digest"] == saved["digest"] == PersonaContent.from_members(REVIEWER).digest()
    assert shown["digest_rule"] == CURRENT.name
    agent = fs.json("agent", "create", "--persona", "reviewer", "--name", "rae")
    pubkey = agent["agents"][0]["pubkey"]
    events = [
        Event.from_json(e)
        for e in sdk_fetch_events(nostr_relay_url, {"kinds": [30174], "authors": [pubkey]})
    ]
    conv = Conversation.for_owner(owner, PublicKey.from_hex(pubkey))
    carried = open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, events))
    assert carried is not None
    assert carried.content == PersonaContent.from_members(REVIEWER)
    assert carried.content.public_members() == REVIEWER
    assert carried.provenance.source_version == shown["digest"]
    assert carried.provenance.digest_rule == CURRENT.name
    assert carried.content_matches_provenance
    assert dict(carried.env_vars) == {"TOKEN": "t0ken-value"}
