"""NIP-49 private key encryption: a secret key sealed under a password as ``ncryptsec``.

What ``fleetsync key export`` writes and ``key import`` reads, so an owner can
back up every identity of a fleet and bring it back on another machine or
into another client. The password is NFKC-normalised (the NIP's rule, so it
types the same on every machine), stretched with scrypt (``log_n`` chosen by
the caller, r = 8, p = 1) into a key for XChaCha20-Poly1305, which seals the
32 raw key bytes with the key-security byte as associated data. Both
primitives come from libsodium through PyNaCl.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Final

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_pwhash_scryptsalsa208sha256_ll,
)
from nacl.exceptions import CryptoError

from adapters.nostr import bech32
from adapters.nostr.errors import NostrError
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip49_cost import DEFAULT_LOG_N as DEFAULT_LOG_N
from adapters.nostr.nip49_cost import MAX_LOG_N as MAX_LOG_N

PREFIX: Final = "ncryptsec"
VERSION: Final = 0x02
# 0x00: known to have been handled insecurely; 0x01: not known to; 0x02: not tracked.
INSECURE: Final = 0x00
SECURE: Final = 0x01
UNTRACKED: Final = 0x02
_SIZE: Final = 91  # version, log_n, salt 16, nonce 24, key security 1, ciphertext 48


class NcryptsecError(NostrError):
    """Not a NIP-49 encrypted key, or the password does not open it."""


def encrypt(
    secret: SecretKey,
    password: str,
    *,
    log_n: int = DEFAULT_LOG_N,
    key_security: int = UNTRACKED,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> str:
    """``secret`` as an ``ncryptsec1…`` string. ``salt``/``nonce`` are for tests only."""
    if not 1 <= log_n <= MAX_LOG_N:
        raise NcryptsecError(f"log_n must be between 1 and {MAX_LOG_N}, not {log_n}")
    if key_security not in (INSECURE, SECURE, UNTRACKED):
        raise NcryptsecError(f"unknown key security byte {key_security:#04x}")
    salt = os.urandom(16) if salt is None else salt
    nonce = os.urandom(24) if nonce is None else nonce
    aad = bytes([key_security])
    key = _symmetric_key(password, salt, log_n)
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(secret.secret_bytes(), aad, nonce, key)
    payload = bytes([VERSION, log_n]) + salt + nonce + aad + ciphertext
    return bech32.encode(PREFIX, payload)


def decrypt(text: str, password: str) -> tuple[SecretKey, int]:
    """The secret key an ``ncryptsec`` holds, and its key-security byte."""
    try:
        payload = bech32.decode(PREFIX, text.strip(), size=_SIZE)
    except bech32.Bech32Error as exc:
        raise NcryptsecError(f"not an ncryptsec string: {exc}") from None
    version, log_n = payload[0], payload[1]
    if version != VERSION:
        raise NcryptsecError(f"unsupported ncryptsec version {version:#04x} (expected 0x02)")
    if not 1 <= log_n <= MAX_LOG_N:
        raise NcryptsecError(f"ncryptsec asks for log_n {log_n}, more than {MAX_LOG_N}")
    salt, nonce, aad, ciphertext = payload[2:18], payload[18:42], payload[42:43], payload[43:]
    if aad[0] not in (INSECURE, SECURE, UNTRACKED):
        raise NcryptsecError(f"unknown key security byte {aad[0]:#04x}")
    key = _symmetric_key(password, salt, log_n)
    try:
        raw = crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
    except CryptoError:
        raise NcryptsecError("wrong password, or the ncryptsec string was altered") from None
    return SecretKey(raw), aad[0]


def _symmetric_key(password: str, salt: bytes, log_n: int) -> bytes:
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    # libsodium refuses to use more than maxmem; scrypt needs 128 * r * N bytes plus slack.
    maxmem = 2 * 128 * 8 * (1 << log_n)
    key: bytes = crypto_pwhash_scryptsalsa208sha256_ll(
        normalized, salt, 1 << log_n, 8, 1, dklen=32, maxmem=maxmem
    )
    return key
