"""The pure planner: one agent's facts and its persona's version in, a verdict out."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.planner import (
    AgentFacts,
    HeadFacts,
    PersonaFacts,
    Reason,
    Status,
    assess,
    plan,
)


def replace(facts: Any, **changes: Any) -> Any:
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
