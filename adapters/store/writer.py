"""Writing an apply's events to the event store, off the event loop.

An apply commits one transaction per batch of seals (before the batch is sent)
and one per batch of verdicts. Every commit is durable: SQLite appends the
batch to its write-ahead log and fsyncs it. Done on the event loop, that wait
(and the log's checkpoints) stopped sealing and sending for a visible share of
a large apply (``scripts/bench apply`` measures it). :class:`SQLiteEventWriter`
maps the events on the caller's thread and writes the transaction on a worker
thread (sqlite3 releases the GIL while SQLite works), so the loop goes on while
the disk does; ``save`` still returns only once the transaction is durable, and
raises if it is not.

The rows go in a few multi-row INSERTs rather than one statement per row:
each statement is a moment where the worker hands the GIL back and must wait
to get it again (up to a 5 ms switch interval while the loop is busy sealing),
and hundreds of one-row statements would make a write last longer than a batch.

The rows are exactly what eventsourcing's SQLite application recorder writes
(same table, columns and encodings, the rowid being the log position): they
are made and inserted by :mod:`adapters.store.internals`, which holds what
that takes of the library's private parts. Other stores, or an application
that keeps snapshots or an aggregate cache, go through :class:`ApplicationWriter`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
)

from adapters.store.identity import sqlite_uri
from adapters.store.internals import (
    ROW_WIDTH,
    can_store_directly,
    insert_rows,
    save_aggregates,
    stored_rows,
)
from domain.application import FleetApplication

# Rows per INSERT statement (fewer if the build allows fewer bound parameters).
_MAX_ROWS_PER_INSERT = 250


class ApplicationWriter:
    """Saves through the application, on the caller's thread: any event store."""

    def __init__(self, app: FleetApplication) -> None:
        self.app = app

    async def save(self, aggregates: Iterable[Aggregate]) -> None:
        save_aggregates(self.app, aggregates)

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
        self._rows_per_insert = max(1, min(_MAX_ROWS_PER_INSERT, limit // ROW_WIDTH))
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="fleetsync-writer")
        self._turn: asyncio.Lock | None = None

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self._conn.close()

    async def save(self, aggregates: Iterable[Aggregate]) -> None:
        """Store the aggregates' pending events in one transaction; return once durable."""
        rows = stored_rows(self.app, aggregates)
        if not rows:
            return
        statements: list[tuple[str, list[object]]] = []
        for start in range(0, len(rows), self._rows_per_insert):
            chunk = rows[start : start + self._rows_per_insert]
            params: list[object] = []
            for row in chunk:
                params += row
            statements.append((insert_rows(len(chunk)), params))
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
    """The fastest writer that stores exactly what ``save_aggregates`` would."""
    if sqlite_path is not None and can_store_directly(app):
        return SQLiteEventWriter(app, sqlite_path, lock_timeout)
    return ApplicationWriter(app)
