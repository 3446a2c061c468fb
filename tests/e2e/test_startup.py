"""A read-only command imports only what it uses.

``status`` and ``plan`` answer from the log: they never pay at start-up for the
relay wires (aiohttp, the websocket client, the HTTP bridge), the reconciler,
the engram codec (NIP-44, ``cryptography``), NIP-49, buzz's app data, the OS
keyring or the other commands' use cases; ``--help`` and ``--version`` do not
even import the store or the key crypto (libsodium, libsecp256k1).
Each command runs as ``python -m adapters.cli`` does, in a fresh process that
writes down, as the command returns, every module it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Cli

# Runs the CLI's entry module as ``python -m adapters.cli`` would, then writes the
# names of the modules the process imported to the file named first.
_ENTRY = """
import json, runpy, sys
out = sys.argv[1]
sys.argv = ["fleetsync", *sys.argv[2:]]
try:
    runpy.run_module("adapters.cli", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
finally:
    with open(out, "w", encoding="utf-8") as file:
        json.dump(sorted(sys.modules), file)
raise SystemExit(code)
"""

# What only publishing, pulling, importing or another command needs.
NOT_FOR_READING = (
    "aiohttp",
    "cryptography",
    "keyring",
    "adapters.relay",
    "adapters.sync",
    "adapters.attestation",
    "adapters.nostr.engram",
    "adapters.nostr.nip44",
    "adapters.nostr.signer",
    "adapters.nostr.nip49",
    "adapters.buzz.appdata",
    "adapters.buzz.keyring",
    "adapters.store.writer",
    "adapters.store.loader",
    "adapters.usecases.apply",
    "adapters.usecases.agents",
    "adapters.usecases.personas",
    "adapters.usecases.persona_events",
    "adapters.usecases.teams",
    "adapters.usecases.keys",
    "adapters.usecases.relays",
    "adapters.usecases.import_buzz",
    "adapters.cli.agents",
    "adapters.cli.personas",
    "adapters.cli.teams",
    "adapters.cli.sync",
    "adapters.cli.keys",
    "adapters.cli.buzz",
    "adapters.cli.setup",
    "adapters.cli.publish",
)
# What only a command that opens the home needs: not the help, not the version.
NOT_FOR_PARSING = (
    *NOT_FOR_READING,
    "eventsourcing",
    "sqlite3",
    "nacl",
    "coincurve",
    "adapters.vault",
    "domain.application",
    "projections.view",
    "adapters.bootstrap",
    "adapters.cli.output",
    "adapters.cli.reports",
    "adapters.usecases",
)


def imported(cli: Cli, tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    """Run ``fleetsync --home HOME ARGS``; its exit code and the modules it imported."""
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY, str(out), "--home", str(cli.home), *args],
        capture_output=True,
        env=cli.environ,
        cwd=cli.home.parent,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr.decode(), proc.stderr.decode()
    modules: list[str] = json.loads(out.read_text(encoding="utf-8"))
    return proc.returncode, modules


def among(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``packages`` or inside one of them."""
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


@pytest.fixture
def fleet_cli(cli: Cli, writer_file: Path) -> Cli:
    """A home with a persona, agents that were never published, and a relay to read."""
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("agent", "create", "--persona", "writer", "--count", "3")
    cli.ok("relay", "add", "ws://127.0.0.1:9")
    return cli


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("status",), 3),  # the relay was never read: unverified
        (("status", "--json"), 3),
        (("plan",), 2),  # three engrams to publish
        (("plan", "--json"), 2),
    ],
)
def test_status_and_plan_import_no_relay_wire_keyring_or_other_command(
    fleet_cli: Cli, tmp_path: Path, command: tuple[str, ...], code: int
) -> None:
    exit_code, modules = imported(fleet_cli, tmp_path, *command)
    assert exit_code == code
    assert "adapters.cli.reports" in modules, "the command ran"
    assert among(modules, NOT_FOR_READING) == []


@pytest.mark.parametrize(
    "command",
    [("--help",), ("status", "--help"), ("plan", "--help"), ("apply", "--help")],
)
def test_help_imports_neither_the_store_nor_any_command(
    fleet_cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    exit_code, modules = imported(fleet_cli, tmp_path, *command)
    assert exit_code == 0
    assert among(modules, NOT_FOR_PARSING) == []
    assert among(modules, ("importlib.metadata",)) == [], "only --version reads the metadata"


def test_version_imports_neither_the_store_nor_any_command(cli: Cli, tmp_path: Path) -> None:
    exit_code, modules = imported(cli, tmp_path, "--version")
    assert exit_code == 0
    assert among(modules, NOT_FOR_PARSING) == []


def test_a_command_that_publishes_does_import_what_the_reading_ones_leave_out(
    fleet_cli: Cli, tmp_path: Path
) -> None:
    """The check above can fail: ``apply --dry-run`` imports the relay wires it would use."""
    exit_code, modules = imported(fleet_cli, tmp_path, "apply", "--dry-run")
    assert exit_code in (2, 3)
    assert "aiohttp" in modules
    assert among(modules, NOT_FOR_READING) != []
