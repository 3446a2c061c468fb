"""``fleetsync``: the argument parser, dispatch, and the one place errors are printed.

Exit codes (the same for every command):

- 0: success (for ``plan``: nothing to do);
- 1: an error, including a usage error (bad flag or argument). argparse would
  use 2 for usage errors, but ``plan`` follows ``terraform plan
  -detailed-exitcode`` and uses 2 for "changes pending", so a script testing
  for 2 must never see it from a typo;
- 2: ``plan``: changes are pending; ``apply``: some agents are still not in
  sync (failed, unknown, conflicts); ``persona save``, ``agent create`` and
  ``agent import``: what they recorded stands, but the publish that followed
  left some agents not in sync (1 is the only code that means nothing was
  recorded, so a script never repeats a create that happened);
- 3: could not verify: a relay could not be read or did not answer, so sync is
  unproven (``apply`` and ``refresh`` when a relay could not be read for some
  agents, and nothing else is wrong; ``status``, and ``plan`` with nothing to
  do, when the last reading of a configured relay failed or none was ever made;
  ``persona save`` and ``agent create|import`` the same way after their publish);
- 130: interrupted (Ctrl-C).

Every expected failure (bad input, wrong passphrase, unknown persona, a busy
store) is printed as exactly one line, ``fleetsync: error: <message>``, on
stderr; never a traceback. ``--debug`` shows the traceback of unexpected ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TextIO, cast

from adapters.cli.commands import Subcommands, register
from adapters.errors import AdapterError
from domain.errors import DomainError
from domain.text import escape
from projections.errors import ProjectionError

if TYPE_CHECKING:
    from adapters.cli.output import Context

PROG = "fleetsync"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line argparse refused; reported like any other error (exit 1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


Command = Callable[["Context"], int]


class _Version(argparse._VersionAction):
    """``--version``: the installed version, looked up only when asked for (reading the
    package metadata costs more than parsing any other command line)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        self.version = f"{PROG} {_version()}"
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Keep a fleet of AI agents' persona engrams (NIP-AE) in step with their "
        "personas (NIP-AP).",
        epilog="Exit codes: 0 ok (plan: nothing to do), 1 error (nothing recorded), 2 changes "
        "pending or agents not in sync (plan; apply, persona save, agent create|import), "
        "3 could not verify (a relay could not be read).",
    )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="fleetsync home (default: $FLEETSYNC_HOME, else $XDG_DATA_HOME/fleetsync, "
        "else ~/.local/share/fleetsync)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="event store URL (default: $FLEETSYNC_STORE_URL, else sqlite:///HOME/events.sqlite;"
        " postgresql://user:password@host:port/dbname also works)",
    )
    parser.add_argument("--version", action=_Version, help="print the version")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    # Sub-parsers are _Parser instances too (usage errors exit 1 everywhere); the
    # command modules only need the ArgumentParser interface.
    commands = cast(
        Subcommands, parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    )
    register(commands)
    _describe_commands(parser)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """A command's ``--help`` page opens with its one-line help unless it has a longer
    description: argparse shows the line only in the parent's list of commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if sub.description is None:
                    sub.description = helps.get(name)
                _describe_commands(sub)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run one command; returns the exit code. Streams and environment can be injected."""
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(err, str(exc))
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    _configure_logging(err, debug=args.debug)
    # The one command that runs needs the context (and, through it, the store):
    # imported now, after parsing, so --help and --version never import them.
    from adapters.cli.output import Context

    ctx = Context(
        args=args,
        stdin=stdin if stdin is not None else sys.stdin.buffer,
        stdout=stdout if stdout is not None else sys.stdout,
        environ=environ,
        stderr=err,
    )
    func: Command = args.func
    try:
        return func(ctx)
    except (DomainError, AdapterError, ProjectionError, UsageError) as exc:
        return _fail(err, str(exc))
    except BrokenPipeError:
        # The reader went away (``fleetsync agent list | head``): not worth a message.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        if stdout is None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:
        # Files named on the command line: say which file and why, nothing more.
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(err, f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            traceback.print_exc(file=err)
        return _fail(
            err,
            f"internal error ({type(exc).__name__}): {exc} (rerun with --debug for details)",
        )


def _configure_logging(err: TextIO, *, debug: bool) -> None:
    """What the library modules log reaches the user only with ``--debug``.

    Commands report outcomes themselves (the apply summary names each agent's
    relay answers); without a handler, Python would print every warning raw.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fleetsync", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(err)
    handler._fleetsync = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("fleetsync: %(levelname)s: %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.CRITICAL + 1)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def _fail(err: TextIO, message: str) -> int:
    # One line, always: a message with a newline in it would read as two errors.
    # Messages quote user input and relay answers: escape what a terminal would obey.
    line = escape(" ".join(message.split()))
    err.write(f"{PROG}: error: {line}\n")
    err.flush()
    return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
