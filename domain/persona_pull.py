"""What ``persona pull`` takes in: the newest valid ``kind:30175`` head per slug, judged
against the personas saved here. Pure: no I/O, no clock.

A relay head is taken in (recorded as a persona save, its event as the cause)
when it is new here, or when it carries other content than the persona saved
here *and* was written after that version was saved (an edit made elsewhere,
in buzz). A head older than the version saved here is not taken: it would
undo a newer local edit (or a local deletion). A head with the content saved
here already records nothing, so pulling again is a no-op.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PersonaHead:
    """The head of one persona address on the relays, as read."""

    slug: str
    event_id: str
    created_at: int
    digest: str  # of its public content


@dataclass(frozen=True, slots=True)
class LocalPersona:
    """A persona as saved here: its current digest, when it last changed, deleted or not."""

    digest: str
    changed_at: int  # unix seconds of its last save or deletion
    deleted: bool


class PullAction(enum.StrEnum):
    SAVE = "save"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class PullDecision:
    head: PersonaHead
    action: PullAction
    reason: str


def newest(heads: Iterable[PersonaHead]) -> dict[str, PersonaHead]:
    """The NIP-01 head per slug: greatest ``created_at``, ties to the lowest id."""
    best: dict[str, PersonaHead] = {}
    for head in heads:
        kept = best.get(head.slug)
        if kept is None or (-head.created_at, head.event_id) < (-kept.created_at, kept.event_id):
            best[head.slug] = head
    return best


def decide(heads: Iterable[PersonaHead], local: Mapping[str, LocalPersona]) -> list[PullDecision]:
    """For the newest head of each slug, whether to record it; in slug order."""
    decisions = []
    for slug, head in sorted(newest(heads).items()):
        mine = local.get(slug)
        if mine is None:
            decisions.append(PullDecision(head, PullAction.SAVE, "new here"))
        elif head.digest == mine.digest and not mine.deleted:
            decisions.append(PullDecision(head, PullAction.SKIP, "already this version"))
        elif head.created_at <= mine.changed_at:
            what = "deleted" if mine.deleted else "saved"
            decisions.append(
                PullDecision(
                    head,
                    PullAction.SKIP,
                    f"older than the version {what} here (created_at {head.created_at} "
                    f"<= {mine.changed_at})",
                )
            )
        else:
            why = (
                "restored: written after it was deleted here"
                if mine.deleted
                else ("edited on the relays after the version saved here")
            )
            decisions.append(PullDecision(head, PullAction.SAVE, why))
    return decisions
