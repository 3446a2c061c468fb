"""Synthetic buzz desktop app-data trees, built from the reference's field lists (§4).

Records are written as buzz's serde structs write them: members in the
declared order, ``null`` where buzz writes ``null``, optional members left
out as ``skip_serializing_if`` leaves them out, files pretty-printed (two
spaces). Two eras:

- :func:`write_seed_tree`: ``agents/personas.json``, ``agents/managed-agents.json``
  (every agent with its ``private_key_nsec``) and ``agents/teams.json``
  (reference §4.2, buzz at the seed);
- :func:`write_unified_tree`: one ``agents/managed-agents.json`` whose records
  with ``pubkey == ""`` are persona definitions (§4.3, buzz since #1623),
  agents' keys omitted when they are in the keyring (§4.4), and
  ``personas.json.bak`` left by the fold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.nostr.keys import SecretKey
from tests.support.buzz_relay import mint_oa_tag

STAMP = "2026-06-01T12:00:00Z"
FIZZ_AVATAR = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"


@dataclass
class BuzzPersonaSpec:
    """One persona, whatever the era writes it as."""

    id: str
    display_name: str
    system_prompt: str
    avatar_url: str | None = None
    runtime: str | None = None
    model: str | None = None
    provider: str | None = None
    name_pool: list[str] = field(default_factory=list)
    is_builtin: bool = False
    is_active: bool = True
    source_team: str | None = None
    source_team_persona_slug: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    # the behaviour defaults of a definition (unified era only)
    respond_to: str | None = None
    respond_to_allowlist: list[str] = field(default_factory=list)
    parallelism: int | None = None


@dataclass
class BuzzAgentSpec:
    key: SecretKey
    name: str
    persona_id: str | None
    owner: SecretKey | None = None  # mints its NIP-OA auth_tag when given
    key_inline: bool = True  # False: the key is in the keyring (unified era)

    @property
    def pubkey(self) -> str:
        return self.key.public_key.hex

    def auth_tag(self) -> str | None:
        if self.owner is None:
            return None
        return json.dumps(mint_oa_tag(self.owner, self.pubkey), separators=(",", ":"))


def fizz() -> BuzzPersonaSpec:
    """The built-in persona as buzz regenerates it: a data-URI avatar and a name pool."""
    return BuzzPersonaSpec(
        id="builtin:fizz",
        display_name="Fizz",
        system_prompt="You are Fizz, buzz's friendly built-in agent.",
        avatar_url=FIZZ_AVATAR,
        name_pool=["Fizz", "Fizzy"],
        is_builtin=True,
    )


# -- seed era (reference §4.2) -----------------------------------------------------------


def seed_persona_record(p: BuzzPersonaSpec) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": p.id,
        "display_name": p.display_name,
        "avatar_url": p.avatar_url,
        "system_prompt": p.system_prompt,
    }
    for name in ("runtime", "model", "provider"):
        value = getattr(p, name)
        if value is not None:
            record[name] = value
    if p.name_pool:
        record["name_pool"] = list(p.name_pool)
    record["is_builtin"] = p.is_builtin
    record["is_active"] = p.is_active
    if p.source_team is not None:
        record["source_team"] = p.source_team
    if p.source_team_persona_slug is not None:
        record["source_team_persona_slug"] = p.source_team_persona_slug
    if p.env_vars:
        record["env_vars"] = dict(sorted(p.env_vars.items()))
    record["created_at"] = STAMP
    record["updated_at"] = STAMP
    return record


def seed_agent_record(a: BuzzAgentSpec) -> dict[str, Any]:
    return {
        "pubkey": a.pubkey,
        "name": a.name,
        "persona_id": a.persona_id,
        "private_key_nsec": a.key.nsec(),
        "auth_tag": a.auth_tag(),
        "relay_url": "wss://relay.buzz.example",
        "avatar_url": None,
        "acp_command": "buzz-acp",
        "agent_command": "goose",
        "agent_args": ["acp"],
        "mcp_command": "buzz-mcp",
        "turn_timeout_seconds": 300,
        "idle_timeout_seconds": None,
        "max_turn_duration_seconds": None,
        "parallelism": 24,
        "system_prompt": None,
        "model": None,
        "mcp_toolsets": None,
        "start_on_app_launch": True,
        "runtime_pid": None,
        "backend": {"type": "local"},
        "backend_agent_id": None,
        "provider_binary_path": None,
        "created_at": STAMP,
        "updated_at": STAMP,
        "last_started_at": None,
        "last_stopped_at": None,
        "last_exit_code": None,
        "last_error": None,
        "respond_to": "owner-only",
        "respond_to_allowlist": [],
    }


def team_record(
    team_id: str, name: str, persona_ids: Sequence[str], *, builtin: bool = False
) -> dict[str, Any]:
    return {
        "id": team_id,
        "name": name,
        "description": None,
        "persona_ids": list(persona_ids),
        "is_builtin": builtin,
        "is_symlink": False,
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def write_seed_tree(
    root: Path,
    personas: Sequence[BuzzPersonaSpec],
    agents: Sequence[BuzzAgentSpec],
    teams: Sequence[Mapping[str, Any]] = (),
) -> Path:
    agents_dir = root / "agents"
    agents_dir.mkdir(parents=True, exist_ok=True)
    _write(agents_dir / "personas.json", [seed_persona_record(p) for p in personas])
    _write(agents_dir / "managed-agents.json", [seed_agent_record(a) for a in agents])
    _write(agents_dir / "teams.json", list(teams))
    return root


# -- unified era (reference §4.3) --------------------------------------------------------


def _record_base(pubkey: str, name: str, persona_id: str | None) -> dict[str, Any]:
    return {"pubkey": pubkey, "name": name, "persona_id": persona_id}


def definition_record(p: BuzzPersonaSpec) -> dict[str, Any]:
    record = _record_base("", p.display_name, None)
    record.update(
        {
            "auth_tag": None,
            "relay_url": "",
            "avatar_url": p.avatar_url,
            "acp_command": "buzz-acp",
            "agent_command": "",
            "agent_command_override": None,
            "agent_args": [],
            "mcp_command": "",
            "turn_timeout_seconds": 300,
            "idle_timeout_seconds": None,
            "max_turn_duration_seconds": None,
            "parallelism": 10,
            "system_prompt": p.system_prompt,
            "model": p.model,
            "provider": p.provider,
            "persona_source_version": None,
        }
    )
    if p.env_vars:
        record["env_vars"] = dict(sorted(p.env_vars.items()))
    record.update(_record_tail())
    record["display_name"] = p.display_name
    record["slug"] = p.id
    if p.runtime is not None:
        record["runtime"] = p.runtime
    if p.name_pool:
        record["name_pool"] = list(p.name_pool)
    record["is_builtin"] = p.is_builtin
    record["is_active"] = p.is_active
    if p.source_team is not None:
        record["source_team"] = p.source_team
    if p.source_team_persona_slug is not None:
        record["source_team_persona_slug"] = p.source_team_persona_slug
    if p.respond_to is not None:
        record["definition_respond_to"] = p.respond_to
    if p.respond_to_allowlist:
        record["definition_respond_to_allowlist"] = list(p.respond_to_allowlist)
    if p.parallelism is not None:
        record["definition_parallelism"] = p.parallelism
    return record


def unified_agent_record(a: BuzzAgentSpec) -> dict[str, Any]:
    record = _record_base(a.pubkey, a.name, a.persona_id)
    if a.key_inline:
        record["private_key_nsec"] = a.key.nsec()
    record.update(
        {
            "auth_tag": a.auth_tag(),
            "relay_url": "wss://relay.buzz.example",
            "avatar_url": None,
            "acp_command": "buzz-acp",
            "agent_command": "goose",
            "agent_command_override": None,
            "agent_args": ["acp"],
            "mcp_command": "buzz-mcp",
            "turn_timeout_seconds": 300,
            "idle_timeout_seconds": None,
            "max_turn_duration_seconds": None,
            "parallelism": 10,
            "system_prompt": "an agent's own prompt, not the persona's",
            "model": None,
            "provider": None,
            "persona_source_version": "0" * 64,
        }
    )
    record.update(_record_tail())
    record["is_builtin"] = False
    record["is_active"] = True
    return record


def _record_tail() -> dict[str, Any]:
    return {
        "start_on_app_launch": True,
        "auto_restart_on_config_change": True,
        "runtime_pid": None,
        "backend": {"type": "local"},
        "backend_agent_id": None,
        "provider_policy_pending": False,
        "provider_binary_path": None,
        "created_at": STAMP,
        "updated_at": STAMP,
        "last_started_at": None,
        "last_stopped_at": None,
        "last_exit_code": None,
        "last_error": None,
        "last_error_code": None,
        "respond_to": "owner-only",
        "respond_to_allowlist": [],
    }


def write_unified_tree(
    root: Path,
    personas: Sequence[BuzzPersonaSpec],
    agents: Sequence[BuzzAgentSpec],
    teams: Sequence[Mapping[str, Any]] = (),
) -> Path:
    agents_dir = root / "agents"
    agents_dir.mkdir(parents=True, exist_ok=True)
    # Definitions first, sorted by slug (storage.rs@B).
    definitions = [definition_record(p) for p in sorted(personas, key=lambda p: p.id)]
    _write(agents_dir / "managed-agents.json", [*definitions, *map(unified_agent_record, agents)])
    _write(agents_dir / "personas.json.bak", [])
    _write(agents_dir / "teams.json", list(teams))
    return root


def keyring_value(identity: SecretKey | None, agents: Sequence[BuzzAgentSpec]) -> str:
    """buzz's keyring item value: JSON of "identity" and "agent:<hex>" nsecs."""
    blob: dict[str, str] = {}
    if identity is not None:
        blob["identity"] = identity.nsec()
    for a in agents:
        blob[f"agent:{a.pubkey}"] = a.key.nsec()
    return json.dumps(blob)


def _write(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    path.chmod(0o600)
