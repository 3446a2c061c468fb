"""Errors of the Nostr protocol core. All are permanent: bad bytes stay bad."""

from __future__ import annotations

from adapters.errors import PermanentAdapterError


class NostrError(PermanentAdapterError):
    """Base class of protocol-level failures (keys, events, encryption, engrams)."""


class InvalidKey(NostrError):
    """A key is malformed: wrong length, not hex/bech32, or not on the curve."""


class DecryptionError(NostrError):
    """A NIP-44 payload is malformed, of an unknown version, or fails its MAC."""


class EncryptionError(NostrError):
    """A plaintext cannot be encrypted (empty, or over 65,535 bytes)."""
