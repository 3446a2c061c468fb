"""NIP-42 authentication events: the ``kind:22242`` answer to a relay's ``AUTH`` challenge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from adapters.nostr.event import Event, UnsignedEvent

if TYPE_CHECKING:
    from adapters.ports import Signer

AUTH_KIND: Final = 22242


def auth_event(
    signer: Signer,
    relay: str,
    challenge: str,
    created_at: int,
    attestation: Sequence[str] | None = None,
) -> Event:
    """The AUTH event for ``challenge`` from ``relay``, signed as ``signer``'s identity.

    Tags are ``relay``, ``challenge`` and, for an agent that has one, its owner's
    NIP-OA ``attestation`` (the ``auth`` tag a buzz relay that admits members'
    agents reads from the AUTH event, protected by its signature; reference
    §1.2): the order buzz's own agents send them in.
    """
    tags: tuple[tuple[str, ...], ...] = (("relay", relay), ("challenge", challenge))
    if attestation is not None:
        tags = (*tags, tuple(attestation))
    return signer.sign(UnsignedEvent(created_at, AUTH_KIND, tags, ""))
