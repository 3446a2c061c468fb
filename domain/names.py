"""Agent names: what a name may be, and which names new agents get.

One rule for every name, wherever it comes from (``--name``, a persona's
``name_pool``, a generated ``SLUG-N``): not blank, at most
:data:`MAX_NAME_CHARS` characters, no character :mod:`domain.text` calls
unsafe. A name is unique among the live agents of its persona unless the
owner forces a duplicate (``--force``); generated names avoid every name in
the fleet. The same text rule applies to ``FLEETSYNC_ACTOR``, the name
recorded with every change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from domain.errors import InvalidInput
from domain.text import describe_unsafe

MAX_NAME_CHARS = 128


class DuplicateName(InvalidInput):
    """A live agent of the persona already has that name."""


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid name, or ``None`` when it is."""
    if not name.strip():
        return "must not be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"is {len(name)} characters long; at most {MAX_NAME_CHARS} are allowed"
    unsafe = describe_unsafe(name)
    if unsafe is not None:
        return f"contains {unsafe}"
    return None


def check_name(name: str, what: str = "agent name") -> str:
    """Return ``name`` if it obeys the name rule, else raise :class:`InvalidInput`.

    ``what`` says where the name came from (``--name``, ``name_pool[2]``,
    ``FLEETSYNC_ACTOR``); the name itself is shown as a Python literal,
    whose escapes are those of :func:`domain.text.escaped_char`.
    """
    problem = name_problem(name)
    if problem is not None:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InvalidInput(f"{what} {shown!r} {problem}")
    return name


def check_name_pool(pool: Sequence[str]) -> None:
    """Every entry a valid name, none listed twice (each names one agent)."""
    seen: set[str] = set()
    for i, entry in enumerate(pool):
        check_name(entry, f"name_pool[{i}]")
        if entry in seen:
            raise InvalidInput(f"name_pool lists {entry!r} more than once")
        seen.add(entry)


def check_unique(name: str, persona_names: Collection[str], slug: str, *, force: bool) -> str:
    """Refuse a name a live agent of persona ``slug`` already has, unless ``force``."""
    if not force and name in persona_names:
        raise DuplicateName(
            f"persona {slug!r} already has an agent named {name!r}; choose another name "
            "or pass --force to allow the duplicate"
        )
    return name


def pick_names(
    count: int,
    *,
    name: str | None,
    pool: Sequence[str],
    slug: str,
    taken: Collection[str],
) -> list[str]:
    """Names for ``count`` new agents, none in ``taken`` and none repeated.

    ``--name`` with a count becomes NAME-1..NAME-N (a single ``--name`` is
    checked by the caller, see :func:`check_unique`). Otherwise the name pool
    is used in turn, then again with -2, -3 ... suffixes; without a pool,
    SLUG-1, SLUG-2 ... Every candidate obeys the name rule: a suffix that would
    make a name too long is an error naming the name, not a silent cut.
    """
    used = set(taken)
    out: list[str] = []
    for candidate, source in _candidates(name, pool, slug):
        if candidate in used:
            continue
        check_name(candidate, f"agent name (from {source})")
        used.add(candidate)
        out.append(candidate)
        if len(out) == count:
            return out
    raise AssertionError("unreachable: the candidates never run out")  # pragma: no cover


def _candidates(name: str | None, pool: Sequence[str], slug: str) -> Iterator[tuple[str, str]]:
    n = 1
    while True:
        if name is not None:
            yield f"{name}-{n}", "--name"
        elif pool:
            for i, item in enumerate(pool):
                yield (item if n == 1 else f"{item}-{n}"), f"name_pool[{i}]"
        else:
            yield f"{slug}-{n}", "the persona slug"
        n += 1
