"""Deterministic aggregate ids.

A persona is addressed by its slug and an agent by its public key, so their
aggregate ids are derived from those (uuid5) and a repeat creation collides in
the store instead of making a twin.
"""

from __future__ import annotations

from uuid import UUID, uuid5

_NAMESPACE = UUID("6f1c1f2e-6a4e-4d8e-9a63-2b1f0c9a7d31")


def persona_id(slug: str) -> UUID:
    return uuid5(_NAMESPACE, f"persona/{slug}")


def agent_id(pubkey: str) -> UUID:
    return uuid5(_NAMESPACE, f"agent/{pubkey}")


def relay_list_id() -> UUID:
    return uuid5(_NAMESPACE, "relays")
