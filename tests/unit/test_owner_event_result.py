"""How publishing an owner event went, as ``--json`` and the text tell it: each relay's
answer in the words of :class:`domain.verdict.Outcome`, ``not-sent`` for a relay it
never went to, and *published* only when every relay returned it."""

from __future__ import annotations

import argparse
import io

from adapters.cli.output import Context
from adapters.cli.personas import persona_event_code, print_persona_event
from adapters.owner_events import OwnerEventOnRelay, OwnerEventResult
from adapters.relay import Answer
from domain.clock import MAX_AHEAD, HeadTooFarAhead
from domain.persona import PERSONA_KIND
from domain.verdict import Outcome

EVENT = "e" * 64
HELD = OwnerEventOnRelay("ws://a", Answer("ws://a", EVENT, Outcome.ACCEPTED), held=True)
REFUSED = OwnerEventOnRelay(
    "ws://b", Answer("ws://b", EVENT, Outcome.PERMANENT, "blocked", "blocked: not you"), False
)
NEVER_SENT = OwnerEventOnRelay("ws://c", None, held=False)


def _result(*relays: OwnerEventOnRelay) -> OwnerEventResult:
    return OwnerEventResult(PERSONA_KIND, "writer", EVENT, 1_700_000_000, relays)


def test_a_relay_s_answer_is_its_outcome_and_a_relay_never_sent_to_says_not_sent() -> None:
    doc = _result(HELD, REFUSED, NEVER_SENT).doc()
    assert doc["published"] is False
    assert doc["relays"] == [
        {"relay": "ws://a", "answer": "accepted", "message": "", "read_back": True},
        {
            "relay": "ws://b",
            "answer": "permanent",
            "message": "blocked: not you",
            "read_back": False,
        },
        {"relay": "ws://c", "answer": "not-sent", "message": "", "read_back": False},
    ]


def test_an_event_every_relay_returned_is_published() -> None:
    assert _result(HELD).published
    assert not _result(HELD, NEVER_SENT).published


def test_the_text_says_published_only_of_a_relay_that_returned_it() -> None:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(args=argparse.Namespace(), stdin=io.BytesIO(), stdout=out, stderr=err)
    print_persona_event(ctx, _result(HELD, REFUSED, NEVER_SENT))
    what = "persona event (kind:30175)"
    assert out.getvalue().splitlines() == [
        f"{what} {EVENT} published on ws://a, read back",
        f"{what} {EVENT} NOT read back from ws://b (permanent: blocked: not you)",
        f"{what} {EVENT} NOT read back from ws://c (not-sent)",
    ]
    assert "not on every relay yet" in err.getvalue()


def test_a_head_too_far_ahead_is_a_conflict_never_published_and_named_in_json_and_text() -> None:
    head = "f" * 64
    conflict = HeadTooFarAhead(head, 1_700_000_870, 1_700_000_000, MAX_AHEAD)
    result = OwnerEventResult(PERSONA_KIND, "writer", None, None, (), conflict=conflict)
    assert not result.published
    doc = result.doc()
    assert doc["event_id"] is None
    assert doc["relays"] == []
    assert doc["conflict"] == {
        "reason": "clock-poisoned",
        "head_event_id": head,
        "head_created_at": 1_700_000_870,
        "ahead": 870,
        "max_ahead": MAX_AHEAD,
        "detail": conflict.describe(),
    }
    assert _result(HELD).doc()["conflict"] is None
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(args=argparse.Namespace(), stdin=io.BytesIO(), stdout=out, stderr=err)
    print_persona_event(ctx, result)
    assert out.getvalue() == ""
    assert err.getvalue().startswith(
        "fleetsync: warning: the persona event (kind:30175) was not published: conflict: "
        f"the head {head} is dated 1700000870, 870 s ahead of now"
    )
    assert persona_event_code(result) == 2
