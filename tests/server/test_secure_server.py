"""secure_server and aio_secure_server on real grpcio servers over real mTLS on 127.0.0.1.

One configuration drives both kinds: mTLS, a CN allow-list, an A43 policy that allows only the
probe method, metrics. Each positive call has its negative controls (another CA, no client
certificate, a CN not on the list, a method the policy does not allow), and the counts they
leave behind are read back from ``status()``, ``GET /status`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpcsec.authn.tokens import mint_token, public_jwks
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.pki import CertificateAuthority, IssuedCertificate
from grpcsec.pki.files import CERT_MODE, KEY_MODE, PendingFile, write_files
from grpcsec.pki.inspect import fingerprint_sha256
from grpcsec.server import SecurityConfig, aio_secure_server, secure_server
from grpcsec.testing.plugin import SecureServerFactory
from tests.conftest import (
    CLIENT_SPIFFE_ID,
    TIMEOUT,
    WHOAMI,
    Pki,
    call_error,
    issue_client,
    issue_server,
    probe_handler,
    whoami,
)

STOP = 10.0
SAY_HELLO = "/helloworld.Greeter/SayHello"


@dataclass(frozen=True)
class Files:
    dir: Path
    pki: Pki
    stranger: IssuedCertificate  # same CA, CN not on the allow-list

    def path(self, name: str) -> str:
        return str(self.dir / name)


@pytest.fixture
def files(pki: Pki, tmp_path: Path) -> Files:
    stranger = issue_client(pki.ca, common_name="stranger")
    policy = {
        "name": "probe-only",
        "allow_rules": [
            {
                "name": "whoami",
                "source": {"principals": [CLIENT_SPIFFE_ID]},
                "request": {"paths": [WHOAMI]},
            },
            # the policy sees health calls too: the operator opens them by name
            {"name": "health", "request": {"paths": ["/grpc.health.v1.Health/*"]}},
        ],
    }
    write_files(
        [
            PendingFile(tmp_path / "ca.crt", pki.ca.certificate_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.crt", pki.server.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.key", pki.server.key_pem(), KEY_MODE),
            PendingFile(tmp_path / "policy.json", json.dumps(policy).encode(), CERT_MODE),
        ]
    )
    return Files(tmp_path, pki, stranger)


def config_text(files: Files, *, extra: str = "") -> str:
    return f"""
listen = "127.0.0.1:0"
shutdown_grace = "1s"
{extra}
[tls]
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
reload_interval = "100ms"
[authn]
allow_cns = ["client-1"]
[authz]
policy = "policy.json"
reload_interval = "100ms"
[metrics]
listen = "127.0.0.1:0"
"""


def load(files: Files, **kw: str) -> SecurityConfig:
    path = files.dir / "grpcsec.toml"
    path.write_text(config_text(files, **kw))
    return SecurityConfig.load(path)


def creds(
    pki: Pki, client: IssuedCertificate | None, ca: CertificateAuthority | None = None
) -> Any:
    root = (ca or pki.ca).certificate_pem()
    if client is None:
        return grpc.ssl_channel_credentials(root)
    return grpc.ssl_channel_credentials(root, client.key_pem(), client.chain_pem())


@dataclass
class Running:
    kind: str
    port: int
    metrics_port: int
    secure: Any
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        if self.loop is None:
            result: dict[str, Any] = self.secure.status()
            return result
        future = asyncio.run_coroutine_threadsafe(_call(self.secure.status), self.loop)
        return dict(future.result(STOP))

    def reload(self) -> dict[str, str]:
        if self.loop is None:
            return dict(self.secure.reload())
        return dict(
            asyncio.run_coroutine_threadsafe(_call(self.secure.reload), self.loop).result(STOP)
        )


async def _call(function: Any) -> Any:
    return function()


@contextmanager
def run(config: SecurityConfig, kind: str) -> Iterator[Running]:
    if kind == "sync":
        secure = secure_server(config)
        secure.server.add_generic_rpc_handlers((probe_handler(aio=False),))
        add_greeter(secure.server)
        secure.start()
        try:
            assert secure.metrics_port is not None
            yield Running(kind, secure.port, secure.metrics_port, secure)
        finally:
            secure.stop(0)
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        secure = aio_secure_server(config)
        secure.server.add_generic_rpc_handlers((probe_handler(aio=True),))
        add_greeter(secure.server)
        await secure.start()
        return secure

    secure = asyncio.run_coroutine_threadsafe(start(), loop).result(STOP)
    try:
        yield Running(kind, secure.port, secure.metrics_port, secure, loop)
    finally:
        asyncio.run_coroutine_threadsafe(secure.stop(0), loop).result(STOP)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP)
        loop.close()


def say_hello_code(target: str, credentials: Any) -> grpc.StatusCode:
    with grpc.secure_channel(target, credentials) as channel:
        try:
            channel.unary_unary(SAY_HELLO)(b"", timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


POLICY_DENIED_SERIES = 'grpcsec_calls_denied_total{code="permission_denied",reason="policy_denied"}'
NOT_ALLOWED_SERIES = (
    'grpcsec_calls_denied_total{code="permission_denied",reason="certificate_not_allowed"}'
)


def scrape_until(port: int, needle: str, timeout: float = 10.0) -> str:
    """``/metrics`` once it shows ``needle`` (the pump runs every second), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        text = http_get(port, "/metrics").decode()
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def http_get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT) as response:
        body: bytes = response.read()
        return body


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_secured_server_allows_the_listed_client_and_refuses_the_rest(
    files: Files, kind: str
) -> None:
    pki = files.pki
    with run(load(files), kind) as running:
        seen = whoami(running.target, creds(pki, pki.client))
        assert seen["common_name"] == "client-1"
        # negative controls, each a different layer
        assert call_error(running.target, creds(pki, pki.other_client)).code() is (
            grpc.StatusCode.UNAVAILABLE  # client certificate from another CA: TLS refuses
        )
        assert call_error(running.target, creds(pki, None)).code() is grpc.StatusCode.UNAVAILABLE
        assert call_error(running.target, creds(pki, pki.client, pki.other_ca)).code() is (
            grpc.StatusCode.UNAVAILABLE  # the client does not trust the server
        )
        stranger = call_error(running.target, creds(pki, files.stranger))
        assert stranger.code() is grpc.StatusCode.PERMISSION_DENIED  # CN not on the list
        assert stranger.details() == "permission denied"
        denied = say_hello_code(running.target, creds(pki, pki.client))
        assert denied is grpc.StatusCode.PERMISSION_DENIED  # the policy allows only WhoAmI

        status = running.status()
        assert status["calls"]["allowed"] == 1
        assert sum(status["calls"]["denied"]["permission_denied"].values()) == 2
        assert status["tls"]["serial"] == format(pki.server.certificate.serial_number, "x")
        assert status["trust"]["client_ca"] == [
            {
                "subject": pki.ca.certificate.subject.rfc4514_string(),
                "fingerprint_sha256": fingerprint_sha256(pki.ca.certificate),
            }
        ]
        assert status["policy"]["name"] == "probe-only"
        assert status["policy"]["last_reload_time"] is not None
        assert status["server"]["mode"] == "mtls"
        assert status["server"]["aio"] is (kind == "aio")

        over_http = json.loads(http_get(running.metrics_port, "/status"))
        assert over_http["calls"] == running.status()["calls"]
        assert "BEGIN" not in json.dumps(over_http)  # no PEM, no key material
        metrics = scrape_until(running.metrics_port, POLICY_DENIED_SERIES)
        assert "grpcsec_tls_certificate_not_after_timestamp_seconds{" in metrics
        assert 'grpcsec_authorization_decisions_total{decision="deny"' in metrics
        # every refusal reaches Prometheus with its code and reason, permission denials too
        assert f"{POLICY_DENIED_SERIES} 1.0" in metrics
        assert f"{NOT_ALLOWED_SERIES} 1.0" in metrics
        assert "grpcsec_calls_allowed_total 1.0" in metrics


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_health_is_exempt_from_authentication_but_not_from_tls(
    grpcsec_secure_server: SecureServerFactory, kind: str
) -> None:
    """Through grpcsec's own pytest plugin (grpcsec.testing): a client the allow-list refuses
    still gets health answers; a client without a certificate gets nothing."""
    server = grpcsec_secure_server(add_greeter, allow_cns=["alice"], aio=kind == "aio")
    stub = health_pb2_grpc.HealthStub(server.channel("mallory"))
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    named = stub.Check(health_pb2.HealthCheckRequest(service="helloworld.Greeter"), timeout=TIMEOUT)
    assert named.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as refused:
        say_hello(server.channel("mallory"), "m", timeout=TIMEOUT)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(server.channel(None)).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT
        )
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_rotation_while_serving_shows_in_status_and_keeps_serving(files: Files, kind: str) -> None:
    pki = files.pki
    with run(load(files), kind) as running:
        before = running.status()["tls"]["serial"]
        renewed = issue_server(pki.ca)
        write_files(
            [
                PendingFile(files.dir / "server.crt", renewed.chain_pem(), CERT_MODE),
                PendingFile(files.dir / "server.key", renewed.key_pem(), KEY_MODE),
            ],
            force=True,
        )
        assert running.reload()["tls"] in {"loaded", "unchanged"}  # unchanged: the watcher won
        after = running.status()
        assert after["tls"]["serial"] == format(renewed.certificate.serial_number, "x")
        assert after["tls"]["serial"] != before
        assert whoami(running.target, creds(pki, pki.client))["common_name"] == "client-1"
        # garbage on disk: refused, last good certificate kept
        (files.dir / "server.crt").write_text("not a certificate")
        running.reload()
        kept = running.status()["tls"]
        assert kept["serial"] == after["tls"]["serial"]
        assert kept["reload"]["last_failure"] is not None
        assert whoami(running.target, creds(pki, pki.client))["common_name"] == "client-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda d: (d / "server.key").write_text("garbage"), "server.key"),
        (lambda d: (d / "policy.json").write_text("{"), "policy.json"),
        (lambda d: (d / "ca.crt").write_text(""), "ca.crt"),
    ],
)
def test_everything_is_checked_before_any_port_binds(
    files: Files, damage: Any, needle: str
) -> None:
    port = _free_port()
    config = load(files, extra="")
    config = SecurityConfig.from_mapping({**config.to_mapping(), "listen": f"127.0.0.1:{port}"})
    damage(files.dir)
    before = set(threading.enumerate())
    with pytest.raises(GrpcsecError) as caught:
        secure_server(config)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)
    assert _port_is_free(port)
    # no watcher thread left behind (threads of earlier tests may end meanwhile: not counted)
    assert set(threading.enumerate()) - before == set()


def test_ports_come_from_the_configuration_only(files: Files) -> None:
    secure = secure_server(load(files))
    try:
        with pytest.raises(ConfigurationError, match=r"SecurityConfig\.listen"):
            secure.server.add_insecure_port("127.0.0.1:0")
        with pytest.raises(ConfigurationError, match=r"SecurityConfig\.listen"):
            secure.server.add_secure_port("127.0.0.1:0", grpc.local_server_credentials())
        assert isinstance(secure.server, grpc.Server)
    finally:
        secure.stop(0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_bearer_tokens_from_a_jwks_file_and_their_keys_in_status(files: Files, kind: str) -> None:
    """``[authn] jwks`` requires a token on every call (health exempt); the status document
    names the key ids it verifies with. Controls: no token, a token signed by another key,
    a token for another audience."""
    signing = ec.generate_private_key(ec.SECP256R1())
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    (files.dir / "jwks.json").write_text(json.dumps(public_jwks([(signing, "k1")])))
    config = SecurityConfig.from_mapping(
        {
            "listen": "127.0.0.1:0",
            "tls": {"cert": "server.crt", "key": "server.key", "client_ca": "ca.crt"},
            "authn": {"jwks": "jwks.json", "audiences": ["shop"], "issuers": ["https://idp"]},
            "metrics": {"listen": "127.0.0.1:0"},
        },
        base=files.dir,
    )
    pki = files.pki

    def token(key: Any = signing, audience: str = "shop") -> tuple[tuple[str, str], ...]:
        minted = mint_token(key, issuer="https://idp", audience=audience, subject="u", kid="k1")
        return (("authorization", f"Bearer {minted}"),)

    with run(config, kind) as running:
        credentials = creds(pki, pki.client)
        assert whoami(running.target, credentials, metadata=token())["common_name"] == "client-1"
        for metadata in ((), token(stranger_key), token(audience="elsewhere")):
            error = call_error(running.target, credentials, metadata=metadata)
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED
            assert error.details() == "authentication failed"
        status = running.status()
        assert status["jwks"][0]["kids"] == ["k1"]
        assert status["calls"]["allowed"] == 1
        assert status["calls"]["denied"]["unauthenticated"] == {
            "missing_token": 1,
            "invalid_signature": 1,
            "invalid_audience": 1,
        }
