"""A refresh takes the head the log records without opening it again, only when
the relays show that very event and nothing that could outrank it."""

from __future__ import annotations

import dataclasses

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.sync.heads import RelayHead, _still_the_head

AGENT = SecretKey.generate()


def engram(created_at: int, content: str = "sealed") -> Event:
    return sign_event(AGENT, created_at=created_at, kind=30174, tags=[["d", "x"]], content=content)


HEAD = engram(1_000)
KNOWN = RelayHead("valid", HEAD.id, None, "1" * 64, "2" * 64)


def test_the_recorded_head_alone_is_taken_as_recorded() -> None:
    assert _still_the_head([HEAD], KNOWN) == RelayHead("valid", HEAD.id, 1_000, "1" * 64, "2" * 64)


def test_older_versions_beside_it_change_nothing() -> None:
    # nostr-relay returns the older versions of an addressable event too.
    assert _still_the_head([engram(900), HEAD, engram(999)], KNOWN) is not None


def test_anything_newer_sends_the_refresh_through_full_head_selection() -> None:
    assert _still_the_head([HEAD, engram(1_001)], KNOWN) is None
    # A newer event that would be invalid counts too: head selection decides.
    forged = dataclasses.replace(engram(1_002), sig="0" * 128)
    assert _still_the_head([HEAD, forged], KNOWN) is None


def test_an_event_that_only_claims_the_recorded_id_is_not_taken() -> None:
    tampered = dataclasses.replace(HEAD, content="something else")
    assert tampered.id == HEAD.id
    assert _still_the_head([tampered], KNOWN) is None


def test_a_head_the_relays_no_longer_show_is_not_taken() -> None:
    assert _still_the_head([engram(900)], KNOWN) is None
