"""JSON parsing that refuses what NIP-AE calls ambiguous.

NIP-AE head selection rule 3: duplicate member names *anywhere* in a body make
it invalid, because parsers that keep the first or the last would otherwise
disagree on which head is current. ``NaN``/``Infinity`` are not JSON either.
"""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """The text is not strict JSON (syntax, duplicate member, non-finite number)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"duplicate member name {key!r}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """Parse ``text`` as JSON, refusing duplicate member names and non-finite numbers."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StrictJSONError(str(exc)) from exc


def dumps_compact(value: Any) -> str:
    """Compact JSON, non-ASCII written verbatim (the form NIP-01 and the digest use)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
