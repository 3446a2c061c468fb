"""Relay frames parsed into values, and OK answers classified by their prefix."""

from __future__ import annotations

import orjson
import pytest

from adapters.nostr.keys import SecretKey
from adapters.relay import OkMessage, Outcome, classify
from adapters.relay.messages import (
    AuthChallenge,
    Closed,
    EndOfStoredEvents,
    EventMessage,
    MalformedEvent,
    Notice,
    asks_for_auth,
    event_frame,
    parse_frame,
    prefix_of,
)
from tests.faults.fake_relay import GARBAGE_FRAMES
from tests.faults.samples import engram_like

ID = "ab" * 32


@pytest.mark.parametrize(
    ("accepted", "message", "outcome"),
    [
        (True, "", Outcome.ACCEPTED),
        (True, "pow: difficulty 25>=24", Outcome.ACCEPTED),
        (True, "anything at all", Outcome.ACCEPTED),
        (True, "duplicate: already have this event", Outcome.DUPLICATE),
        (False, "duplicate: exists", Outcome.DUPLICATE),
        (False, "Duplicate: exists", Outcome.DUPLICATE),
        (False, "rate-limited: slow down", Outcome.TEMPORARY),
        (False, "error: could not connect to the database", Outcome.TEMPORARY),
        (False, "error: unknown", Outcome.TEMPORARY),
        (
            False,
            "auth-required: we only accept events from registered users",
            Outcome.PERMANENT,
        ),
        (False, "invalid: event creation date is too far off", Outcome.PERMANENT),
        (False, "blocked: you are banned from posting here", Outcome.PERMANENT),
        (False, "restricted: not allowed to write.", Outcome.PERMANENT),
        (False, "pow: difficulty 26 is less than 30", Outcome.PERMANENT),
        (False, "mute: no one was listening to your ephemeral event", Outcome.PERMANENT),
        (False, "unsupported: whatever", Outcome.PERMANENT),
        (False, "some-new-prefix: a relay invented it", Outcome.PERMANENT),
        (False, "", Outcome.PERMANENT),
        (False, "no prefix here", Outcome.PERMANENT),
        (False, "two words: are not a prefix", Outcome.PERMANENT),
        (False, ":empty prefix", Outcome.PERMANENT),
    ],
)
def test_ok_answers_are_classified_by_prefix(
    accepted: bool, message: str, outcome: Outcome
) -> None:
    assert classify(OkMessage(ID, accepted, message)) is outcome


def test_only_accepted_and_duplicate_mean_the_relay_holds_the_event() -> None:
    assert {o for o in Outcome if o.stored} == {Outcome.ACCEPTED, Outcome.DUPLICATE}


def test_outcome_values_are_the_ones_the_event_log_records() -> None:
    assert {o.value for o in Outcome} == {
        "accepted",
        "duplicate",
        "permanent",
        "temporary",
        "unknown",
    }


@pytest.mark.parametrize(
    ("accepted", "message", "asks"),
    [
        (False, "auth-required: we only accept events from registered users", True),
        (False, "AUTH-REQUIRED: shouting", True),
        (True, "auth-required: odd but accepted", False),
        (False, "restricted: not a relay member", False),
        (False, "auth required: not a prefix", False),
    ],
)
def test_only_an_auth_required_refusal_asks_for_nip42_auth(
    accepted: bool, message: str, asks: bool
) -> None:
    assert asks_for_auth(OkMessage(ID, accepted, message)) is asks


@pytest.mark.parametrize(
    ("message", "prefix"),
    [
        ("invalid: x", "invalid"),
        ("RATE-LIMITED: x", "rate-limited"),
        ("  error : x", "error"),
        ("no colon", ""),
        ("two words: x", ""),
        ("", ""),
        (":", ""),
    ],
)
def test_prefix_of(message: str, prefix: str) -> None:
    assert prefix_of(message) == prefix


def test_frames_become_values() -> None:
    event = engram_like(SecretKey.generate(), "cd" * 32, 1)
    assert parse_frame(f'["OK","{ID}",false,"invalid: no"]') == OkMessage(ID, False, "invalid: no")
    assert parse_frame(f'["OK","{ID}",true]') == OkMessage(ID, True, "")
    assert parse_frame(orjson.dumps(["EVENT", "s", event.to_dict()])) == EventMessage("s", event)
    assert parse_frame('["EOSE","s"]') == EndOfStoredEvents("s")
    assert parse_frame('["CLOSED","s","error: shutting down"]') == Closed(
        "s", "error: shutting down"
    )
    assert parse_frame('["NOTICE","hello"]') == Notice("hello")
    assert parse_frame('["AUTH","challenge"]') == AuthChallenge("challenge")


def test_an_event_of_the_wrong_shape_is_reported_as_malformed() -> None:
    message = parse_frame('["EVENT","s",{"id":"nothex"}]')
    assert message == MalformedEvent("s", "malformed")


@pytest.mark.parametrize("frame", GARBAGE_FRAMES)
def test_garbage_frames_parse_to_nothing(frame: str) -> None:
    message = parse_frame(frame)
    # The one well-formed OK in the garbage is for an event nobody sent: it parses.
    assert message is None or isinstance(message, OkMessage | MalformedEvent)


def test_relay_text_is_truncated() -> None:
    message = parse_frame(orjson.dumps(["NOTICE", "x" * 10_000]))
    assert isinstance(message, Notice)
    assert len(message.message) == 500


def test_an_event_frame_is_text_with_the_event_unchanged() -> None:
    event = engram_like(SecretKey.generate(), "cd" * 32, 1)
    frame = event_frame(event)
    assert isinstance(frame, str)
    assert orjson.loads(frame) == ["EVENT", event.to_dict()]
    assert frame == event_frame(event)
