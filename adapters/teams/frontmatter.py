"""The YAML front matter of a legacy ``*.persona.md`` file, read as a strict subset of YAML.

buzz parsed it with ``serde_yaml``; fleetsync carries no YAML library, and a
persona file needs little of YAML: a mapping of keys to scalars (plain,
``'single'`` or ``"double"`` quoted, ``null``/``~``, booleans, numbers),
flow lists of scalars (``[a, "b"]``), block lists of scalars (``- a``), and
block text (``|``, ``|-``, ``>``, ``>-``). A key whose value is an indented
block of anything else (``mcp_servers``, ``triggers``, ``hooks``) is kept as
:class:`Nested` text: fleetsync does not use those members, and only needs to
know they are there. Anything outside this subset (anchors, tags, flow
mappings, tabs as indentation) is refused with the line it is on, never
guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?:[ \t]+(.*)|)$")
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?")


class FrontMatterError(ValueError):
    """The front matter is not in the subset fleetsync reads; says which line."""


@dataclass(frozen=True, slots=True)
class Nested:
    """An indented block fleetsync keeps as text (a mapping or list of mappings)."""

    text: str


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter, body) of a ``---``-delimited file, as buzz splits it: the file
    starts with a ``---`` line and the front matter ends at the next line that is
    exactly ``---``; the body starts after that line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != "---":
        raise FrontMatterError("does not start with a '---' line (YAML front matter)")
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise FrontMatterError("has no closing '---' line after its front matter")


def parse_front_matter(text: str) -> dict[str, Any]:
    """The front matter's top-level mapping; a key given twice is an error."""
    lines = text.splitlines()
    result: dict[str, Any] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        if _blank(line):
            index += 1
            continue
        if line[0] in " \t":
            raise FrontMatterError(f"line {number}: unexpected indentation")
        match = _KEY.match(line)
        if match is None:
            raise FrontMatterError(f"line {number}: expected 'key: value'")
        key, raw = match.group(1), (match.group(2) or "").strip()
        if key in result:
            raise FrontMatterError(f"line {number}: key {key!r} is given twice")
        block, index = _block(lines, index + 1)
        if raw in ("|", "|-", ">", ">-"):
            result[key] = _block_text(block, raw)
        elif _strip_comment(raw):
            if block:
                raise FrontMatterError(f"line {number + 1}: unexpected indentation")
            result[key] = _scalar_or_flow(_strip_comment(raw), number)
        elif block:
            result[key] = _block_value(block, number)
        else:
            result[key] = None
    return result


def _blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _block(lines: list[str], start: int) -> tuple[list[tuple[int, str]], int]:
    """The indented lines from ``start`` (blank lines inside kept), and where it ends."""
    block: list[tuple[int, str]] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if line.strip() and line[0] not in " \t":
            break
        if line.startswith("\t"):
            raise FrontMatterError(f"line {index + 1}: tabs cannot indent YAML")
        block.append((index + 1, line))
        index += 1
    while block and not block[-1][1].strip():
        block.pop()
    return block, index


def _block_text(block: list[tuple[int, str]], style: str) -> str:
    content = [line for _, line in block]
    indents = [len(line) - len(line.lstrip(" ")) for line in content if line.strip()]
    cut = min(indents, default=0)
    stripped = [line[cut:] for line in content]
    if style.startswith(">"):
        text = " ".join(part for part in stripped if part.strip())
    else:
        text = "\n".join(stripped)
    return text if style.endswith("-") else text + "\n"


def _block_value(block: list[tuple[int, str]], number: int) -> Any:
    items = [(n, line.strip()) for n, line in block if not _blank(line)]
    if all(text == "-" or text.startswith("- ") for _, text in items):
        values = []
        for n, text in items:
            item = _strip_comment(text[1:].strip())
            if _KEY.match(item) or item.startswith(("{", "[")) or not item:
                # A list of mappings or nested lists: kept as text.
                return Nested("\n".join(line for _, line in block))
            values.append(_scalar(item, n))
        return values
    if all(_KEY.match(text) for _, text in items if not text.startswith("- ")):
        return Nested("\n".join(line for _, line in block))
    raise FrontMatterError(f"line {items[0][0]}: expected a list or a mapping")


def _strip_comment(text: str) -> str:
    """``text`` without a trailing `` # comment`` outside quotes."""
    if text.startswith(("'", '"')):
        return text
    cut = re.search(r"(^|[ \t])#", text)
    return text[: cut.start()].rstrip() if cut else text


def _scalar_or_flow(text: str, number: int) -> Any:
    if text.startswith("["):
        if not text.endswith("]"):
            raise FrontMatterError(f"line {number}: a flow list must end on its line with ']'")
        inner = text[1:-1].strip()
        if not inner:
            return []
        return [_scalar(part.strip(), number) for part in _split_flow(inner, number)]
    if text.startswith("{"):
        return Nested(text)
    return _scalar(text, number)


def _split_flow(inner: str, number: int) -> list[str]:
    parts: list[str] = []
    current = ""
    quote: str | None = None
    for char in inner:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            current += char
        elif char == ",":
            parts.append(current)
            current = ""
        elif char in "[]{}":
            raise FrontMatterError(f"line {number}: nested flow collections are not supported")
        else:
            current += char
    if quote:
        raise FrontMatterError(f"line {number}: unterminated quoted string")
    parts.append(current)
    return parts


def _scalar(text: str, number: int) -> Any:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise FrontMatterError(f"line {number}: unterminated double-quoted string")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise FrontMatterError(f"line {number}: bad escape in a double-quoted string") from None
        if not isinstance(value, str):  # pragma: no cover (a quoted JSON text is a string)
            raise FrontMatterError(f"line {number}: expected a string")
        return value
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise FrontMatterError(f"line {number}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[0] in "&*!%@`|>":
        raise FrontMatterError(
            f"line {number}: YAML feature {text[0]!r} is not supported here; quote the value"
        )
    lowered = text.lower()
    if lowered in ("null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text
