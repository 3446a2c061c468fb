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
from typing import TYPE_CHECKING, Any

from domain import strictjson

if TYPE_CHECKING:
    from domain.persona import PersonaContent


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


def expresses(each: DigestRule, content: PersonaContent) -> bool:
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
