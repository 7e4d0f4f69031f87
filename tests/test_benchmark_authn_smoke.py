"""Smoke test of benchmarks/authn.py: it runs with ``--quick`` and prints well-formed JSON.

It checks that the script works (server processes start and stop, every variant answers, the
JSON has its keys and positive figures); it never asserts a speed, which depends on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "authn.py"
VARIANTS = {"bare", "core", "cert", "jwt_cached", "jwt_uncached", "secured"}

pytestmark = pytest.mark.slow


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_authn_benchmark_quick() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout)

    micro = result["in_process"]
    for algorithm in ("ES256", "RS256"):
        assert positive(micro["us_per_call"]["verify"][algorithm]["cold"])
        assert positive(micro["us_per_call"]["verify"][algorithm]["cached"])
        assert positive(micro["cold_vs_cached_ratio"][algorithm])
    assert set(micro["us_per_call"]["guard_run"]) == {"core", "cert", "jwt_cached", "secured"}
    assert isinstance(micro["meets_cache_target"], bool)

    for kind in ("sync", "aio"):
        summary = result["end_to_end"][kind]
        for table in ("calls_per_second", "p50_ms", "server_cpu_us_per_call"):
            assert set(summary[table]) == VARIANTS
            assert all(positive(v) for row in summary[table].values() for v in row.values())
        assert set(summary["ratio_vs_bare"]) == VARIANTS - {"bare"}
        assert positive(summary["secured_vs_bare"])
    assert isinstance(result["meets_throughput_target"], bool)
    assert result["params"]["rounds"] == 1
    assert result["grpcio"]
