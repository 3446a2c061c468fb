"""The domain's exceptions: one base class, split into permanent and temporary.

A *permanent* error means retrying the same request cannot succeed (bad input,
an unknown persona); a *temporary* one may succeed later. Callers such as the
CLI catch :class:`DomainError` and print its message: every message is written
for the user who has to act on it.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error raised by :mod:`domain`."""


class PermanentDomainError(DomainError):
    """Retrying the same request will fail the same way."""


class TemporaryDomainError(DomainError):
    """The same request may succeed if run again (another writer got there first);
    the message says so."""


class InvalidInput(PermanentDomainError):
    """User-supplied data does not satisfy the model's rules."""


class InvalidSlug(InvalidInput):
    """A persona or engram slug does not match its grammar."""


class InvalidPersona(InvalidInput):
    """Persona content is malformed, misses a field or has a wrong type."""


class InvalidEngramBody(InvalidInput):
    """A decrypted engram body is not a valid NIP-AE / persona engram body."""


class TooLarge(InvalidInput):
    """Content would exceed a protocol size limit; it is refused, never truncated."""
