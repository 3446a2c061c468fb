"""Benchmark: start-up of a read-only command, `scripts/bench cli`.

Every ``fleetsync status`` or ``plan`` a person types pays the interpreter's
start, the imports, opening the home and catching the view up. This times, in
fresh processes on a small home (a persona, a few agents, no relay):

- ``python -c pass`` with the same interpreter and ``site``: the floor any
  Python command pays;
- ``fleetsync status`` and ``fleetsync plan`` (exit 2: changes pending);
- importing the code ``status`` runs (the CLI's command table and the module of
  its handler, which the table imports only when the command runs), and the
  packages that cost the most in that import, from ``-X importtime``.

Rounds alternate the commands; each reports its best and median wall time and
the CPU time of the child (user + system).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def environ(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FLEETSYNC_HOME": str(home),
        "FLEETSYNC_PASSPHRASE": "bench",
        "FLEETSYNC_ACTOR": "bench",
        "FLEETSYNC_ARGON2_OPSLIMIT": "1",
        "FLEETSYNC_ARGON2_MEMLIMIT": "8192",
    }


def timed(
    argv: Sequence[str], env: dict[str, str], ok: Sequence[int] = (0,)
) -> tuple[float, float]:
    """Wall and child CPU seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def make_home(home: Path, env: dict[str, str]) -> None:
    persona = home.parent / "writer.json"
    persona.write_text(
        '{"display_name": "Writer", "system_prompt": "You write release notes.", '
        '"model": "claude-opus-4", "runtime": "goose"}'
    )
    fleetsync = [sys.executable, "-m", "adapters.cli"]
    for argv in (
        ["init"],
        ["persona", "save", "writer", str(persona)],
        ["agent", "create", "--persona", "writer", "--count", "5"],
    ):
        subprocess.run([*fleetsync, *argv], env=env, check=True, capture_output=True)


# What `fleetsync status` imports before it opens the home: the command table, then
# its handler's module (adapters/cli/commands.py names it).
STATUS_CODE = "import adapters.cli.main, adapters.cli.reports"


def import_costs(env: dict[str, str], top: int) -> list[tuple[str, float]]:
    """Import time of the costliest packages (self time of every module summed
    under its top-level package), in seconds, from one ``-X importtime`` run."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", STATUS_CODE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    costs: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        package = parts[2].strip().split(".")[0]
        costs[package] = costs.get(package, 0.0) + int(parts[0]) / 1e6
    return sorted(costs.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench cli", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = environ(home)
        make_home(home, env)
        fleetsync = [sys.executable, "-m", "adapters.cli"]
        kinds: dict[str, tuple[list[str], tuple[int, ...]]] = {
            "python -c pass (floor)": ([sys.executable, "-c", "pass"], (0,)),
            "import status's code": ([sys.executable, "-c", STATUS_CODE], (0,)),
            "fleetsync status": ([*fleetsync, "status"], (0, 2, 3)),
            "fleetsync plan": ([*fleetsync, "plan"], (0, 2, 3)),
        }
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        for command, ok in kinds.values():
            timed(command, env, ok)  # warm the page cache and .pyc files
        for _ in range(args.rounds):
            for kind, (command, ok) in kinds.items():
                runs[kind].append(timed(command, env, ok))
        costs = import_costs(env, 8)
    floor = min(w for w, _ in runs["python -c pass (floor)"])
    print(f"start-up of read-only commands, {args.rounds} rounds, alternating (fresh processes)")
    print(f"  {'':<28}{'best':>8}{'median':>9}{'CPU':>8}{'floor/best':>12}")
    for kind, values in runs.items():
        walls = [w for w, _ in values]
        best = min(walls)
        cpu = statistics.median(c for _, c in values)
        print(
            f"  {kind:<28}{best * 1e3:>6.0f} ms{statistics.median(walls) * 1e3:>6.0f} ms"
            f"{cpu * 1e3:>6.0f} ms{floor / best:>12.2f}"
        )
    print("  costliest packages imported by status's code (self time, -X importtime):")
    for name, seconds in costs:
        print(f"    {name:<30}{seconds * 1e3:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
