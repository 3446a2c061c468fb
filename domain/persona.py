"""Persona content (NIP-AP ``kind:30175``) as a value, with every member buzz knows.

The content carries NIP-AP's members and those buzz added since
(``acp_command``, ``respond_to``, ``respond_to_allowlist``, ``parallelism``,
``description``, ``session_policy``), each typed and checked as buzz checks it.
Its digest decides staleness and must match buzz's byte for byte: the rules buzz
has used live in :mod:`domain.digests`, and :meth:`PersonaContent.digest` uses
the current one. Secrets get their own *keyed* digest so a rotation is
detectable without the digest revealing a guessable secret.

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

from domain import digests, strictjson
from domain.errors import InvalidPersona
from domain.names import check_name_pool

PERSONA_KIND = 30175
REQUIRED_FIELDS = ("display_name", "system_prompt")
OPTIONAL_FIELDS = ("acp_command", "avatar_url", "runtime", "model", "provider")
# Every content member, in the order buzz serialises them (its PersonaEventContent,
# buzz-interop.md §5.1): the order of the engram body's members. Which are hashed,
# and in which order, is each digest rule's business (domain.digests).
CONTENT_MEMBERS = (
    "display_name",
    "system_prompt",
    "acp_command",
    "avatar_url",
    "runtime",
    "model",
    "provider",
    "name_pool",
    "respond_to",
    "respond_to_allowlist",
    "parallelism",
    "description",
    "session_policy",
)
DEFINITION_MEMBERS = (*CONTENT_MEMBERS, "env_vars")
RESPOND_TO_MODES = ("owner-only", "allowlist", "anyone")
SESSION_POLICIES = ("channel", "thread")
DEFAULT_SESSION_POLICY = "channel"
MAX_PARALLELISM = 32
MAX_DESCRIPTION_CHARS = 280
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
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


def _strings(value: object, where: str) -> tuple[str, ...]:
    # null is refused, as serde refuses it for buzz's Vec<String> members.
    if not isinstance(value, list):
        raise InvalidPersona(f"{where} must be an array of strings, not {_json_type(value)}")
    return tuple(_utf8_string(item, f"{where}[{i}]") for i, item in enumerate(value))


@dataclass(frozen=True, slots=True)
class PersonaContent:
    """The public part of a persona: every member buzz knows, typed and checked as buzz does.

    ``respond_to`` is one of :data:`RESPOND_TO_MODES`; ``respond_to_allowlist``
    holds pubkeys as 64 hex characters, kept as written (buzz lowercases and
    deduplicates them when it mints an agent, and digests them as written);
    ``parallelism`` is 1 to 32; ``description`` at most 280 characters;
    ``session_policy`` is ``channel`` (the default) or ``thread``.
    """

    display_name: str
    system_prompt: str
    avatar_url: str | None = None
    runtime: str | None = None
    model: str | None = None
    provider: str | None = None
    name_pool: tuple[str, ...] = ()
    acp_command: str | None = None
    respond_to: str | None = None
    respond_to_allowlist: tuple[str, ...] = ()
    parallelism: int | None = None
    description: str | None = None
    session_policy: str = DEFAULT_SESSION_POLICY

    def __post_init__(self) -> None:
        if self.respond_to is not None and self.respond_to not in RESPOND_TO_MODES:
            raise InvalidPersona(
                f"respond_to {self.respond_to!r} is not a recognized mode; use one of "
                + ", ".join(RESPOND_TO_MODES)
            )
        for i, pubkey in enumerate(self.respond_to_allowlist):
            if not _HEX64.fullmatch(pubkey):
                raise InvalidPersona(
                    f"respond_to_allowlist[{i}] must be a public key of 64 hex characters"
                )
        if self.respond_to == "allowlist" and not self.respond_to_allowlist:
            raise InvalidPersona(
                "respond_to 'allowlist' needs at least one public key in respond_to_allowlist"
            )
        if self.parallelism is not None and not 1 <= self.parallelism <= MAX_PARALLELISM:
            raise InvalidPersona(
                f"parallelism must be from 1 to {MAX_PARALLELISM}, not {self.parallelism}"
            )
        if self.description is not None and len(self.description) > MAX_DESCRIPTION_CHARS:
            raise InvalidPersona(
                f"description is {len(self.description)} characters; at most "
                f"{MAX_DESCRIPTION_CHARS} are allowed"
            )
        if self.session_policy not in SESSION_POLICIES:
            raise InvalidPersona(
                f"session_policy must be one of {', '.join(SESSION_POLICIES)}, "
                f"not {self.session_policy!r}"
            )

    def member(self, name: str) -> Any:
        """The value of the content member ``name``."""
        if name not in CONTENT_MEMBERS:
            raise KeyError(name)
        return getattr(self, name)

    def canonical_members(self) -> dict[str, Any]:
        """The members as buzz serialises its persona content (nulls, an empty list and
        the default ``session_policy`` left out), in its order: the engram body's."""
        members: dict[str, Any] = {}
        for name in CONTENT_MEMBERS:
            value = getattr(self, name)
            default = name == "session_policy" and value == DEFAULT_SESSION_POLICY
            left_out = value is None or value == () or default
            if left_out and name not in REQUIRED_FIELDS:
                continue
            members[name] = list(value) if isinstance(value, tuple) else value
        return members

    def canonical_json(self) -> str:
        """The bytes the current digest rule hashes (:data:`domain.digests.CURRENT`)."""
        return digests.CURRENT.canonical_json(self)

    def digest(self) -> str:
        """lower_hex(SHA-256) by the current rule: the persona's ``source_version``."""
        return digests.CURRENT.digest(self)

    def public_members(self) -> dict[str, Any]:
        """Every field, nulls included: what persona events store."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name in CONTENT_MEMBERS
            for value in (getattr(self, name),)
        }

    def public_json(self) -> str:
        """The ``content`` of a ``kind:30175`` event, serialised as buzz serialises it."""
        return strictjson.dumps_compact(self.canonical_members())

    @classmethod
    def from_members(cls, members: Mapping[str, Any], *, strict: bool = False) -> PersonaContent:
        """Build from already-parsed JSON members; unknown members are ignored.

        ``session_policy`` is read as buzz reads it (anything but ``"thread"`` is
        ``channel``) unless ``strict``, where a value other than ``"channel"``,
        ``"thread"`` or null is refused: an owner's typo must not pass silently.
        """
        for name in REQUIRED_FIELDS:
            if name not in members:
                raise InvalidPersona(f"persona is missing the required field {name!r}")
        values: dict[str, Any] = {
            name: _utf8_string(members[name], name) for name in REQUIRED_FIELDS
        }
        for name in (*OPTIONAL_FIELDS, "respond_to", "description"):
            value = members.get(name)
            values[name] = None if value is None else _utf8_string(value, name)
        values["name_pool"] = _strings(members.get("name_pool", []), "name_pool")
        values["respond_to_allowlist"] = _strings(
            members.get("respond_to_allowlist", []), "respond_to_allowlist"
        )
        parallelism = members.get("parallelism")
        if parallelism is not None and (type(parallelism) is not int):
            raise InvalidPersona(
                f"parallelism must be a whole number, not {_json_type(parallelism)}"
            )
        values["parallelism"] = parallelism
        policy = members.get("session_policy")
        if strict and policy is not None and policy not in SESSION_POLICIES:
            raise InvalidPersona(
                f"session_policy must be one of {', '.join(SESSION_POLICIES)} (or null), "
                f"not {policy!r}"
            )
        values["session_policy"] = session_policy_as_buzz_reads(policy)
        return cls(**values)


def session_policy_as_buzz_reads(value: Any) -> str:
    """A stored ``session_policy`` as buzz reads it: anything but ``"thread"`` is the
    default, ``channel``."""
    return "thread" if value == "thread" else DEFAULT_SESSION_POLICY


# Each member's value when absent, as :meth:`PersonaContent.public_members` stores it.
ABSENT_MEMBERS: Mapping[str, Any] = {
    name: [] if name in ("name_pool", "respond_to_allowlist") else None
    for name in CONTENT_MEMBERS
    if name not in REQUIRED_FIELDS
} | {"session_policy": DEFAULT_SESSION_POLICY}


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A persona event's stored content members, each read as
    :meth:`PersonaContent.from_members` reads it but unchecked, and left as stored
    (a list for a tuple): enough for a digest rule to tell which members it leaves
    out (:func:`domain.digests.aliases_of`) without building the content."""

    members: Mapping[str, Any]

    def member(self, name: str) -> Any:
        if name == "session_policy":
            return session_policy_as_buzz_reads(self.members.get(name))
        return self.members.get(name, ABSENT_MEMBERS.get(name))


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
    return PersonaDefinition(PersonaContent.from_members(members, strict=True), env_vars)


def _with_suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, DEFINITION_MEMBERS, n=1, cutoff=0.6)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def public_strings(content: PersonaContent, slug: str | None = None) -> list[tuple[str, str]]:
    """Every public string of a persona as (field, value): what a ``kind:30175`` shows.

    The slug is public too (the event's ``d`` tag) when given.
    """
    fields: list[tuple[str, str]] = [] if slug is None else [("slug", slug)]
    for name in ("display_name", "system_prompt", *OPTIONAL_FIELDS, "description"):
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
