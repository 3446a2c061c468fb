"""Use cases: what each command does, apart from how it is asked for and shown.

cosmicpython's service layer: the CLI (:mod:`adapters.cli`) parses its
arguments, calls one use case here, and prints what it returns. A use case
takes a :class:`adapters.bootstrap.Fleet` and plain values, returns a result
value (a frozen dataclass, or the engine's report), never prints, and runs
from tests without argparse. Which agents a command is about is a value,
:class:`adapters.usecases.filters.Filters`, resolved against the fleet view.
"""
