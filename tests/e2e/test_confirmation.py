"""Destructive commands say what they will do and go ahead only when confirmed.

``--yes`` confirms; without it a terminal on stdin is asked and must answer
``yes``; with no terminal the command is refused, naming ``--yes``, and the
store is unchanged.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, assert_one_error_line


@pytest.fixture
def seeded(cli: Cli, writer_file: Path) -> tuple[Cli, str]:
    """A persona 'writer' with one live agent; returns the agent's public key."""
    cli.ok("persona", "save", "writer", str(writer_file))
    (agent,) = json.loads(cli.ok("agent", "create", "--persona", "writer", "--json").stdout)[
        "agents"
    ]
    return cli, str(agent["pubkey"])


def test_deleting_a_persona_with_live_agents_without_yes_and_no_terminal_is_refused(
    seeded: tuple[Cli, str],
) -> None:
    cli, _ = seeded
    before = cli.snapshot()
    result = cli("persona", "delete", "writer")
    assert_one_error_line(result, r"persona 'writer' has 1 live agent\(s\).*--yes")
    assert cli.snapshot() == before
    assert "writer" in cli.ok("persona", "list").stdout


def test_destroying_a_key_without_yes_and_no_terminal_is_refused_and_the_key_kept(
    seeded: tuple[Cli, str],
) -> None:
    cli, pubkey = seeded
    before = cli.snapshot()
    result = cli("agent", "retire", pubkey, "--destroy-key")
    assert_one_error_line(result, r"destroying the secret key .* cannot be undone.*--yes")
    assert cli.snapshot() == before  # not even retired


def test_yes_confirms_without_asking(seeded: tuple[Cli, str]) -> None:
    cli, pubkey = seeded
    cli.ok("persona", "delete", "writer", "--yes")
    assert json.loads(cli.ok("agent", "retire", pubkey, "--destroy-key", "--yes", "--json").stdout)[
        "key_destroyed"
    ]


def test_deleting_a_persona_no_live_agent_follows_needs_no_confirmation(cli: Cli) -> None:
    cli.ok("persona", "save", "lonely", "-", stdin='{"display_name":"L","system_prompt":"Hi."}')
    cli.ok("persona", "delete", "lonely")


def _read_until(master: int, wanted: bytes | None, seconds: float) -> bytes:
    """What the terminal shows until ``wanted`` appears (or it closes, or time runs out)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (wanted is None or wanted not in seen):
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            if wanted is None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other side closed: the process has gone
            break
        if not chunk:
            break
        seen += chunk
    return seen


def _run_on_a_terminal(cli: Cli, answer: str, *args: str) -> tuple[int, str]:
    """Run a command on a pseudo-terminal (stdin, stdout, stderr); type ``answer`` when asked."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        cli.command(*args),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cli.environ,
        cwd=cli.home.parent,
    )
    os.close(slave)
    try:
        seen = _read_until(master, b"Type 'yes'", 60)
        assert b"Type 'yes'" in seen, seen
        os.write(master, answer.encode() + b"\n")
        process.wait(timeout=60)
        seen += _read_until(master, None, 1)
        return process.returncode, seen.decode("utf-8", "replace")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)


def test_on_a_terminal_the_user_is_asked_and_yes_goes_ahead(seeded: tuple[Cli, str]) -> None:
    cli, _ = seeded
    code, shown = _run_on_a_terminal(cli, "yes", "persona", "delete", "writer")
    assert code == 0, shown
    assert "persona 'writer' has 1 live agent(s)" in shown
    assert "writer (deleted)" in cli.ok("persona", "list", "--all").stdout


def test_on_a_terminal_any_other_answer_changes_nothing(seeded: tuple[Cli, str]) -> None:
    cli, pubkey = seeded
    before = cli.snapshot()
    code, shown = _run_on_a_terminal(cli, "no", "agent", "retire", pubkey, "--destroy-key")
    assert code == 1, shown
    assert "fleetsync: error: not confirmed; nothing was changed" in shown
    assert cli.snapshot() == before
