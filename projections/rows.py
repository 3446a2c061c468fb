"""The rows of the fleet view: one per persona, one per agent, one per relay.

Rows are mutable while a batch of events is folded into them, then written
out; their ``facts()`` are the immutable inputs the pure planner takes. The
rows' declared columns and types are also what the stored view's schema
version is derived from (:data:`ROW_LAYOUT`, :func:`layout_version`).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from domain.planner import AgentFacts, HeadFacts, PersonaFacts


@dataclass(slots=True)
class PersonaRow:
    slug: str
    digest: str
    secrets_digest: str
    deleted: bool
    revision: int
    position: int
    display_name: str
    actor: str
    saved_at: str
    agent_count: int = 0
    # The content's digests by the other digest rules, space-separated (see PersonaFacts).
    aliases: str = ""

    def facts(self) -> PersonaFacts:
        return PersonaFacts(
            self.slug,
            self.digest,
            self.secrets_digest,
            self.deleted,
            self.position,
            tuple(self.aliases.split()),
        )


@dataclass(slots=True)
class RelayRow:
    """A configured relay, and how the refreshes that read it went.

    ``read_at`` is when a reading last got every answer it asked this relay for;
    ``failed_at`` and ``error`` say that a later one could not read it, and stay
    until a reading gets through again.
    """

    url: str
    added_position: int
    read_at: str | None = None
    read_position: int = 0
    read_agents: int = 0  # how many agents that reading asked about
    failed_at: str | None = None
    error: str | None = None

    @property
    def verified(self) -> bool:
        """Read, and not failed since: what the log says about it has been checked."""
        return self.read_at is not None and self.failed_at is None


RELAY_COLUMNS = tuple(f.name for f in fields(RelayRow))


class AgentRow(list[Any]):
    """One agent's row: a list of its column values, read and written by name.

    A list rather than a dataclass because a full replay builds one row per
    agent and writes them all: a list is built, copied and encoded by orjson
    (as a JSON array) at C speed, where turning a thirty-field object into
    values cost more than folding the event that made it.

    The annotations below are the row's one declaration: its columns in
    storage order, each becoming a property over its index, and with their
    types the stored view's layout (:data:`ROW_LAYOUT`). Every fact the planner
    takes is a column under the fact's own name and type (a
    :class:`domain.planner.HeadFacts` field ``f`` as ``head_f``, ``None`` until
    there is a head), so :meth:`facts` is derived from the names; a fact without
    its column, or a column of another type than its fact, fails at import. (The
    fact columns are written out, not generated, so the type checker knows them.)
    The other columns are the view's own (names, statuses, positions shown by
    ``status`` and audits).
    """

    __slots__ = ()

    agent_id: str
    pubkey: str
    name: str
    persona_slug: str
    owner_pubkey: str
    origin: str
    created_at: str
    created_position: int
    assigned_position: int
    status: str
    reasons: str
    retired: bool
    key_destroyed: bool
    head_state: str | None
    head_digest: str | None
    head_secrets_digest: str | None
    head_event_id: str | None
    head_position: int
    head_observed: bool
    published_digest: str | None
    published_event_id: str | None
    published_position: int
    pending_event_id: str | None
    pending_digest: str | None
    pending_secrets_digest: str | None
    pending_position: int
    conflict_digest: str | None
    conflict_position: int
    conflict_reason: str | None
    conflict_head_event_id: str | None
    # The agent aggregate's version as of the last event folded: an apply records
    # its events at the next one without replaying the agent (see Agent.at_version).
    version: int
    # Who wrote the head (a HeadOrigin) when it was read from the relays; "" when
    # the head is our own publish or none was read.
    head_origin: str
    # The relays known to hold the head event (None until there is a head).
    head_relays: list[str] | None
    published_secrets_digest: str | None
    retired_position: int
    # A tombstone sealed and not yet confirmed (see Agent.TombstoneSealed).
    tombstone_event_id: str | None
    tombstone_position: int

    def is_blank(self) -> bool:
        """True for a live agent with no publication history: no head, seal or conflict.

        Every such agent of one persona gets the same status and reasons, which
        lets a replay assess one of them and reuse the verdict.
        """
        return (
            self[HEAD_STATE] is None
            and self[PENDING_DIGEST] is None
            and self[CONFLICT_DIGEST] is None
            and not self[RETIRED]
        )

    def facts(self) -> AgentFacts:
        """The planner's facts about this agent, read from the columns of their names."""
        return _facts(self)


AGENT_COLUMNS: tuple[str, ...] = tuple(AgentRow.__annotations__)
AGENT_TYPES: tuple[str, ...] = tuple(AgentRow.__annotations__.values())


def _column(index: int) -> property:
    def set_value(row: AgentRow, value: Any) -> None:
        row[index] = value

    return property(operator.itemgetter(index), set_value)


for _index, _name in enumerate(AGENT_COLUMNS):
    setattr(AgentRow, _name, _column(_index))


def _text(annotation: Any) -> str:
    """An annotation as written (a NamedTuple keeps postponed ones as ForwardRefs)."""
    return str(getattr(annotation, "__forward_arg__", annotation))


# Head facts the row keeps in another type: None while there is no head, and the
# relays as JSON gives them back (AgentRow.facts makes them a tuple).
_HEAD_COLUMN_TYPES = {"state": "str | None", "relays": "list[str] | None"}


def fact_columns(declared: dict[str, str]) -> tuple[list[int], list[int], list[int]]:
    """In a row of the ``declared`` columns (name: type, in order), the indexes of
    those holding AgentFacts' fields before ``head`` and after it, and HeadFacts'
    fields; raises TypeError if a fact has no column of its name and type."""
    columns = list(declared)

    def index(name: str, fact_type: str) -> int:
        if declared.get(name) != fact_type:
            raise TypeError(
                f"AgentRow must carry the planner's fact {name}: {fact_type} "
                f"(it has {declared.get(name, 'no such column')})"
            )
        return columns.index(name)

    facts = [(name, _text(t)) for name, t in AgentFacts.__annotations__.items()]
    head = [name for name, _ in facts].index("head")
    heads = [
        index(f"head_{name}", _HEAD_COLUMN_TYPES.get(name, _text(fact_type)))
        for name, fact_type in HeadFacts.__annotations__.items()
    ]
    if (HeadFacts._fields[0], HeadFacts._fields[-1]) != ("state", "relays"):
        raise TypeError("AgentRow.facts reads a head by its state (first) and relays (last)")
    return (
        [index(name, fact_type) for name, fact_type in facts[:head]],
        [index(name, fact_type) for name, fact_type in facts[head + 1 :]],
        heads,
    )


def _facts_reader(
    before: list[int], after: list[int], head: list[int]
) -> Callable[[list[Any]], AgentFacts]:
    """The function behind AgentRow.facts, written out from the column indexes
    :func:`fact_columns` found, as ``collections.namedtuple`` writes its methods.

    Written out because every replay and plan calls it once per agent: one
    unpacking of the row into locals and a tuple per NamedTuple, built with
    ``tuple.__new__`` (what the NamedTuples' own constructors end in; the
    columns were checked, so the values are complete and in order) is quicker
    than any loop over the columns, and than the hand mapping it replaced
    (``scripts/bench plan`` times the replays that call it).
    """
    value = [f"c{index}" for index in range(len(AGENT_COLUMNS))]
    head_values = ", ".join(value[i] for i in head[:-1])
    source = (
        "def facts(row):\n"
        f"    {', '.join(value)}, = row\n"
        f"    if {value[head[0]]} is None:\n"
        "        head = None\n"
        "    else:\n"
        # JSON keeps the relays' tuple as a list; the facts are immutable.
        f"        head = new(HeadFacts, ({head_values}, tuple({value[head[-1]]} or ())))\n"
        f"    return new(AgentFacts, ({', '.join(value[i] for i in before)}, head, "
        f"{', '.join(value[i] for i in after)}))\n"
    )
    namespace: dict[str, Any] = {"new": tuple.__new__, "HeadFacts": HeadFacts}
    namespace["AgentFacts"] = AgentFacts
    exec(source, namespace)  # noqa: S102 (the source is made of column indexes only)
    reader: Callable[[list[Any]], AgentFacts] = namespace["facts"]
    return reader


_facts = _facts_reader(*fact_columns(dict(AgentRow.__annotations__)))

STATUS = AGENT_COLUMNS.index("status")
REASONS = AGENT_COLUMNS.index("reasons")
RETIRED = AGENT_COLUMNS.index("retired")
HEAD_STATE = AGENT_COLUMNS.index("head_state")
PENDING_DIGEST = AGENT_COLUMNS.index("pending_digest")
CONFLICT_DIGEST = AGENT_COLUMNS.index("conflict_digest")
PERSONA_SLUG = AGENT_COLUMNS.index("persona_slug")
CREATED_POSITION = AGENT_COLUMNS.index("created_position")
VERSION = AGENT_COLUMNS.index("version")


def _new_value(name: str, column_type: str) -> Any:
    """A new agent's value in a column it has no event for yet: the fact's default
    (version 1: eventsourcing creates every aggregate at version 1), else nothing."""
    if name in AgentFacts._field_defaults:
        return AgentFacts._field_defaults[name]
    if "None" in column_type.split(" | "):
        return None
    zeros: dict[str, Any] = {"int": 0, "bool": False, "str": ""}
    if column_type not in zeros:
        raise TypeError(f"no value for a new agent's {name}: {column_type}")
    return zeros[column_type]


# Every column after ``reasons`` for a new agent: no history. The fold builds a
# new agent's row inline, as a list display ending in these (see Fold.apply).
NEW_TAIL: tuple[Any, ...] = tuple(
    _new_value(name, column_type)
    for name, column_type in zip(AGENT_COLUMNS, AGENT_TYPES, strict=True)
)[REASONS + 1 :]

PERSONA_COLUMNS = tuple(f.name for f in fields(PersonaRow))


def as_tuple(row: PersonaRow | RelayRow, columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in columns)


# Each kind of row's columns and their types, in storage order: what the stored
# view's layout is made of (see layout_version).
ROW_LAYOUT: dict[str, tuple[tuple[str, str], ...]] = {
    "agents": tuple(zip(AGENT_COLUMNS, AGENT_TYPES, strict=True)),
    "personas": tuple((f.name, str(f.type)) for f in fields(PersonaRow)),
    "relays": tuple((f.name, str(f.type)) for f in fields(RelayRow)),
}


def layout_version(*parts: object) -> str:
    """A stable name for a layout: 16 hex digits of the SHA-256 of ``parts`` (JSON
    values: the columns and types, the tables' SQL), the same in every process."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
