"""Smoke test of ``benchmarks/rotation.py``: it runs with ``--quick`` and prints well-formed JSON.

It checks that the script works (server processes start, rotate and stop; every section has its
keys; no call failed during rotation); it never asserts a speed, which depends on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "rotation.py"

pytestmark = pytest.mark.slow


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_rotation_benchmark_quick() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout)

    fetcher = result["fetcher"]
    for key in ("unchanged_us", "always_return_same_object_us", "empty_function_us"):
        assert positive(fetcher[key]), key
    assert isinstance(fetcher["meets_target"], bool)
    assert fetcher["target_us"] == 5.0

    per_connection = result["per_connection"]
    modes = {"static", "rotating", "always_return"}
    assert set(per_connection["connections_per_second"]) == modes
    assert all(positive(v) for v in per_connection["connections_per_second"].values())
    assert positive(per_connection["ratio_rotating_vs_static"])
    assert positive(per_connection["rotating_server_fetcher_calls"])

    swaps = result["swap_to_first_handshake"]
    for name in ("poll_1s", "poll_50ms", "explicit_reload"):
        section = swaps[name]
        assert positive(section["p50_ms"]) and positive(section["max_ms"]), name
        assert section["reload_failures"] == 0
        assert section["reload_successes"] == section["swaps"]

    throughput = result["throughput_during_rotation"]
    assert set(throughput["calls_per_second"]) == {"baseline", "rotating"}
    assert all(positive(v) for v in throughput["calls_per_second"].values())
    assert positive(throughput["ratio_rotating_vs_baseline"])
    assert throughput["failed_calls"] == 0
    assert positive(throughput["swaps"])
    assert result["grpcio"]
    assert result["params"]["quick"] is True
