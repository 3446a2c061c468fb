"""NIP-19 bech32 encoding of keys (``nsec``/``npub``) and NIP-49 ``ncryptsec``.

Only what fleetsync needs: fixed-size payloads under a known prefix. Existing
desktop installs store agents' keys as ``nsec``, so import must read them.
"""

from __future__ import annotations

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """The string is not valid bech32 for the expected prefix."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if ((top >> i) & 1) else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise Bech32Error("invalid padding")
    return out


def encode(hrp: str, payload: bytes) -> str:
    data = _convertbits(payload, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def decode(expected_hrp: str, text: str, *, size: int = 32) -> bytes:
    """Decode ``text``, which must carry ``expected_hrp`` and a ``size``-byte payload.

    BIP-173's 90-character limit holds for 32-byte keys; longer payloads (NIP-49's
    91 bytes) are bounded by their size alone, as NIP-19 does for its TLV types.
    """
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    text = text.lower()
    pos = text.rfind("1")
    limit = max(90, len(expected_hrp) + 1 + (size * 8 + 4) // 5 + 6)
    if pos < 1 or pos + 7 > len(text) or len(text) > limit:
        raise Bech32Error("missing separator or wrong length")
    hrp, rest = text[:pos], text[pos + 1 :]
    if hrp != expected_hrp:
        raise Bech32Error(f"expected prefix {expected_hrp!r}, got {hrp!r}")
    try:
        data = [_CHARSET.index(c) for c in rest]
    except ValueError:
        raise Bech32Error("character outside the bech32 alphabet") from None
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise Bech32Error("checksum mismatch")
    payload = bytes(_convertbits(data[:-6], 5, 8, pad=False))
    if len(payload) != size:
        raise Bech32Error(f"payload is {len(payload)} bytes, expected {size}")
    return payload
