"""One contract for the engine, run on the in-memory store and on a real SQLite file."""

from __future__ import annotations

import gc
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from adapters.store.internals import save_aggregates
from domain.aggregates import Agent
from domain.application import AgentExists, FleetApplication, NewAgent, UnknownPersona
from domain.errors import InvalidSlug, TooLarge
from domain.ids import agent_id
from domain.planner import PublishCommand, Reason, Status
from projections.fold import Fold
from projections.memory import MemoryViewStore
from projections.rows import AGENT_COLUMNS
from projections.view import FleetView, replay
from tests.fleet_support import (
    OWNER,
    POSTGRES_URL,
    definition,
    make_fleet,
    pubkey,
    replayed,
    snapshot,
)


class FleetContract:
    kind: str

    @pytest.fixture
    def fleet(self, tmp_path: Path) -> tuple[FleetApplication, FleetView]:
        return make_fleet(self.kind, tmp_path)

    def test_new_agents_are_planned_once_each_with_their_cause(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in (1, 2)], "tester")
        view.catch_up()
        commands = view.plan()
        assert [c.pubkey for c in commands] == [pubkey(1), pubkey(2)]
        assert all(c.reasons == (Reason.MISSING,) for c in commands)
        assert all(1 in c.causes for c in commands), "the persona save is a cause"

    def test_a_plan_comes_with_the_row_of_exactly_each_agent_it_names(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write"), "tester")
        app.save_persona("critic", definition("judge"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in (1, 2, 3)], "tester")
        app.create_agents([NewAgent(pubkey(4), "critic", "c4")], "tester")
        app.retire_agent(pubkey(2), "tester")
        view.catch_up()
        for persona, agent in ((None, None), ("writer", None), (None, pubkey(4))):
            commands, rows = view.plan_with_rows(persona, agent)
            assert commands == view.plan(persona, agent)
            assert list(rows) == [c.pubkey for c in commands]
            assert all(rows[c.pubkey] == view.agent(c.pubkey) for c in commands)
        assert list(view.plan_with_rows(persona="writer")[1]) == [pubkey(1), pubkey(3)]

    def test_editing_a_persona_replans_only_its_agents(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        for slug in ("writer", "critic"):
            app.save_persona(slug, definition(slug), "tester")
        app.create_agents(
            [NewAgent(pubkey(i), "writer" if i % 2 else "critic", f"a{i}") for i in range(1, 7)],
            "tester",
        )
        view.catch_up()
        for command in view.plan():
            agent = app.get_agent(command.pubkey)
            agent.record_published("e" * 64, command.digest, command.secrets_digest, ["ws://r"], [])
            app.save(agent)
        view.catch_up()
        assert view.plan() == []
        app.save_persona("writer", definition("write better"), "tester")
        fold = Fold(view.store)
        fold.apply(view.log.read(fold.start, 100))
        assert fold.flush() == (1, 3), "one persona and its three agents, not the fleet"
        commands = view.plan()
        assert {c.pubkey for c in commands} == {pubkey(1), pubkey(3), pubkey(5)}
        assert {c.reasons for c in commands} == {(Reason.STALE_CONTENT,)}

    def test_a_head_observed_naming_our_latest_seal_reads_as_its_publication(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("v1"), "tester")
        app.create_agents([NewAgent(pubkey(1), "writer", "w")], "tester")
        view.catch_up()
        [command] = view.plan()
        agent = app.get_agent(pubkey(1))
        sealed = {"id": "e" * 64, "pubkey": pubkey(1), "created_at": 100}
        agent.record_sealed(sealed, "writer", command.digest, command.secrets_digest, [], [])
        # How a refresh recorded our own engram before heads were judged (a version 1
        # record reads as origin "unknown").
        agent.record_observed(
            "e" * 64, 100, command.digest, command.secrets_digest, "valid", ["ws://r"], "unknown"
        )
        app.save(agent)
        app.save_persona("writer", definition("v2"), "tester")
        view.catch_up()
        row = view.agent(pubkey(1))
        assert row is not None
        assert (row.published_event_id, row.head_observed, row.pending_event_id) == (
            "e" * 64,
            False,
            None,
        )
        [command] = view.plan()
        assert command.reasons == (Reason.STALE_CONTENT,)

    def test_rotating_a_secret_replans_with_that_reason(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write", secret="one"), "tester")
        app.create_agents([NewAgent(pubkey(1), "writer", "w")], "tester")
        view.catch_up()
        [command] = view.plan()
        agent = app.get_agent(command.pubkey)
        agent.record_published("e" * 64, command.digest, command.secrets_digest, ["ws://r"], [])
        app.save(agent)
        app.save_persona("writer", definition("write", secret="two"), "tester")
        view.catch_up()
        [command] = view.plan()
        assert command.reasons == (Reason.ROTATED_SECRETS,)

    def test_saving_identical_content_adds_no_event(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write", secret="s"), "tester")
        before = view.log.max_position()
        again = app.save_persona("writer", definition("write", secret="s"), "tester")
        assert again.changed is False
        assert view.log.max_position() == before

    def test_retired_agents_and_deleted_personas_drop_out_of_the_plan(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        for slug in ("writer", "critic"):
            app.save_persona(slug, definition(slug), "tester")
        app.create_agents(
            [NewAgent(pubkey(1), "writer", "w"), NewAgent(pubkey(2), "critic", "c")], "t"
        )
        app.retire_agent(pubkey(1), "tester")
        app.delete_persona("critic", "tester")
        view.catch_up()
        assert view.plan() == []
        statuses = {a.pubkey: a.status for a in view.agents()}
        assert statuses == {pubkey(1): Status.RETIRED, pubkey(2): Status.PERSONA_DELETED}

    def test_bad_requests_are_refused_and_leave_the_log_unchanged(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write"), "tester")
        app.create_agents([NewAgent(pubkey(1), "writer", "w")], "tester")
        before = view.log.max_position()
        with pytest.raises(InvalidSlug):
            app.save_persona("Bad Slug", definition("x"), "tester")
        with pytest.raises(UnknownPersona):
            app.create_agents([NewAgent(pubkey(2), "nobody", "n")], "tester")
        with pytest.raises(AgentExists):
            app.create_agents(
                [NewAgent(pubkey(3), "writer", "n"), NewAgent(pubkey(1), "writer", "n")], "t"
            )
        with pytest.raises(TooLarge):
            app.save_persona("huge", definition("x" * 70_000), "tester")
        assert view.log.max_position() == before

    def test_aggregates_saved_in_bulk_reload_as_saved_and_in_one_transaction(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", "w") for i in (1, 2)], "tester")
        first, second = app.get_agent(pubkey(1)), app.get_agent(pubkey(2))
        for agent in (first, second):
            agent.record_sealed(
                {"id": "e" * 64, "pubkey": agent.pubkey}, "writer", "d", "s", [], []
            )
            agent.record_answers("e" * 64, [])
        second.record_published("e" * 64, "d", "s", ["ws://r"], [])
        before = view.log.max_position()
        save_aggregates(app, [first, second])
        assert view.log.max_position() == before + 5
        assert first.collect_events() == []
        assert second.collect_events() == []
        for agent in (first, second):
            reloaded = app.get_agent(agent.pubkey)
            assert (reloaded.version, reloaded.unsettled) == (agent.version, agent.unsettled)
        assert app.get_agent(pubkey(1)).unsettled == {
            "e" * 64: {"id": "e" * 64, "pubkey": pubkey(1)}
        }
        # A stale copy conflicts as a whole: nothing of the batch is stored.
        stale = app.get_agent(pubkey(1))
        stale.record_answers("e" * 64, [])
        fresh = app.get_agent(pubkey(2))
        fresh.record_answers("e" * 64, [])
        first.record_answers("e" * 64, [])
        save_aggregates(app, [first])
        before = view.log.max_position()
        with pytest.raises(IntegrityError):
            save_aggregates(app, [fresh, stale])
        assert view.log.max_position() == before

    def test_a_command_is_recorded_at_the_version_it_was_planned_at_or_not_at_all(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("write"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", "w") for i in (1, 2)], "tester")
        view.catch_up()
        first, second = view.plan()
        assert (first.agent_version, second.agent_version) == (1, 1)
        # Another writer gets to the second agent between the plan and the apply.
        app.retire_agent(second.pubkey, "someone else")

        def sealed(command: PublishCommand) -> Agent:
            handle = Agent.at_version(
                UUID(command.agent_id), command.pubkey, command.persona_slug, command.agent_version
            )
            event = {"id": "e" * 64, "pubkey": handle.pubkey}
            handle.record_sealed(event, "writer", "d", "s", [], [])
            return handle

        before = view.log.max_position()
        with pytest.raises(IntegrityError):
            save_aggregates(app, [sealed(first), sealed(second)])
        assert view.log.max_position() == before, "nothing of the batch is stored"
        save_aggregates(app, [sealed(first)])
        assert app.get_agent(first.pubkey).unsettled == {
            "e" * 64: {"id": "e" * 64, "pubkey": first.pubkey}
        }
        view.catch_up()
        (again,) = view.plan()
        assert (again.pubkey, again.agent_version) == (first.pubkey, 2)

    def test_the_incremental_view_equals_a_full_replay_and_a_rebuild(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("v1"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", "w") for i in range(1, 4)], "tester")
        view.catch_up()
        app.save_persona("critic", definition("c"), "tester")
        app.move_agent(pubkey(2), "critic", "tester")
        app.save_persona("writer", definition("v2"), "tester")
        view.catch_up()
        incremental = snapshot(view)
        assert incremental == replayed(view)
        view.rebuild()
        assert snapshot(view) == incremental

    def test_a_view_over_another_history_is_rebuilt_from_that_history(self, tmp_path: Path) -> None:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        app, view = make_fleet(self.kind, tmp_path / "a")
        app.save_persona("writer", definition("v1"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", "w") for i in (1, 2)], "tester")
        view.catch_up()
        assert view.matches_log()
        # A different history that has grown past the view's position, as when an
        # old copy of the event store is restored and work goes on before a read.
        other_app, other = make_fleet(self.kind, tmp_path / "b")
        other_app.save_persona("critic", definition("c"), "tester")
        other_app.create_agents([NewAgent(pubkey(i), "critic", "c") for i in range(3, 8)], "tester")
        assert other.log.max_position() > view.position
        switched = FleetView(other.log, view.store)
        assert not switched.matches_log()
        switched.catch_up()
        assert switched.matches_log()
        assert snapshot(switched) == replayed(switched)
        assert {a.persona_slug for a in switched.agents()} == {"critic"}

    def test_a_new_view_over_a_long_log_equals_one_folded_batch_by_batch(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("v1"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", "w") for i in range(1, 6)], "tester")
        app.retire_agent(pubkey(2), "tester")
        view.catch_up()  # batch by batch: the log is shorter than a batch
        stepwise = snapshot(view)
        fresh = FleetView(view.log, MemoryViewStore(), batch_size=2)
        assert fresh.catch_up() == view.log.max_position()
        assert snapshot(fresh) == stepwise

    def test_a_view_ahead_of_its_log_is_rebuilt(self, tmp_path: Path) -> None:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        app, view = make_fleet(self.kind, tmp_path / "a")
        app.save_persona("writer", definition("v1"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", "w") for i in (1, 2, 3)], "tester")
        view.catch_up()
        older_app, older = make_fleet(self.kind, tmp_path / "b")
        older_app.save_persona("writer", definition("v1"), "tester")
        switched = FleetView(older.log, view.store)
        switched.catch_up()
        assert switched.agents() == []
        assert [p.slug for p in switched.personas()] == ["writer"]

    def test_a_new_agents_row_holds_what_its_creation_said_column_by_column(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("v1"), "alice")
        app.create_agents([NewAgent(pubkey(7), "writer", "Ada")], "bob")
        view.catch_up()
        (created,) = view.log.stream(agent_id(pubkey(7)).hex)
        expected = dict.fromkeys(AGENT_COLUMNS) | {
            "agent_id": created.originator_id,
            "pubkey": pubkey(7),
            "name": "Ada",
            "persona_slug": "writer",
            "owner_pubkey": OWNER,
            "origin": "created",
            "created_at": created.state["timestamp"],
            "created_position": created.position,
            "assigned_position": created.position,
            "status": Status.NEVER_PUBLISHED.value,
            "reasons": Reason.MISSING.value,
            "retired": False,
            "key_destroyed": False,
            "head_position": 0,
            "head_observed": False,
            "published_position": 0,
            "pending_position": 0,
            "conflict_position": 0,
            "version": 1,
            "head_origin": "",
            "retired_position": 0,
            "tombstone_position": 0,
        }
        incremental = view.agent(pubkey(7))
        memory, _ = replay(view.log)
        (replayed_row,) = memory.agents.values()
        for row in (incremental, replayed_row):
            assert row is not None
            assert dict(zip(AGENT_COLUMNS, row, strict=True)) == expected

    def test_a_batch_writes_only_the_rows_its_events_changed(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("v1"), "tester")
        app.save_persona("critic", definition("c"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in (1, 2, 3)], "tester")
        view.catch_up()
        # One agent more for a persona that has three: the batch reads the
        # persona's members, but only the new agent and the persona's count change.
        app.create_agents([NewAgent(pubkey(4), "writer", "w4")], "tester")
        fold = Fold(view.store)
        assert fold.apply(view.log.read(fold.start, 100)) == 1
        assert fold.flush() == (1, 1)
        # A move changes the agent and both personas' counts.
        app.move_agent(pubkey(1), "critic", "tester")
        fold = Fold(view.store)
        fold.apply(view.log.read(fold.start, 100))
        assert fold.flush() == (2, 1)
        assert snapshot(view) == replayed(view)

    def test_a_replay_leaves_nothing_for_the_cyclic_collector(
        self, fleet: tuple[FleetApplication, FleetView]
    ) -> None:
        app, view = fleet
        app.save_persona("writer", definition("v1"), "tester")
        app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in (1, 2)], "tester")
        # Replays run with the collector paused: anything cyclic they leave
        # (a fold holding every row) would outlive them. Reference counting
        # alone must free a replay's working state when it returns.
        gc.collect()
        gc.disable()
        try:
            memory, _ = replay(view.log)
            leftovers = [o for o in gc.get_objects() if isinstance(o, Fold)]
        finally:
            gc.enable()
        assert len(memory.agents) == 2
        assert leftovers == []


class TestContractOnMemory(FleetContract):
    kind = "memory"


@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="set FLEETSYNC_TEST_POSTGRES_URL (scripts/postgres prints one; CI sets it)",
)
class TestContractOnPostgreSQL(FleetContract):
    kind = "postgres"


class TestContractOnSQLite(FleetContract):
    kind = "sqlite"

    def test_a_second_process_view_picks_up_where_the_first_left_off(self, tmp_path: Path) -> None:
        app, view = make_fleet("sqlite", tmp_path)
        app.save_persona("writer", definition("v1"), "tester")
        view.catch_up()
        _, reopened = make_fleet("sqlite", tmp_path)
        assert reopened.position == view.position
        app.create_agents([NewAgent(pubkey(1), "writer", "w")], "tester")
        assert reopened.catch_up() == 1
