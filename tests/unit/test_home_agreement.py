"""Whether a home's files belong together (adapters.home.check_agreement), as properties."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.home import HomeMismatch, Observed, check_agreement

HOME = Path("/h")
ids = st.sampled_from(["a" * 32, "b" * 32])
maybe_ids = st.none() | ids
counts = st.integers(min_value=0, max_value=3)


def observed(**fields: object) -> Observed:
    base = Observed(
        home=HOME,
        record_id=None,
        keys_id=None,
        store_id=None,
        store="sqlite:///h/events.sqlite",
        store_events=0,
        agent_keys=0,
        view_position=0,
        view_file=HOME / "view.sqlite",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


@given(maybe_ids, maybe_ids, maybe_ids, counts, counts, counts)
def test_files_are_accepted_only_when_every_identity_present_is_the_same_and_the_store_has_one(
    record: str | None, keys: str | None, store: str | None, events: int, agents: int, view: int
) -> None:
    seen = observed(
        record_id=record,
        keys_id=keys,
        store_id=store,
        store_events=events,
        agent_keys=agents,
        view_position=view,
    )
    present = {i for i in (record, keys, store) if i is not None}
    legacy_ok = events > 0 or (agents == 0 and view == 0)
    should_pass = (len(present) == 1 and store is not None) or (not present and legacy_ok)
    if not should_pass:
        with pytest.raises(HomeMismatch, match="Nothing was changed"):
            check_agreement(seen)
        return
    agreement = check_agreement(seen, new_id="c" * 32)
    assert agreement.home_id == (store or "c" * 32)
    # What it asks to write is exactly what lacks the identity.
    assert agreement.write_store == (store is None)
    assert agreement.write_keys == (keys is None)
    assert agreement.write_record == (record is None)


def test_an_empty_store_beside_agents_keys_names_both_files() -> None:
    with pytest.raises(HomeMismatch) as info:
        check_agreement(observed(keys_id="a" * 32, record_id="a" * 32))
    message = str(info.value)
    assert "sqlite:///h/events.sqlite is empty" in message
    assert "/h/keys.sqlite" in message
