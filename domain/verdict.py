"""The verdict on an engram sent to the relays: published, tombstoned, conflict, failed
or unknown (no verdict yet), from what the relays answered and what a read-back found.

The business rule beside the planner (:mod:`domain.planner`): the planner
decides what to send, :func:`judge` decides what the sending achieved. It is a
function of its arguments only; the reconciler
(:mod:`adapters.sync.confirm`) gathers the answers and the read-back and
records what it returns.

The rule, in the words of the house: an OK is not *published* until read
back; a refusal is not a success; a relay that said nothing is evidence of
nothing.

* **published** - the read-back head is the very event sent. ``confirmed_by``
  says how the OKs stood: ``acknowledged`` (the ack policy was met) or
  ``read-back`` (it was not: OKs lost, yet the relays hold it). Under
  ``ack_all`` every relay sent to must have acknowledged it or returned it.
* **tombstoned** - the same, for a tombstone.
* **conflict** - the read-back head is another event that outranks ours under
  NIP-AE head selection: another writer's engram is the head.
* **failed** - every relay it went to refused it for good (``permanent``).
  ``final`` when it went to every relay: it will never land. A refused resend
  to the relays that lack it is not final: other relays hold it.
* **unknown** - anything else (no answer, temporary refusals, not read back):
  no verdict yet, and the next apply resends the same event.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Outcome(enum.StrEnum):
    """What one relay's final word on one sent event means.

    The values are what the event log records for each relay's answer
    (``RelaysAnswered``): they never change. How a wire answer maps to one is
    the relay client's business (:mod:`adapters.relay.messages`).
    """

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the relay already holds it: as good as accepted
    TEMPORARY = "temporary"  # not now (rate-limited, error, never sent): maybe later
    PERMANENT = "permanent"  # refused for good: asking again gets the same answer
    UNKNOWN = "unknown"  # no answer in time: neither failed nor succeeded

    @property
    def stored(self) -> bool:
        """The relay holds the event (a new acceptance or a duplicate): it acknowledged it."""
        return self is Outcome.ACCEPTED or self is Outcome.DUPLICATE


class Verdict(enum.StrEnum):
    PUBLISHED = "published"
    TOMBSTONED = "tombstoned"
    CONFLICT = "conflict"
    FAILED = "failed"
    UNKNOWN = "unknown"  # unanswered, or not read back: no verdict yet


# The verdicts that leave an agent as the plan wanted it.
SETTLED = frozenset({Verdict.PUBLISHED, Verdict.TOMBSTONED})


class Sent(NamedTuple):
    """The event that was sent, as the verdict needs it."""

    event_id: str
    created_at: int
    tombstone: bool = False
    # Sent to every configured relay (a first send), not only to those lacking it.
    everywhere: bool = True


class ReadBack(NamedTuple):
    """What the read-back found: the agent's head over every relay that answered
    (``event_id`` None: no head at all), and the relays that returned it."""

    event_id: str | None
    created_at: int | None
    relays: tuple[str, ...] = ()


class Judgement(NamedTuple):
    verdict: Verdict
    # published: "acknowledged" or "read-back" (see the module docstring).
    confirmed_by: str = ""
    # failed: refused by every configured relay, so it will never land.
    final: bool = False
    # unknown although the ack policy was met: which half of the confirmation failed.
    note: str = ""


def judge(
    sent: Sent,
    answers: Sequence[tuple[str, Outcome]],
    head: ReadBack | None,
    *,
    ack_all: bool = False,
) -> Judgement:
    """The verdict on ``sent``, from each relay's ``(relay, outcome)`` answer and the
    read-back ``head`` (``None``: no relay answered the read-back, or none was made)."""
    outcomes = [outcome for _, outcome in answers]
    if refused_by_all(outcomes):
        # Never read back (see refused_by_all): nothing any relay holds is ours to claim.
        return Judgement(Verdict.FAILED, final=sent.everywhere)
    policy = policy_met(outcomes, ack_all=ack_all)
    if head is not None and head.event_id is not None:
        if head.event_id == sent.event_id:
            if sent.tombstone:
                return Judgement(Verdict.TOMBSTONED)
            if policy:
                return Judgement(Verdict.PUBLISHED, "acknowledged")
            # The head read back is ours, whatever became of the OKs: a relay that
            # returned it holds it. Under ack_all every relay sent to must hold it.
            holding = {relay for relay, outcome in answers if outcome.stored}
            holding.update(head.relays)
            if not ack_all or (answers and all(relay in holding for relay, _ in answers)):
                return Judgement(Verdict.PUBLISHED, "read-back")
        elif outranks(head.created_at or 0, head.event_id, sent.created_at, sent.event_id):
            return Judgement(Verdict.CONFLICT)
    note = ""
    if policy:
        note = (
            "no relay answered the read-back" if head is None else "the read-back did not return it"
        )
    return Judgement(Verdict.UNKNOWN, note=note)


def refused_by_all(outcomes: Iterable[Outcome]) -> bool:
    """Every relay the event went to refused it for good (and it went somewhere).

    Such an event is not read back: no relay holds it.
    """
    seen = False
    for outcome in outcomes:
        if outcome is not Outcome.PERMANENT:
            return False
        seen = True
    return seen


def policy_met(outcomes: Iterable[Outcome], *, ack_all: bool = False) -> bool:
    """Did the OKs meet the ack policy: one relay acknowledged it, or, with
    ``ack_all``, every relay it went to?"""
    outcomes = list(outcomes)
    acknowledged = sum(1 for outcome in outcomes if outcome.stored)
    if ack_all:
        return bool(outcomes) and acknowledged == len(outcomes)
    return acknowledged > 0


def outranks(created_at: int, event_id: str, other_created_at: int, other_id: str) -> bool:
    """Would an event (``created_at``, ``event_id``) win over the other in NIP-AE head
    selection: newer first, then the lower id?"""
    return (-created_at, event_id) < (-other_created_at, other_id)
