"""``fleetsync init`` and opening a home: passphrase, key file, uninitialised homes."""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import sys
import time
from pathlib import Path

import pytest

from adapters.nostr import nip49
from adapters.nostr.keys import SecretKey
from tests.e2e.harness import PASSPHRASE, Cli, assert_one_error_line, base_environ


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


def test_init_adopts_an_owner_key_given_as_an_ncryptsec_opened_with_its_password(
    tmp_path: Path,
) -> None:
    owner = SecretKey.generate()
    sealed = nip49.encrypt(owner, "backup words", log_n=4)
    env = base_environ(FLEETSYNC_BACKUP_PASSPHRASE="backup words")
    result = Cli(tmp_path / "fresh", env).ok("init", "--owner-nsec", "-", "--json", stdin=sealed)
    assert json.loads(result.stdout)["owner_pubkey"] == owner.public_key.hex
    assert owner.nsec() not in result.stdout + result.stderr
    assert owner.secret_hex() not in result.stdout + result.stderr


def test_an_ncryptsec_owner_key_with_a_wrong_password_creates_no_home(tmp_path: Path) -> None:
    sealed = nip49.encrypt(SecretKey.generate(), "backup words", log_n=4)
    env = base_environ(FLEETSYNC_BACKUP_PASSPHRASE="other words")
    result = Cli(tmp_path / "fresh", env)("init", "--owner-nsec", sealed)
    assert_one_error_line(result, r"ncryptsec key cannot be opened: wrong password")
    assert not (tmp_path / "fresh").exists()


def test_an_agent_key_given_as_an_ncryptsec_is_imported_with_its_own_npub(
    cli: Cli, writer_file: Path
) -> None:
    agent = SecretKey.generate()
    cli.ok("persona", "save", "writer", str(writer_file))
    env = {"FLEETSYNC_BACKUP_PASSPHRASE": "backup words"}
    sealed = nip49.encrypt(agent, "backup words", log_n=4)
    result = cli(
        "agent", "import", "--nsec", "-", "--persona", "writer", "--json", stdin=sealed, env=env
    )
    assert result.code == 0, result
    assert json.loads(result.stdout)["agents"][0]["pubkey"] == agent.public_key.hex


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


# -- store URLs --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["sqlite:////{path}", "sqlite:///{path}"])
def test_the_usual_forms_of_an_absolute_sqlite_url_make_a_home_later_commands_open(
    tmp_path: Path, form: str, writer_file: Path
) -> None:
    events = tmp_path / "stores" / "fleet events.sqlite"
    url = form.format(path=str(events).lstrip("/"))
    cli = Cli(tmp_path / "home")
    init = cli.ok("--store", url, "init", "--json")
    assert json.loads(init.stdout)["store"] == f"sqlite://{events}"
    assert events.exists()
    # Later commands need no --store: init recorded it.
    cli.ok("persona", "save", "writer", str(writer_file))
    assert "writer" in cli.ok("persona", "list").stdout
    assert not (cli.home / "events.sqlite").exists()


@pytest.mark.parametrize(
    "url", ["sqlite://host/events.sqlite", "sqlite:///x/events.sqlite?mode=ro", "sqlite:///"]
)
def test_a_sqlite_url_no_command_could_open_is_refused_at_init(tmp_path: Path, url: str) -> None:
    cli = Cli(tmp_path / "home")
    assert_one_error_line(cli("--store", url, "init"), r"store URL")
    assert not cli.home.exists()


def test_init_records_the_store_url_and_later_commands_use_it(
    tmp_path: Path, writer_file: Path
) -> None:
    events = tmp_path / "elsewhere" / "events.sqlite"
    cli = Cli(tmp_path / "home")
    cli.ok("--store", f"sqlite://{events}", "init")
    record = json.loads((cli.home / "home.json").read_text())
    assert record["store"] == f"sqlite://{events}"
    assert stat.S_IMODE((cli.home / "home.json").stat().st_mode) == 0o600
    cli.ok("persona", "save", "writer", str(writer_file))
    assert "writer" in cli.ok("persona", "list").stdout
    # A home moved as a whole keeps its own event store (recorded relative to it).
    local = Cli(tmp_path / "local")
    local.ok("init")
    assert json.loads((local.home / "home.json").read_text())["store"] == "sqlite:events.sqlite"
    local.ok("persona", "save", "writer", str(writer_file))
    moved = Cli(local.home.rename(tmp_path / "moved"))
    assert "writer" in moved.ok("persona", "list").stdout


# -- the home's files and directory ------------------------------------------------------


def test_every_file_in_the_home_is_private_whatever_the_umask(
    tmp_path: Path, writer_file: Path
) -> None:
    cli = Cli(tmp_path / "home")
    for command in (
        ("init",),
        ("persona", "save", "writer", str(writer_file)),
        ("agent", "create", "--persona", "writer", "--count", "2"),
        ("relay", "add", "ws://127.0.0.1:9"),
        ("plan",),
        ("apply",),  # takes apply.lock; the relay is not there, which is fine here
    ):
        assert cli(*command, umask=0o000).code in (0, 1, 2, 3), command
    assert stat.S_IMODE(cli.home.stat().st_mode) == 0o700
    names = {path.name for path in cli.home.iterdir()}
    assert {"apply.lock", "view.sqlite", "events.sqlite", "keys.sqlite", "home.json"} <= names
    for path in cli.home.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_a_view_file_an_older_version_left_readable_is_made_private(cli: Cli) -> None:
    cli.ok("persona", "list")
    os.chmod(cli.home / "view.sqlite", 0o644)
    cli.ok("persona", "list")
    assert stat.S_IMODE((cli.home / "view.sqlite").stat().st_mode) == 0o600


def test_init_refuses_a_directory_that_holds_something_and_leaves_it_alone(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    os.chmod(folder, 0o755)  # noqa: S103 (someone's ordinary directory)
    (folder / "notes.txt").write_text("mine\n")
    assert_one_error_line(Cli(folder)("init"), r"mine is not empty \(notes\.txt\)")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_init_uses_an_empty_directory_and_makes_it_private(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    os.chmod(folder, 0o755)  # noqa: S103 (someone's ordinary directory)
    Cli(folder).ok("init")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# -- passphrases -------------------------------------------------------------------------


def test_a_passphrase_set_for_a_key_file_home_is_an_error_not_ignored(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "fresh", base_environ())
    cli.environ.pop("FLEETSYNC_PASSPHRASE")
    cli.ok("init")
    result = cli("persona", "list", env={"FLEETSYNC_PASSPHRASE": "something"})
    assert_one_error_line(result, r"key file .*master\.key.*unset FLEETSYNC_PASSPHRASE")


def run_on_a_terminal(cli: Cli, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its controlling terminal and stdin.

    Each answer is typed when the output so far ends with a prompt (": ").
    Returns the exit code and everything written to the terminal.
    """
    env = dict(cli.environ)
    env.pop("FLEETSYNC_PASSPHRASE", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        os.chdir(cli.home.parent)
        os.execve(sys.executable, cli.command(*args), env)  # noqa: S606
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith(b":"):
                time.sleep(0.3)  # a person reads the prompt first; getpass turns echo off
                os.write(fd, pending.pop(0).encode() + b"\n")
                seen += b"\n"
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode("utf-8", "replace")


def test_a_passphrase_home_asks_for_the_passphrase_on_a_terminal(cli: Cli) -> None:
    code, shown = run_on_a_terminal(cli, ["persona", "list"], [PASSPHRASE])
    assert code == 0, shown
    assert "passphrase of the fleetsync home" in shown
    assert PASSPHRASE not in shown  # not echoed
    assert "no personas" in shown


def test_a_wrong_passphrase_typed_at_the_prompt_is_refused(cli: Cli) -> None:
    code, shown = run_on_a_terminal(cli, ["persona", "list"], ["not it"])
    assert code == 1
    assert "fleetsync: error: wrong passphrase" in shown


def test_init_on_a_terminal_asks_for_the_new_passphrase_twice(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "fresh")
    code, shown = run_on_a_terminal(cli, ["init"], ["typed secret", "typed secret"])
    assert code == 0, shown
    assert "argon2id" in shown
    assert not (cli.home / "master.key").exists()
    assert cli("persona", "list", env={"FLEETSYNC_PASSPHRASE": "typed secret"}).code == 0
