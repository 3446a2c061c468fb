"""The rules buzz has used to digest a persona, as a registry: which members, in which order.

A persona's digest (an engram's ``provenance.source_version``) is
``lower_hex(SHA-256(compact JSON of some of its members))``. buzz has changed
which members, their order and when one is left out (buzz-interop.md §5), so the
same content has had several digests:

- ``seed``: the seed's rule (fleet-update-behaviour.md), which fleetsync used
  until it knew the others: ``display_name, avatar_url?, system_prompt,
  runtime?, model?, provider?, name_pool``;
- ``era-b``: buzz at B, NIP-AP order plus ``respond_to``,
  ``respond_to_allowlist`` and ``parallelism``;
- ``era-l``: buzz's current rule, which adds ``acp_command`` and
  ``session_policy`` (left out at its default, ``channel``); ``description``
  is carried but never hashed.

New digests are made with :data:`CURRENT`. A digest made by an earlier rule of
the *same* content names the same persona version (:func:`names_version`), so
upgrading fleetsync, or taking over engrams buzz wrote, republishes nothing.
Which rule made a digest travels with it (provenance ``digest_rule``, persona
events' ``digest_rule``); a digest recorded before rules were named was made by
``seed``. A later buzz rule is one more :class:`DigestRule` in :data:`RULES`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from domain import strictjson

if TYPE_CHECKING:
    from domain.persona import PersonaContent


class Carries(Protocol):
    """Content as a rule reads it, a member's value by name: a :class:`PersonaContent`,
    or a persona event's stored members read without building one
    (:class:`domain.persona.StoredContent`)."""

    def member(self, name: str) -> Any: ...


def _never(_: Any) -> bool:
    return False


def _if_none(value: Any) -> bool:
    return value is None


def _if_empty(value: Any) -> bool:
    return not value


def _if_channel(value: Any) -> bool:
    return isinstance(value, str) and value == "channel"


@dataclass(frozen=True, slots=True)
class Member:
    """One hashed member: its name, and when it is left out (serde's ``skip_serializing_if``)."""

    name: str
    omitted: Callable[[Any], bool] = _if_none


@dataclass(frozen=True, slots=True)
class DigestRule:
    """One era's canonical form: the hashed members in order."""

    name: str
    members: tuple[Member, ...]

    def canonical_members(self, content: PersonaContent) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for member in self.members:
            value = content.member(member.name)
            if not member.omitted(value):
                out[member.name] = list(value) if isinstance(value, tuple) else value
        return out

    def canonical_json(self, content: PersonaContent) -> str:
        return strictjson.dumps_compact(self.canonical_members(content))

    def digest(self, content: PersonaContent) -> str:
        return hashlib.sha256(self.canonical_json(content).encode("utf-8")).hexdigest()


_ALWAYS = _never
SEED = DigestRule(
    "seed",
    (
        Member("display_name", _ALWAYS),
        Member("avatar_url"),
        Member("system_prompt", _ALWAYS),
        Member("runtime"),
        Member("model"),
        Member("provider"),
        Member("name_pool", _if_empty),
    ),
)
ERA_B = DigestRule(
    "era-b",
    (
        Member("display_name", _ALWAYS),
        Member("system_prompt", _ALWAYS),
        Member("avatar_url"),
        Member("runtime"),
        Member("model"),
        Member("provider"),
        Member("name_pool", _if_empty),
        Member("respond_to"),
        Member("respond_to_allowlist", _if_empty),
        Member("parallelism"),
    ),
)
ERA_L = DigestRule(
    "era-l",
    (
        Member("display_name", _ALWAYS),
        Member("system_prompt", _ALWAYS),
        Member("acp_command"),
        Member("avatar_url"),
        Member("runtime"),
        Member("model"),
        Member("provider"),
        Member("name_pool", _if_empty),
        Member("respond_to"),
        Member("respond_to_allowlist", _if_empty),
        Member("parallelism"),
        # description sits here in buzz's struct; it is cleared before hashing.
        Member("session_policy", _if_channel),
    ),
)
RULES: Mapping[str, DigestRule] = {rule.name: rule for rule in (SEED, ERA_B, ERA_L)}
CURRENT = ERA_L
# What a digest recorded without a rule's name was made by: the only rule before names.
UNNAMED = SEED.name


def rule(name: str) -> DigestRule | None:
    """The registered rule of that name; ``None`` for one this fleetsync does not know."""
    return RULES.get(name)


def expresses(each: DigestRule, content: Carries) -> bool:
    """Whether ``each`` could have digested ``content``: every member it does not hash
    is at the value :data:`CURRENT` leaves out. An earlier rule's digest of content
    using a later member says nothing about that member, so it names no version."""
    hashed = {member.name for member in each.members}
    return all(
        member.omitted(content.member(member.name))
        for member in CURRENT.members
        if member.name not in hashed
    )


def digests_of(content: PersonaContent) -> tuple[str, ...]:
    """The content's digest by every registered rule that could have made one
    (:func:`expresses`), :data:`CURRENT`'s first."""
    out = [CURRENT.digest(content)]
    for each in RULES.values():
        if each is not CURRENT and expresses(each, content):
            found = each.digest(content)
            if found not in out:
                out.append(found)
    return tuple(out)


def names_version(digest: str, rule_name: str, content: PersonaContent) -> bool:
    """Whether ``digest``, made by the rule ``rule_name``, is a digest of ``content``."""
    found = rule(rule_name)
    return found is not None and expresses(found, content) and found.digest(content) == digest


# For aliases_of, each (member, when it is left out) of any rule once, and each rule's
# members as indexes into them: a content's members are read, and judged, once for all.
_CHECKS = tuple(dict.fromkeys((m.name, m.omitted) for each in RULES.values() for m in each.members))
_NAMES = tuple(name for name, _ in _CHECKS)
_INDEX = {check: i for i, check in enumerate(_CHECKS)}
# Each rule's hashed members; and those of CURRENT's it does not hash, all of which
# must be left out for the rule to express the content (expresses).
_HASHED = {
    each.name: tuple(_INDEX[m.name, m.omitted] for m in each.members) for each in RULES.values()
}
_UNHASHED = {
    each.name: tuple(
        _INDEX[m.name, m.omitted]
        for m in CURRENT.members
        if m.name not in {n.name for n in each.members}
    )
    for each in RULES.values()
}


def aliases_of(
    content: Carries, digest: str, made_by: str, build: Callable[[], PersonaContent]
) -> tuple[str, ...]:
    """``content``'s other digests than ``digest``, which the rule ``made_by`` made of it:
    those of :func:`digests_of` (``build()``, the content itself) but ``digest``, in
    its order. Which rules give distinct digests is told by the names they hash,
    in their order, without serialising anything: rules that hash the same names
    hash the same JSON text (each member's value is the content's), so make the
    same digest, and other names, or the same in another order, make other text,
    so (SHA-256) another digest. Only distinct digests are computed: none where
    every rule that could have made one hashes the same names (content without an
    avatar or a later member, made by the current rule, say), and then no
    PersonaContent is built either.

    ``digest`` is trusted to be ``made_by``'s digest of the content, as persona events
    record it (``digest_rule``; the application digests what it records by the rule
    it names). Even a rule that could not have made it (:func:`expresses`) hashes
    other names than every rule that could, so its digest is none of theirs. A rule
    this fleetsync does not know says nothing: then every digest is compared.
    """
    made = _HASHED.get(made_by)
    if made is None:
        return tuple(found for found in digests_of(build()) if found != digest)
    kept = [not omitted(content.member(name)) for name, omitted in _CHECKS]
    made_names = tuple(_NAMES[i] for i in made if kept[i])
    seen = [tuple(_NAMES[i] for i in _HASHED[CURRENT.name] if kept[i])]
    others = [] if seen[0] == made_names else [CURRENT]
    for each in RULES.values():
        if each is not CURRENT and not any(kept[i] for i in _UNHASHED[each.name]):
            names = tuple(_NAMES[i] for i in _HASHED[each.name] if kept[i])
            if names not in seen:
                seen.append(names)
                if names != made_names:
                    others.append(each)
    if not others:
        return ()
    built = build()
    return tuple(each.digest(built) for each in others)
