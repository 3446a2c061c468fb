"""Store problems a user can act on: a read-only home, a full disk, PostgreSQL out of reach.

Each is one ``fleetsync: error:`` line naming the file or server and the fix,
never "internal error (OperationalError)"; commands that only read keep
working on a home nobody can write.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, assert_one_error_line
from tests.e2e.mounts import fill, read_only_bind, small_disk
from tests.e2e.test_home import files, fleet_of_three

READS = (
    ("status",),
    ("plan",),
    ("persona", "list"),
    ("persona", "show", "writer"),
    ("agent", "list"),
    ("relay", "list"),
    ("audit", "--persona", "writer"),
)


def test_commands_that_read_work_on_a_read_only_home_and_writes_say_why_they_cannot(
    cli: Cli, writer_file: Path, tmp_path: Path
) -> None:
    fleet_of_three(cli, writer_file)
    expected = {command: cli("--json", *command) for command in READS}
    (cli.home / "view.sqlite").unlink()  # the view must be folded in memory, not written
    edited = writer_file.with_name("edited.json")
    edited.write_text(writer_file.read_text().replace("clearly", "briefly"))
    with read_only_bind(cli.home, tmp_path / "ro") as ro:
        before = files(ro)
        reader = Cli(ro, cli.environ)
        for command in READS:
            got = reader("--json", *command)
            assert (got.code, got.stdout) == (
                expected[command].code,
                expected[command].stdout.replace(str(cli.home), str(ro)),
            ), command
            assert "error" not in got.stderr, got
        for write in (
            ("persona", "save", "writer", str(edited)),
            ("agent", "create", "--persona", "writer"),
            ("relay", "add", "ws://127.0.0.1:9"),
        ):
            result = reader(*write)
            assert_one_error_line(result, rf"{ro}.* read-only.*make the home writable")
            assert "internal error" not in result.stderr
        assert files(ro) == before


def test_a_full_disk_is_named_as_the_cause_and_nothing_is_stored(
    tmp_path: Path, cli: Cli, writer_file: Path
) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        home = disk / "home"
        shutil.copytree(cli.home, home)
        full = Cli(home, cli.environ)
        fleet_of_three(full, writer_file)
        stored = full.snapshot()
        edited = writer_file.with_name("edited.json")
        edited.write_text(writer_file.read_text().replace("clearly", "briefly"))
        fill(disk)
        for command in (
            ("persona", "save", "writer", str(edited)),
            ("agent", "create", "--persona", "writer", "--count", "20"),
            ("relay", "add", "ws://127.0.0.1:9"),
        ):
            result = full(*command)
            assert_one_error_line(result, rf"no space left on the disk holding .*{home}.*free")
            assert "rollback" not in result.stderr
        (disk / "filler").unlink()
        assert full.snapshot().events == stored.events


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def test_a_postgresql_server_that_refuses_connections_is_named_at_once(tmp_path: Path) -> None:
    port = closed_port()
    cli = Cli(tmp_path / "home")
    started = time.monotonic()
    result = cli("--store", f"postgresql://fleet:hunter2@127.0.0.1:{port}/fleet", "init")
    assert time.monotonic() - started < 10
    assert_one_error_line(result, rf"PostgreSQL server 127\.0\.0\.1:{port}: connection refused")
    assert "hunter2" not in result.stderr
    assert not cli.home.exists()


def test_a_postgresql_server_that_never_answers_fails_within_the_connect_timeout(
    tmp_path: Path, silent_port: int
) -> None:
    cli = Cli(tmp_path / "home")
    started = time.monotonic()
    result = cli(
        "--store",
        f"postgresql://fleet:hunter2@127.0.0.1:{silent_port}/fleet",
        "init",
        env={"FLEETSYNC_CONNECT_TIMEOUT": "2"},
    )
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 10, elapsed
    assert_one_error_line(
        result, rf"127\.0\.0\.1:{silent_port} did not answer within 2 s.*FLEETSYNC_CONNECT_TIMEOUT"
    )
    assert "hunter2" not in result.stderr


def test_the_connect_timeout_defaults_to_a_few_seconds(tmp_path: Path, silent_port: int) -> None:
    cli = Cli(tmp_path / "home")
    started = time.monotonic()
    result = cli("--store", f"postgresql://fleet@127.0.0.1:{silent_port}/fleet", "init")
    assert time.monotonic() - started < 15
    assert_one_error_line(result, r"did not answer within 5 s")
