"""The signer that holds a key here: every signature fleetsync makes goes through one.

:class:`KeySigner` implements :class:`adapters.ports.Signer` over a
:class:`adapters.nostr.keys.SecretKey` it keeps to itself: whoever holds the
signer can sign as that identity (engrams and their deletion requests, persona
events, NIP-42 AUTH, NIP-98 headers, NIP-OA attestations) and read its public
key, never the secret. A signer elsewhere (a hardware key, NIP-46) would be a second
implementation of the same port.
"""

from __future__ import annotations

from adapters.nostr.event import Event, UnsignedEvent, sign_event
from adapters.nostr.keys import PublicKey, SecretKey


class KeySigner:
    """Signs as the identity of a secret key it never hands out (not even in ``repr``)."""

    __slots__ = ("_key",)

    def __init__(self, key: SecretKey) -> None:
        self._key = key

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key

    def sign(self, unsigned: UnsignedEvent, *, aux: bytes | None = None) -> Event:
        """``unsigned`` signed as this identity; ``aux`` is BIP-340 auxiliary
        randomness (fresh CSPRNG bytes unless given)."""
        return sign_event(
            self._key,
            created_at=unsigned.created_at,
            kind=unsigned.kind,
            tags=unsigned.tags,
            content=unsigned.content,
            aux=aux,
        )

    def sign_digest(self, digest: bytes, *, aux: bytes | None = None) -> bytes:
        """The BIP-340 signature of a 32-byte digest (not an event: a NIP-OA attestation)."""
        return self._key.sign_schnorr(digest, aux)

    def __repr__(self) -> str:
        return f"KeySigner(public={self._key.public_key.hex})"

    __str__ = __repr__
