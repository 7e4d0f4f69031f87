"""Smoke test of benchmarks/spiffe_binding.py: it runs with ``--quick`` and prints well-formed
JSON with its keys and positive figures; it never asserts a speed, which depends on the
machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "spiffe_binding.py"

pytestmark = pytest.mark.slow


def test_spiffe_binding_benchmark_quick() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["params"]["quick"] is True
    assert set(result["us_per_call"]) == {"allow_list", "binding_cached", "binding_first_call"}
    figures = [
        *result["us_per_call"].values(),
        result["ratio_cached_vs_allow_list"],
        result["ratio_first_call_vs_allow_list"],
    ]
    assert all(isinstance(v, int | float) and v > 0 for v in figures), figures
