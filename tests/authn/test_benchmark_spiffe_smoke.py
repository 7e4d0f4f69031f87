"""Smoke test of benchmarks/spiffe_binding.py: it runs with ``--quick`` and prints well-formed
JSON with its keys and positive figures; it never asserts a speed, which depends on the
machine."""

from __future__ import annotations

import pytest

from tests.test_benchmarks_smoke import assert_positive, run_quick

pytestmark = pytest.mark.slow


def test_spiffe_binding_benchmark_quick() -> None:
    result = run_quick("spiffe_binding.py")
    assert result["params"]["quick"] is True
    assert set(result["us_per_call"]) == {"allow_list", "binding_cached", "binding_first_call"}
    assert_positive(
        [
            *result["us_per_call"].values(),
            result["ratio_cached_vs_allow_list"],
            result["ratio_first_call_vs_allow_list"],
        ]
    )
