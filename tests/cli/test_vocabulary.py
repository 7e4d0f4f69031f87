"""One vocabulary of flags across commands (issue 16, item 1; documented in docs/cli.md).

The walk covers every command the app has, so a command added later is held to the same
words: a flag used by several commands shows the same value name (``FILE``, ``DURATION``) in
each, the shared flags read the same everywhere, and every command that puts names into a
certificate takes ``--uri`` and ``--spiffe-id`` besides ``--host``. Each exception says why.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grpcsec.cli import app
from grpcsec.cli._help import label_parameters
from tests.cli.clirun import assert_one_error_line, certs, make_init, ok, run, san_strings
from tests.cli.test_help import LEAVES

SAME_HELP = (
    "--json", "--force", "--key-type", "--ca-dir", "--allow-weak-keys", "--allow-unsupported-key",
    "--log-format", "--dns", "--ip", "--email",
)  # fmt: skip
"""Flags that mean exactly one thing, so their help is one text (one shared definition)."""

OWN_MEANING = {
    ("--json", "renew"): "the agent prints one JSON object per event",
    ("--force", "renew"): "renew now even if not due; nothing is overwritten",
    ("--json", "acme renew"): "the same agent as renew: one JSON object per event",
    ("--force", "acme renew"): "as renew: renew now even if not due",
    ("--email", "acme issue"): "the ACME account's contact address (issue 15's flag), not a SAN",
    ("--email", "acme renew"): "the ACME account's contact address (issue 15's flag), not a SAN",
    ("--key-type", "acme issue"): "only the key types ACME CAs sign (no Ed25519)",
    ("--key-type", "acme renew"): "only the key types ACME CAs sign (no Ed25519)",
    ("--out", "issue"): "a PREFIX for two files, where sign and ca crl write one FILE",
    ("--crl", "serve"): "a directory of CRLs is watched as a whole",
    ("--name", "call"): "the name the Greeter greets, not a certificate's common name",
}
"""(flag, command) pairs whose value name or help differ on purpose."""

SAN_HOST_HELP = "A name to put in the SAN extension"


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.get_command(typer.Context(command), name)
    label_parameters(command)
    return command


def _uses() -> dict[str, dict[str, tuple[str, str]]]:
    """flag -> command -> (value name, help), for every long option of every command."""
    found: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for path in LEAVES:
        for param in _command(path).params:
            for flag in getattr(param, "opts", []):
                if flag.startswith("--"):
                    found[flag][" ".join(path)] = (param.metavar or "", param.help or "")
    return found


USES = _uses()
SHARED = sorted(flag for flag, commands in USES.items() if len(commands) > 1)


def test_the_walk_sees_shared_flags() -> None:
    assert {"--json", "--cert", "--key", "--ca", "--valid", "--host"} <= set(SHARED)


@pytest.mark.parametrize("flag", SHARED)
def test_a_shared_flag_shows_one_value_name(flag: str) -> None:
    names = {
        command: metavar
        for command, (metavar, _) in USES[flag].items()
        if (flag, command) not in OWN_MEANING
    }
    assert len(set(names.values())) <= 1, f"{flag} is shown as {names}"


@pytest.mark.parametrize("flag", SAME_HELP)
def test_a_flag_with_one_meaning_has_one_help_text(flag: str) -> None:
    helps = {
        command: text
        for command, (_, text) in USES[flag].items()
        if (flag, command) not in OWN_MEANING
    }
    assert len(helps) > 1, f"{flag} is not shared any more; drop it from SAME_HELP"
    assert len(set(helps.values())) == 1, f"{flag} reads differently: {helps}"


def test_every_command_that_names_a_certificate_takes_uri_and_spiffe_id() -> None:
    naming = [cmd for cmd, (_, text) in USES["--host"].items() if text.startswith(SAN_HOST_HELP)]
    assert {"init", "issue", "sign"} <= set(naming)
    for command in naming:
        assert command in USES["--uri"], f"{command} has --host but no --uri"
        assert command in USES["--spiffe-id"], f"{command} has --host but no --spiffe-id"


def test_init_takes_client_identities_as_uri_and_spiffe_id(tmp_path: Path) -> None:
    make_init(tmp_path, "--uri", "urn:x:y", "--spiffe-id", "spiffe://acme.org/billing")
    assert san_strings(certs(tmp_path / "client.crt")[0]) == ["urn:x:y"]
    billing = certs(tmp_path / "client-acme.org-billing.crt")[0]
    assert san_strings(billing) == ["spiffe://acme.org/billing"]


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [("--spiffe-id", "spiffe://Bad/x", "invalid SPIFFE ID"), ("--uri", "plain", "invalid URI"),
     ("--spiffe-id", "https://acme.org/x", "invalid SPIFFE ID")],
)  # fmt: skip
def test_init_refuses_a_name_not_of_its_kind(
    tmp_path: Path, flag: str, value: str, needle: str
) -> None:
    assert_one_error_line(run("init", "--dir", tmp_path / "out", flag, value), needle)
    assert not (tmp_path / "out").exists()


def test_sign_takes_the_same_name_flags_as_issue(tmp_path: Path) -> None:
    pki = make_init(tmp_path / "pki")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("asked.example")]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "req.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    ok(run("sign", tmp_path / "req.csr", "--ca-dir", pki, "--profile", "client",
           "--out", tmp_path / "svc.crt", "--spiffe-id", "spiffe://acme.org/svc"))  # fmt: skip
    assert san_strings(certs(tmp_path / "svc.crt")[0]) == ["spiffe://acme.org/svc"]
    # negative control: without name flags the CSR's own names stay
    ok(run("sign", tmp_path / "req.csr", "--ca-dir", pki, "--profile", "client",
           "--out", tmp_path / "asked.crt"))  # fmt: skip
    assert san_strings(certs(tmp_path / "asked.crt")[0]) == ["asked.example"]
