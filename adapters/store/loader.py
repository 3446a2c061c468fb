"""Loading many agent aggregates at once, for apply batches.

eventsourcing's repository reads one aggregate per call, each in its own
transaction; loading the agents of a batch that way was a large share of an
apply (``scripts/bench apply``). Over SQLite this reads all their stored events in a few
queries (on the table :mod:`adapters.store.internals` describes) and rebuilds
each aggregate with the application's own mapper (so upcasting and topics work
exactly as in ``repository.get``). Other stores fall back to the repository.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from adapters.store.identity import sqlite_uri
from adapters.store.internals import select_aggregates, stored_id
from domain.aggregates import Agent
from domain.application import FleetApplication, UnknownAgent
from domain.ids import agent_id

_CHUNK = 500  # well under SQLite's bound-parameter limit


class AgentLoader:
    def __init__(self, app: FleetApplication, sqlite_path: Path | None = None) -> None:
        self.app = app
        self.path = sqlite_path
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def load(self, pubkeys: Sequence[str]) -> dict[str, Agent]:
        """Every named agent, current as of the last committed write."""
        if self.path is None:
            return {pubkey: self.app.get_agent(pubkey) for pubkey in pubkeys}
        ids = {pubkey: agent_id(pubkey) for pubkey in pubkeys}
        hexes = {pubkey: stored_id(uuid) for pubkey, uuid in ids.items()}
        # The stored events get the UUID itself
        # back from here rather than parsing it again, row by row.
        uuids = {hexes[pubkey]: uuid for pubkey, uuid in ids.items()}
        events: dict[str, list[Any]] = {oid: [] for oid in uuids}
        to_domain_event = self.app.mapper.to_domain_event
        wanted = list(uuids)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = self._connection().execute(select_aggregates(len(chunk)), chunk)
            for oid, version, topic, state in rows:
                stored = StoredEvent(uuids[oid], version, topic, state)
                events[oid].append(to_domain_event(stored))
        agents: dict[str, Agent] = {}
        for pubkey, oid in hexes.items():
            aggregate: Any = None
            for domain_event in events[oid]:
                aggregate = domain_event.mutate(aggregate)
            if not isinstance(aggregate, Agent):
                raise UnknownAgent(f"no agent {pubkey}; see 'fleetsync agent list'")
            agents[pubkey] = aggregate
        return agents

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            assert self.path is not None  # only SQLite stores read through a connection
            self._conn = sqlite3.connect(sqlite_uri(self.path, read_only=True), uri=True)
        return self._conn
