"""Every stored event class is versioned, and old versions are upcast on read."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

import projections.fold as fold_module
from domain import aggregates, teams
from domain.application import NewAgent
from domain.versioning import upcast
from projections.fold import Fold
from projections.memory import MemoryViewStore
from tests.fleet_support import definition, make_fleet, pubkey


def _event_classes() -> list[type[Any]]:
    found = []
    for aggregate in (aggregates.Persona, aggregates.Agent, aggregates.RelayList, teams.Teams):
        for key, value in vars(aggregate).items():
            # "Event" is the base eventsourcing derives per aggregate; it is never stored.
            if isinstance(value, type) and issubclass(value, Aggregate.Event) and key != "Event":
                found.append(value)
    return found


def test_every_event_class_declares_its_version_and_the_upcasts_to_reach_it() -> None:
    classes = _event_classes()
    assert len(classes) >= 16
    for cls in classes:
        # eventsourcing re-derives nested event classes, so look along the MRO for ours.
        ours = (aggregates.__name__, teams.__name__)
        declared = [k for k in cls.__mro__ if k.__module__ in ours]
        assert any("class_version" in vars(k) for k in declared), f"{cls.__qualname__} unversioned"
        for v in range(1, cls.class_version):
            assert hasattr(cls, f"upcast_v{v}_v{v + 1}"), f"{cls.__qualname__} misses an upcast"


class Note(Aggregate):
    """A stand-in aggregate whose event went from version 1 to 2."""

    class Written(Aggregate.Event):
        class_version: ClassVar[int] = 2
        text: str
        author: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["author"] = "unknown"

    @event(Written)
    def write(self, text: str, author: str) -> None:
        pass


def test_state_stored_by_an_old_version_is_upcast_for_the_read_side() -> None:
    old_state = {"text": "hello"}  # what version 1 stored: no class_version, no author
    assert upcast(get_topic(Note.Written), old_state) == {"text": "hello", "author": "unknown"}


def test_upcasting_leaves_the_state_as_read_untouched() -> None:
    for stored in ({"text": "hello"}, {"text": "hi", "author": "me", "class_version": 2}):
        as_read = dict(stored)
        upcast(get_topic(Note.Written), as_read)
        assert as_read == stored


def test_current_state_passes_through_unchanged() -> None:
    state = {"text": "hi", "author": "me", "class_version": 2}
    assert upcast(get_topic(Note.Written), state) == {"text": "hi", "author": "me"}


def _fold_with_upcast_marking_names(
    monkeypatch: pytest.MonkeyPatch, current: frozenset[str]
) -> Fold:
    """A replay where every upcast renames the agent, so its rows show which were upcast."""
    app, view = make_fleet("memory")
    app.save_persona("writer", definition("v1"), "tester")
    app.create_agents([NewAgent(pubkey(1), "writer", "w1")], "tester")

    def marking(topic: str, state: dict[str, Any]) -> dict[str, Any]:
        state = upcast(topic, state)
        if topic.endswith("Agent.Created"):
            state["name"] = "upcast"
        return state

    monkeypatch.setattr(fold_module, "upcast", marking)
    monkeypatch.setattr(fold_module, "_CURRENT_TOPICS", current)
    fold = Fold(MemoryViewStore())
    fold.apply(view.log.scan(0))
    return fold


def test_the_fold_upcasts_every_agent_creation_once_that_event_moves_past_version_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moved_on = fold_module._CURRENT_TOPICS - {get_topic(aggregates.Agent.Created)}
    fold = _fold_with_upcast_marking_names(monkeypatch, moved_on)
    assert [row.name for row in fold.agents.values()] == ["upcast"]


def test_the_fold_leaves_current_agent_creations_as_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    fold = _fold_with_upcast_marking_names(monkeypatch, fold_module._CURRENT_TOPICS)
    assert [row.name for row in fold.agents.values()] == ["w1"]


def test_published_and_head_observed_records_of_version_1_read_as_they_were_meant() -> None:
    published = {"event_id": "e", "digest": "d", "secrets_digest": "s", "relays": [], "answers": []}
    assert upcast(get_topic(aggregates.Agent.Published), published)["confirmed_by"] == (
        "acknowledged"
    )
    head = {"head_event_id": "e", "head_created_at": 1, "digest": "d", "secrets_digest": "s"}
    for state, origin in (("valid", "unknown"), ("tombstone", "unknown"), ("missing", "")):
        old = {**head, "state": state, "relays": []}
        assert upcast(get_topic(aggregates.Agent.HeadObserved), old)["origin"] == origin
