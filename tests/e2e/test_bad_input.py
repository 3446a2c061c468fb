"""Bad input: one clear line on stderr, exit 1, no traceback, and the store unchanged.

Every case snapshots the event rows and the key rows before and after: a
refused command must not leave a persona version, an agent, or an orphan key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.nostr.keys import SecretKey
from domain.engram_body import MAX_PLAINTEXT_BYTES, PersonaEngram, Provenance, encode_persona_body
from domain.persona import PersonaContent
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
    """A system prompt that makes the writer-like persona's engram body exactly ``size`` bytes."""

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


def test_a_persona_whose_engram_is_exactly_65535_bytes_is_accepted(seeded: Cli) -> None:
    prompt = _prompt_for_body_size(MAX_PLAINTEXT_BYTES)
    doc = json.dumps({"display_name": "Big", "system_prompt": prompt})
    assert "saved persona 'big'" in seeded.ok("persona", "save", "big", "-", stdin=doc).stdout


def test_an_oversize_update_keeps_the_previous_version(seeded: Cli) -> None:
    prompt = "y" * MAX_PLAINTEXT_BYTES
    doc = json.dumps({"display_name": "Writer", "system_prompt": prompt})
    refused(seeded, r"engram body is \d+ bytes", "persona", "save", "writer", "-", stdin=doc)
    shown = json.loads(seeded.ok("persona", "show", "writer", "--json").stdout)
    assert shown["revision"] == 1


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
