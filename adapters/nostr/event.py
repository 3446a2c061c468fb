"""NIP-01 events: the id serialization, BIP-340 signing and verification.

Serialization is compact JSON with non-ASCII verbatim and control characters
escaped as JSON requires (``\\n``, ``\\u0001``...), which is what rust-nostr
and nostr-tools produce; orjson writes exactly those bytes, faster than the
standard library. Verification failures come back as an :class:`EventFault`, so a
caller can report *why* an event was discarded.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from adapters.nostr.errors import NostrError
from adapters.nostr.keys import SecretKey, verify_schnorr

Tags = tuple[tuple[str, ...], ...]
_LOWER_HEX = re.compile("[0-9a-f]*").fullmatch


class EventFault(enum.Enum):
    """Why an event is not a valid NIP-01 event."""

    MALFORMED = "malformed"
    BAD_ID = "bad-id"
    BAD_SIGNATURE = "bad-signature"


class InvalidEvent(NostrError):
    """An event failed NIP-01 validation; ``fault`` says which check."""

    def __init__(self, fault: EventFault, detail: str) -> None:
        super().__init__(f"{fault.value}: {detail}")
        self.fault = fault
        self.detail = detail


def _is_lower_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and _LOWER_HEX(value) is not None


def serialize_for_id(pubkey: str, created_at: int, kind: int, tags: Tags, content: str) -> bytes:
    """The exact bytes whose SHA-256 is the event id."""
    try:
        return orjson.dumps([0, pubkey, created_at, kind, tags, content])
    except TypeError as exc:  # lone surrogates cannot be UTF-8
        raise InvalidEvent(EventFault.MALFORMED, f"event is not serializable: {exc}") from exc


def compute_id(pubkey: str, created_at: int, kind: int, tags: Tags, content: str) -> str:
    return hashlib.sha256(serialize_for_id(pubkey, created_at, kind, tags, content)).hexdigest()


@dataclass(frozen=True, slots=True)
class Event:
    """A signed Nostr event. Construct with :func:`sign_event` or :meth:`from_dict`."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str
    sig: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
            "sig": self.sig,
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict()).decode("utf-8")

    def tag_values(self, name: str) -> list[str]:
        """Second elements of every tag called ``name`` (tags too short are skipped)."""
        return [tag[1] for tag in self.tags if len(tag) >= 2 and tag[0] == name]

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Event:
        """Check the shape of a wire event (not its id or signature: see :func:`verify`).

        Every event a refresh or a read-back receives comes through here, so the
        checks are the cheap kind, written out: a compiled pattern per hex field,
        one loop over the tags (no generator per tag), and a dict is known to be
        a mapping without asking the ABC.
        """
        if type(obj) is not dict and not isinstance(obj, Mapping):
            raise InvalidEvent(EventFault.MALFORMED, "event is not a JSON object")
        get = obj.get
        event_id, pubkey, sig = get("id"), get("pubkey"), get("sig")
        if not _is_lower_hex(event_id, 64):
            raise InvalidEvent(EventFault.MALFORMED, "id is not 64 lowercase hex")
        if not _is_lower_hex(pubkey, 64):
            raise InvalidEvent(EventFault.MALFORMED, "pubkey is not 64 lowercase hex")
        if not _is_lower_hex(sig, 128):
            raise InvalidEvent(EventFault.MALFORMED, "sig is not 128 lowercase hex")
        created_at, kind = get("created_at"), get("kind")
        if not isinstance(created_at, int) or isinstance(created_at, bool) or created_at < 0:
            raise InvalidEvent(EventFault.MALFORMED, "created_at is not a non-negative integer")
        if not isinstance(kind, int) or isinstance(kind, bool) or not 0 <= kind <= 65535:
            raise InvalidEvent(EventFault.MALFORMED, "kind is not an integer in 0..65535")
        content = get("content")
        if not isinstance(content, str):
            raise InvalidEvent(EventFault.MALFORMED, "content is not a string")
        raw_tags = get("tags")
        if not isinstance(raw_tags, list):
            raise InvalidEvent(EventFault.MALFORMED, "tags is not an array of arrays of strings")
        tags = []
        for tag in raw_tags:
            if not isinstance(tag, list):
                raise InvalidEvent(
                    EventFault.MALFORMED, "tags is not an array of arrays of strings"
                )
            for value in tag:
                if not isinstance(value, str):
                    raise InvalidEvent(
                        EventFault.MALFORMED, "tags is not an array of arrays of strings"
                    )
            tags.append(tuple(tag))
        return cls(obj["id"], obj["pubkey"], created_at, kind, tuple(tags), content, obj["sig"])

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(EventFault.MALFORMED, f"event is not JSON: {exc}") from exc
        return cls.from_dict(obj)


@dataclass(frozen=True, slots=True)
class UnsignedEvent:
    """An event before its author signs it: what a :class:`adapters.ports.Signer` is
    handed. The signer adds its own ``pubkey``, the id and the signature."""

    created_at: int
    kind: int
    tags: Iterable[Sequence[str]]
    content: str


def normalize_tags(tags: Iterable[Sequence[str]]) -> Tags:
    return tuple(tuple(tag) for tag in tags)


def sign_event(
    secret: SecretKey,
    *,
    created_at: int,
    kind: int,
    tags: Iterable[Sequence[str]],
    content: str,
    aux: bytes | None = None,
) -> Event:
    """Build and sign an event as ``secret``'s public key.

    ``aux`` is BIP-340 auxiliary randomness: fresh CSPRNG bytes unless a test
    vector pins it.
    """
    pubkey = secret.public_key.hex
    tag_tuple = normalize_tags(tags)
    digest = hashlib.sha256(serialize_for_id(pubkey, created_at, kind, tag_tuple, content))
    raw_id = digest.digest()
    sig = secret.sign_schnorr(raw_id, aux)
    return Event(digest.hexdigest(), pubkey, created_at, kind, tag_tuple, content, sig.hex())


def why_invalid(event: Event) -> EventFault | None:
    """The first NIP-01 check ``event`` fails, or ``None`` when it is valid."""
    expected = compute_id(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    if expected != event.id:
        return EventFault.BAD_ID
    if not verify_schnorr(
        bytes.fromhex(event.pubkey), bytes.fromhex(event.id), bytes.fromhex(event.sig)
    ):
        return EventFault.BAD_SIGNATURE
    return None


def is_valid(event: Event) -> bool:
    """Whether ``event``'s id and signature are right; hex that is not hex is not."""
    try:
        return why_invalid(event) is None
    except (InvalidEvent, ValueError):
        return False


def verify(event: Event) -> None:
    """Raise :class:`InvalidEvent` unless ``event``'s id and signature are right."""
    reason = why_invalid(event)
    if reason is EventFault.BAD_ID:
        raise InvalidEvent(reason, f"id {event.id} does not match the event's serialization")
    if reason is EventFault.BAD_SIGNATURE:
        raise InvalidEvent(reason, f"signature of {event.id} does not verify")


_Why = TypeVar("_Why", bound=NostrError)


@dataclass(frozen=True, slots=True)
class Discarded(Generic[_Why]):
    """An event set aside when choosing a head, and why (the error names the rule it broke).

    Engram and persona head selection both report them, each with its own
    error type (:class:`adapters.nostr.engram.InvalidEngram`,
    :class:`adapters.nostr.persona_event.InvalidPersonaEvent`).
    """

    event: Event
    error: _Why
