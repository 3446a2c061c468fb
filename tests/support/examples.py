"""Hand-set hypothesis budgets that follow the loaded profile (tests/conftest.py).

A test whose examples are expensive (a SQLite file each, scrypt, a state machine of
many steps) sets its own ``max_examples``, which a profile cannot raise. Written as
``max_examples=examples(25)``, it runs 25 under the fast profile and as many times
more under the thorough one as the profile raises its own default.
"""

from __future__ import annotations

from hypothesis import settings

# What the fast profile runs by default (hypothesis's own default).
FAST_EXAMPLES = 100


def examples(fast: int) -> int:
    """``fast`` examples, scaled as the loaded profile scales the default budget."""
    current = settings.default
    assert current is not None, "tests/conftest.py loads a profile before any test module"
    return max(1, fast * current.max_examples // FAST_EXAMPLES)
