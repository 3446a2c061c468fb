"""One name per thing: no two top-level classes of the code share a name.

Two classes of one name in different rooms (two ``RelayHead``, two ``Reason``)
are two things a reader takes for one; the second gets a name of its own.
Classes nested in an aggregate (``Persona.Created``, ``Agent.Created``) are
named through their aggregate and are not counted.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "adapters")


def classes(source: str) -> list[str]:
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]


def shared_names(modules: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Each class name defined at the top of more than one of ``(module, source)``."""
    where: dict[str, list[str]] = defaultdict(list)
    for module, source in modules:
        for name in classes(source):
            where[name].append(module)
    return {name: found for name, found in where.items() if len(found) > 1}


def _project() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def test_no_two_classes_of_the_code_share_a_name() -> None:
    modules = _project()
    assert len(modules) > 50
    assert shared_names(modules) == {}


def test_a_class_name_used_in_two_rooms_is_caught() -> None:
    found = shared_names(
        [
            ("domain/a.py", "class RelayHead:\n    pass\n"),
            ("adapters/b.py", "class RelayHead:\n    pass\nclass Other:\n    pass\n"),
            ("adapters/c.py", "class Agent:\n    class Created:\n        pass\n"),
            ("adapters/d.py", "class Persona:\n    class Created:\n        pass\n"),
        ]
    )
    assert found == {"RelayHead": ["domain/a.py", "adapters/b.py"]}
