"""Every script in ``examples/`` runs on its own: exit code 0 and the line that proves its point.

Parametrized over the directory listing, so a new example is run as soon as it exists (its exit
code already says whether the expected outcome happened; add its key lines to ``KEY_LINES``).
Each runs in a subprocess with ``-W error``, in an empty working directory, without
``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` (so nothing can pass thanks to a roots override) and without
``GRPCSEC_KEY_PASSWORD``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 60
KEY_BODY = re.compile(r"PRIVATE KEY-----\s*\n[A-Za-z0-9+/=]{16}")

KEY_LINES: dict[str, list[str]] = {
    "tls_server.py": [
        "client trusting ca.crt: Hello tls",
        "client trusting another CA: refused (UNAVAILABLE)",
    ],
    "mtls_server.py": [
        (
            "with a client certificate: Hello mtls: CN=billing "
            "SPIFFE=spiffe://example.org/ns/prod/sa/billing "
            "SANs=[billing.internal, spiffe://example.org/ns/prod/sa/billing]"
        ),
        "without a client certificate: refused (UNAVAILABLE)",
    ],
    "aio_mtls.py": [
        "with a client certificate: Hello aio, spiffe://example.org/worker (CN=worker)",
        "without a client certificate: refused (UNAVAILABLE)",
    ],
    "python_client.py": [
        "Hello python (from python-client)",
        "without --server-name: refused (UNAVAILABLE",
    ],
    "secure_server.py": [
        "billing: Hello billing, spiffe://example.org/billing",
        "reports: refused (PERMISSION_DENIED: permission denied)",
        "allowed 1, denied {'policy_denied': 1}",
    ],
    "encrypted_key.py": [
        "server.key starts with: -----BEGIN ENCRYPTED " + "PRIVATE KEY-----",
        "without a password: the private key is encrypted and no password was given",
        "with the password from $GRPCSEC_KEY_PASSWORD: Hello encrypted key",
    ],
}


def example_scripts() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def run_example(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "GRPCSEC_KEY_PASSWORD"}
    }
    return subprocess.run(
        [sys.executable, "-W", "error", str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_there_are_examples() -> None:
    names = {p.name for p in example_scripts()}
    assert names >= set(KEY_LINES), f"KEY_LINES names missing examples: {set(KEY_LINES) - names}"


@pytest.mark.slow
@pytest.mark.parametrize("script", example_scripts(), ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    result = run_example(script, cwd=tmp_path)
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert result.stdout.strip(), report
    for line in KEY_LINES.get(script.name, []):
        assert line in result.stdout, f"missing {line!r}\n{report}"
    assert not list(tmp_path.iterdir()), "the example left files in the working directory"
    assert not KEY_BODY.search(result.stdout + result.stderr), "key material printed"


@pytest.mark.slow
def test_python_client_refuses_to_guess_trust(tmp_path: Path) -> None:
    """Against a given target without --ca or --system-roots: a clear error before connecting."""
    result = run_example(EXAMPLES / "python_client.py", "--target", "127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "no trust anchors" in result.stderr
