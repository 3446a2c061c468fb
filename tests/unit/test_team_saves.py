"""Saving a team records its personas and member list in one transaction: all of it,
or (when one persona breaks a rule) none of it; saving it again records nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.persona import PersonaContent, PersonaDefinition
from domain.teams import TeamDefinition
from tests.fleet_support import make_fleet
from tests.support.examples import examples

SLUG = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
PERSONAS = st.dictionaries(SLUG, st.text(min_size=1, max_size=30), min_size=1, max_size=5)


def _team(slugs: list[str], name: str = "Crew") -> TeamDefinition:
    return TeamDefinition("crew", name, None, None, tuple(slugs), "pack:/x")


def _personas(prompts: dict[str, str]) -> list[tuple[str, PersonaDefinition]]:
    return [
        (slug, PersonaDefinition(PersonaContent(display_name=slug, system_prompt=prompt), {}))
        for slug, prompt in prompts.items()
    ]


@settings(max_examples=examples(40), deadline=None)
@given(PERSONAS, PERSONAS)
def test_a_team_saved_twice_records_once_and_a_change_records_only_what_changed(
    first: dict[str, str], second: dict[str, str]
) -> None:
    app, _ = make_fleet("memory")
    saved = app.save_team(_team(list(first)), _personas(first), "me")
    assert saved.recorded
    end = app.recorder.max_notification_id()
    again = app.save_team(_team(list(first)), _personas(first), "me")
    assert not again.recorded
    assert app.recorder.max_notification_id() == end
    merged = first | second
    changed = app.save_team(_team(list(merged)), _personas(merged), "me")
    expected = {s for s in merged if s not in first or first[s] != merged[s]}
    assert {p.slug for p in changed.personas if p.changed} == expected
    assert app.get_team("crew").personas == tuple(merged)


@settings(max_examples=examples(40), deadline=None)
@given(PERSONAS, st.integers(0, 4))
def test_a_team_with_one_bad_persona_records_nothing(prompts: dict[str, str], bad: int) -> None:
    app, _ = make_fleet("memory")
    personas = _personas(prompts)
    slug, good = personas[bad % len(personas)]
    # A name_pool entry that is not a valid agent name breaks the owner's rules.
    broken = PersonaContent(display_name="x", system_prompt="y", name_pool=("bad\nname",))
    personas[bad % len(personas)] = (slug, PersonaDefinition(broken, good.env_vars))
    with pytest.raises(InvalidInput):
        app.save_team(_team(list(prompts)), personas, "me")
    assert app.recorder.max_notification_id() in (None, 0)
