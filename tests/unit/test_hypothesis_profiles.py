"""The hypothesis profiles of tests/conftest.py, chosen by FLEETSYNC_HYPOTHESIS_PROFILE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "import tests.conftest\n"
    "from hypothesis import settings\n"
    "from tests.support.examples import examples\n"
    "print(settings.default.max_examples, settings.default.deadline, examples(25))\n"
)


def loaded(profile: str | None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "FLEETSYNC_HYPOTHESIS_PROFILE"}
    if profile is not None:
        environ["FLEETSYNC_HYPOTHESIS_PROFILE"] = profile
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=environ, capture_output=True, text=True
    )


@pytest.mark.parametrize("profile", [None, "", "fast"])
def test_the_fast_profile_is_the_default_and_keeps_hand_set_budgets(profile: str | None) -> None:
    result = loaded(profile)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["100", "0:00:00.200000", "25"]


def test_the_thorough_profile_runs_ten_times_the_examples_with_no_deadline() -> None:
    result = loaded("thorough")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "None", "250"]


def test_an_unknown_profile_is_refused_by_name() -> None:
    result = loaded("quick")
    assert result.returncode != 0
    assert "FLEETSYNC_HYPOTHESIS_PROFILE='quick': use fast or thorough" in result.stderr
