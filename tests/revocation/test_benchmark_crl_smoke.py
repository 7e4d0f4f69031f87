"""Smoke test of benchmarks/crl.py: it runs with ``--quick`` and prints well-formed JSON with
its keys and positive figures; it never asserts a speed, which depends on the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "crl.py"

pytestmark = pytest.mark.slow


def test_crl_benchmark_quick() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["params"]["entries"] == 2000
    figures = [
        *result["load_seconds"].values(),
        *result["lookup_us"].values(),
        *result["us_per_call"].values(),
        result["ratio_cached_vs_no_crl"],
        result["ratio_first_call_vs_no_crl"],
        result["load_ratio_big_vs_empty"],
    ]
    assert all(isinstance(v, int | float) and v > 0 for v in figures), figures
    assert set(result["us_per_call"]) == {"no_crl", "crl_cached", "crl_first_call"}
    assert isinstance(result["meets_load_target"], bool)
