"""Crash safety: SIGKILL ``fleetsync apply`` at random points, rerun, and check.

After any number of kills (and a persona edit in the middle), one final apply
converges: every agent's head carries the current version (no lost update),
and the relay never saw two different events for the same agent and persona
version (seal once, resend the identical event). Against rust-nostr's relay,
and against the buzz double over its websocket, its HTTP bridge, both in one
relay list (one double by both URLs, and a websocket double beside a bridge
double; the double keeps heads only, so there the log's one seal per agent and
version is the proof of no fork).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from adapters.store.eventlog import SQLiteEventLog
from tests.e2e.harness import REPO
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import BuzzRelay
from tests.support.relays import start_rust_relay
from tests.support.sdk import sdk_fetch_events, sdk_nip44_decrypt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": "one"}}
AGENTS = 400


def kill_apply_after(fs: Fleetsync, delay: float) -> int | None:
    """Start ``fleetsync apply`` as its own process and SIGKILL it after ``delay`` s."""
    env = {**fs.environ, "FLEETSYNC_BATCH_SIZE": "7", "FLEETSYNC_RELAY_WINDOW": "5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "apply", "--quiet"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return None
    return process.returncode


def test_killing_apply_at_random_points_never_loses_an_update_nor_forks_a_version(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261124)
    with start_rust_relay() as relay:
        fs = Fleetsync(tmp_path / "home")
        fs("init")
        fs("relay", "add", relay.url)
        pubkeys, current = _kill_and_converge(fs, rng, tmp_path)

        owner = fs.owner_secret()
        events = [
            json.loads(e)
            for e in sdk_fetch_events(relay.url, {"kinds": [30174], "authors": pubkeys})
        ]
        by_version: dict[tuple[str, str], set[str]] = defaultdict(set)
        newest: dict[str, tuple[int, str, str]] = {}
        for event in events:
            body = json.loads(sdk_nip44_decrypt(owner, event["pubkey"], event["content"]))
            value = json.loads(body["value"])
            version = value["provenance"]["source_version"] + value["provenance"].get(
                "secrets_digest", ""
            )
            by_version[(event["pubkey"], version)].add(event["id"])
            key = (-event["created_at"], event["id"])
            if event["pubkey"] not in newest or key < newest[event["pubkey"]][:2]:
                newest[event["pubkey"]] = (*key, value["provenance"]["source_version"])
        forks = {k: ids for k, ids in by_version.items() if len(ids) > 1}
        assert not forks, f"two different events for one agent and version: {forks}"
        _one_seal_per_version(tmp_path)
        assert sorted(newest) == pubkeys
        assert {k: v[2] for k, v in newest.items()} == dict.fromkeys(pubkeys, current)


def test_a_second_apply_on_the_same_home_is_refused_while_one_runs(tmp_path: Path) -> None:
    with start_rust_relay() as relay:
        fs = Fleetsync(tmp_path / "home")
        fs("init")
        fs("relay", "add", relay.url)
        fs.save("writer", WRITER, tmp_path, "--no-apply")
        fs("agent", "create", "--persona", "writer", "--count", "3", "--no-apply")
        # Hold the home's apply lock from another process, as a running apply does.
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import fcntl, sys; f = open(sys.argv[1], 'a+b'); "
                "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                str(tmp_path / "home" / "apply.lock"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            code, _, err = fs.run("apply", "--quiet")
            assert code == 1
            assert "another fleetsync apply is running" in err
            assert fs.json("plan", expect=2)["changes"] == 3, "nothing was sealed or sent"
        finally:
            assert holder.stdin is not None
            assert holder.stdout is not None
            holder.stdin.close()
            holder.wait(timeout=10)
            holder.stdout.close()
        assert fs.json("apply")["summary"]["published"] == 3


def _kill_and_converge(
    fs: Fleetsync, rng: random.Random, tmp_path: Path, agents: int = AGENTS
) -> tuple[list[str], str]:
    """Kill applies at random points (a persona edit in the middle), then one apply that
    converges; the agents' keys and the persona's current digest."""
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(agents), "--no-apply")
    pubkeys = sorted(a["pubkey"] for a in fs.json("agent", "list"))

    kills = rounds = 0
    latest = 1.5  # s after its start that a kill may come; at most a whole apply's time
    edited = {**WRITER, "system_prompt": "Write better.", "env_vars": {"KEY": "two"}}
    while kills < 6 and rounds < 30:
        rounds += 1
        if kills == 3:
            fs.save("writer", edited, tmp_path, "--no-apply")
        started = time.monotonic()
        if kill_apply_after(fs, rng.uniform(0.3, latest)) is None:
            kills += 1
        else:
            # It finished before the kill: later kills come sooner, and a new
            # persona version gives the next round all its agents to publish.
            latest = max(0.4, min(latest, time.monotonic() - started))
            again = {**WRITER, "system_prompt": f"Write, take {rounds}."}
            fs.save("writer", again, tmp_path, "--no-apply")
    assert kills == 6, "the kills must land while apply is running"

    final = fs.json("apply")
    assert final["summary"]["failed"] == final["summary"]["unknown"] == 0
    current: str = fs.json("persona", "show", "writer")["digest"]
    fs("plan")  # exit 0: nothing left
    return pubkeys, current


def _one_seal_per_version(tmp_path: Path) -> None:
    """The log agrees: one seal per agent and version, however often apply died."""
    log = SQLiteEventLog(tmp_path / "home" / "events.sqlite")
    seals: dict[tuple[str, str], int] = defaultdict(int)
    for record in log.read(0, 1_000_000):
        if record.topic.endswith("Agent.EngramSealed"):
            state = record.state
            seals[(state["event"]["pubkey"], state["digest"] + state["secrets_digest"])] += 1
    log.close()
    assert max(seals.values()) == 1
    assert len(seals) >= AGENTS // 4


@pytest.mark.parametrize(
    "wires",
    ["http", "websocket", "both", "mixed"],
)
def test_killing_apply_on_a_buzz_relay_never_loses_an_update_nor_seals_a_version_twice(
    tmp_path: Path, wires: str
) -> None:
    """``both``: one double listed by its bridge and its websocket (agents write over
    the bridge); ``mixed``: one double over its websocket beside another over its
    bridge, so agents write over both wires."""
    rng = random.Random(20261205)
    with BuzzRelay().serving() as relay, BuzzRelay().serving() as other:
        fs = Fleetsync(tmp_path / "home")
        fs("init")
        if wires in ("http", "both"):
            fs("relay", "add", relay.http_url)
        if wires in ("websocket", "both", "mixed"):
            fs("relay", "add", relay.url)
        if wires == "mixed":
            fs("relay", "add", other.http_url)
        pubkeys, current = _kill_and_converge(fs, rng, tmp_path, agents=AGENTS // 4)
        _one_seal_per_version(tmp_path)
        owner = fs.owner_secret()
        for double in [relay, other] if wires == "mixed" else [relay]:
            for pubkey in pubkeys:
                head = _head(double, pubkey)
                assert head is not None, f"no engram of {pubkey} on the relay"
                body = json.loads(sdk_nip44_decrypt(owner, pubkey, str(head["content"])))
                assert json.loads(body["value"])["provenance"]["source_version"] == current


def _head(relay: BuzzRelay, pubkey: str) -> dict[str, object] | None:
    # The relay is idle by now: its stored rows are read from this thread.
    found = [e for e in list(relay.events.values()) if e["kind"] == 30174 and e["pubkey"] == pubkey]
    return max(found, key=lambda e: (e["created_at"], e["id"])) if found else None
