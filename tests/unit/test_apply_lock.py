"""The home's apply lock: one holder at a time, released when the holder lets go."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adapters.locking import LOCK_FILE, ApplyRunning, apply_lock


def test_a_second_apply_on_the_same_home_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    with apply_lock(tmp_path):
        second = apply_lock(tmp_path)
        with pytest.raises(ApplyRunning, match="wait for it and retry"):
            second.__enter__()


def test_the_lock_is_free_again_once_its_holder_lets_go(tmp_path: Path) -> None:
    with apply_lock(tmp_path):
        pass
    with apply_lock(tmp_path):
        pass


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    with apply_lock(tmp_path):
        mode = stat.S_IMODE(os.stat(tmp_path / LOCK_FILE).st_mode)
    assert mode == 0o600
