"""Which agents a command is about: filters as the user gave them, resolved against the view.

Every command that filters (``plan``, ``apply``, ``status``, ``refresh``,
``audit``, ``agent list``) takes a :class:`Filters` and resolves it with
:func:`resolve`: a filter naming nothing is a typo, never an empty success.
A team (``--team``) narrows to the agents of its personas; a ``--persona``
outside the team is an error too.
An agent is named by its hex public key or npub, by its name, or by its short
id (see :func:`resolve_agent`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.nostr.errors import InvalidKey
from adapters.nostr.keys import PublicKey
from domain.application import UnknownAgent, UnknownPersona
from domain.errors import InvalidInput
from domain.slugs import persona_slug
from domain.teams import Teams, UnknownTeam, team_id
from projections.rows import AgentRow
from projections.view import FleetView

# The fewest hex characters of a public key taken as an agent's short id: a
# shorter hex word is more likely a name, and would fit many agents of a fleet.
SHORT_ID_CHARS = 8
MAX_CANDIDATES = 10  # candidates an ambiguous name's error lists


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters as given: a persona slug, an agent (name, short id, hex key or npub),
    a team id."""

    persona: str | None = None
    agent: str | None = None
    team: str | None = None


# No filter: every agent.
EVERYONE = Filters()


@dataclass(frozen=True, slots=True)
class Scope:
    """Filters resolved: the persona's slug, the agent's public key (lower hex), and
    the slugs of the team's personas (None: no team filter)."""

    persona: str | None = None
    agent: str | None = None
    team: frozenset[str] | None = None

    def covers(self, slug: str) -> bool:
        """Whether agents of persona ``slug`` are in the team filter (if there is one)."""
        return self.team is None or slug in self.team


class AmbiguousAgent(InvalidInput):
    """A name or short id that more than one agent answers to."""


def resolve(view: FleetView, filters: Filters, teams: Callable[[], Teams] | None = None) -> Scope:
    """``filters`` checked against the view (and ``teams``, which a team filter needs):
    an unknown persona, agent or team is an error."""
    agent = resolve_agent(view, filters.agent) if filters.agent else None
    slug = persona_slug(filters.persona) if filters.persona else None
    if agent is not None and view.agent(agent) is None:
        raise UnknownAgent(f"no agent {agent}; see 'fleetsync agent list'")
    if slug is not None and view.persona(slug) is None:
        raise UnknownPersona(f"no persona {slug!r}; see 'fleetsync persona list'")
    members = None
    if filters.team:
        if teams is None:
            raise ValueError("a team filter needs the teams to resolve it")
        found = teams().get(team_id(filters.team))
        if found is None:
            raise UnknownTeam(f"no team {filters.team!r}; see 'fleetsync team list'")
        members = frozenset(found.personas)
        if slug is not None and slug not in members:
            raise InvalidInput(f"persona {slug!r} is not in team {filters.team!r}")
    return Scope(persona=slug, agent=agent, team=members)


def resolve_agent(view: FleetView, text: str) -> str:
    """The public key (lower hex) of the agent ``text`` names.

    An agent is named by its hex public key or npub, by its name, or by its short
    id: the first :data:`SHORT_ID_CHARS` or more hex characters of its public key
    (``plan`` and ``apply`` print 16). A name or short id that fits more than one
    agent, retired ones included, is an error listing them: acting on a guess is
    worse than asking. A full key is returned whether or not the agent exists;
    the command says so if it does not.
    """
    try:
        return PublicKey.parse(text).hex
    except InvalidKey as exc:
        if text.startswith("npub1") or (len(text) == 64 and _is_hex(text)):
            raise InvalidInput(
                f"invalid agent {text!r}: not a valid npub or hex public key"
            ) from exc
    matches = view.agents_matching(text, SHORT_ID_CHARS)
    if not matches:
        raise UnknownAgent(
            f"no agent {text!r}: give its name, short id (the first {SHORT_ID_CHARS} or "
            "more hex characters of its public key), hex public key or npub; "
            "see 'fleetsync agent list'"
        )
    if len(matches) > 1:
        shown = ", ".join(_candidate(row) for row in matches[:MAX_CANDIDATES])
        more = f" and {len(matches) - MAX_CANDIDATES} more" if len(matches) > MAX_CANDIDATES else ""
        raise AmbiguousAgent(
            f"{text!r} could be {len(matches)} agents: {shown}{more}; "
            "give a longer short id or the public key"
        )
    return str(matches[0].pubkey)


def _candidate(row: AgentRow) -> str:
    retired = ", retired" if row.retired else ""
    return f"{row.pubkey[:16]} ({row.name!r}, persona {row.persona_slug}{retired})"


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in text)
