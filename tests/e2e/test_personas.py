"""``fleetsync persona save|show|list|delete`` against a real home, one process each."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import WRITER
from tests.e2e.harness import Cli, all_bytes, assert_one_error_line


def test_saving_a_persona_from_a_file_records_revision_1(cli: Cli, writer_file: Path) -> None:
    result = cli.ok("persona", "save", "writer", str(writer_file))
    assert "saved persona 'writer': revision 1" in result.stdout
    assert cli.snapshot().max_position == 1


def test_saving_the_same_definition_from_stdin_is_a_no_op(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    before = cli.snapshot()
    result = cli.ok("persona", "save", "writer", "-", stdin=WRITER)
    assert "persona 'writer' unchanged (revision 1)" in result.stdout
    assert cli.snapshot() == before


def test_member_order_and_whitespace_do_not_make_a_new_version(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    reordered = json.dumps(dict(reversed(list(json.loads(WRITER).items()))))
    result = cli.ok("--json", "persona", "save", "writer", "-", stdin=reordered)
    assert json.loads(result.stdout)["changed"] is False


def test_a_changed_definition_makes_revision_2_and_history_lists_both(
    cli: Cli, writer_file: Path
) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    changed = json.loads(WRITER)
    changed["system_prompt"] = "You write even more clearly."
    cli.ok("persona", "save", "writer", "-", stdin=json.dumps(changed))
    rotated = dict(changed, env_vars={"OPENAI_API_KEY": "sk-rotated"})
    cli.ok("persona", "save", "writer", "-", stdin=json.dumps(rotated))

    doc = json.loads(cli.ok("persona", "show", "writer", "--history", "--json").stdout)
    assert doc["revision"] == 3
    assert [h["change"] for h in doc["history"]] == ["created", "content", "secrets"]
    assert [h["actor"] for h in doc["history"]] == ["e2e"] * 3
    assert [h["position"] for h in doc["history"]] == [1, 2, 3]
    assert doc["history"][-1]["digest"] == doc["digest"]

    text = cli.ok("persona", "show", "writer", "--history").stdout
    assert "CHANGE" in text
    assert text.count(" e2e ") == 3


def test_show_prints_the_content_and_only_the_names_of_secrets(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    text = cli.ok("persona", "show", "writer").stdout
    assert "display_name:  Writer" in text.replace("display_name:   ", "display_name:  ")
    assert "You write clearly." in text
    assert "env_vars:       OPENAI_API_KEY (hidden)" in text
    assert "sk-e2e-very-secret-value" not in text
    doc = json.loads(cli.ok("persona", "show", "writer", "--json").stdout)
    assert doc["env_vars"] == ["OPENAI_API_KEY"]
    assert doc["content"]["model"] == "gpt-x"
    assert "sk-e2e-very-secret-value" not in json.dumps(doc)


def test_persona_secrets_are_never_stored_in_plaintext(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("persona", "list")  # builds the view file too
    assert b"sk-e2e-very-secret-value" not in all_bytes(cli.home)
    assert b"OPENAI_API_KEY" not in all_bytes(cli.home)  # names are sealed with the values


def test_persona_list_shows_saved_personas_and_hides_deleted_ones(
    cli: Cli, writer_file: Path
) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("persona", "save", "editor", "-", stdin='{"display_name":"E","system_prompt":"Edit."}')
    listed = json.loads(cli.ok("persona", "list", "--json").stdout)
    assert [p["slug"] for p in listed] == ["editor", "writer"]
    cli.ok("persona", "delete", "editor")
    assert "editor" not in cli.ok("persona", "list").stdout
    assert "editor (deleted)" in cli.ok("persona", "list", "--all").stdout


def test_deleting_an_unknown_persona_is_an_error(cli: Cli) -> None:
    assert_one_error_line(cli("persona", "delete", "ghost"), r"no persona 'ghost'")
