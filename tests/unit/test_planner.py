"""The pure planner: one agent's facts and its persona's version in, a verdict out."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.planner import (
    Action,
    AgentFacts,
    ForeignHeads,
    HeadFacts,
    HeadOrigin,
    PersonaFacts,
    Reason,
    Status,
    assess,
    classify_head,
    plan,
)

Facts = TypeVar("Facts", AgentFacts, HeadFacts, PersonaFacts)


def replace(facts: Facts, **changes: Any) -> Facts:
    return facts._replace(**changes)


D1, D2, S1, S2 = "1" * 64, "2" * 64, "a" * 64, "b" * 64
PERSONA = PersonaFacts("writer", D1, S1, deleted=False, position=10)
BASE = AgentFacts(
    agent_id="id-1",
    pubkey="c" * 64,
    persona_slug="writer",
    retired=False,
    assigned_position=5,
    head=None,
    published_digest=None,
    pending_event_id=None,
    pending_digest=None,
    pending_secrets_digest=None,
    pending_position=0,
    conflict_digest=None,
    conflict_position=0,
)


def published(digest: str, secrets: str, position: int = 20) -> AgentFacts:
    head = HeadFacts("valid", digest, secrets, "e" * 64, position, observed=False)
    return replace(BASE, head=head, published_digest=digest)


def test_an_agent_that_never_got_an_engram_is_planned_as_missing() -> None:
    verdict = assess(BASE, PERSONA)
    assert verdict.status is Status.NEVER_PUBLISHED
    assert verdict.reasons == (Reason.MISSING,)
    assert verdict.causes == (5, 10)


def test_an_agent_carrying_the_current_version_is_in_sync() -> None:
    assert assess(published(D1, S1), PERSONA).status is Status.IN_SYNC


def test_an_engram_carrying_the_same_content_digested_by_an_earlier_rule_is_in_sync() -> None:
    upgraded = PERSONA._replace(digest=D2, aliases=(D1,))  # D1: the seed rule's digest
    assert assess(published(D1, S1), upgraded).status is Status.IN_SYNC
    observed = published(D1, S1)
    assert observed.head is not None
    stale = observed._replace(head=observed.head._replace(observed=True, origin="stale"))
    assert assess(stale, upgraded).status is Status.IN_SYNC
    pending = replace(BASE, pending_event_id="f" * 64, pending_digest=D1, pending_secrets_digest=S1)
    assert assess(pending, upgraded).status is Status.PENDING


def test_an_alias_names_a_version_only_with_its_own_secrets() -> None:
    upgraded = PERSONA._replace(digest=D2, aliases=(D1,))
    verdict = assess(published(D1, S2), upgraded)
    assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.ROTATED_SECRETS,))


def test_a_changed_persona_makes_its_agent_stale() -> None:
    verdict = assess(published(D2, S1), PERSONA)
    assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.STALE_CONTENT,))
    assert 10 in verdict.causes


def test_rotated_secrets_alone_make_an_agent_out_of_date() -> None:
    verdict = assess(published(D1, S2), PERSONA)
    assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.ROTATED_SECRETS,))


def test_a_relay_head_other_than_what_we_published_is_drift() -> None:
    facts = published(D1, S1)
    assert facts.head is not None
    drifted = replace(facts, head=replace(facts.head, digest=D2, observed=True, position=30))
    verdict = assess(drifted, PERSONA)
    assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.DRIFT,))
    assert 30 in verdict.causes


def test_a_head_that_vanished_from_the_relays_is_drift() -> None:
    gone = replace(
        published(D1, S1), head=HeadFacts("missing", None, None, None, 30, observed=True)
    )
    assert assess(gone, PERSONA).reasons == (Reason.DRIFT,)


def test_an_observed_head_equal_to_the_persona_needs_nothing_even_if_never_published() -> None:
    imported = replace(BASE, head=HeadFacts("valid", D1, S1, "f" * 64, 7, observed=True))
    assert assess(imported, PERSONA).status is Status.IN_SYNC


def test_a_sealed_but_unconfirmed_engram_is_resent_not_resealed() -> None:
    sealed = replace(
        BASE,
        pending_event_id="9" * 64,
        pending_digest=D1,
        pending_secrets_digest=S1,
        pending_position=12,
    )
    verdict = assess(sealed, PERSONA)
    assert (verdict.status, verdict.reasons) == (Status.PENDING, (Reason.UNCONFIRMED,))
    [command] = plan([verdict])
    assert command.resend_event_id == "9" * 64


def test_a_sealed_engram_for_an_older_version_is_not_resent() -> None:
    sealed = replace(
        BASE,
        pending_event_id="9" * 64,
        pending_digest=D2,
        pending_secrets_digest=S1,
        pending_position=12,
    )
    [command] = plan([assess(sealed, PERSONA)])
    assert command.resend_event_id is None
    assert command.digest == D1


def test_a_conflict_on_the_current_version_stops_the_planner() -> None:
    conflicted = replace(published(D2, S1), conflict_digest=D1, conflict_position=40)
    verdict = assess(conflicted, PERSONA)
    assert verdict.status is Status.CONFLICT
    assert plan([verdict]) == []


def test_a_newer_persona_version_supersedes_an_old_conflict() -> None:
    conflicted = replace(published(D2, S1), conflict_digest=D2, conflict_position=40)
    assert assess(conflicted, PERSONA).status is Status.OUT_OF_DATE


@pytest.mark.parametrize(
    ("agent", "persona", "status"),
    [
        (replace(BASE, retired=True), PERSONA, Status.RETIRED),
        (BASE, replace(PERSONA, deleted=True), Status.PERSONA_DELETED),
        (BASE, None, Status.PERSONA_DELETED),
    ],
)
def test_retired_agents_and_deleted_personas_get_no_command(
    agent: AgentFacts, persona: PersonaFacts | None, status: Status
) -> None:
    verdict = assess(agent, persona)
    assert verdict.status is status
    assert plan([verdict]) == []


def test_commands_come_out_in_a_stable_order_whatever_the_input_order() -> None:
    agents = [replace(BASE, agent_id=f"id-{i}", pubkey=f"{i:064x}") for i in (3, 1, 2)]
    verdicts = [assess(a, PERSONA) for a in agents]
    assert plan(verdicts) == plan(reversed(verdicts))
    assert [c.pubkey[-1] for c in plan(verdicts)] == ["1", "2", "3"]


_digests = st.none() | st.sampled_from(["d1", "d2"])
_positions = st.integers(0, 50)


# Live agents with no head, no seal and no conflict; every other fact at random.
blank_agents = st.builds(
    AgentFacts,
    agent_id=st.text("0123456789abcdef", min_size=1, max_size=4),
    pubkey=st.text("0123456789abcdef", min_size=1, max_size=4),
    persona_slug=st.just("writer"),
    retired=st.just(False),
    assigned_position=_positions,
    head=st.none(),
    published_digest=_digests,
    pending_event_id=st.none() | st.just("e1"),
    pending_digest=st.none(),
    pending_secrets_digest=_digests,
    pending_position=_positions,
    conflict_digest=st.none(),
    conflict_position=_positions,
    conflict_head_event_id=st.none() | st.just("e2"),
)


_personas = st.none() | st.builds(
    PersonaFacts,
    slug=st.just("writer"),
    digest=st.sampled_from(["d1", "d2"]),
    secrets_digest=st.sampled_from(["s1", "s2"]),
    deleted=st.booleans(),
    position=_positions,
)


@given(first=blank_agents, second=blank_agents, persona=_personas)
def test_agents_with_no_publication_history_get_one_verdict_per_persona(
    first: AgentFacts, second: AgentFacts, persona: PersonaFacts | None
) -> None:
    # The projection judges one such agent per persona version and gives the
    # others its status and reasons (projections.fold, AgentRow.is_blank).
    a, b = assess(first, persona), assess(second, persona)
    assert (a.status, a.reasons) == (b.status, b.reasons)


# -- whose head: our own seals, stale copies and another writer's new content ----------


def observed(digest: str | None, origin: HeadOrigin, state: str = "valid") -> AgentFacts:
    """An agent we published D2 to, whose head a refresh then read (at position 30)."""
    head = HeadFacts(state, digest, S1, "f" * 64, 30, observed=True, origin=origin.value)
    return replace(published(D2, S1), head=head)


@pytest.mark.parametrize(
    ("ours", "sealed_before", "after_publish", "origin"),
    [
        (True, True, True, HeadOrigin.OURS),
        (True, False, False, HeadOrigin.OURS),
        (False, True, True, HeadOrigin.STALE),
        (False, True, False, HeadOrigin.STALE),
        (False, False, False, HeadOrigin.STALE),
        (False, False, True, HeadOrigin.FOREIGN),
    ],
)
def test_a_head_is_ours_by_its_id_and_foreign_only_when_new_content_came_after_our_publish(
    ours: bool, sealed_before: bool, after_publish: bool, origin: HeadOrigin
) -> None:
    found = classify_head(
        ours=ours, digest_sealed_before=sealed_before, after_last_publish=after_publish
    )
    assert found is origin


def test_our_own_older_engram_read_back_as_the_head_is_stale_content_not_drift() -> None:
    verdict = assess(observed(D2, HeadOrigin.OURS), PERSONA)
    assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.STALE_CONTENT,))


def test_another_writers_new_engram_is_a_conflict_unless_the_policy_says_self_heal() -> None:
    facts = observed("3" * 64, HeadOrigin.FOREIGN)
    held = assess(facts, PERSONA)
    assert (held.status, held.causes) == (Status.CONFLICT, (30,))
    assert plan([held]) == []
    [forced] = plan([held], overwrite_conflicts=True)
    assert forced.reasons == (Reason.OVERWRITE,)
    healed = assess(facts, PERSONA, ForeignHeads.SELF_HEAL)
    assert (healed.status, healed.reasons) == (Status.OUT_OF_DATE, (Reason.DRIFT,))


def test_another_writers_tombstone_or_unreadable_engram_counts_as_new_content() -> None:
    for state, digest in (("tombstone", None), ("valid", None)):
        facts = observed(digest, HeadOrigin.FOREIGN, state)
        assert assess(facts, PERSONA).status is Status.CONFLICT
        assert assess(facts, PERSONA, ForeignHeads.SELF_HEAL).reasons == (Reason.DRIFT,)


@pytest.mark.parametrize("origin", [HeadOrigin.STALE, HeadOrigin.UNKNOWN])
def test_a_stale_copy_or_a_head_recorded_before_heads_were_judged_is_written_over(
    origin: HeadOrigin,
) -> None:
    for policy in ForeignHeads:
        verdict = assess(observed("3" * 64, origin), PERSONA, policy)
        assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.DRIFT,))


def test_another_writers_engram_carrying_the_wanted_version_needs_nothing() -> None:
    assert assess(observed(D1, HeadOrigin.FOREIGN), PERSONA).status is Status.IN_SYNC


def _lost_at_read_back(origin: HeadOrigin) -> AgentFacts:
    """Our engram for D1 lost to the head read back with it (recorded just before)."""
    return replace(
        observed("3" * 64, origin),
        conflict_digest=D1,
        conflict_position=31,
        conflict_head_event_id="f" * 64,
    )


def test_a_conflict_found_at_read_back_follows_the_policy_for_its_head() -> None:
    foreign = _lost_at_read_back(HeadOrigin.FOREIGN)
    assert assess(foreign, PERSONA).status is Status.CONFLICT
    assert assess(foreign, PERSONA, ForeignHeads.SELF_HEAL).reasons == (Reason.DRIFT,)
    stale = _lost_at_read_back(HeadOrigin.STALE)
    assert assess(stale, PERSONA).reasons == (Reason.DRIFT,)


_origins = st.sampled_from(["", *HeadOrigin])
_heads = st.none() | st.builds(
    HeadFacts,
    state=st.sampled_from(["valid", "missing", "tombstone"]),
    digest=_digests,
    secrets_digest=st.none() | st.sampled_from(["s1", "s2"]),
    event_id=st.none() | st.sampled_from(["e1", "e2"]),
    position=_positions,
    observed=st.booleans(),
    origin=_origins,
)
any_agents = st.builds(
    AgentFacts,
    agent_id=st.just("id-1"),
    pubkey=st.just("c" * 64),
    persona_slug=st.just("writer"),
    retired=st.booleans(),
    assigned_position=_positions,
    head=_heads,
    published_digest=_digests,
    pending_event_id=st.none() | st.just("e1"),
    pending_digest=_digests,
    pending_secrets_digest=st.none() | st.sampled_from(["s1", "s2"]),
    pending_position=_positions,
    conflict_digest=_digests,
    conflict_position=_positions,
    conflict_head_event_id=st.none() | st.sampled_from(["e1", "e2"]),
    tombstone_event_id=st.none() | st.just("t1"),
    tombstone_position=_positions,
)


@given(agent=any_agents, persona=_personas, policy=st.sampled_from(ForeignHeads))
def test_an_engram_we_sealed_is_never_judged_a_drift(
    agent: AgentFacts, persona: PersonaFacts | None, policy: ForeignHeads
) -> None:
    if agent.head is not None and agent.head.origin == HeadOrigin.OURS:
        assert Reason.DRIFT not in assess(agent, persona, policy).reasons


@given(agent=any_agents, persona=_personas)
def test_self_heal_leaves_no_conflict_standing(
    agent: AgentFacts, persona: PersonaFacts | None
) -> None:
    assert assess(agent, persona, ForeignHeads.SELF_HEAL).status is not Status.CONFLICT


@given(agent=any_agents, persona=_personas)
def test_the_policy_matters_only_where_another_writer_or_a_recorded_conflict_is_involved(
    agent: AgentFacts, persona: PersonaFacts | None
) -> None:
    held = assess(agent, persona, ForeignHeads.CONFLICT)
    healed = assess(agent, persona, ForeignHeads.SELF_HEAL)
    if held != healed:
        assert held.status is Status.CONFLICT
        # healed: written over, or found already holding what is wanted
        assert healed.status in (
            Status.OUT_OF_DATE,
            Status.NEVER_PUBLISHED,
            Status.PENDING,
            Status.IN_SYNC,
            Status.PARTIAL,
        )
        involved = agent.head is not None and agent.head.origin == HeadOrigin.FOREIGN
        assert involved or agent.conflict_digest is not None


@given(agent=any_agents, persona=_personas)
def test_by_default_another_writers_new_engram_is_never_written_over_without_a_person(
    agent: AgentFacts, persona: PersonaFacts | None
) -> None:
    head = agent.head
    if head is None or not head.observed or head.origin != HeadOrigin.FOREIGN:
        return
    if persona is None or (agent.pending_digest, agent.pending_secrets_digest) == (
        persona.digest,
        persona.secrets_digest,
    ):
        return  # nothing wanted, or a resend of what was sealed before it was seen
    if agent.tombstone_event_id is not None:
        return  # a resend of the tombstone a person's retire or delete sealed
    assert plan([assess(agent, persona)]) == [], "written over without a person"


# -- tombstones --------------------------------------------------------------------------

OURS = "e" * 64  # the event id published() gives the head


def ours(facts: AgentFacts) -> AgentFacts:
    """The facts after our publish of that head was confirmed."""
    return replace(facts, published_event_id=OURS)


def test_a_retired_agent_whose_head_is_our_engram_is_due_a_tombstone() -> None:
    retired = replace(ours(published(D1, S1)), retired=True, retired_position=30)
    verdict = assess(retired, PERSONA)
    assert (verdict.status, verdict.reasons) == (Status.TOMBSTONE_DUE, (Reason.RETIRED,))
    assert verdict.causes == (20, 30)
    [command] = plan([verdict])
    assert command.action is Action.TOMBSTONE
    assert (command.digest, command.secrets_digest) == (D1, S1)  # what it replaces
    assert command.resend_event_id is None
    assert command.key == f"{retired.pubkey}:tombstone"


def test_an_agent_whose_persona_was_deleted_is_due_a_tombstone() -> None:
    verdict = assess(ours(published(D1, S1)), replace(PERSONA, deleted=True, position=40))
    assert (verdict.status, verdict.reasons) == (Status.TOMBSTONE_DUE, (Reason.PERSONA_DELETED,))
    assert verdict.causes == (20, 40)


def test_a_head_another_writer_put_there_is_not_ours_to_tombstone() -> None:
    facts = ours(published(D1, S1))
    assert facts.head is not None
    foreign = replace(facts, retired=True, head=replace(facts.head, event_id="f" * 64))
    verdict = assess(foreign, PERSONA)
    assert verdict.status is Status.RETIRED
    assert plan([verdict]) == []


def test_an_agent_whose_key_is_destroyed_cannot_sign_a_tombstone() -> None:
    gone = replace(ours(published(D1, S1)), retired=True, key_destroyed=True)
    assert assess(gone, PERSONA).status is Status.RETIRED


@pytest.mark.parametrize("state", ["tombstone", "missing"])
def test_a_head_that_holds_nothing_needs_no_tombstone(state: str) -> None:
    empty = HeadFacts(state, None, None, "t" * 64 if state == "tombstone" else None, 50, False)
    facts = replace(ours(published(D1, S1)), retired=True, head=empty)
    assert assess(facts, PERSONA).status is Status.RETIRED


def test_a_sealed_but_unconfirmed_tombstone_is_resent_not_resealed() -> None:
    sealed = replace(
        ours(published(D1, S1)),
        retired=True,
        tombstone_event_id="7" * 64,
        tombstone_position=35,
    )
    verdict = assess(sealed, PERSONA)
    assert verdict.reasons == (Reason.RETIRED, Reason.UNCONFIRMED)
    [command] = plan([verdict])
    assert command.resend_event_id == "7" * 64
    assert 35 in command.causes


_tomb_event_ids = st.none() | st.sampled_from(["e1", "e2"])
_tomb_heads = st.none() | st.builds(
    HeadFacts,
    state=st.sampled_from(["valid", "missing", "tombstone"]),
    digest=st.none() | st.sampled_from(["d1", "d2"]),
    secrets_digest=st.none() | st.sampled_from(["s1", "s2"]),
    event_id=_tomb_event_ids,
    position=_positions,
    observed=st.booleans(),
    origin=st.sampled_from(["", *(o.value for o in HeadOrigin)]),
)
laid_to_rest_agents = st.builds(
    AgentFacts,
    agent_id=st.just("id-1"),
    pubkey=st.just("c" * 64),
    persona_slug=st.just("writer"),
    retired=st.booleans(),
    assigned_position=_positions,
    head=_tomb_heads,
    published_digest=_digests,
    pending_event_id=_tomb_event_ids,
    pending_digest=_digests,
    pending_secrets_digest=_digests,
    pending_position=_positions,
    conflict_digest=_digests,
    conflict_position=_positions,
    conflict_head_event_id=_tomb_event_ids,
    version=st.integers(1, 9),
    published_event_id=_tomb_event_ids,
    key_destroyed=st.booleans(),
    retired_position=_positions,
    tombstone_event_id=st.none() | st.just("t1"),
    tombstone_position=_positions,
)


@given(agent=laid_to_rest_agents, persona=_personas)
def test_a_tombstone_is_planned_exactly_for_laid_to_rest_agents_still_holding_our_engram(
    agent: AgentFacts, persona: PersonaFacts | None
) -> None:
    commands = plan([assess(agent, persona)], overwrite_conflicts=True)
    laid_to_rest = agent.retired or persona is None or persona.deleted
    head = agent.head
    due = (
        laid_to_rest
        and not agent.key_destroyed
        and head is not None
        and head.state == "valid"
        and (
            agent.tombstone_event_id is not None
            or (
                head.event_id is not None
                and (head.event_id == agent.published_event_id or head.origin == HeadOrigin.OURS)
            )
        )
    )
    tombstones = [c for c in commands if c.action is Action.TOMBSTONE]
    assert len(tombstones) == (1 if due else 0)
    if laid_to_rest:
        # Never a new engram for them, whatever else the facts say.
        assert all(c.action is Action.TOMBSTONE for c in commands)
    for command in tombstones:
        assert head is not None
        assert (command.digest, command.secrets_digest) == (
            head.digest or "",
            head.secrets_digest or "",
        )
        assert command.resend_event_id == agent.tombstone_event_id
        assert command.agent_version == agent.version
