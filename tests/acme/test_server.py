"""A secured server whose certificate comes from ACME (``[tls.acme]``), against pebble.

The server orders its certificate before it binds when the files are missing, serves it to
Python, Go and Node clients that trust only pebble's root (a client trusting another root is
refused), names the source in ``status()``, refuses to start with a one-line error when the CA
cannot be trusted, and keeps serving through a forced renewal: the served serial changes with
no failed call.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from grpcsec.acme import AcmeRenewer, issue_certificate
from grpcsec.demo.greeter import add_greeter
from grpcsec.demo.helloworld import deserialize_reply, new_request, serialize
from grpcsec.errors import AcmeError
from grpcsec.pki import CERT_MODE, CertificateAuthority, PendingFile, utcnow, write_files
from grpcsec.server import SecureServer, SecurityConfig, secure_server
from tests.acme.conftest import DOMAIN, Pebble
from tests.interop.conftest import CLIENTS, GreeterClient, GreeterServer, server_process

pytestmark = pytest.mark.slow

SAY_HELLO = "/helloworld.Greeter/SayHello"
TIMEOUT = 5.0


def acme_mapping(pebble: Pebble, tmp_path: Path, **acme: object) -> dict[str, Any]:
    return {
        "listen": "127.0.0.1:0",
        "tls": {
            "cert": str(tmp_path / "tls.crt"),
            "key": str(tmp_path / "tls.key"),
            "reload_interval": 0.2,
            "acme": {
                "directory": pebble.directory,
                "domains": [DOMAIN],
                "directory_ca": str(pebble.https_ca),
                "http_port": pebble.http_port,
                **acme,
            },
        },
    }


def root_pem(root: x509.Certificate) -> bytes:
    return root.public_bytes(Encoding.PEM)


def say_hello(port: int, trust: bytes, name: str = "acme") -> str:
    credentials = grpc.ssl_channel_credentials(root_certificates=trust)
    options = [("grpc.ssl_target_name_override", DOMAIN)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        call = channel.unary_unary(SAY_HELLO, serialize, deserialize_reply)
        reply: Any = call(new_request(name), timeout=TIMEOUT)
        return str(reply.message)


def served_serial(port: int, trust: bytes) -> int:
    """The serial of the certificate the server presents in a new handshake (read by a TLS
    client of our own, ALPN h2 as gRPC clients offer)."""
    context = ssl.create_default_context(cadata=trust.decode())
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def metrics_text(port: int, wait_for: str = "grpcsec_tls_certificate_renewals_total{") -> str:
    """``/metrics`` once the pump has run (``wait_for`` appears; bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            text = str(response.read().decode())
        if wait_for in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


@contextlib.contextmanager
def running(config: SecurityConfig) -> Iterator[SecureServer]:
    server = secure_server(config)
    add_greeter(server.server)
    server.start()
    try:
        yield server
    finally:
        server.stop(0)


def test_a_server_orders_its_certificate_before_binding_and_serves_it(
    pebble: Pebble, tmp_path: Path
) -> None:
    mapping = {**acme_mapping(pebble, tmp_path), "metrics": {"listen": "127.0.0.1:0"}}
    config = SecurityConfig.from_mapping(mapping)
    assert not (tmp_path / "tls.crt").exists()
    with running(config) as server:
        trust = root_pem(pebble.root())
        assert "acme" in say_hello(server.port, trust)
        leaf = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
        assert served_serial(server.port, trust) == leaf.serial_number
        tls = server.status()["tls"]
        assert tls["source"] == "acme"
        assert tls["serial"] == f"{leaf.serial_number:x}"
        assert tls["renewal"]["next_renewal"] is not None
        assert tls["renewal"]["last_result"]["serial"] == f"{leaf.serial_number:x}"
        assert server.metrics_port is not None
        metrics = metrics_text(server.metrics_port)
        assert 'grpcsec_tls_certificate_source_info{role="server",source="acme"} 1.0' in metrics
        assert 'grpcsec_tls_certificate_renewals_total{result="success",source="acme"} 1.0' in (
            metrics
        )
        assert "grpcsec_tls_certificate_next_renewal_timestamp_seconds{" in metrics
        # negative control: a client that trusts another root is refused
        other = CertificateAuthority.create("not pebble").certificate_pem()
        with pytest.raises(grpc.RpcError) as refused:
            say_hello(server.port, other)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_server_on_files_names_the_file_source_and_no_renewal(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    """Negative control of the ACME source: the same files served as plain files."""
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1")
    issue_certificate(pebble.config(tmp_path), tmp_path / "tls.crt", tmp_path / "tls.key")
    mapping = acme_mapping(pebble, tmp_path)
    del mapping["tls"]["acme"]
    config = SecurityConfig.from_mapping({**mapping, "metrics": {"listen": "127.0.0.1:0"}})
    with running(config) as server:
        assert "acme" in say_hello(server.port, root_pem(pebble.root()))
        tls = server.status()["tls"]
        assert (tls["source"], tls["renewal"]) == ("file", None)
        assert server.metrics_port is not None
        metrics = metrics_text(server.metrics_port, wait_for="source_info{")
        assert 'grpcsec_tls_certificate_source_info{role="server",source="file"} 1.0' in metrics
        assert 'source="acme"' not in metrics
        assert "grpcsec_tls_certificate_renewals_total{" not in metrics


def test_a_server_whose_acme_ca_is_not_trusted_does_not_start(
    pebble: Pebble, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.crt"
    write_files(
        [PendingFile(wrong, CertificateAuthority.create("wrong").certificate_pem(), CERT_MODE)]
    )
    config = SecurityConfig.from_mapping(acme_mapping(pebble, tmp_path, directory_ca=str(wrong)))
    with pytest.raises(AcmeError) as caught:
        secure_server(config)
    assert "not trusted" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "tls.crt").exists()


def test_a_forced_renewal_is_served_with_no_failed_calls(pebble: Pebble, tmp_path: Path) -> None:
    config = SecurityConfig.from_mapping(acme_mapping(pebble, tmp_path))
    trust = root_pem(pebble.root())
    with running(config) as server:
        before = served_serial(server.port, trust)
        failures: list[str] = []
        calls = 0
        stop = threading.Event()

        def call_forever() -> None:
            nonlocal calls
            while not stop.is_set():
                try:
                    say_hello(server.port, trust)  # a new channel: a new handshake each time
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code()}: {exc.details()}")
                calls += 1

        caller = threading.Thread(target=call_forever, daemon=True)
        caller.start()
        try:
            assert config.tls is not None and config.tls.acme is not None
            renewer = AcmeRenewer(config.tls.acme, config.tls.cert, config.tls.key)
            result = renewer.renew(utcnow())
            deadline = time.monotonic() + 30
            while served_serial(server.port, trust) != int(result.serial, 16):
                assert time.monotonic() < deadline, "the renewed certificate was not served"
                time.sleep(0.1)
            settle = calls + 5
            while calls < settle and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            caller.join(30)
        assert int(result.previous_serial, 16) == before != int(result.serial, 16)
        assert failures == []
        assert calls > 5


# -- Go and Node clients against `grpcsec serve --config` with [tls.acme] ---------------------
@pytest.fixture(params=sorted(CLIENTS))
def greeter_client(request: pytest.FixtureRequest) -> GreeterClient:
    return CLIENTS[request.param]()


def test_go_and_node_clients_call_a_server_with_an_acme_certificate(
    pebble: Pebble, tmp_path: Path, greeter_client: GreeterClient
) -> None:
    mapping = acme_mapping(pebble, tmp_path)
    acme = mapping["tls"]["acme"]
    toml = tmp_path / "server.toml"
    toml.write_text(
        f'listen = "127.0.0.1:0"\n[tls]\ncert = "tls.crt"\nkey = "tls.key"\n[tls.acme]\n'
        f'directory = "{acme["directory"]}"\ndomains = ["{DOMAIN}"]\n'
        f'directory_ca = "{acme["directory_ca"]}"\nhttp_port = {acme["http_port"]}\n'
    )
    root = tmp_path / "pebble-root.crt"
    root.write_bytes(root_pem(pebble.root()))
    other = tmp_path / "other-root.crt"
    other.write_bytes(CertificateAuthority.create("not pebble").certificate_pem())
    argv = [sys.executable, "-m", "grpcsec.cli", "serve", "--config", toml]
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    ready = r"listening on 127\.0\.0\.1:(\d+) \(tls\)"
    with server_process(argv, ready, tmp_path / "serve.log", env=env) as (_, match):
        server = GreeterServer("grpcsec serve (acme)", int(match[1]), DOMAIN, root, "")
        answered = greeter_client.call(server, name="acme")
        assert answered.returncode == 0, (answered.stdout, answered.stderr)
        assert "acme" in answered.stdout
        refused = greeter_client.call(server, name="acme", trust=other)
        assert refused.returncode != 0
        assert refused.stdout.startswith("ERROR UNAVAILABLE"), refused.stdout
    assert (tmp_path / "tls.crt").exists()


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.2)


def test_a_server_renews_by_itself_and_keeps_its_certificate_when_the_ca_is_gone(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    """30-second certificates: the server's own agent renews at about 20 s, the watcher swaps
    the new one in (no failed call meanwhile); then the CA goes away, the next renewal fails,
    status and metrics say so, and the last good certificate keeps serving."""
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1", validity=30)
    trust = root_pem(pebble.root())
    mapping = {**acme_mapping(pebble, tmp_path), "metrics": {"listen": "127.0.0.1:0"}}
    with running(SecurityConfig.from_mapping(mapping)) as server:
        first = served_serial(server.port, trust)
        failures: list[str] = []
        stop = threading.Event()

        def call_forever() -> None:
            while not stop.is_set():
                try:
                    say_hello(server.port, trust)
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code()}: {exc.details()}")
                time.sleep(0.05)

        caller = threading.Thread(target=call_forever, daemon=True)
        caller.start()
        try:
            wait_for("a renewal served", lambda: served_serial(server.port, trust) != first)
        finally:
            stop.set()
            caller.join(30)
        assert failures == []
        renewal = server.status()["tls"]["renewal"]
        assert renewal["renewals"] >= 2  # at start, then by itself
        second = served_serial(server.port, trust)
        assert renewal["last_result"]["serial"] == f"{second:x}"

        pebble.process.kill()
        pebble.process.wait(10)
        wait_for("a failed renewal", lambda: server.status()["tls"]["renewal"]["failures"] >= 1)
        renewal = server.status()["tls"]["renewal"]
        assert "unreachable" in renewal["last_error"]
        assert served_serial(server.port, trust) == second  # the last good one stays
        assert "acme" in say_hello(server.port, trust)
        assert server.metrics_port is not None
        metrics = metrics_text(server.metrics_port, wait_for='result="failure"')
        assert 'grpcsec_tls_certificate_renewals_total{result="failure",source="acme"}' in metrics
