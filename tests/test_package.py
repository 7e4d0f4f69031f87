"""The release artefacts work on their own (issue 17 item 3).

``python -m build`` makes an sdist and a wheel whose version is the one in
``grpcsec/__init__.py`` (pyproject reads it from there: one place); the wheel carries the files
the code needs at run time (the demo's ``helloworld.proto``, ``py.typed``) and the licence; the
sdist carries the tests and docs but not local build output. Then the wheel is installed into a
fresh virtual environment in a temporary directory outside the checkout, and ``grpcsec demo``
runs from there: a module or data file missing from the wheel fails here, not for a user.

Not checked: publishing to an index, or installing on other Python versions than this one.
The fresh venv downloads grpcsec's dependencies from the package index (pip's cache makes
that quick after ``./dev test`` has installed them once).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import grpcsec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def test_wheel_and_sdist_carry_the_version_from_one_place(dist: Path) -> None:
    version = grpcsec.__version__
    wheel = _one(dist, "grpcsec-*.whl")
    sdist = _one(dist, "grpcsec-*.tar.gz")
    assert wheel.name == f"grpcsec-{version}-py3-none-any.whl"
    assert sdist.name == f"grpcsec-{version}.tar.gz"
    assert not re.search(r"^version\s*=", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)


def test_wheel_carries_runtime_data_and_licence(dist: Path) -> None:
    names = set(zipfile.ZipFile(_one(dist, "grpcsec-*.whl")).namelist())
    version = grpcsec.__version__
    for needed in (
        "grpcsec/py.typed",
        "grpcsec/demo/helloworld.proto",
        "grpcsec/cli/__init__.py",
        f"grpcsec-{version}.dist-info/licenses/LICENSE",
        f"grpcsec-{version}.dist-info/entry_points.txt",
    ):
        assert needed in names
    assert not any(name.startswith("tests/") for name in names)


def test_sdist_has_tests_and_docs_but_no_build_output(dist: Path) -> None:
    with tarfile.open(_one(dist, "grpcsec-*.tar.gz")) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    for needed in ("LICENSE", "SECURITY.md", "CHANGELOG.md", "docs/security-model.md", "dev"):
        assert needed in names
    assert any(name.startswith("tests/") for name in names)
    assert not [n for n in names if "node_modules" in n or n.startswith("interop/build")]
    assert not [n for n in names if n.startswith(".venv")]


def test_installed_wheel_runs_the_demo_outside_the_checkout(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    wheel = _one(dist, "grpcsec-*.whl")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    where = subprocess.run(
        [str(python), "-c", "import grpcsec; print(grpcsec.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    demo = subprocess.run(
        [str(venv / "bin" / "grpcsec"), "demo"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    version = subprocess.run(
        [str(venv / "bin" / "grpcsec"), "--version"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=True,
    )  # fmt: skip
    assert version.stdout.strip() == f"grpcsec {grpcsec.__version__}"
