"""NIP-44 v2 encryption: the payload format NIP-AE engrams are sealed with.

Conversation key = HKDF-extract(salt="nip44-v2", IKM=raw ECDH x). Per message:
HKDF-expand(conversation key, nonce) gives the ChaCha20 key and nonce and the
HMAC key; the padded plaintext is encrypted, and HMAC-SHA256(nonce‖ciphertext)
authenticates it. PyNaCl offers no raw ChaCha20, hence ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from adapters.nostr.errors import DecryptionError, EncryptionError
from adapters.nostr.keys import PublicKey, SecretKey

VERSION = 2
MIN_PLAINTEXT = 1
MAX_PLAINTEXT = 65535
_SALT = b"nip44-v2"
_MIN_PAYLOAD_CHARS, _MAX_PAYLOAD_CHARS = 132, 87472
_MIN_RAW, _MAX_RAW = 99, 65603


def conversation_key(secret: SecretKey, public: PublicKey) -> bytes:
    """HKDF-extract over the *unhashed* ECDH x coordinate; symmetric in the two parties."""
    return hmac.digest(_SALT, secret.ecdh_x(public), hashlib.sha256)


def message_keys(conv_key: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """HKDF-expand(conv_key, info=nonce, L=76) -> (chacha key, chacha nonce, hmac key)."""
    if len(conv_key) != 32:
        raise ValueError("conversation key must be 32 bytes")
    if len(nonce) != 32:
        raise ValueError("nonce must be 32 bytes")
    t1 = hmac.digest(conv_key, nonce + b"\x01", hashlib.sha256)
    t2 = hmac.digest(conv_key, t1 + nonce + b"\x02", hashlib.sha256)
    t3 = hmac.digest(conv_key, t2 + nonce + b"\x03", hashlib.sha256)
    okm = t1 + t2 + t3
    return okm[0:32], okm[32:44], okm[44:76]


def calc_padded_len(unpadded_len: int) -> int:
    if unpadded_len <= 0:
        raise ValueError("expected a positive length")
    if unpadded_len <= 32:
        return 32
    next_power = 1 << (unpadded_len - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((unpadded_len - 1) // chunk + 1)


def pad(plaintext: bytes) -> bytes:
    size = len(plaintext)
    if not MIN_PLAINTEXT <= size <= MAX_PLAINTEXT:
        raise EncryptionError(
            f"NIP-44 encrypts 1 to {MAX_PLAINTEXT} bytes of plaintext, got {size}"
        )
    return size.to_bytes(2, "big") + plaintext + bytes(calc_padded_len(size) - size)


def unpad(padded: bytes) -> bytes:
    size = int.from_bytes(padded[:2], "big")
    plaintext = padded[2 : 2 + size]
    if size == 0 or len(plaintext) != size or len(padded) != 2 + calc_padded_len(size):
        raise DecryptionError("invalid padding")
    return plaintext


def _chacha20(key: bytes, nonce12: bytes, data: bytes) -> bytes:
    # cryptography takes a 16-byte nonce: 4-byte little-endian counter (0) then the 12 bytes.
    encryptor = Cipher(algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce12), mode=None)
    return encryptor.encryptor().update(data)


def encrypt(plaintext: str, conv_key: bytes, nonce: bytes | None = None) -> str:
    """Encrypt ``plaintext`` under ``conv_key``.

    ``nonce`` must be left out in real use (fresh CSPRNG bytes are drawn); it
    exists so the official test vectors can be reproduced.
    """
    if nonce is None:
        nonce = os.urandom(32)
    chacha_key, chacha_nonce, hmac_key = message_keys(conv_key, nonce)
    try:
        raw = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncryptionError("plaintext is not valid Unicode (lone surrogate)") from exc
    ciphertext = _chacha20(chacha_key, chacha_nonce, pad(raw))
    mac = hmac.digest(hmac_key, nonce + ciphertext, hashlib.sha256)
    return base64.b64encode(b"\x02" + nonce + ciphertext + mac).decode("ascii")


def decrypt(payload: str, conv_key: bytes) -> str:
    """Decrypt a NIP-44 v2 payload; :class:`DecryptionError` says what is wrong."""
    if not payload or payload[0] == "#":
        raise DecryptionError("unknown encryption version")
    if not _MIN_PAYLOAD_CHARS <= len(payload) <= _MAX_PAYLOAD_CHARS:
        raise DecryptionError(f"invalid payload length {len(payload)}")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError(f"invalid base64: {exc}") from exc
    if not _MIN_RAW <= len(raw) <= _MAX_RAW:
        raise DecryptionError(f"invalid data length {len(raw)}")
    if raw[0] != VERSION:
        raise DecryptionError(f"unknown encryption version {raw[0]}")
    nonce, ciphertext, mac = raw[1:33], raw[33:-32], raw[-32:]
    chacha_key, chacha_nonce, hmac_key = message_keys(conv_key, nonce)
    expected = hmac.digest(hmac_key, nonce + ciphertext, hashlib.sha256)
    if not hmac.compare_digest(expected, mac):
        raise DecryptionError("invalid MAC")
    plaintext = unpad(_chacha20(chacha_key, chacha_nonce, ciphertext))
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecryptionError("plaintext is not valid UTF-8") from exc
