"""The fleet view kept in a SQLite file, so each CLI run folds only new events.

Personas are one row each. Agents are stored in **chunks**: up to
:data:`CHUNK` rows of one persona, encoded together as one orjson array, with
the set of statuses they hold beside it. A full replay writes about one chunk
per hundred agents instead of a row per agent (writing rows one by one cost
more than folding the whole log), a persona edit rewrites only its own chunks,
and the planner reads only chunks that hold an actionable status. An index,
split into 256 buckets by agent id, says which chunk holds which agent, so an
event about one agent rewrites one chunk and one bucket.

The configured relays, and how their last readings went, are a small table
of their own (``relays``), rewritten whole when it changes.

The view's log position lives in ``meta``; a batch is written in one
``BEGIN IMMEDIATE`` transaction that first checks the position is still the one
the batch started from, so two processes catching up at once cannot apply the
same events twice.
"""

from __future__ import annotations

import contextlib
import operator
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from adapters.errors import AdapterError
from adapters.home import create_private, tighten
from adapters.store.errors import sqlite_error
from adapters.store.identity import integrity_problem, sqlite_uri
from domain.ids import agent_id as agent_id_of
from projections.errors import ProjectionConflict
from projections.fold import RULES
from projections.rows import (
    CREATED_POSITION,
    PERSONA_COLUMNS,
    PERSONA_SLUG,
    RELAY_COLUMNS,
    RETIRED,
    ROW_LAYOUT,
    STATUS,
    AgentRow,
    PersonaRow,
    RelayRow,
    as_tuple,
    layout_version,
)

# The view's tables (besides ``meta``), as created.
_TABLES: dict[str, tuple[str, ...]] = {
    "personas": (
        f"CREATE TABLE IF NOT EXISTS personas ({', '.join(PERSONA_COLUMNS)}, PRIMARY KEY (slug))",
    ),
    "chunks": (
        "CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, "
        "size INTEGER NOT NULL, statuses TEXT NOT NULL, agents BLOB NOT NULL)",
        "CREATE INDEX IF NOT EXISTS chunks_slug ON chunks (slug, id)",
    ),
    "agent_index": (
        "CREATE TABLE IF NOT EXISTS agent_index "
        "(bucket INTEGER PRIMARY KEY, entries BLOB NOT NULL)",
    ),
    "relays": (
        f"CREATE TABLE IF NOT EXISTS relays (n INTEGER PRIMARY KEY, {', '.join(RELAY_COLUMNS)})",
    ),
}
# Derived, never bumped by hand: any change to a row's columns or their types, to
# the tables, or to what the fold computes (fold.RULES) names another layout, and
# a view stored under another one is dropped and rebuilt by replay (see _create).
SCHEMA_VERSION = layout_version(ROW_LAYOUT, _TABLES, RULES)
CHUNK = 256  # agents per chunk: small enough that one agent's event rewrites little
_BY_CREATION = operator.itemgetter(CREATED_POSITION)


def _bucket(agent_id: str) -> int:
    return int(agent_id[:2], 16)


class SQLiteViewStore:
    """The view in ``path``; ``home_id`` names the home whose log it folds.

    A view recorded for another home is emptied and rebuilt (it is derived
    data). ``read_only`` works on a copy in memory of what ``path`` holds, so a
    home nobody can write still answers queries, folding new events in memory.
    """

    def __init__(
        self,
        path: Path | str,
        chunk_size: int = CHUNK,
        *,
        home_id: str | None = None,
        read_only: bool = False,
    ) -> None:
        self._chunk_size = chunk_size
        self._home_id = home_id
        path = Path(path)
        if read_only:
            self._conn = _memory_copy(path)
        else:
            create_private(path)
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # SQLite gives -wal and -shm the mode of the file; older files may be wider.
            for suffix in ("-wal", "-shm"):
                tighten(Path(f"{path}{suffix}"))
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._create()
        # Chunks and index buckets read during one fold batch, dropped when the
        # batch is written or a new one starts (see position()).
        self._chunks: dict[int, dict[str, list[Any]]] = {}
        self._chunk_slugs: dict[int, str] = {}
        self._buckets: dict[int, dict[str, int]] = {}
        self._where: dict[str, int] = {}  # agent id -> chunk, for the agents of cached chunks

    def close(self) -> None:
        self._conn.close()

    def _create(self) -> None:
        c = self._conn
        c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = c.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        home = c.execute("SELECT value FROM meta WHERE key='home'").fetchone()
        other_home = home is not None and self._home_id is not None and home[0] != self._home_id
        if row is not None and (row[0] != SCHEMA_VERSION or other_home):
            # The view is derived data: an old layout is dropped and rebuilt by replay.
            # ("agents" held the rows before they were kept in chunks.)
            for table in ("agents", *_TABLES):
                c.execute(f"DROP TABLE IF EXISTS {table}")
            c.execute("DELETE FROM meta")
        for statements in _TABLES.values():
            for statement in statements:
                c.execute(statement)
        c.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        c.execute("INSERT OR IGNORE INTO meta VALUES ('position', '0')")
        if self._home_id is not None and (other_home or home is None or row is None):
            # Written only when it changes: opening a view must not write to it.
            c.execute("INSERT OR REPLACE INTO meta VALUES ('home', ?)", (self._home_id,))

    # -- reads for the fold (cached for the batch) -----------------------------------------

    def position(self) -> int:
        # A fold batch starts by asking the position: what was cached may be stale.
        self._forget()
        return self._read_position()

    def mark(self) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key='mark'").fetchone()
        return str(row[0]) if row else ""

    def _read_position(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='position'").fetchone()
        return int(row[0])

    def _forget(self) -> None:
        self._chunks.clear()
        self._chunk_slugs.clear()
        self._buckets.clear()
        self._where.clear()

    def persona(self, slug: str) -> PersonaRow | None:
        row = self._conn.execute(
            f"SELECT {', '.join(PERSONA_COLUMNS)} FROM personas WHERE slug=?",
            (slug,),
        ).fetchone()
        return _persona(row) if row else None

    def agent(self, agent_id: str) -> AgentRow | None:
        chunk_id = self._locate(agent_id)
        if chunk_id is None:
            return None
        row = self._chunk(chunk_id).get(agent_id)
        return AgentRow(row) if row is not None else None

    def agents_of_persona(self, slug: str) -> list[AgentRow]:
        rows: list[AgentRow] = []
        for (chunk_id,) in self._conn.execute("SELECT id FROM chunks WHERE slug=?", (slug,)):
            rows.extend(AgentRow(row) for row in self._chunk(chunk_id).values())
        return rows

    def _locate(self, agent_id: str) -> int | None:
        chunk_id = self._where.get(agent_id)
        if chunk_id is None:
            chunk_id = self._index(_bucket(agent_id)).get(agent_id)
        return chunk_id

    def _index(self, bucket: int) -> dict[str, int]:
        entries = self._buckets.get(bucket)
        if entries is None:
            row = self._conn.execute(
                "SELECT entries FROM agent_index WHERE bucket=?", (bucket,)
            ).fetchone()
            entries = orjson.loads(row[0]) if row else {}
            self._buckets[bucket] = entries
        return entries

    def _chunk(self, chunk_id: int) -> dict[str, list[Any]]:
        rows = self._chunks.get(chunk_id)
        if rows is None:
            found = self._conn.execute(
                "SELECT slug, agents FROM chunks WHERE id=?", (chunk_id,)
            ).fetchone()
            rows = {r[0]: r for r in orjson.loads(found[1])} if found else {}
            self._chunks[chunk_id] = rows
            if found:
                self._chunk_slugs[chunk_id] = found[0]
                self._where.update(dict.fromkeys(rows, chunk_id))
        return rows

    # -- queries (each one consistent snapshot) ----------------------------------------------

    def agent_by_pubkey(self, pubkey: str) -> AgentRow | None:
        with self._snapshot():
            self._forget()
            row = self.agent(agent_id_of(pubkey).hex)
            self._forget()
        return row if row is not None and row.pubkey == pubkey else None

    def relays(self) -> list[RelayRow]:
        rows = self._conn.execute(f"SELECT {', '.join(RELAY_COLUMNS)} FROM relays ORDER BY n")
        return [RelayRow(*row) for row in rows]

    def persona_slugs(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT slug FROM personas ORDER BY slug")]

    def list_personas(self) -> list[PersonaRow]:
        rows = self._conn.execute(
            f"SELECT {', '.join(PERSONA_COLUMNS)} FROM personas ORDER BY slug"
        )
        return [_persona(r) for r in rows]

    def list_agents(
        self,
        persona: str | None = None,
        statuses: Iterable[str] | None = None,
        include_retired: bool = True,
    ) -> list[AgentRow]:
        wanted = None if statuses is None else set(statuses)
        sql, params = "SELECT statuses, agents FROM chunks", []
        if persona is not None:
            sql, params = sql + " WHERE slug=?", [persona]
        rows: list[AgentRow] = []
        for held, blob in self._conn.execute(sql, params):
            # Skip the chunks that hold none of the wanted statuses without decoding them.
            if wanted is not None and wanted.isdisjoint(held.split(",")):
                continue
            rows.extend(
                AgentRow(r)
                for r in orjson.loads(blob)
                if (wanted is None or r[STATUS] in wanted) and (include_retired or not r[RETIRED])
            )
        rows.sort(key=lambda r: (r[PERSONA_SLUG], r[CREATED_POSITION]))
        return rows

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that see one state of the file (a writer may commit between them)."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    # -- writes ------------------------------------------------------------------------------

    def write(
        self,
        expected_position: int,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
        mark: str,
        relays: Iterable[RelayRow] | None = None,
    ) -> None:
        try:
            with self._transaction(position, mark):
                if self._read_position() != expected_position:
                    raise ProjectionConflict("the view moved on while this batch was folded")
                self._upsert_personas(personas)
                self._place(agents)
                if relays is not None:
                    self._replace_relays(relays)
        finally:
            self._forget()

    def _place(self, agents: Iterable[AgentRow]) -> None:
        """Put each row in its chunk (a new or moved agent goes to its persona's last one)."""
        c = self._conn
        dirty_chunks: set[int] = set()
        dirty_buckets: set[int] = set()
        open_chunks: dict[str, int] = {}
        next_id = int(c.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0]) + 1
        for row in agents:
            agent_id, slug = row[0], row[PERSONA_SLUG]
            chunk_id = self._locate(agent_id)
            if chunk_id is not None:
                chunk = self._chunk(chunk_id)
                dirty_chunks.add(chunk_id)
                if self._chunk_slugs.get(chunk_id) == slug:
                    chunk[agent_id] = list(row)
                    continue
                chunk.pop(agent_id, None)
            chunk_id = open_chunks.get(slug)
            if chunk_id is None:
                chunk_id = c.execute("SELECT MAX(id) FROM chunks WHERE slug=?", (slug,)).fetchone()[
                    0
                ]
            if chunk_id is None or len(self._chunk(chunk_id)) >= self._chunk_size:
                chunk_id, next_id = next_id, next_id + 1
                self._chunks[chunk_id] = {}
                self._chunk_slugs[chunk_id] = slug
            open_chunks[slug] = chunk_id
            self._chunk(chunk_id)[agent_id] = list(row)
            bucket = _bucket(agent_id)
            self._index(bucket)[agent_id] = chunk_id
            self._where[agent_id] = chunk_id
            dirty_chunks.add(chunk_id)
            dirty_buckets.add(bucket)
        for chunk_id in dirty_chunks:
            rows = list(self._chunks[chunk_id].values())
            if rows:
                c.execute(
                    "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?)",
                    _chunk_record(chunk_id, self._chunk_slugs[chunk_id], rows),
                )
            else:
                c.execute("DELETE FROM chunks WHERE id=?", (chunk_id,))
        c.executemany(
            "INSERT OR REPLACE INTO agent_index VALUES (?, ?)",
            ((b, orjson.dumps(self._buckets[b])) for b in dirty_buckets),
        )

    def replace_all(
        self,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
        mark: str,
        relays: Iterable[RelayRow] = (),
    ) -> None:
        by_persona: dict[str, list[AgentRow]] = {}
        for row in agents:
            by_persona.setdefault(row[PERSONA_SLUG], []).append(row)
        chunks: list[tuple[int, str, int, str, bytes]] = []
        buckets: dict[str, dict[str, int]] = {}
        chunk_id = 0
        for slug in sorted(by_persona):
            rows = sorted(by_persona[slug], key=_BY_CREATION)
            for start in range(0, len(rows), self._chunk_size):
                part = rows[start : start + self._chunk_size]
                chunk_id += 1
                chunks.append(_chunk_record(chunk_id, slug, part))
                for row in part:
                    agent_id = row[0]
                    prefix = agent_id[:2]
                    entries = buckets.get(prefix)
                    if entries is None:
                        entries = buckets[prefix] = {}
                    entries[agent_id] = chunk_id
        c = self._conn
        try:
            with self._transaction(position, mark):
                c.execute("DELETE FROM personas")
                c.execute("DELETE FROM chunks")
                c.execute("DELETE FROM agent_index")
                self._upsert_personas(personas)
                self._replace_relays(relays)
                c.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", chunks)
                c.executemany(
                    "INSERT INTO agent_index VALUES (?, ?)",
                    ((int(prefix, 16), orjson.dumps(e)) for prefix, e in buckets.items()),
                )
        finally:
            self._forget()

    @contextlib.contextmanager
    def _transaction(self, position: int, mark: str) -> Iterator[None]:
        """One write transaction that leaves the view at ``position``, or nothing."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield
            c.execute("UPDATE meta SET value=? WHERE key='position'", (str(position),))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('mark', ?)", (mark,))
            c.execute("COMMIT")
        except BaseException:
            # SQLite ends the transaction itself on some errors (a full disk): a
            # ROLLBACK then fails with "no transaction is active", hiding the cause.
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def _replace_relays(self, relays: Iterable[RelayRow]) -> None:
        self._conn.execute("DELETE FROM relays")
        self._conn.executemany(
            f"INSERT INTO relays VALUES (?, {', '.join('?' * len(RELAY_COLUMNS))})",
            ((n, *as_tuple(r, RELAY_COLUMNS)) for n, r in enumerate(relays)),
        )

    def _upsert_personas(self, personas: Iterable[PersonaRow]) -> None:
        self._conn.executemany(
            f"INSERT OR REPLACE INTO personas VALUES ({', '.join('?' * len(PERSONA_COLUMNS))})",
            (as_tuple(p, PERSONA_COLUMNS) for p in personas),
        )


def _memory_copy(path: Path) -> sqlite3.Connection:
    """An in-memory database holding what ``path`` holds (nothing if it cannot be read)."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    if path.exists():
        try:
            with contextlib.closing(
                sqlite3.connect(sqlite_uri(path, read_only=True, peek=True), uri=True)
            ) as source:
                source.backup(conn)
        except sqlite3.Error:
            conn.close()  # a damaged copy is worth nothing: replay from the log instead
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    return conn


def view_position(path: Path) -> int:
    """The log position a stored view was folded to, read without changing it (0: none)."""
    if not path.exists():
        return 0
    try:
        with contextlib.closing(
            sqlite3.connect(sqlite_uri(path, read_only=True, peek=True), uri=True)
        ) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='position'").fetchone()
    except sqlite3.Error:
        return 0  # a damaged view is rebuilt anyway; it proves nothing
    return int(row[0]) if row else 0


def view_damage(path: Path) -> str | None:
    """What SQLite finds wrong with a stored view file; None when sound, absent or locked."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    problem = integrity_problem(path)
    if problem is None or "locked" in problem or "busy" in problem:
        return None
    # quick_check's first finding reads "*** in database main *** Page 8: ...".
    return problem.replace("*** in database main ***", "").strip()


def view_error(exc: sqlite3.Error, path: Path) -> AdapterError:
    """The adapter error for an SQLite failure on the view file ``path``."""
    return sqlite_error(exc, f"the fleet view {path}", path)


def _chunk_record(chunk_id: int, slug: str, rows: list[Any]) -> tuple[int, str, int, str, bytes]:
    statuses = ",".join(sorted({row[STATUS] for row in rows}))
    return chunk_id, slug, len(rows), statuses, orjson.dumps(rows)


def _persona(row: tuple[Any, ...]) -> PersonaRow:
    p = PersonaRow(*row)
    p.deleted = bool(p.deleted)
    return p
