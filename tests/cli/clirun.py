"""Running the CLI in-process for the command tests: one call, plain text, the one-error-line
contract, file modes and certificates read back, and a CA or starter set made through the CLI
itself. Test modules that want no password or forced colours from the environment import
:func:`plain_environment` (an autouse fixture)."""

from __future__ import annotations

import functools
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography import x509
from typer.testing import CliRunner, Result

from grpcsec.cli import app

__all__ = [
    "PASSWORD_ENV",
    "assert_no_python_names",
    "assert_one_error_line",
    "certs",
    "eku",
    "is_ca",
    "make_ca",
    "make_init",
    "mode",
    "ok",
    "plain",
    "plain_environment",
    "run",
    "san_strings",
    "snapshot",
    "verify",
]

PASSWORD_ENV = "GRPCSEC_KEY_PASSWORD"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password in the environment and no forced colours unless a test sets them."""
    for name in (PASSWORD_ENV, "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def run(*args: object) -> Result:
    """Run the CLI in-process with string arguments."""
    return CliRunner().invoke(app, [str(a) for a in args])


def plain(text: str) -> str:
    return _ANSI.sub("", text)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, plain(result.output)
    return result


LIBRARY_NAMES = frozenset({"allow_other_issuer", "allow_expired", "key_password"})
"""Library keyword names that a CLI message once showed; the CLI's own come from the app."""


def python_names() -> frozenset[str]:
    """Python parameter names an error line must never show: the CLI's own (``json_output``,
    ``ca_dir``: each command's parameters with an underscore) and :data:`LIBRARY_NAMES`."""
    found = set(LIBRARY_NAMES)
    pending = [typer.main.get_command(app)]
    while pending:
        command: Any = pending.pop()
        found |= {p.name for p in command.params if p.name and "_" in p.name}
        names = getattr(command, "list_commands", lambda _ctx: [])(None)
        pending.extend(command.get_command(typer.Context(command), name) for name in names)
    return frozenset(found)


def assert_no_python_names(line: str) -> None:
    for name in _PYTHON_NAMES():
        assert not re.search(rf"\b{name}\b", line), f"{name!r} in {line!r}"


_PYTHON_NAMES = functools.cache(python_names)


def assert_one_error_line(result: Result, *needles: str, code: int = 2) -> str:
    """Exit ``code``, nothing on stdout, exactly one stderr line containing every needle and
    no Python parameter name."""
    assert result.exit_code == code, plain(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = plain(result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert_no_python_names(lines[0])
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def make_ca(root: Path, *extra: object) -> Path:
    ok(run("ca", "init", "--dir", root, *extra))
    return root


def make_init(directory: Path, *extra: object) -> Path:
    ok(run("init", "--dir", directory, *extra))
    return directory


def verify(*args: object) -> dict[str, object]:
    result = run("verify", *args, "--json")
    assert result.exit_code in {0, 1}, plain(result.output)
    data: dict[str, object] = json.loads(result.stdout)
    return data


def eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def san_strings(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(getattr(name, "value", name)) for name in san]


def is_ca(certificate: x509.Certificate) -> bool:
    return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
