"""Whose engram is an agent's head, wherever a head is read.

Our own sealed engram, confirmed by its read-back though its OK was lost, or
found again by a later refresh, is recorded as published, never as "something
other than the log said": the next persona edit is stale content, not drift.
Another writer's new engram (signed with the agent's key) waits for a person
unless ``FLEETSYNC_FOREIGN_HEADS=self-heal``, whether a refresh or a read-back
found it; a stale copy of a version we sealed is written over. The audit says
what each overwrite replaced and who had written it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.nostr.engram import Conversation, select_head
from adapters.store.eventlog import SQLiteEventLog
from adapters.sync import heads
from domain.persona import PersonaContent, PersonaDefinition
from projections.audit import AgentAudit, audit_agent
from tests.faults.fake_relay import Behaviour, FakeRelay
from tests.faults.test_apply_faults import (
    WRITER,
    AnotherWriterWins,
    Scenario,
    StoreOutOfSight,
    StoreSilently,
    _foreign_engram,
    play,
)
from tests.faults.test_cli_relay_faults import home, run

pytestmark = pytest.mark.timeout(120)

WRITER_V2 = PersonaDefinition(
    PersonaContent(display_name="Writer", system_prompt="Write better."), {"KEY": "one"}
)


def _edit(s: Scenario) -> None:
    with s.fleet() as fleet:
        fleet.app.save_persona("writer", WRITER_V2, "test")


def _planned_reasons(s: Scenario) -> dict[str, tuple[str, ...]]:
    with s.fleet() as fleet:
        view = fleet.view()
        view.catch_up()
        return {c.pubkey: tuple(r.value for r in c.reasons) for c in view.plan()}


def _status(s: Scenario, pubkey: str) -> str:
    with s.fleet() as fleet:
        view = fleet.view()
        view.catch_up()
        row = view.agent(pubkey)
        assert row is not None
        return row.status


def _audit(s: Scenario, pubkey: str) -> AgentAudit:
    log = SQLiteEventLog(s.settings.home / "events.sqlite")
    try:
        return audit_agent(log, pubkey)
    finally:
        log.close()


def _digest(prompt: str) -> str:
    return PersonaContent(display_name="Writer", system_prompt=prompt).digest()


def test_an_engram_whose_ok_was_lost_is_published_by_its_read_back_and_its_next_edit_is_stale(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        first = await s.apply()
        assert first.summary()["published"] == 3, "the read-back head is ours: proof enough"
        assert [p["confirmed_by"] for p in s.records("Published")] == ["read-back"] * 3
        assert [p["relays"] for p in s.records("Published")] == [[]] * 3, "no relay said OK"
        assert s.records("HeadObserved") == []
        _edit(s)
        assert set(_planned_reasons(s).values()) == {("stale-content",)}
        second = await s.apply()
        assert (second.summary()["published"], second.observed) == (3, 0)
        edits = s.records("EngramSealed")[3:]
        assert {tuple(e["reasons"]) for e in edits} == {("stale-content",)}
        entry = next(e for e in _audit(s, s.pubkeys[0]).entries if e.what == "published")
        assert "confirmed by read-back" in entry.summary
        s.assert_invariants()

    play(tmp_path, StoreSilently(), 3, script)


def test_with_ack_all_a_read_back_stands_in_only_for_the_relays_that_returned_the_event(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        with s.fleet() as fleet:
            async with fleet.reconciler(ack_all=True) as reconciler:
                alone = await reconciler.apply()
        assert alone.summary()["published"] == 2, "the one relay returned each event"
        assert [p["confirmed_by"] for p in s.records("Published")] == ["read-back"] * 2
        async with FakeRelay(StoreOutOfSight()) as second:
            with s.fleet() as fleet:
                fleet.app.add_relay(second.url, "test")
                fleet.app.save_persona("writer", WRITER_V2, "test")
                async with fleet.reconciler(ack_all=True) as reconciler:
                    strict = await reconciler.apply()
            # The second relay neither answered nor returned them: not proven there.
            assert strict.summary()["published"] == 0
            assert strict.summary()["unknown"] == 2

    play(tmp_path, StoreSilently(), 2, script)


def test_a_refresh_that_finds_our_own_unconfirmed_engram_records_it_published_not_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = StoreOutOfSight()
    opened: list[str] = []

    def counting(conv: Conversation, slug: str, events: Any) -> Any:
        opened.append(conv.agent.hex)
        return select_head(conv, slug, events)

    monkeypatch.setattr(heads, "select_head", counting)

    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["unknown"] == 4
        held.land(s.relay)  # they were stored after all; the OKs were lost
        s.relay.behaviour = Behaviour()
        opened.clear()
        with s.fleet() as fleet:
            view = fleet.view()
            view.catch_up()
            async with fleet.reconciler() as reconciler:
                drift = await reconciler.refresh(view.agents())
                assert (drift, reconciler.confirmed) == (0, 4)
        assert opened == [], "our own seals, found as heads, are not decrypted to be known"
        assert s.records("HeadObserved") == []
        assert [p["confirmed_by"] for p in s.records("Published")] == ["refresh"] * 4
        assert {_status(s, pubkey) for pubkey in s.pubkeys} == {"in-sync"}
        _edit(s)
        assert set(_planned_reasons(s).values()) == {("stale-content",)}
        report = await s.apply()
        assert (report.summary()["published"], report.observed) == (4, 0)
        audit = _audit(s, s.pubkeys[0])
        confirmed = next(e for e in audit.entries if e.what == "published")
        assert "confirmed by a refresh" in confirmed.summary
        last_seal = [e for e in audit.entries if e.what == "engram sealed"][-1]
        assert last_seal.details["reasons"] == ["stale-content"]
        assert "replaces" not in last_seal.details
        s.assert_invariants()

    play(tmp_path, held, 4, script)


def _foreign_head(s: Scenario, pubkey: str, prompt: str) -> dict[str, Any]:
    foreign = _foreign_engram(s, pubkey, int(time.time()) + 5, prompt)
    s.relay.stored[foreign["id"]] = foreign
    return foreign


def _assert_replaced(s: Scenario, pubkey: str, foreign: dict[str, Any], origin: str) -> None:
    last_seal = [e for e in _audit(s, pubkey).entries if e.what == "engram sealed"][-1]
    assert last_seal.details["replaces"] == {
        "event_id": foreign["id"],
        "created_at": foreign["created_at"],
        "digest": last_seal.details["replaces"]["digest"],
        "state": "valid",
        "origin": origin,
        "signer": pubkey,
    }
    assert foreign["id"][:12] in last_seal.summary
    assert f"created_at {foreign['created_at']}" in last_seal.summary


def test_another_writers_new_engram_found_by_refresh_waits_for_a_person(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["published"] == 3
        victim = s.pubkeys[1]
        foreign = _foreign_head(s, victim, "someone else's idea")
        sent = len(s.relay.frames("EVENT"))
        report = await s.apply()
        assert (report.observed, report.planned) == (1, 0)
        [held] = report.verdicts
        assert (held.pubkey, held.verdict) == (victim, "conflict"), "not counted as unchanged"
        assert foreign["id"][:12] in held.detail
        assert "--overwrite-conflicts" in held.detail
        assert report.summary()["unchanged"] == 2
        assert not report.converged
        assert len(s.relay.frames("EVENT")) == sent, "nothing written over it"
        assert _status(s, victim) == "conflict"
        [observed] = s.records("HeadObserved")
        assert observed["origin"] == "foreign"
        assert observed["digest"] == _digest("someone else's idea")
        # A person decides.
        forced = await s.apply(overwrite_conflicts=True)
        assert {o.pubkey: o.verdict for o in forced.verdicts} == {victim: "published"}
        last_seal = [e for e in _audit(s, victim).entries if e.what == "engram sealed"][-1]
        assert last_seal.details["reasons"] == ["overwrite-conflict"]
        assert last_seal.details["replaces"]["digest"] == _digest("someone else's idea")
        _assert_replaced(s, victim, foreign, "foreign")
        assert _status(s, victim) == "in-sync"
        # Writing over another head is a second event for one version, on purpose.
        assert s.published_ids() <= set(s.relay.stored)

    play(tmp_path, Behaviour(), 3, script)


def test_with_self_heal_another_writers_new_engram_is_written_over_as_drift(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["published"] == 2
        victim = s.pubkeys[0]
        foreign = _foreign_head(s, victim, "someone else's idea")
        report = await s.apply()
        assert {o.pubkey: o.verdict for o in report.verdicts} == {victim: "published"}
        last_seal = [e for e in _audit(s, victim).entries if e.what == "engram sealed"][-1]
        assert last_seal.details["reasons"] == ["drift"]
        _assert_replaced(s, victim, foreign, "foreign")
        # Writing over another head is a second event for one version, on purpose.
        assert s.published_ids() <= set(s.relay.stored)

    play(tmp_path, Behaviour(), 2, script, FLEETSYNC_FOREIGN_HEADS="self-heal")


def test_another_writers_copy_of_a_version_we_sealed_is_written_over_by_default(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["published"] == 2
        _edit(s)
        assert (await s.apply()).summary()["published"] == 2
        victim = s.pubkeys[1]
        # The version before the edit, written back by someone holding the agent's key.
        stale = _foreign_head(s, victim, WRITER.content.system_prompt)
        report = await s.apply()
        assert {o.pubkey: o.verdict for o in report.verdicts} == {victim: "published"}
        [observed] = s.records("HeadObserved")
        assert observed["origin"] == "stale"
        last_seal = [e for e in _audit(s, victim).entries if e.what == "engram sealed"][-1]
        assert last_seal.details["reasons"] == ["drift"]
        _assert_replaced(s, victim, stale, "stale")
        # Writing over another head is a second event for one version, on purpose.
        assert s.published_ids() <= set(s.relay.stored)

    play(tmp_path, Behaviour(), 2, script)


def _writer_wins(s: Scenario, prompt: str) -> Callable[[str, int], dict[str, Any]]:
    return lambda pubkey, at: _foreign_engram(s, pubkey, at, prompt)


def test_a_conflict_found_at_read_back_follows_the_same_policy(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        s.relay.behaviour = AnotherWriterWins(_writer_wins(s, "someone else's idea"))
        assert (await s.apply()).summary()["conflicts"] == 1
        [observed] = s.records("HeadObserved")
        assert observed["origin"] == "foreign"
        s.relay.behaviour = Behaviour()
        healed = await s.apply()
        assert healed.summary()["published"] == 1, "self-heal writes over it, as for a refresh"
        [pubkey] = s.pubkeys
        last_seal = [e for e in _audit(s, pubkey).entries if e.what == "engram sealed"][-1]
        assert last_seal.details["reasons"] == ["drift"]
        assert last_seal.details["replaces"]["origin"] == "foreign"
        # Writing over another head is a second event for one version, on purpose.
        assert s.published_ids() <= set(s.relay.stored)

    play(tmp_path, Behaviour(), 1, script, FLEETSYNC_FOREIGN_HEADS="self-heal")


def test_a_stale_copy_that_beats_our_engram_at_read_back_is_written_over_next_time(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        s.relay.behaviour = AnotherWriterWins(_writer_wins(s, WRITER.content.system_prompt))
        assert (await s.apply()).summary()["conflicts"] == 1
        [observed] = s.records("HeadObserved")
        assert observed["origin"] == "stale", "it carries the version we had just sealed"
        s.relay.behaviour = Behaviour()
        again = await s.apply()
        assert again.summary()["published"] == 1
        # Writing over another head is a second event for one version, on purpose.
        assert s.published_ids() <= set(s.relay.stored)

    play(tmp_path, Behaviour(), 1, script)


def test_fleetsync_refresh_says_how_many_of_our_engrams_it_found_and_counts_no_drift(
    tmp_path: Path,
) -> None:
    cli = home(tmp_path)
    assert cli("agent", "create", "--persona", "writer", "--count", "3", "--no-apply").code == 0
    held = StoreOutOfSight()

    async def main() -> tuple[str, dict[str, Any]]:
        async with FakeRelay(held) as relay:
            assert cli("relay", "add", relay.url).code == 0
            first, _ = await run(cli, "apply")
            assert "unknown 3" in first.stdout, first
            held.land(relay)  # stored after all: only the OKs were lost
            relay.behaviour = Behaviour()
            text, _ = await run(cli, "refresh")
            again, _ = await run(cli, "--json", "refresh")
            return text.stdout, json.loads(again.stdout)

    text, doc = asyncio.run(main())
    assert "0 hold something other than the log said" in text
    assert "3 engram(s) sealed here were found as heads" in text
    assert (doc["observed_drift"], doc["confirmed"]) == (0, 0), "recorded once, then known"
