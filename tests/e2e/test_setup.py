"""``fleetsync init`` and opening a home: passphrase, key file, uninitialised homes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from adapters.nostr.keys import SecretKey
from tests.e2e.harness import Cli, assert_one_error_line, base_environ


def test_init_creates_a_private_home_with_a_vault_a_key_store_and_an_event_store(
    tmp_path: Path,
) -> None:
    home = tmp_path / "fresh"
    result = Cli(home).ok("init")
    assert "initialised fleetsync home" in result.stdout
    assert "npub1" in result.stdout
    assert "FLEETSYNC_PASSPHRASE" in result.stdout
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("vault.json", "keys.sqlite", "events.sqlite"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    assert not (home / "master.key").exists()


def test_init_without_a_passphrase_creates_a_key_file_and_later_commands_use_it(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "fresh", base_environ())
    cli.environ.pop("FLEETSYNC_PASSPHRASE")
    result = cli.ok("init")
    assert "master.key" in result.stdout
    assert stat.S_IMODE((cli.home / "master.key").stat().st_mode) == 0o600
    cli.ok("persona", "list")


def test_a_key_file_other_users_can_read_is_refused_with_a_chmod_hint(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "fresh", base_environ())
    cli.environ.pop("FLEETSYNC_PASSPHRASE")
    cli.ok("init")
    os.chmod(cli.home / "master.key", 0o644)
    assert_one_error_line(cli("persona", "list"), r"chmod 600 .*master\.key")


def test_init_can_adopt_an_existing_owner_key_from_stdin(tmp_path: Path) -> None:
    owner = SecretKey.generate()
    result = Cli(tmp_path / "fresh").ok("init", "--owner-nsec", "-", "--json", stdin=owner.nsec())
    assert json.loads(result.stdout)["owner_pubkey"] == owner.public_key.hex
    assert owner.nsec() not in result.stdout
    assert owner.secret_hex() not in result.stdout


def test_init_refuses_to_overwrite_an_existing_home(cli: Cli) -> None:
    before = (cli.home / "vault.json").read_bytes()
    assert_one_error_line(cli("init"), r"already a fleetsync home")
    assert (cli.home / "vault.json").read_bytes() == before


def test_a_home_that_was_never_initialised_asks_for_init_and_is_not_created(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "nowhere")
    assert_one_error_line(cli("persona", "list"), r"run 'fleetsync init' first")
    assert not cli.home.exists()


def test_an_empty_directory_is_not_mistaken_for_a_home(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_error_line(Cli(tmp_path / "empty")("agent", "list"), r"fleetsync init")
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_wrong_passphrase_is_one_clear_line(cli: Cli, writer_file: Path) -> None:
    before = cli.snapshot()
    result = cli("persona", "save", "writer", str(writer_file), env={"FLEETSYNC_PASSPHRASE": "no"})
    assert_one_error_line(result, r"^fleetsync: error: wrong passphrase \(FLEETSYNC_PASSPHRASE\)$")
    assert cli.snapshot() == before


def test_a_missing_passphrase_says_which_variable_to_set(cli: Cli) -> None:
    result = cli("persona", "list", env={"FLEETSYNC_PASSPHRASE": None})
    assert_one_error_line(result, r"set FLEETSYNC_PASSPHRASE")


def test_usage_errors_exit_1_with_one_line_not_2(cli: Cli) -> None:
    assert_one_error_line(cli("persona", "frobnicate"), r"invalid choice")
    assert_one_error_line(cli("agent", "create"), r"--persona")
    assert_one_error_line(cli("agent", "create", "--persona", "x", "--count", "many"), "int")


def test_help_exits_0(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    assert "persona" in result.stdout
