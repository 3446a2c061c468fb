"""Connections per apply: an apply reports, per relay, the websockets it opened, the most
open at once, its NIP-42 handshakes and its HTTP requests; over a relay that binds one
identity per socket (the buzz double) the sockets open at once stay under one bound
however many agents there are.

The 10,000-agent run (marked slow) takes about 45 s here (2 shared cores): 2.5 s to
create the agents, 41 s to apply in batches of 50 (10,002 sockets: one per agent, the
owner's reading socket and the first, shared one), never more than 9 open at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.relay.identities import DEFAULT_MAX_OPEN
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import BuzzRelay

pytestmark = pytest.mark.integration

# The agents' sockets (DEFAULT_MAX_OPEN) and the owner's reading socket.
BOUND = DEFAULT_MAX_OPEN + 1


def _fleet(tmp_path: Path, url: str, count: int) -> Fleetsync:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    fs("relay", "add", url)
    fs.save("writer", {"display_name": "Writer", "system_prompt": "Write."}, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(count), "--no-apply")
    return fs


@pytest.mark.parametrize(
    "agents",
    [pytest.param(300, id="300"), pytest.param(10_000, id="10000", marks=pytest.mark.slow)],
)
def test_an_apply_over_websocket_never_holds_more_sockets_than_the_bound_whatever_the_fleet(
    buzz_double: BuzzRelay, tmp_path: Path, agents: int
) -> None:
    fs = _fleet(tmp_path, buzz_double.url, agents)
    # Batches of 50: several are out at once (their publishes overlap), as in any
    # large apply; the bound is the relay's, not each batch's.
    fs.environ["FLEETSYNC_BATCH_SIZE"] = "50"
    started = time.monotonic()
    doc = fs.json("apply")
    elapsed = time.monotonic() - started
    assert doc["summary"]["published"] == agents
    traffic = doc["traffic"][buzz_double.url]
    # Every agent had a socket of its own (and authenticated on it)...
    assert traffic["connections"] >= agents
    assert traffic["handshakes"] >= agents
    # At most one NIP-42 handshake per socket: reads as the owner add none beyond it.
    assert traffic["handshakes"] <= traffic["connections"]
    assert traffic["requests"] == 0
    assert buzz_double.connections_opened == traffic["connections"]
    # ...yet no more than the bound were open at once, counted by us and by the relay.
    # The relay may still hold one socket whose close it has not handled yet.
    assert traffic["most_open"] <= BOUND
    assert buzz_double.most_open <= BOUND + 1
    print(f"{agents} agents: apply {elapsed:.1f} s, {traffic}")


def test_an_apply_of_n_agents_over_websocket_authenticates_each_once_and_is_refused_for_none(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    agents = 12
    fs = _fleet(tmp_path, buzz_double.url, agents)
    fs.environ["FLEETSYNC_BATCH_SIZE"] = "5"  # several batches, overlapping
    doc = fs.json("apply")
    assert doc["summary"]["published"] == agents
    pubkeys = {agent["pubkey"] for agent in fs.json("agent", "list")}
    # Each agent's socket authenticated as that agent before its EVENT, so the relay
    # never refused an agent's EVENT for want of AUTH (one refusal each before).
    refused = [r for r in buzz_double.auth_refusals if r[2].startswith("auth-required")]
    assert refused == []
    agents_auth = [r.pubkey for r in buzz_double.auth_log if r.pubkey in pubkeys]
    assert sorted(agents_auth) == sorted(pubkeys)
    # What the apply reports is what the relay saw: the agents' handshakes and the
    # owner's (reading), no others.
    assert doc["traffic"][buzz_double.url]["handshakes"] == len(buzz_double.auth_log)


def test_the_text_report_names_each_relays_wire_connections_and_handshakes(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, buzz_double.url, 3)
    fs("relay", "add", buzz_double.http_url)
    out = fs("apply")
    assert (
        f"relay {buzz_double.url} over websocket: 1 connection (at most 1 open at once), "
        f"1 NIP-42 handshake; writes over its bridge {buzz_double.http_url}"
    ) in out
    posts = len(buzz_double.http_requests)
    assert f"relay {buzz_double.http_url} over http-bridge: {posts} requests over " in out


def test_the_audit_shows_what_the_apply_that_carried_an_engram_cost_each_relay(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, buzz_double.url, 4)
    first = fs.json("apply")["traffic"]
    assert fs.json("apply")["summary"]["unchanged"] == 4  # nothing carried: nothing recorded
    agent = fs.json("agent", "list")[0]["pubkey"]
    entries = fs.json("audit", "--agent", agent)["entries"]
    traffic = [e for e in entries if e["what"] == "relay traffic"]
    assert len(traffic) == 1
    assert traffic[0]["details"]["relays"] == first
    assert traffic[0]["details"]["commands"] == 4
    published = next(e["position"] for e in entries if e["what"] == "published")
    assert traffic[0]["position"] > published
    wire = first[buzz_double.url]
    text = fs("audit", "--agent", agent)
    assert (
        f"{buzz_double.url} over websocket: {wire['connections']} connections "
        f"(at most {wire['most_open']} open at once), {wire['handshakes']} NIP-42 handshakes"
    ) in text
    # A second apply that carries the engram again records its own traffic.
    fs.save("writer", {"display_name": "Writer", "system_prompt": "More."}, tmp_path, "--no-apply")
    second = fs.json("apply")["traffic"]
    entries = fs.json("audit", "--agent", agent)["entries"]
    assert [e["details"]["relays"] for e in entries if e["what"] == "relay traffic"] == [
        first,
        second,
    ]


def test_a_refresh_reports_what_reading_cost_each_relays_wire_in_text_and_json(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs = _fleet(tmp_path, buzz_double.url, 3)
    fs("relay", "add", buzz_double.http_url)
    assert fs.json("apply")["summary"]["published"] == 3

    def seen() -> tuple[int, int, int]:
        """What the relay counted so far: sockets, NIP-42 AUTHs, bridge requests."""
        auths = sum(1 for r in buzz_double.auth_log if r.transport == "ws")
        return buzz_double.connections_opened, auths, len(buzz_double.http_requests)

    before = seen()
    doc = fs.json("refresh")
    after = seen()
    ws, http = doc["traffic"][buzz_double.url], doc["traffic"][buzz_double.http_url]
    # What the refresh reports is what the relay saw of it, on each wire.
    assert (ws["wire"], http["wire"]) == ("websocket", "http-bridge")
    assert ws["connections"] == after[0] - before[0] == 1
    assert ws["most_open"] == 1
    assert ws["handshakes"] == after[1] - before[1] == 1  # the owner's, to read
    assert ws["requests"] == 0
    assert http["requests"] == after[2] - before[2] > 0
    assert http["handshakes"] == 0
    assert ws["writes_via"] == ""  # a refresh writes nothing, over any wire
    text = fs("refresh")
    assert (
        f"relay {buzz_double.url} over websocket: 1 connection (at most 1 open at once), "
        "1 NIP-42 handshake\n"
    ) in text
    posts = len(buzz_double.http_requests) - after[2]
    assert f"relay {buzz_double.http_url} over http-bridge: {posts} requests over " in text
