"""Running the ``fleetsync`` CLI as separate processes against a home on disk.

Each call is a fresh ``python -m adapters.cli`` process, so nothing is shared
between commands but the files in the home: the SQLite event store, the key
store and the vault, exactly as for a user.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
NOTE = "fleetsync: note: "
ERROR_LINE = re.compile(r"^fleetsync: error: \S.*$")


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class StoreSnapshot:
    """What 'the store is unchanged' means: every event row, and every key row."""

    events: tuple[tuple[object, ...], ...]
    keys: tuple[tuple[object, ...], ...]

    @property
    def max_position(self) -> int:
        return max((int(str(row[0])) for row in self.events), default=0)


def base_environ(**overrides: str) -> dict[str, str]:
    """The process environment minus anything fleetsync or eventsourcing would read."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLEETSYNC_", "SQLITE_", "POSTGRES_", "PERSISTENCE_", "CIPHER_"))
    }
    env.update(
        PYTHONPATH=str(REPO),
        FLEETSYNC_PASSPHRASE=PASSPHRASE,
        FLEETSYNC_ACTOR="e2e",
        # libsodium's minimum argon2id cost: every command derives the key once.
        FLEETSYNC_ARGON2_OPSLIMIT="1",
        FLEETSYNC_ARGON2_MEMLIMIT="8192",
    )
    env.update(overrides)
    return env


class Cli:
    """``fleetsync --home HOME ...`` in a subprocess."""

    def __init__(self, home: Path, environ: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.environ = dict(environ if environ is not None else base_environ())

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "adapters.cli", "--home", str(self.home), *args]

    def __call__(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
        umask: int = -1,
        timeout: float = 120,
    ) -> Result:
        environ = dict(self.environ)
        for key, value in (env or {}).items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            self.command(*args),
            input=data if data is not None else b"",
            capture_output=True,
            env=environ,
            cwd=self.home.parent,
            timeout=timeout,
            check=False,
            umask=umask,
        )
        return Result(
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    def ok(self, *args: str, stdin: str | bytes | None = None) -> Result:
        """Run a command that must succeed (exit 0) with nothing on stderr but notes.

        These homes have no relays, so creating agents notes that nothing was
        published yet; anything else on stderr (a warning, an error) fails.
        """
        result = self(*args, stdin=stdin)
        assert result.code == 0, result
        other = [line for line in result.stderr.splitlines() if not line.startswith(NOTE)]
        assert other == [], result
        return result

    def snapshot(self) -> StoreSnapshot:
        return StoreSnapshot(
            events=_rows(self.home / "events.sqlite", "SELECT rowid, * FROM stored_events"),
            keys=_rows(self.home / "keys.sqlite", "SELECT * FROM keys"),
        )


def _rows(path: Path, sql: str) -> tuple[tuple[object, ...], ...]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return tuple(tuple(row) for row in conn.execute(sql + " ORDER BY 1"))
    finally:
        conn.close()


def assert_one_error_line(result: Result, pattern: str) -> None:
    """Exit 1, exactly one ``fleetsync: error:`` line on stderr, no traceback, no stdout."""
    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert ERROR_LINE.match(lines[0]), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert result.stdout == "", result.stdout


def all_bytes(home: Path) -> bytes:
    """Every byte fleetsync keeps in the home (stores, their WAL files, the vault)."""
    return b"".join(p.read_bytes() for p in sorted(home.iterdir()) if p.is_file())
