"""The ``fleetsync`` command line: argument parsing, commands, output.

``main`` (the console script ``fleetsync``) is in :mod:`adapters.cli.main`;
each group of commands has its module. Commands get a :class:`Fleet` from
:mod:`adapters.bootstrap` and never read the environment themselves.
"""

from adapters.cli.main import main

__all__ = ["main"]
