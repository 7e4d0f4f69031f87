"""Every documentation page's examples run and give the output shown (see examples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.examples import run_page

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("page", PAGES)
def test_examples_on_the_page_run(page: str) -> None:
    run_page(ROOT / page)
