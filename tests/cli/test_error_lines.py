"""Every CLI error is one line on stderr (issue 16, item 2), over a set generated from the
command tree, so a command added later is covered as soon as it exists.

For each command: an unknown flag, a bad value for a typed option, the required options left
out, and the required options given with a missing file or a garbage file for every FILE. Each
run goes through :func:`grpcsec.cli.main` (the console entry point, in-process) and must give
exactly one ``error: ...`` line on stderr, nothing on stdout, no traceback and no Python
parameter name (``allow_other_issuer``, ``json_output``), with exit 2 (``check`` and
``exporter`` use their documented codes: 64 for usage, 3 for an unreadable file).
"""

from __future__ import annotations

import enum
import sys
import typing
from pathlib import Path, PurePath
from typing import Any

import pytest
import typer

from grpcsec.cli import app, main
from grpcsec.cli._common import cli_words
from tests.cli.clirun import assert_no_python_names
from tests.cli.test_help import LEAVES

RUNS_UNTIL_STOPPED = {("serve",), ("exporter",)}
MONITOR = {("check",): {64, 3, 4}, ("exporter",): {64, 3, 4}}
"""Commands with their own exit codes for bad input (docs/monitoring.md)."""
OUTPUTS = {"--dir", "--out", "--out-dir"}
"""Where commands write (the vocabulary in docs/cli.md): given a fresh path, not a bad file."""


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.get_command(typer.Context(command), name)
    return command


def _annotation(param: Any) -> Any:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    for inner in typing.get_args(annotation):
        if inner is not type(None):
            return inner
    return annotation


def _is_file(param: Any) -> bool:
    """Whether ``param`` names a file or directory the command reads."""
    kind = _annotation(param)
    is_path = isinstance(kind, type) and issubclass(kind, PurePath)
    return is_path and not OUTPUTS & set(getattr(param, "opts", []))


def _value(param: Any, file: Path) -> str:
    kind = _annotation(param)
    if _is_file(param):
        return str(file)
    if OUTPUTS & set(getattr(param, "opts", [])):
        return str(file.parent / "new-output")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return str(next(iter(kind)).value)
    if kind in {int, float}:
        return "1"
    if param.name in {"target", "targets"}:
        return "127.0.0.1:1"
    return "x"


def _required(path: tuple[str, ...], file: Path) -> list[str]:
    """The command's required arguments and options, every file one set to ``file``."""
    args: list[str] = []
    for param in _command(path).params:
        if not param.required:
            continue
        flag = next((o for o in getattr(param, "opts", []) if o.startswith("--")), None)
        if getattr(param, "param_type_name", "") == "argument" or flag is None:
            args.append(_value(param, file))
        else:
            args += [flag, _value(param, file)]
    return args


def one_error_line(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["grpcsec", *args])
    monkeypatch.delenv("GRPCSEC_DEBUG", raising=False)
    monkeypatch.delenv("GRPCSEC_KEY_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code if isinstance(exited.value.code, int) else 1
    lines = err.strip().splitlines()
    assert code != 0, (args, err)
    assert out == "", (args, out)
    assert len(lines) == 1, (args, err)
    line = lines[0]
    assert line.startswith("error:"), (args, line)
    assert "Traceback" not in err
    assert_no_python_names(line)
    return code, line


def _expect_code(path: tuple[str, ...], code: int) -> None:
    assert code in MONITOR.get(path, {2}), (path, code)


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_an_unknown_flag_is_one_line(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, line = one_error_line([*path, "--no-such-flag"], capsys, monkeypatch)
    _expect_code(path, code)
    assert "--no-such-flag" in line
    assert f"grpcsec {' '.join(path)} --help" in line


def test_an_unknown_command_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, line = one_error_line(["no-such-command"], capsys, monkeypatch)
    assert code == 2
    assert "no-such-command" in line


TYPED = [
    (path, flag)
    for path in LEAVES
    for param in _command(path).params
    for flag in getattr(param, "opts", [])[:1]
    if flag.startswith("--")
    and not getattr(param, "is_flag", False)
    and (
        _annotation(param) in {int, float}
        or (isinstance(_annotation(param), type) and issubclass(_annotation(param), enum.Enum))
    )
]


@pytest.mark.parametrize(
    ("path", "flag"), TYPED, ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_a_bad_value_for_a_typed_option_is_one_line(
    path: tuple[str, ...],
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, line = one_error_line([*path, flag, "bogus!"], capsys, monkeypatch)
    _expect_code(path, code)
    assert flag in line
    assert "Value error" not in line


REQUIRING = [p for p in LEAVES if any(param.required for param in _command(p).params)]


@pytest.mark.parametrize("path", REQUIRING, ids=" ".join)
def test_required_options_left_out_are_one_line(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = one_error_line(list(path), capsys, monkeypatch)
    _expect_code(path, code)


READING = [
    p
    for p in LEAVES
    if p not in RUNS_UNTIL_STOPPED
    and any(param.required and _is_file(param) for param in _command(p).params)
]


@pytest.mark.parametrize("kind", ["missing", "garbage"])
@pytest.mark.parametrize("path", READING, ids=" ".join)
def test_a_missing_or_garbage_file_is_one_line(
    path: tuple[str, ...],
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = tmp_path / "input.pem"
    if kind == "garbage":
        file.write_text(
            "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
        )
    code, _ = one_error_line([*path, *_required(path, file)], capsys, monkeypatch)
    _expect_code(path, code)


def test_a_library_option_is_named_by_its_flag_only() -> None:
    assert cli_words("or pass allow_weak_keys=True (--allow-weak-keys) to go on") == (
        "or pass --allow-weak-keys to go on"
    )
    # negative controls: text that only looks alike is left as it is
    assert cli_words("key=value (not a flag)") == "key=value (not a flag)"
    assert cli_words("pass --new-issuer") == "pass --new-issuer"
