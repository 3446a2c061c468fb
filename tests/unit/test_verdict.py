"""The verdict on a sent engram (domain.verdict.judge), without relays or a store."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.verdict import (
    Judgement,
    Outcome,
    ReadBack,
    Sent,
    Verdict,
    judge,
    outranks,
    policy_met,
    refused_by_all,
)

OURS = Sent("b" * 64, 1_700_000_000)
TOMBSTONE = Sent("b" * 64, 1_700_000_000, tombstone=True)
R1, R2 = "wss://one.example", "wss://two.example"

RELAYS = st.sampled_from([R1, R2, "wss://three.example"])
OUTCOMES = st.sampled_from(list(Outcome))
ANSWERS = st.lists(st.tuples(RELAYS, OUTCOMES), max_size=4, unique_by=lambda a: a[0])
IDS = st.sampled_from(["a" * 64, "b" * 64, "c" * 64])
TIMES = st.integers(1_699_999_998, 1_700_000_002)
HEADS = st.one_of(
    st.none(),
    st.builds(
        ReadBack,
        st.one_of(st.none(), IDS),
        st.one_of(st.none(), TIMES),
        st.lists(RELAYS, max_size=3, unique=True).map(tuple),
    ),
)
SENT = st.builds(Sent, IDS, TIMES, st.booleans(), st.booleans())


def test_ours_read_back_after_an_ok_is_published_as_acknowledged() -> None:
    head = ReadBack(OURS.event_id, OURS.created_at, (R1,))
    assert judge(OURS, [(R1, Outcome.ACCEPTED)], head) == Judgement(
        Verdict.PUBLISHED, "acknowledged"
    )


def test_ours_read_back_with_its_ok_lost_is_published_by_the_read_back() -> None:
    head = ReadBack(OURS.event_id, OURS.created_at, (R1,))
    assert judge(OURS, [(R1, Outcome.UNKNOWN)], head) == Judgement(Verdict.PUBLISHED, "read-back")


def test_an_ok_that_is_not_read_back_is_not_published() -> None:
    assert judge(OURS, [(R1, Outcome.ACCEPTED)], None) == Judgement(
        Verdict.UNKNOWN, note="no relay answered the read-back"
    )
    nothing = ReadBack(None, None)
    assert judge(OURS, [(R1, Outcome.DUPLICATE)], nothing) == Judgement(
        Verdict.UNKNOWN, note="the read-back did not return it"
    )


def test_a_newer_head_of_another_writer_is_a_conflict() -> None:
    newer = ReadBack("c" * 64, OURS.created_at + 1, (R1,))
    assert judge(OURS, [(R1, Outcome.ACCEPTED)], newer).verdict is Verdict.CONFLICT


def test_an_older_head_that_is_not_ours_leaves_the_verdict_open() -> None:
    older = ReadBack("c" * 64, OURS.created_at - 1, (R1,))
    assert judge(OURS, [(R1, Outcome.ACCEPTED)], older).verdict is Verdict.UNKNOWN


def test_at_the_same_second_the_lower_id_is_the_head() -> None:
    lower = ReadBack("a" * 64, OURS.created_at, (R1,))
    higher = ReadBack("c" * 64, OURS.created_at, (R1,))
    assert judge(OURS, [(R1, Outcome.ACCEPTED)], lower).verdict is Verdict.CONFLICT
    assert judge(OURS, [(R1, Outcome.ACCEPTED)], higher).verdict is Verdict.UNKNOWN


def test_refused_everywhere_is_failed_for_good_only_when_sent_everywhere() -> None:
    refused = [(R1, Outcome.PERMANENT), (R2, Outcome.PERMANENT)]
    assert judge(OURS, refused, None) == Judgement(Verdict.FAILED, final=True)
    resend = OURS._replace(everywhere=False)
    assert judge(resend, refused, None) == Judgement(Verdict.FAILED, final=False)


def test_a_tombstone_read_back_as_the_head_is_tombstoned() -> None:
    head = ReadBack(TOMBSTONE.event_id, TOMBSTONE.created_at, (R1,))
    assert judge(TOMBSTONE, [(R1, Outcome.UNKNOWN)], head).verdict is Verdict.TOMBSTONED


def test_with_ack_all_every_relay_sent_to_must_acknowledge_or_return_it() -> None:
    answers = [(R1, Outcome.ACCEPTED), (R2, Outcome.UNKNOWN)]
    only_one = ReadBack(OURS.event_id, OURS.created_at, (R1,))
    both = ReadBack(OURS.event_id, OURS.created_at, (R1, R2))
    assert judge(OURS, answers, only_one, ack_all=True).verdict is Verdict.UNKNOWN
    assert judge(OURS, answers, both, ack_all=True) == Judgement(Verdict.PUBLISHED, "read-back")
    assert judge(OURS, answers, only_one).verdict is Verdict.PUBLISHED


def test_the_ack_policy_is_one_acknowledgement_or_every_one() -> None:
    mixed = [Outcome.ACCEPTED, Outcome.TEMPORARY]
    assert policy_met(mixed)
    assert not policy_met(mixed, ack_all=True)
    assert policy_met([Outcome.DUPLICATE, Outcome.ACCEPTED], ack_all=True)
    assert not policy_met([])
    assert not policy_met([], ack_all=True)


def test_only_answers_that_all_refuse_for_good_are_a_refusal_by_all() -> None:
    assert refused_by_all([Outcome.PERMANENT])
    assert not refused_by_all([])
    assert not refused_by_all([Outcome.PERMANENT, Outcome.TEMPORARY])
    assert not refused_by_all([Outcome.UNKNOWN])


@given(SENT, st.lists(RELAYS, min_size=1, max_size=3, unique=True), HEADS, st.booleans())
def test_a_refusal_by_every_relay_is_never_published_whatever_is_read_back(
    sent: Sent, relays: list[str], head: ReadBack | None, ack_all: bool
) -> None:
    refused = [(relay, Outcome.PERMANENT) for relay in relays]
    assert judge(sent, refused, head, ack_all=ack_all).verdict is Verdict.FAILED


@given(SENT, ANSWERS, st.booleans())
def test_without_a_read_back_nothing_is_settled_whatever_the_oks(
    sent: Sent, answers: list[tuple[str, Outcome]], ack_all: bool
) -> None:
    for head in (None, ReadBack(None, None)):
        assert judge(sent, answers, head, ack_all=ack_all).verdict in (
            Verdict.UNKNOWN,
            Verdict.FAILED,
        )


@given(SENT, ANSWERS, HEADS, st.booleans())
def test_settled_means_the_head_read_back_is_the_event_sent(
    sent: Sent, answers: list[tuple[str, Outcome]], head: ReadBack | None, ack_all: bool
) -> None:
    judgement = judge(sent, answers, head, ack_all=ack_all)
    if judgement.verdict in (Verdict.PUBLISHED, Verdict.TOMBSTONED):
        assert head is not None
        assert head.event_id == sent.event_id
        assert (judgement.verdict is Verdict.TOMBSTONED) == sent.tombstone
    if judgement.verdict is Verdict.PUBLISHED:
        assert judgement.confirmed_by == (
            "acknowledged" if policy_met((o for _, o in answers), ack_all=ack_all) else "read-back"
        )


@given(SENT, ANSWERS, HEADS, st.booleans())
def test_a_conflict_is_only_ever_a_head_that_outranks_ours(
    sent: Sent, answers: list[tuple[str, Outcome]], head: ReadBack | None, ack_all: bool
) -> None:
    if judge(sent, answers, head, ack_all=ack_all).verdict is Verdict.CONFLICT:
        assert head is not None
        assert head.event_id is not None
        assert head.event_id != sent.event_id
        assert outranks(head.created_at or 0, head.event_id, sent.created_at, sent.event_id)


@given(SENT, ANSWERS, HEADS)
def test_under_ack_all_published_means_every_relay_sent_to_holds_it(
    sent: Sent, answers: list[tuple[str, Outcome]], head: ReadBack | None
) -> None:
    if judge(sent, answers, head, ack_all=True).verdict is Verdict.PUBLISHED:
        assert head is not None
        holding = {relay for relay, outcome in answers if outcome.stored} | set(head.relays)
        assert answers
        assert all(relay in holding for relay, _ in answers)


@given(SENT, ANSWERS, HEADS)
def test_ack_all_never_settles_what_the_default_policy_would_not(
    sent: Sent, answers: list[tuple[str, Outcome]], head: ReadBack | None
) -> None:
    strict = judge(sent, answers, head, ack_all=True).verdict
    if strict in (Verdict.PUBLISHED, Verdict.TOMBSTONED):
        assert judge(sent, answers, head).verdict is strict


@given(SENT, ANSWERS, HEADS, st.booleans())
def test_failed_is_exactly_a_refusal_by_every_relay_it_went_to(
    sent: Sent, answers: list[tuple[str, Outcome]], head: ReadBack | None, ack_all: bool
) -> None:
    judgement = judge(sent, answers, head, ack_all=ack_all)
    refused = refused_by_all(o for _, o in answers)
    assert (judgement.verdict is Verdict.FAILED) == refused
    assert judgement.final == (refused and sent.everywhere)


@given(TIMES, IDS, TIMES, IDS)
def test_head_order_is_strict_and_total_over_distinct_events(
    t1: int, id1: str, t2: int, id2: str
) -> None:
    if (t1, id1) == (t2, id2):
        assert not outranks(t1, id1, t2, id2)
    else:
        assert outranks(t1, id1, t2, id2) != outranks(t2, id2, t1, id1)
