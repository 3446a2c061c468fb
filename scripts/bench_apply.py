"""Benchmark of the main job: `scripts/bench apply`.

Publishes N engrams for N fresh agents (every one a real publish) to a relay
running as a separate process, and reports engrams per second for:

* fleetsync ``apply``: refresh, plan, seal, store the seals, send, read back,
  record the verdicts — the whole idempotent job;
* (p) the fair baseline: a pipelined client with no store that seals batch k+1
  while batch k is sent, and counts a batch only once a read-back returns it —
  what a careful client must do;
* (a) a simple client: seal everything, then send everything, on one thread,
  and read nothing back (a floor on the work, not on the waiting);
* (b) sending pre-signed events only: the relay's ceiling;

and the time of a second apply over the same fleet, with nothing to do (a
refresh: what a periodic apply costs).

Every client has the agents' key pairs and the persona's prepared body before
its clock starts, as apply has them (keys in its key store), and derives each
agent's conversation key inside it, as apply does once per agent per run.

The headline ratio is apply/(p): the price of event sourcing and idempotency
over the same protocol work. Beside each rate: wall time and the CPU time this
process spent (all threads). The relays are rust-nostr's local relay
(nostr-sdk) and, with ``--slow``, the nostr-relay package too. rust-nostr's
relay keeps at most 75,000 events in memory; a round stores 4 x N, so past
that the relay is started on LMDB instead.

Each round runs every client against a fresh relay; the report shows every
round and the median one (by apply/(p)).

With ``--transport http`` the relay is the buzz relay double's HTTP bridge
(``tests/support/buzz_relay.py``, in a process of its own so its CPU time is
its own), and the clients are:

* fleetsync ``apply`` through the bridge: every request with a fresh NIP-98
  header, read back through ``POST /query`` as the owner;
* (p) a bare bridge client: seals batch k+1 (fleetsync's own seal) while batch
  k is POSTed, one event per ``POST /events`` with a fresh NIP-98 header, over
  aiohttp keep-alive with fleetsync's bound on requests in flight, then reads
  the batch back through ``POST /query`` with fleetsync's filters (200 authors
  and ``#p`` = the owner, signed by the owner); a batch counts once every event
  of it was accepted and read back;
* (a) a simple bridge client: seal everything, POST everything, read
  everything back.

Every client runs against a fresh double of its own (none writes to, or reads
from, a relay another client filled), in an order that turns from round to
round. Beside each client's wall and CPU time, the CPU time the double spent
meanwhile (from ``/proc``): the double and the clients share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from adapters.bootstrap import bootstrap, init
from adapters.nostr.engram import ENGRAM_KIND, Conversation, PreparedBody
from adapters.nostr.event import Event
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip98 import authorization_header
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.nostr.signer import KeySigner
from adapters.relay import RelayConnection
from adapters.settings import Settings
from adapters.sync.gateway import AUTHORS_PER_FILTER
from adapters.usecases.apply import ApplyRequest, apply
from domain.application import NewAgent
from domain.engram_body import PersonaEngram, Provenance
from domain.persona import PersonaContent, PersonaDefinition
from tests.support.relays import (
    RelayProcess,
    bridge_url,
    start_buzz_relay,
    start_nostr_relay,
    start_rust_relay,
)

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
    """Seconds: ``elapsed`` (wall) is what the rate is computed from; ``cpu`` is this
    process's CPU time over it, all threads; ``sealing`` splits (a)'s wall time;
    ``relay_cpu`` is the relay process's CPU time over it (where it is measured)."""

    elapsed: float
    cpu: float
    sealing: float = 0.0
    relay_cpu: float = 0.0


def no_probe() -> float:
    return 0.0


def fleetsync_apply(
    url: str, count: int, tmp: Path, relay_cpu: Callable[[], float] = no_probe
) -> tuple[Timing, dict[str, int], float]:
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
        start, cpu, theirs = time.perf_counter(), time.process_time(), relay_cpu()
        report = apply(fleet, ApplyRequest())
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        theirs = relay_cpu() - theirs
    with bootstrap(settings) as fleet:  # a later run, say from cron: nothing to do
        fleet.view()
        again = time.perf_counter()
        unchanged = apply(fleet, ApplyRequest()).summary()["unchanged"]
        idle = time.perf_counter() - again
    if unchanged != count:
        sys.exit(f"the second apply left {unchanged} of {count} agents unchanged")
    return Timing(elapsed, cpu, relay_cpu=theirs), report.summary(), idle


@dataclass(frozen=True, slots=True)
class Prepared:
    """What every client has before its clock starts, as apply has it: the agents'
    key pairs and the persona version's body, checked and padded once."""

    owner: SecretKey
    agents: list[SecretKey]
    body: PreparedBody


def prepare(count: int) -> Prepared:
    owner = SecretKey.generate()
    provenance = Provenance(owner.public_key.hex, "writer", DEFINITION.content.digest(), "0" * 64)
    body = prepare_persona_body(PersonaEngram(DEFINITION.content, provenance, DEFINITION.env_vars))
    return Prepared(owner, [SecretKey.generate() for _ in range(count)], body)


def seal_all(prepared: Prepared) -> list[Event]:
    """Seal one engram per agent; each agent's conversation is derived here (an ECDH),
    as apply derives it once per agent per run."""
    now = int(time.time())
    owner = prepared.owner.public_key
    return [
        seal_persona_engram(
            KeySigner(agent), Conversation.for_agent(agent, owner), prepared.body, now
        )
        for agent in prepared.agents
    ]


async def send(url: str, events: list[Event]) -> int:
    async with RelayConnection(url) as connection:
        results = await connection.publish_many(events, window=WINDOW, timeout=30)
    return sum(1 for r in results.values() if r.stored)


def bare_client(url: str, prepared: Prepared, presigned: bool) -> Timing:
    """(a): seal everything, then send everything, on one thread; nothing read back.
    (b), ``presigned``: only the sending, of events sealed before the clock starts."""
    events = seal_all(prepared) if presigned else []
    start, cpu = time.perf_counter(), time.process_time()
    if not presigned:
        events = seal_all(prepared)
    sealed = time.perf_counter()
    stored = asyncio.run(send(url, events))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if stored != len(prepared.agents):
        sys.exit(f"the bare client got only {stored}/{len(prepared.agents)} events stored")
    return Timing(elapsed, cpu, sealed - start)


PIPELINE_BATCH = 500
PIPELINE_AHEAD = 4  # batches sent but not yet read back, besides the one being sealed


async def pipelined(url: str, prepared: Prepared) -> int:
    """(p): what a careful client without a store does. Batches are sealed while the
    batches before them are sent and read back, on one connection; a batch counts
    only once a read-back by author returns every event of it."""
    now = int(time.time())
    owner = prepared.owner.public_key
    confirmed = 0

    async def send_and_read_back(connection: RelayConnection, events: list[Event]) -> int:
        await connection.publish_many(events, window=WINDOW, timeout=30)
        filter_ = {"kinds": [ENGRAM_KIND], "authors": [e.pubkey for e in events]}
        found = await connection.query([filter_], timeout=30)
        ids = {e.id for e in found.events}
        return sum(1 for e in events if e.id in ids)

    async with RelayConnection(url) as connection:
        out: deque[asyncio.Task[int]] = deque()
        agents = prepared.agents
        for start in range(0, len(agents), PIPELINE_BATCH):
            batch = []
            for n, agent in enumerate(agents[start : start + PIPELINE_BATCH], 1):
                conv = Conversation.for_agent(agent, owner)
                batch.append(seal_persona_engram(KeySigner(agent), conv, prepared.body, now))
                if n % 32 == 0:
                    await asyncio.sleep(0)  # let the batches already out go on
            out.append(asyncio.create_task(send_and_read_back(connection, batch)))
            while len(out) > PIPELINE_AHEAD:
                confirmed += await out.popleft()
        while out:
            confirmed += await out.popleft()
    return confirmed


def pipelined_client(url: str, prepared: Prepared) -> Timing:
    start, cpu = time.perf_counter(), time.process_time()
    confirmed = asyncio.run(pipelined(url, prepared))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if confirmed != len(prepared.agents):
        sys.exit(f"the pipelined client read back only {confirmed}/{len(prepared.agents)}")
    return Timing(elapsed, cpu)


@dataclass(frozen=True, slots=True)
class Round:
    """One measurement of every client, against one fresh relay."""

    apply: Timing
    bare: Timing
    pipelined: Timing
    ceiling: Timing
    idle: float  # seconds of a second apply, with nothing to do

    @property
    def ratio(self) -> float:
        """apply against the fair baseline: the pipelined client that reads back."""
        return self.pipelined.elapsed / self.apply.elapsed


def one_round(relay: RelayProcess, count: int) -> Round:
    with tempfile.TemporaryDirectory() as tmp:
        ours, summary, idle = fleetsync_apply(relay.url, count, Path(tmp))
    if summary["published"] != count:
        sys.exit(f"apply published {summary} instead of {count}")
    bare = bare_client(relay.url, prepare(count), presigned=False)
    piped = pipelined_client(relay.url, prepare(count))
    ceiling = bare_client(relay.url, prepare(count), presigned=True)
    return Round(ours, bare, piped, ceiling, idle)


def report(label: str, count: int, rounds: list[Round]) -> None:
    print(f"{label}: {count:,} fresh agents, window {WINDOW}, {len(rounds)} round(s)")
    print("  every client has the agents' key pairs and the prepared body before its clock")
    print("  starts, and derives each agent's conversation (an ECDH) inside it, as apply does")
    for n, r in enumerate(rounds, 1):
        us, a, p, b = r.apply.elapsed, r.bare.elapsed, r.pipelined.elapsed, r.ceiling.elapsed
        print(
            f"  round {n}: apply {count / us:>6,.0f}/s ({us:.2f} s, {r.apply.cpu:.2f} s CPU)"
            f"  (p) {count / p:>6,.0f}/s ({p:.2f} s, {r.pipelined.cpu:.2f} s CPU)"
            f"  (a) {count / a:>6,.0f}/s  (b) {count / b:>6,.0f}/s"
            f"  apply/(p) {r.ratio:.2f}  apply/(a) {a / us:.2f}"
        )
    # The median round by its ratio: this machine's timings wander by 5-10 %
    # from run to run, and one round says little.
    mid = sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]
    us, a, p, b = mid.apply.elapsed, mid.bare.elapsed, mid.pipelined.elapsed, mid.ceiling.elapsed
    print("  median round (by apply/(p)):                           rate        wall     CPU")
    rows = [
        ("fleetsync apply (seal, store, send, read back, record)", us, mid.apply.cpu, ""),
        ("(p) pipelined client: seal while sending, read back", p, mid.pipelined.cpu, ""),
        (
            "(a) simple client: seal all, then send; no read-back",
            a,
            mid.bare.cpu,
            f"  ({mid.bare.sealing:.2f} s sealing)",
        ),
        ("(b) pre-signed events, send only (relay's ceiling)", b, mid.ceiling.cpu, ""),
    ]
    for name, wall, cpu, note in rows:
        print(f"  {name:<55}{count / wall:>7,.0f}/s {wall:6.2f} s {cpu:6.2f} s{note}")
    print(
        f"  apply / (p) = {p / us:.2f} (the fair baseline)   apply / (a) = {a / us:.2f}"
        f"   apply / (b) = {b / us:.2f}"
    )
    print(
        f"  a second apply, nothing to do (refresh {count:,} heads): {mid.idle:.2f} s"
        f" = {mid.idle / us:.2f} of the first"
    )


# -- over a buzz relay's HTTP bridge (--transport http) ----------------------------------


def process_cpu(pid: int) -> Callable[[], float]:
    """The CPU seconds (user + system) process ``pid`` has spent so far, read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{pid}/stat")

    def probe() -> float:
        # Fields after the command name (which may hold spaces): utime and stime are
        # the 14th and 15th fields of the line, the 12th and 13th after ") ".
        fields = stat.read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return probe


class BareBridgeClient:
    """A bridge client with nothing but the protocol: one ``POST /events`` per event,
    each with a fresh NIP-98 header by its author, reads by the owner through
    ``POST /query`` with fleetsync's filters; keep-alive connections, at most
    ``WINDOW`` requests in flight (the bound fleetsync's bridge transport keeps)."""

    def __init__(self, base: str, owner: SecretKey, session: aiohttp.ClientSession) -> None:
        self._base = base
        self._owner = KeySigner(owner)
        self._owner_hex = owner.public_key.hex
        self._session = session

    async def _post(self, path: str, body: bytes, signer: KeySigner) -> bytes:
        url = self._base + path
        headers = {
            "Content-Type": "application/json",
            "Authorization": authorization_header(
                signer, url, "POST", body, created_at=int(time.time())
            ),
        }
        async with self._session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                sys.exit(f"the bare bridge client got HTTP {response.status}: {payload[:200]!r}")
            return payload

    async def publish(self, event: Event, signer: KeySigner) -> bool:
        """True when the bridge stored it (accepted, and not as a ``duplicate:``)."""
        answer = orjson.loads(await self._post("/events", orjson.dumps(event.to_dict()), signer))
        return answer.get("accepted") is True and answer.get("message") == ""

    async def read_back(self, events: list[Event]) -> int:
        """How many of ``events`` a read as the owner returns (fleetsync's filters)."""
        bodies = [
            orjson.dumps(
                [
                    {
                        "kinds": [ENGRAM_KIND],
                        "authors": [e.pubkey for e in events[start : start + AUTHORS_PER_FILTER]],
                        "#p": [self._owner_hex],
                    }
                ]
            )
            for start in range(0, len(events), AUTHORS_PER_FILTER)
        ]
        answers = await asyncio.gather(*(self._post("/query", b, self._owner) for b in bodies))
        ids = {found["id"] for payload in answers for found in orjson.loads(payload)}
        return sum(1 for e in events if e.id in ids)

    async def send_and_read_back(self, batch: list[tuple[Event, KeySigner]]) -> tuple[int, int]:
        stored = await asyncio.gather(*(self.publish(e, s) for e, s in batch))
        return sum(stored), await self.read_back([e for e, _ in batch])


def bridge_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=WINDOW))


async def bridge_pipelined(base: str, prepared: Prepared) -> tuple[int, int]:
    """(p) over the bridge: batch k+1 sealed while the batches before it are POSTed and
    read back; (events stored, events read back)."""
    now = int(time.time())
    owner = prepared.owner.public_key
    stored = confirmed = 0
    async with bridge_session() as session:
        client = BareBridgeClient(base, prepared.owner, session)
        out: deque[asyncio.Task[tuple[int, int]]] = deque()
        agents = prepared.agents
        for start in range(0, len(agents), PIPELINE_BATCH):
            batch = []
            for n, agent in enumerate(agents[start : start + PIPELINE_BATCH], 1):
                signer = KeySigner(agent)
                conv = Conversation.for_agent(agent, owner)
                batch.append((seal_persona_engram(signer, conv, prepared.body, now), signer))
                if n % 32 == 0:
                    await asyncio.sleep(0)  # let the batches already out go on
            out.append(asyncio.create_task(client.send_and_read_back(batch)))
            while len(out) > PIPELINE_AHEAD:
                done = await out.popleft()
                stored, confirmed = stored + done[0], confirmed + done[1]
        while out:
            done = await out.popleft()
            stored, confirmed = stored + done[0], confirmed + done[1]
    return stored, confirmed


async def bridge_simple(base: str, prepared: Prepared) -> tuple[float, int, int]:
    """(a) over the bridge: seal everything, POST everything, read everything back;
    (seconds sealing, events stored, events read back)."""
    start = time.perf_counter()
    events = seal_all(prepared)
    sealing = time.perf_counter() - start
    signers = [KeySigner(agent) for agent in prepared.agents]
    async with bridge_session() as session:
        stored, confirmed = await BareBridgeClient(
            base, prepared.owner, session
        ).send_and_read_back(list(zip(events, signers, strict=True)))
    return sealing, stored, confirmed


def bridge_client(
    name: str, base: str, prepared: Prepared, relay_cpu: Callable[[], float]
) -> tuple[Timing, str]:
    """One bare bridge client's timing, and what it counted (it exits unless every
    event was stored and read back)."""
    count = len(prepared.agents)
    start, cpu, theirs = time.perf_counter(), time.process_time(), relay_cpu()
    sealing = 0.0
    if name == "(p)":
        stored, confirmed = asyncio.run(bridge_pipelined(base, prepared))
    else:
        sealing, stored, confirmed = asyncio.run(bridge_simple(base, prepared))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    theirs = relay_cpu() - theirs
    if stored != count or confirmed != count:
        sys.exit(
            f"the bare bridge client {name} got {stored}/{count} events stored "
            f"and {confirmed}/{count} read back"
        )
    return Timing(elapsed, cpu, sealing, theirs), f"{stored:,} stored, {confirmed:,} read back"


@dataclass(frozen=True, slots=True)
class BridgeRound:
    """One measurement of every bridge client, against one fresh double."""

    apply: Timing
    pipelined: Timing
    bare: Timing
    idle: float
    counted: dict[str, str]  # what each client counted, by its name

    @property
    def ratio(self) -> float:
        """apply against the strong baseline: the pipelined bare client."""
        return self.pipelined.elapsed / self.apply.elapsed


def bridge_round(count: int, number: int) -> BridgeRound:
    """Every client against a double of its own: a client after another would write to
    and read from a fuller relay. The order of the clients
    turns from round to round, so a burst of load elsewhere on the machine does not
    always land on the same one."""
    timings: dict[str, Timing] = {}
    counted: dict[str, str] = {}
    idle = 0.0
    names = ["apply", "(p)", "(a)"]
    for name in names[number % 3 :] + names[: number % 3]:
        with start_buzz_relay() as relay:
            base, relay_cpu = bridge_url(relay), process_cpu(relay.process.pid)
            if name == "apply":
                with tempfile.TemporaryDirectory() as tmp:
                    ours, summary, idle = fleetsync_apply(base, count, Path(tmp), relay_cpu)
                if summary["published"] != count:
                    sys.exit(f"apply published {summary} instead of {count}")
                timings[name] = ours
                # fleetsync_apply exits unless the second apply found every agent unchanged.
                counted[name] = f"{summary['published']:,} published (read back), then unchanged"
            else:
                timings[name], counted[name] = bridge_client(name, base, prepare(count), relay_cpu)
    return BridgeRound(timings["apply"], timings["(p)"], timings["(a)"], idle, counted)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def bridge_report(count: int, rounds: list[BridgeRound], before: str) -> None:
    print(
        f"buzz relay double, HTTP bridge: {count:,} fresh agents, at most {WINDOW} requests "
        f"in flight, {len(rounds)} round(s)"
    )
    print(f"  {before} before, {load()} after")
    print("  every client has the agents' key pairs and the prepared body before its clock")
    print("  starts; every request carries a fresh NIP-98 header; every client reads back")
    print("  through POST /query as the owner and counts only what it read back")
    for n, r in enumerate(rounds, 1):
        ours, piped, bare = r.apply, r.pipelined, r.bare
        print(
            f"  round {n}: apply {count / ours.elapsed:>6,.0f}/s ({ours.elapsed:.2f} s, "
            f"{ours.cpu:.2f} s CPU, double {ours.relay_cpu:.2f} s)"
            f"  (p) {count / piped.elapsed:>6,.0f}/s ({piped.elapsed:.2f} s, "
            f"{piped.cpu:.2f} s CPU, double {piped.relay_cpu:.2f} s)"
            f"  (a) {count / bare.elapsed:>6,.0f}/s  apply/(p) {r.ratio:.2f}"
            f"  apply/(a) {bare.elapsed / ours.elapsed:.2f}"
        )
        print("    counted: " + "; ".join(f"{k} {v}" for k, v in r.counted.items()))
    mid = sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]
    print(
        "  median round (by apply/(p)):                           rate        wall     CPU"
        "  double CPU"
    )
    rows = [
        ("fleetsync apply over the bridge (store, read back)", mid.apply, ""),
        ("(p) bare client: seal while POSTing, read back", mid.pipelined, ""),
        (
            "(a) bare client: seal all, POST all, read back",
            mid.bare,
            f"  ({mid.bare.sealing:.2f} s sealing)",
        ),
    ]
    for name, t, note in rows:
        print(
            f"  {name:<55}{count / t.elapsed:>7,.0f}/s {t.elapsed:6.2f} s {t.cpu:6.2f} s"
            f"  {t.relay_cpu:6.2f} s{note}"
        )
    us, p, a = mid.apply.elapsed, mid.pipelined.elapsed, mid.bare.elapsed
    print(f"  apply / (p) = {p / us:.2f} (the strong baseline)   apply / (a) = {a / us:.2f}")
    # Where the double and the clients share busy cores, the wall time follows the CPU
    # time both spend; this ratio is steadier than the wall one on a loaded machine.
    ours_cpu = mid.apply.cpu + mid.apply.relay_cpu
    theirs_cpu = mid.pipelined.cpu + mid.pipelined.relay_cpu
    print(
        f"  CPU per engram, client and double together: apply {1000 * ours_cpu / count:.2f} ms,"
        f" (p) {1000 * theirs_cpu / count:.2f} ms: (p) / apply = {theirs_cpu / ours_cpu:.2f}"
    )
    print(
        "  the double's CPU per engram: "
        + ", ".join(
            f"{name} {1000 * t.relay_cpu / count:.2f} ms"
            for name, t in (("apply", mid.apply), ("(p)", mid.pipelined), ("(a)", mid.bare))
        )
        + f"; busy {mid.pipelined.relay_cpu / p:.0%} of (p)'s wall time"
        f" and {mid.apply.relay_cpu / us:.0%} of apply's"
    )
    print(
        f"  a second apply, nothing to do (refresh {count:,} heads): {mid.idle:.2f} s"
        f" = {mid.idle / us:.2f} of the first"
    )


def run_bridge(count: int, rounds: int) -> None:
    before = load()
    results = [bridge_round(count, number) for number in range(rounds)]
    bridge_report(count, results, before)


# rust-nostr's LocalRelay keeps its events in memory and holds at most this many
# (nostr-sdk's default for its memory database); a round stores 4 x count events.
MEMORY_RELAY_CAPACITY = 75_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="each against a fresh relay")
    parser.add_argument(
        "--slow", action="store_true", help="also nostr-relay (far slower than the rust relay)"
    )
    parser.add_argument("--slow-count", type=int, default=300)
    parser.add_argument(
        "--transport",
        choices=("websocket", "http"),
        default="websocket",
        help="http: the buzz relay double's HTTP bridge, against bare bridge clients",
    )
    args = parser.parse_args()
    if args.transport == "http":
        run_bridge(args.count, args.rounds)
        return
    lmdb = 4 * args.count > MEMORY_RELAY_CAPACITY
    if lmdb:
        print(
            f"{4 * args.count:,} events per round exceed the in-memory relay's "
            f"{MEMORY_RELAY_CAPACITY:,}: the rust-nostr relay stores them in LMDB"
        )
    rounds = []
    for _ in range(args.rounds):
        with start_rust_relay(rate_limit=10_000_000, lmdb=lmdb) as relay:
            rounds.append(one_round(relay, args.count))
    report("rust-nostr local relay", args.count, rounds)
    if args.slow:
        with tempfile.TemporaryDirectory() as tmp, start_nostr_relay(Path(tmp)) as relay:
            report("nostr-relay (PyPI)", args.slow_count, [one_round(relay, args.slow_count)])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
