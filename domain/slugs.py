"""Slug grammars of NIP-AP personas and NIP-AE engrams.

Both specs anchor their patterns with ``^…$``; ``re.fullmatch`` is used so a
trailing newline (which ``$`` would tolerate) never passes.
"""

from __future__ import annotations

import re

from domain.errors import InvalidSlug

_PERSONA_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SEGMENT = r"[a-z0-9][a-z0-9_-]{0,63}"
_MEMORY_SLUG = re.compile(rf"mem/{_SEGMENT}(?:/{_SEGMENT})*")
ENGRAM_SLUG_MAX_BYTES = 255
CORE_SLUG = "core"
PERSONA_ENGRAM_SLUG = "mem/persona"


def is_persona_slug(slug: str) -> bool:
    return _PERSONA_SLUG.fullmatch(slug) is not None


def is_engram_slug(slug: str) -> bool:
    if slug == CORE_SLUG:
        return True
    return (
        len(slug.encode("utf-8", "surrogatepass")) <= ENGRAM_SLUG_MAX_BYTES
        and _MEMORY_SLUG.fullmatch(slug) is not None
    )


def persona_slug(slug: str) -> str:
    """Return ``slug`` if it is a valid persona slug, else raise :class:`InvalidSlug`."""
    if not is_persona_slug(slug):
        raise InvalidSlug(
            f"invalid persona slug {slug!r}: use 1-64 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return slug


def engram_slug(slug: str) -> str:
    """Return ``slug`` if it is a valid NIP-AE slug, else raise :class:`InvalidSlug`."""
    if not is_engram_slug(slug):
        raise InvalidSlug(
            f"invalid engram slug {slug!r}: expected 'core' or 'mem/<segment>[/<segment>...]' "
            "(segments of a-z, 0-9, '_' and '-', at most 255 bytes in all)"
        )
    return slug


def buzz_d_tag(text: str) -> str:
    """A persona slug from a buzz persona id or team persona name, as buzz's
    ``normalize_d_tag`` makes its ``kind:30175`` ``d`` tag: ASCII-lowercase; every
    character outside ``[a-z0-9_-]`` (non-ASCII included) becomes ``-``; ``a`` is
    prepended when the result does not start with ``[a-z0-9]``; cut to 64 bytes.

    ``builtin:fizz`` gives ``builtin-fizz``, ``Lep`` ``lep``, ``_ops`` ``a_ops``.
    """
    mapped = "".join(
        c if ("a" <= c <= "z" or "0" <= c <= "9" or c in "_-") else "-"
        for c in (ch.lower() if ch.isascii() else ch for ch in text)
    )
    if not mapped or not ("a" <= mapped[0] <= "z" or "0" <= mapped[0] <= "9"):
        mapped = "a" + mapped
    return mapped[:64]
