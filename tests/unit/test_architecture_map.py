"""ARCHITECTURE.md names only what exists, so the map cannot go stale in silence.

Every span in backticks is read as one of:

- a path (it holds a ``/`` or ends in a source or document suffix): it must exist
  in the checkout when it starts at a top-level entry of the repository or ends in
  such a suffix (``mem/persona`` or ``ws(s)://`` are neither, and are prose);
- a dotted name starting with one of the project's packages
  (``adapters.sync.engine.Reconciler``, ``domain.verdict.judge()``): the longest
  importable module prefix is imported and the rest looked up with ``getattr``;
- a short name (``Reconciler._carry_out``, ``FleetContract.test_...``): some
  module of the project (tests included) must define it, read from the source
  with ``ast`` (a class, function or assignment, a method or field of a class, an
  attribute a method sets on ``self``), or it is an importable library module
  (``eventsourcing``).

Spans with blanks, quotes or punctuation (``persona save``, ``["EVENT", ...]``,
``kind:30175``) and spans without a lower-case letter (wire words such as
``AUTH``) are prose and not checked.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "ARCHITECTURE.md"
PACKAGES = ("domain", "projections", "adapters", "tests")
FILE_SUFFIXES = (".py", ".md", ".c", ".toml")
_SPAN = re.compile(r"`([^`\n]+)`")
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def spans(text: str) -> list[str]:
    return _SPAN.findall(text)


def _is_path(span: str) -> bool:
    return "/" in span or span.endswith(FILE_SUFFIXES)


def _checked_path(span: str) -> bool:
    """Whether a path-like span names a file of this repository (else it is prose)."""
    if any(c.isspace() for c in span):
        return False
    first = span.split("/", 1)[0]
    return span.endswith(FILE_SUFFIXES) or (bool(first) and (ROOT / first).exists())


def _code_name(span: str) -> str | None:
    """The dotted name a span stands for, or ``None`` when it is prose."""
    name = span.removesuffix("()")
    if not _NAME.fullmatch(name) or not any(c.islower() for c in name):
        return None
    return name


def _qualified_exists(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            target: object = importlib.import_module(module_name)
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def _source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


def _qualnames(body: Iterable[ast.stmt], prefix: str = "") -> Iterator[str]:
    for node in body:
        if isinstance(node, ast.ClassDef):
            qualname = prefix + node.name
            yield qualname
            yield from _qualnames(node.body, qualname + ".")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name
            if prefix:
                # Attributes a method sets on the instance are the class's too.
                for inner in ast.walk(node):
                    targets = (
                        inner.targets
                        if isinstance(inner, ast.Assign)
                        else [inner.target]
                        if isinstance(inner, ast.AnnAssign)
                        else []
                    )
                    for target in targets:
                        if (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == "self"
                        ):
                            yield prefix + target.attr
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield prefix + target.id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            yield prefix + node.target.id


@cache
def defined_names() -> frozenset[str]:
    """Every qualified name defined in the project's sources, and every dotted tail
    of one (``Agent.record_sealed`` and ``record_sealed`` for
    ``Agent.record_sealed``)."""
    names: set[str] = set()
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for qualname in _qualnames(tree.body):
            parts = qualname.split(".")
            names.update(".".join(parts[i:]) for i in range(len(parts)))
    return frozenset(names)


def _short_exists(name: str) -> bool:
    if name in defined_names():
        return True
    first = name.split(".", 1)[0]
    return importlib.util.find_spec(first) is not None and _qualified_exists(name)


def unresolved(found: Iterable[str]) -> list[str]:
    """The spans that name a path, module or code name the checkout does not have."""
    missing = []
    for span in found:
        if _is_path(span):
            if _checked_path(span) and not (ROOT / span).exists():
                missing.append(span)
            continue
        name = _code_name(span)
        if name is None:
            continue
        exists = (
            _qualified_exists(name) if name.split(".", 1)[0] in PACKAGES else _short_exists(name)
        )
        if not exists:
            missing.append(span)
    return missing


def checked(found: Iterable[str]) -> list[str]:
    """The spans :func:`unresolved` checks (the rest is prose)."""
    return [s for s in found if (_checked_path(s) if _is_path(s) else _code_name(s) is not None)]


def test_every_path_module_and_name_in_the_map_exists() -> None:
    assert unresolved(spans(MAP.read_text(encoding="utf-8"))) == []


def test_the_map_is_mostly_names_that_are_checked() -> None:
    # Guards the reading itself: a change to the span pattern that matched
    # nothing would make the test above pass on any map.
    assert len(checked(spans(MAP.read_text(encoding="utf-8")))) >= 150


def test_names_paths_and_modules_that_do_not_exist_are_caught() -> None:
    bogus = [
        "adapters.ports.NoSuchPort",
        "adapters.no_such_module",
        "domain.verdict.judge.no_such_attribute",
        "NoSuchClassAnywhere",
        "Reconciler.no_such_method",
        "adapters/no_such_file.py",
        "scripts/no_such_script",
    ]
    assert unresolved(bogus) == bogus


def test_names_that_exist_in_each_form_are_taken() -> None:
    real = [
        "adapters.sync.engine.Reconciler",
        "domain.verdict.judge()",
        "adapters.ports",
        "Reconciler._carry_out",
        "Agent.EngramSealed",
        "FleetContract.test_the_incremental_view_equals_a_full_replay_and_a_rebuild",
        "eventsourcing",
        "adapters/ports.py",
        "scripts/check",
        "tests/unit/",
    ]
    assert unresolved(real) == []
    assert checked(real) == real


def test_prose_in_backticks_is_not_taken_for_code() -> None:
    prose = ["persona save", '["EVENT", {...}]', "kind:30174", "mem/persona", "AUTH", "ws(s)://"]
    assert checked(prose) == []


def test_every_package_of_the_adapters_has_its_room_in_the_map() -> None:
    text = MAP.read_text(encoding="utf-8")
    packages = sorted(
        p.parent.name for p in (ROOT / "adapters").glob("*/__init__.py") if p.parent.is_dir()
    )
    assert packages, "the adapters have sub-packages"
    assert [p for p in packages if f"`adapters/{p}/`" not in text] == []
