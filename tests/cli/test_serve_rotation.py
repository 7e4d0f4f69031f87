"""``grpcsec serve`` picks up rotated certificate files by itself and on SIGHUP, refuses bad
ones while it keeps serving, and calls keep working throughout (a real subprocess)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files
from tests.conftest import Pki, issue_server

pytestmark = pytest.mark.slow


def served_serial(port: int) -> int:
    """The serial of the certificate the server presents to a new connection (a raw TLS
    handshake offering h2: Python gRPC clients cannot see the server certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # reading the certificate, not trusting it
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def wait_for_serial(port: int, serial: int, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if served_serial(port) == serial:
            return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"serial {serial:x} not served within {seconds} s")


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    write_files(
        [
            PendingFile(tmp_path / "ca.crt", pki.ca.certificate_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.crt", pki.server.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.key", pki.server.key_pem(), KEY_MODE),
            PendingFile(tmp_path / "client.crt", pki.client.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "client.key", pki.client.key_pem(), KEY_MODE),
        ]
    )
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    process = subprocess.Popen(
        [sys.executable, "-m", "grpcsec.cli", "serve", "--listen", "127.0.0.1:0",
         "--cert", str(tmp_path / "server.crt"), "--key", str(tmp_path / "server.key"),
         "--client-ca", str(tmp_path / "ca.crt"), "--reload-interval", "100ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line, process.stderr.read() if process.stderr else ""
        port = int(line.split("127.0.0.1:")[1].split()[0])
        yield process, port, tmp_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def call_ok(port: int, files: Path) -> str:
    result = CliRunner().invoke(
        app,
        ["call", f"127.0.0.1:{port}", "--ca", str(files / "ca.crt"),
         "--cert", str(files / "client.crt"), "--key", str(files / "client.key")],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_rotated_files_are_served_without_restart(
    pki: Pki, server: tuple[subprocess.Popen[str], int, Path]
) -> None:
    process, port, files = server
    assert served_serial(port) == pki.server.certificate.serial_number
    for _ in range(3):
        fresh = issue_server(pki.ca)
        fresh.write(files / "server.crt", files / "server.key", force=True)
        assert wait_for_serial(port, fresh.certificate.serial_number, 2.0) < 2.0
        assert "Hello" in call_ok(port, files)
    # garbage is refused and the last good certificate keeps serving
    (files / "server.crt").write_bytes(b"not a certificate\n")
    time.sleep(0.5)
    assert served_serial(port) == fresh.certificate.serial_number
    assert "Hello" in call_ok(port, files)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "server.crt: no PEM certificate found" in err  # one clear line in the log
    assert "PRIVATE KEY" not in err


def test_sighup_reloads_now(pki: Pki, server: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, port, files = server
    fresh = issue_server(pki.ca)
    fresh.write(files / "server.crt", files / "server.key", force=True)
    process.send_signal(signal.SIGHUP)
    wait_for_serial(port, fresh.certificate.serial_number, 2.0)
    assert process.poll() is None  # SIGHUP reloads, it does not stop the server
