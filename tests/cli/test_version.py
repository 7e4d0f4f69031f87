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


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpcsec", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_usage_errors_are_one_line_with_the_fix_not_a_panel() -> None:
    """Issue 16, item 2: Click/Typer usage errors through the real entry point."""
    unknown = _cli("inspect", "--bogus\x1b[31m")
    assert unknown.returncode == 2
    (line,) = unknown.stderr.splitlines()
    assert line.startswith("error: No such option: --bogus")
    assert line.endswith(" inspect --help'")  # 'python -m grpcsec inspect --help' here
    assert "; fix: see '" in line
    assert "\x1b" not in line  # the user's own argv is shown inert too
    missing = _cli("renew", "--cert", "x.crt")
    assert missing.returncode == 2
    (line,) = missing.stderr.splitlines()
    assert line.startswith("error: Missing option '--ca-dir'; fix: see '")
    for result in (unknown, missing):
        assert "╭" not in result.stderr
        assert "Traceback" not in result.stderr
    # Controls: help and a good command still work, and no arguments still shows the help.
    assert _cli("inspect", "--help").returncode == 0
    bare = _cli()
    assert bare.returncode == 2
    assert "Usage:" in bare.stderr + bare.stdout
