"""``fleetsync plan`` and ``status``: what would be published, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.harness import Cli


def test_plan_with_nothing_to_do_exits_0(cli: Cli) -> None:
    result = cli("plan")
    assert (result.code, result.stderr) == (0, "")
    assert "nothing to do" in result.stdout
    doc = json.loads(cli("plan", "--json").stdout)
    assert doc["changes"] == 0


def test_plan_with_agents_never_published_exits_2_and_explains_why(
    cli: Cli, writer_file: Path
) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("agent", "create", "--persona", "writer", "--count", "3")
    result = cli("plan")
    assert (result.code, result.stderr) == (2, "")
    assert "3 engram(s) to publish" in result.stdout
    assert "missing" in result.stdout

    doc = json.loads(cli("plan", "--json").stdout)
    assert doc["changes"] == 3
    assert {c["reasons"] == ["missing"] for c in doc["commands"]} == {True}
    assert {c["persona"] for c in doc["commands"]} == {"writer"}
    assert {c["agent_version"] for c in doc["commands"]} == {2}, "as created and attested"


def test_plan_filters_by_persona_and_by_agent(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("persona", "save", "idle", "-", stdin='{"display_name":"I","system_prompt":"x"}')
    created = json.loads(
        cli.ok("agent", "create", "--persona", "writer", "--count", "2", "--json").stdout
    )["agents"]
    assert cli("plan", "--persona", "idle").code == 0
    one = json.loads(cli("plan", "--json", "--agent", str(created[0]["npub"])).stdout)
    assert [c["agent"] for c in one["commands"]] == [created[0]["pubkey"]]


def test_status_counts_agents_per_persona_and_status(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("agent", "create", "--persona", "writer", "--count", "2")
    doc = json.loads(cli.ok("status", "--json").stdout)
    (writer,) = doc["personas"]
    assert writer["slug"] == "writer"
    assert writer["agents"] == {"never-published": 2}
    assert "NEVER-PUBLISHED" in cli.ok("status").stdout
