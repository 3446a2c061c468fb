"""The adapters' exceptions: one base class, split into permanent and temporary.

Third-party exceptions (aiohttp, sqlite, coincurve) are translated into these
at the edge where they occur, the original kept as ``__cause__``.

The split is acted on: the relay client retries a temporary failure (waiting
as long as the relay asked, :attr:`adapters.relay.errors.TemporaryRelayError.delay`,
within the command's time) and never a permanent one (see
:meth:`adapters.relay.publishing.RetryPolicy.pause_after`). A temporary store
or lock failure reaches the user as it is, and its message says to run again.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class of every error raised by :mod:`adapters`."""


class PermanentAdapterError(AdapterError):
    """Retrying the same operation will fail the same way."""


class TemporaryAdapterError(AdapterError):
    """The operation may succeed if tried again later."""
