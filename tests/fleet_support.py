"""Shared helpers for tests of the event-sourced core: an application and view
over either the in-memory store or a real SQLite file."""

from __future__ import annotations

import os
import uuid
from dataclasses import astuple
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.store.eventlog import RecorderEventLog, SQLiteEventLog
from adapters.store.viewstore import SQLiteViewStore
from domain.application import FleetApplication
from domain.persona import PersonaContent, PersonaDefinition
from domain.ports import EventLog
from projections.memory import MemoryViewStore
from projections.view import FleetView, QueryableViewStore, replay

OWNER = "ab" * 32
TRANSCODER = "adapters.store.transcoder:OrjsonTranscoder"


class PlainVault:
    """A vault that only hex-encodes: tests of the planner do not need real secrecy."""

    digest_key = b"k" * 32

    def seal(self, plaintext: bytes) -> str:
        return plaintext.hex()

    def open(self, sealed: str) -> bytes:
        return bytes.fromhex(sealed)


POSTGRES_URL = os.environ.get("FLEETSYNC_TEST_POSTGRES_URL", "")


def postgres_env(url: str) -> dict[str, str]:
    """A fresh schema of its own in the test database, so tests never see each other."""
    import psycopg

    parts = urlsplit(url)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "",
        "POSTGRES_PASSWORD": parts.password or "",
        "POSTGRES_SCHEMA": schema,
    }


def make_fleet(kind: str, tmp: Path | None = None) -> tuple[FleetApplication, FleetView]:
    """An application and its view: ``memory`` (POPO), ``sqlite`` (files under ``tmp``)
    or ``postgres`` (a schema of its own in $FLEETSYNC_TEST_POSTGRES_URL)."""
    env: dict[str, str] = {"TRANSCODER_TOPIC": TRANSCODER}
    log: EventLog
    store: QueryableViewStore
    if kind == "postgres":
        env |= postgres_env(POSTGRES_URL)
        app = FleetApplication(env, vault=PlainVault(), owner_pubkey=OWNER)
        log = RecorderEventLog(app.recorder)
        store = MemoryViewStore()
    elif kind == "sqlite":
        assert tmp is not None
        db = tmp / "events.sqlite"
        env |= {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}
        app = FleetApplication(env, vault=PlainVault(), owner_pubkey=OWNER)
        log = SQLiteEventLog(db)
        # Two agents per chunk, so the few agents of a test span, fill and empty chunks.
        store = SQLiteViewStore(tmp / "view.sqlite", chunk_size=2)
    else:
        app = FleetApplication(env, vault=PlainVault(), owner_pubkey=OWNER)
        log = RecorderEventLog(app.recorder)
        store = MemoryViewStore()
    return app, FleetView(log, store)


def definition(prompt: str, secret: str | None = None, name: str = "Persona") -> PersonaDefinition:
    env = {"API_KEY": secret} if secret is not None else {}
    return PersonaDefinition(PersonaContent(display_name=name, system_prompt=prompt), env)


def pubkey(n: int) -> str:
    return f"{n:064x}"


def snapshot(view: FleetView) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of a view, comparable across stores."""
    return (
        sorted(astuple(p) for p in view.personas()),
        sorted(tuple(a) for a in view.agents()),
    )


def replayed(view: FleetView) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    memory, _ = replay(view.log)
    return (
        sorted(astuple(p) for p in memory.list_personas()),
        sorted(tuple(a) for a in memory.list_agents()),
    )
