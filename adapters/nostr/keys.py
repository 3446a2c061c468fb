"""secp256k1 keys for Nostr: parsing (hex, NIP-19), BIP-340 signing, raw ECDH.

libsecp256k1 is called through coincurve's cffi bindings directly because
coincurve's ``sign_schnorr`` rebuilds the key pair and re-verifies on every
call (costing more than the signature itself; ``scripts/bench engram`` times a
seal); a :class:`SecretKey` builds its ``secp256k1_keypair`` once and reuses it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from adapters.nostr import bech32
from adapters.nostr.errors import InvalidKey

_CTX: Any = GLOBAL_CONTEXT.ctx
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def _hex32(text: str, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 64 or not _HEXDIGITS.issuperset(text):
        raise InvalidKey(f"{what} must be 64 hex characters")
    return bytes.fromhex(text)


@lru_cache(maxsize=65536)
def _xonly(pub: bytes) -> Any:
    """Parse an x-only key once; verification and ECDH hit the same keys repeatedly."""
    xonly = ffi.new("secp256k1_xonly_pubkey *")
    if not lib.secp256k1_xonly_pubkey_parse(_CTX, xonly, pub):
        raise InvalidKey("public key is not the x coordinate of a secp256k1 point")
    return xonly


@lru_cache(maxsize=65536)
def _even_point(pub: bytes) -> Any:
    point = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_parse(_CTX, point, b"\x02" + pub, 33):
        raise InvalidKey("public key is not the x coordinate of a secp256k1 point")
    return point


class PublicKey:
    """A BIP-340 x-only public key (32 bytes), as Nostr uses in ``pubkey`` fields."""

    __slots__ = ("_bytes", "_hex")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise InvalidKey(f"public key must be 32 bytes, got {len(raw)}")
        _xonly(bytes(raw))  # validates that the point exists
        self._bytes = bytes(raw)
        self._hex = self._bytes.hex()

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        return cls(_hex32(text, "public key"))

    @classmethod
    def from_npub(cls, text: str) -> PublicKey:
        try:
            return cls(bech32.decode("npub", text.strip()))
        except bech32.Bech32Error as exc:
            raise InvalidKey(f"not a valid npub: {exc}") from exc

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Accept hex or ``npub``."""
        text = text.strip()
        return cls.from_npub(text) if text.startswith("npub1") else cls.from_hex(text)

    @property
    def bytes(self) -> bytes:
        return self._bytes

    @property
    def hex(self) -> str:
        return self._hex

    def npub(self) -> str:
        return bech32.encode("npub", self._bytes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        return f"PublicKey({self._hex})"


class SecretKey:
    """A secp256k1 secret key with its BIP-340 key pair built once.

    ``repr`` and ``str`` never show the key: it would end up in logs.
    """

    __slots__ = ("_keypair", "_public", "_secret")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise InvalidKey(f"secret key must be 32 bytes, got {len(raw)}")
        keypair = ffi.new("secp256k1_keypair *")
        if not lib.secp256k1_keypair_create(_CTX, keypair, bytes(raw)):
            raise InvalidKey("secret key is zero or not below the secp256k1 group order")
        xonly = ffi.new("secp256k1_xonly_pubkey *")
        lib.secp256k1_keypair_xonly_pub(_CTX, xonly, ffi.NULL, keypair)
        out = ffi.new("unsigned char[32]")
        lib.secp256k1_xonly_pubkey_serialize(_CTX, out, xonly)
        self._secret = bytes(raw)
        self._keypair = keypair
        self._public = PublicKey(bytes(ffi.buffer(out, 32)))

    @classmethod
    def generate(cls) -> SecretKey:
        while True:
            try:
                return cls(os.urandom(32))
            except InvalidKey:  # pragma: no cover - probability about 2**-128
                continue

    @classmethod
    def from_hex(cls, text: str) -> SecretKey:
        return cls(_hex32(text, "secret key"))

    @classmethod
    def from_nsec(cls, text: str) -> SecretKey:
        try:
            return cls(bech32.decode("nsec", text.strip()))
        except bech32.Bech32Error as exc:
            raise InvalidKey(f"not a valid nsec: {exc}") from exc

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        """Accept hex or ``nsec``."""
        text = text.strip()
        return cls.from_nsec(text) if text.startswith("nsec1") else cls.from_hex(text)

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def secret_bytes(self) -> bytes:
        return self._secret

    def secret_hex(self) -> str:
        return self._secret.hex()

    def nsec(self) -> str:
        return bech32.encode("nsec", self._secret)

    def sign_schnorr(self, msg32: bytes, aux: bytes | None = None) -> bytes:
        """BIP-340 signature of a 32-byte message.

        ``aux`` defaults to 32 fresh CSPRNG bytes; pass it only for test vectors.
        Zero bytes are *not* the same as no aux (see NIP-AE implementation notes).
        """
        if len(msg32) != 32:
            raise ValueError("BIP-340 signs 32-byte messages")
        if aux is None:
            aux = os.urandom(32)
        elif len(aux) != 32:
            raise ValueError("BIP-340 aux randomness must be 32 bytes")
        sig = ffi.new("unsigned char[64]")
        if not lib.secp256k1_schnorrsig_sign32(_CTX, sig, msg32, self._keypair, aux):
            raise InvalidKey("libsecp256k1 refused to sign")  # pragma: no cover
        return bytes(ffi.buffer(sig, 64))

    def ecdh_x(self, public: PublicKey) -> bytes:
        """The raw 32-byte x coordinate of ``self * public`` (NIP-44's unhashed ECDH).

        libsecp256k1's ``secp256k1_ecdh`` hashes the point by default, which is
        exactly what NIP-44 forbids; a tweak-multiply exposes the bare point.
        """
        point = ffi.new("secp256k1_pubkey *")
        ffi.memmove(point, _even_point(public.bytes), ffi.sizeof("secp256k1_pubkey"))
        if not lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, self._secret):
            raise InvalidKey("ECDH failed")  # pragma: no cover - key already validated
        out = ffi.new("unsigned char[33]")
        size = ffi.new("size_t *", 33)
        lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, point, lib.SECP256K1_EC_COMPRESSED)
        return bytes(ffi.buffer(out, 33))[1:]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and other._secret == self._secret

    def __hash__(self) -> int:
        return hash(self._public)

    def __repr__(self) -> str:
        return f"SecretKey(<hidden>, public={self._public.hex})"

    __str__ = __repr__


def verify_schnorr(public: bytes, msg32: bytes, sig64: bytes) -> bool:
    """BIP-340 verification; False for any malformed input rather than an exception."""
    if len(public) != 32 or len(sig64) != 64 or len(msg32) != 32:
        return False
    try:
        xonly = _xonly(bytes(public))
    except InvalidKey:
        return False
    return bool(lib.secp256k1_schnorrsig_verify(_CTX, sig64, msg32, 32, xonly))
