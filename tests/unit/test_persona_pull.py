"""What ``persona pull`` takes in (domain.persona_pull), and the head per slug it is
given (head selection over signed events), whatever order the relays send them in."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_event import select_persona_head
from domain.persona_pull import LocalPersona, PersonaHead, PullAction, decide, newest
from tests.support.examples import examples

SLUGS = st.sampled_from(["writer", "reviewer", "a_ops"])
HEADS = st.builds(
    PersonaHead,
    slug=SLUGS,
    event_id=st.text("0123456789abcdef", min_size=4, max_size=4),
    created_at=st.integers(1_700_000_000, 1_700_000_050),
    digest=st.sampled_from(["d1", "d2", "d3"]),
)
# An event id names one event: two heads with one id are the same event.
HEAD_LISTS = st.lists(HEADS, max_size=12, unique_by=lambda h: h.event_id)
LOCAL = st.dictionaries(
    SLUGS,
    st.builds(
        LocalPersona,
        digest=st.sampled_from(["d1", "d2", "d3"]),
        changed_at=st.integers(1_700_000_000, 1_700_000_050),
        deleted=st.booleans(),
    ),
)


@given(HEAD_LISTS, st.randoms())
def test_the_head_per_slug_does_not_depend_on_the_order_events_arrive_in(
    heads: list[PersonaHead], rng: random.Random
) -> None:
    shuffled = list(heads)
    rng.shuffle(shuffled)
    assert newest(shuffled) == newest(heads)


@given(HEAD_LISTS)
def test_the_head_is_the_newest_and_ties_go_to_the_lowest_id(heads: list[PersonaHead]) -> None:
    for slug, head in newest(heads).items():
        same = [h for h in heads if h.slug == slug]
        assert all(
            (h.created_at, h.event_id) == (head.created_at, head.event_id)
            or h.created_at < head.created_at
            or (h.created_at == head.created_at and h.event_id > head.event_id)
            for h in same
        )


@given(HEAD_LISTS, LOCAL, st.integers(1_700_000_050, 1_700_000_100))
def test_pulling_again_after_taking_heads_in_takes_nothing(
    heads: list[PersonaHead], local: dict[str, LocalPersona], now: int
) -> None:
    after = dict(local)
    for decision in decide(heads, local):
        if decision.action is PullAction.SAVE:
            after[decision.head.slug] = LocalPersona(decision.head.digest, now, False)
    assert all(d.action is PullAction.SKIP for d in decide(heads, after))


@given(HEAD_LISTS, LOCAL)
def test_a_head_not_newer_than_the_local_change_is_never_taken(
    heads: list[PersonaHead], local: dict[str, LocalPersona]
) -> None:
    for decision in decide(heads, local):
        mine = local.get(decision.head.slug)
        if decision.action is PullAction.SAVE and mine is not None:
            assert decision.head.created_at > mine.changed_at
            assert decision.head.digest != mine.digest or mine.deleted


_KEY = SecretKey.generate()


def _event(slug: str, created_at: int, prompt: str, *, content: str | None = None) -> Event:
    body = (
        content
        if content is not None
        else json.dumps({"display_name": slug, "system_prompt": prompt})
    )
    return sign_event(_KEY, created_at=created_at, kind=30175, tags=[("d", slug)], content=body)


@settings(max_examples=examples(30), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", "c"]), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_signed_events_give_the_same_head_whatever_their_order(
    specs: list[tuple[int, str, bool]], rng: random.Random
) -> None:
    events = [
        _event("writer", 1_700_000_000 + at, prompt, content=None if good else "{not json")
        for at, prompt, good in specs
    ]
    shuffled = list(events)
    rng.shuffle(shuffled)
    one = select_persona_head(events, owner=_KEY.public_key, slug="writer")
    two = select_persona_head(shuffled, owner=_KEY.public_key, slug="writer")
    unusable = [s.unusable_head.event if s.unusable_head else None for s in (one, two)]
    assert one.head == two.head
    assert unusable[0] == unusable[1]
