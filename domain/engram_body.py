"""NIP-AE engram bodies, and the persona engram carried at ``mem/persona``.

A body is the plaintext inside a ``kind:30174`` event. The persona engram is a
memory body whose ``value`` is itself JSON text: the persona's canonical
members, then ``provenance`` (which persona version this is), then
``env_vars``. Readers accept members they do not know, so later versions can
add provenance (as ``secrets_digest`` is added here) without breaking them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain import strictjson
from domain.engram_size import (
    MAX_EVENT_BYTES,
    NIP44_MAX_PLAINTEXT_BYTES,
    max_engram_body_bytes,
    sealed_engram_message_size,
)
from domain.errors import InvalidEngramBody, InvalidPersona, TooLarge
from domain.persona import PERSONA_KIND, PersonaContent, validate_env_vars
from domain.slugs import CORE_SLUG, PERSONA_ENGRAM_SLUG, is_engram_slug, is_persona_slug

MAX_PLAINTEXT_BYTES = NIP44_MAX_PLAINTEXT_BYTES  # applied to the whole body


@dataclass(frozen=True, slots=True)
class MemoryBody:
    slug: str
    value: str | None  # None is a tombstone: the slug reads as absent

    @property
    def is_tombstone(self) -> bool:
        return self.value is None

    def __repr__(self) -> str:
        # The value of mem/persona carries env_vars: a repr ends up in logs and tracebacks.
        shown = "None" if self.value is None else f"<{len(self.value)} chars hidden>"
        return f"MemoryBody(slug={self.slug!r}, value={shown})"


@dataclass(frozen=True, slots=True)
class CoreBody:
    profile: str
    slug: str = CORE_SLUG


Body = MemoryBody | CoreBody


def encode_memory_body(slug: str, value: str | None) -> str:
    """Serialize a memory body, refusing one NIP-44 could not carry."""
    text = strictjson.dumps_compact({"slug": slug, "value": value})
    _check_size(text)
    return text


def _check_size(text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_PLAINTEXT_BYTES:
        raise TooLarge(
            f"engram body is {size} bytes; NIP-44 carries at most {MAX_PLAINTEXT_BYTES}. "
            "Shorten the persona (system_prompt, name_pool) or its env_vars."
        )


def decode_body(text: str) -> Body:
    """Parse a decrypted body per NIP-AE rules 3 and 5 (strict JSON, right shape)."""
    try:
        obj = strictjson.loads(text)
    except strictjson.StrictJSONError as exc:
        raise InvalidEngramBody(f"engram body is not strict JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidEngramBody("engram body is not a JSON object")
    slug = obj.get("slug")
    if not isinstance(slug, str) or not is_engram_slug(slug):
        raise InvalidEngramBody(f"engram body has no valid slug: {slug!r}")
    if slug == CORE_SLUG:
        profile = obj.get("profile")
        if not isinstance(profile, str):
            raise InvalidEngramBody("core body needs a string 'profile'")
        return CoreBody(profile=profile)
    if "value" not in obj:
        raise InvalidEngramBody("memory body needs a 'value' (string or null)")
    value = obj["value"]
    if value is not None and not isinstance(value, str):
        raise InvalidEngramBody("memory body 'value' must be a string or null")
    return MemoryBody(slug=slug, value=value)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Which persona version an engram was made from."""

    owner_pubkey: str
    slug: str
    source_version: str  # the persona digest
    secrets_digest: str | None = None  # keyed digest of env_vars; optional for old readers

    def members(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "owner_pubkey": self.owner_pubkey,
            "kind": PERSONA_KIND,
            "slug": self.slug,
            "source_version": self.source_version,
        }
        if self.secrets_digest is not None:
            out["secrets_digest"] = self.secrets_digest
        return out


@dataclass(frozen=True, slots=True)
class PersonaEngram:
    """The decoded ``value`` of a ``mem/persona`` engram."""

    content: PersonaContent
    provenance: Provenance
    env_vars: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"PersonaEngram(content={self.content!r}, provenance={self.provenance!r}, "
            f"env_vars=<{len(self.env_vars)} hidden>)"
        )

    @property
    def content_matches_provenance(self) -> bool:
        """True when the carried content really hashes to the claimed version."""
        return self.content.digest() == self.provenance.source_version


def encode_persona_value(engram: PersonaEngram) -> str:
    members = engram.content.canonical_members()
    members["provenance"] = engram.provenance.members()
    if engram.env_vars:
        members["env_vars"] = {name: engram.env_vars[name] for name in sorted(engram.env_vars)}
    return strictjson.dumps_compact(members)


def encode_persona_body(engram: PersonaEngram) -> str:
    """The full memory body for ``mem/persona``; raises :class:`TooLarge` past the cap."""
    return encode_memory_body(PERSONA_ENGRAM_SLUG, encode_persona_value(engram))


def check_relay_size(body: str, *, created_at: int) -> None:
    """Refuse a body whose sealed engram relays would not accept (see :mod:`domain.engram_size`).

    The message says how large the event would be, the limit, and how long
    the body may be.
    """
    size = len(body.encode("utf-8"))
    message = sealed_engram_message_size(size, created_at=created_at)
    if message > MAX_EVENT_BYTES:
        raise TooLarge(
            f"the persona's engram would be a {message:,}-byte event message; relays commonly "
            f"accept at most {MAX_EVENT_BYTES:,} bytes. Its body is {size:,} bytes and may be "
            f"at most {max_engram_body_bytes(created_at=created_at):,}: shorten system_prompt, "
            "name_pool or env_vars"
        )


def decode_persona_value(value: str) -> PersonaEngram:
    """Parse the ``value`` of a ``mem/persona`` body; unknown members are ignored."""
    try:
        obj = strictjson.loads(value)
    except strictjson.StrictJSONError as exc:
        raise InvalidEngramBody(f"persona engram value is not strict JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidEngramBody("persona engram value is not a JSON object")
    try:
        content = PersonaContent.from_members(obj)
        env_vars = validate_env_vars(obj.get("env_vars", {}))
    except InvalidPersona as exc:
        raise InvalidEngramBody(f"persona engram carries an invalid persona: {exc}") from exc
    prov = obj.get("provenance")
    if not isinstance(prov, dict):
        raise InvalidEngramBody("persona engram has no 'provenance' object")
    owner, kind, slug = prov.get("owner_pubkey"), prov.get("kind"), prov.get("slug")
    version, secrets = prov.get("source_version"), prov.get("secrets_digest")
    if not (isinstance(owner, str) and _is_hex(owner, 64)):
        raise InvalidEngramBody("provenance.owner_pubkey must be 64 lowercase hex characters")
    if type(kind) is not int or kind != PERSONA_KIND:  # 30175.0 and true are not 30175
        raise InvalidEngramBody(f"provenance.kind must be {PERSONA_KIND}")
    if not (isinstance(slug, str) and is_persona_slug(slug)):
        raise InvalidEngramBody("provenance.slug is not a valid persona slug")
    if not (isinstance(version, str) and _is_hex(version, 64)):
        raise InvalidEngramBody("provenance.source_version must be a 64-hex digest")
    if secrets is not None and not (isinstance(secrets, str) and _is_hex(secrets, 64)):
        raise InvalidEngramBody("provenance.secrets_digest must be a 64-hex digest")
    return PersonaEngram(
        content=content,
        provenance=Provenance(owner, slug, version, secrets),
        env_vars=env_vars,
    )


def decode_persona_body(text: str) -> PersonaEngram | None:
    """Parse a whole ``mem/persona`` body; ``None`` for a tombstone."""
    body = decode_body(text)
    if not isinstance(body, MemoryBody) or body.slug != PERSONA_ENGRAM_SLUG:
        raise InvalidEngramBody(f"expected a {PERSONA_ENGRAM_SLUG!r} memory body")
    if body.value is None:
        return None
    return decode_persona_value(body.value)


_HEX = frozenset("0123456789abcdef")


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)
