"""Fixtures of the end-to-end tests: a freshly initialised home per test.

``fleetsync init`` runs once per session into a template home; each test gets
a copy (modes kept), so every test starts from a real, independent home
without paying for an init process each time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, base_environ

WRITER = """{
  "display_name": "Writer",
  "system_prompt": "You write clearly.",
  "model": "gpt-x",
  "name_pool": ["Ann", "Bob"],
  "env_vars": {"OPENAI_API_KEY": "sk-e2e-very-secret-value"}
}
"""


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("template") / "home"
    result = Cli(home)("init")
    assert result.code == 0, result
    return home


@pytest.fixture
def home(template_home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(template_home, copy)
    return copy


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home, base_environ())


@pytest.fixture
def writer_file(tmp_path: Path) -> Path:
    path = tmp_path / "writer.json"
    path.write_text(WRITER, encoding="utf-8")
    return path
