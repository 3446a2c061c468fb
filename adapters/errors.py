"""The adapters' exceptions: one base class, split into permanent and temporary.

Third-party exceptions (aiohttp, sqlite, coincurve) are translated into these
at the edge where they occur, the original kept as ``__cause__``.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class of every error raised by :mod:`adapters`."""


class PermanentAdapterError(AdapterError):
    """Retrying the same operation will fail the same way."""


class TemporaryAdapterError(AdapterError):
    """The operation may succeed if retried after ``delay`` seconds."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay
