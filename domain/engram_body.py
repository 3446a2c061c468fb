"""NIP-AE engram bodies: every rule a body must meet, in one room.

A body is the plaintext inside a ``kind:30174`` event. Writing one
(:func:`encode_memory_body`, :func:`encode_persona`) and reading one
(:func:`decode_body`, *Head selection* rules 3-5) both happen here, and so
does the one check of NIP-44's plaintext cap (:func:`body_utf8`) and of the
relay's event size (:func:`check_relay_size`). A body built here is valid by
construction and is handed on as an :class:`EncodedBody` (text and UTF-8
bytes), so the sealing adapter pads it without parsing it again; text from
elsewhere goes through :func:`decode_body` first.

The persona engram is a memory body whose ``value`` is itself JSON text: the
persona's canonical members, then ``provenance`` (which persona version this
is), then ``env_vars``. Readers accept members they do not know, so later
versions can add provenance (as ``secrets_digest`` is added here) without
breaking them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain import digests, strictjson
from domain.engram_size import (
    MAX_EVENT_BYTES,
    MAX_PLAINTEXT_BYTES,
    max_engram_body_bytes,
    sealed_engram_message_size,
)
from domain.errors import InvalidEngramBody, InvalidPersona, TooLarge
from domain.persona import PERSONA_KIND, PersonaContent, validate_env_vars
from domain.slugs import (
    CORE_SLUG,
    PERSONA_ENGRAM_SLUG,
    buzz_d_tag,
    is_engram_slug,
    is_persona_slug,
)

# Prefilter for JSON escapes that may decode to a lone surrogate (\ud800-\udfff).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class BodyRuleBroken(InvalidEngramBody):
    """A body breaks NIP-AE *Head selection* rule ``rule`` (3: JSON, 4: slug, 5: shape)."""

    def __init__(self, rule: int, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


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


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A body that meets every rule, as text and as its UTF-8 bytes.

    Made only by this module's encoders (valid by construction) or by
    :func:`checked_body` (parsed once). ``text`` may hold secrets (``env_vars``)
    and stays out of ``repr``.
    """

    slug: str
    text: str = field(repr=False)
    utf8: bytes = field(repr=False)


def body_utf8(text: str) -> bytes:
    """The body's UTF-8 bytes; the one check of NIP-44's cap on a body (never truncated)."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BodyRuleBroken(3, "body is not valid Unicode (lone surrogate)") from exc
    check_plaintext_size(len(raw), what="engram body")
    return raw


def check_plaintext_size(size: int, *, what: str) -> None:
    """Refuse ``size`` bytes past :data:`MAX_PLAINTEXT_BYTES` (NIP-44; NIP-AP copies the cap)."""
    if size > MAX_PLAINTEXT_BYTES:
        raise TooLarge(
            f"{what} is {size} bytes; NIP-44 and NIP-AP allow at most {MAX_PLAINTEXT_BYTES}. "
            "Shorten the content (for a persona: system_prompt, name_pool or env_vars)."
        )


def memory_body(slug: str, value: str | None) -> EncodedBody:
    """A memory body for ``slug``, refusing one NIP-44 could not carry or a reader would not."""
    if not is_engram_slug(slug):
        raise BodyRuleBroken(4, f"body slug {slug!r} does not match the NIP-AE slug grammar")
    text = strictjson.dumps_compact({"slug": slug, "value": value})
    return EncodedBody(slug, text, body_utf8(text))


def encode_memory_body(slug: str, value: str | None) -> str:
    """Serialize a memory body, refusing one NIP-44 could not carry."""
    return memory_body(slug, value).text


def checked_body(text: str) -> EncodedBody:
    """Text from elsewhere checked as a reader would (rules 3-5) and against the cap."""
    raw = body_utf8(text)
    return EncodedBody(decode_body(text).slug, text, raw)


def decode_body(text: str, *, derives_to_d: Callable[[str], bool] | None = None) -> Body:
    """Parse a decrypted body per NIP-AE rules 3-5, in that order, with one parse.

    ``derives_to_d`` (rule 4) says whether a slug derives to the event's ``d``
    tag; the derivation needs the conversation key, which the caller holds.
    Raises :class:`BodyRuleBroken` naming the first rule broken.
    """
    try:
        obj = strictjson.loads(text)
    except strictjson.StrictJSONError as exc:
        raise BodyRuleBroken(3, f"body is not strict JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BodyRuleBroken(3, "body is not a JSON object")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(obj):
        # Other parsers (serde_json among them) refuse such text outright.
        raise BodyRuleBroken(3, "body escapes a lone surrogate, which is not Unicode text")
    slug = obj.get("slug")
    if not isinstance(slug, str) or not is_engram_slug(slug):
        raise BodyRuleBroken(4, f"body slug {slug!r} does not match the NIP-AE slug grammar")
    if derives_to_d is not None and not derives_to_d(slug):
        raise BodyRuleBroken(4, f"body slug {slug!r} does not derive to the event's d tag")
    if slug == CORE_SLUG:
        profile = obj.get("profile")
        if not isinstance(profile, str):
            raise BodyRuleBroken(5, "core body needs a string 'profile'")
        return CoreBody(profile=profile)
    if "value" not in obj:
        raise BodyRuleBroken(5, "memory body needs a 'value' (string or null)")
    value = obj["value"]
    if value is not None and not isinstance(value, str):
        raise BodyRuleBroken(5, "memory body 'value' must be a string or null")
    return MemoryBody(slug=slug, value=value)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


@dataclass(frozen=True, slots=True)
class Provenance:
    """Which persona version an engram was made from."""

    owner_pubkey: str
    slug: str
    source_version: str  # the persona digest
    secrets_digest: str | None = None  # keyed digest of env_vars; optional for old readers
    # The rule that made source_version (domain.digests); an engram without one was
    # written by the seed's rule, the only one before rules had names.
    digest_rule: str = digests.CURRENT.name

    def members(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "owner_pubkey": self.owner_pubkey,
            "kind": PERSONA_KIND,
            "slug": self.slug,
            "source_version": self.source_version,
            "digest_rule": self.digest_rule,
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
        """True when the carried content really hashes to the claimed version by the
        claimed rule (a rule this fleetsync does not know proves nothing)."""
        prov = self.provenance
        return digests.names_version(prov.source_version, prov.digest_rule, self.content)


def encode_persona_value(engram: PersonaEngram) -> str:
    members = engram.content.canonical_members()
    members["provenance"] = engram.provenance.members()
    if engram.env_vars:
        members["env_vars"] = {name: engram.env_vars[name] for name in sorted(engram.env_vars)}
    return strictjson.dumps_compact(members)


def encode_persona(engram: PersonaEngram) -> EncodedBody:
    """The ``mem/persona`` memory body; raises :class:`TooLarge` past the cap."""
    return memory_body(PERSONA_ENGRAM_SLUG, encode_persona_value(engram))


def encode_persona_body(engram: PersonaEngram) -> str:
    """The text of :func:`encode_persona`."""
    return encode_persona(engram).text


def check_relay_size(body: EncodedBody | str, *, created_at: int) -> None:
    """Refuse a body whose sealed engram relays would not accept (see :mod:`domain.engram_size`).

    The message says how large the event would be, the limit, and how long
    the body may be.
    """
    size = len(body.utf8) if isinstance(body, EncodedBody) else len(body.encode("utf-8"))
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
    rule = prov.get("digest_rule", digests.UNNAMED)
    if not (isinstance(owner, str) and _is_hex(owner, 64)):
        raise InvalidEngramBody("provenance.owner_pubkey must be 64 lowercase hex characters")
    if type(kind) is not int or kind != PERSONA_KIND:  # 30175.0 and true are not 30175
        raise InvalidEngramBody(f"provenance.kind must be {PERSONA_KIND}")
    if not (isinstance(slug, str) and slug):
        raise InvalidEngramBody("provenance.slug is not a valid persona slug")
    if not is_persona_slug(slug):
        # buzz's seed desktop wrote its persona id ("builtin:fizz") or a team's persona
        # name ("Lep"); buzz itself reads them through normalize_d_tag, and so do we.
        slug = buzz_d_tag(slug)
    if not (isinstance(version, str) and _is_hex(version, 64)):
        raise InvalidEngramBody("provenance.source_version must be a 64-hex digest")
    if secrets is not None and not (isinstance(secrets, str) and _is_hex(secrets, 64)):
        raise InvalidEngramBody("provenance.secrets_digest must be a 64-hex digest")
    if not (isinstance(rule, str) and 0 < len(rule) <= _MAX_RULE_NAME):
        raise InvalidEngramBody("provenance.digest_rule must be the name of a digest rule")
    return PersonaEngram(
        content=content,
        provenance=Provenance(owner, slug, version, secrets, rule),
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
_MAX_RULE_NAME = 64


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)
