"""Real file systems for the e2e tests of a read-only home and a full disk.

A read-only home is a read-only bind mount of a real home; a full disk is a
small tmpfs. Both need ``mount`` (root, or CAP_SYS_ADMIN): where mounting is
impossible the test is skipped and says why. Being root does not get around
either (a read-only mount refuses root's writes too), unlike ``chmod``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip() or result.returncode}); needs root")


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_bind(source: Path, target: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``target`` for the duration."""
    target.mkdir()
    _mount("--bind", str(source), str(target))
    try:
        _mount("-o", "remount,bind,ro", str(target))
        yield target
    finally:
        _umount(target)


@contextlib.contextmanager
def small_disk(target: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``) at ``target`` for the duration."""
    target.mkdir()
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target))
    try:
        yield target
    finally:
        _umount(target)


def fill(disk: Path) -> None:
    """Write zeros into ``disk`` until no byte is left."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        for size in (1 << 16, 4096, 1):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    filler.write(block)
