"""``grpcsec acme issue`` and ``grpcsec acme renew`` as real subprocesses against pebble: the
issue's flags, ``--json``, the agent semantics of ``grpcsec renew`` (``--once``, ``--force``,
``--exec``), and one-line errors with exit 2 that leave the files as they were."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from grpcsec.pki import CertificateAuthority, load_certificate_file
from tests.acme.conftest import BLOCKED, DOMAIN, Pebble, free_port
from tests.interop.conftest import server_process

pytestmark = pytest.mark.slow

TIMEOUT = 90


def grpcsec(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "grpcsec.cli", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )


def acme_args(pebble: Pebble, tmp_path: Path, *, domain: str = DOMAIN) -> list[object]:
    return [
        "--directory", pebble.directory,
        "--domain", domain,
        "--cert", tmp_path / "tls.crt",
        "--key", tmp_path / "tls.key",
        "--directory-ca", pebble.https_ca,
        "--account-key", tmp_path / "account.key",
        "--email", "ops@example.com",
        "--http-port", pebble.http_port,
    ]  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_issue_then_renew_once_and_forced_with_a_hook(pebble: Pebble, tmp_path: Path) -> None:
    issued = grpcsec(
        "acme", "issue", *acme_args(pebble, tmp_path), "--key-type", "ecdsa-p384", "--json"
    )
    assert issued.returncode == 0, issued.stderr
    report = json.loads(issued.stdout)
    assert report["action"] == "issued"
    assert report["domains"] == [DOMAIN]
    assert report["chain_length"] >= 2
    leaf = load_certificate_file(tmp_path / "tls.crt")[0]
    assert report["serial"] == f"{leaf.serial_number:x}"
    # what ACME produced is ordinary material for grpcsec's other tools
    root = tmp_path / "pebble-root.crt"
    root.write_bytes(pebble.root().public_bytes(Encoding.PEM))
    args = ["verify", tmp_path / "tls.crt", "--ca", root, "--host", DOMAIN]
    verified = grpcsec(*args, "--key", tmp_path / "tls.key")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    other = tmp_path / "other-root.crt"
    other.write_bytes(CertificateAuthority.create("not pebble").certificate_pem())
    assert grpcsec("verify", tmp_path / "tls.crt", "--ca", other).returncode != 0

    not_due = grpcsec("acme", "renew", *acme_args(pebble, tmp_path), "--once", "--json")
    assert not_due.returncode == 0, not_due.stderr
    assert json.loads(not_due.stdout)["action"] == "not_due"
    assert load_certificate_file(tmp_path / "tls.crt")[0] == leaf

    hook_out = tmp_path / "hook.txt"
    script = (
        f"import os, pathlib; pathlib.Path({str(hook_out)!r})"
        ".write_text(os.environ['GRPCSEC_SERIAL'])"
    )
    hook = shlex.join([sys.executable, "-c", script])
    renewed = grpcsec(
        "acme", "renew", *acme_args(pebble, tmp_path), "--once", "--force", "--exec", hook, "--json"
    )
    assert renewed.returncode == 0, renewed.stderr
    result = json.loads(renewed.stdout)
    assert result["action"] == "renewed"
    new = load_certificate_file(tmp_path / "tls.crt")[0]
    assert result["result"]["previous_serial"] == report["serial"]
    assert result["result"]["serial"] == f"{new.serial_number:x}" != report["serial"]
    assert result["result"]["hook"] == {"ran": True, "error": None}
    assert hook_out.read_text() == result["result"]["serial"]


def test_a_refused_order_is_one_line_and_exit_2(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1")
    result = grpcsec("acme", "issue", *acme_args(pebble, tmp_path, domain=BLOCKED))
    assert_one_line_error(result, "rejectedIdentifier", BLOCKED)
    assert not (tmp_path / "tls.crt").exists()
    assert not (tmp_path / "tls.key").exists()


def test_a_failed_renewal_keeps_the_certificate_and_exits_1(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1")
    assert grpcsec("acme", "issue", *acme_args(pebble, tmp_path)).returncode == 0
    before = (tmp_path / "tls.crt").read_bytes(), (tmp_path / "tls.key").read_bytes()
    pebble.process.kill()
    pebble.process.wait(10)
    result = grpcsec("acme", "renew", *acme_args(pebble, tmp_path), "--once", "--force")
    assert result.returncode == 1  # as grpcsec renew: the renewal failed
    assert "unreachable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert ((tmp_path / "tls.crt").read_bytes(), (tmp_path / "tls.key").read_bytes()) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--directory", "http://127.0.0.1:1/dir"], "must be https"),
        (["--directory", "https://127.0.0.1:{port}/dir"], "unreachable"),
        (["--key-type", "ed25519"], "unsupported key type"),
        (["--http-port", "70000"], "is not a TCP port"),
        (["--domain", "*.example.com"], "wildcard"),
        (["--directory-ca", "/nonexistent/acme-ca.pem"], "acme-ca.pem: no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    base: dict[str, str] = {
        "--directory": "https://127.0.0.1:{port}/dir",
        "--domain": DOMAIN,
        "--cert": str(tmp_path / "tls.crt"),
        "--key": str(tmp_path / "tls.key"),
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = [part.format(port=free_port()) for pair in base.items() for part in pair]
    result = grpcsec("acme", "issue", *argv)
    assert_one_line_error(result, needle)
    assert not (tmp_path / "tls.crt").exists()


def test_renew_without_a_certificate_says_to_issue_first(tmp_path: Path) -> None:
    result = grpcsec(
        "acme", "renew", "--directory", "https://127.0.0.1:1/dir", "--domain", DOMAIN,
        "--cert", tmp_path / "none.crt", "--key", tmp_path / "none.key", "--once",
    )  # fmt: skip
    assert_one_line_error(result, "grpcsec acme issue")


def test_the_renew_agent_runs_until_sigterm(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1")
    assert grpcsec("acme", "issue", *acme_args(pebble, tmp_path)).returncode == 0
    argv = [sys.executable, "-m", "grpcsec.cli", "acme", "renew", *acme_args(pebble, tmp_path)]
    with server_process([*argv, "--json"], r'\{.*"event": "started".*', tmp_path / "agent.log") as (
        process,
        match,
    ):
        started = json.loads(match[0])
        assert started["plan"]["due"] is False
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
