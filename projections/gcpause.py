"""Pausing Python's cyclic garbage collector around bulk work.

A replay or an apply allocates many long-lived objects and almost nothing
cyclic: the collector would rescan that growing heap again and again for
nothing. Reference counting goes on meanwhile; the first collection after the
pause frees what little cyclic garbage there is.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic collection for the duration; the collector's prior state afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
