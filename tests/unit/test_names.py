"""Agent names and terminal-safe text: one rule refuses what the other escapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.names import (
    MAX_NAME_CHARS,
    DuplicateName,
    check_name,
    check_name_pool,
    check_unique,
    name_problem,
    pick_names,
)
from domain.text import BIDI_CONTROLS, escape, is_unsafe

C0_C1 = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]]
DANGEROUS = st.sampled_from(C0_C1 + sorted(BIDI_CONTROLS) + ["\u2028", "\u2029", "\ufeff"])
ANY_TEXT = st.text(max_size=40)


@given(ANY_TEXT, DANGEROUS, ANY_TEXT)
def test_a_name_with_a_control_or_bidi_character_anywhere_is_refused(
    before: str, bad: str, after: str
) -> None:
    name = (before + bad + after)[:MAX_NAME_CHARS]
    if bad not in name:  # cut off by the length limit: put it back at the end
        name = name[:-1] + bad
    with pytest.raises(InvalidInput):
        check_name(name)


@given(ANY_TEXT)
def test_every_accepted_name_prints_unchanged(name: str) -> None:
    if name_problem(name) is None:
        assert escape(name) == name
        assert escape(name, keep="\t") == name


@given(st.text(max_size=200))
def test_escaped_text_holds_no_unsafe_character_and_keeps_the_safe_ones(text: str) -> None:
    shown = escape(text)
    assert not any(is_unsafe(ch) for ch in shown)
    # Every safe character is still there, in order: escaping only inserts text.
    rest = iter(shown)
    assert all(ch in rest for ch in text if not is_unsafe(ch))
    assert len(shown) >= len(text)


def test_escapes_look_like_python_escapes() -> None:
    assert escape("a\x1b[31mb") == "a\\x1b[31mb"
    assert escape("x\u202ey") == "x\\u202ey"
    assert escape("tag\U000e0041") == "tag\\U000e0041"
    assert escape("line\nbreak\ttab", keep="\t") == "line\\x0abreak\ttab"


def test_joiners_in_emoji_sequences_are_allowed_and_print_unchanged() -> None:
    name = "\U0001f469\u200d\U0001f4bb coder"
    assert check_name(name) == name
    assert escape(name) == name


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_a_blank_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="must not be empty"):
        check_name(name)


def test_a_name_is_at_most_128_characters() -> None:
    assert check_name("n" * MAX_NAME_CHARS) == "n" * MAX_NAME_CHARS
    with pytest.raises(InvalidInput, match="129 characters long; at most 128"):
        check_name("n" * (MAX_NAME_CHARS + 1))


def test_the_refusal_names_the_source_and_the_character_without_printing_it_raw() -> None:
    with pytest.raises(InvalidInput) as info:
        check_name("ev\x1bil", "--name")
    message = str(info.value)
    assert message.startswith("--name 'ev\\x1bil' contains")
    assert "(\\x1b) at character 3" in message
    assert "\x1b" not in message
    with pytest.raises(InvalidInput, match="bidi control"):
        check_name("abc\u202edef", "FLEETSYNC_ACTOR")


def test_a_name_pool_entry_obeys_the_name_rule_and_is_listed_once() -> None:
    check_name_pool(["Ann", "Bob"])
    with pytest.raises(InvalidInput, match=r"name_pool\[1\]"):
        check_name_pool(["Ann", "B\x07ob"])
    with pytest.raises(InvalidInput, match=r"name_pool\[0\] '' must not be empty"):
        check_name_pool([""])
    with pytest.raises(InvalidInput, match="lists 'Ann' more than once"):
        check_name_pool(["Ann", "Bob", "Ann"])


def test_a_duplicate_name_in_the_persona_is_refused_unless_forced() -> None:
    with pytest.raises(DuplicateName, match="persona 'writer' already has an agent named 'Ann'"):
        check_unique("Ann", {"Ann", "Bob"}, "writer", force=False)
    assert check_unique("Ann", {"Ann"}, "writer", force=True) == "Ann"
    assert check_unique("Cy", {"Ann"}, "writer", force=False) == "Cy"


NAMES = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12
)


@given(
    count=st.integers(1, 30),
    name=st.none() | NAMES,
    pool=st.lists(NAMES, max_size=5, unique=True),
    taken=st.sets(NAMES, max_size=20),
)
def test_picked_names_are_new_distinct_and_valid(
    count: int, name: str | None, pool: list[str], taken: set[str]
) -> None:
    names = pick_names(count, name=name, pool=pool, slug="writer", taken=taken)
    assert len(names) == count
    assert len(set(names)) == count
    assert not set(names) & taken
    assert all(name_problem(n) is None for n in names)


def test_names_come_from_the_pool_in_turn_then_with_suffixes() -> None:
    names = pick_names(5, name=None, pool=["Ann", "Bob"], slug="w", taken={"Bob"})
    assert names == ["Ann", "Ann-2", "Bob-2", "Ann-3", "Bob-3"]
    assert pick_names(2, name="x", pool=["Ann"], slug="w", taken=set()) == ["x-1", "x-2"]
    assert pick_names(2, name=None, pool=[], slug="w", taken={"w-1"}) == ["w-2", "w-3"]


def test_a_suffix_that_makes_a_name_too_long_is_refused_not_cut() -> None:
    long = "n" * MAX_NAME_CHARS
    with pytest.raises(InvalidInput, match=r"from name_pool\[0\].*130 characters long"):
        pick_names(2, name=None, pool=[long], slug="w", taken=set())
    with pytest.raises(InvalidInput, match=r"from --name"):
        pick_names(2, name=long, pool=[], slug="w", taken=set())


def test_an_invalid_pool_entry_saved_before_the_rule_is_refused_when_used() -> None:
    with pytest.raises(InvalidInput, match=r"name_pool\[0\]"):
        pick_names(1, name=None, pool=["a\x1bb"], slug="w", taken=set())
