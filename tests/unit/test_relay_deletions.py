"""NIP-09 deletion requests against the owner's addresses (domain.deletions), the one
rule ``persona pull`` and ``team pull`` share, and what ``persona pull`` makes of a
deleted address (domain.persona_pull.decide_deletions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.deletions import (
    AddressVersion,
    DeletionRequest,
    deleted_addresses,
    deleted_versions,
    deletion_request,
)
from domain.persona_pull import LocalPersona, decide_deletions

OWNER = "a" * 64
OTHER = "b" * 64
TEAM = 30176

ADDRESSES = st.sampled_from(["crew", "ops", "builtin-team:welcome"])
IDS = st.text("0123456789abcdef", min_size=4, max_size=4)
TIMES = st.integers(1_700_000_000, 1_700_000_030)
VERSIONS = st.lists(
    st.builds(AddressVersion, d=ADDRESSES, event_id=IDS, created_at=TIMES),
    max_size=10,
    unique_by=lambda v: v.event_id,  # an id names one event
)


@st.composite
def requests(draw: st.DrawFn, versions: list[AddressVersion]) -> list[DeletionRequest]:
    """Requests naming some of ``versions`` by id, some addresses, some strangers."""
    known = [v.event_id for v in versions]
    ids = st.sampled_from(known) | IDS if known else IDS
    return draw(
        st.lists(
            st.builds(
                DeletionRequest,
                event_id=IDS.map(lambda text: "5" + text),
                created_at=TIMES,
                ids=st.frozensets(ids, max_size=2),
                addresses=st.frozensets(ADDRESSES, max_size=2),
            ),
            max_size=4,
            unique_by=lambda r: r.event_id,
        )
    )


@given(st.data(), VERSIONS)
def test_what_is_deleted_does_not_depend_on_the_order_events_and_requests_arrive_in(
    data: st.DataObject, versions: list[AddressVersion]
) -> None:
    asked = data.draw(requests(versions))
    recorded = data.draw(st.dictionaries(ADDRESSES, IDS, max_size=2))
    before = (deleted_versions(versions, asked), deleted_addresses(versions, asked, recorded))
    shuffled_versions, shuffled_requests = list(versions), list(asked)
    data.draw(st.randoms()).shuffle(shuffled_versions)
    data.draw(st.randoms()).shuffle(shuffled_requests)
    after = (
        deleted_versions(shuffled_versions, shuffled_requests),
        deleted_addresses(shuffled_versions, shuffled_requests, recorded),
    )
    assert after == before


@given(st.data(), VERSIONS)
def test_an_address_is_deleted_exactly_when_a_request_names_it_and_no_version_survives(
    data: st.DataObject, versions: list[AddressVersion]
) -> None:
    asked = data.draw(requests(versions))
    gone = deleted_versions(versions, asked)
    deleted = deleted_addresses(versions, asked)
    for d in {"crew", "ops", "builtin-team:welcome"}:
        mine = [v for v in versions if v.d == d]
        survivors = [v for v in mine if v.event_id not in gone]
        named = any(d in r.addresses or any(v.event_id in r.ids for v in mine) for r in asked)
        assert (d in deleted) == (named and not survivors)
        if d in deleted:
            request = deleted[d]
            assert request in asked
            # The cause named is the newest request naming the address.
            naming = [
                r for r in asked if d in r.addresses or any(v.event_id in r.ids for v in mine)
            ]
            assert request.created_at == max(r.created_at for r in naming)


@given(st.data(), VERSIONS)
def test_an_address_request_deletes_what_is_no_newer_and_an_id_request_only_its_event(
    data: st.DataObject, versions: list[AddressVersion]
) -> None:
    asked = data.draw(requests(versions))
    gone = deleted_versions(versions, asked)
    for version in versions:
        expected = any(
            version.event_id in r.ids
            or (version.d in r.addresses and version.created_at <= r.created_at)
            for r in asked
        )
        assert (version.event_id in gone) == expected


@given(VERSIONS, st.lists(st.tuples(IDS, TIMES, st.sampled_from(["crew", "ops"])), max_size=4))
def test_a_request_signed_by_anyone_but_the_owner_deletes_nothing(
    versions: list[AddressVersion], foreign: list[tuple[str, int, str]]
) -> None:
    for event_id, created_at, d in foreign:
        tags = [["a", f"{TEAM}:{OWNER}:{d}"], *(["e", v.event_id] for v in versions)]
        assert deletion_request(event_id, OTHER, created_at, tags, owner=OWNER, kind=TEAM) is None


def test_a_request_reads_its_e_ids_and_only_the_owners_coordinates_of_that_kind() -> None:
    tags = [
        ["a", f"{TEAM}:{OWNER}:builtin-team:welcome"],  # a d tag may hold ':'
        ["a", f"{TEAM}:{OTHER}:crew"],  # another author's address: buzz drops it
        ["a", f"30175:{OWNER}:writer"],  # another kind
        ["a", f"{TEAM}:{OWNER}:"],  # no d tag
        ["e", "abcd"],
        ["k", str(TEAM)],
    ]
    request = deletion_request("5e", OWNER, 10, tags, owner=OWNER, kind=TEAM)
    assert request == DeletionRequest(
        "5e", 10, frozenset({"abcd"}), frozenset({"builtin-team:welcome"})
    )
    assert deletion_request("5f", OWNER, 10, [["k", "30176"]], owner=OWNER, kind=TEAM) is None


def test_a_version_written_after_an_address_request_brings_the_address_back() -> None:
    old, new = AddressVersion("crew", "e1", 100), AddressVersion("crew", "e2", 200)
    request = DeletionRequest("5a", 150, frozenset(), frozenset({"crew"}))
    assert deleted_versions([old, new], [request]) == {"e1": request}
    assert deleted_addresses([old, new], [request]) == {}
    assert deleted_addresses([old], [request]) == {"crew": request}
    # A relay that honoured the request returns no version at all: still deleted.
    assert deleted_addresses([], [request]) == {"crew": request}


def test_an_id_request_for_the_version_recorded_here_names_its_address_when_no_relay_has_it() -> (
    None
):
    request = DeletionRequest("5b", 150, frozenset({"e1"}), frozenset())
    assert deleted_addresses([], [request]) == {}
    assert deleted_addresses([], [request], {"crew": "e1"}) == {"crew": request}
    # Deleting an older version by id leaves the newer head standing.
    newer = AddressVersion("crew", "e2", 200)
    assert deleted_addresses([newer], [request], {"crew": "e1"}) == {}


LOCAL = st.builds(LocalPersona, digest=st.just("d"), changed_at=TIMES, deleted=st.booleans())


@given(st.dictionaries(st.sampled_from(["writer", "ops"]), LOCAL), TIMES)
def test_a_persona_is_deleted_here_unless_absent_already_deleted_or_written_after_the_request(
    local: dict[str, LocalPersona], at: int
) -> None:
    request = DeletionRequest("5c", at, frozenset(), frozenset({"writer", "ops"}))
    decisions = decide_deletions({"writer": request, "ops": request}, local)
    assert [d.slug for d in decisions] == ["ops", "writer"]
    for decision in decisions:
        mine = local.get(decision.slug)
        expected = mine is not None and not mine.deleted and mine.changed_at <= at
        assert decision.delete == expected
        assert decision.request is request
        assert request.event_id in decision.reason
