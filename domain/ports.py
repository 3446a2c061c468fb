"""Ports: what the domain needs from the world, as Protocols adapters implement."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol


class SecretsVault(Protocol):
    """Encrypts secrets (persona env_vars) before they enter the event log.

    ``digest_key`` keys :func:`domain.persona.secrets_digest`; it must be stable
    for the life of the fleet or every agent would look rotated.
    """

    @property
    def digest_key(self) -> bytes: ...

    def seal(self, plaintext: bytes) -> str: ...

    def open(self, sealed: str) -> bytes: ...


class LogRecord(NamedTuple):
    """One stored event as the read side sees it: its place in the log and its state.

    A NamedTuple because replays build one per stored event."""

    position: int
    originator_id: str  # the aggregate id as 32 lowercase hex digits (``UUID.hex``)
    originator_version: int
    topic: str
    state: dict[str, Any]


# A LogRecord's fields as a plain tuple, in the same order: what ``scan`` yields,
# because building a NamedTuple per stored event (a Python-level ``__new__``)
# cost a full replay about a twentieth of its time.
RecordFields = tuple[int, str, int, str, dict[str, Any]]


class EventLog(Protocol):
    """Ordered, read-only access to the whole event log (the notification log)."""

    def read(self, after: int, limit: int) -> Sequence[LogRecord]:
        """Up to ``limit`` records with position > ``after``, in position order."""
        ...

    def scan(self, after: int) -> Iterator[RecordFields]:
        """Every record with position > ``after``, in position order, read as consumed
        (a replay keeps no batch of decoded records alive), as plain tuples."""
        ...

    def stream(self, originator_id: str) -> Sequence[LogRecord]:
        """Every record of one aggregate, in version order."""
        ...

    def first_after(self, position: int, topic: str) -> LogRecord | None:
        """The first record of ``topic`` with position > ``position``, if any."""
        ...

    def max_position(self) -> int: ...
