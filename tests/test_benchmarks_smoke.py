"""Smoke tests of the benchmark scripts: each runs with ``--quick`` and prints well-formed JSON.

These check that the scripts work (servers start and stop, the JSON has its keys and positive
figures); they never assert a speed, which depends on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPT_TIMEOUT = 120

pytestmark = pytest.mark.slow


def run_quick(script: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout)
    assert isinstance(result, dict)
    return result


def assert_positive(values: Iterable[object]) -> None:
    values = list(values)
    assert values
    for value in values:
        assert isinstance(value, int | float), value
        assert not isinstance(value, bool), value
        assert value > 0, value


def leaves(table: dict[str, dict[str, float]]) -> list[float]:
    return [value for row in table.values() for value in row.values()]


def test_rpc_quick() -> None:
    result = run_quick("rpc.py")
    variants = {"plain_mtls", "grpcsec_mtls", "insecure"}
    for key in ("calls_per_second", "p50_ms", "p99_ms"):
        assert set(result[key]) == variants
        assert_positive(leaves(result[key]))
    assert_positive([result["ratio_grpcsec_vs_plain_mtls"], result["target_ratio"]])
    assert isinstance(result["meets_target"], bool)
    assert isinstance(result["params"], dict)
    assert result["grpcio"]


def test_peer_cost_quick() -> None:
    result = run_quick("peer_cost.py")
    micro = result["in_process"]["us_per_call"]
    for key in ("peer_cached", "peer_uncached", "real_context_peer_cached", "parse_only"):
        assert_positive([micro[key]])
    assert result["in_process"]["principal"].startswith("spiffe://")
    end_to_end = result["end_to_end"]
    methods = {"Plain", "AuthContext", "Peer"}
    for key in ("calls_per_second", "p50_ms", "p99_ms"):
        assert set(end_to_end[key]) == methods
        assert_positive(leaves(end_to_end[key]))
    assert_positive(end_to_end["ratio_peer_vs_plain"].values())
    assert result["grpcio"]


def test_resumption_quick() -> None:
    result = run_quick("resumption.py")
    assert set(result["key_types"]) == {"ecdsa-p256", "rsa-2048"}
    for summary in result["key_types"].values():
        for key in ("handshakes_per_second", "p50_ms"):
            assert set(summary[key]) == {"no_cache", "with_cache"}
            assert_positive(summary[key].values())
        assert_positive([summary["ratio_with_vs_without_cache"]])
        assert isinstance(summary["session_reused_observed"], bool)
        assert summary["sessions_reused"]["no_cache"] == 0
    assert set(result["checks"]) == {
        "dial_ip_without_server_name",
        "shared_cache_two_identities",
        "shared_cache_two_trust_anchors",
    }
    assert result["grpcio"]


def test_bundle_parse_quick() -> None:
    result = run_quick("bundle_parse.py")
    sizes = result["sizes"]
    assert set(sizes) == {"10", "300", "1500"}
    assert [sizes[s]["trust_bundle"] for s in ("10", "300", "1500")] == [
        "accepted",
        "accepted",
        "refused",
    ]
    assert_positive(row["parse_seconds"] for row in sizes.values())
    assert_positive(row["grpc_core_seconds"] for row in sizes.values())
    assert_positive(result["per_certificate_us_ratio"].values())
    assert result["max_trust_certificates"] == 1000
    assert isinstance(result["meets_target"], bool)
