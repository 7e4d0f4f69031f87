"""Smoke test of benchmarks/server.py: it runs with ``--quick`` and prints well-formed JSON.

It checks that the script works: every server process starts and stops, every call of every
variant succeeded, the JSON has its keys and positive figures, and the negative controls of the
same run were refused (no token: UNAUTHENTICATED; a certificate whose CN is not allowed:
PERMISSION_DENIED), so the secured variant really checked what it claims to. It never asserts a
speed, which depends on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.peers import missing

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "server.py"
LAYERS = {"bare", "guard", "cn", "jwt", "policy", "secured"}
ROW = {"calls_per_second", "p50_ms", "p99_ms", "server_cpu_us_per_call"}

pytestmark = pytest.mark.slow


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def run_quick(*arguments: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """``server.py --quick`` with ``arguments``: its JSON and its stderr (it must succeed)."""
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *arguments],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout), completed.stderr


def test_server_benchmark_quick() -> None:
    result, _ = run_quick()
    sidecar = "skipped" not in result["sidecar"]
    expected = LAYERS | {"sidecar"} if sidecar else LAYERS

    for kind in ("sync", "aio"):
        summary = result["kinds"][kind]
        variants = summary["variants"]
        assert set(variants) == expected
        for name, row in variants.items():
            assert row["failures"] == 0, (kind, name)
            assert row["calls"] > 0, (kind, name)
            assert all(positive(row[key]) for key in ROW), (kind, name, row)
            if name != "bare":
                assert positive(row["ratio_vs_bare"])
        assert set(summary["extra_server_cpu_us_per_layer"]) == LAYERS - {"bare"}
        assert positive(summary["secured_vs_bare"])
        assert summary["negative_controls"] == {
            "without_token": "UNAUTHENTICATED",
            "cn_not_allowed": "PERMISSION_DENIED",
        }
        if sidecar:
            assert positive(summary["secured_vs_sidecar"]["throughput_ratio"])
            assert positive(summary["secured_vs_sidecar"]["p99_ratio"])
    assert isinstance(result["meets_target_vs_bare"], bool)
    assert result["failed_calls"] == {}
    in_process = result["guard_us_per_call_in_process"]
    assert set(in_process) == LAYERS - {"bare"}
    assert all(positive(value) for value in in_process.values()), in_process
    assert result["params"]["rounds"] == 2
    assert result["grpcio"]


def test_server_benchmark_without_nghttpx_skips_the_sidecar_with_a_note() -> None:
    """Without nghttpx (``NGHTTPX=""``: none) the run still succeeds and says why the sidecar
    path is missing."""
    result, stderr = run_quick(
        "--kinds", "sync", "--variants", "sidecar", env={**os.environ, "NGHTTPX": ""}
    )
    assert "nghttpx not found" in result["sidecar"]["skipped"]
    assert "nghttpx not found" in stderr
    assert set(result["kinds"]["sync"]["variants"]) == {"bare", "secured"}
    assert "secured_vs_sidecar" not in result


def test_server_benchmark_with_the_go_caller() -> None:
    """``--client go``: grpc-go (``interop/build/bin/grpc-load``) calls every server with the
    token, every call succeeds, and the same caller without its token file gets nothing in."""
    loader = SCRIPT.parent.parent / "interop" / "build" / "bin" / "grpc-load"
    if not loader.exists():
        missing(f"{loader} is not built (interop/install.sh builds it)")
    result, _ = run_quick("--client", "go", "--kinds", "sync")
    summary = result["kinds"]["sync"]
    for name, row in summary["variants"].items():
        assert row["failures"] == 0, (name, row)
        assert row["calls"] > 0, (name, row)
    assert summary["negative_controls"]["go_without_token"] == "refused"
    assert summary["negative_controls"]["without_token"] == "UNAUTHENTICATED"
