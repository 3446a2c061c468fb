"""The fleet view keeps the configured relays, what each agent's head is held by,
and how each relay's last reading went; on memory and on a real SQLite file."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from domain.aggregates import Agent, RelayReading
from domain.application import FleetApplication, NewAgent
from domain.planner import Reason, Status
from domain.versioning import upcast
from projections.view import FleetView
from tests.fleet_support import definition, make_fleet, pubkey, replayed, snapshot

A, B = "ws://a.example", "ws://b.example"


@pytest.fixture(params=["memory", "sqlite"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[FleetApplication, FleetView]:
    return make_fleet(request.param, tmp_path)


def _published_everywhere(app: FleetApplication, view: FleetView, held: list[str]) -> str:
    """One agent of persona writer, its engram published and read back from ``held``."""
    app.save_persona("writer", definition("v1"), "tester")
    app.create_agents([NewAgent(pubkey(1), "writer", "w1")], "tester")
    view.catch_up()
    [command] = view.plan()
    agent = Agent.at_version(
        UUID(command.agent_id), command.pubkey, command.persona_slug, command.agent_version
    )
    agent.record_published("e" * 64, command.digest, command.secrets_digest, held, [], held_by=held)
    app.save(agent)
    view.catch_up()
    return command.pubkey


def test_a_relay_added_after_a_publish_makes_the_agent_partial_until_it_holds_the_engram(
    fleet: tuple[FleetApplication, FleetView],
) -> None:
    app, view = fleet
    app.add_relay(A, "tester")
    key = _published_everywhere(app, view, [A])
    assert view.plan() == []
    app.add_relay(B, "tester")
    view.catch_up()
    [command] = view.plan()
    assert (command.resend_event_id, command.relays) == ("e" * 64, (B,))
    assert command.reasons == (Reason.MISSING_ON_RELAY,)
    row = view.agent(key)
    assert row is not None
    assert row.status == Status.PARTIAL.value
    assert snapshot(view) == replayed(view), "the increments give what a replay gives"
    app.remove_relay(B, "tester")
    view.catch_up()
    assert view.plan() == []
    assert snapshot(view) == replayed(view)


def test_each_reading_sets_when_a_relay_was_last_read_and_a_failure_stays_until_one_works(
    fleet: tuple[FleetApplication, FleetView],
) -> None:
    app, view = fleet
    app.add_relay(A, "tester")
    app.add_relay(B, "tester")
    view.catch_up()
    assert [(r.url, r.read_at, r.verified) for r in view.relays()] == [
        (A, None, False),
        (B, None, False),
    ]
    app.save(RelayReading([A, B], {}, 3))
    view.catch_up()
    first = {r.url: r for r in view.relays()}
    assert all(r.verified and r.read_agents == 3 for r in first.values())
    app.save(RelayReading([A], {B: "connection refused"}, 3))
    view.catch_up()
    second = {r.url: r for r in view.relays()}
    assert second[A].verified
    assert not second[B].verified
    assert second[B].error == "connection refused"
    assert second[B].read_at == first[B].read_at, "when it was last read is kept"
    app.save(RelayReading([A, B], {}, 3))
    view.catch_up()
    assert all(r.verified for r in view.relays())
    assert snapshot(view) == replayed(view)
    view.rebuild()
    assert all(r.verified for r in view.relays()), "a rebuilt view knows it too"


def test_stored_publications_and_observations_say_which_relays_hold_them() -> None:
    published = "domain.aggregates:Agent.Published"
    v1 = {"event_id": "e", "digest": "d", "secrets_digest": "s", "relays": [A], "answers": []}
    assert upcast(published, v1)["held_by"] == [A]
    v2 = {**v1, "relays": [], "confirmed_by": "refresh", "class_version": 2}
    assert upcast(published, v2)["held_by"] is None, "every relay configured then"
    observed = "domain.aggregates:Agent.HeadObserved"
    seen = {
        "head_event_id": "e",
        "head_created_at": 1,
        "digest": "d",
        "secrets_digest": "s",
        "relays": [A, B],
    }
    assert upcast(observed, {**seen, "state": "valid"})["held_by"] == [A, B]
    assert upcast(observed, {**seen, "state": "missing"})["held_by"] == []
