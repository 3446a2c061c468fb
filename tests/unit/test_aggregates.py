"""Aggregates check their invariants before recording anything."""

from __future__ import annotations

import pytest

from domain.aggregates import Agent, AgentRetired, Persona
from domain.errors import InvalidInput

D1, D2, S = "1" * 64, "2" * 64, "a" * 64


def persona() -> Persona:
    return Persona("writer", {"display_name": "W"}, D1, S, "sealed", "tester")


def agent() -> Agent:
    return Agent("c" * 64, "writer", "b" * 64, "w-1", "created", "tester")


def test_saving_identical_content_records_no_new_version() -> None:
    p = persona()
    assert p.save({"display_name": "W"}, D1, S, "sealed-again", "tester") is False
    assert len(p.collect_events()) == 1


def test_saving_new_content_records_a_version_carrying_the_slug() -> None:
    p = persona()
    assert p.save({"display_name": "W2"}, D2, S, "sealed", "tester") is True
    events = p.collect_events()
    assert isinstance(events[-1], Persona.Saved)
    assert events[-1].slug == "writer"
    assert p.revision == 2


def test_saving_a_deleted_persona_brings_it_back() -> None:
    p = persona()
    p.delete("tester")
    assert p.save({"display_name": "W"}, D1, S, "sealed", "tester") is True
    assert p.deleted is False


def test_deleting_twice_is_refused() -> None:
    p = persona()
    p.delete("tester")
    with pytest.raises(InvalidInput, match="already deleted"):
        p.delete("tester")


def test_personas_and_agents_have_ids_derived_from_their_names() -> None:
    assert persona().id == persona().id
    assert agent().id == agent().id


def test_a_retired_agent_cannot_move_or_be_sealed_for() -> None:
    a = agent()
    a.retire("tester")
    with pytest.raises(AgentRetired):
        a.move("other", "tester")
    with pytest.raises(AgentRetired):
        a.record_sealed({"id": "e" * 64, "pubkey": a.pubkey}, "writer", D1, S, ["missing"], [1])


def test_a_key_can_only_be_destroyed_after_retirement_and_only_once() -> None:
    a = agent()
    with pytest.raises(InvalidInput, match="retired before"):
        a.destroy_key("tester")
    a.retire("tester")
    a.destroy_key("tester")
    with pytest.raises(InvalidInput, match="already destroyed"):
        a.destroy_key("tester")


def test_a_sealed_engram_must_be_authored_by_its_agent() -> None:
    with pytest.raises(InvalidInput, match="authored by its agent"):
        agent().record_sealed(
            {"id": "e" * 64, "pubkey": "d" * 64}, "writer", D1, S, ["missing"], [1]
        )


def test_a_sealed_event_is_kept_for_resending_until_it_is_published() -> None:
    a = agent()
    sealed = {"id": "e" * 64, "pubkey": a.pubkey}
    a.record_sealed(sealed, "writer", D1, S, ["missing"], [1])
    assert a.unsettled == {"e" * 64: sealed}
    a.record_published("e" * 64, D1, S, ["wss://relay.example"], [])
    assert a.unsettled == {}


@pytest.mark.parametrize(
    ("origin", "head_age", "expected"),
    [
        # what the tool an agent was taken over from wrote before the import is old
        ("imported", -60, "stale"),
        ("imported", 60, "foreign"),
        # an agent made here has no such past: another writer's head is new to it
        ("created", -60, "foreign"),
    ],
)
def test_a_head_written_before_an_agent_was_imported_is_stale_not_another_writers_new_idea(
    origin: str, head_age: int, expected: str
) -> None:
    agent = Agent("ab" * 32, "writer", "cd" * 32, "Ann", origin, "test")
    created = int(agent.created_on.timestamp())
    assert agent.origin_of("ef" * 32, "01" * 32, created + head_age) == expected
