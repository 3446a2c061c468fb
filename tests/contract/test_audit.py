"""Audits replay history: what an agent was meant to carry, and when."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from domain.application import NewAgent
from domain.planner import Status
from projections.audit import audit_agent, audit_persona
from tests.fleet_support import definition, make_fleet, pubkey


def test_an_agent_audit_tells_what_was_true_before_and_after_a_persona_edit(
    tmp_path: Path,
) -> None:
    app, view = make_fleet("sqlite", tmp_path)
    v1 = app.save_persona("writer", definition("v1"), "alice")
    app.create_agents([NewAgent(pubkey(1), "writer", "w1")], "alice")
    agent = app.get_agent(pubkey(1))
    answer = {"relay": "ws://relay-a", "outcome": "accepted", "prefix": "", "message": ""}
    agent.record_published("e" * 64, v1.digest, v1.secrets_digest, ["ws://relay-a"], [answer])
    app.save(agent)
    published_at = view.log.max_position()
    v2 = app.save_persona("writer", definition("v2"), "bob")

    then = audit_agent(view.log, pubkey(1), as_of=published_at)
    assert then.assessment is not None
    assert then.assessment.status is Status.IN_SYNC
    assert then.assessment.digest == v1.digest
    assert [e.what for e in then.entries] == [
        "persona saved",
        "agent created",
        "published",
    ]
    assert "alice" in then.entries[0].summary
    assert "ws://relay-a accepted" in then.entries[-1].summary

    now = audit_agent(view.log, pubkey(1))
    assert now.assessment is not None
    assert now.assessment.status is Status.OUT_OF_DATE
    assert now.assessment.digest == v2.digest
    assert now.entries[-1].what == "persona saved"
    assert "bob" in now.entries[-1].summary


def test_an_audit_as_of_a_time_matches_the_audit_as_of_the_same_position(
    tmp_path: Path,
) -> None:
    app, view = make_fleet("sqlite", tmp_path)
    app.save_persona("writer", definition("v1"), "alice")
    app.create_agents([NewAgent(pubkey(1), "writer", "w1")], "alice")
    cut = view.log.max_position()
    stamp = datetime.fromisoformat(str(view.log.read(cut - 1, 1)[0].state["timestamp"]))
    app.save_persona("writer", definition("v2"), "bob")
    by_time = audit_agent(view.log, pubkey(1), as_of=stamp)
    by_position = audit_agent(view.log, pubkey(1), as_of=cut)
    assert by_time.entries == by_position.entries


def test_a_persona_audit_lists_versions_and_who_carries_which(tmp_path: Path) -> None:
    app, view = make_fleet("sqlite", tmp_path)
    v1 = app.save_persona("writer", definition("v1"), "alice")
    app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in (1, 2)], "alice")
    agent = app.get_agent(pubkey(1))
    agent.record_published("e" * 64, v1.digest, v1.secrets_digest, ["ws://relay"], [])
    app.save(agent)
    app.save_persona("writer", definition("v2"), "bob")
    app.delete_persona("writer", "carol")

    report = audit_persona(view.log, "writer", [pubkey(1), pubkey(2)])
    assert [(v.revision, v.actor, v.deleted) for v in report.versions] == [
        (1, "alice", False),
        (2, "bob", False),
        (2, "carol", True),
    ]
    assert report.carriers == {v1.digest: [pubkey(1)], "none": [pubkey(2)]}
