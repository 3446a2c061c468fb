"""The publication events an apply records are what eventsourcing itself builds,
stores and replays, and a handle at the agent's version records what the agent
itself would.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper
from hypothesis import given
from hypothesis import strategies as st

from adapters.store.transcoder import OrjsonTranscoder
from domain.aggregates import Agent
from domain.errors import InvalidInput
from domain.ids import agent_id

HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
TEXT = st.text(max_size=20)
ANSWERS = st.lists(st.dictionaries(st.sampled_from(["relay", "outcome", "message"]), TEXT))
RECORDED: list[tuple[str, type[Aggregate.Event]]] = [
    ("sealed", Agent.EngramSealed),
    ("answers", Agent.RelaysAnswered),
    ("published", Agent.Published),
    ("failed", Agent.PublishFailed),
    ("conflict", Agent.ConflictDetected),
]


@st.composite
def steps(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """One publication step: which recorder, and its arguments (by field name)."""
    kind = draw(st.sampled_from([k for k, _ in RECORDED]))
    event_id = draw(HEX)
    args: dict[str, Any]
    if kind == "sealed":
        args = {
            "event": {"id": event_id, "pubkey": "c" * 64, "content": draw(TEXT)},
            "persona_slug": draw(TEXT),
            "digest": draw(HEX),
            "secrets_digest": draw(HEX),
            "reasons": draw(st.lists(TEXT, max_size=3)),
            "causes": draw(st.lists(st.integers(0, 10**9), max_size=3)),
        }
    elif kind == "answers":
        args = {"event_id": event_id, "answers": draw(ANSWERS)}
    elif kind == "published":
        args = {
            "event_id": event_id,
            "digest": draw(HEX),
            "secrets_digest": draw(HEX),
            "relays": draw(st.lists(TEXT, max_size=3)),
            "answers": draw(ANSWERS),
        }
    elif kind == "failed":
        args = {"event_id": event_id, "reason": draw(TEXT)}
    else:
        args = {
            "event_id": draw(st.none() | HEX),
            "digest": draw(HEX),
            "head_event_id": draw(st.none() | HEX),
            "head_created_at": draw(st.none() | st.integers(0, 2**40)),
            "reason": draw(TEXT),
        }
    return kind, args


def new_agent() -> Agent:
    return Agent("c" * 64, "writer", "b" * 64, "w-1", "created", "tester")


def record(agent: Agent, kind: str, args: dict[str, Any]) -> None:
    getattr(agent, f"record_{kind}")(*args.values())


@given(st.lists(steps(), min_size=1, max_size=12))
def test_recorded_events_equal_constructed_ones_and_store_and_replay_the_same(
    history: list[tuple[str, dict[str, Any]]],
) -> None:
    mapper: Mapper[Any] = Mapper(transcoder=OrjsonTranscoder())
    agent = new_agent()
    created = agent.collect_events()
    for kind, args in history:
        record(agent, kind, args)
    recorded = agent.collect_events()
    replayed: Any = None
    for recorded_event in [*created, *recorded]:
        cls = type(recorded_event)
        # What trigger_event would have built: the dataclass constructor, same values.
        constructed = cls(**vars(recorded_event))
        assert constructed == recorded_event
        assert list(vars(constructed)) == list(vars(recorded_event)), "field order"
        assert mapper.to_stored_event(constructed) == mapper.to_stored_event(recorded_event)
        stored = mapper.to_domain_event(mapper.to_stored_event(recorded_event))
        assert isinstance(stored, Aggregate.Event)
        replayed = stored.mutate(replayed)
    assert (replayed.version, replayed.unsettled) == (agent.version, agent.unsettled)


@pytest.mark.parametrize(("kind", "event_class"), RECORDED)
def test_each_recorder_records_its_event_as_the_next_version(
    kind: str, event_class: type[Aggregate.Event]
) -> None:
    agent = new_agent()
    agent.collect_events()
    sample: tuple[Any, ...] = {
        "sealed": ({"id": "e" * 64, "pubkey": "c" * 64}, "writer", "d", "s", [], []),
        "answers": ("e" * 64, []),
        "published": ("e" * 64, "d", "s", [], []),
        "failed": ("e" * 64, "refused"),
        "conflict": ("e" * 64, "d", "f" * 64, 1, "another writer"),
    }[kind]
    getattr(agent, f"record_{kind}")(*sample)
    (recorded,) = agent.collect_events()
    assert type(recorded) is event_class
    assert (recorded.originator_id, recorded.originator_version) == (agent.id, 2)
    assert agent.version == 2


def test_recording_with_a_field_missing_is_refused() -> None:
    agent = new_agent()
    with pytest.raises(TypeError, match="PublishFailed"):
        agent.trigger_event(Agent.PublishFailed, event_id="e" * 64)
    assert agent.version == 1


def stored_without_timestamps(mapper: Mapper[Any], events: Any) -> list[tuple[Any, ...]]:
    out = []
    for domain_event in events:
        stored = mapper.to_stored_event(domain_event)
        state = orjson.loads(stored.state)
        del state["timestamp"]
        out.append((stored.originator_id, stored.originator_version, stored.topic, state))
    return out


@given(st.lists(steps(), max_size=6), st.lists(steps(), min_size=1, max_size=6))
def test_a_handle_at_the_agents_version_records_what_the_agent_itself_would(
    before: list[tuple[str, dict[str, Any]]], after: list[tuple[str, dict[str, Any]]]
) -> None:
    mapper: Mapper[Any] = Mapper(transcoder=OrjsonTranscoder())
    agent = new_agent()
    for kind, args in before:
        record(agent, kind, args)
    agent.collect_events()
    handle = Agent.at_version(agent.id, agent.pubkey, agent.persona_slug, agent.version)
    for kind, args in after:
        record(agent, kind, args)
        record(handle, kind, args)
    assert handle.version == agent.version
    assert stored_without_timestamps(mapper, handle.collect_events()) == (
        stored_without_timestamps(mapper, agent.collect_events())
    )


def test_a_handle_refuses_a_seal_by_another_key() -> None:
    handle = Agent.at_version(agent_id("c" * 64), "c" * 64, "writer", 3)
    with pytest.raises(InvalidInput, match="authored by its agent"):
        handle.record_sealed({"id": "e" * 64, "pubkey": "d" * 64}, "writer", "d", "s", [], [])
    assert handle.version == 3
