"""One buzz relay named twice in the relay list, by its websocket URL and by its HTTP
bridge URL (the buzz double serves both on one port): agents' engrams go over the
bridge, each once, with a NIP-98 header of their own; no agent needs a socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.nostr.keys import SecretKey
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import BuzzRelay

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write."}
AGENTS = 6


def _fleet(tmp_path: Path, relay: BuzzRelay, *urls: str) -> tuple[Fleetsync, list[str]]:
    fs = Fleetsync(tmp_path / "home")
    fs("init")
    for url in urls:
        fs("relay", "add", url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(AGENTS), "--no-apply")
    return fs, sorted(a["pubkey"] for a in fs.json("agent", "list"))


def _events_posted(relay: BuzzRelay) -> int:
    return sum(1 for path, status in relay.http_requests if path == "/events" and status == 200)


@pytest.mark.parametrize("order", ["websocket first", "bridge first"])
def test_agents_write_over_the_bridge_when_the_relay_is_listed_by_both_its_urls(
    buzz_double: BuzzRelay, tmp_path: Path, order: str
) -> None:
    urls = [buzz_double.url, buzz_double.http_url]
    if order == "bridge first":
        urls.reverse()
    fs, agents = _fleet(tmp_path, buzz_double, *urls)
    owner = SecretKey.from_hex(fs.owner_secret()).public_key.hex
    doc = fs.json("apply")
    assert doc["summary"]["published"] == AGENTS
    # Each engram went to the relay once, over the bridge; not one agent authenticated
    # over the websocket, which only the owner's reads used (one socket).
    assert _events_posted(buzz_double) == AGENTS
    ws_auths = {r.pubkey for r in buzz_double.auth_log if r.transport == "ws" and r.accepted}
    assert ws_auths == {owner}
    assert buzz_double.connections_opened == 1
    # Both URLs answered for every engram (the same relay said it), and hold it.
    audit = fs.json("audit", "--agent", agents[0])
    published = [e for e in audit["entries"] if e["what"] == "published"]
    assert set(published[-1]["details"]["relays"]) == {buzz_double.url, buzz_double.http_url}
    assert set(published[-1]["details"]["held_by"]) == {buzz_double.url, buzz_double.http_url}
    assert fs.json("apply")["summary"]["unchanged"] == AGENTS
    fs("refresh")  # exit 0: both wires were read in full, as the owner


def test_the_websocket_alone_still_takes_each_agent_on_a_socket_of_its_own(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    """The comparison the test above is against: without the bridge in the list, every
    agent needs a socket and a NIP-42 handshake."""
    fs, agents = _fleet(tmp_path, buzz_double, buzz_double.url)
    assert fs.json("apply")["summary"]["published"] == AGENTS
    assert _events_posted(buzz_double) == 0
    ws_auths = {r.pubkey for r in buzz_double.auth_log if r.transport == "ws" and r.accepted}
    assert ws_auths >= set(agents)
    assert buzz_double.connections_opened > AGENTS
