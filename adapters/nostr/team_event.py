"""buzz's ``kind:30176`` team events: checking them and choosing the head per team.

As buzz writes them (``managed_agents/team_events.rs``): signed by the owner,
addressed ``(owner, 30176, d)`` with ``d`` the team id *as is* (a UUID, or
``builtin-team:welcome``), tags ``[["d", id]]`` only, and compact JSON content
``{"name", "description"?, "instructions": string|null, "persona_ids": [...]}``.
``persona_ids`` holds buzz's local persona ids, not ``d`` tags. An event without
``instructions`` or ``persona_ids`` comes from an older client: a reader keeps
its own values for what is absent (``None`` here).

:func:`select_team_heads` keeps, per ``d`` tag, the newest event (greatest
``created_at``, ties to the lowest id) among those whose envelope and signature
are valid; if that newest event's content is unusable, the team is reported
(:attr:`TeamHeads.unusable`) and not replaced by an older version.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.nostr.event import Event, InvalidEvent, why_invalid
from adapters.nostr.keys import PublicKey
from domain.deletions import AddressVersion

TEAM_KIND = 30176


@dataclass(frozen=True, slots=True)
class TeamContent:
    name: str
    description: str | None
    instructions: str | None  # None: absent (an older client) or null
    instructions_given: bool
    persona_ids: tuple[str, ...] | None  # None: absent (an older client)


@dataclass(frozen=True, slots=True)
class TeamHead:
    team: str  # the d tag, as is
    event: Event
    content: TeamContent


@dataclass(frozen=True, slots=True)
class SetAside:
    team: str | None
    event_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class TeamHeads:
    heads: tuple[TeamHead, ...]
    unusable: tuple[SetAside, ...]  # newest events whose content cannot be read
    discarded: tuple[SetAside, ...]  # events with a bad envelope or signature


def parse_team_content(text: str) -> TeamContent:
    """The content of a team event; raises :class:`ValueError` saying what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"content is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("content is not a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("content has no team name")
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise ValueError("description must be a string")
    instructions = doc.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ValueError("instructions must be a string or null")
    ids = doc.get("persona_ids")
    if ids is not None and (
        not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)
    ):
        raise ValueError("persona_ids must be an array of persona ids")
    return TeamContent(
        name,
        description,
        instructions,
        "instructions" in doc,
        tuple(ids) if ids is not None else None,
    )


def _envelope(event: Event, owner: PublicKey) -> str:
    if event.kind != TEAM_KIND:
        raise ValueError(f"kind is {event.kind}, not {TEAM_KIND}")
    if event.pubkey != owner.hex:
        raise ValueError(f"authored by {event.pubkey}, not by the owner")
    d_tags = [tag for tag in event.tags if tag and tag[0] == "d"]
    if len(d_tags) != 1 or len(d_tags[0]) < 2 or not d_tags[0][1]:
        raise ValueError("must have exactly one non-empty d tag")
    try:
        reason = why_invalid(event)
    except (InvalidEvent, ValueError) as exc:
        raise ValueError(f"cannot be checked: {exc}") from None
    if reason is not None:
        raise ValueError(f"id or signature does not verify ({reason.value})")
    return d_tags[0][1]


def team_versions(events: Iterable[Event], owner: PublicKey) -> list[AddressVersion]:
    """Each of ``events`` whose envelope and signature are valid, by its address."""
    versions: list[AddressVersion] = []
    for event in events:
        try:
            team = _envelope(event, owner)
        except ValueError:
            continue
        versions.append(AddressVersion(team, event.id, event.created_at))
    return versions


def select_team_heads(events: Iterable[Event], owner: PublicKey) -> TeamHeads:
    """The head of each team address among ``events`` (see the module docstring)."""
    by_team: dict[str, dict[str, Event]] = defaultdict(dict)
    discarded: list[SetAside] = []
    for event in events:
        try:
            team = _envelope(event, owner)
        except ValueError as exc:
            discarded.append(SetAside(None, event.id, str(exc)))
            continue
        by_team[team][event.id] = event
    heads: list[TeamHead] = []
    unusable: list[SetAside] = []
    for team, found in sorted(by_team.items()):
        newest = min(found.values(), key=lambda e: (-e.created_at, e.id))
        try:
            heads.append(TeamHead(team, newest, parse_team_content(newest.content)))
        except ValueError as exc:
            unusable.append(
                SetAside(team, newest.id, f"the newest event is unusable ({exc}); left as it is")
            )
    return TeamHeads(tuple(heads), tuple(unusable), tuple(discarded))
