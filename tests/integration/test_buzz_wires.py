"""The whole story and the buzz double's faults over every wire a buzz relay offers.

Each test runs four times: the double over its websocket, over its HTTP bridge, one
double listed by both its URLs (one relay, two wires), and two doubles, one spoken to
over each wire (both kinds in one relay list). After every apply the same rules
hold, whatever the wire: an agent is called published (or unchanged) only when its
engram is the head every configured relay returns, each (agent, persona version) is
sealed once (a retry resends the identical event), and apply's ``--json``, its text
and ``audit`` name every relay's outcome and wire.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import bootstrap
from adapters.nostr.engram import Conversation
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.nostr.signer import KeySigner
from adapters.settings import Settings
from adapters.store.eventlog import SQLiteEventLog
from domain.engram_body import PersonaEngram, Provenance
from domain.persona import PersonaContent
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import (
    EVENT_WINDOW_SECS,
    BuzzRelay,
    Faults,
    HttpAnswer,
    parse_event,
)

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write.", "env_vars": {"KEY": "one"}}
AGENTS = 3
WIRES = ["websocket", "http", "both", "mixed"]
WITH_A_BRIDGE = ["http", "both", "mixed"]
WITH_A_SOCKET = ["websocket", "both", "mixed"]


@dataclass
class Wires:
    """The doubles of one test and the relay URLs fleetsync is given for them."""

    name: str
    doubles: list[BuzzRelay]
    urls: list[str]

    def faults(self, change: Callable[[Faults], None]) -> None:
        for relay in self.doubles:
            change(relay.faults)

    def heal(self) -> None:
        for relay in self.doubles:
            relay.faults = Faults()

    def kinds(self) -> dict[str, str]:
        return {url: "http-bridge" if url.startswith("http") else "websocket" for url in self.urls}


def _serve(stack: ExitStack, name: str) -> Wires:
    """The doubles and relay list of the set-up ``name``, served until ``stack`` closes."""
    first = stack.enter_context(BuzzRelay().serving())
    if name == "websocket":
        return Wires("websocket", [first], [first.url])
    if name == "http":
        return Wires("http", [first], [first.http_url])
    if name == "both":
        return Wires("both", [first], [first.url, first.http_url])
    second = stack.enter_context(BuzzRelay().serving())
    return Wires("mixed", [first, second], [first.url, second.http_url])


@pytest.fixture(params=WIRES)
def wires(request: pytest.FixtureRequest) -> Iterator[Wires]:
    with ExitStack() as stack:
        yield _serve(stack, request.param)


def _fleet(tmp_path: Path, wires: Wires, count: int = AGENTS) -> Fleetsync:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    for url in wires.urls:
        fs("relay", "add", url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(count), "--no-apply")
    return fs


def _apply(fs: Fleetsync, wires: Wires) -> tuple[int, dict[str, Any], str]:
    """One apply (``--json``), checked against what the doubles hold."""
    code, out, err = fs.run("--json", "apply")
    doc = json.loads(out)
    _truthful(doc, wires, everywhere=code == 0)
    return code, doc, err


def _truthful(doc: dict[str, Any], wires: Wires, *, everywhere: bool) -> None:
    """Nothing is called published (or unchanged) that no relay holds as the agent's
    head; after an apply that exits 0, every relay holds it."""
    for outcome in doc["agents"]:
        if outcome["result"] not in ("published", "unchanged"):
            continue
        holding = [relay for relay in wires.doubles if _heads(relay, outcome["agent"])]
        for relay in holding:
            assert _heads(relay, outcome["agent"]) == [outcome["event_id"]], outcome
        assert holding, f"no relay holds {outcome}"
        if everywhere:
            assert holding == wires.doubles, f"not every relay holds {outcome}"


def _heads(relay: BuzzRelay, agent: str) -> list[str]:
    return [
        e["id"] for e in list(relay.events.values()) if e["kind"] == 30174 and e["pubkey"] == agent
    ]


def _one_seal_per_version(fs: Fleetsync) -> None:
    log = SQLiteEventLog(fs.home / "events.sqlite")
    seals: dict[tuple[str, str], int] = defaultdict(int)
    try:
        for record in log.read(0, 1_000_000):
            if record.topic.endswith("Agent.EngramSealed"):
                state = record.state
                seals[(state["event"]["pubkey"], state["digest"] + state["secrets_digest"])] += 1
    finally:
        log.close()
    assert seals
    assert max(seals.values()) == 1, "an agent and version sealed twice"


def _sealed(doc: dict[str, Any]) -> dict[str, str]:
    """Each agent's engram event id, as an apply's ``--json`` names it."""
    return {o["agent"]: o["event_id"] for o in doc["agents"]}


def _converges(
    fs: Fleetsync, wires: Wires, sealed: dict[str, str] | None = None, *, once: bool = True
) -> None:
    """With the faults gone, one apply publishes what is left, the identical events
    (``once``: each agent and version sealed once; an engram every relay refused for
    good is sealed anew, as the README says)."""
    wires.heal()
    code, doc, _ = _apply(fs, wires)
    assert code == 0, doc
    assert doc["summary"]["published"] + doc["summary"]["unchanged"] == AGENTS
    if sealed is not None:
        # Whatever this apply sends is the very event the faulty one sealed.
        resent = _sealed(doc)
        assert resent.items() <= sealed.items(), "a retry resends the identical event"
    if once:
        _one_seal_per_version(fs)
    fs("refresh")  # exit 0: every relay read in full


# -- the story ------------------------------------------------------------------------


def test_the_apply_story_converges_and_reports_every_relay_over_every_wire(
    wires: Wires, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, wires)
    agents = sorted(a["pubkey"] for a in fs.json("agent", "list"))
    code, first, _ = _apply(fs, wires)
    assert code == 0
    assert first["summary"]["published"] == AGENTS
    assert {url: t["wire"] for url, t in first["traffic"].items()} == wires.kinds()
    text = fs("apply")  # nothing to do: the text names each relay and its wire
    for url, kind in wires.kinds().items():
        assert f"relay {url} over {kind}" in text
    assert "unchanged 3" in text

    fs.save("writer", {**WRITER, "system_prompt": "Write better."}, tmp_path, "--no-apply")
    code, second, _ = _apply(fs, wires)
    assert code == 0
    assert second["summary"]["published"] == AGENTS
    assert {o["event_id"] for o in second["agents"]}.isdisjoint(
        {o["event_id"] for o in first["agents"]}
    )
    fs("refresh")  # exit 0
    assert fs.json("status")["totals"]["in-sync"] == AGENTS

    for agent in agents:
        entries = fs.json("audit", "--agent", agent)["entries"]
        published = [e["details"] for e in entries if e["what"] == "published"]
        assert len(published) == 2
        for details in published:
            assert set(details["relays"]) == set(wires.urls)
            assert set(details["held_by"]) == set(wires.urls)
            assert {a["relay"] for a in details["answers"]} == set(wires.urls)
        traffic = [e["details"]["relays"] for e in entries if e["what"] == "relay traffic"]
        assert traffic == [first["traffic"], second["traffic"]]
    _one_seal_per_version(fs)


def _future_head(fs: Fleetsync, wires: Wires, agent: str, ahead: int) -> str:
    """Another writer holding ``agent``'s key puts an engram ``ahead`` s in the future
    on every relay; each double takes it (inside buzz's 900 s window). Its id."""
    with bootstrap(Settings.load(home=fs.home, environ=fs.environ)) as fleet:
        secret = fleet.keystore.get(agent)
        owner = fleet.owner.public_key
    content = PersonaContent(display_name="Writer", system_prompt=f"from {ahead} s ahead")
    provenance = Provenance(owner.hex, "writer", content.digest())
    body = prepare_persona_body(PersonaEngram(content, provenance))
    conversation = Conversation.for_agent(secret, owner)
    event = seal_persona_engram(
        KeySigner(secret), conversation, body, int(time.time()) + ahead
    ).to_dict()
    for relay in wires.doubles:
        assert relay.call(partial(_ingest, relay, event, agent)) == (True, "")
    return str(event["id"])


async def _ingest(relay: BuzzRelay, event: dict[str, Any], author: str) -> tuple[bool, str]:
    """``event`` through the double's ingest, as if ``author`` had sent it."""
    parsed, sdk_event = parse_event(event)
    return await relay.ingest(parsed, sdk_event, author)


def test_a_write_after_a_future_head_stays_inside_buzzs_window_and_one_past_it_is_a_conflict(
    wires: Wires, tmp_path: Path
) -> None:
    """buzz takes events within 900 s of its clock. A head 600 s ahead is written over
    at head + 1, which the relay takes and returns; one 870 s ahead (the relay took it,
    but head + 1 would leave room for no clock difference) is a conflict, and nothing
    is sent for it, even when a person asks to overwrite conflicts."""
    fs = _fleet(tmp_path, wires, count=2)
    assert _apply(fs, wires)[0] == 0
    near, far = sorted(a["pubkey"] for a in fs.json("agent", "list"))
    near_head = _future_head(fs, wires, near, 600)
    far_head = _future_head(fs, wires, far, EVENT_WINDOW_SECS - 30)
    fs.save("writer", {**WRITER, "system_prompt": "Write later."}, tmp_path, "--no-apply")
    code, doc, _ = _apply(fs, wires)
    assert code == 2
    # Another writer's new engrams: conflicts, waiting for a person.
    assert {o["agent"]: o["result"] for o in doc["agents"]} == {
        near: "conflict",
        far: "conflict",
    }
    code, out, _ = fs.run("--json", "apply", "--overwrite-conflicts")
    doc = json.loads(out)
    _truthful(doc, wires, everywhere=False)
    results = {o["agent"]: o for o in doc["agents"]}
    assert results[near]["result"] == "published"
    assert results[far]["result"] == "conflict"
    assert "clock" in results[far]["detail"]
    for relay in wires.doubles:
        [written] = [relay.events[i] for i in _heads(relay, near)]
        assert written["id"] == results[near]["event_id"] != near_head
        assert written["created_at"] > int(time.time()) + 590  # head + 1, not now
        assert _heads(relay, far) == [far_head], "nothing is written after the far head"


# -- the double's faults, on every wire -----------------------------------------------


def test_slow_answers_within_the_timeout_change_nothing(wires: Wires, tmp_path: Path) -> None:
    fs = _fleet(tmp_path, wires)
    wires.faults(lambda f: setattr(f, "answer_delay", 0.2))
    code, doc, _ = _apply(fs, wires)
    assert code == 0
    assert doc["summary"]["published"] == AGENTS
    _one_seal_per_version(fs)


def test_answers_slower_than_the_timeout_are_never_called_published(
    wires: Wires, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, wires)
    fs.environ["FLEETSYNC_RELAY_TIMEOUT"] = "1"
    wires.faults(lambda f: setattr(f, "answer_delay", 2.5))
    code, doc, _ = _apply(fs, wires)
    assert code != 0
    assert doc["summary"]["published"] == 0
    assert doc["summary"]["failed"] == 0, "a relay too slow to answer refused nothing"
    sealed = _sealed(doc)
    fs.environ.pop("FLEETSYNC_RELAY_TIMEOUT")
    _converges(fs, wires, sealed)


def test_an_expired_auth_publishes_nothing_and_the_same_events_land_later(
    wires: Wires, tmp_path: Path
) -> None:
    """The relay's clock 120 s ahead: every NIP-42 and NIP-98 event looks expired (its
    window is 60 s) while the engrams stay inside the 900 s event window."""
    fs = _fleet(tmp_path, wires)
    wires.faults(lambda f: setattr(f, "clock_skew", 120))
    code, doc, err = _apply(fs, wires)
    assert code != 0
    assert doc["summary"]["published"] == 0
    assert doc["summary"]["failed"] == 0, "a clock fixed later is no refusal for good"
    # The bridge says why (buzz's NIP-98 time window); over the websocket buzz says
    # only "verification failed", and fleetsync names the clock as its likely cause.
    assert "clock" in json.dumps(doc) + err
    for url, why in doc["unreadable"].items():
        assert "clock" in why, (url, why)  # the owner's reads, refused alike
    assert doc["unreadable"], "the reads were refused too"
    sealed = _sealed(doc)
    _converges(fs, wires, sealed)


@pytest.mark.parametrize("after", [2, 3, 5])
def test_a_challenge_mid_connection_is_answered_and_the_apply_converges(
    wires: Wires, tmp_path: Path, after: int
) -> None:
    """The relay sends a fresh AUTH challenge after ``after`` frames on each socket and
    forgets who it spoke to (NIP-42): writes and reads authenticate again."""
    fs = _fleet(tmp_path, wires)
    wires.faults(lambda f: setattr(f, "rechallenge_after_frames", after))
    code, doc, _ = _apply(fs, wires)
    assert code == 0, doc
    assert doc["summary"]["published"] == AGENTS
    fs("refresh")  # a fresh challenge on the reading socket too
    _one_seal_per_version(fs)


def test_a_challenge_crossing_our_auth_is_no_refusal_of_the_agent(
    wires: Wires, tmp_path: Path
) -> None:
    """The new challenge arrives as our AUTH is on its way, on every socket: the relay
    refuses an answer to an old challenge. That blames no agent: nothing failed for
    good, and the same events land once the relay stops."""
    fs = _fleet(tmp_path, wires)
    wires.faults(lambda f: setattr(f, "rechallenge_after_frames", 1))
    code, doc, _ = _apply(fs, wires)
    if wires.name in ("websocket", "mixed"):
        assert code != 0
        assert doc["summary"]["failed"] == 0, doc
    sealed = _sealed(doc)
    _converges(fs, wires, sealed)


def test_an_internal_error_is_temporary_and_the_identical_events_go_again(
    wires: Wires, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, wires)
    wires.faults(lambda f: setattr(f, "internal_error", True))
    code, doc, _ = _apply(fs, wires)
    assert code != 0
    assert doc["summary"]["published"] == 0
    assert doc["summary"]["failed"] == 0, "an internal error refuses nothing for good"
    sealed = _sealed(doc)
    _converges(fs, wires, sealed)


def test_garbage_is_never_a_success(wires: Wires, tmp_path: Path) -> None:
    """Junk frames before every websocket answer, junk bodies for the bridge's."""
    fs = _fleet(tmp_path, wires)

    def garbage(faults: Faults) -> None:
        faults.garbage_frames = True
        faults.http_answers.extend([HttpAnswer.garbage(200)] * 200)

    wires.faults(garbage)
    code, doc, _ = _apply(fs, wires)
    if wires.name == "websocket":
        # Junk frames around real answers are ignored: the real answers count.
        assert code == 0
        assert doc["summary"]["published"] == AGENTS
    elif wires.name == "mixed":
        # The websocket relay took them; the bridge's junk took nothing.
        assert doc["summary"]["published"] == AGENTS
        assert all(not _heads(wires.doubles[1], a) for a in _sealed(doc))
    else:
        assert code != 0
        assert doc["summary"]["published"] == 0
    sealed = _sealed(doc)
    _converges(fs, wires, sealed)


# -- HTTP statuses: the wires with a bridge -------------------------------------------


@pytest.fixture(params=WITH_A_BRIDGE)
def bridged(request: pytest.FixtureRequest) -> Iterator[Wires]:
    with ExitStack() as stack:
        yield _serve(stack, request.param)


def _bridge_of(wires: Wires) -> BuzzRelay:
    """The double whose bridge is in the list (in ``mixed`` the other one has none)."""
    return wires.doubles[-1]


def _held_elsewhere(wires: Wires) -> int:
    """What a write the bridge refuses still publishes: in ``mixed`` the other relay,
    over its websocket, takes every engram; in ``both`` the bridge is the relay's
    one write wire for agents (its websocket is written only when the bridge cannot
    be reached), so nothing is published."""
    return AGENTS if wires.name == "mixed" else 0


def test_a_429_is_asked_again_no_sooner_than_its_retry_after_header(
    bridged: Wires, tmp_path: Path
) -> None:
    """Retry-After (2 s) wins over the delay the body names (0 s): fleetsync waits it."""
    fs = _fleet(tmp_path, bridged)
    bridge = _bridge_of(bridged)
    bridge.faults.http_answers.append(
        HttpAnswer.error(
            429, "rate-limited: quota exceeded; retry in 0s", retry_after=2, path="/events"
        )
    )
    started = time.monotonic()
    code, doc, _ = _apply(fs, bridged)
    assert code == 0
    assert doc["summary"]["published"] == AGENTS
    assert [s for _, s in bridge.http_requests].count(429) == 1
    assert time.monotonic() - started >= 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_temporary_and_the_identical_events_land_later(
    bridged: Wires, tmp_path: Path, status: int
) -> None:
    fs = _fleet(tmp_path, bridged)
    _bridge_of(bridged).faults.http_answers.extend(
        [HttpAnswer.error(status, "internal server error")] * 200
    )
    code, doc, _ = _apply(fs, bridged)
    assert code != 0
    assert doc["summary"]["published"] == _held_elsewhere(bridged)
    assert doc["summary"]["failed"] == 0
    sealed = _sealed(doc)
    _converges(fs, bridged, sealed)


def test_a_401_that_is_not_the_time_window_is_a_refusal_not_clock_skew(
    bridged: Wires, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, bridged)
    bridge = _bridge_of(bridged)
    missing_u = "NIP-98: NIP-98 HTTP Auth verification failed: missing `u` tag"
    bridge.faults.http_answers.extend([HttpAnswer.error(401, missing_u, path="/events")] * 10)
    code, doc, _ = _apply(fs, bridged)
    assert code != 0
    assert doc["summary"]["published"] == _held_elsewhere(bridged)
    if bridged.name != "mixed":
        for outcome in doc["agents"]:
            assert outcome["result"] == "failed"
            assert "missing `u` tag" in outcome["detail"]
            assert bridge.http_url in outcome["detail"]
            assert "clock" not in outcome["detail"]
    assert all(not _heads(bridge, o["agent"]) for o in doc["agents"])
    _converges(fs, bridged, once=bridged.name == "mixed")


def test_a_403_ban_fails_the_agent_naming_the_relay_and_the_reason(
    bridged: Wires, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, bridged)
    bridge = _bridge_of(bridged)
    banned = "blocked: you are banned from this community"
    bridge.faults.http_answers.extend([HttpAnswer.error(403, banned, path="/events")] * 10)
    code, doc, _ = _apply(fs, bridged)
    assert code == 2, "a relay that refused for good leaves the agents not in sync"
    assert doc["summary"]["published"] == _held_elsewhere(bridged)
    for outcome in doc["agents"]:
        # Failed on its only write wire; or published by the other relay, with the
        # bridge that refused it named.
        assert outcome["result"] == ("published" if bridged.name == "mixed" else "failed")
        assert banned in outcome["detail"]
        assert bridge.http_url in outcome["detail"]
        assert not _heads(bridge, outcome["agent"])
    text = fs("status") if bridged.name == "mixed" else ""
    assert "PARTIAL" in text or bridged.name != "mixed"


def test_a_replayed_auth_event_is_asked_again_with_a_fresh_one(
    bridged: Wires, tmp_path: Path
) -> None:
    """``401 NIP-98: replay detected``: buzz has seen that auth event; a new one, signed
    for the retry, is taken."""
    fs = _fleet(tmp_path, bridged)
    bridge = _bridge_of(bridged)
    bridge.faults.http_answers.append(
        HttpAnswer.error(401, "NIP-98: replay detected", path="/events")
    )
    code, doc, _ = _apply(fs, bridged)
    assert code == 0
    assert doc["summary"]["published"] == AGENTS
    assert [s for _, s in bridge.http_requests].count(401) == 1
    _one_seal_per_version(fs)
