"""The fleetsync CLI run in process against one home, for the integration tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.settings import Settings
from tests.e2e.harness import base_environ


class Fleetsync:
    """The CLI, in process, against one home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.environ = base_environ(FLEETSYNC_HOME=str(home))

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdout=out, stderr=err, environ=self.environ)
        return code, out.getvalue(), err.getvalue()

    def __call__(self, *argv: str, expect: int = 0) -> str:
        code, out, err = self.run(*argv)
        assert code == expect, f"fleetsync {' '.join(argv)} -> {code}\n{out}{err}"
        return out

    def json(self, *argv: str, expect: int = 0) -> Any:
        return json.loads(self("--json", *argv, expect=expect))

    def save(self, slug: str, definition: dict[str, Any], tmp: Path, *extra: str) -> Any:
        path = tmp / f"{slug}.json"
        path.write_text(json.dumps(definition), encoding="utf-8")
        return self.json("persona", "save", slug, str(path), *extra)

    def owner_secret(self) -> str:
        with bootstrap(Settings.load(home=self.home, environ=self.environ)) as fleet:
            return fleet.owner.secret_hex()
