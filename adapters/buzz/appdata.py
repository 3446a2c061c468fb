"""The buzz desktop's app-data directory, read as it has been laid out in every era.

Where it lives (reference §4.1): ``{dataDir}/xyz.block.buzz.app``, ``dataDir``
being ``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application
Support`` on macOS and ``%APPDATA%`` on Windows. Agent data is under
``agents/``:

- seed era: ``personas.json`` (persona records) beside ``managed-agents.json``
  (agents, each with its ``private_key_nsec``) and ``teams.json``;
- since buzz folded the personas into the agent store (#1623): one
  ``managed-agents.json`` where a record whose ``pubkey`` is ``""`` is a persona
  *definition* (its old ``id`` now its ``slug``) and every other record an
  agent, whose key is inline or, since #1172, in the OS keyring
  (:mod:`adapters.buzz.keyring`). A ``personas.json`` left beside such a store
  (a fold that stopped half way) adds the personas whose id the store lacks,
  as buzz's own fold does.

:func:`read_app_data` reads and checks every record before anything is
imported: a record that is not what buzz writes raises :class:`BuzzDataError`
naming the file and the record, never a secret. Keys are parsed here, at the
edge, and held only as :class:`adapters.nostr.keys.SecretKey` (whose ``repr``
hides them).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.buzz import APP_IDENTIFIER
from adapters.errors import PermanentAdapterError
from adapters.nostr.errors import InvalidKey
from adapters.nostr.keys import PublicKey, SecretKey, verify_schnorr
from domain import strictjson
from domain.slugs import buzz_d_tag

AGENTS_DIR = "agents"
PERSONAS_FILE = "personas.json"
AGENTS_FILE = "managed-agents.json"
TEAMS_FILE = "teams.json"
# A bound so a wrong file (a device, a log) is never read whole; far above what
# buzz writes (data-URI avatars are the bulk of it).
MAX_FILE_BYTES = 256 * 1024 * 1024
ERA_SEED = "seed"  # personas.json beside the agent store
ERA_UNIFIED = "unified"  # personas folded into managed-agents.json

# Persona members as buzz stores them -> the member fleetsync's persona content
# knows them by. Seed-era persona records and the definitions of today's store
# share the content members; the behaviour defaults of a definition are stored
# under ``definition_*`` names (the instance's own ``respond_to`` and
# ``parallelism`` on the same record are an agent's settings, not the persona's).
_SEED_MEMBERS = {
    "display_name": "display_name",
    "avatar_url": "avatar_url",
    "system_prompt": "system_prompt",
    "runtime": "runtime",
    "model": "model",
    "provider": "provider",
    "name_pool": "name_pool",
    "env_vars": "env_vars",
    # personas.json written between the seed and the fold carried these too
    "respond_to": "respond_to",
    "respond_to_allowlist": "respond_to_allowlist",
    "parallelism": "parallelism",
    "description": "description",
    "acp_command": "acp_command",
    "session_policy": "session_policy",
}
_DEFINITION_MEMBERS = {
    "avatar_url": "avatar_url",
    "runtime": "runtime",
    "model": "model",
    "provider": "provider",
    "name_pool": "name_pool",
    "env_vars": "env_vars",
    "definition_respond_to": "respond_to",
    "definition_respond_to_allowlist": "respond_to_allowlist",
    "definition_parallelism": "parallelism",
    # Later buzz's definitions (reference §4.3 "L"); their store keys are not
    # confirmed: read under the names the persona event uses, when present.
    "description": "description",
    "session_policy": "session_policy",
}
_STRING_MEMBERS = frozenset(
    {
        "display_name",
        "avatar_url",
        "system_prompt",
        "runtime",
        "model",
        "provider",
        "respond_to",
        "description",
        "acp_command",
        "session_policy",
    }
)
_LIST_MEMBERS = frozenset({"name_pool", "respond_to_allowlist"})


class BuzzDataError(PermanentAdapterError):
    """A buzz app-data file or record is not what buzz writes; nothing is imported."""


def default_app_data_dir(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """The app-data directory of a release build of buzz, as Tauri places it."""
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    user_home = Path.home() if home is None else home
    if system == "darwin":
        base = user_home / "Library" / "Application Support"
    elif system.startswith(("win32", "cygwin")):
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else user_home / "AppData" / "Roaming"
    else:
        xdg = env.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else user_home / ".local" / "share"
    return base / APP_IDENTIFIER


@dataclass(frozen=True, slots=True)
class BuzzPersona:
    """A persona record (seed era) or a definition (since the fold)."""

    where: str  # "FILE: record N (id 'x')", for messages
    id: str  # buzz's id: a UUID or ``builtin:...``; agents and teams link to it
    slug: str  # the d tag buzz publishes it under, fleetsync's persona slug
    members: Mapping[str, Any] = field(repr=False)  # fleetsync member name -> value
    builtin: bool = False
    active: bool = True
    team: str | None = None
    file: str = ""  # the file it was read from


@dataclass(frozen=True, slots=True)
class BuzzAgent:
    """An agent record: its key is inline (``key``) or in the keyring (``key`` None)."""

    where: str
    pubkey: str  # lower hex
    name: str
    persona_id: str | None
    key: SecretKey | None = field(repr=False)
    auth_tag: tuple[str, ...] | None  # NIP-OA ["auth", owner, conditions, sig], as stored


@dataclass(frozen=True, slots=True)
class BuzzTeam:
    where: str
    id: str
    name: str
    persona_ids: tuple[str, ...]
    builtin: bool
    description: str | None = None
    instructions: str | None = None  # since buzz detached directory teams (#1846)
    file: str = ""  # the teams.json it was read from


@dataclass(frozen=True, slots=True)
class BuzzAppData:
    """Everything read from one buzz app-data directory, checked."""

    root: Path
    era: str
    personas: tuple[BuzzPersona, ...]
    agents: tuple[BuzzAgent, ...]
    teams: tuple[BuzzTeam, ...]
    files: tuple[Path, ...]  # the files read


def read_app_data(root: Path) -> BuzzAppData:
    """Read and check every buzz record under ``root`` (an app-data directory)."""
    agents_dir = root / AGENTS_DIR
    personas_path = agents_dir / PERSONAS_FILE
    agents_path = agents_dir / AGENTS_FILE
    teams_path = agents_dir / TEAMS_FILE
    if not root.is_dir():
        raise BuzzDataError(f"{root} is not a directory: give buzz's app-data directory")
    if not personas_path.exists() and not agents_path.exists():
        raise BuzzDataError(
            f"{root} holds no buzz agent data (neither {AGENTS_DIR}/{AGENTS_FILE} nor "
            f"{AGENTS_DIR}/{PERSONAS_FILE}); give buzz's app-data directory "
            f"(its name ends in {APP_IDENTIFIER})"
        )
    files: list[Path] = []
    definitions: list[BuzzPersona] = []
    agents: list[BuzzAgent] = []
    if agents_path.exists():
        files.append(agents_path)
        for index, record in _records(agents_path):
            pubkey = record.get("pubkey")
            if pubkey == "":
                definitions.append(_definition(agents_path, index, record))
            else:
                agents.append(_agent(agents_path, index, record))
    personas = list(definitions)
    era = ERA_UNIFIED
    if personas_path.exists():
        era = ERA_SEED if not definitions else ERA_UNIFIED
        files.append(personas_path)
        known = {p.id for p in definitions}
        personas += [
            p
            for p in (_seed_persona(personas_path, i, r) for i, r in _records(personas_path))
            if p.id not in known
        ]
    teams: list[BuzzTeam] = []
    if teams_path.exists():
        files.append(teams_path)
        teams = [_team(teams_path, i, r) for i, r in _records(teams_path)]
    _check_unique(personas, agents)
    return BuzzAppData(root, era, tuple(personas), tuple(agents), tuple(teams), tuple(files))


# -- files and records ----------------------------------------------------------------


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BuzzDataError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BuzzDataError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes, not a buzz file")
    try:
        value = strictjson.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BuzzDataError(f"{path}: not UTF-8 text") from None
    except strictjson.StrictJSONError as exc:
        raise BuzzDataError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(value, list):
        raise BuzzDataError(f"{path}: expected a JSON array of records, not {_kind(value)}")
    out = []
    for index, record in enumerate(value, 1):
        if not isinstance(record, dict):
            raise BuzzDataError(f"{path}: record {index} is {_kind(record)}, not an object")
        out.append((index, record))
    return out


def _where(path: Path, index: int, label: str | None) -> str:
    return f"{path}: record {index}" + (f" ({label})" if label else "")


def _label(record: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value:
            shown = value if len(value) <= 64 else value[:64] + "..."
            return f"{key} {shown!r}"
    return None


def _seed_persona(path: Path, index: int, record: dict[str, Any]) -> BuzzPersona:
    where = _where(path, index, _label(record, "id", "display_name"))
    ident = _required_str(record, "id", where)
    members = _members(record, _SEED_MEMBERS, where)
    _required_str(record, "display_name", where)
    _required_str(record, "system_prompt", where)
    return _persona(path, record, where, ident, members)


def _definition(path: Path, index: int, record: dict[str, Any]) -> BuzzPersona:
    where = _where(path, index, _label(record, "slug", "name"))
    ident = _required_str(record, "slug", where)
    name = _required_str(record, "name", where)
    members = _members(record, _DEFINITION_MEMBERS, where)
    # to_definition_view (reference §4.3): display_name ?? name, system_prompt ?? "".
    display = _optional_str(record, "display_name", where)
    prompt = _optional_str(record, "system_prompt", where)
    members = {
        "display_name": display if display is not None else name,
        "system_prompt": prompt if prompt is not None else "",
        **members,
    }
    return _persona(path, record, where, ident, members)


def _persona(
    path: Path, record: dict[str, Any], where: str, ident: str, members: dict[str, Any]
) -> BuzzPersona:
    team = _optional_str(record, "source_team", where) or _optional_str(
        record, "source_pack", where
    )
    team_slug = _optional_str(record, "source_team_persona_slug", where) or _optional_str(
        record, "source_pack_persona_slug", where
    )
    # persona_d_tag (reference §4.5): the team slug, else the id, normalised.
    slug = buzz_d_tag(team_slug or ident)
    return BuzzPersona(
        where,
        ident,
        slug,
        members,
        builtin=_bool(record, "is_builtin", where, default=False),
        active=_bool(record, "is_active", where, default=True),
        team=team,
        file=str(path),
    )


def _members(record: dict[str, Any], names: Mapping[str, str], where: str) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for stored, member in names.items():
        value = record.get(stored)
        if value is None:
            continue  # null is the same as absent
        if member in _STRING_MEMBERS:
            if not isinstance(value, str):
                raise BuzzDataError(f"{where}: {stored} must be a string, not {_kind(value)}")
        elif member in _LIST_MEMBERS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BuzzDataError(f"{where}: {stored} must be an array of strings")
            if not value:
                continue  # empty is omitted, as buzz omits it
        elif member == "parallelism":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BuzzDataError(f"{where}: {stored} must be a whole number, not {_kind(value)}")
        elif member == "env_vars":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                # Never the values in a message: they are secrets.
                raise BuzzDataError(f"{where}: {stored} must be an object of strings")
            if not value:
                continue
        members[member] = value
    return members


def _agent(path: Path, index: int, record: dict[str, Any]) -> BuzzAgent:
    where = _where(path, index, _label(record, "name", "pubkey"))
    raw_pubkey = _required_str(record, "pubkey", where)
    try:
        pubkey = PublicKey.from_hex(raw_pubkey).hex
    except InvalidKey:
        raise BuzzDataError(f"{where}: pubkey is not 64 hex characters of a public key") from None
    name = _required_str(record, "name", where)
    persona_id = _optional_str(record, "persona_id", where) or None
    nsec = _optional_str(record, "private_key_nsec", where)
    key = None
    if nsec:
        try:
            key = SecretKey.from_nsec(nsec)
        except InvalidKey:
            # The value is a secret, even when damaged: never in the message.
            raise BuzzDataError(f"{where}: private_key_nsec is not a valid nsec") from None
        if key.public_key.hex != pubkey:
            raise BuzzDataError(f"{where}: private_key_nsec is not the key of pubkey {pubkey}")
    auth = _optional_str(record, "auth_tag", where)
    return BuzzAgent(where, pubkey, name, persona_id, key, _auth_tag(auth, where, pubkey))


def _auth_tag(text: str | None, where: str, pubkey: str) -> tuple[str, ...] | None:
    """The stored NIP-OA tag: its shape, and its owner's signature over this agent."""
    if not text:
        return None
    try:
        tag = strictjson.loads(text)
    except strictjson.StrictJSONError as exc:
        raise BuzzDataError(f"{where}: auth_tag is not JSON: {exc}") from None
    if (
        not isinstance(tag, list)
        or len(tag) != 4
        or not all(isinstance(t, str) for t in tag)
        or tag[0] != "auth"
    ):
        raise BuzzDataError(
            f'{where}: auth_tag must be a NIP-OA tag ["auth", owner, conditions, signature]'
        )
    if tag[1] == pubkey:
        raise BuzzDataError(f"{where}: auth_tag is the agent attesting itself")
    owner, conditions, signature = tag[1], tag[2], tag[3]
    if not (_is_lower_hex(owner, 64) and _is_lower_hex(signature, 128)):
        raise BuzzDataError(
            f"{where}: auth_tag needs a 64 and a 128 lowercase hex owner key and signature"
        )
    # NIP-OA: the owner signs SHA-256("nostr:agent-auth:<agent hex>:<conditions>").
    digest = hashlib.sha256(f"nostr:agent-auth:{pubkey}:{conditions}".encode()).digest()
    if not verify_schnorr(bytes.fromhex(owner), digest, bytes.fromhex(signature)):
        raise BuzzDataError(f"{where}: auth_tag's signature does not verify for this agent")
    return tuple(tag)


def _is_lower_hex(text: str, length: int) -> bool:
    return len(text) == length and all(ch in "0123456789abcdef" for ch in text)


def _team(path: Path, index: int, record: dict[str, Any]) -> BuzzTeam:
    where = _where(path, index, _label(record, "id", "name"))
    ident = _required_str(record, "id", where)
    name = _required_str(record, "name", where)
    ids = record.get("persona_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BuzzDataError(f"{where}: persona_ids must be an array of persona ids")
    return BuzzTeam(
        where,
        ident,
        name,
        tuple(ids),
        _bool(record, "is_builtin", where, default=False),
        _optional_str(record, "description", where),
        _optional_str(record, "instructions", where),
        str(path),
    )


def _check_unique(personas: list[BuzzPersona], agents: list[BuzzAgent]) -> None:
    by_slug: dict[str, BuzzPersona] = {}
    for persona in personas:
        other = by_slug.get(persona.slug)
        if other is not None:
            raise BuzzDataError(
                f"{persona.where}: its slug {persona.slug!r} is also that of {other.where}; "
                "buzz publishes both under one d tag, so they cannot both be imported: "
                "rename one in buzz first"
            )
        by_slug[persona.slug] = persona
    by_pubkey: dict[str, BuzzAgent] = {}
    for agent in agents:
        twin = by_pubkey.get(agent.pubkey)
        if twin is not None:
            raise BuzzDataError(f"{agent.where}: the same pubkey as {twin.where}")
        by_pubkey[agent.pubkey] = agent


# -- values -----------------------------------------------------------------------------


def _required_str(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if isinstance(value, str) and (value or key == "system_prompt"):
        return value
    found = "nothing" if value is None else "an empty string" if value == "" else _kind(value)
    raise BuzzDataError(f"{where}: {key} is required (a string), found {found}")


def _optional_str(record: Mapping[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BuzzDataError(f"{where}: {key} must be a string or null, not {_kind(value)}")


def _bool(record: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = record.get(key, default)
    if not isinstance(value, bool):
        raise BuzzDataError(f"{where}: {key} must be true or false, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
