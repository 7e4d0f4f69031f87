"""The documentation site builds with ``mkdocs build --strict`` (no broken link, anchor or nav
entry), its generated pages cover what exists (every CLI command, every public package), and a
broken link does fail the build (negative control, on a copy of the docs).

Not checked: how the pages look in a browser.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_help import PATHS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "docs"))
from hooks import public_packages  # noqa: E402

ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=ENV, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def _commands() -> list[str]:
    """Every command path, from the CLI tests' own walk of the Typer app (not the hook's)."""
    return ["grpcsec", *(" ".join(("grpcsec", *path)) for path in PATHS if path)]


def test_cli_reference_has_every_command(site: Path) -> None:
    text = _text(site / "reference" / "cli.html")
    commands = _commands()
    assert len(commands) > 20
    for command in commands:
        assert f"Usage: {command} " in text, command
    assert "╭" not in text  # plain help, not Rich panels


def test_api_reference_has_every_public_package(site: Path) -> None:
    packages = public_packages()
    assert "grpcsec.server" in packages and "grpcsec.cli" not in packages
    nav = (ROOT / "mkdocs.yml").read_text()
    for package in packages:
        page = site / "reference" / "api" / f"{package}.html"
        assert page.is_file(), package
        assert f"reference/api/{package}.md" in nav, f"{package} is missing from the nav"
    server = (site / "reference" / "api" / "grpcsec.server.html").read_text()
    assert 'id="grpcsec.server.secure_server"' in server  # rendered from the docstrings


def test_links_out_of_docs_point_at_copies(site: Path) -> None:
    monitoring = (site / "monitoring.html").read_text()
    assert 'href="repo/deploy/prometheus/grpcsec.rules.yml.html"' in monitoring
    assert (site / "repo" / "SECURITY.html").is_file()


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "index.md").write_text(
        (docs / "index.md").read_text() + "\nSee [the missing page](missing.md).\n"
    )
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(ROOT / "tools" / "docs" / "hooks.py")]
    handler = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    handler["paths"] = [str(ROOT / "src")]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stderr
