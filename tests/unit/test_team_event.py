"""buzz's kind:30176 team events: content as buzz writes it, and the head per team
whatever order the relays send events in."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.nostr.team_event import parse_team_content, select_team_heads
from tests.support.examples import examples

OWNER = SecretKey.generate()
OTHER = SecretKey.generate()


def team(d: str, at: int, content: str, key: SecretKey = OWNER) -> Event:
    return sign_event(key, created_at=at, kind=30176, tags=[("d", d)], content=content)


def test_content_as_current_buzz_writes_it() -> None:
    content = parse_team_content('{"name":"Crew","instructions":null,"persona_ids":["a","b"]}')
    assert content.persona_ids == ("a", "b")
    assert content.instructions is None
    assert content.instructions_given


def test_an_older_clients_content_says_what_it_left_out() -> None:
    content = parse_team_content('{"name":"Crew"}')
    assert content.persona_ids is None
    assert not content.instructions_given


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "not a JSON object"),
        ("{", "not JSON"),
        ('{"name":" "}', "no team name"),
        ('{"name":"x","persona_ids":"a"}', "persona_ids"),
        ('{"name":"x","instructions":3}', "instructions"),
    ],
)
def test_bad_content_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_team_content(text)


def test_events_by_another_author_or_with_a_broken_signature_are_set_aside() -> None:
    good = team("crew", 10, '{"name":"Crew"}')
    foreign = team("crew", 20, '{"name":"Theirs"}', OTHER)
    forged = Event(
        good.id, good.pubkey, good.created_at, good.kind, good.tags, good.content, "00" * 64
    )
    heads = select_team_heads([good, foreign, forged], OWNER.public_key)
    assert [h.event.id for h in heads.heads] == [good.id]
    assert len(heads.discarded) == 2


@settings(max_examples=examples(30), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_the_head_per_team_does_not_depend_on_arrival_order(
    specs: list[tuple[str, int, bool]], rng: random.Random
) -> None:
    events = [
        team(d, at, json.dumps({"name": f"{d}{at}"}) if ok else "nope") for d, at, ok in specs
    ]
    shuffled = list(events)
    rng.shuffle(shuffled)
    one = select_team_heads(events, OWNER.public_key)
    two = select_team_heads(shuffled, OWNER.public_key)
    # By id: two signings of one event differ only in the signature's nonce, and a
    # relay holds one of them, whichever it saw first.
    assert [h.event.id for h in one.heads] == [h.event.id for h in two.heads]
    assert [u.event_id for u in one.unusable] == [u.event_id for u in two.unusable]
