"""The pacing and retry arithmetic behind pipelined publishing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.relay import InvalidRelayUrl, PermanentRelayError, RetryPolicy, TemporaryRelayError
from adapters.relay.publishing import FIRST_GAP, RECOVER_AFTER, Pace


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 10, 50])
def test_retry_delays_grow_exponentially_within_bounds_and_jitter(attempt: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, jitter=0.5)
    full = min(30.0, 0.5 * 2 ** (attempt - 1))
    for _ in range(50):
        assert full * 0.5 <= policy.delay(attempt) <= full


def test_without_jitter_the_delay_is_exact() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=10.0, jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 7)] == [0.25, 0.5, 1.0, 10.0]


def test_a_rate_limited_answer_halves_the_window_and_spaces_sends() -> None:
    pace = Pace(window=64)
    pace.slow_down(sent_at=1.0, now=2.0)
    assert (pace.window, pace.gap) == (32, FIRST_GAP)


def test_answers_to_events_sent_before_the_last_slowdown_do_not_slow_down_again() -> None:
    pace = Pace(window=64)
    pace.slow_down(sent_at=1.0, now=2.0)
    for _ in range(10):
        pace.slow_down(sent_at=1.5, now=2.1)  # the rest of the same burst
    assert (pace.window, pace.gap) == (32, FIRST_GAP)
    pace.slow_down(sent_at=2.5, now=3.0)
    assert (pace.window, pace.gap) == (16, 2 * FIRST_GAP)


def test_the_gap_never_exceeds_its_maximum_and_the_window_never_drops_below_one() -> None:
    pace = Pace(window=4)
    for n in range(20):
        pace.slow_down(sent_at=float(n), now=float(n) + 0.5, max_gap=3.0)
    assert (pace.window, pace.gap) == (1, 3.0)


def test_the_pace_recovers_after_a_run_of_acceptances() -> None:
    pace = Pace(window=64)
    pace.slow_down(sent_at=1.0, now=2.0)
    pace.slow_down(sent_at=3.0, now=4.0)
    assert (pace.window, pace.gap) == (16, 2 * FIRST_GAP)
    for _ in range(RECOVER_AFTER):
        pace.succeeded(sent_at=5.0, limit=64)
    assert pace.window == 32
    assert pace.gap == pytest.approx(2 * FIRST_GAP * 0.8)


def test_a_permanent_failure_is_never_retried() -> None:
    policy = RetryPolicy(base_delay=0.25, jitter=0.0)
    for attempt in (1, 2, 5):
        assert policy.pause_after(PermanentRelayError("404", url="ws://x"), attempt) is None
        assert policy.pause_after(InvalidRelayUrl("bad", url="ws://x"), attempt) is None


def test_a_temporary_failure_without_a_word_on_when_backs_off_on_the_policys_schedule() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=10.0, jitter=0.0)
    error = TemporaryRelayError("connection refused", url="ws://x")
    assert [policy.pause_after(error, n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]


@given(
    st.floats(min_value=0.0, max_value=120.0),
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_a_temporary_failure_waits_at_least_as_long_as_the_relay_asked(
    asked: float, attempt: int, jitter: float
) -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=5.0, jitter=jitter)
    pause = policy.pause_after(TemporaryRelayError("503", url="ws://x", delay=asked), attempt)
    assert pause is not None
    assert pause >= asked
    assert pause <= max(asked, 5.0)
