"""What the reconciler needs from relays, as a port: publish signed events to
every configured relay and fetch the engrams of a set of agents.

The real implementation sits over :mod:`adapters.relay`; fault tests may pass
anything that speaks this Protocol, though they should prefer a fake relay on
a real socket.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from adapters.nostr.event import Event


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the relay already has it: as good as accepted
    TEMPORARY = "temporary"  # rate-limited: / error: after the client's retries
    PERMANENT = "permanent"  # invalid: blocked: restricted: pow: and unknown prefixes
    UNKNOWN = "unknown"  # no answer in time: neither failed nor succeeded


ACKNOWLEDGED = frozenset({Outcome.ACCEPTED, Outcome.DUPLICATE})


@dataclass(frozen=True, slots=True)
class Answer:
    relay: str
    outcome: Outcome
    prefix: str = ""
    message: str = ""

    def describe(self) -> str:
        """One relay's answer for people: the relay, then what it said (or that it said
        nothing); a message that names the relay already is not prefixed again."""
        if self.outcome in ACKNOWLEDGED:
            return f"{self.relay}: {self.outcome.value}"
        if not self.message:
            silent = self.outcome is Outcome.UNKNOWN
            return f"{self.relay}: {'no answer' if silent else self.outcome.value}"
        if self.relay in self.message:
            return self.message
        return f"{self.relay}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "relay": self.relay,
            "outcome": self.outcome.value,
            "prefix": self.prefix,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Fetched:
    events: list[Event]  # the union over every relay, one of each id
    answered: list[str]  # relays that answered the whole query (reached EOSE)
    failed: list[str]  # relays that could not be queried, or not in full
    # Why each failed relay could not be read, for the user.
    errors: Mapping[str, str] = field(default_factory=dict)
    # Event id -> the relays that returned it: sync state is per agent and relay.
    # None when the gateway cannot tell (every event then counts as held by every
    # relay that answered).
    held: Mapping[str, Sequence[str]] | None = None


class RelayGateway(Protocol):
    @property
    def urls(self) -> list[str]: ...

    async def publish(
        self, events: Sequence[Event], only: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, list[Answer]]:
        """Send every event to every relay (or, for an event id in ``only``, to the
        relays named there); answers per event id, one per relay it went to."""
        ...

    async def fetch_engrams(
        self, authors: Sequence[str], owner: str, d_tags: Sequence[str] = ()
    ) -> Fetched:
        """Every ``kind:30174`` event by ``authors`` tagged ``["p", owner]`` (and one of
        ``d_tags`` when given), from all relays."""
        ...

    async def close(self) -> None: ...
