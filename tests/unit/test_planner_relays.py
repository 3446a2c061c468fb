"""The planner judges each agent on every configured relay, not on the union of them."""

from __future__ import annotations

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
from tests.unit.test_planner import BASE, D1, D2, S1

OURS, THEIRS, SEALED = "e" * 64, "f" * 64, "d" * 64
A, B, C = "ws://a.example", "ws://b.example", "ws://c.example"
PERSONA = PersonaFacts("writer", D1, S1, deleted=False, position=10)


def agent(
    held: tuple[str, ...],
    *,
    head_id: str = OURS,
    state: str = "valid",
    observed: bool = False,
    digest: str = D1,
) -> AgentFacts:
    head = HeadFacts(
        state,
        digest if state == "valid" else None,
        S1 if state == "valid" else None,
        head_id if state != "missing" else None,
        20,
        observed,
        relays=held,
    )
    return BASE._replace(
        head=head,
        published_digest=D1,
        version=4,
        published_event_id=OURS,
        published_secrets_digest=S1,
    )


def test_an_engram_on_every_configured_relay_is_in_sync() -> None:
    assert assess(agent((A, B)), PERSONA, relays=(A, B)).status is Status.IN_SYNC


def test_a_relay_that_lacks_the_current_engram_makes_the_agent_partial() -> None:
    verdict = assess(agent((A,)), PERSONA, relays=(A, B))
    assert verdict.status is Status.PARTIAL
    assert verdict.reasons == (Reason.MISSING_ON_RELAY,)
    assert verdict.relays == (B,)
    assert verdict.causes == (20,)


def test_a_partial_agent_gets_our_published_event_again_on_the_relays_that_lack_it() -> None:
    [command] = plan([assess(agent((B,)), PERSONA, relays=(A, B, C))])
    assert command.resend_event_id == OURS
    assert command.relays == (A, C)
    assert command.reasons == (Reason.MISSING_ON_RELAY,)
    assert command.agent_version == 4


def test_a_sealed_event_found_as_the_head_is_resent_rather_than_sealed_again() -> None:
    found = agent((A,), head_id=SEALED, observed=True)._replace(
        pending_event_id=SEALED, pending_digest=D1, pending_secrets_digest=S1, pending_position=19
    )
    [command] = plan([assess(found, PERSONA, relays=(A, B))])
    assert (command.resend_event_id, command.relays) == (SEALED, (B,))


def test_a_head_we_cannot_resend_is_sealed_anew_for_every_relay() -> None:
    # Another writer's engram with the current content: we hold no copy of it.
    foreign = agent((A,), head_id=THEIRS, observed=True)
    [command] = plan([assess(foreign, PERSONA, relays=(A, B))])
    assert command.resend_event_id is None
    assert command.relays == ()


def test_our_engram_gone_from_every_relay_is_resent_to_all_of_them() -> None:
    lost = agent((), state="missing", observed=True)
    verdict = assess(lost, PERSONA, relays=(A, B))
    assert (verdict.status, verdict.reasons) == (Status.PARTIAL, (Reason.MISSING_ON_RELAY,))
    [command] = plan([verdict])
    assert (command.resend_event_id, command.relays) == (OURS, (A, B))


def test_a_lost_engram_of_an_older_version_is_drift_not_a_resend() -> None:
    lost = agent((), state="missing", observed=True)._replace(published_digest=D2)
    verdict = assess(lost, PERSONA, relays=(A, B))
    assert (verdict.status, verdict.reasons) == (Status.OUT_OF_DATE, (Reason.DRIFT,))


def test_a_stale_engram_is_republished_everywhere_whatever_the_relays_hold() -> None:
    [command] = plan([assess(agent((A,), digest=D2), PERSONA, relays=(A, B))])
    assert command.resend_event_id is None
    assert command.relays == ()
    assert command.reasons == (Reason.STALE_CONTENT,)


def test_with_no_relay_configured_nothing_is_missing_on_one() -> None:
    assert assess(agent(()), PERSONA, relays=()).status is Status.IN_SYNC


relay_sets = st.sets(st.sampled_from([A, B, C]))


@given(configured=relay_sets, held=relay_sets)
def test_an_agent_carrying_the_current_version_is_planned_exactly_for_the_relays_lacking_it(
    configured: set[str], held: set[str]
) -> None:
    relays = tuple(sorted(configured))
    verdict = assess(agent(tuple(sorted(held))), PERSONA, relays=relays)
    lacking = tuple(r for r in relays if r not in held)
    commands = plan([verdict])
    if lacking:
        assert verdict.status is Status.PARTIAL
        [command] = commands
        assert command.relays == lacking
        assert command.resend_event_id == OURS
    else:
        assert verdict.status is Status.IN_SYNC
        assert commands == []
    assert plan([verdict]) == commands, "the same facts, the same commands"


def test_after_a_crash_the_event_sealed_for_a_partial_agent_goes_out_not_a_second_seal() -> None:
    # The head is another writer's with the current content, so a new seal was made
    # for every relay; the apply died before it was confirmed.
    crashed = agent((A,), head_id=THEIRS, observed=True)._replace(
        pending_event_id=SEALED, pending_digest=D1, pending_secrets_digest=S1, pending_position=21
    )
    [command] = plan([assess(crashed, PERSONA, relays=(A, B))])
    assert (command.resend_event_id, command.relays) == (SEALED, ())
