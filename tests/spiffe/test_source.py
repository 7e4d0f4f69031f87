"""WorkloadAPISource against the test Workload API: first update, pushes, header, outages."""

from __future__ import annotations

import logging
import time

import pytest
from cryptography import x509

from grpcsec.errors import ConfigurationError, WorkloadAPIError
from grpcsec.pki import CertificateAuthority, load_certificates
from grpcsec.spiffe import WorkloadAPIAddress
from grpcsec.spiffe.workload import WorkloadAPISource
from tests.spiffe.workload_api import SERVER_ID, AgentState, FakeAgent, issue_svid


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_first_update_gives_the_svid_the_own_bundle_and_status(
    agent: FakeAgent, td_ca: CertificateAuthority
) -> None:
    with WorkloadAPISource(WorkloadAPIAddress.parse(agent.address)) as source:
        raw = source.read()
        leaf = x509.load_pem_x509_certificates(raw.chain or b"")[0]
        assert leaf.serial_number == agent.state.svid.certificate.serial_number
        assert load_certificates(raw.trust or b"") == [td_ca.certificate]
        assert load_certificates(raw.issuers or b"") == [td_ca.certificate]
        assert raw.key is not None and b"PRIVATE KEY" in raw.key
        status = source.status()
        assert status.connected and status.spiffe_id == SERVER_ID
        assert status.trust_domains == ("example.test",)
        assert "PRIVATE" not in repr(source) + str(status.to_json())


def test_a_push_bumps_the_version_and_calls_subscribers(
    agent: FakeAgent, td_ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    with WorkloadAPISource(WorkloadAPIAddress.parse(agent.address)) as source:
        calls: list[int] = []
        source.subscribe(lambda: calls.append(1))
        before = source.version()
        new = issue_svid(td_ca, SERVER_ID, dns=["greeter.example.test"])
        agent.push(svid=new, federated={"other.test": [other_ca]})
        wait_for(lambda: source.version() != before and calls)
        raw = source.read()
        assert x509.load_pem_x509_certificates(raw.chain or b"")[0] == new.certificate
        assert set(load_certificates(raw.trust or b"")) == {td_ca.certificate, other_ca.certificate}
        assert source.bundles() == {
            "example.test": (td_ca.certificate,),
            "other.test": (other_ca.certificate,),
        }


def test_a_missing_socket_is_a_one_line_error_at_once(tmp_path: object) -> None:
    started = time.monotonic()
    with pytest.raises(WorkloadAPIError, match="no SPIFFE Workload API socket at"):
        WorkloadAPISource(WorkloadAPIAddress.parse("unix:///tmp/no-such-agent.sock"))
    assert time.monotonic() - started < 2


def test_a_socket_nobody_answers_on_fails_within_the_start_timeout(agent: FakeAgent) -> None:
    agent.stop()
    agent.path.touch()  # a stale socket file left by a dead agent
    started = time.monotonic()
    with pytest.raises(WorkloadAPIError, match=r"no X\.509 SVID .* within 1s"):
        WorkloadAPISource(WorkloadAPIAddress.parse(agent.address), start_timeout=1.0)
    assert time.monotonic() - started < 5


def test_the_agent_refuses_calls_without_the_security_header(agent: FakeAgent) -> None:
    """Negative control for the test agent itself: SPIRE's header rule is enforced."""
    import grpc  # noqa: PLC0415
    from spiffe._proto import workload_pb2, workload_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(f"unix:{agent.path}") as channel:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            next(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), timeout=5))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        headers = (("workload.spiffe.io", "true"),)
        request = workload_pb2.X509BundlesRequest()
        bundles = next(stub.FetchX509Bundles(request, timeout=5, metadata=headers))
        assert set(bundles.bundles) == {"example.test"}
    assert agent.refused == 1


def test_agent_gone_keeps_the_material_warns_once_and_reconnects(
    agent: FakeAgent, td_ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    source = WorkloadAPISource(WorkloadAPIAddress.parse(agent.address), max_backoff=0.5)
    try:
        kept = source.read()
        with caplog.at_level(logging.WARNING, logger="grpcsec.spiffe"):
            agent.stop()
            wait_for(lambda: not source.connected)
            time.sleep(1.5)  # several reconnect attempts while down
        assert source.read() is kept
        warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert source.status().disconnected_since is not None
        new = issue_svid(td_ca, SERVER_ID, dns=["greeter.example.test"])
        agent.push(svid=new)
        agent.start()
        wait_for(lambda: source.connected, timeout=20)
        assert x509.load_pem_x509_certificates(source.read().chain or b"")[0] == new.certificate
        assert source.status().disconnected_since is None
    finally:
        source.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp://localhost:8081", "needs an IP address"),
        ("tcp://127.0.0.1", "needs a port"),
        ("tcp://127.0.0.1:0", "needs a port"),
        ("tcp://127.0.0.1:80/x", "takes no path"),
        ("unix:///x?y=1", "no user, query or fragment"),
        ("http:///x", "use unix:///"),
        ("unix://host/x", "authority"),
        ("unix:", "no socket path"),
        ("", "empty"),
    ],
)
def test_bad_addresses_are_one_line_configuration_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorkloadAPIAddress.parse(text)


def test_address_forms_and_environment() -> None:
    assert (
        str(WorkloadAPIAddress.parse("unix:///run/spire/agent.sock"))
        == "unix:///run/spire/agent.sock"
    )
    assert WorkloadAPIAddress.parse("/run/a.sock").uri == "unix:///run/a.sock"
    assert str(WorkloadAPIAddress.parse("tcp://[::1]:8081")) == "tcp://[::1]:8081"
    assert WorkloadAPIAddress.parse("tcp://127.0.0.1:8081").hostport == "127.0.0.1:8081"
    assert WorkloadAPIAddress.from_environment({}) is None
    env = {"SPIFFE_ENDPOINT_SOCKET": "unix:///run/b.sock"}
    found = WorkloadAPIAddress.from_environment(env)
    assert found is not None and str(found.path) == "/run/b.sock"


def test_a_tcp_workload_api_is_dialled_too(td_ca: CertificateAuthority) -> None:
    """py-spiffe 0.3.2 dials Unix sockets only; grpcsec's client subclass dials tcp:// too."""
    state = AgentState(
        svid=issue_svid(td_ca, SERVER_ID, dns=["greeter.example.test"]),
        spiffe_id=SERVER_ID,
        bundle=[td_ca],
    )
    with FakeAgent(state, tcp=True) as agent:
        assert agent.address.startswith("tcp://127.0.0.1:")
        with WorkloadAPISource(WorkloadAPIAddress.parse(agent.address)) as source:
            assert source.status().spiffe_id == SERVER_ID
            assert source.description == f"SPIFFE Workload API {agent.address}"
    # negative control: nothing listens there any more
    with pytest.raises(WorkloadAPIError, match="within 1s"):
        WorkloadAPISource(WorkloadAPIAddress.parse(agent.address), start_timeout=1.0)
