"""NIP-42 on reads: a relay that closes a REQ with ``auth-required:`` is answered with
AUTH as the owner and asked again, on the buzz double and on rust-nostr's relay."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.nostr.keys import SecretKey
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import BuzzRelay
from tests.support.relays import start_rust_relay

pytestmark = pytest.mark.integration

WRITER = {"display_name": "Writer", "system_prompt": "Write."}


def _story(fs: Fleetsync, tmp_path: Path, url: str, count: int) -> None:
    fs("init")
    fs("relay", "add", url)
    fs.save("writer", WRITER, tmp_path, "--no-apply")
    fs("agent", "create", "--persona", "writer", "--count", str(count), "--no-apply")


def test_rust_nostrs_relay_in_nip42_read_mode_is_read_as_the_owner(tmp_path: Path) -> None:
    with start_rust_relay(nip42="read") as relay:
        fs = Fleetsync(tmp_path / "home")
        _story(fs, tmp_path, relay.url, 3)
        assert fs.json("apply")["summary"]["published"] == 3
        fs("refresh")  # exit 0: read in full after AUTH
        assert fs.json("apply")["summary"]["unchanged"] == 3


def test_rust_nostrs_relay_in_nip42_mode_for_both_takes_writes_and_reads(
    tmp_path: Path,
) -> None:
    with start_rust_relay(nip42="both") as relay:
        fs = Fleetsync(tmp_path / "home")
        _story(fs, tmp_path, relay.url, 2)
        assert fs.json("apply")["summary"]["published"] == 2
        fs("refresh")


def test_the_buzz_double_over_websocket_takes_each_agent_on_its_own_socket_and_reads_as_owner(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs = Fleetsync(tmp_path / "home")
    _story(fs, tmp_path, buzz_double.url, 5)
    first = fs.json("apply")
    assert first["summary"]["published"] == 5
    fs("refresh")  # exit 0: read in full, as the owner
    owner_hex = SecretKey.from_hex(fs.owner_secret()).public_key.hex
    accepted = {r.pubkey for r in buzz_double.auth_log if r.accepted and r.transport == "ws"}
    agents = {a["pubkey"] for a in fs.json("agent", "list")}
    assert accepted == agents | {owner_hex}
    # One socket per identity, never one per event: 5 agents, the owner's reads, and the
    # first socket that found out the relay binds one identity each (and the refresh's).
    assert buzz_double.connections_opened <= len(agents) + 4
    fs.save("writer", {**WRITER, "system_prompt": "Write more."}, tmp_path, "--no-apply")
    assert fs.json("apply")["summary"]["published"] == 5
    assert fs.json("apply")["summary"]["unchanged"] == 5


def test_one_buzz_relay_over_websocket_and_its_bridge_in_one_list_converges(
    buzz_double: BuzzRelay, tmp_path: Path
) -> None:
    fs = Fleetsync(tmp_path / "home")
    _story(fs, tmp_path, buzz_double.url, 3)
    fs("relay", "add", buzz_double.http_url)
    assert fs.json("apply")["summary"]["published"] == 3
    fs("refresh")
    assert fs.json("apply")["summary"]["unchanged"] == 3
