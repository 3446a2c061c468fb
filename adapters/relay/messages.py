"""NIP-01 / NIP-42 wire frames, typed at the edge, and the classification of ``OK``.

Relays send JSON arrays in text frames. :func:`parse_frame` turns one frame into
one of the small values below, or ``None`` for garbage (not JSON, not an array,
an unknown verb, wrong types): garbage is logged at debug level and skipped, so a
misbehaving relay can never crash the reader. Frames to relays are built by the
``*_frame`` functions, always as text (``orjson`` then ``decode``).

:func:`classify` maps an ``OK`` message to an
:class:`adapters.relay.answers.Outcome` by its machine-readable prefix, which is
what decides retries (see the table on ``Outcome``); :func:`asks_for_auth` picks
out the ``auth-required:`` refusals a client may answer with NIP-42 AUTH.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.nostr.event import Event, InvalidEvent
from domain.verdict import Outcome

logger = logging.getLogger(__name__)

# Longest relay-provided text we keep or log; relays are not trusted to be brief.
MAX_TEXT = 500


_TEMPORARY_PREFIXES = frozenset({"rate-limited", "error"})


@dataclass(frozen=True, slots=True)
class OkMessage:
    """``["OK", event_id, accepted, message]``; ``prefix`` is the part before the first colon.

    The HTTP bridge's ``{"event_id", "accepted", "message"}`` reply is the same answer."""

    event_id: str
    accepted: bool
    message: str

    @property
    def prefix(self) -> str:
        return prefix_of(self.message)


@dataclass(frozen=True, slots=True)
class EventMessage:
    """``["EVENT", subscription_id, event]`` whose event has a valid NIP-01 shape."""

    subscription_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """``["EVENT", subscription_id, x]`` where ``x`` is not a well-formed event."""

    subscription_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class EndOfStoredEvents:
    subscription_id: str


@dataclass(frozen=True, slots=True)
class Closed:
    """``["CLOSED", subscription_id, message]``: the relay ended a subscription."""

    subscription_id: str
    message: str

    @property
    def prefix(self) -> str:
        return prefix_of(self.message)


@dataclass(frozen=True, slots=True)
class Notice:
    message: str


@dataclass(frozen=True, slots=True)
class AuthChallenge:
    """``["AUTH", challenge]`` (NIP-42): valid until the next challenge or the end of the socket."""

    challenge: str


RelayMessage = (
    OkMessage | EventMessage | MalformedEvent | EndOfStoredEvents | Closed | Notice | AuthChallenge
)


def prefix_of(message: str) -> str:
    """The machine-readable prefix of an ``OK``/``CLOSED`` message, lowercased; ``""`` if none.

    NIP-01 defines it as a single word followed by a colon; text with a space
    before the first colon has no prefix.
    """
    head, colon, _ = message.partition(":")
    head = head.strip()
    if not colon or not head or any(ch.isspace() for ch in head):
        return ""
    return head.lower()


def classify(ok: OkMessage) -> Outcome:
    """The :class:`Outcome` an ``OK`` message means (see the table on ``Outcome``).

    ``auth-required:`` is a refusal (``PERMANENT``) unless the client can
    authenticate and send again: :func:`asks_for_auth` says when to try.
    """
    prefix = ok.prefix
    if prefix == "duplicate":
        # nostr-relay answers `false, "duplicate: exists"`, rust-nostr `true, "duplicate: ..."`:
        # both mean the relay holds the event.
        return Outcome.DUPLICATE
    if ok.accepted:
        return Outcome.ACCEPTED
    if prefix in _TEMPORARY_PREFIXES:
        return Outcome.TEMPORARY
    return Outcome.PERMANENT


def asks_for_auth(ok: OkMessage) -> bool:
    """A refusal until the sender authenticates (NIP-42 ``auth-required:``)."""
    return not ok.accepted and ok.prefix == "auth-required"


def parse_frame(text: str | bytes) -> RelayMessage | None:
    """One relay frame as a value, or ``None`` (logged at debug) when it is garbage."""
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        logger.debug("skipping a frame that is not JSON (%d characters)", len(text))
        return None
    if not isinstance(frame, list) or not frame or not isinstance(frame[0], str):
        logger.debug("skipping a frame that is not an array starting with a verb")
        return None
    verb, args = frame[0], frame[1:]
    parser = _PARSERS.get(verb)
    message = parser(args) if parser is not None else None
    if message is None:
        logger.debug("skipping a malformed or unknown %.20r frame", verb)
    return message


def _parse_ok(args: Sequence[Any]) -> OkMessage | None:
    if len(args) < 2 or not isinstance(args[0], str) or not isinstance(args[1], bool):
        return None
    # NIP-01 makes the message mandatory; a relay that omits it still said yes or no.
    message = args[2] if len(args) > 2 else ""
    if not isinstance(message, str):
        return None
    return OkMessage(args[0], args[1], message[:MAX_TEXT])


def _parse_event(args: Sequence[Any]) -> EventMessage | MalformedEvent | None:
    if len(args) < 2 or not isinstance(args[0], str):
        return None
    raw = args[1]
    # A decoded frame holds dicts: the exact type test comes first because the
    # Mapping ABC's is slow, and every event read back passes here.
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return MalformedEvent(args[0], "event is not a JSON object")
    try:
        return EventMessage(args[0], Event.from_dict(raw))
    except InvalidEvent as exc:
        return MalformedEvent(args[0], exc.fault.value)


def _parse_eose(args: Sequence[Any]) -> EndOfStoredEvents | None:
    if not args or not isinstance(args[0], str):
        return None
    return EndOfStoredEvents(args[0])


def _parse_closed(args: Sequence[Any]) -> Closed | None:
    if not args or not isinstance(args[0], str):
        return None
    message = args[1] if len(args) > 1 else ""
    return Closed(args[0], message[:MAX_TEXT]) if isinstance(message, str) else None


def _parse_notice(args: Sequence[Any]) -> Notice | None:
    if not args or not isinstance(args[0], str):
        return None
    return Notice(args[0][:MAX_TEXT])


def _parse_auth(args: Sequence[Any]) -> AuthChallenge | None:
    if not args or not isinstance(args[0], str) or not args[0]:
        return None
    return AuthChallenge(args[0])


_PARSERS: Mapping[str, Callable[[Sequence[Any]], RelayMessage | None]] = {
    "OK": _parse_ok,
    "EVENT": _parse_event,
    "EOSE": _parse_eose,
    "CLOSED": _parse_closed,
    "NOTICE": _parse_notice,
    "AUTH": _parse_auth,
}


def event_frame(event: Event) -> str:
    """``["EVENT", event]`` as text; computed once per event so resends are the same bytes."""
    return orjson.dumps(["EVENT", event.to_dict()]).decode("utf-8")


def auth_frame(event: Event) -> str:
    return orjson.dumps(["AUTH", event.to_dict()]).decode("utf-8")


def req_frame(subscription_id: str, filters: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps(["REQ", subscription_id, *filters]).decode("utf-8")


def close_frame(subscription_id: str) -> str:
    return orjson.dumps(["CLOSE", subscription_id]).decode("utf-8")
