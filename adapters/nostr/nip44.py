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
from domain.engram_size import MAX_PLAINTEXT_BYTES, nip44_padded_len

VERSION = 2
MIN_PLAINTEXT = 1
_SALT = b"nip44-v2"
_MIN_PAYLOAD_CHARS, _MAX_PAYLOAD_CHARS = 132, 87472
_MIN_RAW, _MAX_RAW = 99, 65603
_VERSION_BYTE = bytes([VERSION])


def conversation_key(secret: SecretKey, public: PublicKey) -> bytes:
    """HKDF-extract over the *unhashed* ECDH x coordinate; symmetric in the two parties."""
    return hmac.digest(_SALT, secret.ecdh_x(public), hashlib.sha256)


# HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)) for a key no longer than a block.
_BLOCK_PAD = bytes(32)
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_sha256 = hashlib.sha256


def _hmac32(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 with a 32-byte key, built from hashlib directly.

    ``hmac.digest`` sets up an OpenSSL HMAC context on every call; two hashlib
    objects do the same work without it (``scripts/bench engram`` times a seal,
    and its C floor uses this form too).
    """
    block = key + _BLOCK_PAD
    inner = _sha256(block.translate(_IPAD))
    for part in parts:
        inner.update(part)
    outer = _sha256(block.translate(_OPAD))
    outer.update(inner.digest())
    return outer.digest()


class ConversationKey:
    """A NIP-44 v2 conversation key with its HMAC pads hashed once.

    Every message derives its keys with three HMACs under the conversation key
    (HKDF-expand); keeping the key's inner and outer pad states halves their
    cost. Hold one per peer and reuse it. The key is a secret: it never shows
    in ``repr``.
    """

    __slots__ = ("_inner", "_key", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("conversation key must be 32 bytes")
        self._key = bytes(key)
        block = self._key + _BLOCK_PAD
        self._inner = _sha256(block.translate(_IPAD))
        self._outer = _sha256(block.translate(_OPAD))

    @classmethod
    def derive(cls, secret: SecretKey, public: PublicKey) -> ConversationKey:
        return cls(conversation_key(secret, public))

    def secret_bytes(self) -> bytes:
        return self._key

    def _hmac(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def message_keys(self, nonce: bytes) -> tuple[bytes, bytes, bytes]:
        """HKDF-expand(key, info=nonce, L=76) -> (chacha key, chacha nonce, hmac key)."""
        if len(nonce) != 32:
            raise ValueError("nonce must be 32 bytes")
        t1 = self._hmac(nonce + b"\x01")
        t2 = self._hmac(t1 + nonce + b"\x02")
        t3 = self._hmac(t2 + nonce + b"\x03")
        return t1, t2[:12], t2[12:] + t3[:12]

    def encrypt(self, plaintext: str, nonce: bytes | None = None) -> str:
        """Encrypt ``plaintext``; ``nonce`` only for reproducing test vectors."""
        try:
            raw = plaintext.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncryptionError("plaintext is not valid Unicode (lone surrogate)") from exc
        return self.encrypt_padded(pad(raw), nonce)

    def encrypt_padded(self, padded: bytes, nonce: bytes | None = None) -> str:
        """Encrypt an already :func:`pad`-ded plaintext.

        Lets a caller that sends one plaintext to many peers pad it once.
        """
        if nonce is None:
            nonce = os.urandom(32)
        chacha_key, chacha_nonce, hmac_key = self.message_keys(nonce)
        ciphertext = _chacha20(chacha_key, chacha_nonce, padded)
        mac = _hmac32(hmac_key, nonce, ciphertext)
        payload = b"".join((_VERSION_BYTE, nonce, ciphertext, mac))
        return binascii.b2a_base64(payload, newline=False).decode("ascii")

    def decrypt(self, payload: str) -> str:
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
        chacha_key, chacha_nonce, hmac_key = self.message_keys(nonce)
        if not hmac.compare_digest(_hmac32(hmac_key, nonce, ciphertext), mac):
            raise DecryptionError("invalid MAC")
        plaintext = unpad(_chacha20(chacha_key, chacha_nonce, ciphertext))
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptionError("plaintext is not valid UTF-8") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConversationKey) and hmac.compare_digest(other._key, self._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "ConversationKey(<hidden>)"

    __str__ = __repr__


def message_keys(conv_key: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """HKDF-expand(conv_key, info=nonce, L=76) -> (chacha key, chacha nonce, hmac key)."""
    return ConversationKey(conv_key).message_keys(nonce)


# The padding rule lives in the domain, which computes engram sizes from it.
calc_padded_len = nip44_padded_len


def pad(plaintext: bytes) -> bytes:
    size = len(plaintext)
    # The cipher's own precondition; bodies meet it, checked with a message for
    # the user, before they get here (domain.engram_body.body_utf8).
    if not MIN_PLAINTEXT <= size <= MAX_PLAINTEXT_BYTES:
        raise EncryptionError(
            f"NIP-44 encrypts 1 to {MAX_PLAINTEXT_BYTES} bytes of plaintext, got {size}"
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
    exists so the official test vectors can be reproduced. Callers that encrypt
    repeatedly for one peer should hold a :class:`ConversationKey` instead.
    """
    return ConversationKey(conv_key).encrypt(plaintext, nonce)


def decrypt(payload: str, conv_key: bytes) -> str:
    """Decrypt a NIP-44 v2 payload; :class:`DecryptionError` says what is wrong."""
    return ConversationKey(conv_key).decrypt(payload)
