"""Interoperability with gRPC and TLS implementations nobody here wrote.

1. the grpc-go server (interop/go/server) with a grpcio client;
2. the grpc-go and @grpc/grpc-js clients (interop/go/client, interop/node/client.js) with the
   ``greeter_server`` fixture (grpcio, mTLS);
3. ``openssl s_client`` against ``greeter_server``: TLS versions and ALPN.

Certificates come from grpcsec.pki: a root, an intermediate that issues the server and client
certificates (served with the chain, the root only as trust anchor), and an unrelated root.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.interop.conftest import GreeterClient, GreeterServer, HelloWorld, OpenSsl, Pki

pytestmark = pytest.mark.interop

CALL_TIMEOUT = 15.0
ERROR_LINE = re.compile(r"ERROR [A-Z_]+: \S.*")


# -- 1. grpc-go server, grpcio client -------------------------------------------------------
def say_hello(
    server: GreeterServer,
    helloworld: HelloWorld,
    *,
    trust: Path,
    cert: Path | None = None,
    key: Path | None = None,
    name: str = "grpcio",
) -> str:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trust.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    options = [("grpc.ssl_target_name_override", server.server_name)]
    with grpc.secure_channel(server.address, credentials, options=options) as channel:
        call = channel.unary_unary(
            "/helloworld.Greeter/SayHello",
            request_serializer=helloworld.request.SerializeToString,
            response_deserializer=helloworld.reply.FromString,
        )
        reply = call(helloworld.request(name=name), timeout=CALL_TIMEOUT)
    return str(reply.message)


def test_grpcio_client_gets_reply_from_go_server(
    go_server: GreeterServer, helloworld: HelloWorld, pki: Pki
) -> None:
    message = say_hello(
        go_server, helloworld, trust=pki.client_ca, cert=pki.client_cert, key=pki.client_key
    )
    assert message == f"Hello grpcio (from {pki.client_cn})"


def test_go_server_names_the_uri_san_of_a_client_without_subject(
    go_server: GreeterServer, helloworld: HelloWorld, pki: Pki
) -> None:
    message = say_hello(
        go_server, helloworld, trust=pki.client_ca, cert=pki.workload_cert, key=pki.workload_key
    )
    assert message == f"Hello grpcio (from {pki.workload_uri})"


@pytest.mark.parametrize("client", ["no certificate", "certificate from another CA"])
def test_go_server_refuses_grpcio_client(
    go_server: GreeterServer, helloworld: HelloWorld, pki: Pki, client: str
) -> None:
    cert, key = (None, None) if client == "no certificate" else (pki.rogue_cert, pki.rogue_key)
    with pytest.raises(grpc.RpcError) as info:
        say_hello(go_server, helloworld, trust=pki.client_ca, cert=cert, key=key)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_grpcio_client_refuses_go_server_it_does_not_trust(
    go_server: GreeterServer, helloworld: HelloWorld, pki: Pki
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        say_hello(
            go_server, helloworld, trust=pki.other_ca, cert=pki.client_cert, key=pki.client_key
        )
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_go_server_stops_cleanly_on_sigterm(
    own_go_server: tuple[GreeterServer, subprocess.Popen[bytes], Path],
) -> None:
    _, process, log = own_go_server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=CALL_TIMEOUT) == 0
    assert log.read_text() == ""


# -- 2. grpc-go and grpc-js clients, greeter_server -----------------------------------------
def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The client's one ERROR line, after checking the failure contract."""
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result
    assert ERROR_LINE.fullmatch(lines[0]), result
    return lines[0]


def test_client_gets_reply_with_its_identity(
    greeter_client: GreeterClient, greeter_server: GreeterServer, pki: Pki
) -> None:
    result = greeter_client.call(
        greeter_server, name=greeter_client.implementation, cert=pki.client_cert, key=pki.client_key
    )
    assert result.returncode == 0, result
    expected = f"Hello {greeter_client.implementation} (from {greeter_server.client_identity})\n"
    assert result.stdout == expected


def test_client_without_certificate_is_refused(
    greeter_client: GreeterClient, greeter_server: GreeterServer
) -> None:
    assert refused(greeter_client.call(greeter_server)).startswith("ERROR UNAVAILABLE: ")


def test_client_with_certificate_from_another_ca_is_refused(
    greeter_client: GreeterClient, greeter_server: GreeterServer, pki: Pki
) -> None:
    result = greeter_client.call(greeter_server, cert=pki.rogue_cert, key=pki.rogue_key)
    assert refused(result).startswith("ERROR UNAVAILABLE: ")


def test_client_trusting_another_ca_refuses_the_server(
    greeter_client: GreeterClient, greeter_server: GreeterServer, pki: Pki
) -> None:
    result = greeter_client.call(
        greeter_server, cert=pki.client_cert, key=pki.client_key, trust=pki.other_ca
    )
    assert refused(result).startswith("ERROR UNAVAILABLE: ")


def test_client_checks_the_server_name(
    greeter_client: GreeterClient, greeter_server: GreeterServer, pki: Pki
) -> None:
    result = greeter_client.call(
        greeter_server, cert=pki.client_cert, key=pki.client_key, server_name="other.test"
    )
    assert refused(result).startswith("ERROR UNAVAILABLE: ")


def test_client_reaches_go_server(
    greeter_client: GreeterClient, go_server: GreeterServer, pki: Pki
) -> None:
    result = greeter_client.call(go_server, cert=pki.client_cert, key=pki.client_key)
    assert result.returncode == 0, result
    assert result.stdout == f"Hello interop (from {pki.client_cn})\n"


# -- 3. openssl s_client, greeter_server ----------------------------------------------------
# OpenSSL 3 offers TLS 1.0/1.1 only at security level 0, hence the cipher string.
LEGACY = {"-tls1": "TLSv1", "-tls1_1": "TLSv1.1"}
LEGACY_OPTIONS = ("-cipher", "DEFAULT@SECLEVEL=0")
MODERN = {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}
HANDSHAKE_BYTES = re.compile(r"SSL handshake has read (\d+) bytes and written (\d+) bytes")


def handshake_bytes(output: str) -> tuple[int, int]:
    counts = HANDSHAKE_BYTES.search(output)
    assert counts is not None, output
    return int(counts[1]), int(counts[2])


@pytest.mark.parametrize("version", sorted(LEGACY))
def test_control_openssl_client_does_offer_legacy_tls(
    openssl: OpenSsl,
    openssl_server: Callable[..., GreeterServer],
    version: str,
) -> None:
    # The same client command completes a TLS 1.0/1.1 handshake with a server that allows it,
    # so a refusal below is the server's, not this client's.
    server = openssl_server(version, *LEGACY_OPTIONS)
    result = openssl.s_client(server, version, *LEGACY_OPTIONS, cert=None, key=None)
    assert result.returncode == 0, result.stdout
    # "New, ..." names the cipher's version (TLSv1.0 for TLS 1.1); the session shows the protocol
    assert re.search(rf"^ +Protocol +: {re.escape(LEGACY[version])}$", result.stdout, re.M), (
        result.stdout
    )


@pytest.mark.parametrize("version", sorted(LEGACY))
def test_server_refuses_legacy_tls(
    openssl: OpenSsl, greeter_server: GreeterServer, pki: Pki, version: str
) -> None:
    result = openssl.s_client(
        greeter_server, version, *LEGACY_OPTIONS, cert=pki.client_cert, key=pki.client_key
    )
    assert result.returncode != 0, result.stdout
    received, sent = handshake_bytes(result.stdout)
    assert sent > 0, result.stdout  # the client hello went out
    assert "New, (NONE), Cipher is (NONE)" in result.stdout, result.stdout
    # grpcio closes the connection without a word; grpc-go sends a protocol_version alert.
    assert received == 0 or "SSL alert number 70" in result.stdout, result.stdout


@pytest.mark.parametrize("version", sorted(MODERN))
def test_server_accepts_modern_tls_and_negotiates_h2(
    openssl: OpenSsl, greeter_server: GreeterServer, pki: Pki, version: str
) -> None:
    result = openssl.s_client(
        greeter_server, version, "-alpn", "h2", cert=pki.client_cert, key=pki.client_key
    )
    assert result.returncode == 0, result.stdout
    assert f"New, {MODERN[version]}, Cipher is " in result.stdout, result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout, result.stdout
    assert "ALPN protocol: h2" in result.stdout, result.stdout
    assert "SSL alert number" not in result.stdout, result.stdout


def test_server_drops_a_connection_that_did_not_negotiate_h2(
    openssl: OpenSsl, greeter_server: GreeterServer, pki: Pki
) -> None:
    # The handshake completes, then grpcio closes the connection (no alert): gRPC needs h2.
    result = openssl.s_client(
        greeter_server,
        "-alpn",
        "http/1.1",
        cert=pki.client_cert,
        key=pki.client_key,
        wait_for_server=True,
    )
    assert "Verify return code: 0 (ok)" in result.stdout, result.stdout
    assert "No ALPN negotiated" in result.stdout, result.stdout
    assert result.returncode != 0, result.stdout
    assert "unexpected eof while reading" in result.stdout, result.stdout


def test_pki_root_is_only_a_trust_anchor(pki: Pki) -> None:
    # The leaves are served with their intermediate; the trust file holds the root alone, so
    # every implementation above had to build the chain from what the peer sent.
    assert pki.client_ca.read_bytes().count(b"BEGIN CERTIFICATE") == 1
    assert pki.server_cert.read_bytes().count(b"BEGIN CERTIFICATE") == 2
    assert pki.client_cert.read_bytes().count(b"BEGIN CERTIFICATE") == 2


# -- 4. grpcsec call against the grpc-go server ---------------------------------------------
def test_grpcsec_call_reaches_go_server(go_server: GreeterServer, pki: Pki) -> None:
    argv = [sys.executable, "-m", "grpcsec.cli", "call", go_server.address, "--name", "cli"]
    argv += ["--ca", str(pki.client_ca), "--server-name", go_server.server_name]
    mtls = ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
    ok = subprocess.run(
        [*argv, *mtls], capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False
    )
    assert ok.returncode == 0, ok
    assert ok.stdout.strip() == f"Hello cli (from {pki.client_cn})"
    refused_call = subprocess.run(
        [*argv, "--json"], capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False
    )
    assert refused_call.returncode == 1, refused_call
    verdict = json.loads(refused_call.stdout)
    assert verdict["code"] == "UNAVAILABLE"
    assert verdict["diagnosis"] == "client_cert_required"  # no certificate was sent
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
    lines = plain.stderr.splitlines()
    assert len(lines) == 1, plain.stderr  # grpc core's own log lines do not come first
    assert lines[0].startswith("error: UNAVAILABLE (client_cert_required)")
