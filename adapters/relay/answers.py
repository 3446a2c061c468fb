"""What a relay answers, whatever the wire carried it: the one vocabulary of the relay seam.

Every transport (the websocket client, :mod:`adapters.relay.client` and
:mod:`adapters.relay.identities`; the HTTP bridge, :mod:`adapters.relay.bridge`)
reports in these values, and the reconciler records them as they are:

* :class:`Answer` - one relay's final word on one event: its
  :class:`domain.verdict.Outcome` (the domain's, since the event log records
  it and the verdict judges by it), with the relay's prefix and message, as the
  reconciler records it (``RelaysAnswered``, ``Published``);
* :class:`SubscriptionResult` / :class:`QueryResult` - what a read brought back
  from one relay.

How a wire answer maps to an ``Outcome``:

============ ================================================================
ACCEPTED     ``OK true`` with any prefix except ``duplicate:``
DUPLICATE    ``duplicate:`` whatever the boolean: the relay holds the event
TEMPORARY    ``OK false`` with ``rate-limited:`` or ``error:`` (after the
             client's retries), or never sent: the relay may take it later
PERMANENT    ``OK false`` with ``invalid:``, ``blocked:``, ``restricted:``,
             ``pow:``, ``mute:``, an unknown prefix or none, and
             ``auth-required:`` once authenticating did not help: asking
             again gets the same answer
UNKNOWN      no answer in time (or the connection died first): the relay may
             or may not have stored the event; never read it as a failure
             nor as a success
============ ================================================================

``mute:`` is permanent: NIP-01 uses it for an *ephemeral* event nobody was
listening to, i.e. the relay dropped it without storing. We only publish
stored kinds, so counting it as success would mark as published an event no
relay holds, and resending the same bytes would be muted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.nostr.event import Event
from domain.verdict import Outcome


@dataclass(frozen=True, slots=True)
class Answer:
    """One relay's final word on one event in one publish.

    ``prefix`` and ``message`` are the relay's (empty when it said nothing);
    ``attempts`` counts the times the event was sent to it (0: never sent).
    Only ``stored`` (accepted or duplicate) means the relay holds the event, and
    even that is not *published* until a read-back shows it as the head.
    """

    relay: str
    event_id: str
    outcome: Outcome
    prefix: str = ""
    message: str = ""
    attempts: int = 0

    @property
    def stored(self) -> bool:
        return self.outcome.stored

    def describe(self) -> str:
        """For people: the relay, then what it said (or that it said nothing); a
        message that names the relay already is not prefixed again."""
        if self.outcome.stored:
            return f"{self.relay}: {self.outcome.value}"
        if not self.message:
            silent = self.outcome is Outcome.UNKNOWN
            return f"{self.relay}: {'no answer' if silent else self.outcome.value}"
        if self.relay in self.message:
            return self.message
        return f"{self.relay}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The record kept in the event log (its layout never changes)."""
        return {
            "relay": self.relay,
            "outcome": self.outcome.value,
            "prefix": self.prefix,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """What one filter (one subscription) brought back from one relay.

    ``count`` is the number of well-formed events received (a relay cap such as
    rust-nostr's default of 500 per filter shows as ``count`` equal to the cap);
    ``complete`` is True when the relay sent ``EOSE``; ``closed`` holds the
    relay's ``CLOSED`` message if it ended the subscription instead.
    """

    filter: Mapping[str, Any]
    count: int
    complete: bool
    closed: str | None = None
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Stored events matching any of the filters, de-duplicated by id, in arrival order.

    Events have a valid NIP-01 *shape*; their ids and signatures are not checked
    here (head selection verifies before trusting anything).
    """

    url: str
    events: tuple[Event, ...]
    subscriptions: tuple[SubscriptionResult, ...]

    @property
    def complete(self) -> bool:
        """Every subscription reached ``EOSE``: nothing was cut short by us or the relay."""
        return all(sub.complete for sub in self.subscriptions)
