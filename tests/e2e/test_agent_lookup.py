"""Agents named by name or short id wherever a command takes an agent; ambiguity is an error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, assert_one_error_line

BOT = '{"display_name": "B", "system_prompt": "Hi."}'


def _create(cli: Cli, persona: str, name: str) -> str:
    created = json.loads(
        cli.ok("agent", "create", "--persona", persona, "--name", name, "--json").stdout
    )["agents"]
    return str(created[0]["pubkey"])


@pytest.fixture
def fleet(cli: Cli, writer_file: Path) -> tuple[Cli, str, str]:
    """Two personas, an agent 'scout' in each, and one 'solo'."""
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("persona", "save", "bot", "-", stdin=BOT)
    scout = _create(cli, "writer", "scout")
    _create(cli, "bot", "scout")
    solo = _create(cli, "writer", "solo")
    return cli, scout, solo


def _persona_of(cli: Cli, pubkey: str) -> str:
    rows = json.loads(cli.ok("agent", "list", "--all", "--json").stdout)
    return str(next(r["persona"] for r in rows if r["pubkey"] == pubkey))


def test_an_agent_can_be_moved_by_its_name(fleet: tuple[Cli, str, str]) -> None:
    cli, _, solo = fleet
    moved = json.loads(cli.ok("agent", "move", "solo", "--persona", "bot", "--json").stdout)
    assert moved == {"pubkey": solo, "persona": "bot"}
    assert _persona_of(cli, solo) == "bot"


def test_an_agent_can_be_retired_by_the_short_id_plan_prints(fleet: tuple[Cli, str, str]) -> None:
    cli, _, solo = fleet
    plan = cli("plan", "--agent", "solo")
    assert plan.code == 2, plan
    short_id = re.search(r"^([0-9a-f]{16})\s+solo\s", plan.stdout, re.MULTILINE)
    assert short_id is not None, plan.stdout
    assert solo.startswith(short_id.group(1))
    retired = json.loads(cli.ok("agent", "retire", short_id.group(1), "--json").stdout)
    assert retired["pubkey"] == solo


def test_audit_and_plan_take_a_name_or_a_short_id(fleet: tuple[Cli, str, str]) -> None:
    cli, _, solo = fleet
    by_name = json.loads(cli.ok("audit", "--agent", "solo", "--json").stdout)
    by_short_id = json.loads(cli.ok("audit", "--agent", solo[:8], "--json").stdout)
    assert by_name["agent"] == by_short_id["agent"] == solo
    planned = json.loads(cli("plan", "--agent", solo[:12].upper(), "--json").stdout)
    assert [c["agent"] for c in planned["commands"]] == [solo]


def test_apply_takes_an_agent_by_name(fleet: tuple[Cli, str, str]) -> None:
    cli, _, _ = fleet
    # No relay is configured: the name must have been resolved for apply to get that far.
    result = cli("apply", "--agent", "nobody-has-this-name")
    assert_one_error_line(result, r"no agent 'nobody-has-this-name'")
    result = cli("apply", "--agent", "solo", "--json")
    assert "no agent" not in result.stderr


def test_an_ambiguous_name_is_an_error_listing_the_candidates(
    fleet: tuple[Cli, str, str],
) -> None:
    cli, scout, _ = fleet
    other = next(
        r["pubkey"]
        for r in json.loads(cli.ok("agent", "list", "--json").stdout)
        if r["name"] == "scout" and r["pubkey"] != scout
    )
    before = cli.snapshot()
    for args in (
        ("agent", "retire", "scout"),
        ("agent", "move", "scout", "--persona", "writer"),
        ("plan", "--agent", "scout"),
        ("audit", "--agent", "scout"),
        ("apply", "--agent", "scout"),
    ):
        result = cli(*args)
        assert_one_error_line(result, r"'scout' could be 2 agents")
        assert scout[:16] in result.stderr
        assert other[:16] in result.stderr
        assert "persona writer" in result.stderr
        assert "persona bot" in result.stderr
    assert cli.snapshot() == before


def test_a_short_id_that_is_also_another_agents_name_is_ambiguous(
    fleet: tuple[Cli, str, str],
) -> None:
    cli, _, solo = fleet
    # An agent named like the start of solo's key: both fit, neither is guessed.
    _create(cli, "bot", solo[:10])
    before = cli.snapshot()
    assert_one_error_line(cli("agent", "retire", solo[:10]), r"could be 2 agents")
    assert cli.snapshot() == before
    # A longer short id names solo alone.
    assert json.loads(cli.ok("agent", "retire", solo[:11], "--json").stdout)["pubkey"] == solo


def test_a_hex_word_shorter_than_a_short_id_is_only_a_name(fleet: tuple[Cli, str, str]) -> None:
    cli, _, solo = fleet
    assert_one_error_line(cli("agent", "retire", solo[:7]), r"no agent")
