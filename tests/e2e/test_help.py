"""The command line explains itself: ``--version``, and help for every command and argument."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from importlib.metadata import version

from adapters.cli.main import build_parser
from tests.e2e.harness import Cli


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    helps: dict[str, str | None] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                helps[choice.dest] = choice.help
            for name in action.choices:
                helps.setdefault(name, None)
    return helps


def test_every_command_and_subcommand_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for name, text in _subcommand_help(parser).items():
            if not text or text == argparse.SUPPRESS:
                missing.append(" ".join((*path, name)))
    assert missing == []


def test_every_argument_of_every_command_has_help() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                name = "/".join(action.option_strings) or action.dest
                missing.append(f"{' '.join(('fleetsync', *path))} {name}")
    assert missing == []


def test_version_prints_the_installed_version_and_exits_0(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0, result
    assert result.stdout.strip() == f"fleetsync {version('fleetsync')}"
    assert result.stderr == ""


def test_relay_add_and_remove_take_json(cli: Cli) -> None:
    added = cli.ok("relay", "add", "ws://127.0.0.1:7777", "--json")
    assert json.loads(added.stdout) == {"relay": "ws://127.0.0.1:7777", "added": True}
    again = cli.ok("relay", "add", "ws://127.0.0.1:7777", "--json")
    assert json.loads(again.stdout) == {"relay": "ws://127.0.0.1:7777", "added": False}
    removed = cli.ok("relay", "remove", "ws://127.0.0.1:7777", "--json")
    assert json.loads(removed.stdout) == {"relay": "ws://127.0.0.1:7777", "removed": True}


def test_every_command_help_page_says_what_the_command_does() -> None:
    bare = [" ".join(path) for path, parser in _parsers(build_parser()) if not parser.description]
    assert bare == []
