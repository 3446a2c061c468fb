"""The home's files agree, or nothing runs: identity, damaged and emptied stores, upgrades.

Each home records an identity at ``init`` in ``home.json``, the key store and
the event store. A command whose files disagree (an emptied or swapped event
store) stops with one error naming the files, and changes no byte in the home.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, assert_one_error_line


def files(home: Path) -> dict[str, bytes]:
    """Every file of the home and its bytes (stores, their WAL files, the vault, the record)."""
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


def fleet_of_three(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("agent", "create", "--persona", "writer", "--count", "3")
    assert cli("plan").code == 2  # folds the view too: view.sqlite holds three agents


COMMANDS = (
    ("plan",),
    ("status",),
    ("persona", "list"),
    ("agent", "list"),
    ("relay", "add", "ws://127.0.0.1:9"),
)


def test_a_zero_byte_event_store_is_refused_naming_the_files_and_nothing_is_written(
    cli: Cli, writer_file: Path
) -> None:
    fleet_of_three(cli, writer_file)
    (cli.home / "events.sqlite").write_bytes(b"")
    before = files(cli.home)
    for command in (*COMMANDS, ("persona", "save", "writer", str(writer_file))):
        result = cli(*command)
        assert_one_error_line(
            result, r"event store \S*events\.sqlite is empty.*keys\.sqlite.*Nothing was changed"
        )
        assert files(cli.home) == before, command


def test_a_half_truncated_event_store_is_a_clear_error_and_nothing_is_written(
    cli: Cli, writer_file: Path
) -> None:
    fleet_of_three(cli, writer_file)
    cli.ok("agent", "create", "--persona", "writer", "--count", "40")
    events = cli.home / "events.sqlite"
    os.truncate(events, events.stat().st_size // 2)
    before = files(cli.home)
    for command in COMMANDS:
        result = cli(*command)
        assert_one_error_line(
            result, r"event store \S*events\.sqlite is damaged .*restore it from a backup"
        )
        assert files(cli.home) == before, command


def test_an_event_store_from_another_home_is_refused(
    cli: Cli, writer_file: Path, tmp_path: Path
) -> None:
    fleet_of_three(cli, writer_file)
    other = Cli(tmp_path / "other", cli.environ)
    other.ok("init")
    shutil.copy(other.home / "events.sqlite", cli.home / "events.sqlite")
    before = files(cli.home)
    result = cli("agent", "list")
    assert_one_error_line(result, r"belong to different homes.*events\.sqlite.*Nothing was changed")
    assert files(cli.home) == before


def forget_identity(home: Path) -> None:
    """Make ``home`` look like one made before homes had identities."""
    (home / "home.json").unlink()
    for name, table in (("keys.sqlite", "home"), ("events.sqlite", "fleetsync_home")):
        with contextlib.closing(sqlite3.connect(home / name)) as conn, conn:
            conn.execute(f"DROP TABLE {table}")
    assert not (home / "events.sqlite-wal").exists()


def test_a_home_made_before_identities_is_upgraded_on_first_open_and_keeps_working(
    cli: Cli, writer_file: Path
) -> None:
    fleet_of_three(cli, writer_file)
    forget_identity(cli.home)
    listed = cli.ok("--json", "agent", "list")
    assert len(json.loads(listed.stdout)) == 3
    record = json.loads((cli.home / "home.json").read_text())
    assert record["store"] == "sqlite:events.sqlite"
    # Recorded everywhere: emptying the event store is now caught like in a new home.
    (cli.home / "events.sqlite").write_bytes(b"")
    assert_one_error_line(cli("agent", "list"), r"events\.sqlite is empty")


def test_an_old_home_whose_event_store_was_emptied_is_refused_not_upgraded(
    cli: Cli, writer_file: Path
) -> None:
    fleet_of_three(cli, writer_file)
    forget_identity(cli.home)
    (cli.home / "events.sqlite").write_bytes(b"")
    before = files(cli.home)
    result = cli("plan")
    assert_one_error_line(result, r"events\.sqlite is empty, but \S*keys\.sqlite holds 3 agents")
    assert files(cli.home) == before


def damage(path: Path) -> None:
    """Overwrite everything after a SQLite file's first page with noise."""
    data = bytearray(path.read_bytes())
    data[4096:] = b"\x5a" * (len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["pages", "not-a-database"])
def test_a_damaged_view_is_rebuilt_from_the_log_with_a_note(
    cli: Cli, writer_file: Path, how: str
) -> None:
    fleet_of_three(cli, writer_file)
    healthy = cli.ok("--json", "agent", "list").stdout
    view = cli.home / "view.sqlite"
    if how == "pages":
        damage(view)
    else:
        view.write_bytes(b"this is no database " * 300)
    result = cli("--json", "agent", "list")
    assert result.code == 0, result
    assert result.stdout == healthy
    assert result.stderr.startswith("fleetsync: note: the fleet view "), result.stderr
    assert "view.sqlite was damaged" in result.stderr
    assert "rebuilt it from the log" in result.stderr
    # Rebuilt for good: the next command has nothing to say.
    assert cli.ok("--json", "agent", "list").stdout == healthy
