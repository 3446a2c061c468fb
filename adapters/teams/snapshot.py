"""``buzz-team-snapshot`` v1 files (``.team.json``, ``.team.png``), read into a team.

The format is buzz's (``managed_agents/team_snapshot.rs``): a JSON object
``{format: "buzz-team-snapshot", version: 1, team: {name, description?,
instructions?}, members: [buzz-agent-snapshot v1, ...]}``; a ``.team.png``
carries the same JSON, base64-encoded, in a ``tEXt`` chunk with the keyword
``buzz_team_snapshot``. Checks are buzz's: the exact format and version, a
non-blank team name, at least one member, each member a ``buzz-agent-snapshot``
v1 with a non-blank ``definition.name``, and no memory entries under
``memory.level: none``. buzz's older flat team files and ZIP packs are refused
with buzz's own words.

Each member becomes a persona (:func:`read_snapshot`): its slug is
``definition.name`` as buzz makes a ``d`` tag of it, ``display_name`` is
``profile.displayName``, ``system_prompt``, ``runtime``, ``model``, ``provider``
and ``name_pool`` come from the definition, ``avatar_url`` from
``profile.avatarUrl``. An inline avatar (``avatarDataUrl``, up to 2 MB in
buzz) is left out and said so: a persona carries an avatar's URL, and an
engram could not hold the image. Memory entries are not personas and are left
out too. Snapshots carry no secrets, so the personas have no ``env_vars``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.teams.pack import InvalidPack
from domain.errors import InvalidInput
from domain.persona import PersonaContent, PersonaDefinition
from domain.slugs import buzz_d_tag
from domain.teams import TeamDefinition, team_id, team_id_from_name

FORMAT = "buzz-team-snapshot"
MEMBER_FORMAT = "buzz-agent-snapshot"
PNG_KEYWORD = b"buzz_team_snapshot"
MAX_JSON_BYTES = 25 * 1024 * 1024  # buzz's limit for .team.json
MAX_PNG_BYTES = 50 * 1024 * 1024  # and for .team.png
LEGACY_REFUSAL = (
    "Legacy team files are no longer supported. Export a buzz-team-snapshot v1 "
    ".team.json or .team.png instead."
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class SnapshotTeam:
    team: TeamDefinition
    personas: tuple[tuple[str, PersonaDefinition], ...]
    notes: tuple[str, ...]  # what was left out, per member


def read_snapshot(path: Path, ident: str | None = None) -> SnapshotTeam:
    """Read and check a snapshot file; the team id is ``ident``, else made from its name."""
    where = str(path)
    raw = _read(path)
    if raw.startswith(_PNG_SIGNATURE):
        raw = _png_text(raw, where)
    elif raw.startswith(b"PK\x03\x04"):
        raise InvalidPack(f"{where}: {LEGACY_REFUSAL}")
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPack(f"{where}: not a buzz-team-snapshot (not JSON: {exc})") from None
    if not isinstance(doc, dict):
        raise InvalidPack(f"{where}: not a buzz-team-snapshot (not a JSON object)")
    if "format" not in doc and doc.get("type") == "team":
        raise InvalidPack(f"{where}: {LEGACY_REFUSAL}")
    if doc.get("format") != FORMAT:
        raise InvalidPack(
            f"{where}: unsupported team snapshot format {doc.get('format')!r} (expected {FORMAT!r})"
        )
    if doc.get("version") != 1 or isinstance(doc.get("version"), bool):
        raise InvalidPack(
            f"{where}: unsupported {FORMAT} version {doc.get('version')!r}; 1 is read"
        )
    team = doc.get("team")
    if not isinstance(team, dict):
        raise InvalidPack(f"{where}: 'team' must be an object")
    name = _required(team, "name", f"{where}: team")
    description = _text(team, "description", f"{where}: team")
    instructions = _text(team, "instructions", f"{where}: team")
    members = doc.get("members")
    if not isinstance(members, list) or not members:
        raise InvalidPack(f"{where}: 'members' must be a non-empty array")
    personas: list[tuple[str, PersonaDefinition]] = []
    notes: list[str] = []
    seen: dict[str, int] = {}
    for index, member in enumerate(members):
        slug, definition, note = _member(member, f"{where}: members[{index}]")
        if slug in seen:
            raise InvalidPack(
                f"{where}: members[{index}] gets the persona slug {slug!r}, "
                f"as does members[{seen[slug]}]"
            )
        seen[slug] = index
        personas.append((slug, definition))
        if note:
            notes.append(f"{slug}: {note}")
    try:
        chosen = team_id(ident) if ident is not None else team_id_from_name(name)
        team_definition = TeamDefinition(
            team=chosen,
            name=name,
            description=description,
            instructions=instructions,
            personas=tuple(slug for slug, _ in personas),
            source=f"snapshot:{path.absolute()}",
        )
    except InvalidInput as exc:
        raise InvalidPack(f"{where}: {exc}") from None
    return SnapshotTeam(team_definition, tuple(personas), tuple(notes))


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_PNG_BYTES + 1)
    except OSError as exc:
        raise InvalidPack(f"{path}: {exc.strerror or exc}") from None
    limit = MAX_PNG_BYTES if raw.startswith(_PNG_SIGNATURE) else MAX_JSON_BYTES
    if len(raw) > limit:
        raise InvalidPack(f"{path}: is larger than {limit:,} bytes, buzz's limit for it")
    return raw


def _png_text(raw: bytes, where: str) -> bytes:
    """The base64-decoded ``buzz_team_snapshot`` tEXt chunk of a PNG."""
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(raw):
        (length,) = struct.unpack(">I", raw[offset : offset + 4])
        kind = raw[offset + 4 : offset + 8]
        data = raw[offset + 8 : offset + 8 + length]
        crc = raw[offset + 8 + length : offset + 12 + length]
        if len(data) != length or len(crc) != 4:
            raise InvalidPack(f"{where}: Invalid PNG: a chunk runs past the end of the file")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data) & 0xFFFFFFFF:
            raise InvalidPack(f"{where}: Invalid PNG: CRC error in a {kind!r} chunk")
        if kind == b"tEXt":
            keyword, _, text = data.partition(b"\x00")
            if keyword == PNG_KEYWORD:
                try:
                    return base64.b64decode(text.strip(), validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidPack(
                        f"{where}: Invalid base64 in PNG chunk {PNG_KEYWORD.decode()}"
                    ) from None
        if kind == b"IEND":
            break
        offset += 12 + length
    raise InvalidPack(f"{where}: PNG does not contain a buzz_team_snapshot tEXt chunk")


def _member(member: Any, where: str) -> tuple[str, PersonaDefinition, str | None]:
    if not isinstance(member, dict):
        raise InvalidPack(f"{where}: must be an object (a buzz-agent-snapshot)")
    if member.get("format") != MEMBER_FORMAT or member.get("version") != 1:
        raise InvalidPack(f"{where}: must be a {MEMBER_FORMAT} version 1")
    definition = _object(member, "definition", where)
    profile = _object(member, "profile", where)
    memory = _object(member, "memory", where)
    name = _required(definition, "name", f"{where}.definition")
    level = memory.get("level")
    if level not in ("none", "core", "everything"):
        raise InvalidPack(f"{where}.memory: level must be none, core or everything, not {level!r}")
    entries = memory.get("entries", [])
    if not isinstance(entries, list):
        raise InvalidPack(f"{where}.memory: entries must be an array")
    if level == "none" and entries:
        raise InvalidPack(f"{where}: has memory.level 'none' but non-empty entries")
    pool = definition.get("namePool", [])
    if not isinstance(pool, list) or not all(isinstance(n, str) for n in pool):
        raise InvalidPack(f"{where}.definition: namePool must be an array of strings")
    avatar = _text(profile, "avatarUrl", f"{where}.profile")
    try:
        content = PersonaContent(
            display_name=_required(profile, "displayName", f"{where}.profile"),
            system_prompt=_text(definition, "systemPrompt", f"{where}.definition") or "",
            avatar_url=avatar,
            runtime=_text(definition, "runtime", f"{where}.definition"),
            model=_text(definition, "model", f"{where}.definition"),
            provider=_text(definition, "provider", f"{where}.definition"),
            name_pool=tuple(pool),
        )
    except InvalidInput as exc:  # pragma: no cover (members are checked above)
        raise InvalidPack(f"{where}: {exc}") from None
    left_out = []
    if profile.get("avatarDataUrl") and avatar is None:
        left_out.append("its inline avatar (a persona carries an avatar URL)")
    if entries:
        left_out.append(f"{len(entries)} memory entr{'y' if len(entries) == 1 else 'ies'}")
    note = "left out " + " and ".join(left_out) if left_out else None
    return buzz_d_tag(name), PersonaDefinition(content, {}), note


def _object(members: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = members.get(key)
    if not isinstance(value, dict):
        raise InvalidPack(f"{where}: {key!r} must be an object")
    return value


def _text(members: dict[str, Any], key: str, where: str) -> str | None:
    value = members.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidPack(f"{where}: {key!r} must be a string")
    return value


def _required(members: dict[str, Any], key: str, where: str) -> str:
    value = _text(members, key, where)
    if value is None:
        raise InvalidPack(f"{where}: {key!r} is required")
    if not value.strip():
        raise InvalidPack(f"{where}: {key!r} must not be blank")
    return value
