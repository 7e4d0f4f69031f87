"""Every command's ``--help`` names values as a person would (FILE, N, TEXT), never as Python
types (``<bool>``, ``<path>``, ``<list[str]>``): issue 16. The walk covers every command and
sub-command the app has, so a new command is checked as soon as it exists."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from grpcsec.cli import app

PYTHON_TYPE = re.compile(r"<(bool|path|int|float|str|text|list\[[^\]]*\]|tuple[^>]*)>", re.I)


def command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = [()]

    def walk(group: object, prefix: tuple[str, ...]) -> None:
        ctx = typer.Context(group)  # type: ignore[arg-type]
        for name in group.list_commands(ctx):  # type: ignore[attr-defined]
            command = group.get_command(ctx, name)  # type: ignore[attr-defined]
            found.append((*prefix, name))
            if hasattr(command, "list_commands"):
                walk(command, (*prefix, name))

    walk(root, ())
    return found


PATHS = command_paths()


def test_the_walk_sees_the_commands() -> None:
    assert ("serve",) in PATHS
    assert ("ca", "init") in PATHS
    assert ("policy", "eval") in PATHS
    assert len(PATHS) > 15


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "grpcsec")
def test_help_has_no_python_type_names(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    found = PYTHON_TYPE.findall(result.output)
    assert not found, f"grpcsec {' '.join(path)} --help shows Python types: {found}"


JSON_EXCEPTIONS = {
    ("config", "check"): "always prints JSON",
    ("token", "jwks"): "its answer is a JSON document",
    ("serve",): "runs until stopped; --log-format json",
    ("exporter",): "runs until stopped; --log-format json",
}
"""The documented exceptions (docs/cli.md): every other command that reports takes --json."""


def _options(path: tuple[str, ...]) -> set[str]:
    command: object = typer.main.get_command(app)
    for name in path:
        command = command.get_command(typer.Context(command), name)  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in getattr(param, "opts", [])}  # type: ignore[attr-defined]


GROUPS = {p[:-1] for p in PATHS if len(p) > 1}
LEAVES = [p for p in PATHS if p and p not in GROUPS]


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_has_json_or_is_a_documented_exception(path: tuple[str, ...]) -> None:
    options = _options(path)
    if path in JSON_EXCEPTIONS:
        if path in {("serve",), ("exporter",)}:
            assert "--log-format" in options
        return
    assert "--json" in options, f"grpcsec {' '.join(path)} has no --json"
