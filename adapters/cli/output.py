"""What every command shares: its context (settings, streams, the fleet) and output helpers.

Human output is plain text tables on stdout; ``--json`` prints one JSON
document on stdout instead. Errors never go through here: :mod:`adapters.cli.main`
turns them into one ``fleetsync: error:`` line on stderr.

Destructive commands call :meth:`Context.confirm` before they change anything:
``--yes`` goes ahead; otherwise, when stdin is a terminal, the user is asked on
stderr and must type ``yes``; when it is not (a script, a pipe), the command is
refused, naming ``--yes``, so nothing destructive happens unattended by accident.

Text output carries user data and relay messages (persona content, names,
actors, a relay's refusal), so :meth:`Context.out` and :meth:`Context.table`
show control, bidi and other unsafe characters escaped (:func:`domain.text.escape`):
a line printed stays one line (a newline in user data is shown as ``\\x0a``),
and a table cell stays one cell (tabs escaped too). JSON output is
exact: the JSON encoder escapes control characters itself.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

from adapters.bootstrap import Fleet, bootstrap
from adapters.errors import PermanentAdapterError
from adapters.settings import Settings
from adapters.store.errors import store_errors
from adapters.usecases.filters import Filters
from domain.text import escape


class NotConfirmed(PermanentAdapterError):
    """A destructive command was not confirmed (no --yes, and no 'yes' typed)."""


# Exit codes shared by several commands (see adapters.cli.main).
EXIT_UNVERIFIED = 3  # a relay could not be read (or never was): sync is unproven


@dataclass
class Context:
    """One command invocation: parsed arguments, streams, and lazily the settings."""

    args: argparse.Namespace
    stdin: BinaryIO
    stdout: TextIO
    environ: Mapping[str, str] | None = None
    stderr: TextIO | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(
                home=self.args.home, store_url=self.args.store, environ=self.environ
            )
        return self._settings

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @contextmanager
    def fleet(self) -> Iterator[Fleet]:
        """Open the fleet for the command; store exceptions become adapter errors."""
        settings = self.settings
        with store_errors(settings.store, settings.connect_timeout):
            fleet = bootstrap(
                settings, notice=self.note, passphrase_prompt=self.passphrase_prompt()
            )
            try:
                yield fleet
            finally:
                fleet.close()

    def confirm(self, what: str) -> None:
        """Go on only if the user confirmed ``what`` (a sentence saying what will happen).

        ``--yes`` confirms. Without it, a terminal on stdin is asked (on stderr) and
        only ``yes`` or ``y`` goes ahead; with no terminal to ask, the command is
        refused. Either refusal raises :class:`NotConfirmed` before anything changed.
        """
        if getattr(self.args, "yes", False):
            return
        if not _is_terminal(self.stdin):
            raise NotConfirmed(f"{what}; rerun with --yes to go ahead (stdin is not a terminal)")
        err = self.stderr if self.stderr is not None else sys.stderr
        err.write(f"{escape(what)}.\nType 'yes' to go ahead: ")
        err.flush()
        answer = self.stdin.readline().decode("utf-8", "replace").strip().lower()
        if answer not in ("yes", "y"):
            raise NotConfirmed("not confirmed; nothing was changed")

    def note(self, text: str) -> None:
        """A ``fleetsync: note:`` line on stderr: something the user should know, not an error."""
        err = self.stderr if self.stderr is not None else sys.stderr
        err.write(f"fleetsync: note: {' '.join(text.split())}\n")
        err.flush()

    def interactive(self) -> bool:
        """Whether a person is at the keyboard (stdin is a terminal)."""
        return _is_terminal(self.stdin)

    def passphrase_prompt(self) -> Callable[[], str] | None:
        """Asks for the passphrase on the terminal, when there is one to ask on."""
        if not self.interactive():
            return None

        def ask() -> str:
            return getpass.getpass(f"passphrase of the fleetsync home {self.settings.home}: ")

        return ask

    def out(self, text: str = "") -> None:
        """One line of text; unsafe characters but tab escaped, a newline among them."""
        self.stdout.write(escape(text, keep="\t") + "\n")

    def emit_json(self, value: Any) -> None:
        self.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        self.stdout.write(render_table(headers, rows))


def filters_of(ctx: Context) -> Filters:
    """The ``--persona`` / ``--agent`` / ``--team`` filters a command was given (if it
    has them)."""
    return Filters(
        persona=getattr(ctx.args, "persona", None) or None,
        agent=getattr(ctx.args, "agent", None) or None,
        team=getattr(ctx.args, "team", None) or None,
    )


def read_bounded(ctx: Context, source: str, limit: int) -> bytes | None:
    """The bytes of FILE, or of stdin for '-', if there are at most ``limit`` of them.

    None when there are more: the rest is never read (``/dev/zero`` ends too).
    """
    if source == "-":
        raw = ctx.stdin.read(limit + 1)
    else:
        with open(source, "rb") as file:
            raw = file.read(limit + 1)
    return None if len(raw) > limit else raw


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded.

    Cells are escaped (:func:`domain.text.escape`): a newline, tab or escape
    sequence from user data cannot break the table or the terminal.
    """
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else escape(str(c)) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def short(digest: str | None, length: int = 12) -> str:
    """An abbreviated digest or id for tables (``--json`` always has the full value)."""
    return "-" if not digest else digest[:length]


def _is_terminal(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fileless stream
        return False
