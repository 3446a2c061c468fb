"""Benchmark of the main job: `scripts/bench apply`.

Publishes N engrams for N fresh agents (every one a real publish) to a relay
running as a separate process, and reports engrams per second for:

* fleetsync ``apply``: refresh, plan, seal, store the seals, send, read back,
  record the verdicts — the whole idempotent job;
* (a) a bare pipelined client that seals the same kind of engrams and sends
  them with no store and no read-back: what any client must do;
* (b) the same client sending pre-signed events: the relay's ceiling;

and the time of a second apply over the same fleet, with nothing to do (a
refresh: what a periodic apply costs).

The ratio apply/(a) is the price of event sourcing and idempotency (goal: at
least 0.8). The relays are rust-nostr's local relay (nostr-sdk) and, with
``--slow``, the nostr-relay package too.

Each round runs all three against a fresh relay; the report shows every round
and the median one (by its ratio).

Beside each rate: for apply, its wall time and the CPU time this process
spent in it (apply overlaps its batches, so wall time is close to CPU time
unless it waits for the relay); for (a), how its time splits between sealing
and sending.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from adapters.bootstrap import bootstrap, init
from adapters.cli.publish import apply_now
from adapters.nostr.engram import Conversation
from adapters.nostr.event import Event
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.relay import RelayConnection
from adapters.settings import Settings
from domain.application import NewAgent
from domain.engram_body import PersonaEngram, Provenance
from domain.persona import PersonaContent, PersonaDefinition
from tests.support.relays import RelayProcess, start_nostr_relay, start_rust_relay

PROMPT = (
    "You are a meticulous release-notes writer. Summarise merged pull requests for "
    "end users: what changed, why it matters, and what to do about it. "
) * 6
DEFINITION = PersonaDefinition(
    PersonaContent(
        display_name="Release notes writer",
        system_prompt=PROMPT,
        model="claude-opus-4",
        provider="anthropic",
        runtime="goose",
        name_pool=("Ada", "Ben", "Cleo"),
    ),
    {"ANTHROPIC_API_KEY": "sk-bench-0123456789abcdef"},
)
WINDOW = 200


def environ(home: Path) -> dict[str, str]:
    return {
        "FLEETSYNC_HOME": str(home),
        "FLEETSYNC_PASSPHRASE": "bench",
        "FLEETSYNC_ACTOR": "bench",
        "FLEETSYNC_ARGON2_OPSLIMIT": "1",
        "FLEETSYNC_ARGON2_MEMLIMIT": "8192",
        "FLEETSYNC_RELAY_WINDOW": str(WINDOW),
        "FLEETSYNC_RELAY_TIMEOUT": "30",
    }


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds: ``elapsed`` is what the rate is computed from; ``part`` splits it."""

    elapsed: float
    part: float  # apply: CPU time of this process; (a): time spent sealing


def fleetsync_apply(url: str, count: int, tmp: Path) -> tuple[Timing, dict[str, int], float]:
    settings = Settings.load(environ=environ(tmp / "home"))
    init(settings)
    with bootstrap(settings) as fleet:
        fleet.app.add_relay(url, "bench")
        fleet.app.save_persona("writer", DEFINITION, "bench")
        keys = [SecretKey.generate() for _ in range(count)]
        fleet.keystore.put_many(keys)
        fleet.app.create_agents(
            [NewAgent(k.public_key.hex, "writer", f"w{i}") for i, k in enumerate(keys)], "bench"
        )
        fleet.view()  # caught up before the clock starts, as after 'agent create'
        start, cpu = time.perf_counter(), time.process_time()
        report = apply_now(fleet)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    with bootstrap(settings) as fleet:  # a later run, say from cron: nothing to do
        fleet.view()
        again = time.perf_counter()
        unchanged = apply_now(fleet).summary()["unchanged"]
        idle = time.perf_counter() - again
    if unchanged != count:
        sys.exit(f"the second apply left {unchanged} of {count} agents unchanged")
    return Timing(elapsed, cpu), report.summary(), idle


def seal_all(count: int) -> list[Event]:
    owner = SecretKey.generate()
    provenance = Provenance(owner.public_key.hex, "writer", DEFINITION.content.digest(), "0" * 64)
    body = prepare_persona_body(PersonaEngram(DEFINITION.content, provenance, DEFINITION.env_vars))
    now = int(time.time())
    events = []
    for _ in range(count):
        agent = SecretKey.generate()
        conv = Conversation.for_agent(agent, owner.public_key)
        events.append(seal_persona_engram(agent, conv, body, now))
    return events


async def send(url: str, events: list[Event]) -> int:
    async with RelayConnection(url) as connection:
        results = await connection.publish_many(events, window=WINDOW, timeout=30)
    return sum(1 for r in results.values() if r.stored)


def bare_client(url: str, count: int, presigned: bool) -> Timing:
    if presigned:
        events = seal_all(count)
        start = sealed = time.perf_counter()
    else:
        start = time.perf_counter()
        events = seal_all(count)
        sealed = time.perf_counter()
    stored = asyncio.run(send(url, events))
    elapsed = time.perf_counter() - start
    if stored != count:
        sys.exit(f"the bare client got only {stored}/{count} events stored")
    return Timing(elapsed, sealed - start)


@dataclass(frozen=True, slots=True)
class Round:
    """One measurement of all three, against one fresh relay."""

    apply: Timing
    bare: Timing
    ceiling: Timing
    idle: float  # seconds of a second apply, with nothing to do

    @property
    def ratio(self) -> float:
        return self.bare.elapsed / self.apply.elapsed


def one_round(relay: RelayProcess, count: int) -> Round:
    with tempfile.TemporaryDirectory() as tmp:
        ours, summary, idle = fleetsync_apply(relay.url, count, Path(tmp))
    if summary["published"] != count:
        sys.exit(f"apply published {summary} instead of {count}")
    bare = bare_client(relay.url, count, presigned=False)
    ceiling = bare_client(relay.url, count, presigned=True)
    return Round(ours, bare, ceiling, idle)


def report(label: str, count: int, rounds: list[Round]) -> None:
    print(f"{label}: {count:,} fresh agents, window {WINDOW}, {len(rounds)} round(s)")
    for n, r in enumerate(rounds, 1):
        us, a, b = r.apply.elapsed, r.bare.elapsed, r.ceiling.elapsed
        print(
            f"  round {n}: apply {count / us:>6,.0f}/s ({us:.2f} s, {r.apply.part:.2f} s CPU)"
            f"  (a) {count / a:>6,.0f}/s ({a:.2f} s: {r.bare.part:.2f} sealing)"
            f"  (b) {count / b:>6,.0f}/s   apply/(a) {r.ratio:.2f}"
        )
    # The median round by its ratio: this machine's timings wander by 5-10 %
    # from run to run, and one round says little.
    mid = sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]
    us, a, b = mid.apply.elapsed, mid.bare.elapsed, mid.ceiling.elapsed
    print("  median round:")
    print(
        f"  fleetsync apply (seal, store, send, confirm, read back): {count / us:>8,.0f} /s"
        f"   {us:.2f} s, {mid.apply.part:.2f} s CPU"
    )
    print(
        f"  (a) bare client, seal + send                          : {count / a:>8,.0f} /s"
        f"   {a:.2f} s: {mid.bare.part:.2f} s sealing, {a - mid.bare.part:.2f} s sending"
    )
    print(f"  (b) bare client, pre-signed events (relay's ceiling)  : {count / b:>8,.0f} /s")
    print(f"  apply / (a) = {a / us:.2f} (goal >= 0.8)   apply / (b) = {b / us:.2f}")
    print(
        f"  a second apply, nothing to do (refresh {count:,} heads): {mid.idle:.2f} s"
        f" = {mid.idle / us:.2f} of the first"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="each against a fresh relay")
    parser.add_argument("--slow", action="store_true", help="also nostr-relay (about 100/s)")
    parser.add_argument("--slow-count", type=int, default=300)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        with start_rust_relay(rate_limit=10_000_000) as relay:
            rounds.append(one_round(relay, args.count))
    report("rust-nostr local relay", args.count, rounds)
    if args.slow:
        with tempfile.TemporaryDirectory() as tmp, start_nostr_relay(Path(tmp)) as relay:
            report("nostr-relay (PyPI)", args.slow_count, [one_round(relay, args.slow_count)])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
