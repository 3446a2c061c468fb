"""``scripts/bench apply --transport http`` at a tiny count: it runs end to end, prints
its ratio, and counts what every client published and read back rather than
assuming it; its bare bridge client counts only what the bridge stored."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.buzz_relay import BuzzRelay, HttpAnswer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench_apply.py"


def _bench_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/ is not a package: the bench is loaded from its file, as the script runs
    (registered while the test runs: its dataclasses look their module up by name)."""
    spec = importlib.util.spec_from_file_location("bench_apply", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_http_bench_prints_its_ratio_and_every_client_read_back_every_engram() -> None:
    # As scripts/bench runs it: the project root on the path, this checkout's python.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(BENCH), "--transport", "http", "--count", "20", "--rounds", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^  apply / \(p\) = \d+\.\d\d \(the strong baseline\)", out, re.M), out
    counted = re.search(r"^    counted: (.*)$", out, re.M)
    assert counted is not None, out
    assert sorted(counted.group(1).split("; ")) == [
        "(a) 20 stored, 20 read back",
        "(p) 20 stored, 20 read back",
        "apply 20 published (read back), then unchanged",
    ]


def test_the_bare_bridge_client_does_not_count_an_event_the_bridge_did_not_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = _bench_module(monkeypatch)
    prepared = bench.prepare(3)
    with BuzzRelay().serving() as relay:
        # buzz's answer to an event older than the head: accepted, but not stored.
        relay.faults.http_answers.append(
            HttpAnswer(
                200,
                json.dumps({"event_id": "", "accepted": True, "message": "duplicate:"}).encode(),
            )
        )
        with pytest.raises(SystemExit, match="got 2/3 events stored and 2/3 read back"):
            bench.bridge_client("(p)", relay.http_url, prepared, lambda: 0.0)
