"""The SQLite event log reads exactly what eventsourcing's own recorder reads."""

from __future__ import annotations

from pathlib import Path

import pytest

import adapters.store.eventlog as eventlog
from adapters.store.eventlog import RecorderEventLog, SQLiteEventLog
from domain.aggregates import RelayTraffic
from domain.application import NewAgent
from projections.audit import TRAFFIC_TOPIC
from tests.fleet_support import POSTGRES_URL, definition, make_fleet, pubkey


def test_a_scan_from_any_position_reads_every_later_record_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, view = make_fleet("sqlite", tmp_path)
    app.save_persona("writer", definition("v1"), "tester")
    app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in range(1, 8)], "tester")
    app.save_persona("writer", definition("v2"), "tester")
    app.retire_agent(pubkey(3), "tester")
    assert isinstance(view.log, SQLiteEventLog)
    # Chunks of three records: scans start inside, at the end of and past a chunk.
    monkeypatch.setattr(eventlog, "_SCAN_CHUNK", 3)
    reference = RecorderEventLog(app.recorder)
    last = reference.max_position()
    assert last == 10
    for after in range(last + 1):
        expected = [tuple(r) for r in reference.read(after, last)]
        assert [tuple(r) for r in view.log.scan(after)] == expected
        assert [tuple(r) for r in view.log.read(after, last)] == expected
    assert list(view.log.scan(last)) == []


def test_a_log_file_not_yet_written_scans_as_empty(tmp_path: Path) -> None:
    assert list(SQLiteEventLog(tmp_path / "absent.sqlite").scan(0)) == []


KINDS = ["memory", "sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.mark.parametrize("kind", KINDS)
def test_the_first_record_of_a_topic_after_a_position_is_found_on_every_store(
    kind: str, tmp_path: Path
) -> None:
    app, view = make_fleet(kind, tmp_path)
    app.save_persona("writer", definition("v1"), "tester")
    app.create_agents([NewAgent(pubkey(i), "writer", f"w{i}") for i in range(1, 4)], "tester")
    app.save(RelayTraffic({"ws://a": {"wire": "websocket", "connections": 2}}, 3, "2026-01-01"))
    app.save_persona("writer", definition("v2"), "tester")
    app.save(RelayTraffic({}, 1, "2026-01-02"))
    reference = RecorderEventLog(app.recorder)
    records = reference.read(0, 100)
    traffic = [r for r in records if r.topic == TRAFFIC_TOPIC]
    assert len(traffic) == 2
    for after in range(records[-1].position + 1):
        expected = next((r for r in traffic if r.position > after), None)
        found = view.log.first_after(after, TRAFFIC_TOPIC)
        assert (tuple(found) if found else None) == (tuple(expected) if expected else None)
    first = view.log.first_after(0, TRAFFIC_TOPIC)
    assert first is not None
    assert first.state["relays"] == {"ws://a": {"wire": "websocket", "connections": 2}}
    assert view.log.first_after(0, "domain.aggregates:Nothing.Such") is None
