"""``grpcsec serve`` with bearer tokens, an A43 policy and metrics, in a real subprocess.

Positive calls pass; the negative controls (no token, expired token, wrong audience, a client
the policy does not allow) fail with the right status and nothing but a generic message; a
policy edited while the server runs changes the decision, and a broken edit keeps the last good
policy; the Prometheus endpoint counts what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from grpcsec.authn.tokens import mint_token, public_jwks
from grpcsec.cli import app
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, SubjectAltNames, write_files
from tests.conftest import CLIENT_SPIFFE_ID, Pki, issue_client

pytestmark = pytest.mark.slow

INTRUDER = "spiffe://example.org/ns/default/sa/intruder"


def policy(principal: str) -> str:
    return json.dumps(
        {
            "name": "greeter",
            "allow_rules": [
                {
                    "name": "may-greet",
                    "source": {"principals": [principal]},
                    "request": {"paths": ["/helloworld.Greeter/SayHello"]},
                }
            ],
        }
    )


@dataclass
class Running:
    process: subprocess.Popen[str]
    port: int
    metrics: str
    files: Path
    key: ec.EllipticCurvePrivateKey

    def call(self, *args: str, client: str = "client") -> tuple[int, str]:
        result = CliRunner().invoke(
            app,
            ["call", f"127.0.0.1:{self.port}", "--json", "--ca", str(self.files / "ca.crt"),
             "--cert", str(self.files / f"{client}.crt"),
             "--key", str(self.files / f"{client}.key"), *args],
        )  # fmt: skip
        return result.exit_code, result.stdout

    def token(self, **overrides: object) -> str:
        settings: dict[str, object] = {
            "issuer": "https://issuer.test",
            "audience": "greeter",
            "subject": "ann",
            "scopes": ("greet",),
        }
        settings.update(overrides)
        return mint_token(self.key, **settings)  # type: ignore[arg-type]

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture(params=["sync", "aio"])
def running(request: pytest.FixtureRequest, pki: Pki, tmp_path: Path) -> Iterator[Running]:
    key = ec.generate_private_key(ec.SECP256R1())
    intruder = issue_client(pki.ca, names=SubjectAltNames.build(uris=[INTRUDER]))
    jwks = json.dumps(public_jwks([(key, None)])).encode()
    write_files(
        [
            PendingFile(tmp_path / "ca.crt", pki.ca.certificate_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.crt", pki.server.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.key", pki.server.key_pem(), KEY_MODE),
            PendingFile(tmp_path / "client.crt", pki.client.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "client.key", pki.client.key_pem(), KEY_MODE),
            PendingFile(tmp_path / "intruder.crt", intruder.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "intruder.key", intruder.key_pem(), KEY_MODE),
            PendingFile(tmp_path / "jwks.json", jwks, CERT_MODE),
            PendingFile(tmp_path / "policy.json", policy(CLIENT_SPIFFE_ID).encode(), CERT_MODE),
        ]
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    argv = [sys.executable, "-m", "grpcsec.cli", "serve", "--listen", "127.0.0.1:0",
            "--cert", str(tmp_path / "server.crt"), "--key", str(tmp_path / "server.key"),
            "--client-ca", str(tmp_path / "ca.crt"), "--jwks", str(tmp_path / "jwks.json"),
            "--audience", "greeter", "--issuer", "https://issuer.test",
            "--require-scope", "greet", "--policy", str(tmp_path / "policy.json"),
            "--metrics", "127.0.0.1:0", "--reload-interval", "200ms"]  # fmt: skip
    if request.param == "aio":
        argv.append("--aio")
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        metrics = ""
        assert process.stderr is not None
        deadline = time.monotonic() + 10
        while not metrics and time.monotonic() < deadline:
            err_line = process.stderr.readline()
            if "metrics on http://" in err_line:
                metrics = err_line.split("http://")[1].split("/")[0]
        assert metrics
        yield Running(process, port, metrics, tmp_path, key)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_tokens_policy_and_metrics(running: Running) -> None:
    code, out = running.call("--token", running.token())
    assert code == 0, out
    assert json.loads(out)["reply"] == f"Hello world (from {CLIENT_SPIFFE_ID})"

    for args, status in [
        ((), "UNAUTHENTICATED"),
        (("--token", "not.a.jwt"), "UNAUTHENTICATED"),
        (("--token", running.token(now=time.time() - 3600)), "UNAUTHENTICATED"),
        (("--token", running.token(audience="elsewhere")), "UNAUTHENTICATED"),
        (("--token", running.token(scopes=())), "PERMISSION_DENIED"),
    ]:  # fmt: skip
        code, out = running.call(*args)
        verdict = json.loads(out)
        assert code == 1
        assert verdict["code"] == status, args
        assert verdict["details"] in {"authentication failed", "permission denied"}  # generic

    code, out = running.call("--token", running.token(), client="intruder")
    assert code == 1
    assert json.loads(out)["code"] == "PERMISSION_DENIED"

    # the policy is edited while the server runs: the intruder is now the one allowed
    (running.files / "policy.json").write_text(policy(INTRUDER))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if running.call("--token", running.token(), client="intruder")[0] == 0:
            break
        time.sleep(0.2)
    assert running.call("--token", running.token(), client="intruder")[0] == 0
    assert running.call("--token", running.token())[0] == 1
    # a broken edit keeps the last good policy
    (running.files / "policy.json").write_text('{"name": "greeter", "allow_rules": [')
    time.sleep(0.8)
    assert running.call("--token", running.token(), client="intruder")[0] == 0

    time.sleep(1.5)  # the metrics pump runs every second
    text = running.scrape()
    assert 'grpcsec_authentication_failures_total{reason="missing_token"} 1.0' in text
    assert 'decision="allow",policy="greeter",rule="may-greet"' in text
    assert 'decision="deny",policy="greeter",rule=""' in text
    assert "grpcsec_tls_connections_total" in text
    assert "grpcsec_tls_certificate_not_after_timestamp_seconds{" in text
