"""Set-up shared by every tier: the hypothesis profiles.

``FLEETSYNC_HYPOTHESIS_PROFILE`` names the one to load (tests/README.md says when to
use which):

- ``fast``, the default: hypothesis's own settings (100 examples, its deadline), and
  the budgets that tests set by hand, as written.
- ``thorough``: ten times the examples of every property and state machine, the
  hand-set budgets included (through :func:`tests.support.examples.examples`), and
  no deadline, as a loaded machine makes timings meaningless; a failure prints the
  blob that reproduces it (``@reproduce_failure``).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

PROFILE_VARIABLE = "FLEETSYNC_HYPOTHESIS_PROFILE"
THOROUGH_FACTOR = 10

# Both profiles start from hypothesis's "default" profile, never from whatever it
# loaded itself: under a CI variable hypothesis loads its own "ci" profile (no
# deadline, derandomized), which would otherwise leak into "fast".
_DEFAULT = settings.get_profile("default")
settings.register_profile("fast", parent=_DEFAULT)
settings.register_profile(
    "thorough",
    parent=_DEFAULT,
    max_examples=THOROUGH_FACTOR * _DEFAULT.max_examples,
    deadline=None,
    print_blob=True,
)

_profile = os.environ.get(PROFILE_VARIABLE) or "fast"
if _profile not in ("fast", "thorough"):
    raise pytest.UsageError(f"{PROFILE_VARIABLE}={_profile!r}: use fast or thorough")
settings.load_profile(_profile)
