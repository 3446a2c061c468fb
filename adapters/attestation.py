"""Owner attestations (NIP-OA) of the fleet's agents: minting, importing, looking up.

Each agent's attestation is kept in the log (``Agent.Attested``): minted by the
owner key when the agent is created or imported, or brought in as it is
(buzz's stored ``auth_tag`` text) by an importer, after checking that it is a
valid attestation of that agent by this fleet's owner. Retiring an agent
withdraws it; ``agent attest`` mints a fresh one (the owner rotating it).

A transport asks :class:`Attestations` for an agent's tag only when a relay
wants it: a websocket relay asking for NIP-42 AUTH (the tag rides in the AUTH
event), a bridge refusing the agent for want of membership (``x-auth-tag``).
Only what the log holds is presented (stored before sent, as every signed
thing here). An agent made before attestations existed has none: it is not
minted on the fly, because an apply records its publication events at the
agent's version as the plan knew it, so an ``Agent.Attested`` written while
its engram is on its way would void them. A relay that wants one refuses
that agent, and the failure says to run ``fleetsync agent attest``.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.nostr.keys import SecretKey
from adapters.nostr.nip_oa import Attestation, InvalidAttestation, mint
from adapters.nostr.signer import KeySigner
from domain.application import FleetApplication, UnknownAgent
from domain.errors import InvalidInput

MINTED = "minted"
IMPORTED = "imported"


def mint_tag(owner: SecretKey, agent_pubkey: str) -> tuple[str, ...]:
    """The owner's attestation of an agent, with empty conditions as buzz mints them."""
    return mint(KeySigner(owner), agent_pubkey).tag()


def checked_import(
    tag: str | Sequence[str], agent_pubkey: str, owner_pubkey: str
) -> tuple[str, ...]:
    """An attestation brought in from elsewhere (JSON text or a tag), once it is known
    to be a valid attestation of ``agent_pubkey`` signed by ``owner_pubkey``.

    Raises :class:`InvalidInput` saying what is wrong: the message names the
    agent, never a key's secret.
    """
    try:
        parsed = Attestation.from_json(tag) if isinstance(tag, str) else Attestation.from_tag(tag)
        parsed.verify(agent_pubkey)
    except InvalidAttestation as exc:
        raise InvalidInput(f"the attestation of agent {agent_pubkey} is not valid: {exc}") from exc
    if parsed.owner != owner_pubkey:
        raise InvalidInput(
            f"the attestation of agent {agent_pubkey} is signed by {parsed.owner}, "
            f"not by this fleet's owner {owner_pubkey}"
        )
    return parsed.tag()


class Attestations:
    """Each agent's attestation as the log holds it, for the transports of one command.

    ``for_agent`` gives the tag (the NIP-42 ``auth`` tag; ``x-auth-tag`` is its
    compact JSON), or None: an agent without one (see the module docstring), a
    retired agent (its attestation is withdrawn), or an identity that is not an
    agent (the owner is a member in its own right).
    """

    def __init__(self, app: FleetApplication) -> None:
        self._app = app
        self._known: dict[str, tuple[str, ...] | None] = {}

    def for_agent(self, pubkey: str) -> tuple[str, ...] | None:
        if pubkey in self._known:
            return self._known[pubkey]
        try:
            agent = self._app.get_agent(pubkey)
        except UnknownAgent:
            tag = None
        else:
            tag = tuple(agent.attestation) if agent.attestation is not None else None
        self._known[pubkey] = tag
        return tag
