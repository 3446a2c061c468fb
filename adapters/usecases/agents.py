"""Agent use cases: create, import, list, move, retire and attest.

An agent's key pair is stored in the key store *before* its creation event is
saved: a key without an agent is harmless, an agent without its key could never
sign its engrams. Everything that can be checked (slug, persona, count, name,
duplicate agent) is checked before either is written. What was created is
published right away through :func:`adapters.usecases.apply.publish` unless
asked not to.

Retiring is the mirror image: the agent is retired, its engram tombstoned (the
key signs the tombstone), and only then, when asked, the key destroyed; a
tombstone that cannot be confirmed keeps the key.

Names follow :mod:`domain.names`: a given name and the persona's ``name_pool``
obey the same rule, and a name a live agent of the persona already has is
refused unless forced.

Every agent created or imported gets the owner's NIP-OA attestation (the
``auth`` tag a membership relay admits it by), kept in the log;
:func:`attest_agent` mints a fresh one in its place (rotation, or an agent
older than attestations), :func:`attest_unattested` one for every live agent
that has none. Retiring an agent withdraws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.attestation import MINTED, mint_tag
from adapters.bootstrap import Fleet
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.ports import ProgressDisplay
from adapters.usecases.apply import NOT_PUBLISHED, Publication, publish
from adapters.usecases.filters import Filters, resolve, resolve_agent
from adapters.usecases.personas import Confirm
from domain.aggregates import Agent, AgentRetired
from domain.application import AgentExists, NewAgent, UnknownAgent
from domain.errors import InvalidInput
from domain.names import check_name, check_unique, pick_names
from domain.planner import Status
from domain.slugs import persona_slug
from projections.rows import AgentRow
from projections.view import FleetView

MAX_COUNT = 100_000


@dataclass(frozen=True, slots=True)
class NewAgentShown:
    """An agent just created or imported."""

    pubkey: str
    npub: str
    name: str
    persona: str
    origin: str


@dataclass(frozen=True, slots=True)
class AgentsAdded:
    """Agents created (or imported), and the publish of their engrams."""

    agents: tuple[NewAgentShown, ...]
    publication: Publication


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"--count must be between 1 and {MAX_COUNT}, not {count}")
    return count


def new_names(
    view: FleetView, count: int, *, name: str | None, pool: Sequence[str], slug: str, force: bool
) -> list[str]:
    """Names for new agents of persona ``slug``: ``name`` as given (unique among the
    persona's live agents unless ``force``), else picked to avoid every name in the fleet.
    """
    if name is not None and count == 1:
        live = {a.name for a in view.agents(persona=slug, include_retired=False)}
        return [check_unique(name, live, slug, force=force)]
    taken = {a.name for a in view.agents()}
    return pick_names(count, name=name, pool=pool, slug=slug, taken=taken)


def _shown(agents: Sequence[Agent]) -> tuple[NewAgentShown, ...]:
    return tuple(
        NewAgentShown(
            a.pubkey, PublicKey.from_hex(a.pubkey).npub(), a.name, a.persona_slug, a.origin
        )
        for a in agents
    )


def create_agents(
    fleet: Fleet,
    persona: str,
    count: int = 1,
    *,
    name: str | None = None,
    force: bool = False,
    publish_now: bool = True,
    progress: ProgressDisplay | None = None,
) -> AgentsAdded:
    """Create ``count`` agents (new key pairs) of ``persona`` in one transaction.

    Names: ``name`` (suffixed -1..-N when N > 1), else the persona's name_pool
    in turn (suffixed on reuse), else SLUG-1, SLUG-2, ...
    """
    slug = persona_slug(persona)
    check_count(count)
    name = check_name(name, "--name") if name is not None else None
    record = fleet.app.get_persona(slug)  # unknown or deleted: fail before any key exists
    names = new_names(
        fleet.view(),
        count,
        name=name,
        pool=record.content.get("name_pool") or [],
        slug=slug,
        force=force,
    )
    keys = [SecretKey.generate() for _ in range(count)]
    fleet.keystore.put_many(keys)
    agents = fleet.app.create_agents(
        [
            NewAgent(k.public_key.hex, slug, n, mint_tag(fleet.owner, k.public_key.hex))
            for k, n in zip(keys, names, strict=True)
        ],
        fleet.settings.actor,
    )
    publication = (
        publish(fleet, only=[a.pubkey for a in agents], progress=progress)
        if publish_now
        else NOT_PUBLISHED
    )
    return AgentsAdded(_shown(agents), publication)


def import_agent(
    fleet: Fleet,
    key: SecretKey,
    persona: str,
    *,
    name: str | None = None,
    force: bool = False,
    publish_now: bool = True,
    progress: ProgressDisplay | None = None,
) -> AgentsAdded:
    """Adopt an existing key pair as an agent of ``persona``."""
    slug = persona_slug(persona)
    name = check_name(name, "--name") if name is not None else None
    pubkey = key.public_key.hex
    if pubkey == fleet.owner.public_key.hex:
        raise InvalidInput("that is the owner's key; an agent needs a key pair of its own")
    record = fleet.app.get_persona(slug)
    try:
        fleet.app.get_agent(pubkey)
    except UnknownAgent:
        pass
    else:
        raise AgentExists(f"agent {pubkey} already exists; see 'fleetsync agent list'")
    pool = record.content.get("name_pool") or []
    name = new_names(fleet.view(), 1, name=name, pool=pool, slug=slug, force=force)[0]
    fleet.keystore.put(key)
    agents = fleet.app.create_agents(
        [NewAgent(pubkey, slug, name, mint_tag(fleet.owner, pubkey))],
        fleet.settings.actor,
        origin="imported",
    )
    publication = publish(fleet, only=[pubkey], progress=progress) if publish_now else NOT_PUBLISHED
    return AgentsAdded(_shown(agents), publication)


def list_agents(
    fleet: Fleet,
    persona: str | None = None,
    *,
    include_retired: bool = False,
    team: str | None = None,
) -> tuple[AgentRow, ...]:
    """The agents (of ``persona``, of ``team``'s personas), with their reconcile status;
    an unknown persona or team is an error."""
    slug = persona_slug(persona) if persona else None
    view = fleet.view()
    if slug is not None and view.persona(slug) is None:
        fleet.app.get_persona(slug)  # raises the usual "no persona" error
    scope = resolve(view, Filters(persona=slug, team=team), fleet.app.teams)
    rows = view.agents(persona=slug, include_retired=include_retired)
    return tuple(row for row in rows if scope.covers(row.persona_slug))


@dataclass(frozen=True, slots=True)
class AgentMoved:
    pubkey: str
    persona: str


def move_agent(fleet: Fleet, agent: str, persona: str, *, force: bool = False) -> AgentMoved:
    """Make ``agent`` (name, short id, key) follow ``persona`` from now on."""
    slug = persona_slug(persona)
    pubkey = resolve_agent(fleet.view(), agent)
    record = fleet.app.get_agent(pubkey)
    if record.persona_slug != slug:
        live = {a.name for a in fleet.view().agents(persona=slug, include_retired=False)}
        check_unique(record.name, live, slug, force=force)
    fleet.app.move_agent(pubkey, slug, fleet.settings.actor)
    return AgentMoved(pubkey, slug)


@dataclass(frozen=True, slots=True)
class AgentRetirement:
    """A retire: whether the key was destroyed, and whether the tombstone is still due
    (then a key asked to be destroyed was kept: only it can sign the tombstone)."""

    pubkey: str
    key_destroyed: bool
    tombstone_due: bool


def retire_agent(
    fleet: Fleet,
    agent: str,
    *,
    destroy_key: bool = False,
    confirm: Confirm,
    publish_now: bool = True,
    progress: ProgressDisplay | None = None,
) -> AgentRetirement:
    """Retire ``agent``; tombstone its engram now (unless ``publish_now`` is false);
    with ``destroy_key``, destroy its key once the tombstone is confirmed (``confirm``
    is asked first: it cannot be undone)."""
    actor = fleet.settings.actor
    pubkey = resolve_agent(fleet.view(), agent)
    record = fleet.app.get_agent(pubkey)
    if record.retired and not destroy_key:
        raise AgentRetired(f"agent {pubkey} is already retired")
    if destroy_key and record.key_destroyed:
        raise InvalidInput(f"the key of agent {pubkey} is already destroyed")
    if destroy_key:
        confirm(
            f"destroying the secret key of agent {pubkey} ({record.name!r}) cannot be "
            "undone: it can never sign again"
        )
    # Retired first, tombstoned next, key destroyed last: a crash in between
    # leaves a retired agent with its key (safe, and rerunning finishes the
    # job), never a live agent without one, nor an engram holding the
    # persona's secrets that nobody can sign a tombstone for any more.
    if not record.retired:
        fleet.app.retire_agent(pubkey, actor)
    if publish_now or destroy_key:
        _tombstone_now(fleet, pubkey, progress)
    row = fleet.view().agent(pubkey)
    due = row is not None and row.status == Status.TOMBSTONE_DUE
    if destroy_key and not due:
        fleet.keystore.destroy(pubkey)
        fleet.app.record_key_destroyed(pubkey, actor)
    return AgentRetirement(pubkey, key_destroyed=destroy_key and not due, tombstone_due=due)


def _tombstone_now(fleet: Fleet, pubkey: str, progress: ProgressDisplay | None) -> None:
    """Tombstone a just-retired agent's engram now, best effort: the caller reads the
    agent's status afterwards and says whether it is done (apply catches up)."""
    row = fleet.view().agent(pubkey)
    if row is not None and row.status == Status.TOMBSTONE_DUE:
        publish(fleet, only=[pubkey], progress=progress)


@dataclass(frozen=True, slots=True)
class AgentAttested:
    """A fresh owner attestation kept for an agent."""

    pubkey: str
    owner: str
    conditions: str


def attest_unattested(fleet: Fleet) -> tuple[AgentAttested, ...]:
    """Mint and keep an attestation for every live agent that has none (one made before
    attestations existed), all in one transaction; agents that have one keep it."""
    live = fleet.view().agents(include_retired=False)
    missing = [
        agent
        for agent in (fleet.app.get_agent(row.pubkey) for row in live)
        if agent.attestation is None
    ]
    done = []
    for agent in missing:
        tag = mint_tag(fleet.owner, agent.pubkey)
        agent.attest(list(tag), MINTED, fleet.settings.actor)
        done.append(AgentAttested(agent.pubkey, tag[1], tag[2]))
    if missing:
        fleet.app.save(*missing)
    return tuple(done)


def attest_agent(fleet: Fleet, agent: str) -> AgentAttested:
    """Mint a fresh NIP-OA attestation of ``agent`` by the owner, in place of its old one."""
    pubkey = resolve_agent(fleet.view(), agent)
    tag = mint_tag(fleet.owner, pubkey)
    fleet.app.attest_agent(pubkey, list(tag), MINTED, fleet.settings.actor)
    return AgentAttested(pubkey, tag[1], tag[2])
