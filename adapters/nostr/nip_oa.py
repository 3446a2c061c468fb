"""NIP-OA owner attestations: the ``auth`` tag by which an owner key authorizes an agent key.

The tag is ``["auth", <owner hex>, <conditions>, <sig hex>]``; the owner signs
(BIP-340) the SHA-256 of ``nostr:agent-auth:<agent hex>:<conditions>``, the
conditions string used exactly as written (never reordered or normalised).
Everything here follows ``specs/NIP-OA.md`` to the letter, the strict parts
included: lowercase hex only, canonical decimals, no whitespace, no empty
clause, owner different from agent, and a verifier that evaluates every
clause against the event it is attached to (never against a clock).

fleetsync mints attestations with empty conditions, as buzz's desktop does
(reference §3): a relay evaluates ``created_at`` bounds against the auth event
that presents the tag, so a bounded tag would need re-minting before it ran
out, and nothing here does that on its own. :meth:`Attestation.to_json` is
the compact form buzz stores as ``auth_tag`` and reads from the ``x-auth-tag``
header.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from adapters.nostr.errors import NostrError
from adapters.nostr.event import Event, why_invalid
from adapters.nostr.keys import verify_schnorr

if TYPE_CHECKING:
    from adapters.ports import Signer

DOMAIN_SEPARATOR = "nostr:agent-auth:"
_HEX64 = re.compile("[0-9a-f]{64}").fullmatch
_HEX128 = re.compile("[0-9a-f]{128}").fullmatch
_CLAUSE = re.compile(r"(kind=|created_at<|created_at>)(0|[1-9][0-9]*)").fullmatch
_CLAUSE_MAX = {"kind=": 65535, "created_at<": 4294967295, "created_at>": 4294967295}


class InvalidAttestation(NostrError):
    """An ``auth`` tag that is malformed or does not verify; the message says why."""


@dataclass(frozen=True, slots=True)
class Clause:
    """One parsed condition: ``op`` is ``kind=``, ``created_at<`` or ``created_at>``."""

    op: str
    value: int

    def holds(self, kind: int, created_at: int) -> bool:
        if self.op == "kind=":
            return kind == self.value
        if self.op == "created_at<":
            return created_at < self.value
        return created_at > self.value


def parse_conditions(conditions: str) -> tuple[Clause, ...]:
    """The clauses of a conditions string, or :class:`InvalidAttestation` naming the fault."""
    if conditions == "":
        return ()
    if not conditions.isascii():
        raise InvalidAttestation("conditions must be ASCII")
    if any(ch.isspace() for ch in conditions):
        raise InvalidAttestation("conditions must not contain whitespace")
    clauses = []
    for text in conditions.split("&"):
        if text == "":
            raise InvalidAttestation(
                "conditions have an empty clause (a leading, trailing or double '&')"
            )
        match = _CLAUSE(text)
        if match is None:
            raise InvalidAttestation(f"unsupported or malformed clause {text!r}")
        op, value = match.group(1), int(match.group(2))
        if value > _CLAUSE_MAX[op]:
            raise InvalidAttestation(f"clause {text!r} is out of range")
        clauses.append(Clause(op, value))
    return tuple(clauses)


def signed_message(agent_pubkey: str, conditions: str) -> bytes:
    """SHA-256 of the preimage ``nostr:agent-auth:<agent>:<conditions>`` (UTF-8)."""
    return hashlib.sha256(f"{DOMAIN_SEPARATOR}{agent_pubkey}:{conditions}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Attestation:
    """A well-formed ``auth`` tag (its signature not yet checked: see :meth:`verify`)."""

    owner: str
    conditions: str
    sig: str

    def tag(self) -> tuple[str, str, str, str]:
        return ("auth", self.owner, self.conditions, self.sig)

    def to_json(self) -> str:
        """The compact JSON array buzz stores and sends in ``x-auth-tag``."""
        return orjson.dumps(list(self.tag())).decode("utf-8")

    @classmethod
    def from_tag(cls, tag: Sequence[object]) -> Attestation:
        """Check a tag's shape: four strings, ``auth``, lowercase hex, conditions grammar."""
        if len(tag) != 4:
            raise InvalidAttestation(f"an auth tag has exactly four elements, not {len(tag)}")
        if not all(isinstance(part, str) for part in tag):
            raise InvalidAttestation("an auth tag's elements are strings")
        name, owner, conditions, sig = (str(part) for part in tag)
        if name != "auth":
            raise InvalidAttestation(f"the tag is named {name!r}, not 'auth'")
        if _HEX64(owner) is None:
            raise InvalidAttestation("the owner key is not 64 lowercase hex characters")
        parse_conditions(conditions)
        if _HEX128(sig) is None:
            raise InvalidAttestation("the signature is not 128 lowercase hex characters")
        return cls(owner, conditions, sig)

    @classmethod
    def from_json(cls, text: str) -> Attestation:
        """Parse buzz's stored ``auth_tag`` text (a JSON array)."""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidAttestation(f"the auth tag is not JSON: {exc}") from exc
        if not isinstance(value, list):
            raise InvalidAttestation("the auth tag is not a JSON array")
        return cls.from_tag(value)

    def verify(self, agent_pubkey: str) -> None:
        """Raise unless the owner signed this attestation of ``agent_pubkey``.

        Conditions are not evaluated here (there is no event yet): see
        :func:`verify_event`. A relay presented with the tag evaluates them
        against the auth event that carries it.
        """
        if self.owner == agent_pubkey:
            raise InvalidAttestation("the owner key equals the agent key (self-attestation)")
        if _HEX64(agent_pubkey) is None:
            raise InvalidAttestation("the agent key is not 64 lowercase hex characters")
        message = signed_message(agent_pubkey, self.conditions)
        if not verify_schnorr(bytes.fromhex(self.owner), message, bytes.fromhex(self.sig)):
            raise InvalidAttestation("the owner's signature does not verify")

    def allows(self, kind: int, created_at: int) -> bool:
        """Whether an event of ``kind`` made at ``created_at`` meets every clause."""
        return all(clause.holds(kind, created_at) for clause in parse_conditions(self.conditions))


def mint(owner: Signer, agent_pubkey: str, conditions: str = "") -> Attestation:
    """The owner's attestation of ``agent_pubkey`` under ``conditions``, signed through
    the owner's signer."""
    parse_conditions(conditions)
    if _HEX64(agent_pubkey) is None:
        raise InvalidAttestation("the agent key is not 64 lowercase hex characters")
    if owner.public_key.hex == agent_pubkey:
        raise InvalidAttestation("the owner key equals the agent key (self-attestation)")
    sig = owner.sign_digest(signed_message(agent_pubkey, conditions)).hex()
    return Attestation(owner.public_key.hex, conditions, sig)


def verify_event(event: Event) -> Attestation | None:
    """The attestation an event carries, verified as the spec's client rules say.

    ``None`` when it carries none, or more than one (the spec: treat as none).
    Raises :class:`InvalidAttestation` when the event itself is invalid, or its
    one ``auth`` tag is malformed, badly signed, a self-attestation, or has a
    clause the event does not meet.
    """
    tags = [tag for tag in event.tags if tag and tag[0] == "auth"]
    if len(tags) != 1:
        return None
    reason = why_invalid(event)
    if reason is not None:
        raise InvalidAttestation(f"the event is not valid ({reason.value}): no provenance")
    attestation = Attestation.from_tag(tags[0])
    attestation.verify(event.pubkey)
    if not attestation.allows(event.kind, event.created_at):
        raise InvalidAttestation("the event does not meet the attestation's conditions")
    return attestation
