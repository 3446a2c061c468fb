"""``apply --team`` on a real relay: only the agents of the team's personas are
published, read back by nostr-sdk; the other agents wait for a plain ``apply``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.harness import Fleetsync
from tests.support.sdk import sdk_fetch_events

pytestmark = pytest.mark.integration


def crew_snapshot(path: Path) -> Path:
    """A buzz-team-snapshot v1 file of one member, which becomes persona ``codereviewer``."""
    member = {
        "format": "buzz-agent-snapshot",
        "version": 1,
        "definition": {"name": "CodeReviewer", "sourceIsBuiltin": False, "systemPrompt": "Rev."},
        "profile": {"displayName": "Reviewer"},
        "memory": {"level": "none"},
    }
    snapshot = {
        "format": "buzz-team-snapshot",
        "version": 1,
        "team": {"name": "Crew"},
        "members": [member],
    }
    path.write_text(json.dumps(snapshot, indent=2), encoding="utf-8")
    return path


def engram_authors(url: str, pubkeys: set[str]) -> set[str]:
    found = sdk_fetch_events(url, {"kinds": [30174], "authors": sorted(pubkeys)})
    return {json.loads(e)["pubkey"] for e in found}


def test_apply_narrowed_to_a_team_publishes_only_the_agents_of_its_personas(
    nostr_relay_url: str, tmp_path: Path
) -> None:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", nostr_relay_url)
    fs("team", "import", str(crew_snapshot(tmp_path / "crew.team.json")))
    fs.save("solo", {"display_name": "Solo", "system_prompt": "Alone."}, tmp_path, "--no-apply")
    crew = {
        a["pubkey"]
        for a in fs.json(
            "agent", "create", "--persona", "codereviewer", "--count", "2", "--no-apply"
        )["agents"]
    }
    solo = {
        a["pubkey"]
        for a in fs.json("agent", "create", "--persona", "solo", "--count", "3", "--no-apply")[
            "agents"
        ]
    }

    narrowed = fs.json("apply", "--team", "crew")
    assert narrowed["summary"]["published"] == len(crew), narrowed
    assert engram_authors(nostr_relay_url, crew | solo) == crew
    plan = fs.json("plan", expect=2)
    assert {c["agent"] for c in plan["commands"]} == solo

    rest = fs.json("apply")
    assert rest["summary"]["published"] == len(solo), rest
    assert engram_authors(nostr_relay_url, crew | solo) == crew | solo
