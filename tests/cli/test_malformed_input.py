"""Malformed-but-signed certificates through every command that reads certificates (issue 11,
item 4): one ``error:`` line, the documented exit code, no traceback and no warning, and the
library raises a :class:`~grpcsec.errors.GrpcsecError`.

The cases (``tests/pki/malformed.py``) are well-signed by the test CA, so only their content is
wrong: a duplicate extension, a negative serial number, a U-label, an invalid A-label and a DEL
byte in a DNS name, and a NUL byte in the subject. Before the load-time rule,
the IDN and NUL cases were inspected, verified (``OK``) and served; the first two broke
later readers with cryptography's own exceptions. The unmodified leaf is the control.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grpcsec.errors import GrpcsecError
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import CertificateAuthority, IssuedCertificate, load_certificates
from tests.doctor.conftest import server_process
from tests.pki.malformed import CASES, base_leaf, malformed

CLI = [sys.executable, "-m", "grpcsec.cli"]

#: Each command, with ``{bad}`` for the malformed file; the exit code it documents for bad input.
COMMANDS: dict[str, tuple[tuple[str, ...], int]] = {
    "inspect": (("inspect", "{bad}"), 2),
    "verify": (("verify", "{bad}", "--ca", "{ca}", "--host", "localhost"), 2),
    "verify_anchor": (("verify", "{good}", "--ca", "{bad}"), 2),
    "check": (("check", "{bad}"), 3),  # check's own "unreadable" code (docs/monitoring.md)
    "doctor_lint": (("doctor", "--cert", "{bad}", "--key", "{key}"), 2),
    "serve_cert": (
        (
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            "{bad}",
            "--key",
            "{key}",
            "--client-ca",
            "{ca}",
        ),
        2,
    ),
    "serve_client_ca": (
        (
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            "{good}",
            "--key",
            "{key}",
            "--client-ca",
            "{bad}",
        ),
        2,
    ),
    "call_ca": (("call", "127.0.0.1:1", "--ca", "{bad}", "--timeout", "1"), 2),
    "call_identity": (
        (
            "call",
            "127.0.0.1:1",
            "--ca",
            "{ca}",
            "--cert",
            "{bad}",
            "--key",
            "{key}",
            "--timeout",
            "1",
        ),
        2,
    ),
}


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("malformed")
    ca = CertificateAuthority.create("malformed matrix CA")
    leaf: IssuedCertificate = base_leaf(ca)
    files = {"ca": root / "ca.crt", "good": root / "good.crt", "key": root / "good.key"}
    files["ca"].write_bytes(ca.certificate_pem())
    files["good"].write_bytes(leaf.chain_pem())
    files["key"].write_bytes(leaf.key_pem())
    for case in CASES:
        files[case] = root / f"{case}.crt"
        files[case].write_bytes(malformed(ca, leaf, case))
    return files


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _argv(command: str, files: dict[str, Path], bad: str) -> list[str]:
    template, _code = COMMANDS[command]
    values = {"bad": str(files[bad]), **{k: str(v) for k, v in files.items()}}
    return [*CLI, *(part.format(**values) for part in template)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_library_refuses_each_case_with_a_grpcsec_error(
    material: dict[str, Path], case: str
) -> None:
    data = material[case].read_bytes()
    for load in (
        lambda: load_certificates(data, source=case),
        lambda: KeyPair.from_pem(data, material["key"].read_bytes()),
        lambda: TrustBundle.from_pem(data),
    ):
        with pytest.raises(GrpcsecError) as caught:
            load()
        assert "\n" not in str(caught.value)


def test_the_unmodified_leaf_is_accepted(material: dict[str, Path]) -> None:
    """The control: the same leaf before its bytes were changed loads and verifies."""
    (certificate,) = load_certificates(material["good"].read_bytes())
    assert certificate.serial_number > 0
    result = _run(
        [*CLI, "verify", str(material["good"]), "--ca", str(material["ca"]), "--host", "localhost"]
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_every_command_gives_one_line_and_its_exit_code(material: dict[str, Path]) -> None:
    jobs = [(command, case) for command in COMMANDS for case in sorted(CASES)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: _run(_argv(job[0], material, job[1])), jobs))
    problems = []
    for (command, case), result in zip(jobs, results, strict=True):
        expected = COMMANDS[command][1]
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        if (
            result.returncode != expected
            or len(errors) != 1
            or not errors[0].startswith("error:")
            or "Traceback" in result.stderr + result.stdout
            or "Warning" in result.stderr
        ):
            problems.append((command, case, result.returncode, result.stderr[-400:]))
    assert not problems, problems


_BROKEN_COMMAND = """
import sys, grpcsec.cli as cli
def broken(**_options: object) -> None:
    raise KeyError("a bug\\x1b[31m with\\nhostile text")
cli.app = broken
cli.main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_the_last_net_turns_an_unmapped_exception_into_one_line(debug: bool) -> None:
    """A bug that escapes every mapping: one inert line and exit 2; the traceback on request."""
    env = {k: v for k, v in os.environ.items() if k != "GRPCSEC_DEBUG"}
    if debug:
        env["GRPCSEC_DEBUG"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", _BROKEN_COMMAND],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    if debug:
        assert result.returncode == 1
        assert "Traceback" in result.stderr
        return
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: unexpected KeyError: ")
    assert "\x1b" not in line
    assert "GRPCSEC_DEBUG=1" in line


@pytest.mark.slow
@pytest.mark.openssl
@pytest.mark.parametrize("case", sorted(CASES))
def test_doctor_diagnoses_a_server_that_serves_a_malformed_certificate(
    material: dict[str, Path], case: str
) -> None:
    """A peer's certificate is input too: ``openssl s_server`` serves each case and the doctor
    answers with a diagnosis (exit 0 or 1), never a crash or the last net's ``unexpected`` line.
    Before, a duplicate extension in the served leaf escaped as ``DuplicateExtension``."""
    argv = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-alpn", "h2"]
    argv += ["-cert", str(material[case]), "-key", str(material["key"])]
    with server_process(
        argv, r"ACCEPT 127\.0\.0\.1:(\d+)", env={"OPENSSL_CONF": "/dev/null"}
    ) as port:
        result = _run([*CLI, "doctor", f"127.0.0.1:{port}", "--ca", str(material["ca"]),
                       "--timeout", "2"])  # fmt: skip
    assert result.returncode in (0, 1), (result.returncode, result.stderr)
    assert "diagnosis:" in result.stdout
    assert "unexpected" not in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
