"""Short soak of ``grpcsec serve`` (``benchmarks/soak.py``): mTLS + JWT + A43 + metrics, 50
callers for 20 s, the server certificate rotated every 2 s and the policy edited every 5 s.

Unlike the other benchmark smoke tests this one asserts outcomes, because they do not depend on
the machine's speed: no call fails while certificates and policies change under load, every
rotation is served (at least 3 distinct serials seen by TLS handshakes), every policy edit is
loaded by the server (at least 2 reloads in its log), and the JSON has its shape. Latency,
throughput and memory figures are only checked to be present and positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
SHORT = (
    *("--duration", "20", "--callers", "50", "--rotate-every", "2", "--policy-every", "5"),
    *("--warmup", "4", "--window", "5", "--max-connection-age", "5"),
)

pytestmark = pytest.mark.slow


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def test_short_soak_has_no_failures_and_sees_every_rotation_and_policy_edit() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *SHORT],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(completed.stdout)

    assert result["failures"] == 0, result["failure_kinds"]
    assert result["failure_kinds"] == {}
    assert positive(result["calls"]) and positive(result["calls_per_second"])
    assert result["rotation"]["distinct_serials_seen"] >= 3
    assert result["rotation"]["served"] == result["rotation"]["rotations"] >= 3
    assert result["policy"]["reloads_observed"] >= 2
    assert result["policy"]["edits_loaded"] == result["policy"]["edits"] >= 2
    assert set(result["policy"]["loaded_names"]) == {"soak-a", "soak-b"}

    overall = result["latency_overall"]
    assert overall["calls"] == result["calls"]
    assert positive(overall["p50_ms"]) and overall["p99_ms"] >= overall["p50_ms"]
    assert len(result["windows"]) >= 3
    for window in result["windows"]:
        assert set(window) >= {"from_s", "calls", "p50_ms", "p99_ms", "failures"}
        assert window["failures"] == 0
    server = result["server"]
    for key in ("rss_start_mb", "rss_end_mb", "cpu_us_per_call"):
        assert positive(server[key]), key
    assert isinstance(server["rss_growth_ratio"], float)
    assert server["calls_logged"] >= result["calls"]  # the server logged every call it served
    assert "traceback" not in server["log_levels"] and "ERROR" not in server["log_levels"]

    metrics = result["metrics_at_end"]
    assert metrics["grpcsec_rotation_reload_successes_total"] >= 3
    decisions = [k for k in metrics if k.startswith("grpcsec_authorization_decisions_total")]
    assert any('policy="soak-a"' in k for k in decisions)
    assert any('policy="soak-b"' in k for k in decisions)
    assert all('decision="allow"' in k for k in decisions)

    goals = result["goals_met"]
    assert set(goals) == {
        "no_failures",
        "rss_growth_below_10_percent",
        "every_rotation_served",
        "every_policy_edit_loaded",
    }
    assert all(isinstance(v, bool) for v in goals.values())
    assert goals["no_failures"] and goals["every_rotation_served"]
    assert goals["every_policy_edit_loaded"]
    assert result["params"]["callers"] == 50
