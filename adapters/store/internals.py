"""What fleetsync relies on of eventsourcing beyond its public API, in one room.

The domain uses the library the way the library's own examples do: aggregates
check their rules and trigger events, the application loads, calls and saves.
The store's fast paths go around parts of the library, and must write and
read exactly what it would. Each leans on something the library does not
promise, and every such thing is named here, so that an eventsourcing upgrade
is checked in this one module (``tests/contract/test_internals.py`` holds each
fast path equal to the library's own slow one, over random histories):

- the SQLite recorder's table, ``stored_events``: one row per event,
  ``(originator_id, originator_version, topic, state)``, the aggregate id as
  32 hex digits, the rowid its notification id (its position in the log); the
  PostgreSQL recorder's table is the application's name followed by ``_events``;
- the mapper's stored form of an event: its attributes less the originator id
  and version, with ``class_version`` added past version 1, encoded by the
  transcoder (:class:`adapters.store.transcoder.OrjsonTranscoder`: orjson, so
  the read side decodes it with orjson alone), with neither compressor nor cipher;
- what ``Application.save`` does besides recording the events: it checks each
  argument against runtime protocols and wraps each stored event in a
  notification for its return value, and keeps snapshots and the aggregate
  cache up to date, which this application does not use;
- an aggregate's own attributes (``_id``, ``_version``, ``_pending_events``...),
  which :func:`agent_at_version` sets without running a creation event.

Its users: the apply's event writer and agent loader (:mod:`adapters.store.writer`,
:mod:`adapters.store.loader`), its sealing (:mod:`adapters.sync.sealing`, the
handles it records new seals on), the read side's event log
(:mod:`adapters.store.eventlog`), the store's identity probe
(:mod:`adapters.store.identity`) and ``scripts/bench plan``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from adapters.store.transcoder import OrjsonTranscoder
from domain.aggregates import Agent

EVENTS_TABLE_SQLITE = "stored_events"
EVENTS_TABLE_POSTGRES = "fleetsync_events"  # FleetApplication.name + "_events"

# A stored event as the SQLite recorder's row holds it (without its rowid).
StoredRow = tuple[str, int, str, bytes]
# The columns of a row, in StoredRow's order.
ROW_COLUMNS = "originator_id, originator_version, topic, state"
ROW_WIDTH = 4
# A row with its position in the log first: a LogRecord's fields (domain.ports).
LOG_COLUMNS = "rowid, " + ROW_COLUMNS

# The stored state of an event, as the read side decodes it without the mapper:
# a dict of JSON values, its ``timestamp`` an ISO string and, past version 1,
# its ``class_version`` (domain.versioning upcasts it).
decode_state = orjson.loads


def stored_id(originator_id: UUID | str) -> str:
    """The stored form of an aggregate id, as the SQLite recorder writes it."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def log_id(originator_id: Any) -> str:
    """An aggregate id as the read side names it (``UUID.hex``), from any recorder."""
    if isinstance(originator_id, UUID):
        return originator_id.hex
    return UUID(str(originator_id)).hex


# -- handles ---------------------------------------------------------------------------


def _handle_template() -> tuple[dict[str, Any], tuple[str, ...]]:
    """The attributes of a handle from ``Agent.at_version``, and those holding a
    container (each handle gets its own)."""
    state = dict(vars(Agent.at_version(UUID(int=0), "", "", 1)))
    return state, tuple(name for name, value in state.items() if isinstance(value, dict | list))


_HANDLE, _HANDLE_CONTAINERS = _handle_template()


def agent_at_version(id: UUID, pubkey: str, persona_slug: str, version: int) -> Agent:
    """``Agent.at_version(id, pubkey, persona_slug, version)``, without its creation event.

    An apply makes one handle per new seal, and building and mutating a creation
    event took longer than recording the seal on it. The handle's attributes are
    those ``Agent.at_version`` gives, taken from one made at import, the way
    eventsourcing rebuilds an aggregate from a snapshot.
    """
    state = _HANDLE.copy()
    for name in _HANDLE_CONTAINERS:
        state[name] = state[name].copy()
    state["_id"] = id
    state["_version"] = version
    state["pubkey"] = pubkey
    state["persona_slug"] = persona_slug
    agent = object.__new__(Agent)
    object.__setattr__(agent, "__dict__", state)
    return agent


# -- writing ---------------------------------------------------------------------------


def can_store_directly(app: Application[Any]) -> bool:
    """Is recording the aggregates' events all that ``app.save`` would do with them?

    True unless snapshots or the aggregate cache are enabled: ``save`` keeps
    those up to date, a direct write would not.
    """
    return app.snapshots is None and app.repository.cache is None


def save_aggregates(app: Application[Any], aggregates: Iterable[Aggregate]) -> None:
    """Store the pending events of many aggregates in one transaction.

    The same mapper, recorder and transaction as ``app.save``, without what
    ``save`` does per argument and per event that an apply has no use for
    (see the module docstring); where snapshots or the cache are enabled,
    ``save`` runs instead.
    """
    aggregates = list(aggregates)
    if not can_store_directly(app):
        app.save(*aggregates)
        return
    to_stored = app.mapper.to_stored_event
    stored = [to_stored(event) for agg in aggregates for event in agg.collect_events()]
    if stored:
        app.recorder.insert_events(stored)


def stored_rows(app: Application[Any], aggregates: Iterable[Aggregate]) -> list[StoredRow]:
    """Collect the aggregates' pending events as the SQLite recorder's rows.

    No I/O: whoever calls this writes the result (all of it, in one
    transaction) or the events are lost. With fleetsync's transcoder and no
    compressor or cipher the rows are made here, as the mapper makes them
    without the ``StoredEvent`` between; otherwise by the mapper itself.
    """
    events = [event for agg in aggregates for event in agg.collect_events()]
    mapper = app.mapper
    if (
        isinstance(mapper.transcoder, OrjsonTranscoder)
        and mapper.compressor is None
        and mapper.cipher is None
    ):
        encode = mapper.transcoder.encode
        rows: list[StoredRow] = []
        for event in events:
            state = dict(vars(event))
            originator_id = state.pop("originator_id")
            version = state.pop("originator_version")
            cls = type(event)
            class_version = getattr(cls, "class_version", 1)
            if class_version > 1:
                state["class_version"] = class_version
            rows.append((stored_id(originator_id), version, get_topic(cls), encode(state)))
        return rows
    to_stored = mapper.to_stored_event
    return [
        (stored_id(s.originator_id), s.originator_version, s.topic, s.state)
        for s in map(to_stored, events)
    ]


@lru_cache(maxsize=8)
def insert_rows(rows: int) -> str:
    """An INSERT of ``rows`` stored rows in one statement (their rowids follow on)."""
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return f"INSERT INTO {EVENTS_TABLE_SQLITE} ({ROW_COLUMNS}) VALUES {values}"


# -- reading -------------------------------------------------------------------------------


def select_aggregates(count: int) -> str:
    """The stored rows of ``count`` aggregates (named by :func:`stored_id`), each
    aggregate's in version order."""
    return (
        f"SELECT {ROW_COLUMNS} FROM {EVENTS_TABLE_SQLITE} "
        f"WHERE originator_id IN ({', '.join('?' * count)}) "
        "ORDER BY originator_id, originator_version"
    )


# The log, in position order, as LogRecord fields: after a position (with or
# without a limit), one aggregate's, and the last position.
SELECT_AFTER = f"SELECT {LOG_COLUMNS} FROM {EVENTS_TABLE_SQLITE} WHERE rowid > ? ORDER BY rowid"
SELECT_AFTER_LIMIT = SELECT_AFTER + " LIMIT ?"
SELECT_AGGREGATE = (
    f"SELECT {LOG_COLUMNS} FROM {EVENTS_TABLE_SQLITE} "
    "WHERE originator_id = ? ORDER BY originator_version"
)
SELECT_MAX_POSITION = f"SELECT MAX(rowid) FROM {EVENTS_TABLE_SQLITE}"
# The first record of a topic after a position: read in position order from there
# (the rowid), so it stops at the first match.
SELECT_FIRST_OF_TOPIC = (
    f"SELECT {LOG_COLUMNS} FROM {EVENTS_TABLE_SQLITE} WHERE rowid > ? AND topic = ? "
    "ORDER BY rowid LIMIT 1"
)
