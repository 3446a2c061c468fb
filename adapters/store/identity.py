"""The home's identity kept inside the event store, and a first look at the store.

The identity (see :mod:`adapters.home`) lives in a table of its own,
``fleetsync_home``, beside eventsourcing's table of events: in the SQLite file,
or in the PostgreSQL schema. It is not an event, so log positions and the
domain do not know about it.

:func:`probe` reads it, with how many events the store holds, *before* the
application opens the store: opening creates tables (and switches a SQLite
file to WAL), which would write into a store that turns out not to be this
home's. Over PostgreSQL the probe is also the first connection, made with
``connect_timeout``, so a server that is down or never answers is reported
within the timeout and with the reason.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.settings import StoreConfig
from adapters.store.errors import StoreDamaged, StoreError, postgres_error, sqlite_error
from adapters.store.internals import (
    EVENTS_TABLE_POSTGRES,
    EVENTS_TABLE_SQLITE,
    SELECT_MAX_POSITION,
)

IDENTITY_TABLE = "fleetsync_home"
_KEY = "home_id"


@dataclass(frozen=True, slots=True)
class StoreState:
    home_id: str | None  # None: the store holds no identity (new, empty, or older)
    events: int  # the last log position (0: no events)


def sqlite_uri(path: Path, *, read_only: bool = False, peek: bool = False) -> str:
    """A ``file:`` URI for sqlite3 that never creates the file.

    Read-only, with no write-ahead log waiting to be merged, and either on a
    directory nobody can write or for a ``peek`` (a look at the file that must
    leave no trace), the file is opened ``immutable``: SQLite then creates no
    -shm file beside it, and takes no locks. Nothing can be changing it (a
    writer would have made a write-ahead log first), or, for a peek, what is
    read (the identity, a position) is not what a writer changes.
    """
    if not read_only:
        return f"{path.as_uri()}?mode=rw"
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    quiet = peek or not os.access(path.parent, os.W_OK | os.X_OK)
    immutable = "&immutable=1" if quiet and not pending else ""
    return f"{path.as_uri()}?mode=ro{immutable}"


def probe(store: StoreConfig, connect_timeout: int) -> StoreState:
    """The identity and size of the event store, read without changing anything."""
    if store.kind == "sqlite" and store.sqlite_path is not None:
        return _probe_sqlite(store.sqlite_path)
    if store.kind == "postgres":
        return _probe_postgres(store, connect_timeout)
    return StoreState(home_id=None, events=0)


def record(store: StoreConfig, home_id: str, connect_timeout: int) -> None:
    """Write the home's identity into the event store (once; an existing one is kept)."""
    if store.kind == "sqlite" and store.sqlite_path is not None:
        path = store.sqlite_path
        try:
            with contextlib.closing(sqlite3.connect(sqlite_uri(path), uri=True)) as conn, conn:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} "
                    "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                conn.execute(
                    f"INSERT OR IGNORE INTO {IDENTITY_TABLE} VALUES (?, ?)", (_KEY, home_id)
                )
        except sqlite3.Error as exc:
            raise sqlite_error(exc, f"the event store {path}", path) from exc
    elif store.kind == "postgres":
        from psycopg import sql

        with _postgres(store, connect_timeout) as conn:
            table = sql.Identifier(_schema(store), IDENTITY_TABLE)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                ).format(table)
            )
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s) ON CONFLICT (key) DO NOTHING").format(
                    table
                ),
                (_KEY, home_id),
            )


def integrity_problem(path: Path) -> str | None:
    """SQLite's quick check of a whole file: None when sound, else what it found."""
    try:
        with contextlib.closing(
            sqlite3.connect(sqlite_uri(path, read_only=True, peek=True), uri=True)
        ) as conn:
            rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    found = str(rows[0][0]) if rows else "no answer"
    return None if found == "ok" else found


def cut_short(path: Path) -> str | None:
    """What is wrong with a SQLite file's size, read from its header; None if nothing.

    The header records how many pages the file held at its last commit (valid
    while its change counter matches); a file shorter than that lost its end,
    whichever pages a query happens to read.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(100)
            size = os.fstat(file.fileno()).st_size
    except OSError:
        return None  # sqlite3 says what is wrong when it opens the file
    if size == 0:
        return None  # an empty database, which the identity check then judges
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return "file is not a database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and size < pages * page_size:
        return f"cut short: {size:,} of its {pages * page_size:,} bytes"
    return None


def _probe_sqlite(path: Path) -> StoreState:
    where = f"the event store {path}"
    problem = cut_short(path)
    if problem is not None:
        raise StoreDamaged(
            f"{where} is damaged ({problem}); restore it from a backup. Nothing was changed."
        )
    try:
        with contextlib.closing(
            sqlite3.connect(sqlite_uri(path, read_only=True, peek=True), uri=True)
        ) as conn:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            home_id = None
            if IDENTITY_TABLE in tables:
                row = conn.execute(
                    f"SELECT value FROM {IDENTITY_TABLE} WHERE key = ?", (_KEY,)
                ).fetchone()
                home_id = str(row[0]) if row else None
            events = 0
            if EVENTS_TABLE_SQLITE in tables:
                # The last rowid reads the rightmost page: a file cut short fails here.
                row = conn.execute(SELECT_MAX_POSITION).fetchone()
                events = int(row[0] or 0)
    except sqlite3.Error as exc:
        raise sqlite_error(exc, where, path) from exc
    return StoreState(home_id=home_id, events=events)


def _schema(store: StoreConfig) -> str:
    return store.postgres_schema or "public"


@contextlib.contextmanager
def _postgres(store: StoreConfig, connect_timeout: int) -> Iterator[Any]:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            "PostgreSQL needs the 'postgres' extra: pip install 'fleetsync[postgres]'"
        ) from exc
    try:
        conn = psycopg.connect(
            dbname=store.postgres_dbname,
            host=store.postgres_host,
            port=store.postgres_port,
            user=store.postgres_user or None,
            password=store.postgres_password or None,
            connect_timeout=connect_timeout,
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise postgres_error(exc, store, connect_timeout) from None
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        raise postgres_error(exc, store, connect_timeout) from exc


def _probe_postgres(store: StoreConfig, connect_timeout: int) -> StoreState:
    from psycopg import sql

    schema = _schema(store)
    with _postgres(store, connect_timeout) as conn:
        found = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name IN (%s, %s)",
                (schema, IDENTITY_TABLE, EVENTS_TABLE_POSTGRES),
            )
        }
        home_id = None
        if IDENTITY_TABLE in found:
            row = conn.execute(
                sql.SQL("SELECT value FROM {} WHERE key = %s").format(
                    sql.Identifier(schema, IDENTITY_TABLE)
                ),
                (_KEY,),
            ).fetchone()
            home_id = str(row[0]) if row else None
        events = 0
        if EVENTS_TABLE_POSTGRES in found:
            row = conn.execute(
                sql.SQL("SELECT MAX(notification_id) FROM {}").format(
                    sql.Identifier(schema, EVENTS_TABLE_POSTGRES)
                )
            ).fetchone()
            events = int(row[0] or 0)
    return StoreState(home_id=home_id, events=events)
