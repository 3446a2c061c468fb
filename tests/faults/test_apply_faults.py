"""``apply`` against a relay that misbehaves, on a real socket.

Whatever the relay does, three things must hold: apply converges once the
relay behaves (or reports a permanent refusal), nothing is recorded as
published that the relay did not acknowledge *and* return on read-back, and
no two different events are ever sent for one agent and persona version
(except after a permanent refusal, which is what allows a new seal).
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from adapters.bootstrap import Fleet, bootstrap, init
from adapters.keystore import KeyStoreCorrupt
from adapters.nostr.engram import Conversation, select_head
from adapters.nostr.event import Event
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.nostr.persona_engram import prepare_persona_body, seal_persona_engram
from adapters.nostr.signer import KeySigner
from adapters.settings import Settings
from adapters.store.eventlog import SQLiteEventLog
from adapters.sync import heads
from adapters.sync.report import ApplyReport
from domain.application import NewAgent
from domain.engram_body import PersonaEngram, Provenance, decode_persona_body
from domain.persona import PersonaContent, PersonaDefinition
from tests.e2e.harness import base_environ
from tests.faults.fake_relay import (
    Behaviour,
    DropAfter,
    DuplicateFalse,
    FakeConnection,
    FakeRelay,
    Garbage,
    NeverAnswer,
    RateLimit,
    Refuse,
    RequireAuth,
)

pytestmark = pytest.mark.timeout(120)

WRITER = PersonaDefinition(
    PersonaContent(display_name="Writer", system_prompt="Write."), {"KEY": "one"}
)


class StoreSilently(Behaviour):
    """Stores every EVENT but never answers: the client cannot know it landed."""

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        conn.relay.stored[str(event["id"])] = event


class StoreOutOfSight(Behaviour):
    """Keeps every EVENT aside without answering, where no REQ finds it yet: neither
    an OK nor a read-back can tell it landed (``land`` makes them stored)."""

    def __init__(self) -> None:
        self.held: dict[str, dict[str, Any]] = {}

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        self.held[str(event["id"])] = event

    def land(self, relay: FakeRelay) -> None:
        relay.stored.update(self.held)


class AcceptWithoutStoring(Behaviour):
    """Answers ``OK true`` and throws the event away: only a read-back can tell."""

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        await conn.ok(str(event["id"]), True, "")


class Scenario:
    """A home with ``agents`` agents of one persona, and one fake relay configured."""

    def __init__(self, tmp_path: Path, relay: FakeRelay, agents: int, **environ: str) -> None:
        self.settings = Settings.load(
            environ=base_environ(
                FLEETSYNC_HOME=str(tmp_path / "home"),
                FLEETSYNC_RELAY_TIMEOUT="1",
                FLEETSYNC_BATCH_SIZE="4",
                **environ,
            )
        )
        self.relay = relay
        init(self.settings)
        with self.fleet() as fleet:
            fleet.app.add_relay(relay.url, "test")
            fleet.app.save_persona("writer", WRITER, "test")
            keys = [SecretKey.generate() for _ in range(agents)]
            fleet.keystore.put_many(keys)
            fleet.app.create_agents(
                [NewAgent(k.public_key.hex, "writer", f"w{i}") for i, k in enumerate(keys)],
                "test",
            )
            self.owner = fleet.owner
        self.pubkeys = sorted(k.public_key.hex for k in keys)

    def fleet(self) -> Fleet:
        return bootstrap(self.settings)

    async def apply(self, *, overwrite_conflicts: bool = False) -> ApplyReport:
        with self.fleet() as fleet:
            async with fleet.reconciler() as reconciler:
                return await reconciler.apply(overwrite_conflicts=overwrite_conflicts)

    def records(self, name: str) -> list[dict[str, Any]]:
        """The stored state of every ``Agent.<name>`` event, in log order."""
        log = SQLiteEventLog(self.settings.home / "events.sqlite")
        try:
            return [r.state for r in log.read(0, 1_000_000) if r.topic.endswith(f"Agent.{name}")]
        finally:
            log.close()

    def published_ids(self) -> set[str]:
        log = SQLiteEventLog(self.settings.home / "events.sqlite")
        try:
            return {
                r.state["event_id"]
                for r in log.read(0, 1_000_000)
                if r.topic.endswith("Agent.Published")
            }
        finally:
            log.close()

    def sealed_ids(self) -> set[str]:
        log = SQLiteEventLog(self.settings.home / "events.sqlite")
        try:
            return {
                r.state["event"]["id"]
                for r in log.read(0, 1_000_000)
                if r.topic.endswith("Agent.EngramSealed")
            }
        finally:
            log.close()

    def versions_sent(self) -> dict[tuple[str, str], set[str]]:
        """(agent, persona version) -> ids of the different events the relay received."""
        out: dict[tuple[str, str], set[str]] = defaultdict(set)
        for frame in self.relay.frames("EVENT"):
            event = Event.from_dict(frame.data[1])
            conv = Conversation.for_owner(self.owner, PublicKey.from_hex(event.pubkey))
            engram = decode_persona_body(conv.key.decrypt(event.content))
            assert engram is not None
            version = engram.provenance.source_version + str(engram.provenance.secrets_digest)
            out[(event.pubkey, version)].add(event.id)
        return out

    def assert_invariants(self) -> None:
        forks = {k: v for k, v in self.versions_sent().items() if len(v) > 1}
        assert not forks, f"two different events for one agent and version: {forks}"
        assert self.published_ids() <= set(self.relay.stored), "published but not stored"


Run = Callable[[Scenario], Awaitable[None]]


def play(tmp_path: Path, behaviour: Behaviour, agents: int, script: Run, **environ: str) -> None:
    async def main() -> None:
        async with FakeRelay(behaviour) as relay:
            await script(Scenario(tmp_path, relay, agents, **environ))

    asyncio.run(main())


def test_a_relay_that_drops_the_connection_mid_batch_still_gets_every_engram_once(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        report = await s.apply()
        if not report.converged:
            report = await s.apply()
        assert report.converged
        s.assert_invariants()
        assert len(s.published_ids()) == 10

    play(tmp_path, DropAfter(answered=3), 10, script)


def test_no_answer_is_unknown_and_the_next_apply_resends_the_identical_events(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        first = await s.apply()
        assert first.summary()["unknown"] == 6
        assert s.published_ids() == set()
        # The relay went silent on the first batch: it was given up for the rest of
        # that apply, so the later batches were sealed and stored but never sent.
        sealed_first = s.sealed_ids()
        assert len(sealed_first) == 6
        assert set(s.relay.event_ids()) < sealed_first
        s.relay.behaviour = Behaviour()
        second = await s.apply()
        assert second.summary()["published"] == 6
        assert set(s.relay.event_ids()) == sealed_first, "a retry resends, it never reseals"
        assert s.sealed_ids() == sealed_first
        s.assert_invariants()

    play(tmp_path, NeverAnswer(), 6, script)


def test_rate_limited_engrams_are_retried_until_they_land(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        report = await s.apply()
        assert report.summary()["published"] == 8
        assert len(s.relay.event_ids()) > 8, "some EVENTs were refused and sent again"
        s.assert_invariants()

    play(tmp_path, RateLimit(burst=3, interval=0.05), 8, script)


def test_an_error_answer_is_temporary_and_the_same_events_go_again_later(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        first = await s.apply()
        assert first.summary()["published"] == 0
        assert first.summary()["failed"] == 0, "error: is temporary, not a refusal"
        sent_first = set(s.relay.event_ids())
        s.relay.behaviour = Behaviour()
        assert (await s.apply()).converged
        assert set(s.relay.event_ids()) == sent_first
        s.assert_invariants()

    play(tmp_path, Refuse("error: database is down"), 5, script)


def test_auth_required_is_answered_as_the_agent_and_the_engram_lands(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        report = await s.apply()
        assert report.summary()["published"] == 4
        authors = {f.data[1]["pubkey"] for f in s.relay.frames("AUTH")}
        assert authors == set(s.pubkeys), "each agent authenticates as itself"
        s.assert_invariants()

    play(tmp_path, RequireAuth(), 4, script)


def test_a_permanent_refusal_is_reported_and_only_then_a_new_seal_is_allowed(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        first = await s.apply()
        assert first.summary()["failed"] == 3
        assert all("invalid: no thanks" in o.detail for o in first.verdicts)
        refused = set(s.relay.event_ids())
        s.relay.behaviour = Behaviour()
        second = await s.apply()
        assert second.summary()["published"] == 3
        assert not refused & s.published_ids()
        assert s.published_ids() <= set(s.relay.stored)

    play(tmp_path, Refuse("invalid: no thanks"), 3, script)


def test_duplicate_with_false_counts_as_acknowledged(tmp_path: Path) -> None:
    held = StoreOutOfSight()

    async def script(s: Scenario) -> None:
        first = await s.apply()
        assert first.summary()["unknown"] == 4
        held.land(s.relay)
        s.relay.behaviour = DuplicateFalse()
        second = await s.apply()
        # The refresh already finds our sealed events as heads: nothing is left to send.
        assert second.converged
        assert second.planned == 0
        s.assert_invariants()

    play(tmp_path, held, 4, script)


def test_a_resent_engram_answered_duplicate_false_is_published(tmp_path: Path) -> None:
    held = StoreOutOfSight()

    async def script(s: Scenario) -> None:
        first = await s.apply()
        assert first.summary()["unknown"] == 4
        held.land(s.relay)
        s.relay.behaviour = DuplicateFalse()
        with s.fleet() as fleet:
            async with fleet.reconciler() as reconciler:
                second = await reconciler.apply(refresh=False)
        assert second.summary()["published"] == 4
        ids = s.relay.event_ids()
        assert len(ids) == 8, "each engram sent twice: first unanswered, then duplicate"
        assert len(set(ids)) == 4
        s.assert_invariants()

    play(tmp_path, held, 4, script)


class CheckSealedFirst(Behaviour):
    """Stores and accepts, noting every EVENT whose seal is not yet committed to the log
    (and whether the cyclic garbage collector ran meanwhile: apply pauses it)."""

    def __init__(self, events_file: Path) -> None:
        self.events_file = events_file
        self.unsealed: list[str] = []
        self.collector_enabled: set[bool] = set()

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        self.collector_enabled.add(gc.isenabled())
        log = SQLiteEventLog(self.events_file)
        try:
            sealed = {
                r.state["event"]["id"]
                for r in log.read(0, 1_000_000)
                if r.topic.endswith("Agent.EngramSealed")
            }
        finally:
            log.close()
        if event["id"] not in sealed:
            self.unsealed.append(str(event["id"]))
        await conn.store_and_ok(event)


def test_batches_overlap_but_no_event_is_sent_before_its_seal_is_committed(
    tmp_path: Path,
) -> None:
    behaviour = CheckSealedFirst(tmp_path / "home" / "events.sqlite")

    async def script(s: Scenario) -> None:
        report = await s.apply()  # batches of 4: several are sealed while others are out
        assert report.summary()["published"] == 30
        assert behaviour.unsealed == []
        s.assert_invariants()
        assert behaviour.collector_enabled == {False}, "paused while apply ran"
        assert gc.isenabled(), "and enabled again after it"

    play(tmp_path, behaviour, 30, script)


def test_garbage_frames_do_not_stop_apply(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["published"] == 5
        s.assert_invariants()

    play(tmp_path, Garbage(), 5, script)


def test_an_ok_without_the_event_on_read_back_is_not_published(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        report = await s.apply()
        assert report.summary()["published"] == 0
        assert report.summary()["unknown"] == 3
        assert s.published_ids() == set()
        s.assert_invariants()

    play(tmp_path, AcceptWithoutStoring(), 3, script)


def _agent_key(s: Scenario, pubkey: str) -> SecretKey:
    with s.fleet() as fleet:
        return fleet.keystore.get(pubkey)


def _foreign_engram(s: Scenario, pubkey: str, created_at: int, prompt: str) -> dict[str, Any]:
    """An engram another writer (holding the agent's key) put on the relay."""
    secret = _agent_key(s, pubkey)
    content = PersonaContent(display_name="Writer", system_prompt=prompt)
    provenance = Provenance(s.owner.public_key.hex, "writer", content.digest())
    body = prepare_persona_body(PersonaEngram(content, provenance))
    conv = Conversation.for_agent(secret, s.owner.public_key)
    return seal_persona_engram(KeySigner(secret), conv, body, created_at).to_dict()


def test_a_head_far_in_the_future_is_a_conflict_not_a_write(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        poisoned = s.pubkeys[0]
        future = int(time.time()) + 2 * 86400
        event = _foreign_engram(s, poisoned, future, "from the future")
        s.relay.stored[event["id"]] = event
        report = await s.apply()
        results = {o.pubkey: o.verdict for o in report.verdicts}
        # Another writer's new content: a conflict before anything is sealed.
        assert results[poisoned] == "conflict"
        assert report.planned == 2
        assert all(r == "published" for k, r in results.items() if k != poisoned)
        # Even a person's overwrite does not write past a head from the future.
        forced = await s.apply(overwrite_conflicts=True)
        assert {o.pubkey: o.verdict for o in forced.verdicts} == {poisoned: "conflict"}
        assert "clock" in forced.verdicts[0].detail
        sent_by_poisoned = [f for f in s.relay.frames("EVENT") if f.data[1]["pubkey"] == poisoned]
        assert sent_by_poisoned == [], "nothing is written over a clock-poisoned head"
        with s.fleet() as fleet:
            row = fleet.view().agent(poisoned)
            assert row is not None
            assert row.status == "conflict"
        s.assert_invariants()

    play(tmp_path, Behaviour(), 3, script)


class AnotherWriterWins(Behaviour):
    """Stores our engram, but another writer's newer one lands right behind it."""

    def __init__(self, forge: Callable[[str, int], dict[str, Any]]) -> None:
        self.forge = forge

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        await conn.store_and_ok(event)
        newer = self.forge(str(event["pubkey"]), int(event["created_at"]) + 5)
        conn.relay.stored[str(newer["id"])] = newer


def test_another_writers_newer_engram_is_a_conflict_and_stops_the_planner(
    tmp_path: Path,
) -> None:
    async def script(s: Scenario) -> None:
        s.relay.behaviour = AnotherWriterWins(
            lambda pubkey, at: _foreign_engram(s, pubkey, at, "someone else's idea")
        )
        report = await s.apply()
        assert report.summary()["conflicts"] == 2
        assert s.published_ids() == set()
        with s.fleet() as fleet:
            view = fleet.view()
            assert view.plan() == [], "a conflict waits for a person, not for a retry"
            assert {a.status for a in view.agents()} == {"conflict"}
        s.assert_invariants()

    play(tmp_path, Behaviour(), 2, script)


def test_a_conflict_stands_across_applies_until_a_person_overwrites_it(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        s.relay.behaviour = AnotherWriterWins(
            lambda pubkey, at: _foreign_engram(s, pubkey, at, "someone else's idea")
        )
        assert (await s.apply()).summary()["conflicts"] == 1
        s.relay.behaviour = Behaviour()
        again = await s.apply()
        assert again.planned == 0, "the refresh sees the same foreign head: still a conflict"
        with s.fleet() as fleet:
            async with fleet.reconciler() as reconciler:
                forced = await reconciler.apply(overwrite_conflicts=True)
        assert forced.summary()["published"] == 1
        with s.fleet() as fleet:
            assert [a.status for a in fleet.view().agents()] == ["in-sync"]

    play(tmp_path, Behaviour(), 1, script)


def test_with_ack_all_one_refusing_relay_keeps_the_engram_unpublished(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        async with FakeRelay(Refuse("restricted: read-only relay")) as second:
            with s.fleet() as fleet:
                fleet.app.add_relay(second.url, "test")
                async with fleet.reconciler(ack_all=True) as reconciler:
                    strict = await reconciler.apply()
            assert strict.summary()["published"] == 0
            assert s.published_ids() == set()
            assert strict.summary()["unknown"] == 2
            with s.fleet() as fleet:
                async with fleet.reconciler() as reconciler:
                    lenient = await reconciler.apply()
            # The refresh reads our sealed engrams back as the heads, on the first
            # relay only: the read-only one is asked again for those very events,
            # refuses them, and says so. Nothing new is sealed, then or later.
            assert lenient.planned == 2
            assert lenient.summary()["failed"] == 2
            assert all("restricted: read-only relay" in o.detail for o in lenient.verdicts)
            with s.fleet() as fleet:
                async with fleet.reconciler() as reconciler:
                    again = await reconciler.apply()
                assert {a.status for a in fleet.view().agents()} == {"partial"}
            assert again.summary()["failed"] == 2
            assert len(set(s.relay.event_ids())) == 2
            assert set(second.event_ids()) == set(s.relay.event_ids())
            assert len(second.event_ids()) == 6, "sent there three times, never anywhere else"
            s.assert_invariants()

    play(tmp_path, Behaviour(), 2, script)


def test_a_plan_overtaken_by_another_process_is_not_carried_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apply seals at the agent version its plan was made at: a change in between
    makes the store refuse that batch whole, so nothing of it is sent."""

    async def script(s: Scenario) -> None:
        retired = s.pubkeys[0]  # commands go by pubkey: it is in the first batch
        with s.fleet() as fleet:
            sealed_many = fleet.keystore.sealed_many

            def retire_then_read(pubkeys: Sequence[str]) -> dict[str, str]:
                # Called as sealing starts, after the plan: another process retires.
                with s.fleet() as other:
                    if not other.app.get_agent(retired).retired:
                        other.app.retire_agent(retired, "someone else")
                return sealed_many(pubkeys)

            monkeypatch.setattr(fleet.keystore, "sealed_many", retire_then_read)
            async with fleet.reconciler() as reconciler:
                with pytest.raises(IntegrityError):
                    await reconciler.apply()
        assert retired not in {f.data[1]["pubkey"] for f in s.relay.frames("EVENT")}
        report = await s.apply()  # planned afresh: the retired agent is left out
        assert report.converged
        assert retired not in {o.pubkey for o in report.verdicts}
        assert len(s.published_ids()) == 11
        s.assert_invariants()

    play(tmp_path, Behaviour(), 12, script)


def test_a_refresh_that_finds_the_heads_the_log_records_opens_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def counting(conv: Conversation, slug: str, events: Any) -> Any:
        opened.append(conv.agent.hex)
        return select_head(conv, slug, events)

    monkeypatch.setattr(heads, "select_head", counting)

    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["published"] == 5
        opened.clear()
        again = await s.apply()
        assert again.summary() == {**again.summary(), "published": 0, "unchanged": 5}
        assert opened == [], "nothing new on the relays: no engram decrypted again"
        s.assert_invariants()
        # Another writer's newer engram for one agent: that one is opened and judged
        # (new content nobody here sealed: a conflict that waits for a person).
        drifted = s.pubkeys[2]
        foreign = _foreign_engram(s, drifted, int(time.time()) + 5, "someone else's idea")
        s.relay.stored[foreign["id"]] = foreign
        third = await s.apply()
        assert opened == [drifted]
        assert {o.pubkey: o.verdict for o in third.verdicts} == {drifted: "conflict"}
        assert (third.observed, third.planned) == (1, 0)
        opened.clear()
        fourth = await s.apply()
        assert (fourth.observed, fourth.planned, opened) == (0, 0, [])
        assert fourth.summary()["conflicts"] == 1, "it still waits for a person"

    play(tmp_path, Behaviour(), 5, script)


def test_a_wrong_d_tag_in_the_key_store_stops_the_seal_for_that_agent(tmp_path: Path) -> None:
    async def script(s: Scenario) -> None:
        victim = s.pubkeys[0]
        with sqlite3.connect(tmp_path / "home" / "keys.sqlite") as conn:
            conn.execute("UPDATE keys SET persona_d_tag = ? WHERE pubkey = ?", ("0" * 64, victim))
        conn.close()
        with pytest.raises(KeyStoreCorrupt, match="d tag"):
            await s.apply()
        assert victim not in {f.data[1]["pubkey"] for f in s.relay.frames("EVENT")}

    play(tmp_path, Behaviour(), 3, script)


def test_requests_for_heads_stay_within_the_author_limit_whatever_the_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heads, "AUTHORS_PER_REQUEST", 3)  # batches are 4 here

    async def script(s: Scenario) -> None:
        assert (await s.apply()).summary()["published"] == 10
        sizes = [len(f.data[2]["authors"]) for f in s.relay.frames("REQ")]
        assert max(sizes, default=0) == 3
        asked = [a for f in s.relay.frames("REQ") for a in f.data[2]["authors"]]
        assert set(asked) == set(s.pubkeys), "refresh and read-back ask for every agent"
        s.assert_invariants()

    play(tmp_path, Behaviour(), 10, script)
