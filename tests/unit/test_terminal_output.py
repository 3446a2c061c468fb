"""Text output shows user and relay text escaped; JSON output stays exact."""

from __future__ import annotations

import argparse
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from adapters.cli.output import Context, render_table
from domain.names import name_problem
from domain.text import is_unsafe


def _context() -> tuple[Context, io.StringIO]:
    out = io.StringIO()
    return Context(args=argparse.Namespace(), stdin=io.BytesIO(), stdout=out), out


@given(st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_a_table_row_is_one_line_of_safe_characters(cells: list[str]) -> None:
    text = render_table([f"H{i}" for i in range(len(cells))], [cells])
    lines = text.splitlines()
    assert len(lines) == 2
    assert not any(is_unsafe(ch) for ch in lines[1])
    assert "\t" not in lines[1]


@given(st.text(max_size=60))
def test_a_printed_line_is_one_line_with_no_unsafe_character(text: str) -> None:
    ctx, out = _context()
    ctx.out(text)
    printed = out.getvalue()
    assert printed.endswith("\n")
    assert not any(is_unsafe(ch) for ch in printed[:-1].replace("\t", ""))


@given(st.text(max_size=60))
def test_an_accepted_name_is_printed_as_it_is(name: str) -> None:
    if name_problem(name) is not None:
        return
    ctx, out = _context()
    ctx.out(name)
    assert out.getvalue() == name + "\n"
    assert render_table(["NAME"], [[name]]).splitlines()[1] == name.rstrip()


def test_an_escape_sequence_from_a_relay_cannot_reach_the_terminal() -> None:
    detail = "blocked: \x1b]0;pwned\x07 \u202eevil"
    text = render_table(["AGENT", "DETAIL"], [["ab", detail]])
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "\x07" not in text
    assert "\\x1b]0;pwned\\x07 \\u202eevil" in text


def test_json_output_keeps_the_exact_text() -> None:
    ctx, out = _context()
    ctx.emit_json({"name": "a\x1bb\u202ec"})
    assert json.loads(out.getvalue()) == {"name": "a\x1bb\u202ec"}
