"""NIP-09 deletion requests against the owner's addressable events: which versions a
request deletes, and which addresses it leaves deleted. Pure: no I/O, no clock.

``persona pull`` (``kind:30175``) and ``team pull`` (``kind:30176``) read the owner's
events of their kind and the owner's ``kind:5`` requests, and settle each address
(its ``d`` tag) by this one rule, NIP-09's with buzz's scoping:

- Only a request signed by the owner counts; anyone else's is ignored. An ``a``
  coordinate counts only when it names the request's own author
  (``<kind>:<owner>:<d>``): buzz's ``parse_deletion_coordinate`` drops a signed
  request naming another author's coordinate.
- An ``e`` tag deletes the event with that id; an ``a`` tag deletes every version at
  its address dated no later than the request (buzz soft-deletes the rows with
  ``created_at`` <= the request's; a later write brings the address back).
- An address is *deleted* when a request names it (by ``a``, or by ``e`` naming one of
  its versions or the version recorded here) and none of its versions survives. An
  address with a version left has the newest survivor as its head, whatever was
  asked before; one no request names is whatever its versions say.

The answer is the same whatever order the events and requests arrive in: every
choice below is over sets, and ties go to the lowest id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

DELETION_KIND = 5


@dataclass(frozen=True, slots=True)
class AddressVersion:
    """One version of an address, as read: its ``d`` tag, id and ``created_at``."""

    d: str
    event_id: str
    created_at: int


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    """A NIP-09 request by the owner: the event ids (``e``) and the addresses of one
    kind (``a``, by ``d`` tag) it names."""

    event_id: str
    created_at: int
    ids: frozenset[str]
    addresses: frozenset[str]

    def deletes(self, version: AddressVersion) -> bool:
        if version.event_id in self.ids:
            return True
        return version.d in self.addresses and version.created_at <= self.created_at


def deletion_request(
    event_id: str,
    pubkey: str,
    created_at: int,
    tags: Sequence[Sequence[str]],
    *,
    owner: str,
    kind: int,
) -> DeletionRequest | None:
    """The request a ``kind:5`` event makes against ``owner``'s events of ``kind``, or
    None when it makes none (another author, or nothing of that kind named)."""
    if pubkey != owner:
        return None
    prefix = f"{kind}:{owner}:"
    ids = frozenset(tag[1] for tag in tags if len(tag) >= 2 and tag[0] == "e" and tag[1])
    addresses = frozenset(
        tag[1][len(prefix) :]
        for tag in tags
        if len(tag) >= 2 and tag[0] == "a" and tag[1].startswith(prefix) and tag[1] != prefix
    )
    if not ids and not addresses:
        return None
    return DeletionRequest(event_id, created_at, ids, addresses)


def _later(request: DeletionRequest, kept: DeletionRequest | None) -> DeletionRequest:
    """Of two requests, the one to name: the newest, ties to the lowest id."""
    if kept is None:
        return request
    if (-request.created_at, request.event_id) < (-kept.created_at, kept.event_id):
        return request
    return kept


def deleted_versions(
    versions: Iterable[AddressVersion], requests: Iterable[DeletionRequest]
) -> dict[str, DeletionRequest]:
    """Each deleted version's id, with the request that names it (the newest such)."""
    requests = tuple(requests)
    deleted: dict[str, DeletionRequest] = {}
    for version in versions:
        for request in requests:
            if request.deletes(version):
                deleted[version.event_id] = _later(request, deleted.get(version.event_id))
    return deleted


def deleted_addresses(
    versions: Iterable[AddressVersion],
    requests: Iterable[DeletionRequest],
    recorded: Mapping[str, str] | None = None,
) -> dict[str, DeletionRequest]:
    """Each deleted address (``d`` tag), with the request to name as its cause (the
    newest that names it). ``recorded`` maps an address to the id of the event its
    version here came from, so an ``e`` request naming that event names the address
    even when no relay returns the event any more."""
    versions = tuple(versions)
    requests = tuple(requests)
    gone = deleted_versions(versions, requests)
    alive = {v.d for v in versions if v.event_id not in gone}
    by_id: dict[str, set[str]] = {}
    for version in versions:
        by_id.setdefault(version.event_id, set()).add(version.d)
    for d, event_id in (recorded or {}).items():
        by_id.setdefault(event_id, set()).add(d)
    deleted: dict[str, DeletionRequest] = {}
    for request in requests:
        named = set(request.addresses)
        for event_id in request.ids:
            named |= by_id.get(event_id, set())
        for d in named - alive:
            deleted[d] = _later(request, deleted.get(d))
    return deleted
