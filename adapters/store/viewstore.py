"""The fleet view kept in a SQLite file, so each CLI run folds only new events.

One row per persona and per agent, the view's log position in ``meta``; a
batch is written in one ``BEGIN IMMEDIATE`` transaction that first checks the
position is still the one the batch started from, so two processes catching up
at once cannot apply the same events twice.
"""

from __future__ import annotations

import contextlib
import operator
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from projections.errors import ProjectionConflict
from projections.rows import AGENT_COLUMNS, PERSONA_COLUMNS, AgentRow, PersonaRow, as_tuple

SCHEMA_VERSION = "4"
_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS agents_pubkey ON agents (pubkey)",
    "CREATE INDEX IF NOT EXISTS agents_persona ON agents (persona_slug)",
    "CREATE INDEX IF NOT EXISTS agents_status ON agents (status)",
)
_INDEX_NAMES = ("agents_pubkey", "agents_persona", "agents_status")
_BY_ID = operator.attrgetter("agent_id")


class SQLiteViewStore:
    def __init__(self, path: Path | str) -> None:
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._create()

    def close(self) -> None:
        self._conn.close()

    def _create(self) -> None:
        c = self._conn
        c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = c.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] != SCHEMA_VERSION:
            # The view is derived data: an old layout is dropped and rebuilt by replay.
            c.execute("DROP TABLE IF EXISTS personas")
            c.execute("DROP TABLE IF EXISTS agents")
            c.execute("DELETE FROM meta")
        c.execute(
            f"CREATE TABLE IF NOT EXISTS personas ({', '.join(PERSONA_COLUMNS)}, "
            "PRIMARY KEY (slug))"
        )
        # Agents are many: the columns queries filter on, plus the whole row as one
        # orjson blob, which writes several times faster than thirty columns.
        c.execute(
            "CREATE TABLE IF NOT EXISTS agents (agent_id TEXT PRIMARY KEY, pubkey TEXT NOT NULL, "
            "persona_slug TEXT NOT NULL, status TEXT NOT NULL, retired INTEGER NOT NULL, "
            "created_position INTEGER NOT NULL, row BLOB NOT NULL)"
        )
        self._create_indexes()
        c.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        c.execute("INSERT OR IGNORE INTO meta VALUES ('position', '0')")

    def _create_indexes(self) -> None:
        for statement in _INDEXES:
            self._conn.execute(statement)

    def position(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='position'").fetchone()
        return int(row[0])

    def persona(self, slug: str) -> PersonaRow | None:
        row = self._conn.execute(
            f"SELECT {', '.join(PERSONA_COLUMNS)} FROM personas WHERE slug=?",
            (slug,),
        ).fetchone()
        return _persona(row) if row else None

    def agent(self, agent_id: str) -> AgentRow | None:
        return self._one_agent("agent_id", agent_id)

    def agent_by_pubkey(self, pubkey: str) -> AgentRow | None:
        return self._one_agent("pubkey", pubkey)

    def _one_agent(self, column: str, value: str) -> AgentRow | None:
        row = self._conn.execute(f"SELECT row FROM agents WHERE {column}=?", (value,)).fetchone()
        return _agent(row[0]) if row else None

    def agent_ids_of_persona(self, slug: str) -> Iterable[str]:
        rows = self._conn.execute("SELECT agent_id FROM agents WHERE persona_slug=?", (slug,))
        return [r[0] for r in rows]

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
        where: list[str] = []
        params: list[Any] = []
        if persona is not None:
            where.append("persona_slug = ?")
            params.append(persona)
        if statuses is not None:
            wanted = list(statuses)
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if not include_retired:
            where.append("retired = 0")
        sql = "SELECT row FROM agents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY persona_slug, created_position"
        return [_agent(r[0]) for r in self._conn.execute(sql, params)]

    def write(
        self,
        expected_position: int,
        position: int,
        personas: Iterable[PersonaRow],
        agents: Iterable[AgentRow],
    ) -> None:
        with self._transaction(position):
            if self.position() != expected_position:
                raise ProjectionConflict("the view moved on while this batch was folded")
            self._upsert(personas, agents)

    def replace_all(
        self, position: int, personas: Iterable[PersonaRow], agents: Iterable[AgentRow]
    ) -> None:
        c = self._conn
        with self._transaction(position):
            c.execute("DELETE FROM personas")
            # A bulk load goes faster into a bare table, in key order, indexed after.
            for name in _INDEX_NAMES:
                c.execute(f"DROP INDEX IF EXISTS {name}")
            c.execute("DELETE FROM agents")
            self._upsert(personas, sorted(agents, key=_BY_ID))
            self._create_indexes()

    @contextlib.contextmanager
    def _transaction(self, position: int) -> Iterator[None]:
        """One write transaction that leaves the view at ``position``, or nothing."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield
            c.execute("UPDATE meta SET value=? WHERE key='position'", (str(position),))
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def _upsert(self, personas: Iterable[PersonaRow], agents: Iterable[AgentRow]) -> None:
        c = self._conn
        c.executemany(
            f"INSERT OR REPLACE INTO personas VALUES ({', '.join('?' * len(PERSONA_COLUMNS))})",
            (as_tuple(p, PERSONA_COLUMNS) for p in personas),
        )
        dumps, values = orjson.dumps, _AGENT_VALUES
        c.executemany(
            "INSERT OR REPLACE INTO agents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    a.agent_id,
                    a.pubkey,
                    a.persona_slug,
                    a.status,
                    a.retired,
                    a.created_position,
                    dumps(values(a)),
                )
                for a in agents
            ),
        )


def _persona(row: tuple[Any, ...]) -> PersonaRow:
    p = PersonaRow(*row)
    p.deleted = bool(p.deleted)
    return p


# A row is stored as the tuple of its fields in declaration order (SCHEMA_VERSION
# changes when they do): an attrgetter tuple is the cheapest thing orjson writes.
_AGENT_VALUES = operator.attrgetter(*AGENT_COLUMNS)


def _agent(blob: bytes) -> AgentRow:
    return AgentRow(*orjson.loads(blob))
