"""Pausing Python's cyclic garbage collector around bulk work.

A replay, a plan or an apply allocates many long-lived objects and almost
nothing cyclic: the collector would rescan that growing heap again and again
for nothing. Reference counting goes on meanwhile; a later collection frees
what little cyclic garbage there is (a full one, for a ``long_lived`` pause).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def cyclic_gc_paused(*, long_lived: bool = False) -> Iterator[None]:
    """No cyclic collection for the duration; the collector's prior state afterwards.

    ``long_lived``: what the block leaves behind is meant to stay (a replay's
    rows, one per agent), so it joins the oldest generation at once, as it would
    after surviving two collections. Otherwise the first young collection after
    the pause walks all of it, a large share of a replay's own time (``scripts/bench
    plan`` times the replay). Full collections walk it as they would have anyway;
    as Python's count of the oldest generation does not include it, the next
    full collection may come a little sooner.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # freeze + unfreeze moves every tracked object to the oldest generation in
        # O(1). Only when nothing is frozen: unfreezing would thaw someone else's.
        if long_lived and gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()
