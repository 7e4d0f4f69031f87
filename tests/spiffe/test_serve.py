"""secure_server / aio_secure_server fed by the test Workload API, over real mTLS on 127.0.0.1.

Every positive call has its negative controls: a client SVID from another CA, no client
certificate, an expired SVID pushed to the server (refused by the watcher, the last good one
kept), a CA removed from the bundle. Rotation is pushed under continuous load and must cost
zero calls; the agent going away must not stop the server.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from grpcsec.pki import CertificateAuthority, IssuedCertificate, Validity, utcnow
from grpcsec.server import SecurityConfig
from tests.conftest import TIMEOUT, call_error, whoami
from tests.server.test_secure_server import Running, run
from tests.spiffe.workload_api import (
    CLIENT_ID,
    SERVER_DNS,
    SERVER_ID,
    FakeAgent,
    issue_svid,
)

KINDS = ["sync", "aio"]
NAME = (("grpc.ssl_target_name_override", SERVER_DNS),)


def spiffe_config(agent: FakeAgent, **authn: Any) -> SecurityConfig:
    return SecurityConfig.from_mapping(
        {
            "listen": "127.0.0.1:0",
            "shutdown_grace": "1s",
            "tls": {"spiffe_socket": agent.address, "reload_interval": "1h"},  # pushes only
            "authn": authn or {"allow_trust_domains": ["example.test"]},
            "metrics": {"listen": "127.0.0.1:0"},
        }
    )


def creds(trust: list[CertificateAuthority], client: IssuedCertificate | None) -> Any:
    roots = b"".join(ca.certificate_pem() for ca in trust)
    if client is None:
        return grpc.ssl_channel_credentials(roots)
    return grpc.ssl_channel_credentials(roots, client.key_pem(), client.chain_pem())


def served_serial(
    port: int, trust: CertificateAuthority, client: IssuedCertificate, tmp: Path
) -> str:
    """The serial a *new* connection is served (a raw handshake: grpcio clients cannot see it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=trust.certificate_pem().decode())
    context.set_alpn_protocols(["h2"])
    (tmp / "probe.crt").write_bytes(client.chain_pem())
    (tmp / "probe.key").write_bytes(client.key_pem())
    context.load_cert_chain(tmp / "probe.crt", tmp / "probe.key")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_DNS) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return f"{x509.load_der_x509_certificate(der).serial_number:x}"


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def metrics_text(running: Running) -> str:
    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return str(response.read().decode())


def http_status(running: Running) -> dict[str, Any]:
    url = f"http://127.0.0.1:{running.metrics_port}/status"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


@pytest.fixture
def client_svid(td_ca: CertificateAuthority) -> IssuedCertificate:
    return issue_svid(td_ca, CLIENT_ID)


@pytest.mark.parametrize("kind", KINDS)
def test_serves_the_svid_to_clients_with_an_svid_and_refuses_the_rest(
    kind: str, agent: FakeAgent, other_ca: CertificateAuthority, client_svid: IssuedCertificate
) -> None:
    td_ca = agent.state.bundle[0]
    tmp_path = agent.path.parent
    with run(spiffe_config(agent), kind) as running:
        seen = whoami(running.target, creds([td_ca], client_svid), options=NAME)
        assert seen["spiffe_id"] == CLIENT_ID
        # negative controls: an SVID for the same ID from another CA; no client certificate
        impostor = issue_svid(other_ca, CLIENT_ID)
        for bad in (creds([td_ca], impostor), creds([td_ca], None)):
            error = call_error(running.target, bad, options=NAME)
            assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert served_serial(running.port, td_ca, client_svid, tmp_path) == format(
            agent.state.svid.certificate.serial_number, "x"
        )
        tls = http_status(running)["tls"]
        assert tls["source"] == "spiffe"
        spiffe = tls["spiffe"]
        assert spiffe["spiffe_id"] == SERVER_ID and spiffe["connected"] is True
        assert spiffe["bundle_trust_domains"] == ["example.test"]
        assert spiffe["last_update"] is not None and spiffe["serial"] == tls["serial"]
        assert f'grpcsec_spiffe_workload_api_up{{workload_api="{agent.address}"}} 1.0' in (
            metrics_text(running)
        )


def test_an_expired_svid_push_is_refused_and_the_last_good_one_keeps_serving(
    agent: FakeAgent, td_ca: CertificateAuthority, client_svid: IssuedCertificate, tmp_path: Path
) -> None:
    with run(spiffe_config(agent), "sync") as running:
        good = format(agent.state.svid.certificate.serial_number, "x")
        now = utcnow()
        expired = issue_svid(
            td_ca,
            SERVER_ID,
            dns=[SERVER_DNS],
            validity=Validity(
                not_before=now - dt.timedelta(hours=2), not_after=now - dt.timedelta(hours=1)
            ),
        )
        agent.push(svid=expired)
        wait_until(
            lambda: running.status()["tls"]["reload"]["last_failure"] is not None,
            what="the expired SVID to be refused",
        )
        failure = running.status()["tls"]["reload"]["last_failure"]
        assert failure["kind"] == "expired", failure
        assert served_serial(running.port, td_ca, client_svid, tmp_path) == good
        assert whoami(running.target, creds([td_ca], client_svid), options=NAME)


class Load:
    """Threads calling WhoAmI back to back, half on one channel, half on a fresh connection
    per call (each a handshake through the server's fetcher); every error is kept."""

    def __init__(self, target: str, credentials: Any, *, seconds: float = 30.0) -> None:
        self.target, self.credentials = target, credentials
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + seconds
        self.calls = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(fresh,), daemon=True)
            for fresh in (False, True, False, True)
        ]

    def _call(self, channel: grpc.Channel) -> None:
        try:
            channel.unary_unary("/grpcsec.test.Probe/WhoAmI")(b"", timeout=TIMEOUT)
        except grpc.RpcError as exc:
            with self.lock:
                self.failures.append(f"{exc.code()}: {exc.details()}")
        with self.lock:
            self.calls += 1

    def _run(self, fresh: bool) -> None:
        options = [*NAME, ("grpc.use_local_subchannel_pool", 1)]
        shared = grpc.secure_channel(self.target, self.credentials, options=options)
        try:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                if fresh:
                    with grpc.secure_channel(self.target, self.credentials, options=options) as ch:
                        self._call(ch)
                else:
                    self._call(shared)
        finally:
            shared.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(10)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pushed_svid_is_served_under_load_with_zero_failed_calls(
    kind: str,
    agent: FakeAgent,
    td_ca: CertificateAuthority,
    client_svid: IssuedCertificate,
    tmp_path: Path,
) -> None:
    with run(spiffe_config(agent), kind) as running:
        with Load(running.target, creds([td_ca], client_svid)) as load:
            wait_until(lambda: load.calls > 20, what="load to start")
            rotated = issue_svid(td_ca, SERVER_ID, dns=[SERVER_DNS])
            pushed = time.monotonic()
            agent.push(svid=rotated)
            new = format(rotated.certificate.serial_number, "x")
            wait_until(
                lambda: served_serial(running.port, td_ca, client_svid, tmp_path) == new,
                timeout=5.0,
                what="the pushed SVID to be served",
            )
            swap = time.monotonic() - pushed
            before = load.calls
            wait_until(lambda: load.calls > before + 20, what="more calls after the swap")
        assert load.failures == [], load.failures[:3]
        assert swap < 5.0  # generous: a push is applied at once, not at the next poll


def test_a_bundle_change_adds_and_removes_client_cas(
    agent: FakeAgent,
    td_ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    client_svid: IssuedCertificate,
) -> None:
    config = spiffe_config(agent, allow_trust_domains=["example.test", "other.test"])
    foreign = issue_svid(other_ca, "spiffe://other.test/client")
    with run(config, "sync") as running:
        assert call_error(running.target, creds([td_ca], foreign), options=NAME)
        agent.push(federated={"other.test": [other_ca]})
        wait_until(
            lambda: (
                running.status()["tls"]["spiffe"]["bundle_trust_domains"]
                == ["example.test", "other.test"]
                and running.status()["tls"]["reload"]["generation"] == 2
            ),
            what="the federated bundle",
        )
        seen = whoami(running.target, creds([td_ca], foreign), options=NAME)
        assert seen["spiffe_id"] == "spiffe://other.test/client"
        agent.push(federated={})
        wait_until(
            lambda: running.status()["tls"]["reload"]["generation"] == 3,
            what="the bundle without other.test",
        )
        error = call_error(running.target, creds([td_ca], foreign), options=NAME)
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert whoami(running.target, creds([td_ca], client_svid), options=NAME)


def test_the_agent_going_away_keeps_the_server_serving_with_a_warning_and_a_metric(
    agent: FakeAgent,
    td_ca: CertificateAuthority,
    client_svid: IssuedCertificate,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with run(spiffe_config(agent), "sync") as running:
        up = f'grpcsec_spiffe_workload_api_up{{workload_api="{agent.address}"}}'
        agent.stop()
        wait_until(lambda: f"{up} 0.0" in metrics_text(running), what="the up metric to drop")
        assert whoami(running.target, creds([td_ca], client_svid), options=NAME)
        spiffe = running.status()["tls"]["spiffe"]
        assert spiffe["connected"] is False and spiffe["disconnected_since"] is not None
        assert any(
            "unavailable" in r.getMessage() for r in caplog.records if r.levelname == "WARNING"
        )
        rotated = issue_svid(td_ca, SERVER_ID, dns=[SERVER_DNS])
        agent.push(svid=rotated)
        agent.start()
        new = format(rotated.certificate.serial_number, "x")
        wait_until(
            lambda: served_serial(running.port, td_ca, client_svid, tmp_path) == new,
            timeout=30.0,
            what="the server to pick up the SVID after the agent came back",
        )
        assert f"{up} 1.0" in metrics_text(running)


def test_an_svid_without_a_dns_san_is_refused_at_start(td_ca: CertificateAuthority) -> None:
    """grpcio clients verify DNS/IP SANs only: a URI-only server SVID cannot be served."""
    from grpcsec.errors import RotationError  # noqa: PLC0415
    from grpcsec.server import secure_server  # noqa: PLC0415
    from tests.spiffe.workload_api import AgentState  # noqa: PLC0415

    state = AgentState(svid=issue_svid(td_ca, SERVER_ID), spiffe_id=SERVER_ID, bundle=[td_ca])
    with (
        FakeAgent(state) as agent,
        pytest.raises(RotationError, match="no DNS or IP subject alternative name"),
    ):
        secure_server(spiffe_config(agent))


@pytest.fixture
def stopped_agent(agent: FakeAgent) -> Iterator[FakeAgent]:
    agent.stop()
    yield agent


@pytest.mark.parametrize("kind", KINDS)
def test_a_federated_ca_cannot_vouch_for_the_own_trust_domain(
    kind: str,
    agent: FakeAgent,
    td_ca: CertificateAuthority,
    other_ca: CertificateAuthority,
    client_svid: IssuedCertificate,
) -> None:
    """Issue 15 item 4 in SPIFFE mode: the agent federates other.test, so grpc core accepts
    chains from either bundle; a certificate saying spiffe://example.test/... signed by
    other.test's CA is still refused (trust_domain_mismatch), while the honest clients of both
    trust domains are let in."""
    agent.push(federated={"other.test": [other_ca]})
    config = spiffe_config(agent, allow_trust_domains=["example.test", "other.test"])
    forged = issue_svid(other_ca, CLIENT_ID)  # example.test's ID, other.test's CA
    honest_foreign = issue_svid(other_ca, "spiffe://other.test/client")
    with run(config, kind) as running:
        wait_until(
            lambda: (
                running.status()["tls"]["spiffe"]["bundle_trust_domains"]
                == ["example.test", "other.test"]
            ),
            what="the federated bundle",
        )
        assert whoami(running.target, creds([td_ca], client_svid), options=NAME)["spiffe_id"] == (
            CLIENT_ID
        )
        seen = whoami(running.target, creds([td_ca], honest_foreign), options=NAME)
        assert seen["spiffe_id"] == "spiffe://other.test/client"
        error = call_error(running.target, creds([td_ca], forged), options=NAME)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        denied = running.status()["calls"]["denied"]["unauthenticated"]
        assert denied == {"trust_domain_mismatch": 1}
        # the certificate metrics name the source (item 6)
        assert 'grpcsec_tls_certificate_source_info{role="server",source="spiffe"} 1.0' in (
            metrics_text(running)
        )
