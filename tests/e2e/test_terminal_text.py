"""User text reaches the terminal escaped: persona content, actors, file names in errors.

Control characters, escape sequences and bidi overrides in what a command
prints are shown as ``\\x1b``-style escapes, so a persona (or a relay's
message) cannot clear the screen, retitle the window or reorder the text a
user reads. ``--json`` keeps the exact text.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.harness import Cli, assert_one_error_line

HOSTILE = {
    "display_name": "Evil\x1b[2J\x1b]0;owned\x07",
    "system_prompt": "Be kind.\u202e.txt\nsecond line\x9b31m",
    "model": "m\u2066odel",
}
RAW = ("\x1b", "\x07", "\u202e", "\u2066", "\x9b")


def test_persona_show_and_list_escape_control_and_bidi_characters(cli: Cli) -> None:
    cli.ok("persona", "save", "evil", "-", stdin=json.dumps(HOSTILE))
    for args in (("persona", "show", "evil"), ("persona", "list")):
        out = cli.ok(*args).stdout
        for ch in RAW:
            assert ch not in out, (args, out)
        assert "Evil\\x1b[2J\\x1b]0;owned\\x07" in out
    shown = cli.ok("persona", "show", "evil").stdout
    assert "  Be kind.\\u202e.txt" in shown
    assert "  second line\\x9b31m" in shown
    assert "m\\u2066odel" in shown


def test_json_output_keeps_the_exact_text(cli: Cli) -> None:
    cli.ok("persona", "save", "evil", "-", stdin=json.dumps(HOSTILE))
    doc = json.loads(cli.ok("persona", "show", "evil", "--json").stdout)
    assert doc["content"]["display_name"] == HOSTILE["display_name"]
    assert doc["content"]["system_prompt"] == HOSTILE["system_prompt"]


def test_an_error_naming_a_file_escapes_its_name(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "persona\x1b[31m.json"
    result = cli("persona", "save", "p", str(missing))
    assert_one_error_line(result, r"persona\\x1b\[31m\.json")
    assert "\x1b" not in result.stderr
