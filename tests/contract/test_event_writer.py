"""The apply's event writer stores exactly what the application's own save stores."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.store.eventlog import SQLiteEventLog
from adapters.store.internals import save_aggregates
from adapters.store.writer import ApplicationWriter, SQLiteEventWriter, writer_for
from domain.aggregates import Agent
from domain.application import FleetApplication, NewAgent
from tests.fleet_support import definition, make_fleet, pubkey
from tests.support.examples import examples

AGENTS = 4


def fleet_with_agents(tmp: Path) -> FleetApplication:
    tmp.mkdir(parents=True, exist_ok=True)
    app, _ = make_fleet("sqlite", tmp)
    app.save_persona("writer", definition("write"), "t")
    app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in range(AGENTS)], "t")
    return app


def record(agent: Agent, step: int, kind: str) -> None:
    """One publication event of the kind an apply records."""
    event_id = f"{step:064x}"
    if kind == "sealed":
        event = {"id": event_id, "pubkey": agent.pubkey, "content": "x" * step}
        agent.record_sealed(event, "writer", "d" * 64, "s" * 64, ["missing"], [step])
    elif kind == "answers":
        agent.record_answers(event_id, [{"relay": "ws://r", "outcome": "temporary"}])
    elif kind == "published":
        agent.record_published(event_id, "d" * 64, "s" * 64, ["ws://r"], [])
    else:
        agent.record_conflict(event_id, "d" * 64, "f" * 64, step, "another writer")


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every stored event with its log position, timestamps left out (they differ)."""
    log = SQLiteEventLog(path)
    try:
        return [
            (
                r.position,
                r.originator_id,
                r.originator_version,
                r.topic,
                r.state | {"timestamp": None},
            )
            for r in log.read(0, 10_000)
        ]
    finally:
        log.close()


batches = st.lists(
    st.lists(
        st.tuples(
            st.integers(0, AGENTS - 1),
            st.sampled_from(["sealed", "answers", "published", "conflict"]),
        ),
        min_size=1,
        max_size=8,
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=batches, rows_per_insert=st.integers(1, 5))
def test_the_writer_stores_the_same_rows_at_the_same_positions_as_save_aggregates(
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[tuple[int, str]]],
    rows_per_insert: int,
) -> None:
    base = tmp_path_factory.mktemp("writer")
    ours, theirs = fleet_with_agents(base / "ours"), fleet_with_agents(base / "theirs")
    writer = SQLiteEventWriter(ours, base / "ours" / "events.sqlite", lock_timeout=5)
    writer._rows_per_insert = rows_per_insert  # a batch spans several statements
    try:
        mine = {i: ours.get_agent(pubkey(i)) for i in range(AGENTS)}
        other = {i: theirs.get_agent(pubkey(i)) for i in range(AGENTS)}
        for step, batch in enumerate(batches):
            for n, kind in batch:
                record(mine[n], step, kind)
            # The very same events (timestamps included) go through both paths.
            for n in mine:
                other[n].pending_events[:] = copy.deepcopy(mine[n].pending_events)
            asyncio.run(writer.save(mine.values()))
            save_aggregates(theirs, other.values())
        assert stored_rows(base / "ours" / "events.sqlite") == stored_rows(
            base / "theirs" / "events.sqlite"
        )
        for n, agent in mine.items():
            reloaded = ours.get_agent(pubkey(n))
            assert (reloaded.version, reloaded.unsettled) == (agent.version, agent.unsettled)
    finally:
        writer.close()
        ours.close()
        theirs.close()


Fleet = tuple[FleetApplication, SQLiteEventWriter, Path]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A fleet of agents on SQLite, its writer, and the events file; closed after."""
    app = fleet_with_agents(tmp_path)
    db = tmp_path / "events.sqlite"
    writer = SQLiteEventWriter(app, db, lock_timeout=5)
    try:
        yield app, writer, db
    finally:
        writer.close()
        app.close()


def test_a_save_returns_only_once_its_commit_is_done_and_visible_to_others(fleet: Fleet) -> None:
    app, writer, db = fleet
    write, committed = writer._write, threading.Event()

    def slow_write(statements: list[tuple[str, list[object]]]) -> None:
        time.sleep(0.05)  # a slow disk: the loop must not run ahead of the commit
        write(statements)
        committed.set()

    writer._write = slow_write  # type: ignore[method-assign]
    agent = app.get_agent(pubkey(0))
    record(agent, 1, "sealed")
    asyncio.run(writer.save([agent]))
    assert committed.is_set()
    with sqlite3.connect(db) as other:
        (count,) = other.execute(
            "SELECT count(*) FROM stored_events WHERE topic LIKE '%EngramSealed'"
        ).fetchone()
    assert count == 1
    assert app.get_agent(pubkey(0)).unsettled == agent.unsettled


def test_a_stale_aggregate_fails_the_whole_batch_and_the_writer_stays_usable(
    fleet: Fleet,
) -> None:
    app, writer, db = fleet
    stale = app.get_agent(pubkey(0))
    meanwhile = app.get_agent(pubkey(0))
    meanwhile.record_answers("e" * 64, [])
    app.save(meanwhile)  # another writer took the next version
    fresh = app.get_agent(pubkey(1))
    record(fresh, 1, "sealed")
    record(stale, 1, "sealed")
    before = stored_rows(db)
    with pytest.raises(IntegrityError):
        asyncio.run(writer.save([fresh, stale]))
    assert stored_rows(db) == before, "nothing of the batch"
    again = app.get_agent(pubkey(1))
    record(again, 2, "sealed")
    asyncio.run(writer.save([again]))
    assert app.get_agent(pubkey(1)).version == again.version


def test_a_save_cancelled_while_writing_still_leaves_the_connection_usable(
    fleet: Fleet,
) -> None:
    app, writer, _ = fleet
    committing, release = threading.Event(), threading.Event()
    write = writer._write

    def slow_write(statements: list[tuple[str, list[object]]]) -> None:
        committing.set()
        release.wait(5)
        write(statements)

    writer._write = slow_write  # type: ignore[method-assign]
    first = app.get_agent(pubkey(0))
    record(first, 1, "sealed")

    async def cancel_mid_write() -> None:
        task = asyncio.create_task(writer.save([first]))
        while not committing.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        threading.Timer(0.05, release.set).start()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_mid_write())
    writer._write = write  # type: ignore[method-assign]
    # The write under way when the save was cancelled went through.
    assert app.get_agent(pubkey(0)).version == first.version
    second = app.get_agent(pubkey(1))
    record(second, 2, "sealed")
    asyncio.run(writer.save([second]))
    assert app.get_agent(pubkey(1)).version == second.version


def test_stores_other_than_sqlite_are_written_through_the_application(tmp_path: Path) -> None:
    app, _ = make_fleet("memory")
    assert isinstance(writer_for(app, None, 5), ApplicationWriter)
    sqlite_app = fleet_with_agents(tmp_path)
    writer = writer_for(sqlite_app, tmp_path / "events.sqlite", 5)
    try:
        assert isinstance(writer, SQLiteEventWriter)
    finally:
        writer.close()
        sqlite_app.close()
