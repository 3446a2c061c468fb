"""What ``persona pull`` takes in: the newest valid ``kind:30175`` head per slug, and
the deletions the owner asked for (:mod:`domain.deletions`), judged against the
personas saved here. Pure: no I/O, no clock.

A relay head is taken in (recorded as a persona save, its event as the cause)
when it is new here, or when it carries other content than the persona saved
here *and* was written after that version was saved (an edit made elsewhere,
in buzz). A head older than the version saved here is not taken: it would
undo a newer local edit (or a local deletion). A head with the content saved
here already records nothing, so pulling again is a no-op.

A persona the relays hold deleted (a NIP-09 request by the owner, and no version
written since) is deleted here, as buzz removes a persona when such a request
arrives, unless the version here was written after the request (the same rule
as for a head: a local edit newer than what the relays say stands). Either way,
a version's time is when it was written: a version taken in from a relay event
was written at that event's ``created_at``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.deletions import DeletionRequest


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


@dataclass(frozen=True, slots=True)
class DeletionDecision:
    slug: str
    request: DeletionRequest
    delete: bool
    reason: str


def decide_deletions(
    requested: Mapping[str, DeletionRequest], local: Mapping[str, LocalPersona]
) -> list[DeletionDecision]:
    """For each persona the relays hold deleted (with the request that asked), whether
    to delete it here; in slug order."""
    decisions = []
    for slug, request in sorted(requested.items()):
        mine = local.get(slug)
        asked = f"the owner asked to delete it (NIP-09 request {request.event_id})"
        if mine is None:
            decisions.append(DeletionDecision(slug, request, False, f"{asked}; not here"))
        elif mine.deleted:
            decisions.append(
                DeletionDecision(slug, request, False, f"{asked}; already deleted here")
            )
        elif request.created_at < mine.changed_at:
            decisions.append(
                DeletionDecision(
                    slug,
                    request,
                    False,
                    f"{asked} before the version saved here was written (created_at "
                    f"{request.created_at} < {mine.changed_at}); the persona stays",
                )
            )
        else:
            decisions.append(DeletionDecision(slug, request, True, asked))
    return decisions
