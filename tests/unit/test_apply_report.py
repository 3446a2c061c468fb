"""The apply report: counts by result, and a repr that stays short."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from adapters.sync.report import AgentVerdict, ApplyReport
from domain.verdict import Verdict


def report(published: int, failed: int = 0) -> ApplyReport:
    verdicts = [AgentVerdict(f"{n:064x}", "writer", Verdict.PUBLISHED) for n in range(published)]
    verdicts += [
        AgentVerdict(f"{n:064x}", "writer", Verdict.FAILED, detail="refused") for n in range(failed)
    ]
    return ApplyReport(planned=published + failed, verdicts=tuple(verdicts), unchanged=3)


def test_the_summary_counts_each_verdict() -> None:
    assert report(4, failed=2).summary() == {
        "published": 4,
        "tombstoned": 0,
        "unchanged": 3,
        "failed": 2,
        "unknown": 0,
        "conflicts": 0,
        "unverified": 0,
    }
    assert not report(4, failed=2).converged
    assert report(4).converged


def test_a_report_with_an_unread_relay_is_not_verified_even_when_nothing_failed() -> None:
    assert report(4).verified
    unread = replace(report(4), unreadable={"ws://127.0.0.1:1": "connection refused"})
    assert unread.converged
    assert not unread.verified
    some = replace(report(0), unverified=2)
    assert not some.verified


def test_a_confirmed_tombstone_counts_as_converged() -> None:
    one = report(1)
    tombstoned = AgentVerdict("f" * 64, "writer", Verdict.TOMBSTONED, "e" * 64)
    done = replace(one, verdicts=(*one.verdicts, tombstoned))
    assert done.summary()["tombstoned"] == 1
    assert done.converged


def test_the_repr_of_a_large_report_is_its_counts_not_every_outcome() -> None:
    # asyncio.run formats it as the apply ends: it must not grow with the fleet.
    small, large = repr(report(2)), repr(report(5000))
    assert large.startswith("ApplyReport(planned=5000")
    assert "'published': 5000" in large
    assert len(large) == len(small) + 6  # the digits of the counts, nothing more


def test_a_report_is_a_value_nothing_changes_once_it_is_made() -> None:
    made = report(1)
    with pytest.raises(FrozenInstanceError):
        made.planned = 2  # type: ignore[misc]
    assert isinstance(made.verdicts, tuple)
