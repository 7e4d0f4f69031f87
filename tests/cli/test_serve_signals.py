"""``grpcsec serve`` stops promptly on SIGTERM or SIGINT while it is still starting.

Real subprocesses of the CLI. Start-up is made slow in an honest way: a client-CA bundle at the
size cap (1,000 CAs) followed by a JWKS endpoint that takes 4 s to answer (within the 5 s fetch
timeout). The signal is sent once the JWKS server has seen the request, so it provably arrives
after the bundle was parsed and before ``listening on``; the process must then exit within a
couple of seconds with 128 + signal, one line on stderr and no traceback. A bundle over the
cap is refused in well under the time grpc core would take to load it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpcsec.material import MAX_TRUST_CERTIFICATES
from tests.authn.conftest import JwksServer
from tests.bulk import ca_bundle_pem
from tests.conftest import Pki

pytestmark = pytest.mark.slow

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
JWKS_DELAY = 4.0
STOP_WITHIN = 2.5
REACH_JWKS_WITHIN = 30.0


@pytest.fixture(scope="module")
def material(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-signals")
    (root / "server.crt").write_bytes(pki.server.chain_pem())
    (root / "server.key").write_bytes(pki.server.key_pem())
    (root / "ca.crt").write_bytes(pki.ca.certificate_pem())
    at_cap = pki.ca.certificate_pem() + ca_bundle_pem(MAX_TRUST_CERTIFICATES - 1)
    (root / "at-cap.pem").write_bytes(at_cap)
    (root / "over-cap.pem").write_bytes(pki.ca.certificate_pem() + ca_bundle_pem(10_000))
    return root


@pytest.fixture
def slow_jwks(pki: Pki, tmp_path: Path) -> Iterator[JwksServer]:
    with JwksServer(pki.ca, tmp_path) as server:
        server.delay = JWKS_DELAY
        yield server


def serve_args(root: Path, client_ca: str, *extra: str) -> list[str]:
    return [
        *GRPCSEC,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        str(root / "server.crt"),
        "--key",
        str(root / "server.key"),
        "--client-ca",
        str(root / client_ca),
        *extra,
    ]


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_during_start_up_ends_it_at_once(
    material: Path, slow_jwks: JwksServer, sig: signal.Signals, aio: bool
) -> None:
    jwks = ["--jwks", slow_jwks.url, "--jwks-ca", str(material / "ca.crt"), "--audience", "a"]
    args = serve_args(material, "at-cap.pem", *jwks, *(["--aio"] if aio else []))
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            deadline = time.monotonic() + REACH_JWKS_WITHIN
            while slow_jwks.hits == 0 and process.poll() is None:
                assert time.monotonic() < deadline, "start-up never reached the JWKS fetch"
                time.sleep(0.01)
            assert process.poll() is None, process.communicate()
            process.send_signal(sig)
            sent = time.monotonic()
            out, err = process.communicate(timeout=JWKS_DELAY + 10)
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
    text = err.decode()
    assert process.returncode == 128 + sig, text
    assert took < STOP_WITHIN, f"stopped {took:.2f}s after {sig.name}"
    assert b"listening on" not in out
    assert "Traceback" not in text
    assert f"grpcsec serve: stopped by {sig.name} before it was ready" in text.splitlines()


def _timed_serve(args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    completed = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return completed, time.monotonic() - started


def test_a_bundle_over_the_cap_is_refused_at_once(material: Path) -> None:
    """Timed against a same-run baseline that fails on a missing bundle (same interpreter start
    and imports), so only the bundle's cost is compared: grpc core alone took 9 s to load it."""
    baseline, base_seconds = _timed_serve(serve_args(material, "missing.pem"))
    assert baseline.returncode == 2, baseline.stderr
    completed, seconds = _timed_serve(serve_args(material, "over-cap.pem"))
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert "holds 10001 certificates, more than the 1000" in line
    assert seconds - base_seconds < 2.0, (seconds, base_seconds)


def test_a_bundle_at_the_cap_serves_and_stops_cleanly(material: Path) -> None:
    with subprocess.Popen(
        serve_args(material, "at-cap.pem", "--no-reload"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # bounded: the server prints it or exits
            assert line.startswith("listening on 127.0.0.1:"), process.communicate(timeout=10)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
