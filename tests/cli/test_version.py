"""``grpcsec --version`` and ``python -m grpcsec`` (issue 16, item 3)."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import grpcsec
from grpcsec.cli import app


def test_version_prints_the_package_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"grpcsec {grpcsec.__version__}\n"


def test_python_dash_m_grpcsec_is_the_cli() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "grpcsec", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"grpcsec {grpcsec.__version__}"
    # A negative control through the same entry point: bad usage is exit 2, not a traceback.
    bad = subprocess.run(
        [sys.executable, "-m", "grpcsec", "inspect", "/nonexistent/x.crt"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error:")
