"""Key backup use cases: which keys an export writes (sealed as NIP-49 ``ncryptsec``),
and what an import of a backup's keys stores or creates.

The backup's text format (one key per line) is the command line's
(:mod:`adapters.cli.keys`); here keys are values. An import is all or nothing:
every line is checked (the owner line must be this home's owner, no agent key
destroyed at retirement comes back, an agent the log does not know needs a
persona) before anything is stored. Keys go in before agents are created: a key
without an agent is harmless, an agent without its key could never publish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.bootstrap import Fleet
from adapters.errors import PermanentAdapterError
from adapters.keystore import ROLE_AGENT, ROLE_OWNER
from adapters.nostr import nip49
from adapters.nostr.keys import SecretKey
from adapters.usecases.filters import resolve_agent
from domain.application import NewAgent
from domain.errors import InvalidInput
from domain.slugs import persona_slug


class BackupError(PermanentAdapterError):
    """A key backup cannot be written or read as asked."""


@dataclass(frozen=True, slots=True)
class BackupLine:
    """One key of a backup, decrypted; ``number`` is its line in the file."""

    number: int
    role: str
    key: SecretKey
    persona: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class ExportedKey:
    """One key as a backup holds it: ``secret`` is its ncryptsec (or nsec, unencrypted)."""

    role: str
    pubkey: str
    npub: str
    persona: str | None
    name: str | None
    secret: str


@dataclass(frozen=True, slots=True)
class KeyExport:
    """What an export wrote: the keys, and the agents that have no key here (destroyed
    at retirement, or never stored); ``log_n`` is None for unencrypted keys."""

    keys: tuple[ExportedKey, ...]
    skipped: tuple[str, ...]
    log_n: int | None


def check_log_n(log_n: int) -> int:
    if not 1 <= log_n <= nip49.MAX_LOG_N:
        raise InvalidInput(f"--log-n must be between 1 and {nip49.MAX_LOG_N}, not {log_n}")
    return log_n


def export_keys(
    fleet: Fleet,
    *,
    password: Callable[[], str] | None,
    agents: Sequence[str] | None = None,
    persona: str | None = None,
    owner: bool = True,
    log_n: int = nip49.DEFAULT_LOG_N,
) -> KeyExport:
    """The owner's key (unless ``owner`` is false) and the stored keys of the agents
    ``agents`` (names, short ids, keys) and ``persona`` select (all by default), each
    sealed with the password ``password`` gives, asked once the keys are found;
    ``password=None`` writes them unencrypted (nsec)."""
    check_log_n(log_n)
    slug = persona_slug(persona) if persona else None
    view = fleet.view()
    wanted = {resolve_agent(view, a) for a in agents} if agents else None
    if slug is not None and view.persona(slug) is None:
        fleet.app.get_persona(slug)  # raises the usual "no persona" error
    rows = [
        r
        for r in view.agents(persona=slug, include_retired=True)
        if wanted is None or r.pubkey in wanted
    ]
    if wanted is not None:
        missing = wanted - {r.pubkey for r in rows}
        if missing:
            raise InvalidInput(f"no such agent: {', '.join(sorted(missing))}")
    keys = fleet.keystore.get_many([r.pubkey for r in rows])
    secret = password() if password is not None else None

    def exported(role: str, key: SecretKey, persona: str | None, name: str | None) -> ExportedKey:
        sealed = key.nsec() if secret is None else nip49.encrypt(key, secret, log_n=log_n)
        pub = key.public_key
        return ExportedKey(role, pub.hex, pub.npub(), persona, name, sealed)

    out: list[ExportedKey] = []
    if owner:
        out.append(exported(ROLE_OWNER, fleet.owner, None, None))
    skipped = []
    for row in rows:
        key = keys.get(row.pubkey)
        if key is None:
            skipped.append(row.pubkey)  # destroyed at retirement, or never stored here
            continue
        out.append(exported(ROLE_AGENT, key, row.persona_slug, row.name))
    return KeyExport(tuple(out), tuple(skipped), None if secret is None else log_n)


@dataclass(frozen=True, slots=True)
class KeyImport:
    """What an import did: agent keys put back, agents created, keys already here."""

    restored: tuple[str, ...]
    created: tuple[str, ...]
    unchanged: int


def import_keys(
    fleet: Fleet, lines: Sequence[BackupLine], *, persona: str | None = None
) -> KeyImport:
    """Store the keys of a backup's ``lines``; agents the log does not know are created
    (as imported, following ``persona``) only when ``persona`` is given."""
    slug = persona_slug(persona) if persona else None
    owner = fleet.owner.public_key.hex
    view = fleet.view()
    restored: list[SecretKey] = []
    created: list[BackupLine] = []
    unchanged = 0
    for line in lines:
        pubkey = line.key.public_key.hex
        if line.role == ROLE_OWNER:
            if pubkey != owner:
                raise BackupError(
                    f"line {line.number}: the backup's owner {line.key.public_key.npub()} "
                    "is not this home's owner; import it into a home initialised with "
                    "that owner key"
                )
            unchanged += 1
            continue
        if pubkey == owner:
            raise BackupError(f"line {line.number}: the owner's key is listed as an agent")
        known = view.agent(pubkey) is not None
        if fleet.keystore.is_destroyed(pubkey):
            raise BackupError(
                f"line {line.number}: the key of agent {pubkey} was destroyed when it was "
                "retired; it is not stored again"
            )
        if known and fleet.keystore.has(pubkey):
            unchanged += 1
        elif known:
            restored.append(line.key)
        elif slug is None:
            raise BackupError(
                f"line {line.number}: agent {pubkey} is not in this fleet; "
                "add --persona SLUG to create the agents the home does not know"
            )
        else:
            created.append(line)
    if created:
        fleet.app.get_persona(slug or "")  # an unknown persona fails before any write
    # Keys first, agents after: a key without an agent is harmless, an agent
    # without its key could never publish.
    fleet.keystore.put_many([*restored, *(line.key for line in created)])
    if created:
        names = [line.name or f"{slug}-{line.key.public_key.hex[:8]}" for line in created]
        fleet.app.create_agents(
            [
                NewAgent(line.key.public_key.hex, slug or "", name)
                for line, name in zip(created, names, strict=True)
            ],
            fleet.settings.actor,
            origin="imported",
        )
    return KeyImport(
        tuple(k.public_key.hex for k in restored),
        tuple(line.key.public_key.hex for line in created),
        unchanged,
    )
