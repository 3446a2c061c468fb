"""The exact size of a sealed engram event, and the largest one relays commonly accept.

Relays refuse events past a size: commonly 65,536 bytes, counted over the
event's JSON by some (strfry's ``maxEventSize``) and over the whole
``["EVENT", <event>]`` message by others (NIP-11 ``max_message_length``). The
limit is applied to the message, which is the larger of the two, so an engram
within it passes either count. A persona whose engram would be larger is
refused when it is saved, with the size it would have, instead of failing at
every relay on apply. Nothing here is approximated: NIP-44 v2 pads the
plaintext to a fixed length, so the event's size follows from the body's
UTF-8 length, the tags and the width of ``created_at`` alone (the test suite
checks it against events really sealed).

:data:`MAX_EVENT_BYTES` is the one place the relay limit lives, and
:data:`MAX_PLAINTEXT_BYTES` the one place of NIP-44's plaintext cap (checked
for bodies by :func:`domain.engram_body.body_utf8`).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain import strictjson

ENGRAM_KIND = 30174
MAX_EVENT_BYTES = 65_536  # of the EVENT message, see the module docstring
EVENT_MESSAGE_OVERHEAD = len('["EVENT",]')  # the compact frame around an event's JSON
MAX_PLAINTEXT_BYTES = 65_535  # NIP-44 v2; the one place the cap lives
_NIP44_OVERHEAD = 1 + 32 + 2 + 32  # version byte, nonce, length prefix, MAC
_HEX64 = "0" * 64
# An engram's tags: the d tag (64 hex) and the owner's p tag (64 hex).
ENGRAM_TAGS: tuple[tuple[str, ...], ...] = (("d", _HEX64), ("p", _HEX64))


def nip44_padded_len(unpadded_len: int) -> int:
    """NIP-44 v2 ``calc_padded_len``: the plaintext length after padding (prefix not counted)."""
    if unpadded_len <= 0:
        raise ValueError("expected a positive length")
    if unpadded_len <= 32:
        return 32
    next_power = 1 << (unpadded_len - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((unpadded_len - 1) // chunk + 1)


def nip44_payload_chars(plaintext_bytes: int) -> int:
    """Characters of the base64 NIP-44 v2 payload for a plaintext of that many bytes."""
    raw = _NIP44_OVERHEAD + nip44_padded_len(plaintext_bytes)
    return 4 * ((raw + 2) // 3)


def event_json_size(
    *, content_chars: int, created_at: int, kind: int, tags: Sequence[Sequence[str]]
) -> int:
    """Bytes of a signed event's compact JSON whose content is ASCII of that length.

    The envelope is built with placeholders of the real widths (id and pubkey:
    64 hex, sig: 128 hex) and serialized as events are sent; hex, base64 and
    the engram's tags need no JSON escaping, so its length is the real one.
    """
    envelope = {
        "id": _HEX64,
        "pubkey": _HEX64,
        "created_at": created_at,
        "kind": kind,
        "tags": [list(tag) for tag in tags],
        "content": "",
        "sig": _HEX64 * 2,
    }
    return len(strictjson.dumps_compact(envelope).encode("utf-8")) + content_chars


def sealed_engram_size(
    plaintext_bytes: int,
    *,
    created_at: int,
    tags: Sequence[Sequence[str]] = ENGRAM_TAGS,
) -> int:
    """Bytes of the JSON of an engram event sealing a body of ``plaintext_bytes`` bytes."""
    return event_json_size(
        content_chars=nip44_payload_chars(plaintext_bytes),
        created_at=created_at,
        kind=ENGRAM_KIND,
        tags=tags,
    )


def sealed_engram_message_size(plaintext_bytes: int, *, created_at: int) -> int:
    """Bytes of the ``["EVENT", <engram>]`` message, the size checked against the limit."""
    return sealed_engram_size(plaintext_bytes, created_at=created_at) + EVENT_MESSAGE_OVERHEAD


def max_engram_body_bytes(*, created_at: int, limit: int = MAX_EVENT_BYTES) -> int:
    """The longest body (UTF-8 bytes) whose engram message fits ``limit``; 0 if none does."""
    low, high = 0, MAX_PLAINTEXT_BYTES
    while low < high:  # the size never shrinks as the body grows
        mid = (low + high + 1) // 2
        if sealed_engram_message_size(mid, created_at=created_at) <= limit:
            low = mid
        else:
            high = mid - 1
    return low
