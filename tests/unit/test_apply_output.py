"""The apply report for people: verdicts grouped by cause, and the progress line."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from adapters.cli.publish import ProgressBar, verdict_lines
from adapters.sync.report import AgentVerdict
from domain.verdict import Verdict

CAUSES = [
    "cannot connect to ws://127.0.0.1:7777: connection refused",
    "ws://a: invalid: too big",
    "ws://a: no answer within 2 s",
]


def _verdict(n: int, verdict: Verdict, cause: str) -> AgentVerdict:
    pubkey = f"{n:016x}" * 4  # distinct in the 16 characters a report shows
    return AgentVerdict(pubkey, "writer", verdict, f"{n + 1:064x}", cause)


def test_thousands_of_agents_failing_for_one_reason_are_one_line() -> None:
    verdicts = [_verdict(n, Verdict.UNKNOWN, CAUSES[0]) for n in range(6004)]
    (line,) = verdict_lines(verdicts)
    assert line.startswith(f"unknown 6,004: {CAUSES[0]} (agents: ")
    assert line.endswith("and 6,001 more)")


def test_ids_in_a_detail_do_not_split_a_group() -> None:
    verdicts = [
        _verdict(n, Verdict.CONFLICT, f"another writer's engram is the head ({n + 7:064x})")
        for n in range(5)
    ]
    assert verdict_lines(verdicts) == [
        "conflict 5: another writer's engram is the head (agents: "
        + ", ".join(o.pubkey[:16] for o in verdicts[:3])
        + " and 2 more)"
    ]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([Verdict.FAILED, Verdict.UNKNOWN, Verdict.CONFLICT, Verdict.PUBLISHED]),
            st.sampled_from(CAUSES),
        ),
        max_size=200,
    )
)
def test_every_agent_not_published_is_counted_once_in_one_line_per_verdict_and_cause(
    picks: list[tuple[Verdict, str]],
) -> None:
    # Published on every relay: nothing to say about it.
    verdicts = [
        _verdict(n, verdict, "" if verdict is Verdict.PUBLISHED else cause)
        for n, (verdict, cause) in enumerate(picks)
    ]
    lines = verdict_lines(verdicts)
    groups = {(r, c) for r, c in picks if r != "published"}
    assert len(lines) == len(groups)
    counted = sum(int(line.split(":")[0].split()[1].replace(",", "")) for line in lines)
    assert counted == sum(1 for r, _ in picks if r != "published")


def test_agents_published_but_refused_by_one_relay_are_a_line_naming_it() -> None:
    lacking = "not held by every relay: http://b: blocked: you are banned from this community"
    verdicts = [_verdict(n, Verdict.PUBLISHED, lacking) for n in range(2)]
    verdicts.append(_verdict(2, Verdict.PUBLISHED, ""))
    assert verdict_lines(verdicts) == [
        f"published 2: {lacking} (agents: " + ", ".join(o.pubkey[:16] for o in verdicts[:2]) + ")"
    ]


def test_the_progress_line_says_what_it_waits_for_then_counts_engrams() -> None:
    now = [100.0]
    stream = io.StringIO()
    bar = ProgressBar(stream, timeout=10, width=10, clock=lambda: now[0])
    now[0] = 103.0
    bar.draw()
    assert "reading what the relays hold ... 3 s" in stream.getvalue()
    assert "given up after 10 s" in stream.getvalue()
    bar(5, 10)
    assert "[#####.....] 5/10 engrams ... 3 s" in stream.getvalue()
    bar.finish()
    assert stream.getvalue().endswith("\n")
