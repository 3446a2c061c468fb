"""Writing an apply's events to the event store, off the event loop.

An apply commits one transaction per batch of seals (before the batch is sent)
and one per batch of verdicts. Every commit is durable: SQLite appends the
batch to its write-ahead log and fsyncs it. Done on the event loop, that wait
(and the log's checkpoints) stopped sealing and sending for about a sixth of a
5,000-engram apply. :class:`SQLiteEventWriter` maps the events on the caller's
thread and writes the transaction on a worker thread (sqlite3 releases the GIL
while SQLite works), so the loop goes on while the disk does; ``save`` still
returns only once the transaction is durable, and raises if it is not.

The rows go in a few multi-row INSERTs rather than one statement per row:
each statement is a moment where the worker hands the GIL back and must wait
to get it again (up to a 5 ms switch interval while the loop is busy sealing),
and hundreds of one-row statements would make a write last longer than a batch.

The rows are exactly what eventsourcing's SQLite application recorder writes
(same table, columns and encodings, the rowid being the log position), mapped
by the application's own mapper. Other stores, or an application that keeps
snapshots or an aggregate cache, go through :class:`ApplicationWriter`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
)

from adapters.store.identity import sqlite_uri
from domain.application import FleetApplication

_COLUMNS = 4
# Rows per INSERT statement (fewer if the build allows fewer bound parameters).
_MAX_ROWS_PER_INSERT = 250


class ApplicationWriter:
    """Saves through the application, on the caller's thread: any event store."""

    def __init__(self, app: FleetApplication) -> None:
        self.app = app

    async def save(self, aggregates: Iterable[Aggregate]) -> None:
        self.app.save_aggregates(aggregates)

    def close(self) -> None:
        pass


class SQLiteEventWriter:
    """Maps events on the caller's thread, writes them on a worker; one save at a time."""

    def __init__(self, app: FleetApplication, path: Path, lock_timeout: float) -> None:
        self.app = app
        self._conn = sqlite3.connect(
            sqlite_uri(path),
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=lock_timeout,
        )
        # Explicit, whatever the build's default: in WAL mode FULL syncs the log at
        # every commit, which is what "the seal is stored before it is sent" needs.
        self._conn.execute("PRAGMA synchronous = FULL")
        limit = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_insert = max(1, min(_MAX_ROWS_PER_INSERT, limit // _COLUMNS))
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="fleetsync-writer")
        self._turn: asyncio.Lock | None = None

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self._conn.close()

    async def save(self, aggregates: Iterable[Aggregate]) -> None:
        """Store the aggregates' pending events in one transaction; return once durable."""
        stored = self.app.stored_events(aggregates)
        if not stored:
            return
        statements: list[tuple[str, list[object]]] = []
        for start in range(0, len(stored), self._rows_per_insert):
            chunk = stored[start : start + self._rows_per_insert]
            params: list[object] = []
            for s in chunk:
                params += (_id(s.originator_id), s.originator_version, s.topic, s.state)
            statements.append((_insert(len(chunk)), params))
        if self._turn is None:
            self._turn = asyncio.Lock()
        # One connection, one transaction at a time: a save queues behind the one
        # under way (usually long done) instead of blocking the loop on the connection.
        async with self._turn:
            future: Future[None] = self._worker.submit(self._write, statements)
            try:
                await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                # A write under way cannot be called back: wait for it (milliseconds),
                # so the connection is free before the next save starts.
                wait([future])
                raise

    def _write(self, statements: list[tuple[str, list[object]]]) -> None:
        """One transaction, on the worker thread."""
        conn = self._conn
        with _translated():
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                # Whatever failed (a row, or the COMMIT itself), end the transaction:
                # nothing of the batch is stored, and the next BEGIN can run.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


@lru_cache(maxsize=8)
def _insert(rows: int) -> str:
    """An INSERT of ``rows`` rows in one statement."""
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
        f"VALUES {values}"
    )


def _id(originator_id: UUID | str) -> str:
    """The stored form of an aggregate id, as the recorder writes it."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


@contextmanager
def _translated() -> Iterator[None]:
    """sqlite3's errors as eventsourcing's, as the application's recorder raises them."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(exc) from exc
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc) from exc
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(exc) from exc
    except sqlite3.Error as exc:
        raise PersistenceError(exc) from exc


def writer_for(
    app: FleetApplication, sqlite_path: Path | None, lock_timeout: float
) -> ApplicationWriter | SQLiteEventWriter:
    """The fastest writer that stores exactly what ``app.save_aggregates`` would."""
    if sqlite_path is not None and app.can_store_directly:
        return SQLiteEventWriter(app, sqlite_path, lock_timeout)
    return ApplicationWriter(app)
