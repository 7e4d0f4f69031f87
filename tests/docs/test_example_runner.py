"""The docs example runner can fail: wrong output, a wrong exit code, a Python error, a server
that never says it is ready, and a skip without a reason are all caught (negative controls
for tests/docs/test_examples.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.docs import examples
from tests.docs.examples import output_matches, run_page

FENCE = "```"


def _page(tmp_path: Path, body: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(body.replace("'''", FENCE))
    return page


def test_output_matching_with_ellipses() -> None:
    assert output_matches(["a ... c"], ["a b c"])
    assert output_matches(["first", "...", "last"], ["first", "x", "y", "last"])
    assert not output_matches(["a ... c"], ["a b d"])
    assert not output_matches(["only"], ["only", "extra"])


def test_a_page_that_holds_passes(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        """
'''text title="greeting.txt"
hello
'''
'''console
$ cat greeting.txt
hello
$ grpcsec --version
grpcsec ...
$ grpcsec inspect greeting.txt
error: ...
'''
'''python
import asyncio
from pathlib import Path
assert Path("greeting.txt").read_text() == "hello\\n"
'''
""",
    )
    run_page(page)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("'''console\n$ echo hello\ngoodbye\n'''\n", "expected:"),
        ("'''console\n$ false\n'''\n", "exit code 1"),
        ("'''console\n$ grpcsec inspect nothing.crt\n'''\n", "exit code 2"),
        ("'''python\nassert 1 == 2\n'''\n", ""),
        ("<!-- not-run: -->\n'''console\n$ false\n'''\n", "not-run needs a reason"),
    ],
)
def test_a_page_that_does_not_hold_fails(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises((AssertionError, ValueError)) as raised:
        run_page(_page(tmp_path, body))
    assert message in str(raised.value)


def test_a_server_that_never_gets_ready_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(examples, "ready_timeout", lambda: 3.0)
    page = _page(
        tmp_path,
        "'''console\n$ grpcsec serve --listen 127.0.0.1:50999 --insecure\nnever printed\n'''\n",
    )
    with pytest.raises(AssertionError, match="never printed"):
        run_page(page)


def test_not_run_skips_only_the_next_example(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "<!-- not-run: it would fail on purpose -->\n'''console\n$ false\n'''\n"
        "'''console\n$ echo ran\nran\n'''\n",
    )
    run_page(page)


def test_python_blocks_see_the_ports_console_blocks_see(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "'''console\n$ echo 127.0.0.1:50123 > seen.txt\n'''\n"
        "'''python\nfrom pathlib import Path\n"
        "seen = Path('seen.txt').read_text().strip()\n"
        "assert seen == '127.0.0.1:50123', seen\n"
        "assert not seen.endswith('50123')  # remapped to a free port, in both\n'''\n",
    )
    run_page(page)


def test_python_blocks_know_the_repository(tmp_path: Path) -> None:
    page = _page(
        tmp_path, "'''python\nassert (REPOSITORY / 'tests/docs/examples.py').is_file()\n'''\n"
    )
    run_page(page)


@pytest.mark.parametrize(
    ("command", "long_running"),
    [
        ("grpcsec serve --listen 127.0.0.1:50051 --insecure", True),
        ("GRPCSEC_KEY_PASSWORD=x grpcsec renew --cert a.crt", True),
        ("grpcsec acme renew --cert a.crt --once", True),  # --once is checked separately
        ("PEBBLE_VA_NOSLEEP=1 pebble -config pebble-config.json", True),
        ("grpcsec acme issue --cert a.crt", False),
        ("grpcsec serverless", False),
        ("pebble-challtestsrv", False),
        ("echo pebble", False),
    ],
)
def test_which_commands_run_in_the_background(command: str, long_running: bool) -> None:
    assert bool(examples.LONG_RUNNING.match(command)) is long_running


def test_a_page_gets_a_default_event_loop_whatever_ran_before(tmp_path: Path) -> None:
    """``asyncio.run`` leaves the main thread without a default loop; a page's module-level
    ``grpc.aio.server()`` must work as in a new process (it failed in CI's order before)."""
    asyncio.run(asyncio.sleep(0))
    page = _page(
        tmp_path,
        "'''python\nimport asyncio\nassert not asyncio.get_event_loop().is_closed()\n'''\n",
    )
    run_page(page)
