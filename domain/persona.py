"""Persona content (NIP-AP ``kind:30175``) as a value, and its canonical digest.

The digest is how fleetsync decides staleness, so it must match the desktop
implementation byte for byte (see the fleet-update reference): compact JSON with
members in a fixed order, nulls and an empty ``name_pool`` omitted, unknown
members and ``env_vars`` left out. Secrets get their own *keyed* digest so a
rotation is detectable without the digest revealing a guessable secret.

Two readers, two strictnesses: content found on a relay
(:func:`parse_public_content`) ignores members it does not know, as NIP-AP
asks of readers; the owner's own definition file (:func:`parse_definition`)
refuses them, because there a misspelt ``env_var`` would silently drop the
secrets. :func:`check_owner_definition` holds the rules an owner's definition
must meet before it is saved: valid ``name_pool`` names, and no secret value
repeated in a public field.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain import strictjson
from domain.errors import InvalidPersona
from domain.names import check_name_pool

PERSONA_KIND = 30175
REQUIRED_FIELDS = ("display_name", "system_prompt")
OPTIONAL_FIELDS = ("avatar_url", "runtime", "model", "provider")
# The canonical member order of the digest and of the engram body.
CANONICAL_ORDER = (
    "display_name",
    "avatar_url",
    "system_prompt",
    "runtime",
    "model",
    "provider",
    "name_pool",
)
DEFINITION_MEMBERS = (*CANONICAL_ORDER, "env_vars")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A secret value this long or longer is refused anywhere inside a public string;
# a shorter one only when it is a whole public value. Short values ("1", "true",
# "eu") occur inside ordinary prompts by chance, and refusing those would make
# the check useless; a whole public value equal to a secret is published as is.
MIN_SECRET_SUBSTRING_CHARS = 8


def _utf8_string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidPersona(f"{where} must be a string, not {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A JSON escape such as "\ud800" parses but cannot be written as UTF-8.
        raise InvalidPersona(f"{where} contains a lone surrogate and is not valid UTF-8") from exc
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class PersonaContent:
    """The public part of a persona: what a ``kind:30175`` event carries."""

    display_name: str
    system_prompt: str
    avatar_url: str | None = None
    runtime: str | None = None
    model: str | None = None
    provider: str | None = None
    name_pool: tuple[str, ...] = ()

    def canonical_members(self) -> dict[str, Any]:
        """The members of the canonical form, in canonical order."""
        members: dict[str, Any] = {"display_name": self.display_name}
        if self.avatar_url is not None:
            members["avatar_url"] = self.avatar_url
        members["system_prompt"] = self.system_prompt
        for name in ("runtime", "model", "provider"):
            value = getattr(self, name)
            if value is not None:
                members[name] = value
        if self.name_pool:
            members["name_pool"] = list(self.name_pool)
        return members

    def canonical_json(self) -> str:
        return strictjson.dumps_compact(self.canonical_members())

    def digest(self) -> str:
        """lower_hex(SHA-256(canonical_json)): the persona's ``source_version``."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def public_members(self) -> dict[str, Any]:
        """Every field, nulls included: a ``kind:30175`` content, and what events store."""
        return {
            "display_name": self.display_name,
            "system_prompt": self.system_prompt,
            "avatar_url": self.avatar_url,
            "runtime": self.runtime,
            "model": self.model,
            "provider": self.provider,
            "name_pool": list(self.name_pool),
        }

    def public_json(self) -> str:
        """The ``content`` of a ``kind:30175`` event."""
        return strictjson.dumps_compact(self.public_members())

    @classmethod
    def from_members(cls, members: Mapping[str, Any]) -> PersonaContent:
        """Build from already-parsed JSON members; unknown members are ignored."""
        for name in REQUIRED_FIELDS:
            if name not in members:
                raise InvalidPersona(f"persona is missing the required field {name!r}")
        values: dict[str, Any] = {
            name: _utf8_string(members[name], name) for name in REQUIRED_FIELDS
        }
        for name in OPTIONAL_FIELDS:
            value = members.get(name)
            values[name] = None if value is None else _utf8_string(value, name)
        pool = members.get("name_pool", [])
        if not isinstance(pool, list):
            raise InvalidPersona(f"name_pool must be an array of strings, not {_json_type(pool)}")
        values["name_pool"] = tuple(
            _utf8_string(item, f"name_pool[{i}]") for i, item in enumerate(pool)
        )
        return cls(**values)


def validate_env_vars(env_vars: object) -> dict[str, str]:
    """Check ``env_vars`` is an object of NAME -> string; return it with sorted names."""
    if not isinstance(env_vars, dict):
        raise InvalidPersona(f"env_vars must be an object of strings, not {_json_type(env_vars)}")
    for name, value in env_vars.items():
        if not _ENV_NAME.fullmatch(name):
            raise InvalidPersona(
                f"env_vars name {name!r} is not a valid environment variable name "
                "(letters, digits and '_', not starting with a digit)"
            )
        # The value itself never goes into a message: it is a secret.
        _utf8_string(value, f"env_vars[{name!r}]")
        if "\x00" in value:
            raise InvalidPersona(f"env_vars[{name!r}] contains a NUL character")
    return {name: env_vars[name] for name in sorted(env_vars)}


@dataclass(frozen=True, slots=True)
class PersonaDefinition:
    """What an owner saves: the public content plus the secrets its agents need."""

    content: PersonaContent
    env_vars: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # env_vars are secrets: a repr ends up in logs and tracebacks.
        return (
            f"PersonaDefinition(content={self.content!r}, env_vars=<{len(self.env_vars)} hidden>)"
        )


def parse_public_content(text: str) -> PersonaContent:
    """Parse a ``kind:30175`` content body, as found on a relay.

    ``env_vars`` is refused: NIP-AP forbids secrets in public content, and a
    persona event that carries them must not be taken as a valid definition.
    """
    members = _parse_object(text)
    if "env_vars" in members:
        raise InvalidPersona("public persona content must not contain env_vars (NIP-AP)")
    return PersonaContent.from_members(members)


def parse_definition(text: str) -> PersonaDefinition:
    """Parse what a user saves: persona content, optionally with ``env_vars``.

    Unknown members are refused, each named (with the member it most likely
    meant): this is the owner's own file, not someone else's event.
    """
    members = _parse_object(text)
    unknown = [name for name in members if name not in DEFINITION_MEMBERS]
    if unknown:
        raise InvalidPersona(
            "persona has unknown member(s) "
            + ", ".join(_with_suggestion(name) for name in unknown)
            + f"; known members are {', '.join(DEFINITION_MEMBERS)}"
        )
    env_vars = validate_env_vars(members.get("env_vars", {}))
    return PersonaDefinition(PersonaContent.from_members(members), env_vars)


def _with_suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, DEFINITION_MEMBERS, n=1, cutoff=0.6)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def public_strings(content: PersonaContent, slug: str | None = None) -> list[tuple[str, str]]:
    """Every public string of a persona as (field, value): what a ``kind:30175`` shows.

    The slug is public too (the event's ``d`` tag) when given.
    """
    fields: list[tuple[str, str]] = [] if slug is None else [("slug", slug)]
    for name in ("display_name", "system_prompt", *OPTIONAL_FIELDS):
        value = getattr(content, name)
        if value is not None:
            fields.append((name, value))
    fields.extend((f"name_pool[{i}]", item) for i, item in enumerate(content.name_pool))
    return fields


def exposed_secret(
    content: PersonaContent, env_vars: Mapping[str, str], slug: str | None = None
) -> tuple[str, str] | None:
    """The first (env var name, public field) where a secret value would be published.

    A non-empty value is exposed when a public string equals it, and, for
    values of at least :data:`MIN_SECRET_SUBSTRING_CHARS` characters, when a
    public string contains it. Case and whitespace count as written.
    """
    strings = public_strings(content, slug)
    for name in sorted(env_vars):
        value = env_vars[name]
        if not value:
            continue
        for where, text in strings:
            if text == value or (len(value) >= MIN_SECRET_SUBSTRING_CHARS and value in text):
                return name, where
    return None


def check_owner_definition(definition: PersonaDefinition, slug: str | None = None) -> None:
    """The rules an owner's definition meets before it is saved (relay content is not held
    to them): valid, distinct ``name_pool`` names, and no secret in a public field.
    """
    check_name_pool(definition.content.name_pool)
    exposed = exposed_secret(definition.content, definition.env_vars, slug)
    if exposed is not None:
        name, where = exposed
        # Name the variable and the field, never the value: it is a secret.
        raise InvalidPersona(
            f"the value of env_vars[{name!r}] appears in the public field {where}, where it "
            f"would be published in the clear; remove it from {where} (or from env_vars)"
        )


def _parse_object(text: str) -> dict[str, Any]:
    try:
        members = strictjson.loads(text)
    except strictjson.StrictJSONError as exc:
        raise InvalidPersona(f"persona is not valid JSON: {exc}") from exc
    if not isinstance(members, dict):
        raise InvalidPersona(f"persona must be a JSON object, not {_json_type(members)}")
    return members


def canonical_env_json(env_vars: Mapping[str, str]) -> str:
    return strictjson.dumps_compact({name: env_vars[name] for name in sorted(env_vars)})


def secrets_digest(key: bytes, env_vars: Mapping[str, str]) -> str:
    """Keyed digest of ``env_vars``: HMAC-SHA256(key, canonical env JSON), lower hex.

    Keyed because secrets are often guessable (short tokens, defaults); an
    unkeyed hash in provenance or in the log would let anyone test guesses.
    """
    if len(key) < 32:
        raise ValueError("the secrets digest key must be at least 32 bytes")
    return hmac.new(key, canonical_env_json(env_vars).encode("utf-8"), hashlib.sha256).hexdigest()
