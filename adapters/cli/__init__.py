"""The ``fleetsync`` command line: argument parsing, commands, output.

``main`` (the console script ``fleetsync``) is in :mod:`adapters.cli.main`;
every command's arguments and help are declared in :mod:`adapters.cli.commands`,
and each group of commands has its module of handlers, imported only when one of
its commands runs. A command parses its arguments, gets a
:class:`Fleet` from :mod:`adapters.bootstrap`, calls one use case of
:mod:`adapters.usecases` and prints what it returns; it never reads the
environment itself.
"""

from adapters.cli.main import main

__all__ = ["main"]
