"""When a write that replaces a head is dated: ``created_at`` given our clock and the head's.

One rule for every event fleetsync signs over a head: an agent's engram
(``kind:30174``, sealed by :mod:`adapters.sync.sealing`) and the owner's own
events (the persona's ``kind:30175`` and its NIP-09 ``kind:5`` deletion, in
:mod:`adapters.owner_events`).

- A write must outrank the head it replaces whatever the head's clock said:
  ``max(now, head + 1)`` (a deletion, which covers every version up to its own
  date, ``max(now, head)``).
- It is never dated more than :data:`MAX_AHEAD` seconds past our clock. buzz
  refuses events more than 900 s from its clock (reference §1.5); 840 s leaves
  60 s for the two clocks to differ (buzz's own auth window). NIP-AE leaves the
  threshold to the implementation.
- A head that would push the write further is no write: it is a conflict
  (:class:`HeadTooFarAhead`, naming the head, its date and how far ahead it
  is). Its clock is broken or poisoned, or another writer's is skewed; following
  it would sign an event the relay refuses or, worse, one dated in the future.

:func:`choose_created_at` is a function of its arguments only.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far past our clock a write may ever be dated (see the module docstring).
MAX_AHEAD = 840


@dataclass(frozen=True, slots=True)
class HeadTooFarAhead:
    """The head is so far ahead of our clock that a write after it would be dated more
    than ``max_ahead`` s past now: a conflict to resolve, not a write."""

    head_event_id: str | None
    head_created_at: int
    now: int
    max_ahead: int

    @property
    def ahead(self) -> int:
        """How many seconds the head's ``created_at`` is ahead of now."""
        return self.head_created_at - self.now

    def describe(self) -> str:
        """The conflict in words, for the person who has to resolve it."""
        head = f"the head {self.head_event_id}" if self.head_event_id else "the head"
        return (
            f"{head} is dated {self.head_created_at}, {self.ahead} s ahead of now "
            f"({self.now}): a write after it would be dated more than the {self.max_ahead} s "
            "past this clock that relays are trusted to take, so it looks clock-poisoned. "
            "Nothing was written after it; check the clock of whoever wrote it and resolve "
            "the conflict instead."
        )


def choose_created_at(
    now: int,
    head_created_at: int | None,
    *,
    head_event_id: str | None = None,
    max_ahead: int = MAX_AHEAD,
    strictly_after: bool = True,
) -> int | HeadTooFarAhead:
    """The ``created_at`` of a write over a head dated ``head_created_at`` (None: no
    head), or the conflict that forbids the write.

    ``strictly_after``: the write outranks the head (``max(now, head + 1)``); a
    deletion only needs to be no earlier than it (``max(now, head)``). The date
    chosen is never more than ``max_ahead`` s past ``now``.
    """
    if max_ahead < 0:
        raise ValueError("max_ahead must not be negative")
    if head_created_at is None:
        return now
    earliest = head_created_at + 1 if strictly_after else head_created_at
    if earliest - now > max_ahead:
        return HeadTooFarAhead(head_event_id, head_created_at, now, max_ahead)
    return max(now, earliest)
