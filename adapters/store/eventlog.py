"""Read access to the stored event log for projections and audit.

Two implementations of :class:`domain.ports.EventLog`: one over any
eventsourcing recorder (in-memory, PostgreSQL), and a fast one that reads the
SQLite recorder's table with plain ``sqlite3``, skipping the per-row objects the
recorder builds. Either way the state is decoded without the mapper, as
:mod:`adapters.store.internals` says it is stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path

from eventsourcing.persistence import ApplicationRecorder

from adapters.store.identity import sqlite_uri
from adapters.store.internals import (
    SELECT_AFTER,
    SELECT_AFTER_LIMIT,
    SELECT_AGGREGATE,
    SELECT_FIRST_OF_TOPIC,
    SELECT_MAX_POSITION,
    decode_state,
    log_id,
)
from domain.ports import LogRecord, RecordFields


class RecorderEventLog:
    """An event log over an eventsourcing application recorder (any backend)."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._recorder = recorder

    def read(self, after: int, limit: int) -> Sequence[LogRecord]:
        rows = self._recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [
            LogRecord(
                n.id, log_id(n.originator_id), n.originator_version, n.topic, decode_state(n.state)
            )
            for n in rows
        ]

    def scan(self, after: int) -> Iterator[RecordFields]:
        while batch := self.read(after, 5000):
            yield from batch
            after = batch[-1].position

    def stream(self, originator_id: str) -> Sequence[LogRecord]:
        # Recorders expose no position per aggregate event, so scan the log; only
        # the audit of a single aggregate calls this, and only on non-SQLite stores.
        found: list[LogRecord] = []
        after = 0
        while True:
            batch = self.read(after, 5000)
            if not batch:
                return found
            found.extend(r for r in batch if r.originator_id == originator_id)
            after = batch[-1].position

    def first_after(self, position: int, topic: str) -> LogRecord | None:
        rows = self._recorder.select_notifications(
            start=position, limit=1, topics=(topic,), inclusive_of_start=False
        )
        for n in rows:
            return LogRecord(
                n.id, log_id(n.originator_id), n.originator_version, n.topic, decode_state(n.state)
            )
        return None

    def max_position(self) -> int:
        return self._recorder.max_notification_id() or 0


_SCAN_CHUNK = 2000  # rows read and decoded at a time by a scan


class SQLiteEventLog:
    """A fast event log straight over eventsourcing's SQLite file (read-only use)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = sqlite_uri(self._path, read_only=True)
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def read(self, after: int, limit: int) -> Sequence[LogRecord]:
        if not self._path.exists():
            return []
        cursor = self._connection().execute(SELECT_AFTER_LIMIT, (after, limit))
        loads = decode_state
        return [
            LogRecord(pos, oid, ver, topic, loads(state)) for pos, oid, ver, topic, state in cursor
        ]

    def scan(self, after: int) -> Iterator[RecordFields]:
        if not self._path.exists():
            return iter(())
        cursor = self._connection().execute(SELECT_AFTER, (after,))
        # The chunks are chained in C, so a record costs no Python frame of ours.
        return chain.from_iterable(_decoded_chunks(cursor))

    def stream(self, originator_id: str) -> Sequence[LogRecord]:
        if not self._path.exists():
            return []
        cursor = self._connection().execute(SELECT_AGGREGATE, (originator_id,))
        return [
            LogRecord(pos, oid, ver, topic, decode_state(state))
            for pos, oid, ver, topic, state in cursor
        ]

    def first_after(self, position: int, topic: str) -> LogRecord | None:
        if not self._path.exists():
            return None
        row = self._connection().execute(SELECT_FIRST_OF_TOPIC, (position, topic)).fetchone()
        if row is None:
            return None
        pos, oid, ver, found, state = row
        return LogRecord(pos, oid, ver, found, decode_state(state))

    def max_position(self) -> int:
        if not self._path.exists():
            return 0
        row = self._connection().execute(SELECT_MAX_POSITION).fetchone()
        return int(row[0] or 0)


def _decoded_chunks(cursor: sqlite3.Cursor) -> Iterator[Iterator[RecordFields]]:
    """The cursor's rows as records, a chunk at a time, decoded column-wise.

    ``zip`` and ``map`` run in C, and ``zip`` recycles its result tuple when the
    consumer unpacks it at once, as the fold does.
    """
    loads = decode_state
    while rows := cursor.fetchmany(_SCAN_CHUNK):
        positions, originators, versions, topics, states = zip(*rows, strict=True)
        yield zip(positions, originators, versions, topics, map(loads, states), strict=True)
