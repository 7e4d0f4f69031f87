"""The fuzz targets run (short CI variant of docs/fuzzing.md; the real runs are ≥ 10 minutes).

``fuzz/run.py`` runs all three atheris targets concurrently for a few seconds in subprocesses,
from seeds it generates into a temporary work directory; each must exit 0 having executed
inputs and written no crash artifact. ``--reproduce`` replays one input without atheris.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import TARGETS

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "fuzz" / "run.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None, reason="atheris is not installed"
    ),
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_every_target_runs_briefly_without_a_crash(tmp_path: Path) -> None:
    result = run("--seconds", "5", "--work-dir", str(tmp_path), "--log-dir", str(tmp_path / "log"))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    figures = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [f["target"] for f in figures] == list(TARGETS)
    for figure in figures:
        assert figure["exit"] == 0
        assert figure["executions"] > 0, figure
        assert figure["coverage"] > 0, figure
        assert figure["artifacts"] == []
    for target in TARGETS:
        assert list((tmp_path / "corpus" / target).iterdir()), "seeds were written"
        assert not list((tmp_path / "artifacts" / target).iterdir())


def test_reproduce_replays_one_input(tmp_path: Path) -> None:
    saved = tmp_path / "input"
    saved.write_bytes(b"\x00Bearer not.a.token")
    result = run("bearer", "--reproduce", str(saved))
    assert result.returncode == 0, result.stderr
    assert "ran without a crash" in result.stdout
    saved.write_bytes(b"\x00" + b"{" * 50)
    assert run("policy", "--reproduce", str(saved)).returncode == 0
