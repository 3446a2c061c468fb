"""A relay that cannot be read is evidence of nothing.

With the only relay stopped, ``apply``, ``refresh``, ``status`` and ``plan``
must name it, say why it could not be read, exit 3 ("could not verify") and
never count an agent whose head was not read as unchanged or in sync. The
relay is a real one (rust-nostr's local relay) that is stopped, or a fake one
on a real socket that accepts requests and never finishes answering them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.faults.fake_relay import Behaviour, FakeConnection, FakeRelay
from tests.faults.test_apply_faults import Scenario
from tests.integration.harness import Fleetsync
from tests.support.relays import start_rust_relay

pytestmark = pytest.mark.timeout(120)

UNVERIFIED = 3
WRITER = {"display_name": "Writer", "system_prompt": "Write."}


def _home_in_sync_with_a_relay_then_stopped(tmp_path: Path, agents: int) -> tuple[Fleetsync, str]:
    fs = Fleetsync(tmp_path / "home")
    fs.environ["FLEETSYNC_RELAY_TIMEOUT"] = "2"
    fs("init")
    with start_rust_relay(tmp_path=tmp_path) as relay:
        fs("relay", "add", relay.url)
        fs.save("writer", WRITER, tmp_path, "--no-apply")
        fs("agent", "create", "--persona", "writer", "--count", str(agents), "--no-apply")
        first = fs.json("apply")
        assert first["summary"]["published"] == agents
        again = fs.json("apply")
        assert again["summary"]["unchanged"] == agents, "read and found in sync while it ran"
        url = relay.url
    return fs, url


def test_apply_with_its_only_relay_down_names_it_and_counts_nobody_as_unchanged(
    tmp_path: Path,
) -> None:
    fs, url = _home_in_sync_with_a_relay_then_stopped(tmp_path, 3)
    code, out, err = fs.run("apply")
    assert code == UNVERIFIED, out + err
    assert f"relay {url} could not be read: " in out
    assert "unchanged 0" in out
    assert "unverified 3" in out
    doc = fs.json("apply", expect=UNVERIFIED)
    assert doc["verified"] is False
    assert doc["summary"]["unchanged"] == 0
    assert doc["summary"]["unverified"] == 3
    assert list(doc["unreadable"]) == [url]
    assert doc["unreadable"][url], "says why"


def test_refresh_with_its_only_relay_down_reads_no_agent_and_exits_3(tmp_path: Path) -> None:
    fs, url = _home_in_sync_with_a_relay_then_stopped(tmp_path, 2)
    code, out, err = fs.run("refresh")
    assert code == UNVERIFIED, out + err
    assert f"relay {url} could not be read: " in out
    assert "read 0 of 2 agent(s) on every relay" in out
    doc = fs.json("refresh", expect=UNVERIFIED)
    assert doc["verified"] is False
    assert doc["unverified"] == 2
    assert doc["read"] == []


def test_status_after_a_failed_read_says_so_and_claims_nothing_in_sync(tmp_path: Path) -> None:
    fs, url = _home_in_sync_with_a_relay_then_stopped(tmp_path, 2)
    fs("status")  # the last reading worked: exit 0
    fs("refresh", expect=UNVERIFIED)
    code, out, err = fs.run("status")
    assert code == UNVERIFIED, out + err
    assert f"{url}: could not be read at " in out
    assert "(last read: 20" in out, "when it was last read successfully"
    header = next(line for line in out.splitlines() if line.startswith("PERSONA"))
    assert "IN-SYNC (UNVERIFIED)" in header
    assert "not verified" in out
    doc = fs.json("status", expect=UNVERIFIED)
    assert doc["verified"] is False
    [read] = doc["relay_reads"]
    assert read["url"] == url
    assert read["verified"] is False
    assert read["read_at"] is not None
    assert read["failed_at"] is not None


def test_plan_with_nothing_to_do_after_a_failed_read_is_not_a_clean_bill(tmp_path: Path) -> None:
    fs, url = _home_in_sync_with_a_relay_then_stopped(tmp_path, 1)
    code, out, _ = fs.run("plan")
    assert code == 0
    assert f"as of the relays' last reads: {url}: read 20" in out
    fs("apply", expect=UNVERIFIED)
    code, out, err = fs.run("plan")
    assert code == UNVERIFIED, out + err
    assert "nothing to do by the log" in out
    assert "not verified" in out
    assert json.loads(fs("--json", "plan", expect=UNVERIFIED))["verified"] is False


class NeverFinishes(Behaviour):
    """Accepts the connection and every request, and never sends EOSE."""

    async def on_req(
        self, conn: FakeConnection, sub_id: str, filters: list[dict[str, Any]]
    ) -> None:
        return None


def test_a_relay_that_never_finishes_answering_leaves_its_agents_unverified(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with FakeRelay() as good, FakeRelay(NeverFinishes()) as silent:
            s = Scenario(tmp_path, good, 3)
            assert (await s.apply()).converged
            with s.fleet() as fleet:
                fleet.app.add_relay(silent.url, "test")
            with s.fleet() as fleet:
                async with fleet.reconciler() as reconciler:
                    observed = await reconciler.refresh(fleet.view().agents())
                    reading = reconciler.reading
            assert observed == 0
            assert reading is not None
            assert set(reading.failed) == {silent.url}
            assert reading.read == [good.url]
            assert reading.unverified == set(s.pubkeys)

    asyncio.run(main())


def test_a_relay_that_stops_answering_keeps_what_the_log_believed_of_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeRelay() as good, FakeRelay() as flaky:
            s = Scenario(tmp_path, good, 2)
            with s.fleet() as fleet:
                fleet.app.add_relay(flaky.url, "test")
            assert (await s.apply()).summary()["published"] == 2
            assert set(flaky.stored) == set(good.stored), "both hold every engram"
            flaky.behaviour = NeverFinishes()
            report = await s.apply()
            # Not read is not lost: nothing is resent to it, nothing recorded about it.
            assert report.planned == 0
            assert report.observed == 0
            assert report.summary()["unverified"] == 2
            assert list(report.unreadable) == [flaky.url]
            with s.fleet() as fleet:
                assert {a.status for a in fleet.view().agents()} == {"in-sync"}
                [_, read] = fleet.view().relays()
                assert (read.url, read.verified) == (flaky.url, False)

    asyncio.run(main())
