"""The command table names its handlers by module and function: each name must be right.

Nothing imports a handler's module until its command runs, so neither mypy nor
the import of the CLI would notice a handler misnamed in
:mod:`adapters.cli.commands`; this resolves every one, and finds every
``run_*`` function of the command modules named by some command.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
from collections.abc import Iterator

from adapters.cli.commands import Handler
from adapters.cli.main import build_parser


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


def _handlers() -> dict[tuple[str, ...], Handler]:
    handlers = {}
    for path, parser in _leaves(build_parser()):
        handler = parser.get_default("func")
        assert isinstance(handler, Handler), path
        handlers[path] = handler
    return handlers


def test_every_command_names_a_handler_function_of_a_cli_module() -> None:
    handlers = _handlers()
    assert len(handlers) > 20
    for path, handler in handlers.items():
        assert handler.module.startswith("adapters.cli."), path
        assert inspect.isfunction(handler.resolve()), path
        assert handler.resolve().__module__ == handler.module, path


def test_every_run_function_of_the_command_modules_is_some_commands_handler() -> None:
    named = {(h.module, h.name) for h in _handlers().values()}
    modules = {module for module, _ in named}
    defined = {
        (module, name)
        for module in modules
        for name, value in vars(importlib.import_module(module)).items()
        if name.startswith("run_") and inspect.isfunction(value) and value.__module__ == module
    }
    assert defined - named == set()
