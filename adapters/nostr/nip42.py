"""NIP-42 authentication events: the ``kind:22242`` answer to a relay's ``AUTH`` challenge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from adapters.nostr.event import Event, UnsignedEvent

if TYPE_CHECKING:
    from adapters.ports import Signer

AUTH_KIND: Final = 22242


def auth_event(signer: Signer, relay: str, challenge: str, created_at: int) -> Event:
    """The AUTH event for ``challenge`` from ``relay``, signed as ``signer``'s identity.

    Tags are ``relay`` then ``challenge``, the order buzz's own clients send.
    """
    unsigned = UnsignedEvent(
        created_at, AUTH_KIND, (("relay", relay), ("challenge", challenge)), ""
    )
    return signer.sign(unsigned)
