"""``fleetsync key export|import``: NIP-49 backups of the owner's and agents' keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, Result, assert_one_error_line, base_environ
from tests.support.sdk import sdk_hex_from_bech32, sdk_ncryptsec_decrypt, sdk_public_key

PASSWORD = "backup password"
FAST = "4"  # scrypt log_n for tests; the default (16) costs 64 MiB per key


@pytest.fixture
def backup_cli(home: Path) -> Cli:
    return Cli(home, base_environ(FLEETSYNC_BACKUP_PASSPHRASE=PASSWORD))


@pytest.fixture
def fleet(backup_cli: Cli, writer_file: Path) -> list[dict[str, str]]:
    backup_cli.ok("persona", "save", "writer", str(writer_file))
    created: list[dict[str, str]] = json.loads(
        backup_cli.ok("agent", "create", "--persona", "writer", "--count", "3", "--json").stdout
    )["agents"]
    return created


def export(cli: Cli, *args: str) -> Result:
    result = cli("key", "export", "--log-n", FAST, *args)
    assert result.code == 0, result
    return result


def key_lines(text: str) -> list[list[str]]:
    return [line.split(maxsplit=4) for line in text.splitlines() if not line.startswith("#")]


def home_of_the_same_owner(
    cli: Cli, root: Path, password: str = PASSWORD, persona: Path | None = None
) -> Cli:
    """A second home initialised with ``cli``'s owner key, holding ``persona`` as writer."""
    owner_nsec = key_lines(export(cli, "--print-plaintext-keys").stdout)[0][2]
    other = Cli(root / "other", base_environ(FLEETSYNC_BACKUP_PASSPHRASE=password))
    other.ok("init", "--owner-nsec", "-", stdin=owner_nsec)
    if persona is not None:
        other.ok("persona", "save", "writer", str(persona))
    return other


def test_an_export_holds_the_owner_and_every_agent_as_ncryptsec_lines(
    backup_cli: Cli, fleet: list[dict[str, str]]
) -> None:
    lines = key_lines(export(backup_cli).stdout)
    assert [line[0] for line in lines] == ["owner", "agent", "agent", "agent"]
    assert all(line[2].startswith("ncryptsec1") for line in lines)
    agents = {line[1]: line for line in lines[1:]}
    assert {a["npub"] for a in fleet} == set(agents)
    assert all(agents[a["npub"]][3:] == ["writer", a["name"]] for a in fleet)


def test_nostr_sdk_opens_every_exported_key_to_the_npub_given_with_it(
    backup_cli: Cli, fleet: list[dict[str, str]]
) -> None:
    keys = json.loads(export(backup_cli, "--json").stdout)["keys"]
    assert len(keys) == 4
    for entry in keys:
        secret_hex = sdk_ncryptsec_decrypt(entry["secret"], PASSWORD)
        assert sdk_public_key(secret_hex) == entry["pubkey"]
        assert sdk_hex_from_bech32(entry["npub"]) == entry["pubkey"]


def test_no_plaintext_key_is_printed_unless_asked_in_so_many_words(
    backup_cli: Cli, fleet: list[dict[str, str]]
) -> None:
    plain = export(backup_cli, "--print-plaintext-keys")
    secrets = [line[2] for line in key_lines(plain.stdout)]
    assert all(s.startswith("nsec1") for s in secrets)
    assert "UNENCRYPTED" in plain.stderr
    sealed_runs = [export(backup_cli), export(backup_cli, "--json")]
    sealed = "".join(r.stdout + r.stderr for r in sealed_runs)
    assert "nsec1" not in sealed
    for nsec in secrets:
        assert nsec not in sealed
        assert sdk_hex_from_bech32(nsec) not in sealed  # nor the key in hex


def test_a_backup_restores_the_same_agents_into_a_new_home_with_the_same_owner(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path, writer_file: Path
) -> None:
    backup = tmp_path / "fleet.keys"
    export(backup_cli, "--output", str(backup))
    other = home_of_the_same_owner(backup_cli, tmp_path, persona=writer_file)

    restored = json.loads(
        other.ok("key", "import", str(backup), "--persona", "writer", "--json").stdout
    )

    assert sorted(restored["created"]) == sorted(a["pubkey"] for a in fleet)
    listed = json.loads(other.ok("agent", "list", "--json").stdout)
    assert {(a["pubkey"], a["name"]) for a in listed} == {(a["pubkey"], a["name"]) for a in fleet}
    before = other.snapshot()
    again = json.loads(
        other.ok("key", "import", str(backup), "--persona", "writer", "--json").stdout
    )
    assert again == {"restored": [], "created": [], "unchanged": 4}
    assert other.snapshot() == before


def test_importing_a_homes_own_backup_changes_nothing(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path
) -> None:
    backup = tmp_path / "fleet.keys"
    export(backup_cli, "--output", str(backup))
    before = backup_cli.snapshot()
    result = backup_cli.ok("key", "import", str(backup))
    assert "4 already here" in result.stdout
    assert backup_cli.snapshot() == before


def test_a_backup_file_is_private_and_never_overwritten(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path
) -> None:
    backup = tmp_path / "fleet.keys"
    old = os.umask(0)
    try:
        export(backup_cli, "--output", str(backup))
    finally:
        os.umask(old)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    content = backup.read_bytes()
    refused = backup_cli("key", "export", "--log-n", FAST, "--output", str(backup))
    assert_one_error_line(refused, "exists")
    assert backup.read_bytes() == content


def test_a_wrong_password_stops_the_import_and_stores_nothing(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path, writer_file: Path
) -> None:
    backup = tmp_path / "fleet.keys"
    export(backup_cli, "--output", str(backup))
    other = home_of_the_same_owner(backup_cli, tmp_path, "not it", writer_file)
    before = other.snapshot()
    result = other("key", "import", str(backup), "--persona", "writer")
    assert_one_error_line(result, r"line \d+: wrong password")
    assert other.snapshot() == before


def test_one_bad_line_stops_the_whole_import(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path, writer_file: Path
) -> None:
    text = export(backup_cli).stdout
    lines = text.splitlines()
    # The last agent's key under the second agent's npub: every line decrypts, one lies.
    last, second = lines[-1].split(), lines[-2].split()
    lines[-1] = " ".join([last[0], second[1], *last[2:]])
    backup = tmp_path / "tampered.keys"
    backup.write_text("\n".join(lines) + "\n")
    other = home_of_the_same_owner(backup_cli, tmp_path, persona=writer_file)
    before = other.snapshot()
    result = other("key", "import", str(backup), "--persona", "writer")
    assert_one_error_line(result, rf"line {len(lines)}: the key does not belong to npub1")
    assert other.snapshot() == before


def test_another_owners_backup_is_refused(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path, writer_file: Path
) -> None:
    backup = tmp_path / "fleet.keys"
    export(backup_cli, "--output", str(backup))
    other = Cli(tmp_path / "other", base_environ(FLEETSYNC_BACKUP_PASSPHRASE=PASSWORD))
    other.ok("init")
    other.ok("persona", "save", "writer", str(writer_file))
    before = other.snapshot()
    result = other("key", "import", str(backup), "--persona", "writer")
    assert_one_error_line(result, "is not this home's owner")
    assert other.snapshot() == before


def test_unknown_agents_need_a_persona_to_be_created(
    backup_cli: Cli, fleet: list[dict[str, str]], tmp_path: Path
) -> None:
    backup = tmp_path / "fleet.keys"
    export(backup_cli, "--output", str(backup))
    other = home_of_the_same_owner(backup_cli, tmp_path)
    before = other.snapshot()
    result = other("key", "import", str(backup))
    assert_one_error_line(result, "add --persona SLUG")
    assert other.snapshot() == before


def test_without_a_password_or_a_terminal_export_says_which_setting_to_use(
    cli: Cli, fleet: list[dict[str, str]]
) -> None:
    result = cli("key", "export", "--log-n", FAST)
    assert_one_error_line(result, "FLEETSYNC_BACKUP_PASSPHRASE")


def test_an_export_can_be_narrowed_to_one_agent_by_name(
    backup_cli: Cli, fleet: list[dict[str, str]]
) -> None:
    lines = key_lines(export(backup_cli, "--agent", fleet[1]["name"], "--no-owner").stdout)
    assert [(line[0], line[1]) for line in lines] == [("agent", fleet[1]["npub"])]
