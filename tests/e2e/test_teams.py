"""``fleetsync team import|sync|list|show`` and ``--team``, against a real home, one process each.

The packs are built as buzz's seed read them (``.plugin/plugin.json`` plus
``*.persona.md`` files with YAML front matter), the snapshots as buzz writes
``buzz-team-snapshot`` v1 files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, assert_one_error_line

LEP = """---
name: Lep
display_name: "Lep"
description: Security reviewer
avatar: ./avatars/lep.png
skills:
  - "./skills/security-review/"
mcp_servers:
  - name: "semgrep"
    command: "semgrep-mcp"
triggers:
  mentions: true
max_context_tokens: 128000
---
You are Lep.
"""

PIP = """---
name: pip
display_name: Pip
description: Generalist
model: "openai:gpt-5"
runtime: goose
---
You are Pip.
"""


def write_pack(root: Path, personas: dict[str, str] | None = None, **manifest: object) -> Path:
    """A persona pack under ``root``: the personas as files, the manifest naming them."""
    personas = {"lep": LEP, "pip": PIP} if personas is None else personas
    (root / ".plugin").mkdir(parents=True, exist_ok=True)
    (root / "agents").mkdir(exist_ok=True)
    for name, text in personas.items():
        (root / "agents" / f"{name}.persona.md").write_text(text, encoding="utf-8")
    (root / "instructions.md").write_text("Be kind.\n", encoding="utf-8")
    doc: dict[str, object] = {
        "id": "meadow",
        "name": "Meadow Team",
        "version": "1.0.0",
        "description": "Reviewers",
        "personas": [f"agents/{name}.persona.md" for name in personas],
        "pack_instructions": "instructions.md",
        "defaults": {"model": "anthropic:claude-sonnet-4", "temperature": 0.7},
    }
    doc.update(manifest)
    (root / ".plugin" / "plugin.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "meadow")


def test_importing_a_pack_saves_its_personas_the_way_buzzs_seed_read_them(
    cli: Cli, pack: Path
) -> None:
    result = cli.ok("team", "import", str(pack))
    assert "imported team 'meadow': 2 persona(s) added" in result.stdout
    lep = json.loads(cli.ok("persona", "show", "lep", "--json").stdout)
    assert lep["content"]["display_name"] == "Lep"
    assert lep["content"]["system_prompt"] == (
        "You are Lep.\n\n\n---\n# Team Instructions\nBe kind.\n"
    )
    assert lep["content"]["avatar_url"] == "./avatars/lep.png"
    # The pack's default model, split at its first ':'.
    assert (lep["content"]["provider"], lep["content"]["model"]) == ("anthropic", "claude-sonnet-4")
    assert lep["env_vars"] == ["GOOSE_CONTEXT_LIMIT", "GOOSE_TEMPERATURE"]
    pip = json.loads(cli.ok("persona", "show", "pip", "--json").stdout)
    assert (pip["content"]["provider"], pip["content"]["model"]) == ("openai", "gpt-5")
    assert pip["content"]["runtime"] == "goose"
    team = json.loads(cli.ok("team", "show", "meadow", "--json").stdout)
    assert team["personas"] == ["lep", "pip"]
    assert team["instructions"] == "Be kind.\n"
    assert team["source"] == f"pack:{pack}"


def test_importing_the_same_pack_twice_records_nothing_the_second_time(
    cli: Cli, pack: Path
) -> None:
    cli.ok("team", "import", str(pack))
    before = cli.snapshot()
    result = cli.ok("team", "import", str(pack))
    assert "team 'meadow' unchanged (2 persona(s)); nothing recorded" in result.stdout
    assert cli.snapshot() == before


def test_the_audit_says_a_persona_version_came_from_the_team_pack(cli: Cli, pack: Path) -> None:
    cli.ok("team", "import", str(pack))
    doc = json.loads(cli.ok("audit", "--persona", "lep", "--json").stdout)
    assert doc["versions"][0]["cause"] == {
        "kind": "team",
        "team": "meadow",
        "source": f"pack:{pack}",
    }
    assert f"team meadow from pack:{pack}" in cli.ok("audit", "--persona", "lep").stdout


def test_importing_a_changed_pack_refuses_and_points_at_sync(cli: Cli, pack: Path) -> None:
    cli.ok("team", "import", str(pack))
    before = cli.snapshot()
    (pack / "agents" / "pip.persona.md").write_text(PIP.replace("Pip.", "Pip, v2."), "utf-8")
    result = cli("team", "import", str(pack))
    assert_one_error_line(result, "already imported .* 'fleetsync team sync'")
    assert cli.snapshot() == before


def test_sync_updates_content_keeps_secrets_adds_and_removes_personas(
    cli: Cli, pack: Path, tmp_path: Path
) -> None:
    cli.ok("team", "import", str(pack))
    cli.ok("agent", "create", "--persona", "pip")
    # pip changes, lep leaves (no agent follows it), fern joins; temperature changes.
    fern = PIP.replace("name: pip", "name: Fern").replace("Pip", "Fern")
    new_pip = PIP.replace("You are Pip.", "You are Pip, v2.")
    write_pack(pack, {"pip": new_pip, "fern": fern}, defaults={"temperature": 0.1})
    (pack / "agents" / "lep.persona.md").unlink()
    secrets_before = json.loads(cli.ok("persona", "show", "pip", "--json").stdout)
    result = cli.ok("team", "sync", str(pack), "--no-apply")
    assert "synced team 'meadow': 1 persona(s) added, 1 updated, 0 unchanged, 1 deleted" in (
        result.stdout
    )
    pip = json.loads(cli.ok("persona", "show", "pip", "--json").stdout)
    assert pip["content"]["system_prompt"].startswith("You are Pip, v2.")
    assert pip["secrets_digest"] == secrets_before["secrets_digest"]  # env_vars kept
    assert json.loads(cli.ok("team", "show", "meadow", "--json").stdout)["personas"] == [
        "pip",
        "fern",
    ]
    assert "lep (deleted)" in cli.ok("persona", "list", "--all").stdout
    before = cli.snapshot()
    assert "nothing recorded" in cli.ok("team", "sync", str(pack)).stdout
    assert cli.snapshot() == before


def test_sync_keeps_a_persona_that_left_the_pack_while_agents_follow_it(
    cli: Cli, pack: Path
) -> None:
    cli.ok("team", "import", str(pack))
    cli.ok("agent", "create", "--persona", "lep")
    write_pack(pack, {"pip": PIP})
    result = cli.ok("team", "sync", str(pack), "--no-apply")
    assert "left the team but kept" in result.stdout
    assert "lep" in result.stdout
    assert json.loads(cli.ok("persona", "show", "lep", "--json").stdout)["deleted"] is False


def test_sync_of_a_team_never_imported_is_refused(cli: Cli, pack: Path) -> None:
    before = cli.snapshot()
    assert_one_error_line(cli("team", "sync", str(pack)), "no team 'meadow' to sync")
    assert cli.snapshot() == before


def test_a_pack_persona_is_never_saved_over_a_persona_saved_outside_the_team(
    cli: Cli, pack: Path
) -> None:
    cli.ok("persona", "save", "pip", "-", stdin='{"display_name":"Mine","system_prompt":"x"}')
    before = cli.snapshot()
    result = cli("team", "import", str(pack))
    assert_one_error_line(result, "persona 'pip' is already saved here .* not taken over")
    assert cli.snapshot() == before


@pytest.mark.parametrize("action", ["import", "sync"])
def test_with_legacy_team_sync_off_a_pack_directory_is_refused_naming_what_replaces_it(
    cli: Cli, pack: Path, action: str
) -> None:
    before = cli.snapshot()
    result = cli("team", action, str(pack), env={"FLEETSYNC_LEGACY_TEAM_SYNC": "0"})
    assert_one_error_line(result, "FLEETSYNC_LEGACY_TEAM_SYNC.*buzz-team-snapshot.*team pull")
    assert cli.snapshot() == before


def _break(pack: Path, how: str) -> str:
    """Damage ``pack`` one way; returns the file the error must name."""
    lep = pack / "agents" / "lep.persona.md"
    manifest = pack / ".plugin" / "plugin.json"
    match how:
        case "no manifest":
            manifest.unlink()
            return str(manifest)
        case "manifest not json":
            manifest.write_text("{", "utf-8")
            return str(manifest)
        case "manifest without id":
            doc = json.loads(manifest.read_text("utf-8"))
            del doc["id"]
            manifest.write_text(json.dumps(doc), "utf-8")
            return str(manifest)
        case "bad team id":
            doc = json.loads(manifest.read_text("utf-8"))
            doc["id"] = ".hidden"
            manifest.write_text(json.dumps(doc), "utf-8")
            return str(manifest)
        case "persona file missing":
            lep.unlink()
            return str(lep)
        case "path outside the pack":
            doc = json.loads(manifest.read_text("utf-8"))
            doc["personas"] = ["../elsewhere.persona.md"]
            manifest.write_text(json.dumps(doc), "utf-8")
            return str(pack / "../elsewhere.persona.md")
        case "symlinked persona":
            lep.unlink()
            os.symlink(pack / "agents" / "pip.persona.md", lep)
            return str(lep)
        case "unknown front matter key":
            lep.write_text(LEP.replace("name: Lep", "name: Lep\nmood: happy"), "utf-8")
            return str(lep)
        case "no front matter":
            lep.write_text("You are Lep.\n", "utf-8")
            return str(lep)
        case "bad yaml":
            lep.write_text(LEP.replace("name: Lep", "name: &x Lep"), "utf-8")
            return str(lep)
        case "blank description":
            lep.write_text(LEP.replace("Security reviewer", "''"), "utf-8")
            return str(lep)
        case "bad persona name":
            lep.write_text(LEP.replace("name: Lep", "name: Lep Two"), "utf-8")
            return str(lep)
        case "duplicate name":
            lep.write_text(PIP, "utf-8")
            return str(pack / "agents" / "pip.persona.md")
        case "temperature not a number":
            lep.write_text(LEP.replace("max_context_tokens: 128000", "temperature: hot"), "utf-8")
            return str(lep)
        case "body too large":
            lep.write_text(LEP + "x" * 262_145, "utf-8")
            return str(lep)
        case "not utf-8":
            lep.write_bytes(b"---\nname: \xff\n---\n")
            return str(lep)
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "no manifest",
        "manifest not json",
        "manifest without id",
        "bad team id",
        "persona file missing",
        "path outside the pack",
        "symlinked persona",
        "unknown front matter key",
        "no front matter",
        "bad yaml",
        "blank description",
        "bad persona name",
        "duplicate name",
        "temperature not a number",
        "body too large",
        "not utf-8",
    ],
)
def test_a_bad_pack_saves_nothing_and_names_the_file(cli: Cli, pack: Path, how: str) -> None:
    named = _break(pack, how)
    before = cli.snapshot()
    result = cli("team", "import", str(pack))
    assert_one_error_line(result, "")
    assert named in result.stderr, result.stderr
    assert cli.snapshot() == before


def test_a_pack_whose_last_persona_is_bad_saves_none_of_the_others(
    cli: Cli, tmp_path: Path
) -> None:
    # The persona is well formed but breaks a rule only a save checks (name_pool
    # is empty here, so use a prompt too large for an engram).
    huge = PIP.replace("name: pip", "name: big").replace("You are Pip.", "y" * 200_000)
    pack = write_pack(tmp_path / "p", {"pip": PIP, "big": huge})
    before = cli.snapshot()
    result = cli("team", "import", str(pack))
    assert_one_error_line(result, f"{pack}: persona 'big'")
    assert cli.snapshot() == before


def test_a_snapshot_file_is_imported_with_legacy_sync_off_and_again_records_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    snapshot = {
        "format": "buzz-team-snapshot",
        "version": 1,
        "team": {"name": "Review Crew", "description": "PRs"},
        "members": [
            {
                "format": "buzz-agent-snapshot",
                "version": 1,
                "definition": {
                    "name": "CodeReviewer",
                    "sourceIsBuiltin": False,
                    "systemPrompt": "Review.",
                },
                "profile": {"displayName": "Reviewer", "avatarUrl": "https://x/a.png"},
                "memory": {"level": "none"},
            }
        ],
    }
    path = tmp_path / "crew.team.json"
    path.write_text(json.dumps(snapshot, indent=2), "utf-8")
    off = {"FLEETSYNC_LEGACY_TEAM_SYNC": "off"}
    result = cli("team", "import", str(path), env=off)
    assert result.code == 0, result
    assert "imported team 'review-crew': 1 persona(s) added" in result.stdout
    shown = json.loads(cli.ok("persona", "show", "codereviewer", "--json").stdout)
    assert shown["content"]["avatar_url"] == "https://x/a.png"
    before = cli.snapshot()
    assert cli("team", "import", str(path), env=off).code == 0
    assert cli.snapshot() == before


SNAPSHOT_MEMBER = {
    "format": "buzz-agent-snapshot",
    "version": 1,
    "definition": {"name": "CodeReviewer", "sourceIsBuiltin": False, "systemPrompt": "Review."},
    "profile": {"displayName": "Reviewer"},
    "memory": {"level": "none"},
}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("crew.team.json", "{not json", "not valid JSON|JSON"),
        ("crew.team.json", {"format": "other", "version": 1}, "unsupported team snapshot format"),
        (
            "crew.team.json",
            {"format": "buzz-team-snapshot", "version": 1, "team": {"name": "C"}, "members": []},
            "'members' must be a non-empty array",
        ),
        (
            "crew.team.json",
            {
                "format": "buzz-team-snapshot",
                "version": 1,
                "team": {"name": "C"},
                "members": [{**SNAPSHOT_MEMBER, "memory": {"level": "none", "entries": [{}]}}],
            },
            "memory.level 'none' but non-empty entries",
        ),
        ("crew.team.png", b"\x89PNG\r\n\x1a\nnot a png", "PNG"),
    ],
)
def test_a_snapshot_file_that_is_not_what_buzz_writes_is_one_error_naming_it(
    cli: Cli, tmp_path: Path, name: str, content: object, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    before = cli.snapshot()
    result = cli("team", "import", str(path))
    assert_one_error_line(result, message)
    assert str(path) in result.stderr
    assert cli.snapshot() == before


def test_a_legacy_flat_team_file_is_refused_with_buzzs_words(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "old.team.json"
    path.write_text(json.dumps({"version": 1, "type": "team", "name": "x"}), "utf-8")
    before = cli.snapshot()
    result = cli("team", "import", str(path))
    assert_one_error_line(result, "Legacy team files are no longer supported")
    assert str(path) in result.stderr
    assert cli.snapshot() == before


def test_team_filters_agent_list_status_and_plan_to_the_teams_personas(
    cli: Cli, pack: Path
) -> None:
    cli.ok("team", "import", str(pack))
    cli.ok("persona", "save", "solo", "-", stdin='{"display_name":"S","system_prompt":"x"}')
    cli.ok("agent", "create", "--persona", "lep")
    cli.ok("agent", "create", "--persona", "solo")
    listed = json.loads(cli.ok("agent", "list", "--team", "meadow", "--json").stdout)
    assert [a["persona"] for a in listed] == ["lep"]
    status = json.loads(cli.ok("status", "--team", "meadow", "--json").stdout)
    assert [p["slug"] for p in status["personas"]] == ["lep", "pip"]
    plan = cli("plan", "--team", "meadow", "--json")
    assert plan.code == 2, plan
    assert [c["persona"] for c in json.loads(plan.stdout)["commands"]] == ["lep"]
    everything = json.loads(cli("plan", "--json").stdout)
    assert sorted(c["persona"] for c in everything["commands"]) == ["lep", "solo"]


def test_an_unknown_team_filter_is_an_error_not_an_empty_answer(cli: Cli) -> None:
    for command in (("agent", "list"), ("status",), ("plan",)):
        assert_one_error_line(cli(*command, "--team", "nope"), "no team 'nope'")


def test_a_persona_filter_outside_the_team_is_an_error(cli: Cli, pack: Path) -> None:
    cli.ok("team", "import", str(pack))
    cli.ok("persona", "save", "solo", "-", stdin='{"display_name":"S","system_prompt":"x"}')
    result = cli("plan", "--team", "meadow", "--persona", "solo")
    assert_one_error_line(result, "persona 'solo' is not in team 'meadow'")
