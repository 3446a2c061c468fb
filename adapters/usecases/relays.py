"""Relay list use cases: add, remove and list the relays every engram is written to.

URLs are taken in canonical form (:func:`adapters.relay.urls.canonical_url`), so
one relay written two ways is one relay. The scheme says the wire: ``ws://`` and
``wss://`` are websocket relays, ``http://`` and ``https://`` a buzz relay's HTTP
bridge (:mod:`adapters.relay.bridge`); :func:`describe_relays` says which, and
how each authenticates.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.bootstrap import Fleet
from adapters.relay.bridge import is_bridge_url
from adapters.relay.urls import canonical_url

WEBSOCKET = "websocket"
HTTP_BRIDGE = "http-bridge"
WEBSOCKET_AUTH = (
    "NIP-42 when the relay asks: writes as each event's author (agent), reads as the "
    "owner; one socket per identity on a relay that binds one (buzz)"
)
BRIDGE_AUTH = (
    "NIP-98 on every request: writes signed by each event's author (agent), reads by the "
    "owner; the owner's NIP-OA attestation in x-auth-tag when the relay wants membership"
)


@dataclass(frozen=True, slots=True)
class RelayShown:
    """A configured relay: its URL, the wire it is reached over, and how it authenticates."""

    url: str
    kind: str  # websocket | http-bridge
    auth: str


@dataclass(frozen=True, slots=True)
class RelayAdded:
    """``added`` is false when the relay was configured already; ``lacking`` counts the
    live agents whose current engram the next apply sends it."""

    url: str
    added: bool
    lacking: int


def add_relay(fleet: Fleet, url: str) -> RelayAdded:
    url = canonical_url(url)
    added = fleet.app.add_relay(url, fleet.settings.actor)
    # Every live agent's current engram belongs on it too (the next apply sends it).
    lacking = sum(p.agent_count for p in fleet.view().personas()) if added else 0
    return RelayAdded(url, added, lacking)


def remove_relay(fleet: Fleet, url: str) -> str:
    """Stop writing to ``url``; returns it in canonical form. What it holds stays there."""
    url = canonical_url(url)
    fleet.app.remove_relay(url, fleet.settings.actor)
    return url


def list_relays(fleet: Fleet) -> tuple[str, ...]:
    return tuple(fleet.app.relay_urls())


def describe_relays(fleet: Fleet) -> tuple[RelayShown, ...]:
    """Each configured relay with its wire and its authentication."""
    return tuple(
        RelayShown(url, HTTP_BRIDGE, BRIDGE_AUTH)
        if is_bridge_url(url)
        else RelayShown(url, WEBSOCKET, WEBSOCKET_AUTH)
        for url in fleet.app.relay_urls()
    )
