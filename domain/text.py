"""Characters that must never reach a terminal raw: one definition for checking and escaping.

Names people choose (agent names, ``name_pool`` entries, ``FLEETSYNC_ACTOR``)
refuse these characters; everything printed as text (:mod:`adapters.cli.output`
and the error line) shows them escaped, so persona content or a relay's message
cannot move the cursor, retitle the window or reorder what is shown (the
"Trojan Source" bidi trick). Because both use :func:`is_unsafe`, a name that
was accepted prints exactly as it was typed.

Unsafe are: C0 and C1 controls and DEL (category ``Cc``), lone surrogates
(``Cs``), the line and paragraph separators (``Zl``, ``Zp``), and the format
characters (``Cf``: bidi embeddings, overrides, isolates and marks, zero-width
space, soft hyphen, BOM, tag characters), except ZERO WIDTH NON-JOINER and
ZERO WIDTH JOINER, which some scripts and emoji sequences need and which cannot
reorder or hide text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp", "Cf"})
_JOINERS = frozenset({"\u200c", "\u200d"})
# The characters Unicode gives the Bidi_Control property: all are ``Cf``, named
# here so tests and messages can refer to them.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@lru_cache(maxsize=4096)
def is_unsafe(ch: str) -> bool:
    """Whether one character must be refused in a name and escaped on a terminal."""
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES and ch not in _JOINERS


def first_unsafe(text: str) -> tuple[int, str] | None:
    """The position and character of the first unsafe character, or ``None``."""
    for i, ch in enumerate(text):
        if is_unsafe(ch):
            return i, ch
    return None


def escaped_char(ch: str) -> str:
    """``\\x1b``, ``\\u202e`` or ``\\U000e0001``: how an unsafe character is shown."""
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str, *, keep: str = "") -> str:
    """``text`` with every unsafe character (except those in ``keep``) written as an escape.

    Backslashes are left alone, so text without unsafe characters (a Windows
    path, a regular expression in a prompt) is returned unchanged.
    """
    if text.isprintable():  # fast path: printable text has no unsafe character
        return text
    return "".join(escaped_char(ch) if ch not in keep and is_unsafe(ch) else ch for ch in text)


def describe_unsafe(text: str) -> str | None:
    """A phrase naming the first unsafe character of ``text`` and where it is, or ``None``."""
    found = first_unsafe(text)
    if found is None:
        return None
    position, ch = found
    kind = "a bidi control" if ch in BIDI_CONTROLS else "a control or invisible character"
    return f"{kind} ({escaped_char(ch)}) at character {position + 1}"
