"""How an apply cuts its commands into batches: full ones, then a shrinking tail."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.sync.engine import TAIL_BATCH, batch_bounds


@given(total=st.integers(0, 5_000), size=st.integers(1, 600))
def test_batches_cover_every_command_once_in_order_and_never_exceed_the_batch_size(
    total: int, size: int
) -> None:
    bounds = list(batch_bounds(total, size))
    covered = [n for start, stop in bounds for n in range(start, stop)]
    assert covered == list(range(total))
    assert all(0 < stop - start <= size for start, stop in bounds)


@given(total=st.integers(1, 5_000), size=st.integers(1, 600))
def test_batches_only_shrink_and_all_but_the_last_two_batches_worth_are_full(
    total: int, size: int
) -> None:
    sizes = [stop - start for start, stop in batch_bounds(total, size)]
    assert sizes == sorted(sizes, reverse=True)
    full = max(0, total - 2 * size) // size
    assert sizes[:full] == [size] * full
    # Only the very last batch may be smaller than the tail's floor.
    assert all(n >= min(TAIL_BATCH, size) for n in sizes[:-1])


def test_a_5000_engram_apply_ends_with_a_small_batch() -> None:
    sizes = [stop - start for start, stop in batch_bounds(5_000, 500)]
    assert sizes == [500] * 9 + [250, 125, 62, 50, 13]
