"""Each fast path of :mod:`adapters.store.internals` equals eventsourcing's own slow
path, over random histories of a small fleet.

The fast paths write and read the library's storage around its public API
(the handles made without a creation event, the rows made without the
mapper, the direct save, the bulk loader, the SQLite log and its decoding
without the mapper); if an eventsourcing upgrade
changes what they lean on, these tests are where it shows.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.store.eventlog import RecorderEventLog, SQLiteEventLog
from adapters.store.internals import (
    agent_at_version,
    decode_state,
    log_id,
    save_aggregates,
    stored_id,
    stored_rows,
)
from adapters.store.loader import AgentLoader
from domain.aggregates import Agent, Persona, RelayList
from domain.application import FleetApplication, NewAgent
from domain.errors import DomainError
from domain.versioning import upcast
from tests.fleet_support import OWNER, TRANSCODER, PlainVault, definition, pubkey

AGENTS = 3
SLUGS = ("writer", "critic")
RELAYS = ("ws://a.example", "ws://b.example")
KINDS = (
    "save",
    "delete",
    "move",
    "retire",
    "destroy",
    "sealed",
    "answers",
    "published",
    "failed",
    "conflict",
    "observed",
    "tombstone",
    "tombstoned",
    "relay",
)

# One step of a history: what happens, to which agent (or persona, or relay), and a
# number that makes its values differ from step to step.
Step = tuple[str, int, int]
histories = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, AGENTS - 1), st.integers(0, 99)),
    max_size=30,
)


def new_app(home: Path, **env: str) -> FleetApplication:
    settings = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(home / "events.sqlite"),
        "TRANSCODER_TOPIC": TRANSCODER,
    }
    return FleetApplication(settings | env, vault=PlainVault(), owner_pubkey=OWNER)


@contextmanager
def fleet(**env: str) -> Iterator[tuple[FleetApplication, Path]]:
    """A SQLite fleet in a directory of its own, with two personas and three agents."""
    with tempfile.TemporaryDirectory() as tmp:
        app = new_app(Path(tmp), **env)
        try:
            for slug in SLUGS:
                app.save_persona(slug, definition(slug), "t")
            app.create_agents([NewAgent(pubkey(n), SLUGS[0], f"a{n}") for n in range(AGENTS)], "t")
            yield app, Path(tmp) / "events.sqlite"
        finally:
            app.close()


def take_step(app: FleetApplication, step: Step) -> Agent | Persona | RelayList | None:
    """Call the aggregate a step names; the aggregate, with its new events pending
    (None when the step does not apply to the fleet as it is)."""
    kind, n, x = step
    event_id = f"{x:064x}"
    try:
        if kind == "save":
            slug = SLUGS[n % 2]
            persona = app.get_persona(slug, include_deleted=True)
            persona.save({"display_name": f"v{x}"}, f"{x:064x}", "s" * 64, "", "t")
            return persona
        if kind == "delete":
            persona = app.get_persona(SLUGS[n % 2])
            persona.delete("t")
            return persona
        if kind == "relay":
            relays = app._relay_list()
            url = RELAYS[x % 2]
            if url in relays.urls:
                relays.remove(url, "t")
            else:
                relays.add(url, "t")
            return relays
        agent = app.get_agent(pubkey(n))
        if kind == "move":
            agent.move(SLUGS[(SLUGS.index(agent.persona_slug) + 1) % 2], "t")
        elif kind == "retire":
            agent.retire("t")
        elif kind == "destroy":
            agent.destroy_key("t")
        elif kind == "sealed":
            event = {"id": event_id, "pubkey": agent.pubkey, "created_at": x, "content": "x" * x}
            agent.record_sealed(event, agent.persona_slug, "d" * 64, "s" * 64, ["missing"], [x])
        elif kind == "answers":
            agent.record_answers(event_id, [{"relay": RELAYS[0], "outcome": "temporary"}])
        elif kind == "published":
            agent.record_published(event_id, "d" * 64, "s" * 64, [RELAYS[0]], [], "acknowledged")
        elif kind == "failed":
            agent.record_failed(event_id, "refused")
        elif kind == "conflict":
            agent.record_conflict(event_id, "d" * 64, "f" * 64, x, "another writer")
        elif kind == "observed":
            state = ("valid", "missing", "tombstone")[x % 3]
            agent.record_observed(
                None if state == "missing" else event_id,
                x,
                "d" * 64 if state == "valid" else None,
                "s" * 64 if state == "valid" else None,
                state,
                list(RELAYS),
                "" if state == "missing" else "ours",
            )
        elif kind == "tombstone":
            tombstone = {"id": event_id, "pubkey": agent.pubkey}
            deletion = {"id": "d" * 64, "pubkey": agent.pubkey}
            agent.record_tombstone_sealed(tombstone, deletion, ["retired"], [x])
        else:
            agent.record_tombstoned(event_id, "d" * 64, [RELAYS[0]], [], [])
    except DomainError:
        return None
    return agent


def play(app: FleetApplication, history: list[Step]) -> None:
    """Record a history the library's own way: each step saved by ``app.save``."""
    for step in history:
        aggregate = take_step(app, step)
        if aggregate is not None:
            app.save(aggregate)


def all_rows(path: Path) -> list[tuple[Any, ...]]:
    return [tuple(record) for record in SQLiteEventLog(path).read(0, 10_000)]


@settings(max_examples=25, deadline=None)
@given(history=histories, more=histories)
def test_rows_made_without_the_mapper_are_the_rows_the_mapper_makes(
    history: list[Step], more: list[Step]
) -> None:
    with fleet() as (app, _):
        play(app, history)
        for step in more:
            aggregate = take_step(app, step)
            if aggregate is None:
                continue
            events = list(aggregate.pending_events)
            expected = [app.mapper.to_stored_event(event) for event in events]
            rows = stored_rows(app, [aggregate])
            assert rows == [
                (stored_id(s.originator_id), s.originator_version, s.topic, s.state)
                for s in expected
            ]
            assert aggregate.pending_events == []  # collected, as save collects them
            app.save(*events)


def test_rows_of_an_application_that_compresses_are_made_by_its_mapper() -> None:
    with fleet(COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor") as (app, _):
        agent = app.get_agent(pubkey(0))
        agent.record_answers("e" * 64, [])
        (event,) = agent.pending_events
        expected = app.mapper.to_stored_event(event)
        ((_, _, _, state),) = stored_rows(app, [agent])
        assert state == expected.state
        assert app.mapper.compressor is not None
        assert state == app.mapper.compressor.compress(app.mapper.transcoder.encode(_state(event)))


def _state(event: Any) -> dict[str, Any]:
    state = dict(vars(event))
    del state["originator_id"], state["originator_version"]
    return state


@settings(max_examples=25, deadline=None)
@given(history=histories, batch=histories)
def test_saving_in_bulk_stores_what_the_applications_save_stores(
    history: list[Step], batch: list[Step]
) -> None:
    with fleet() as (ours, our_file), fleet() as (theirs, their_file):
        # The same history (ids and versions; timestamps differ) in both stores.
        play(ours, history)
        play(theirs, history)
        mine = {n: ours.get_agent(pubkey(n)) for n in range(AGENTS)}
        for kind, n, x in batch:
            if kind in {"save", "delete", "relay"}:
                continue
            take_step_on(mine[n], (kind, n, x))
        other = {n: theirs.get_agent(pubkey(n)) for n in range(AGENTS)}
        for n in mine:  # the very same events, timestamps included, go both ways
            other[n].pending_events[:] = copy.deepcopy(mine[n].pending_events)
        before = len(all_rows(our_file))
        save_aggregates(ours, mine.values())
        theirs.save(*other.values())
        assert all_rows(our_file)[before:] == all_rows(their_file)[before:]


def take_step_on(agent: Agent, step: Step) -> None:
    """An agent step on an agent already loaded (several steps before one save)."""

    class One:
        def get_agent(self, _: str) -> Agent:
            return agent

    take_step(One(), step)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(history=histories)
def test_agents_loaded_in_bulk_are_the_agents_the_repository_rebuilds(
    history: list[Step],
) -> None:
    with fleet() as (app, path):
        play(app, history)
        loader = AgentLoader(app, path)
        try:
            keys = [pubkey(n) for n in range(AGENTS)]
            loaded = loader.load(keys)
        finally:
            loader.close()
        for key in keys:
            assert vars(loaded[key]) == vars(app.get_agent(key))


@settings(max_examples=25, deadline=None)
@given(history=histories, after=st.integers(0, 40))
def test_the_sqlite_log_reads_what_the_recorder_reads_and_the_mapper_decodes(
    history: list[Step], after: int
) -> None:
    with fleet() as (app, path):
        play(app, history)
        fast, slow = SQLiteEventLog(path), RecorderEventLog(app.recorder)
        try:
            last = slow.max_position()
            assert fast.max_position() == last
            expected = [tuple(r) for r in slow.read(after, last + 1)]
            assert [tuple(r) for r in fast.read(after, last + 1)] == expected
            assert list(fast.scan(after)) == expected
            for n in range(AGENTS):
                oid = log_id(app.get_agent(pubkey(n)).id)
                assert fast.stream(oid) == slow.stream(oid)
            # State decoded without the mapper, and upcast by the domain, is the
            # mapper's event (its timestamp aside, kept as the ISO string it was stored as).
            for record in fast.read(0, last + 1):
                stored = StoredEvent(
                    record.originator_id,
                    record.originator_version,
                    record.topic,
                    _stored_state(app, record.position),
                )
                event: Any = app.mapper.to_domain_event(stored)
                expected_state = _state(event) | {"timestamp": event.timestamp.isoformat()}
                assert upcast(record.topic, record.state) == expected_state
                assert decode_state(stored.state) == record.state
        finally:
            fast.close()


def _stored_state(app: FleetApplication, position: int) -> bytes:
    (notification,) = app.recorder.select_notifications(start=position, limit=1)
    return notification.state


@given(
    id_=st.uuids(),
    key=st.integers(0, 2**256 - 1),
    slug=st.sampled_from(SLUGS),
    version=st.integers(1, 2**31),
    steps=histories,
)
def test_a_handle_made_without_a_creation_event_is_the_one_at_version_makes(
    id_: UUID, key: int, slug: str, version: int, steps: list[Step]
) -> None:
    fast = agent_at_version(id_, pubkey(key), slug, version)
    slow = Agent.at_version(id_, pubkey(key), slug, version)
    assert type(fast) is Agent
    assert vars(fast) == vars(slow)
    for kind, n, x in steps:
        if kind not in {"save", "delete", "relay"}:
            take_step_on(fast, (kind, n, x))
            take_step_on(slow, (kind, n, x))
    assert [_state(e) | {"timestamp": None} for e in fast.collect_events()] == [
        _state(e) | {"timestamp": None} for e in slow.collect_events()
    ]
    fast.modified_on = slow.modified_on  # the last event's timestamp
    assert vars(fast) == vars(slow)
    # Every handle has containers of its own.
    other = agent_at_version(id_, pubkey(key), slug, version)
    assert all(
        vars(other)[name] is not value
        for name, value in vars(fast).items()
        if isinstance(value, dict | list)
    )
