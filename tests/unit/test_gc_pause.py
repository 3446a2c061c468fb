"""How bulk work pauses the cyclic collector and hands on what it built."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

from projections.gcpause import cyclic_gc_paused


class Kept:
    """A container the collector tracks, findable among its objects."""


@contextlib.contextmanager
def collector(enabled: bool) -> Iterator[None]:
    """The collector on or off for the block; as it was afterwards."""
    was = gc.isenabled()
    switch(enabled)
    try:
        yield
    finally:
        switch(was)


def switch(on: bool) -> None:
    if on:
        gc.enable()
    else:
        gc.disable()


@pytest.fixture
def collector_on() -> Iterator[None]:
    with collector(True):
        yield


@pytest.fixture
def no_collections() -> Iterator[None]:
    """The collector off around the whole test, so nothing moves objects but the pause."""
    with collector(False):
        yield


def generation_of(obj: object) -> int | None:
    for generation in (0, 1, 2):
        if any(o is obj for o in gc.get_objects(generation)):
            return generation
    return None


def test_the_collector_is_paused_inside_and_resumed_after(collector_on: None) -> None:
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(no_collections: None) -> None:
    with cyclic_gc_paused(long_lived=True):
        pass
    assert not gc.isenabled()


def test_long_lived_objects_skip_the_young_generations(no_collections: None) -> None:
    with cyclic_gc_paused(long_lived=True):
        kept = Kept()
    assert generation_of(kept) == 2


def test_without_long_lived_new_objects_stay_young(no_collections: None) -> None:
    with cyclic_gc_paused():
        kept = Kept()
    assert generation_of(kept) == 0


def test_objects_someone_else_froze_stay_frozen(no_collections: None) -> None:
    frozen = Kept()
    gc.freeze()
    try:
        count = gc.get_freeze_count()
        with cyclic_gc_paused(long_lived=True):
            kept = Kept()
        assert gc.get_freeze_count() == count
        assert generation_of(frozen) is None, "still in the permanent generation"
        assert generation_of(kept) == 0
    finally:
        gc.unfreeze()
