"""Shell completion (issue 16, item 3): ``grpcsec --show-completion`` prints a script for the
current shell, Click's ``_GRPCSEC_COMPLETE=source_<shell>`` prints one for a named shell, and
the script's query answers with grpcsec's own commands and options. Real subprocesses of the
console entry point, as a shell would run them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

GRPCSEC = [sys.executable, "-m", "grpcsec"]  # named grpcsec whatever runs it (cli.main)


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRPCSEC, *args],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **env},
    )  # fmt: skip


def test_show_completion_prints_a_script_for_the_shell_it_runs_from() -> None:
    # run from bash, as a person would: Typer finds the shell among the parent processes
    result = subprocess.run(
        ["bash", "-c", '"$0" -m grpcsec --show-completion; exit $?', sys.executable],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "_GRPCSEC_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _grpcsec_completion grpcsec" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("shell", "needle"), [("bash", "complete -o default -F"),
                                               ("zsh", "#compdef grpcsec"),
                                               ("fish", "complete --command grpcsec")])  # fmt: skip
def test_a_named_shell_gets_its_script(shell: str, needle: str) -> None:
    result = _run(_GRPCSEC_COMPLETE=f"source_{shell}")
    assert result.returncode == 0, result.stderr
    assert needle in result.stdout


def test_the_completion_query_answers_with_commands_and_options() -> None:
    commands = _run(_GRPCSEC_COMPLETE="complete_bash", COMP_WORDS="grpcsec in", COMP_CWORD="1")
    assert commands.stdout.split() == ["init", "inspect"]
    options = _run(
        _GRPCSEC_COMPLETE="complete_bash", COMP_WORDS="grpcsec issue --key-t", COMP_CWORD="2"
    )
    assert options.stdout.split() == ["--key-type"]
