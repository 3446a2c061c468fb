"""Writing an apply's events to the event store, committing off the event loop.

An apply commits one transaction per batch of seals (before the batch is sent)
and one per batch of verdicts. Every commit is durable: SQLite appends the
batch to its write-ahead log and fsyncs it. Done on the event loop, that wait
(and the log's checkpoints) stopped sealing and sending for about a sixth of a
5,000-engram apply. :class:`SQLiteEventWriter` inserts the rows on the caller's
thread, then runs the ``COMMIT`` on a worker thread (sqlite3 releases the GIL
for it), so the loop goes on while the disk works; ``save`` still returns only
once the transaction is durable, and raises if it is not.

Only the commit moves: the inserts stay on the loop's thread, because a thread
that needs the GIL for each of hundreds of small steps waits a switch interval
(5 ms) for it at every step while the loop is busy sealing.

The rows are exactly what eventsourcing's SQLite application recorder writes
(same table, columns and encodings, the rowid being the log position), mapped
by the application's own mapper. Other stores, or an application that keeps
snapshots or an aggregate cache, go through :class:`ApplicationWriter`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
)

from domain.application import FleetApplication

_INSERT = (
    "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
    "VALUES (?, ?, ?, ?)"
)


class ApplicationWriter:
    """Saves through the application, on the caller's thread: any event store."""

    def __init__(self, app: FleetApplication) -> None:
        self.app = app

    async def save(self, aggregates: Iterable[Aggregate]) -> None:
        self.app.save_aggregates(aggregates)

    def close(self) -> None:
        pass


class SQLiteEventWriter:
    """Inserts on the caller's thread, commits on a worker thread; one save at a time."""

    def __init__(self, app: FleetApplication, path: Path, lock_timeout: float) -> None:
        self.app = app
        self._conn = sqlite3.connect(
            f"file:{path}?mode=rw",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=lock_timeout,
        )
        # Explicit, whatever the build's default: in WAL mode FULL syncs the log at
        # every commit, which is what "the seal is stored before it is sent" needs.
        self._conn.execute("PRAGMA synchronous = FULL")
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="fleetsync-commit")
        self._turn: asyncio.Lock | None = None

    def close(self) -> None:
        self._committer.shutdown(wait=True)
        self._conn.close()

    async def save(self, aggregates: Iterable[Aggregate]) -> None:
        """Store the aggregates' pending events in one transaction; return once durable."""
        stored = self.app.stored_events(aggregates)
        if not stored:
            return
        rows = [(_id(s.originator_id), s.originator_version, s.topic, s.state) for s in stored]
        if self._turn is None:
            self._turn = asyncio.Lock()
        # One connection, one transaction at a time: a save waits for the previous
        # commit (usually long done) instead of blocking the loop on the connection.
        async with self._turn:
            with _translated():
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(_INSERT, rows)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            await self._off_loop(self._commit)

    def _commit(self) -> None:
        with _translated():
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT may leave the transaction open: end it, or the next
                # BEGIN fails and the rows stay locked.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    async def _off_loop(self, call: Callable[[], None]) -> None:
        future: Future[None] = self._committer.submit(call)
        try:
            await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # A commit under way cannot be called back: wait for it (milliseconds) so
            # the connection is free before the next save; one that never started
            # leaves its transaction open, to be rolled back.
            wait([future])
            if future.cancelled() and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise


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
