"""Smoke test of ``benchmarks/report.py``: with ``--run --quick`` on two fast benchmarks it keeps
their JSON, writes a Markdown page whose charts are real PNG files and whose ratios come from
that JSON, says which benchmarks were not run, and refuses an unknown benchmark name. It never
asserts a speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "report.py"
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_report_runs_two_benchmarks_and_draws_them(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "docs" / "benchmarks.md"
    out.parent.mkdir()
    args = ("--run", "--quick", "--only", "authz,crl", "--results", str(results), "--out", str(out))
    completed = _report(*args)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout)["report"] == str(out)
    page = out.read_text()
    crl = json.loads((results / "crl.json").read_text())
    assert (
        f"| per call, CRL verdict cached vs no CRL | {crl['ratio_cached_vs_no_crl']:.2f} |" in page
    )
    assert "`--quick` runs" in page and "Versions" in page
    for name in ("authz", "crl"):
        assert (out.parent / "benchmarks" / f"{name}.png").read_bytes().startswith(PNG)
        assert f"](benchmarks/{name}.png)" in page
    assert page.count("Not run: no") == 4  # server, handshake, rotation, authn


def test_unknown_benchmark_is_refused(tmp_path: Path) -> None:
    completed = _report(
        "--only", "nope", "--results", str(tmp_path), "--out", str(tmp_path / "b.md")
    )
    assert completed.returncode == 2
    assert "unknown benchmark(s): nope" in completed.stderr
