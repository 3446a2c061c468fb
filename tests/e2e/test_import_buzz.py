"""``fleetsync import buzz``: synthetic buzz app-data trees of both eras, keys in the
JSON file and keys in a real Secret Service (gnome-keyring-daemon in its own
dbus-run-session), malformed records, and the store byte for byte after a refusal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.nostr.keys import SecretKey
from tests.e2e.harness import Cli, Result, all_bytes, assert_one_error_line, base_environ
from tests.support.buzz_appdata import (
    BuzzAgentSpec,
    BuzzPersonaSpec,
    fizz,
    keyring_value,
    team_record,
    write_seed_tree,
    write_unified_tree,
)
from tests.support.secret_service import delete_items, secret_service, write_buzz_item

# A bus address nothing listens on: the keyring cannot be reached.
NO_BUS = "unix:path=/nonexistent/fleetsync-no-bus"
WRITER_ID = str(uuid.UUID(int=1))
GONE_ID = str(uuid.UUID(int=2))
LEP_ID = str(uuid.UUID(int=3))


def writer() -> BuzzPersonaSpec:
    return BuzzPersonaSpec(
        id=WRITER_ID,
        display_name="Writer",
        system_prompt="You write clearly.",
        runtime="goose",
        model="claude-opus-4",
        provider="anthropic",
        name_pool=["Ann", "Bob"],
        env_vars={"OPENAI_API_KEY": "sk-buzz-very-secret-value"},
    )


def lep() -> BuzzPersonaSpec:
    """A team persona with a mixed-case slug in its team."""
    return BuzzPersonaSpec(
        id=LEP_ID,
        display_name="Lep",
        system_prompt="You pollinate ideas.\n\n---\n# Team Instructions\nBe kind.",
        model="gpt-5",
        provider="openai",
        source_team="pollinators",
        source_team_persona_slug="Lep",
    )


class Fleet:
    """The buzz fleet of a test: owner, personas, agents."""

    def __init__(self) -> None:
        self.owner = SecretKey.generate()
        self.personas = [fizz(), writer(), lep()]
        self.agents = [
            BuzzAgentSpec(SecretKey.generate(), "Fizz", "builtin:fizz", self.owner),
            BuzzAgentSpec(SecretKey.generate(), "Ann", WRITER_ID, self.owner),
            BuzzAgentSpec(SecretKey.generate(), "Bob", WRITER_ID),  # made before NIP-OA
            BuzzAgentSpec(SecretKey.generate(), "Lep", LEP_ID, self.owner),
            # its persona was deleted in buzz
            BuzzAgentSpec(SecretKey.generate(), "Orphan", GONE_ID, self.owner),
        ]
        self.teams = [team_record("pollinators", "Pollinators", [LEP_ID, GONE_ID])]

    def seed(self, root: Path) -> Path:
        return write_seed_tree(root, self.personas, self.agents, self.teams)

    def unified(self, root: Path) -> Path:
        return write_unified_tree(root, self.personas, self.agents, self.teams)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


def run_import(cli: Cli, root: Path, *extra: str, bus: str = NO_BUS) -> Result:
    return cli("import", "buzz", str(root), *extra, env={"DBUS_SESSION_BUS_ADDRESS": bus})


def imported(cli: Cli, root: Path, *extra: str, bus: str = NO_BUS) -> dict[str, Any]:
    result = run_import(cli, root, "--json", *extra, bus=bus)
    assert result.code == 0, result
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def plaintext_keys(cli: Cli) -> dict[str, str]:
    """pubkey -> nsec of every agent key the home holds (key export, plaintext)."""
    result = cli("key", "export", "--no-owner", "--print-plaintext-keys", "--json")
    assert result.code == 0, result
    return {k["pubkey"]: k["secret"] for k in json.loads(result.stdout)["keys"]}


def assert_no_secret(fleet: Fleet, *results: Result) -> None:
    text = "".join(r.stdout + r.stderr for r in results)
    for agent in fleet.agents:
        assert agent.key.nsec() not in text
        assert agent.key.secret_hex() not in text
    assert "sk-buzz-very-secret-value" not in text


def test_a_seed_era_home_is_imported_with_every_agent_keeping_its_key(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    root = fleet.seed(tmp_path / "buzz")
    result = run_import(cli, root, "--json")
    assert result.code == 0, result
    doc = json.loads(result.stdout)
    assert doc["era"] == "seed"
    personas = {p["slug"]: p for p in doc["personas"]}
    assert set(personas) == {"builtin-fizz", WRITER_ID, "lep"}
    assert personas["builtin-fizz"]["buzz_id"] == "builtin:fizz"
    assert personas["lep"]["team"] == "pollinators"
    assert {p["action"] for p in doc["personas"]} == {"create"}
    agents = {a["name"]: a for a in doc["agents"]}
    assert agents["Fizz"]["persona"] == "builtin-fizz"
    assert agents["Lep"]["persona"] == "lep"
    assert agents["Orphan"]["persona_missing"] is True
    assert {a["key_from"] for a in doc["agents"]} == {"file"}
    assert doc["teams"] == [
        {
            "id": "pollinators",
            "name": "Pollinators",
            "action": "create",
            "personas": ["lep"],
            "missing": [GONE_ID],
        }
    ]
    teams = json.loads(cli.ok("team", "list", "--json").stdout)
    assert [(t["team"], t["personas"]) for t in teams] == [("pollinators", ["lep"])]
    assert teams[0]["source"] == f"buzz:{root / 'agents' / 'teams.json'}"
    # Same npub, same key, now in the sealed key store.
    keys = plaintext_keys(cli)
    assert keys == {a.pubkey: a.key.nsec() for a in fleet.agents}
    listed = json.loads(cli.ok("agent", "list", "--json").stdout)
    assert {a["pubkey"]: a["origin"] for a in listed} == {
        a.pubkey: "imported" for a in fleet.agents
    }
    assert_no_secret(fleet, result)
    # Sealed: no file of the home holds a key, or a persona secret, in the clear.
    stored = all_bytes(cli.home)
    for agent in fleet.agents:
        assert agent.key.nsec().encode() not in stored
        assert agent.key.secret_hex().encode() not in stored
        assert bytes.fromhex(agent.key.secret_hex()) not in stored
    assert b"sk-buzz-very-secret-value" not in stored


def test_the_imported_personas_carry_buzz_content_and_secrets(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    imported(cli, fleet.seed(tmp_path / "buzz"))
    shown = json.loads(cli.ok("persona", "show", WRITER_ID, "--json").stdout)
    assert shown["content"]["system_prompt"] == "You write clearly."
    assert shown["content"]["name_pool"] == ["Ann", "Bob"]
    assert shown["env_vars"] == ["OPENAI_API_KEY"]
    history = json.loads(cli.ok("persona", "show", WRITER_ID, "--history", "--json").stdout)
    causes = [v["cause"] for v in history["history"]]
    assert causes == [{"kind": "buzz", "source": str(tmp_path / "buzz/agents/personas.json")}]
    fizz_shown = json.loads(cli.ok("persona", "show", "builtin-fizz", "--json").stdout)
    assert fizz_shown["content"]["avatar_url"].startswith("data:image/png;base64,")


def test_an_agent_whose_persona_buzz_deleted_shows_persona_deleted_and_is_not_published(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    imported(cli, fleet.seed(tmp_path / "buzz"))
    listed = {a["name"]: a for a in json.loads(cli.ok("agent", "list", "--json").stdout)}
    assert listed["Orphan"]["status"] == "persona-deleted"
    assert listed["Ann"]["status"] == "never-published"


def test_a_second_import_records_nothing(cli: Cli, fleet: Fleet, tmp_path: Path) -> None:
    root = fleet.seed(tmp_path / "buzz")
    imported(cli, root)
    before = cli.snapshot()
    again = run_import(cli, root)
    assert again.code == 0, again
    assert "nothing to import" in again.stdout
    assert cli.snapshot() == before


def test_an_import_with_nothing_to_do_records_nothing_in_a_home_that_never_had_a_team(
    cli: Cli, tmp_path: Path
) -> None:
    root = write_seed_tree(tmp_path / "buzz", [], [])
    before = cli.snapshot()
    result = run_import(cli, root)
    assert result.code == 0, result
    assert "nothing to import" in result.stdout
    assert cli.snapshot() == before


def test_without_a_relay_the_import_says_the_engrams_buzz_wrote_were_not_read(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    result = run_import(cli, fleet.seed(tmp_path / "buzz"))
    assert result.code == 0, result
    assert "not read (no relay is configured)" in result.stdout
    assert "'fleetsync refresh' before 'fleetsync plan'" in result.stdout
    again = imported(cli, fleet.seed(tmp_path / "buzz2"))
    assert again["heads"] is None


def test_a_relay_that_cannot_be_read_leaves_the_import_recorded_and_exits_3(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    cli.ok("relay", "add", "ws://127.0.0.1:9")
    result = cli(
        "import",
        "buzz",
        str(fleet.seed(tmp_path / "buzz")),
        "--json",
        env={"DBUS_SESSION_BUS_ADDRESS": NO_BUS, "FLEETSYNC_RELAY_TIMEOUT": "1"},
    )
    assert result.code == 3, result
    heads = json.loads(result.stdout)["heads"]
    assert heads["verified"] is False
    assert list(heads["unreadable"]) == ["ws://127.0.0.1:9"]
    assert len(json.loads(cli.ok("agent", "list", "--json").stdout)) == len(fleet.agents)


def test_a_dry_run_shows_the_import_and_writes_nothing(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    root = fleet.seed(tmp_path / "buzz")
    before = cli.snapshot()
    result = run_import(cli, root, "--dry-run")
    assert result.code == 0, result
    assert "personas: would create 3" in result.stdout
    assert "agents: would create 5" in result.stdout
    assert "dry run: nothing was written" in result.stdout
    assert cli.snapshot() == before
    assert_no_secret(fleet, result)


def test_an_agent_buzz_links_to_another_persona_is_moved_by_the_next_import(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    imported(cli, fleet.seed(tmp_path / "buzz"))
    fleet.agents[2].persona_id = LEP_ID  # Bob now follows Lep in buzz
    doc = imported(cli, fleet.seed(tmp_path / "buzz2"))
    actions = {a["name"]: a["action"] for a in doc["agents"]}
    assert actions == {
        "Fizz": "unchanged",
        "Ann": "unchanged",
        "Bob": "move",
        "Lep": "unchanged",
        "Orphan": "unchanged",
    }
    listed = {a["name"]: a for a in json.loads(cli.ok("agent", "list", "--json").stdout)}
    assert listed["Bob"]["persona"] == "lep"


def test_an_agent_with_no_persona_in_buzz_is_skipped_and_named(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.agents.append(BuzzAgentSpec(SecretKey.generate(), "Loner", None))
    doc = imported(cli, fleet.unified(tmp_path / "buzz"))
    loner = next(a for a in doc["agents"] if a["name"] == "Loner")
    assert loner["action"] == "skip"
    assert "no persona" in loner["note"]
    assert fleet.agents[-1].pubkey not in plaintext_keys(cli)


def test_members_fleetsync_has_no_place_for_are_named_not_dropped_unsaid(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.personas[1].respond_to = "anyone"
    fleet.personas[1].parallelism = 4
    result = run_import(cli, fleet.unified(tmp_path / "buzz"), "--json")
    assert result.code == 0, result
    doc = json.loads(result.stdout)
    writer_step = next(p for p in doc["personas"] if p["slug"] == WRITER_ID)
    from domain.persona import DEFINITION_MEMBERS

    expected = [m for m in ("parallelism", "respond_to") if m not in DEFINITION_MEMBERS]
    assert writer_step["not_carried"] == expected
    if expected:
        assert any("not carried" in note for note in doc["notes"])


def test_the_default_directory_is_buzz_app_data_under_xdg_data_home(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    data_home = tmp_path / "xdg"
    fleet.seed(data_home / "xyz.block.buzz.app")
    result = cli(
        "import",
        "buzz",
        "--json",
        env={"XDG_DATA_HOME": str(data_home), "DBUS_SESSION_BUS_ADDRESS": NO_BUS},
    )
    assert result.code == 0, result
    assert json.loads(result.stdout)["app_data"] == str(data_home / "xyz.block.buzz.app")


def test_a_directory_without_buzz_data_is_one_clear_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_error_line(
        run_import(cli, tmp_path / "empty"), r"holds no buzz agent data .*managed-agents\.json"
    )


# -- keys in the keyring (a real Secret Service) ---------------------------------------


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with secret_service(tmp_path_factory.mktemp("secret-service")) as address:
        yield address


@pytest.fixture
def keyring_item(bus: str) -> Iterator[Callable[[str], None]]:
    def put(value: str) -> None:
        write_buzz_item(bus, value)

    yield put
    delete_items(bus, {"service": "buzz-desktop", "username": "secrets"})


def test_keys_buzz_keeps_in_the_keyring_are_read_from_the_secret_service_item_buzz_writes(
    cli: Cli, fleet: Fleet, tmp_path: Path, bus: str, keyring_item: Callable[[str], None]
) -> None:
    for agent in fleet.agents[1:]:
        agent.key_inline = False
    keyring_item(keyring_value(fleet.owner, fleet.agents[1:]))
    result = run_import(cli, fleet.unified(tmp_path / "buzz"), "--json", bus=bus)
    assert result.code == 0, result
    doc = json.loads(result.stdout)
    assert doc["era"] == "unified"
    assert {a["name"]: a["key_from"] for a in doc["agents"]} == {
        "Fizz": "file",
        "Ann": "keyring",
        "Bob": "keyring",
        "Lep": "keyring",
        "Orphan": "keyring",
    }
    assert plaintext_keys(cli) == {a.pubkey: a.key.nsec() for a in fleet.agents}
    assert_no_secret(fleet, result)
    # buzz's identity is not this home's owner: said, not refused.
    assert any("not this home's owner" in note for note in doc["notes"])


def test_an_import_with_every_key_in_the_file_never_reads_the_keyring(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    # NO_BUS: a keyring read would fail; the import succeeds without one.
    imported(cli, fleet.unified(tmp_path / "buzz"))


def test_an_agent_key_missing_from_the_keyring_stops_the_import_and_writes_nothing(
    cli: Cli, fleet: Fleet, tmp_path: Path, bus: str, keyring_item: Callable[[str], None]
) -> None:
    for agent in fleet.agents:
        agent.key_inline = False
    keyring_item(keyring_value(fleet.owner, fleet.agents[:-1]))
    before = cli.snapshot()
    result = run_import(cli, fleet.unified(tmp_path / "buzz"), bus=bus)
    assert_one_error_line(
        result, r"managed-agents\.json: record \d+ \(name 'Orphan'\): has no private_key_nsec"
    )
    assert cli.snapshot() == before


def test_an_unreachable_keyring_is_one_clear_error(cli: Cli, fleet: Fleet, tmp_path: Path) -> None:
    fleet.agents[0].key_inline = False
    before = cli.snapshot()
    result = run_import(cli, fleet.unified(tmp_path / "buzz"))
    assert_one_error_line(result, r"OS keyring item of service 'buzz-desktop'.*cannot be read")
    assert cli.snapshot() == before


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("not json", r"does not hold JSON, as buzz writes it"),
        ('["identity"]', r"does not hold a JSON object of keys"),
        ('{"identity": "x", "identity": "y"}', r"does not hold JSON"),
        ("{AGENT: 7}", r"entry 'agent:[0-9a-f]{64}' is not a string"),
        ('{AGENT: "nsec1notakey"}', r"entry 'agent:[0-9a-f]{64}' is not a valid nsec"),
        ("{AGENT: OTHER}", r"entry 'agent:[0-9a-f]{64}' holds the key of another pubkey"),
    ],
)
def test_a_keyring_item_that_is_not_what_buzz_writes_is_one_error_with_the_store_unchanged(
    cli: Cli,
    fleet: Fleet,
    tmp_path: Path,
    bus: str,
    keyring_item: Callable[[str], None],
    value: str,
    pattern: str,
) -> None:
    agent = fleet.agents[1]
    agent.key_inline = False
    other = SecretKey.generate().nsec()
    value = value.replace("AGENT", json.dumps(f"agent:{agent.pubkey}"))
    keyring_item(value.replace("OTHER", json.dumps(other)))
    before = cli.snapshot()
    result = run_import(cli, fleet.unified(tmp_path / "buzz"), bus=bus)
    assert_one_error_line(result, rf"OS keyring item of service 'buzz-desktop'.*{pattern}")
    assert cli.snapshot() == before
    assert other not in result.stderr
    assert_no_secret(fleet, result)


# -- malformed records ----------------------------------------------------------------------

Break = Callable[[list[dict[str, Any]]], None]


def _agent(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in records if r.get("name") == name and r.get("pubkey"))


def _definition(records: list[dict[str, Any]], slug: str) -> dict[str, Any]:
    return next(r for r in records if r.get("slug") == slug)


BAD_RECORDS: dict[str, tuple[Break, str]] = {
    "pubkey not hex": (
        lambda rs: _agent(rs, "Bob").update(pubkey="zz" * 32),
        r"record \d+ \(name 'Bob'\): pubkey is not 64 hex",
    ),
    "key of another agent": (
        lambda rs: _agent(rs, "Bob").update(private_key_nsec=SecretKey.generate().nsec()),
        r"record \d+ \(name 'Bob'\): private_key_nsec is not the key of pubkey",
    ),
    "key not an nsec": (
        lambda rs: _agent(rs, "Bob").update(private_key_nsec="nsec1notakey"),
        r"record \d+ \(name 'Bob'\): private_key_nsec is not a valid nsec",
    ),
    "name missing": (
        lambda rs: _agent(rs, "Bob").pop("name"),
        r"record \d+ \(pubkey '[0-9a-f]{64}'\): name is required",
    ),
    "name with a control character": (
        lambda rs: _agent(rs, "Bob").update(name="Bo\x07b"),
        r"record \d+ \(name 'Bo\\x07b'\): name 'Bo\\x07b' contains a control",
    ),
    "auth tag not a NIP-OA tag": (
        lambda rs: _agent(rs, "Ann").update(auth_tag='["auth","x"]'),
        r"record \d+ \(name 'Ann'\): auth_tag must be a NIP-OA tag",
    ),
    "auth tag signed for another agent": (
        lambda rs: _agent(rs, "Ann").update(auth_tag=_agent(rs, "Lep")["auth_tag"]),
        r"record \d+ \(name 'Ann'\): auth_tag's signature does not verify for this agent",
    ),
    "auth tag not JSON": (
        lambda rs: _agent(rs, "Ann").update(auth_tag="[auth"),
        r"record \d+ \(name 'Ann'\): auth_tag is not JSON",
    ),
    "definition without a slug": (
        lambda rs: _definition(rs, WRITER_ID).pop("slug"),
        r"record \d+ \(name 'Writer'\): slug is required",
    ),
    "prompt not a string": (
        lambda rs: _definition(rs, WRITER_ID).update(system_prompt=42),
        rf"record \d+ \(slug '{WRITER_ID}'\): system_prompt must be a string",
    ),
    "env_vars not strings": (
        lambda rs: _definition(rs, WRITER_ID).update(env_vars={"TOKEN": 1}),
        rf"record \d+ \(slug '{WRITER_ID}'\): env_vars must be an object of strings",
    ),
    "a secret in the prompt": (
        lambda rs: _definition(rs, WRITER_ID).update(
            system_prompt="Use sk-buzz-very-secret-value."
        ),
        rf"record \d+ \(slug '{WRITER_ID}'\): the value of env_vars\['OPENAI_API_KEY'\] appears",
    ),
    "a name_pool name fleetsync refuses": (
        lambda rs: _definition(rs, WRITER_ID).update(name_pool=["Ann", "Ann"]),
        rf"record \d+ \(slug '{WRITER_ID}'\): name_pool lists 'Ann' more than once",
    ),
    "two personas under one slug": (
        lambda rs: _definition(rs, LEP_ID).update(source_team_persona_slug="builtin:FIZZ"),
        r"record \d+ \(slug '[^']+'\): its slug 'builtin-fizz' is also that of",
    ),
    "a record that is not an object": (
        lambda rs: rs.append([]),  # type: ignore[arg-type]
        r"record \d+ is an array, not an object",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_a_bad_record_stops_the_import_naming_file_and_record_with_the_store_unchanged(
    cli: Cli, fleet: Fleet, tmp_path: Path, case: str
) -> None:
    root = fleet.unified(tmp_path / "buzz")
    path = root / "agents" / "managed-agents.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    breaker, pattern = BAD_RECORDS[case]
    breaker(records)
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    before = cli.snapshot()
    result = run_import(cli, root)
    assert_one_error_line(result, rf"{path}: {pattern}")
    assert cli.snapshot() == before
    assert_no_secret(fleet, result)


@pytest.mark.parametrize("name", ["personas.json", "managed-agents.json", "teams.json"])
@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{not json", r"not valid JSON"),
        ('{"pubkey": ""}', r"expected a JSON array of records, not an object"),
        ('[{"id": "a", "id": "b"}]', r"not valid JSON: duplicate member name 'id'"),
        (b"\xff\xfe[]", r"not UTF-8 text"),
        ("[1]", r"record 1 is a number, not an object"),
    ],
)
def test_a_file_that_is_not_what_buzz_writes_is_one_error_naming_it(
    cli: Cli, fleet: Fleet, tmp_path: Path, name: str, text: str | bytes, pattern: str
) -> None:
    root = fleet.seed(tmp_path / "buzz")
    path = root / "agents" / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    before = cli.snapshot()
    assert_one_error_line(run_import(cli, root), rf"{path}: {pattern}")
    assert cli.snapshot() == before


def test_a_seed_persona_without_a_system_prompt_is_refused_naming_it(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    root = fleet.seed(tmp_path / "buzz")
    path = root / "agents" / "personas.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    del records[1]["system_prompt"]
    path.write_text(json.dumps(records), encoding="utf-8")
    before = cli.snapshot()
    assert_one_error_line(
        run_import(cli, root),
        rf"{path}: record 2 \(id '{WRITER_ID}'\): system_prompt is required",
    )
    assert cli.snapshot() == before


# -- the owner: buzz's identity ---------------------------------------------------------


def test_init_takes_buzz_identity_from_its_keyring_item_as_the_owner(
    fleet: Fleet, tmp_path: Path, bus: str, keyring_item: Callable[[str], None]
) -> None:
    keyring_item(keyring_value(fleet.owner, fleet.agents))
    env = base_environ(DBUS_SESSION_BUS_ADDRESS=bus)
    result = Cli(tmp_path / "fresh", env)("init", "--owner-from-buzz", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["owner_pubkey"] == fleet.owner.public_key.hex
    assert fleet.owner.nsec() not in result.stdout + result.stderr
    # Then the import notes no other owner.
    fresh = Cli(tmp_path / "fresh", env)
    doc = imported(fresh, fleet.unified(tmp_path / "buzz"), bus=bus)
    assert not any("not this home's owner" in note for note in doc["notes"])


def test_init_takes_buzz_identity_from_the_legacy_identity_key_file_without_a_keyring(
    fleet: Fleet, tmp_path: Path
) -> None:
    root = fleet.seed(tmp_path / "buzz")
    (root / "identity.key").write_text(fleet.owner.secret_hex() + "\n", encoding="utf-8")
    env = base_environ(DBUS_SESSION_BUS_ADDRESS=NO_BUS)
    result = Cli(tmp_path / "fresh", env)("init", "--owner-from-buzz", str(root), "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["owner_pubkey"] == fleet.owner.public_key.hex


def test_init_from_buzz_without_an_identity_anywhere_creates_no_home(
    fleet: Fleet, tmp_path: Path
) -> None:
    root = fleet.seed(tmp_path / "buzz")
    env = base_environ(DBUS_SESSION_BUS_ADDRESS=NO_BUS)
    result = Cli(tmp_path / "fresh", env)("init", "--owner-from-buzz", str(root))
    assert_one_error_line(result, r"cannot be read .*and there is no .*identity\.key")
    assert not (tmp_path / "fresh").exists()


def test_a_team_record_that_is_not_what_buzz_writes_is_refused_naming_it(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.teams[0]["persona_ids"] = "pollinators"
    root = fleet.unified(tmp_path / "buzz")
    before = cli.snapshot()
    path = root / "agents" / "teams.json"
    assert_one_error_line(
        run_import(cli, root),
        rf"{path}: record 1 \(id 'pollinators'\): persona_ids must be an array of persona ids",
    )
    assert cli.snapshot() == before


def _attestations(cli: Cli, pubkey: str) -> list[dict[str, Any]]:
    doc = json.loads(cli.ok("audit", "--agent", pubkey, "--json").stdout)
    return [e for e in doc["entries"] if e["what"] == "attested"]


def test_buzz_attestations_by_the_same_owner_are_kept_and_the_others_minted_anew(
    fleet: Fleet, tmp_path: Path
) -> None:
    from adapters.nostr.nip_oa import Attestation

    cli = Cli(tmp_path / "home")
    cli.ok("init", "--owner-nsec", "-", stdin=fleet.owner.nsec())
    root = fleet.seed(tmp_path / "buzz")
    imported(cli, root)
    records = json.loads((root / "agents" / "managed-agents.json").read_text())
    stored = {r["pubkey"]: r["auth_tag"] for r in records}
    for spec in fleet.agents:
        (entry,) = _attestations(cli, spec.pubkey)
        tag = entry["details"]["tag"]
        Attestation.from_tag(tag).verify(spec.pubkey)
        assert tag[1] == fleet.owner.public_key.hex
        if spec.owner is not None:  # buzz had one: that very tag is kept
            assert entry["details"]["origin"] == "imported"
            assert json.dumps(tag, separators=(",", ":")) == stored[spec.pubkey]
        else:  # made before NIP-OA in buzz: fleetsync mints one
            assert entry["details"]["origin"] == "minted"


def test_buzz_attestations_by_another_owner_are_replaced_by_this_owners(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    imported(cli, fleet.seed(tmp_path / "buzz"))
    ann = next(a for a in fleet.agents if a.name == "Ann")
    (entry,) = _attestations(cli, ann.pubkey)
    assert entry["details"]["origin"] == "minted"
    assert entry["details"]["tag"][1] != fleet.owner.public_key.hex
