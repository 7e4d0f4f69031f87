"""``grpcsec serve`` says why a TLS handshake failed: grpc core's own log line (the TLS reason),
retold through grpcsec's logger at WARNING and rate-limited, instead of silenced (issue 16).

The end-to-end tests run ``serve`` as a real subprocess and real grpcio clients over TLS: one
without a client certificate, one with a certificate from another CA, one speaking plaintext,
and a good client as the control that must produce no warning.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpcsec.cli._core_log import RateLimit, retell
from tests.cli.clirun import make_init
from tests.cli.test_serve_call import LISTENING

pytestmark = pytest.mark.slow

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
NO_CERT = (
    "I1205 19:50:57.714007   27435 ssl_transport_security.cc:2563] Handshake failed with error "
    "SSL_ERROR_SSL: error:100000c0:SSL routines:OPENSSL_internal:"
    "PEER_DID_NOT_RETURN_A_CERTIFICATE: Invalid certificate verification context"
)


def test_a_handshake_failure_line_is_retold_as_a_warning_with_its_reason() -> None:
    told = retell(NO_CERT)
    assert told is not None
    assert told.level == logging.WARNING
    assert told.key is not None
    assert told.key.startswith("PEER_DID_NOT_RETURN_A_CERTIFICATE")
    assert "sent no certificate" in told.message
    assert "ssl_transport_security" not in told.message


def test_two_reasons_for_one_code_are_limited_apart() -> None:
    prefix = (
        "I1205 19:50:58.818790   27435 ssl_transport_security.cc:2563] Handshake failed with "
        "error SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
        "CERTIFICATE_VERIFY_FAILED: "
    )
    expired = retell(prefix + "certificate has expired")
    unknown = retell(prefix + "unable to get local issuer certificate")
    assert expired is not None
    assert unknown is not None
    assert "certificate has expired" in expired.message
    assert expired.key != unknown.key


def test_core_lines_grpcsec_explains_itself_are_debug_and_other_lines_are_not_core() -> None:
    bind = (
        "E1205 19:50:49.455554   27289 add_port.cc:83] Failed to add port to server: "
        "No address added out of total 1 resolved"
    )
    told = retell(bind)
    assert told is not None
    assert told.level == logging.DEBUG
    other = retell("E1205 19:50:49.455554   27289 chttp2_server.cc:1] something else broke")
    assert other is not None
    assert other.level == logging.ERROR
    assert retell("Traceback (most recent call last):") is None
    assert retell("error: cannot listen on 127.0.0.1:1") is None


def test_rate_limit_admits_one_line_per_reason_per_window_and_counts_the_rest() -> None:
    limit = RateLimit(window=60.0)
    assert limit.admit("A", 0.0) == 0
    assert limit.admit("A", 1.0) is None
    assert limit.admit("A", 59.9) is None
    assert limit.admit("B", 2.0) == 0  # another reason is not held back
    assert limit.admit("A", 60.0) == 2  # the next line reports the two left out
    assert limit.admit("A", 61.0) is None


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corelog")
    return make_init(root / "good"), make_init(root / "other")


@pytest.fixture
def serve(pkis: tuple[Path, Path]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    good, _ = pkis
    process = subprocess.Popen(
        [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", "--log-format", "json",
         "--cert", str(good / "server.crt"), "--key", str(good / "server.key"),
         "--client-ca", str(good / "ca.crt")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k not in {"GRPCSEC_DEBUG", "GRPC_TRACE"}},
    )  # fmt: skip
    assert process.stdout is not None
    match = LISTENING.search(process.stdout.readline())
    assert match, process.stderr.read() if process.stderr else ""
    try:
        yield process, f"127.0.0.1:{match.group(2)}"
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def check(target: str, ca: Path, cert: Path | None = None, key: Path | None = None) -> bool:
    """One health check over a fresh TLS channel; whether it succeeded."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    with grpc.secure_channel(target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=3)
        except grpc.RpcError:
            return False
        return True


def stopped_log(process: subprocess.Popen[str]) -> list[dict[str, object]]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "ssl_transport_security" not in err  # core's raw line is not shown
    assert "Traceback" not in err
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def warnings(process: subprocess.Popen[str]) -> list[str]:
    """The handshake warnings ``serve`` logged, once it is stopped."""
    return [
        str(line["message"])
        for line in stopped_log(process)
        if line["level"] == "WARNING" and line["logger"] == "grpcsec.grpc"
    ]


@pytest.mark.parametrize(
    ("client", "attempts", "needles"),
    [
        (None, 3, ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "sent no certificate")),
        ("other", 1, ("CERTIFICATE_VERIFY_FAILED", "--client-ca")),
    ],
    ids=["no-client-cert", "client-cert-from-another-ca"],
)
def test_a_refused_client_gives_one_warning_naming_the_reason(
    pkis: tuple[Path, Path],
    serve: tuple[subprocess.Popen[str], str],
    client: str | None,
    attempts: int,
    needles: tuple[str, ...],
) -> None:
    good, other = pkis
    process, target = serve
    pair = (other / "client.crt", other / "client.key") if client else (None, None)
    for _ in range(attempts):
        assert not check(target, good / "ca.crt", *pair)
    found = warnings(process)
    assert len(found) == 1, found  # several refusals of one kind, one line: rate-limited
    for needle in needles:
        assert needle in found[0]


def test_a_good_client_gives_no_handshake_warning(
    pkis: tuple[Path, Path], serve: tuple[subprocess.Popen[str], str]
) -> None:
    good, _ = pkis
    process, target = serve
    assert check(target, good / "ca.crt", good / "client.crt", good / "client.key")
    assert warnings(process) == []
