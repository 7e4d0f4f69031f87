"""Smoke test of ``benchmarks/authz.py``: it runs with ``--quick`` and prints well-formed JSON.

It checks the keys, that every figure is a positive number and that the engine and the naive
evaluator agreed on every request; it never asserts a speed, which depends on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "authz.py"
SIZES = ("10", "100", "1000", "10000")

pytestmark = pytest.mark.slow


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_authz_benchmark_quick() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    assert set(result["results"]) == set(SIZES)
    for size in SIZES:
        row = result["results"][size]
        assert row["rules"] == int(size)
        assert row["deny_rules"] + row["allow_rules"] == int(size)
        for variant in ("engine", "engine_unknown_method", "naive"):
            assert set(row[variant]) == {"median_us", "p99_us", "samples"}
            assert all(positive(v) for v in row[variant].values()), row[variant]
        assert positive(row["speedup_median"])
        assert positive(row["compile_ms"])
        assert row["decisions_agree"] is True
        assert sum(row["request_mix"].values()) == result["params"]["request_pool"]
    assert positive(result["ratio_1000_vs_10"])
    assert result["targets"] == {"median_us_at_1000": 5.0, "max_ratio_1000_vs_10": 2.0}
    assert set(result["meets_target"]) == {"median_at_1000", "ratio_1000_vs_10"}
    assert all(isinstance(v, bool) for v in result["meets_target"].values())
    assert result["decisions_agree"] is True
    assert result["params"]["quick"] is True
    assert result["python"]
