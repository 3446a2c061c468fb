"""The one rule that dates a write over a head (:mod:`domain.clock`): ``max(now, head + 1)``
inside the window, never more than the threshold past our clock, and a head that would
push it further a conflict naming the head, not a write."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.clock import MAX_AHEAD, HeadTooFarAhead, choose_created_at

T0 = 1_700_000_000
HEAD = "h" * 64

nows = st.integers(min_value=0, max_value=2**40)
offsets = st.integers(min_value=-(2**32), max_value=2**32)
thresholds = st.integers(min_value=0, max_value=100_000)


# The properties, for any clock, head and threshold


@given(now=nows, offset=offsets, max_ahead=thresholds, strictly_after=st.booleans())
def test_a_written_date_outranks_the_head_and_is_never_past_the_threshold(
    now: int, offset: int, max_ahead: int, strictly_after: bool
) -> None:
    head = max(0, now + offset)
    chosen = choose_created_at(
        now, head, head_event_id=HEAD, max_ahead=max_ahead, strictly_after=strictly_after
    )
    if isinstance(chosen, HeadTooFarAhead):
        return
    assert chosen >= (head + 1 if strictly_after else head)
    assert chosen >= now
    assert chosen - now <= max_ahead


@given(now=nows, offset=offsets, max_ahead=thresholds, strictly_after=st.booleans())
def test_a_head_beyond_the_threshold_is_never_written_over(
    now: int, offset: int, max_ahead: int, strictly_after: bool
) -> None:
    head = max(0, now + offset)
    chosen = choose_created_at(
        now, head, head_event_id=HEAD, max_ahead=max_ahead, strictly_after=strictly_after
    )
    earliest = head + 1 if strictly_after else head
    if earliest - now > max_ahead:
        assert chosen == HeadTooFarAhead(HEAD, head, now, max_ahead)
        assert chosen.ahead == head - now
    else:
        assert chosen == max(now, earliest)


@given(now=nows, max_ahead=thresholds)
def test_with_no_head_a_write_is_dated_now(now: int, max_ahead: int) -> None:
    assert choose_created_at(now, None, max_ahead=max_ahead) == now


# The points that matter


def test_a_head_in_the_past_gives_now() -> None:
    assert choose_created_at(T0, T0 - 100) == T0
    assert choose_created_at(T0, T0 - 100, strictly_after=False) == T0


def test_a_head_at_now_or_a_little_ahead_gives_head_plus_one() -> None:
    assert choose_created_at(T0, T0) == T0 + 1
    assert choose_created_at(T0, T0 + 30) == T0 + 31
    assert choose_created_at(T0, T0 + 600) == T0 + 601


def test_a_deletion_is_dated_no_earlier_than_the_head_it_deletes() -> None:
    assert choose_created_at(T0, T0, strictly_after=False) == T0
    assert choose_created_at(T0, T0 + 600, strictly_after=False) == T0 + 600
    assert choose_created_at(T0, T0 + MAX_AHEAD, strictly_after=False) == T0 + MAX_AHEAD


def test_the_threshold_stays_inside_buzzs_900_s_window_with_60_s_to_spare() -> None:
    assert MAX_AHEAD == 840
    assert choose_created_at(T0, T0 + MAX_AHEAD - 1) == T0 + MAX_AHEAD
    # head + 1 would be 841 s past our clock: a conflict, as 870 s and 900 s are.
    for ahead in (MAX_AHEAD, 870, 900, 2 * 86400):
        assert isinstance(choose_created_at(T0, T0 + ahead), HeadTooFarAhead), ahead


def test_the_threshold_is_a_parameter() -> None:
    assert choose_created_at(T0, T0 + 59, max_ahead=60) == T0 + 60
    assert isinstance(choose_created_at(T0, T0 + 60, max_ahead=60), HeadTooFarAhead)
    with pytest.raises(ValueError, match="negative"):
        choose_created_at(T0, T0, max_ahead=-1)


def test_the_conflict_names_the_head_its_date_and_how_far_ahead_it_is() -> None:
    conflict = choose_created_at(T0, T0 + 870, head_event_id=HEAD)
    assert isinstance(conflict, HeadTooFarAhead)
    assert (conflict.head_event_id, conflict.head_created_at, conflict.ahead) == (
        HEAD,
        T0 + 870,
        870,
    )
    text = conflict.describe()
    assert HEAD in text
    assert str(T0 + 870) in text
    assert "870 s ahead" in text
    assert "840 s" in text
    assert "clock-poisoned" in text
