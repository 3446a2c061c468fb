"""Upcasting of stored event state, for readers that skip eventsourcing's Mapper.

The projections decode stored state straight into dicts (cheaper than building
event objects; ``scripts/bench plan`` times the replay), so they must upcast old
versions themselves,
with the very ``upcast_vN_vN+1`` methods the Mapper uses.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eventsourcing.utils import resolve_topic


@cache
def _class_of(topic: str) -> type[Any]:
    cls: type[Any] = resolve_topic(topic)
    return cls


def upcast(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (as stored under ``topic``) brought up to its class's current version.

    A new dict: the record read stays as stored, so a record shared between
    folds (an audit folds a persona's records with each of its agents) is
    upcast from its stored version every time.
    """
    cls = _class_of(topic)
    class_version = getattr(cls, "class_version", 1)
    state = dict(state)
    from_version = state.pop("class_version", 1)
    while from_version < class_version:
        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
        from_version += 1
    return state
