"""The home's apply lock: one apply at a time per home.

Two processes sealing for the same agents at once could each seal a different
event for the same persona version. :func:`apply_lock` holds an exclusive
``flock`` on ``HOME/apply.lock`` for as long as an apply (or a refresh) runs;
the OS releases it if the process dies, so a crash never leaves a home locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from adapters.errors import TemporaryAdapterError
from adapters.home import create_private, is_writable
from adapters.store.errors import read_only_error

LOCK_FILE = "apply.lock"


class ApplyRunning(TemporaryAdapterError):
    """Another fleetsync process is applying to this home right now."""


@contextlib.contextmanager
def apply_lock(home: Path) -> Iterator[None]:
    """An exclusive lock on ``HOME/apply.lock``; the OS releases it if we die."""
    path = home / LOCK_FILE
    create_private(path)
    try:
        handle = open(path, "a+b")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        if not is_writable(home) or not os.access(path, os.W_OK):
            raise read_only_error(f"the home {home}", path) from exc
        raise
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ApplyRunning(
                "another fleetsync apply is running on this home; wait for it and retry"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
