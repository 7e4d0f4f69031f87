"""Every ``--json`` output names a versioned schema, ``"schema": "grpcsec.<command>/1"``, and
every command that takes ``--json`` has its schema documented in docs/json.md (issue 16, item 3).

The documentation check walks the command tree, so a command added later is covered as soon as
it exists; the outputs are checked through the real CLI for a representative set of commands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.clirun import make_init, run
from tests.cli.test_help import JSON_EXCEPTIONS, LEAVES, _options

DOCS = Path(__file__).resolve().parents[2] / "docs" / "json.md"
NOT_SCHEMA_NAMED = {("token", "jwks"): "a JWKS document (RFC 7517)"}
"""Commands whose JSON is a standard document, printed without a ``schema`` key."""

JSON_COMMANDS = [
    path
    for path in LEAVES
    if "--json" in _options(path) or (path in JSON_EXCEPTIONS and path not in NOT_SCHEMA_NAMED)
    if path not in {("serve",), ("exporter",)}
]


def schema_of(path: tuple[str, ...]) -> str:
    return f"grpcsec.{'.'.join(path)}/1"


def test_the_walk_finds_the_json_commands() -> None:
    assert ("verify",) in JSON_COMMANDS
    assert ("config", "check") in JSON_COMMANDS
    assert ("token", "jwks") not in JSON_COMMANDS


@pytest.mark.parametrize("path", JSON_COMMANDS, ids=" ".join)
def test_every_json_command_has_its_schema_documented(path: tuple[str, ...]) -> None:
    assert f"`{schema_of(path)}`" in DOCS.read_text(), f"{schema_of(path)} is not in docs/json.md"


def _inputs(root: Path) -> dict[str, list[object]]:
    pki = make_init(root / "pki")
    return {
        "init": ["init", "--dir", root / "second"],
        "ca init": ["ca", "init", "--dir", root / "ca"],
        "ca intermediate": ["ca", "intermediate", "--ca-dir", pki, "--out-dir", root / "int"],
        "issue": ["issue", "server", "--ca-dir", pki, "--out", root / "leaf", "--host", "a.b"],
        "inspect": ["inspect", pki / "server.crt"],
        "verify": ["verify", pki / "client.crt", "--ca", pki / "ca.crt"],
        "ca revoke": ["ca", "revoke", pki / "client.crt", "--ca-dir", pki],
        "ca crl": ["ca", "crl", "--ca-dir", pki, "--out", root / "ca.crl"],
        "check": ["check", pki / "server.crt"],
        "renew": ["renew", "--ca-dir", pki, "--cert", pki / "server.crt",
                  "--key", pki / "server.key", "--once", "--force"],
        "call": ["call", "127.0.0.1:1", "--ca", pki / "ca.crt", "--timeout", "1"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["init", "ca init", "ca intermediate", "issue", "inspect", "verify", "ca revoke", "ca crl",
     "check", "renew", "call"],
)  # fmt: skip
def test_json_output_starts_with_its_schema(tmp_path: Path, name: str) -> None:
    result = run(*_inputs(tmp_path)[name], "--json")
    assert result.exit_code in {0, 1}, result.output
    first = result.stdout.splitlines()[1]  # the key right after "{"
    assert re.fullmatch(rf'  "schema": "grpcsec\.{re.escape(name.replace(" ", "."))}/1",', first)
    assert json.loads(result.stdout)["schema"] == schema_of(tuple(name.split()))


def test_a_jwks_document_has_no_schema_key(tmp_path: Path) -> None:
    pki = make_init(tmp_path)
    result = run("token", "jwks", "--key", pki / "server.key")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "schema" not in document
    assert "keys" in document
