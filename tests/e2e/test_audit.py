"""``fleetsync audit``: an agent's or a persona's history, now or as of a position or time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.harness import Cli, assert_one_error_line


def _two_versions_and_an_agent(cli: Cli, writer_file: Path) -> dict[str, object]:
    cli.ok("persona", "save", "writer", str(writer_file))  # position 1
    (agent,) = json.loads(cli.ok("agent", "create", "--persona", "writer", "--json").stdout)[
        "agents"
    ]
    cli.ok(  # position 4 (3 is the agent's owner attestation)
        "persona",
        "save",
        "writer",
        "-",
        stdin='{"display_name":"Writer","system_prompt":"Second version."}',
    )
    return dict(agent)


def test_an_agent_audit_lists_its_persona_versions_and_its_own_events(
    cli: Cli, writer_file: Path
) -> None:
    agent = _two_versions_and_an_agent(cli, writer_file)
    doc = json.loads(cli.ok("audit", "--agent", str(agent["pubkey"]), "--json").stdout)
    assert [e["position"] for e in doc["entries"]] == [1, 2, 3, 4]
    assert [e["what"] for e in doc["entries"]] == [
        "persona saved",
        "agent created",
        "attested",
        "persona saved",
    ]
    assert "attestation minted" in doc["entries"][2]["summary"]
    assert doc["persona"] == "writer"
    assert doc["assessment"]["status"] == "never-published"
    assert doc["assessment"]["digest"] == doc["persona_digest"]
    assert all("sealed_env_vars" not in e["details"] for e in doc["entries"])
    text = cli.ok("audit", "--agent", str(agent["npub"])).stdout
    assert "agent created" in text
    assert "never-published" in text


def test_as_of_a_log_position_answers_what_was_true_then(cli: Cli, writer_file: Path) -> None:
    agent = _two_versions_and_an_agent(cli, writer_file)
    now = json.loads(cli.ok("audit", "--agent", str(agent["pubkey"]), "--json").stdout)
    then = json.loads(
        cli.ok("audit", "--agent", str(agent["pubkey"]), "--as-of", "2", "--json").stdout
    )
    assert [e["position"] for e in then["entries"]] == [1, 2]
    assert then["as_of"] == 2
    assert then["persona_digest"] != now["persona_digest"]
    before = json.loads(
        cli.ok("audit", "--agent", str(agent["pubkey"]), "--as-of", "1", "--json").stdout
    )
    assert before["exists"] is False


def test_as_of_a_time_answers_what_was_true_then(cli: Cli, writer_file: Path) -> None:
    agent = _two_versions_and_an_agent(cli, writer_file)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    doc = json.loads(
        cli.ok("audit", "--agent", str(agent["pubkey"]), "--as-of", past, "--json").stdout
    )
    assert doc["exists"] is False
    assert doc["entries"] == []
    now = datetime.now(UTC).isoformat()
    doc = json.loads(
        cli.ok("audit", "--agent", str(agent["pubkey"]), "--as-of", now, "--json").stdout
    )
    assert len(doc["entries"]) == 4


def test_a_persona_audit_lists_its_versions_and_the_agents_that_follow_it(
    cli: Cli, writer_file: Path
) -> None:
    agent = _two_versions_and_an_agent(cli, writer_file)
    doc = json.loads(cli.ok("audit", "--persona", "writer", "--json").stdout)
    assert [(v["revision"], v["position"]) for v in doc["versions"]] == [(1, 1), (2, 4)]
    assert [a["pubkey"] for a in doc["agents"]] == [agent["pubkey"]]
    assert doc["carriers"] == {"none": [agent["pubkey"]]}
    then = json.loads(cli.ok("audit", "--persona", "writer", "--as-of", "1", "--json").stdout)
    assert [v["revision"] for v in then["versions"]] == [1]
    assert then["agents"] == []
    text = cli.ok("audit", "--persona", "writer").stdout
    assert "REV" in text
    assert str(agent["pubkey"]) in text


def test_a_persona_audit_sees_an_agent_that_has_since_moved_away(
    cli: Cli, writer_file: Path
) -> None:
    agent = _two_versions_and_an_agent(cli, writer_file)
    cli.ok("persona", "save", "other", "-", stdin='{"display_name":"O","system_prompt":"x"}')
    cli.ok("agent", "move", str(agent["pubkey"]), "--persona", "other")
    now = json.loads(cli.ok("audit", "--persona", "writer", "--json").stdout)
    assert now["agents"] == []
    then = json.loads(cli.ok("audit", "--persona", "writer", "--as-of", "3", "--json").stdout)
    assert [a["pubkey"] for a in then["agents"]] == [agent["pubkey"]]


def test_audit_refuses_bad_arguments_with_one_line(cli: Cli, writer_file: Path) -> None:
    agent = _two_versions_and_an_agent(cli, writer_file)
    pubkey = str(agent["pubkey"])
    assert_one_error_line(cli("audit", "--agent", pubkey, "--as-of", "last tuesday"), "--as-of")
    assert_one_error_line(cli("audit", "--persona", "ghost"), r"no persona 'ghost'")
    assert_one_error_line(cli("audit", "--agent", "ab" * 32), r"invalid agent|no agent")
    assert_one_error_line(cli("audit"), r"one of the arguments --agent --persona is required")
    assert_one_error_line(
        cli("audit", "--agent", pubkey, "--persona", "writer"), r"not allowed with"
    )
