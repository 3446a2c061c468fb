"""Bad input: one clear line on stderr, exit 1, no traceback, and the store unchanged.

Every case snapshots the event rows and the key rows before and after: a
refused command must not leave a persona version, an agent, or an orphan key.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.cli.personas import MAX_DEFINITION_BYTES
from adapters.nostr.keys import SecretKey
from domain.engram_body import PersonaEngram, Provenance, encode_persona_body
from domain.engram_size import MAX_PLAINTEXT_BYTES, max_engram_body_bytes
from domain.persona import PersonaContent
from tests.e2e.conftest import WRITER
from tests.e2e.harness import Cli, assert_one_error_line


@pytest.fixture
def seeded(cli: Cli, writer_file: Path) -> Cli:
    """A home with one persona and one agent, so 'unchanged' has something to compare."""
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("agent", "create", "--persona", "writer")
    return cli


def refused(cli: Cli, pattern: str, *args: str, stdin: str | bytes | None = None) -> None:
    before = cli.snapshot()
    assert_one_error_line(cli(*args, stdin=stdin), pattern)
    assert cli.snapshot() == before


@pytest.mark.parametrize("slug", ["Writer", "_lead", "has space", "a" * 65, "", "ünï"])
def test_an_invalid_slug_is_refused(seeded: Cli, writer_file: Path, slug: str) -> None:
    # "--": a slug starting with "-" must reach the slug check, not argparse.
    refused(seeded, r"invalid persona slug", "persona", "save", "--", slug, str(writer_file))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{", r"not valid JSON"),
        ('{"display_name": "A", "system_prompt": "x",}', r"not valid JSON"),
        ('{"display_name": "A", "display_name": "B", "system_prompt": "x"}', r"duplicate"),
        ("[1, 2]", r"must be a JSON object"),
        ("", r"not valid JSON"),
    ],
)
def test_malformed_json_is_refused(seeded: Cli, text: str, pattern: str) -> None:
    refused(seeded, pattern, "persona", "save", "writer", "-", stdin=text)


@pytest.mark.parametrize("missing", ["display_name", "system_prompt"])
def test_a_missing_required_field_is_refused(seeded: Cli, missing: str) -> None:
    doc = {"display_name": "A", "system_prompt": "x"}
    del doc[missing]
    refused(
        seeded,
        rf"missing the required field '{missing}'",
        "persona",
        "save",
        "p",
        "-",
        stdin=json.dumps(doc),
    )


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ({"display_name": 1, "system_prompt": "x"}, r"display_name must be a string"),
        ({"display_name": "A", "system_prompt": "x", "name_pool": "Ann"}, r"name_pool"),
        ({"display_name": "A", "system_prompt": "x", "env_vars": {"K": 1}}, r"env_vars\['K'\]"),
        ({"display_name": "A", "system_prompt": "x", "env_vars": {"1X": "v"}}, r"not a valid"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused(seeded: Cli, doc: object, pattern: str) -> None:
    refused(seeded, pattern, "persona", "save", "writer", "-", stdin=json.dumps(doc))


def test_a_secret_value_is_never_echoed_in_an_error(seeded: Cli) -> None:
    doc = {"display_name": "A", "system_prompt": "x", "env_vars": {"TOKEN": "sk-\ud800"}}
    text = json.dumps(doc)  # a lone surrogate: parses, but is not UTF-8
    before = seeded.snapshot()
    result = seeded("persona", "save", "writer", "-", stdin=text)
    assert_one_error_line(result, r"env_vars\['TOKEN'\]")
    assert "sk-" not in result.stderr
    assert seeded.snapshot() == before


def test_a_file_that_is_not_utf8_is_refused(seeded: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"display_name":"Caf\xe9","system_prompt":"x"}'.encode("latin-1"))
    refused(seeded, r"is not UTF-8", "persona", "save", "writer", str(bad))


def test_a_missing_file_is_refused(seeded: Cli, tmp_path: Path) -> None:
    refused(seeded, r"No such file", "persona", "save", "writer", str(tmp_path / "nope.json"))


def test_an_unknown_persona_is_refused_and_no_key_is_left_behind(seeded: Cli) -> None:
    refused(seeded, r"no persona 'ghost'", "agent", "create", "--persona", "ghost", "--count", "5")
    nsec = SecretKey.generate().nsec()
    refused(seeded, r"no persona 'ghost'", "agent", "import", "--nsec", nsec, "--persona", "ghost")
    refused(seeded, r"no persona 'ghost'", "persona", "show", "ghost")
    refused(seeded, r"no persona 'ghost'", "plan", "--persona", "ghost")


def test_a_deleted_persona_gets_no_new_agents(seeded: Cli) -> None:
    seeded.ok("persona", "delete", "writer", "--yes")
    refused(seeded, r"no persona 'writer'", "agent", "create", "--persona", "writer")


def _prompt_for_body_size(size: int) -> str:
    """A system prompt that makes the persona 'big''s engram body exactly ``size`` bytes.

    The body holds the owner's key and the digests, whose lengths are fixed, so
    placeholders of the same lengths give the real size.
    """

    def body(prompt: str) -> int:
        content = PersonaContent(display_name="Big", system_prompt=prompt)
        provenance = Provenance("ab" * 32, "big", "cd" * 32, "ef" * 32)
        return len(encode_persona_body(PersonaEngram(content, provenance)).encode("utf-8"))

    overhead = body("")
    return "x" * (size - overhead)


def test_a_persona_whose_engram_would_exceed_65535_bytes_is_refused(seeded: Cli) -> None:
    prompt = _prompt_for_body_size(MAX_PLAINTEXT_BYTES + 1)
    doc = json.dumps({"display_name": "Big", "system_prompt": prompt})
    refused(seeded, r"65535|NIP-44", "persona", "save", "big", "-", stdin=doc)


def test_a_60000_byte_prompt_is_refused_with_the_size_its_event_would_have(seeded: Cli) -> None:
    doc = json.dumps({"display_name": "Big", "system_prompt": "x" * 60_000})
    refused(
        seeded,
        r"would be a 87,973-byte event message; relays commonly accept at most 65,536 bytes",
        "persona",
        "save",
        "big",
        "-",
        stdin=doc,
    )


def test_the_largest_engram_relays_accept_is_saved_and_one_byte_more_is_refused(
    seeded: Cli,
) -> None:
    largest = max_engram_body_bytes(created_at=int(time.time()))
    over = json.dumps({"display_name": "Big", "system_prompt": _prompt_for_body_size(largest + 1)})
    refused(seeded, rf"may be at most {largest:,}", "persona", "save", "big", "-", stdin=over)
    doc = json.dumps({"display_name": "Big", "system_prompt": _prompt_for_body_size(largest)})
    assert "saved persona 'big'" in seeded.ok("persona", "save", "big", "-", stdin=doc).stdout


def test_an_oversize_update_keeps_the_previous_version(seeded: Cli) -> None:
    prompt = "y" * MAX_PLAINTEXT_BYTES
    doc = json.dumps({"display_name": "Writer", "system_prompt": prompt})
    refused(seeded, r"engram body is \d+ bytes", "persona", "save", "writer", "-", stdin=doc)
    shown = json.loads(seeded.ok("persona", "show", "writer", "--json").stdout)
    assert shown["revision"] == 1


def test_a_persona_file_larger_than_the_bound_is_refused_naming_file_and_limit(
    seeded: Cli, tmp_path: Path
) -> None:
    big = tmp_path / "huge.json"
    text = json.dumps({"display_name": "H", "system_prompt": "x"})
    big.write_text(text + " " * (MAX_DEFINITION_BYTES + 1 - len(text)), encoding="utf-8")
    pattern = rf"{re.escape(str(big))} is larger than 1,048,576 bytes"
    refused(seeded, pattern, "persona", "save", "huge", str(big))
    refused(
        seeded,
        r"stdin is larger than 1,048,576 bytes",
        "persona",
        "save",
        "huge",
        "-",
        stdin=big.read_bytes(),
    )
    refused(seeded, r"/dev/zero is larger than 1,048,576", "persona", "save", "z", "/dev/zero")


def test_a_misspelt_member_of_the_persona_file_is_refused_and_named(seeded: Cli) -> None:
    doc = json.loads(WRITER)
    doc["env_var"] = doc.pop("env_vars")
    before = seeded.snapshot()
    result = seeded("persona", "save", "writer", "-", stdin=json.dumps(doc))
    assert_one_error_line(result, r"unknown member\(s\) 'env_var' \(did you mean 'env_vars'\?\)")
    assert "sk-e2e" not in result.stderr
    assert seeded.snapshot() == before


@pytest.mark.parametrize(
    ("members", "field"),
    [
        ({"system_prompt": "Call with sk-e2e-very-secret-value please."}, "system_prompt"),
        ({"model": "sk-e2e-very-secret-value"}, "model"),
        ({"name_pool": ["Ann", "sk-e2e-very-secret-value"]}, r"name_pool\[1\]"),
    ],
)
def test_a_secret_value_in_a_public_field_is_refused_without_echoing_it(
    seeded: Cli, members: dict[str, object], field: str
) -> None:
    doc = {**json.loads(WRITER), **members}
    before = seeded.snapshot()
    result = seeded("persona", "save", "writer", "-", stdin=json.dumps(doc))
    assert_one_error_line(
        result, rf"env_vars\['OPENAI_API_KEY'\] appears in the public field {field}"
    )
    assert "sk-e2e" not in result.stderr
    assert seeded.snapshot() == before


@pytest.mark.parametrize(
    ("pool", "pattern"),
    [
        (["Ann", "B\x1b[31mob"], r"name_pool\[1\] 'B\\x1b\[31mob' contains a control"),
        (["\u202eAnn"], r"name_pool\[0\] .* contains a bidi control \(\\u202e\)"),
        (["Ann", ""], r"name_pool\[1\] '' must not be empty"),
        (["n" * 129], r"name_pool\[0\] .* is 129 characters long; at most 128"),
        (["Ann", "Bob", "Ann"], r"name_pool lists 'Ann' more than once"),
    ],
)
def test_name_pool_entries_obey_the_rules_of_names(
    seeded: Cli, pool: list[str], pattern: str
) -> None:
    doc = {"display_name": "P", "system_prompt": "x", "name_pool": pool}
    refused(seeded, pattern, "persona", "save", "writer", "-", stdin=json.dumps(doc))


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("Ann\x1b]0;owned\x07", r"--name 'Ann\\x1b\]0;owned\\x07' contains a control"),
        ("abc\u202edef", r"contains a bidi control \(\\u202e\) at character 4"),
        ("two\nlines", r"\(\\x0a\)"),
        ("n" * 129, r"129 characters long; at most 128"),
        ("  ", r"must not be empty"),
    ],
)
def test_an_agent_name_with_unsafe_characters_is_refused(
    seeded: Cli, name: str, pattern: str
) -> None:
    refused(seeded, pattern, "agent", "create", "--persona", "writer", "--name", name)
    nsec = SecretKey.generate().nsec()
    refused(
        seeded, pattern, "agent", "import", "--nsec", nsec, "--persona", "writer", "--name", name
    )


def test_a_name_another_agent_of_the_persona_has_is_refused_unless_forced(seeded: Cli) -> None:
    seeded.ok("agent", "create", "--persona", "writer", "--name", "Scribe")
    pattern = r"persona 'writer' already has an agent named 'Scribe'.*--force"
    refused(seeded, pattern, "agent", "create", "--persona", "writer", "--name", "Scribe")
    nsec = SecretKey.generate().nsec()
    refused(
        seeded,
        pattern,
        "agent",
        "import",
        "--nsec",
        nsec,
        "--persona",
        "writer",
        "--name",
        "Scribe",
    )
    seeded.ok("agent", "create", "--persona", "writer", "--name", "Scribe", "--force")
    names = [a["name"] for a in json.loads(seeded.ok("agent", "list", "--json").stdout)]
    assert names.count("Scribe") == 2


def test_an_agent_cannot_move_into_a_persona_where_its_name_is_taken(seeded: Cli) -> None:
    seeded.ok("persona", "save", "other", "-", stdin='{"display_name":"O","system_prompt":"y"}')
    seeded.ok("agent", "create", "--persona", "other", "--name", "Scribe")
    mover = json.loads(
        seeded.ok("agent", "create", "--persona", "writer", "--name", "Scribe", "--json").stdout
    )["agents"][0]["pubkey"]
    pattern = r"persona 'other' already has an agent named 'Scribe'"
    refused(seeded, pattern, "agent", "move", mover, "--persona", "other")
    seeded.ok("agent", "move", mover, "--persona", "other", "--force")


def test_a_retired_agent_s_name_can_be_given_again(seeded: Cli) -> None:
    first = json.loads(
        seeded.ok("agent", "create", "--persona", "writer", "--name", "Scribe", "--json").stdout
    )["agents"][0]["pubkey"]
    seeded.ok("agent", "retire", first)
    seeded.ok("agent", "create", "--persona", "writer", "--name", "Scribe")


@pytest.mark.parametrize("actor", ["ops\x1b[2J", "ali\u202ece", "   "])
def test_an_actor_with_unsafe_characters_is_refused(seeded: Cli, actor: str) -> None:
    before = seeded.snapshot()
    result = seeded(
        "persona",
        "save",
        "p",
        "-",
        stdin='{"display_name":"P","system_prompt":"x"}',
        env={"FLEETSYNC_ACTOR": actor},
    )
    assert_one_error_line(result, r"FLEETSYNC_ACTOR")
    assert "\x1b" not in result.stderr
    assert "\u202e" not in result.stderr
    assert seeded.snapshot() == before


@pytest.mark.parametrize(
    "args",
    [
        ("apply", "--persona", "nope"),
        ("apply", "--persona", "nope", "--no-refresh"),
        ("refresh", "--persona", "nope"),
        ("status", "--persona", "nope"),
    ],
)
def test_a_persona_filter_naming_nothing_is_an_error(seeded: Cli, args: tuple[str, ...]) -> None:
    seeded.ok("relay", "add", "ws://127.0.0.1:9")
    refused(seeded, r"no persona 'nope'", *args)


def test_an_agent_filter_naming_nothing_is_an_error(seeded: Cli) -> None:
    seeded.ok("relay", "add", "ws://127.0.0.1:9")
    pubkey = SecretKey.generate().public_key.hex
    refused(seeded, r"no agent", "apply", "--agent", pubkey)


def test_as_of_beyond_the_end_of_the_log_is_an_error(seeded: Cli) -> None:
    end = seeded.snapshot().max_position
    agent = json.loads(seeded.ok("agent", "list", "--json").stdout)[0]["pubkey"]
    seeded.ok("audit", "--agent", agent, "--as-of", str(end))
    pattern = rf"--as-of {end + 1} is beyond the end of the log \(its last position is {end}\)"
    refused(seeded, pattern, "audit", "--agent", agent, "--as-of", str(end + 1))
    refused(seeded, pattern, "audit", "--persona", "writer", "--as-of", str(end + 1))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused(seeded, r"is in the future", "audit", "--persona", "writer", "--as-of", tomorrow)


@pytest.mark.parametrize(
    "nsec", ["nsec1notreallyakey", "00" * 32, "ff" * 32, "npub1xyz", "zz" * 32]
)
def test_a_malformed_secret_key_is_refused_without_echoing_it(seeded: Cli, nsec: str) -> None:
    before = seeded.snapshot()
    result = seeded("agent", "import", "--nsec", nsec, "--persona", "writer")
    assert_one_error_line(result, r"secret key|nsec")
    assert nsec not in result.stderr
    assert seeded.snapshot() == before


def test_the_owner_key_cannot_be_imported_as_an_agent(seeded: Cli, tmp_path: Path) -> None:
    owner = SecretKey.generate()
    cli = Cli(tmp_path / "other", seeded.environ)
    cli.ok("init", "--owner-nsec", owner.nsec())
    cli.ok("persona", "save", "p", "-", stdin='{"display_name":"P","system_prompt":"x"}')
    refused(cli, r"owner's key", "agent", "import", "--nsec", owner.nsec(), "--persona", "p")


@pytest.mark.parametrize("count", ["0", "-3", "100001"])
def test_a_count_out_of_range_is_refused(seeded: Cli, count: str) -> None:
    refused(
        seeded,
        r"--count must be between",
        "agent",
        "create",
        "--persona",
        "writer",
        "--count",
        count,
    )


@pytest.mark.parametrize("agent", ["ff" * 32, "npub1bad"])
def test_an_invalid_agent_key_is_refused(seeded: Cli, agent: str) -> None:
    refused(seeded, r"invalid agent", "agent", "retire", agent)


@pytest.mark.parametrize("agent", ["nope", "ab" * 31])
def test_a_name_or_short_id_no_agent_has_is_refused(seeded: Cli, agent: str) -> None:
    refused(seeded, r"no agent .*give its name, short id", "agent", "retire", agent)


def test_an_unknown_agent_is_refused(seeded: Cli) -> None:
    pubkey = SecretKey.generate().public_key.hex
    refused(seeded, r"no agent", "agent", "retire", pubkey)
    refused(seeded, r"no agent", "plan", "--agent", pubkey)
