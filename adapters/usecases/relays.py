"""Relay list use cases: add, remove and list the relays every engram is written to.

URLs are taken in canonical form (:func:`adapters.relay.urls.canonical_url`), so
one relay written two ways is one relay.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.bootstrap import Fleet
from adapters.relay.urls import canonical_url


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
