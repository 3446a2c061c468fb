"""Legacy buzz persona packs: a directory with ``.plugin/plugin.json`` and ``*.persona.md`` files.

buzz's seed imported such a directory as a team (``import_team_from_directory``)
and kept it in step (``sync_team_from_dir``), behind its default-on
``legacy_team_sync`` feature; later buzz removed directory teams. fleetsync
reads a pack the way the seed did and turns it into persona definitions and a
team (:func:`read_pack`):

- the team id is ``plugin.json``'s ``id``, its name ``name``, its description
  ``description``; ``pack_instructions`` names the instructions file;
- each persona's slug is its ``name`` as buzz makes a ``d`` tag of it
  (:func:`domain.slugs.buzz_d_tag`: ``Lep`` is ``lep``);
- ``display_name``; ``system_prompt`` is the Markdown body, plus
  ``"\\n\\n---\\n# Team Instructions\\n"`` and the instructions when they are not
  blank; ``avatar_url`` is ``avatar`` verbatim; ``runtime``; ``model`` in the form
  ``provider:model-id`` is split at the first ``:`` (no ``:``: the whole is the model);
- ``temperature`` and ``max_context_tokens`` become the ``env_vars``
  ``GOOSE_TEMPERATURE`` and ``GOOSE_CONTEXT_LIMIT`` (sealed like every secret);
- ``model``, ``runtime``, ``temperature`` and ``max_context_tokens`` a persona leaves
  out come from ``plugin.json``'s ``defaults``.

Every file is checked before anything is returned, so a bad pack saves
nothing: :class:`InvalidPack` names the file (and the line, where there is
one). Files must stay inside the pack: absolute paths, ``..`` and symbolic
links are refused (buzz copied packs without their links).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.errors import PermanentAdapterError
from adapters.teams.frontmatter import (
    FrontMatterError,
    Nested,
    parse_front_matter,
    split_front_matter,
)
from domain.errors import InvalidInput
from domain.persona import PersonaContent, PersonaDefinition
from domain.slugs import buzz_d_tag
from domain.teams import TeamDefinition, team_id

MANIFEST = ".plugin/plugin.json"
MAX_MANIFEST_BYTES = 1_048_576
MAX_FRONT_MATTER_BYTES = 1_048_576  # buzz's MAX_FRONTMATTER_BYTES
MAX_BODY_BYTES = 262_144  # buzz's MAX_BODY_BYTES
MAX_INSTRUCTIONS_BYTES = 262_144
INSTRUCTIONS_SEPARATOR = "\n\n---\n# Team Instructions\n"
_PERSONA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The front matter keys buzz's seed accepted (deny_unknown_fields); respond_to is
# its alias of triggers.
PERSONA_KEYS = frozenset(
    {
        "name",
        "display_name",
        "avatar",
        "description",
        "version",
        "author",
        "skills",
        "mcp_servers",
        "subscribe",
        "triggers",
        "respond_to",
        "model",
        "runtime",
        "temperature",
        "max_context_tokens",
        "thread_replies",
        "broadcast_replies",
        "hooks",
    }
)


class InvalidPack(PermanentAdapterError):
    """A persona pack (or one of its files) cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class PackPersona:
    name: str  # as the pack writes it (``Lep``)
    slug: str  # the persona slug it is saved under (``lep``)
    definition: PersonaDefinition
    file: str  # pack-relative


@dataclass(frozen=True, slots=True)
class TeamPack:
    directory: Path
    id: str
    name: str
    description: str | None
    version: str
    instructions: str | None
    personas: tuple[PackPersona, ...]

    def team(self) -> TeamDefinition:
        return TeamDefinition(
            team=self.id,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            personas=tuple(p.slug for p in self.personas),
            source=f"pack:{self.directory}",
        )


def read_pack(directory: Path) -> TeamPack:
    """Read and check a whole pack; raises :class:`InvalidPack` naming the bad file."""
    directory = directory.absolute()
    if not directory.is_dir():
        raise InvalidPack(f"{directory} is not a directory (a persona pack is one)")
    manifest_path = directory / MANIFEST
    manifest = _object(_read_json(directory, MANIFEST), manifest_path)
    where = str(manifest_path)
    ident = _required_text(manifest, "id", where)
    try:
        team_id(ident)
    except InvalidInput as exc:
        raise InvalidPack(f"{where}: {exc}") from None
    name = _required_text(manifest, "name", where)
    version = _required_text(manifest, "version", where)
    description = _optional_text(manifest, "description", where)
    defaults = manifest.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InvalidPack(f"{where}: 'defaults' must be an object")
    paths = manifest.get("personas")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise InvalidPack(f"{where}: 'personas' must be a non-empty list of persona file paths")
    instructions = None
    if (instructions_path := manifest.get("pack_instructions")) is not None:
        if not isinstance(instructions_path, str) or not instructions_path:
            raise InvalidPack(f"{where}: 'pack_instructions' must be a file path")
        instructions = _read_text(directory, instructions_path, MAX_INSTRUCTIONS_BYTES)
    personas: list[PackPersona] = []
    names: dict[str, str] = {}
    slugs: dict[str, str] = {}
    for relative in paths:
        persona = _read_persona(directory, relative, defaults, instructions)
        file = str(directory / relative)
        if persona.name in names:
            raise InvalidPack(
                f"{file}: persona name {persona.name!r} is also used by {names[persona.name]}"
            )
        if persona.slug in slugs:
            raise InvalidPack(
                f"{file}: persona {persona.name!r} gets the slug {persona.slug!r}, "
                f"as does {slugs[persona.slug]}"
            )
        names[persona.name] = slugs[persona.slug] = file
        personas.append(persona)
    return TeamPack(
        directory=directory,
        id=ident,
        name=name,
        description=description,
        version=version,
        instructions=instructions if instructions and instructions.strip() else None,
        personas=tuple(personas),
    )


def _read_persona(
    directory: Path, relative: str, defaults: dict[str, Any], instructions: str | None
) -> PackPersona:
    file = str(directory / relative)
    text = _read_text(directory, relative, MAX_FRONT_MATTER_BYTES + MAX_BODY_BYTES + 100)
    try:
        front, body = split_front_matter(text)
        if len(front.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
            raise FrontMatterError(f"front matter is over {MAX_FRONT_MATTER_BYTES:,} bytes")
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            raise FrontMatterError(f"body is over {MAX_BODY_BYTES:,} bytes")
        members = parse_front_matter(front)
    except FrontMatterError as exc:
        raise InvalidPack(f"{file}: {exc}") from None
    unknown = sorted(set(members) - PERSONA_KEYS)
    if unknown:
        raise InvalidPack(
            f"{file}: unknown front matter key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(PERSONA_KEYS))}"
        )
    if "triggers" in members and "respond_to" in members:
        raise InvalidPack(f"{file}: give 'triggers' or its alias 'respond_to', not both")
    name = _required_text(members, "name", file)
    if _PERSONA_NAME.fullmatch(name) is None:
        raise InvalidPack(
            f"{file}: persona name {name!r} must be 1-64 characters from A-Z, a-z, 0-9, '_', '-'"
        )
    display_name = _required_text(members, "display_name", file)
    _required_text(members, "description", file)
    avatar = _optional_text(members, "avatar", file)
    runtime = _optional_text(members, "runtime", file) or _optional_text(
        defaults, "runtime", f"{directory / MANIFEST} defaults"
    )
    model_text = _optional_text(members, "model", file) or _optional_text(
        defaults, "model", f"{directory / MANIFEST} defaults"
    )
    provider, model = None, model_text
    if model_text is not None and ":" in model_text:
        provider, model = model_text.split(":", 1)
    env: dict[str, str] = {}
    temperature = members.get("temperature", defaults.get("temperature"))
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise InvalidPack(f"{file}: 'temperature' must be a number")
        env["GOOSE_TEMPERATURE"] = _number(temperature)
    context = members.get("max_context_tokens", defaults.get("max_context_tokens"))
    if context is not None:
        if isinstance(context, bool) or not isinstance(context, int) or context < 0:
            raise InvalidPack(f"{file}: 'max_context_tokens' must be a whole number")
        env["GOOSE_CONTEXT_LIMIT"] = str(context)
    prompt = body
    if instructions is not None and instructions.strip():
        prompt = body + INSTRUCTIONS_SEPARATOR + instructions
    try:
        content = PersonaContent(
            display_name=display_name,
            system_prompt=prompt,
            avatar_url=avatar,
            runtime=runtime,
            model=model or None,
            provider=provider or None,
        )
        definition = PersonaDefinition(content, env)
    except InvalidInput as exc:  # pragma: no cover (the members are checked above)
        raise InvalidPack(f"{file}: {exc}") from None
    return PackPersona(name=name, slug=buzz_d_tag(name), definition=definition, file=relative)


def _number(value: int | float) -> str:
    """As Rust's ``Display`` writes an f64: ``0.7``, ``1`` (no ``.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _inside(directory: Path, relative: str) -> Path:
    where = directory / relative
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise InvalidPack(f"{where}: a pack file must be a path inside the pack")
    current = directory
    for part in Path(relative).parts:
        current = current / part
        if current.is_symlink():
            raise InvalidPack(f"{current}: is a symbolic link; a pack's files must be its own")
    return where


def _read_text(directory: Path, relative: str, limit: int) -> str:
    path = _inside(directory, relative)
    try:
        with open(path, "rb") as file:
            raw = file.read(limit + 1)
    except FileNotFoundError:
        raise InvalidPack(f"{path}: no such file (named in {directory / MANIFEST})") from None
    except IsADirectoryError:
        raise InvalidPack(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InvalidPack(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise InvalidPack(f"{path}: is larger than {limit:,} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidPack(f"{path}: is not UTF-8 text") from None


def _read_json(directory: Path, relative: str) -> Any:
    path = directory / relative
    if not path.exists():
        raise InvalidPack(f"{path}: no such file; a persona pack has {MANIFEST}")
    text = _read_text(directory, relative, MAX_MANIFEST_BYTES)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPack(f"{path}: not valid JSON: {exc}") from None


def _object(value: Any, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPack(f"{path}: must be a JSON object")
    return value


def _required_text(members: dict[str, Any], key: str, where: str) -> str:
    value = members.get(key)
    if isinstance(value, Nested) or (value is not None and not isinstance(value, str)):
        raise InvalidPack(f"{where}: {key!r} must be a string")
    if value is None or not value.strip():
        raise InvalidPack(f"{where}: {key!r} is required and must not be blank")
    return value


def _optional_text(members: dict[str, Any], key: str, where: str) -> str | None:
    value = members.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPack(f"{where}: {key!r} must be a string")
    return value
