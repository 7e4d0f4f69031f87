"""Output that survives pipes, narrow terminals and NO_COLOR (issue 16, item 4).

``grpcsec check`` runs as a real subprocess with stdout on a pipe, or on a real pseudo-terminal
(:mod:`pty`) of a given width: a table that does not fit, or that goes to a pipe, is printed as
plain rows, one line per certificate, a long path never folded; on a terminal wide enough it is
Rich's table, coloured unless ``NO_COLOR`` is set; a certificate whose CN is Rich markup is
shown literally in both layouts.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.clirun import make_init, ok, run

GRPCSEC = [sys.executable, "-m", "grpcsec"]
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
MARKUP_CN = "[red]x[/red] [bold]y"
BOX = "│"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipes")
    pki = make_init(root / ("a-directory-name-long-enough-to-push-the-table-past-80-columns"))
    ok(run("issue", "client", "--ca-dir", pki, "--out", pki / "markup",
           "--cn", MARKUP_CN, "--uri", "urn:x:y"))  # fmt: skip
    return pki


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR", "COLUMNS"}}
    return {**env, **extra}


def on_a_pipe(*args: object, **env: str) -> str:
    result = subprocess.run(
        [*GRPCSEC, *map(str, args)], capture_output=True, text=True, timeout=60, check=False,
        env=_env(**env),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def on_a_terminal(*args: object, **env: str) -> str:
    """stdout on a real pseudo-terminal; what the terminal received."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*GRPCSEC, *map(str, args)], stdout=slave, stderr=subprocess.PIPE, env=_env(**env)
    )
    os.close(slave)
    received = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    process.stderr.close()
    return received.decode().replace("\r\n", "\n")


def _assert_plain_rows(output: str, files: Path) -> None:
    assert BOX not in output
    assert "\x1b[" not in output
    rows = [line for line in output.splitlines() if line.startswith("ok ")]
    assert len(rows) == 4  # ca, server, client, markup: one line each
    assert any(line.endswith(str(files / "server.crt")) for line in rows)  # the path whole
    assert any(MARKUP_CN in line for line in rows)  # markup shown, not obeyed


def test_a_pipe_gets_plain_rows_without_colour(files: Path) -> None:
    _assert_plain_rows(on_a_pipe("check", files), files)


def test_a_terminal_of_80_columns_gets_plain_rows_not_folded_cells(files: Path) -> None:
    _assert_plain_rows(on_a_terminal("check", files, COLUMNS="80"), files)


def test_a_wide_terminal_gets_the_coloured_table_and_no_colour_with_no_color(
    files: Path,
) -> None:
    wide = on_a_terminal("check", files, COLUMNS="250")
    assert BOX in wide
    assert COLOUR.search(wide)  # the control: colour on a terminal
    assert MARKUP_CN in wide
    plain = on_a_terminal("check", files, COLUMNS="250", NO_COLOR="1")
    assert BOX in plain
    assert not COLOUR.search(plain), repr(plain[:300])
    assert MARKUP_CN in plain
