"""The TLS probe and check_targets against live grpcsec servers on 127.0.0.1.

The server's certificate is really issued with a short validity around the real clock (the
handshake does not care about it), and the check is given the moment to judge at, so each
threshold is crossed without sleeping. Negative controls: a refused port, a port that never
speaks TLS, a plaintext gRPC server, a server that requires a client certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpcsec.errors import ConfigurationError
from grpcsec.monitor import (
    CheckExit,
    EndpointError,
    ErrorKind,
    ProbeOptions,
    Prober,
    Status,
    Thresholds,
    check_targets,
    probe_endpoint,
)
from grpcsec.pki import CertificateAuthority, IssuedCertificate, Profile, utcnow
from grpcsec.target import Target
from tests.monitor.conftest import (
    HOUR,
    closed_port,
    issue,
    silent_listener,
    tls_server,
    write,
)
from tests.servers import ServeConfig, start_sync

pytestmark = pytest.mark.slow

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(scope="module")
def started() -> dt.datetime:
    return utcnow().replace(microsecond=0)


@pytest.fixture(scope="module")
def short_lived(issuing_ca: CertificateAuthority, started: dt.datetime) -> IssuedCertificate:
    """A server certificate valid for one hour from ``started`` (issued by an intermediate)."""
    return issue(issuing_ca, "localhost", not_before=started, not_after=started + HOUR)


@pytest.fixture(scope="module")
def endpoint(short_lived: IssuedCertificate) -> Iterator[Target]:
    with tls_server(short_lived) as address:
        yield address


def test_probe_reads_the_whole_served_chain_with_alpn_h2(
    endpoint: Target, short_lived: IssuedCertificate, issuing_ca: CertificateAuthority
) -> None:
    result = probe_endpoint(endpoint)
    assert result.chain == (short_lived.certificate, issuing_ca.certificate)
    assert result.chain_complete
    assert result.chain_note is None
    assert result.alpn == "h2"
    assert result.tls_version in {"TLSv1.2", "TLSv1.3"}


def test_without_a_chain_reader_the_probe_reports_the_leaf_only(
    endpoint: Target, short_lived: IssuedCertificate
) -> None:
    result = probe_endpoint(endpoint, ProbeOptions(openssl=None))
    if result.chain_complete:  # Python 3.13+ reads the chain natively; nothing to fall back on
        assert result.chain[0] == short_lived.certificate
        return
    assert result.chain == (short_lived.certificate,)
    assert result.chain_note is not None
    assert result.chain_note.startswith("leaf only")


@pytest.mark.parametrize(
    ("after", "status", "code"),
    [
        (MINUTE, Status.OK, CheckExit.OK),
        (50 * MINUTE, Status.WARNING, CheckExit.WARNING),  # 83% used, 10 minutes left
        (57 * MINUTE, Status.CRITICAL, CheckExit.CRITICAL),  # 95% used
        (2 * HOUR, Status.EXPIRED, CheckExit.CRITICAL),
        (-MINUTE, Status.NOT_YET_VALID, CheckExit.CRITICAL),
    ],
    ids=["ok", "warning", "critical", "expired", "not-yet-valid"],
)
def test_check_of_a_live_endpoint_at_a_chosen_time(
    endpoint: Target, started: dt.datetime, after: dt.timedelta, status: Status, code: CheckExit
) -> None:
    report = check_targets([str(endpoint)], Thresholds(), started + after)
    leaf = report.certificates[0] if status is not Status.OK else None
    rows = {c.role: c for c in report.certificates}
    assert set(rows) == {"leaf", "intermediate"}
    assert rows["leaf"].status is status
    assert rows["leaf"].served
    assert rows["leaf"].source == str(endpoint)
    assert rows["intermediate"].status is Status.OK  # the intermediate lasts until 2039
    assert report.exit_code is code
    if leaf is not None:
        assert leaf.role == "leaf"  # the most urgent row comes first


def test_mtls_server_chain_is_read_without_a_client_certificate(
    issuing_ca: CertificateAuthority, root_ca: CertificateAuthority, started: dt.datetime
) -> None:
    """In TLS 1.3 the server's certificate arrives before it asks for the client's."""
    leaf = issue(issuing_ca, "localhost", not_before=started, not_after=started + HOUR)
    with tls_server(leaf, client_ca=root_ca) as address:
        report = check_targets([str(address)], Thresholds(), started + MINUTE)
    assert report.errors == ()
    assert [c.info.common_name for c in report.certificates] == ["localhost", "Monitor Issuing"]


def test_mtls_probe_presents_a_client_certificate(
    tmp_path: Path,
    issuing_ca: CertificateAuthority,
    root_ca: CertificateAuthority,
    started: dt.datetime,
) -> None:
    leaf = issue(issuing_ca, "localhost", not_before=started, not_after=started + HOUR)
    client = issue(
        issuing_ca, "prober", not_before=started, not_after=started + HOUR, profile=Profile.CLIENT
    )
    cert = write(tmp_path / "client.crt", client.chain_pem())
    key = write(tmp_path / "client.key", client.key_pem(b"secret"))
    options = ProbeOptions(client_cert=cert, client_key=key, password=b"secret")
    assert "secret" not in repr(options)
    with tls_server(leaf, client_ca=root_ca) as address:
        result = Prober(options).probe(address)
    assert result.chain[0] == leaf.certificate


def test_an_unusable_client_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    cert = write(tmp_path / "client.crt", b"not a certificate")
    with pytest.raises(ConfigurationError, match="cannot load the client certificate"):
        Prober(ProbeOptions(client_cert=cert, client_key=cert))
    with pytest.raises(ConfigurationError, match="pass both"):
        ProbeOptions(client_cert=cert)
    with pytest.raises(ConfigurationError, match="timeout"):
        ProbeOptions(timeout=0)


# -- negative controls: reported, never raised by check --------------------------------------------
def test_a_refused_port_is_unreachable() -> None:
    address = closed_port()
    with pytest.raises(EndpointError) as caught:
        probe_endpoint(address)
    assert caught.value.reason == "refused"
    report = check_targets([str(address)], Thresholds(), utcnow())
    assert report.exit_code is CheckExit.UNREACHABLE
    (error,) = report.errors
    assert error.kind is ErrorKind.ENDPOINT
    assert error.reason == "refused"
    assert error.message == f"{address}: connection refused"


def test_a_port_that_never_speaks_tls_times_out_within_the_bound() -> None:
    with silent_listener() as address, pytest.raises(EndpointError) as caught:
        probe_endpoint(address, ProbeOptions(timeout=0.3))
    assert caught.value.reason == "timeout"
    assert "did not finish in time" in str(caught.value)


def test_a_plaintext_grpc_server_fails_the_handshake() -> None:
    running = start_sync(ServeConfig(listen=Target("127.0.0.1", 0), tls=None, insecure=True))
    try:
        with pytest.raises(EndpointError) as caught:
            probe_endpoint(running.address, ProbeOptions(timeout=2.0))
    finally:
        running.stop(grace=0)
    assert caught.value.reason in {"handshake", "timeout"}


def test_an_unresolvable_name_is_reported() -> None:
    with pytest.raises(EndpointError) as caught:
        probe_endpoint(Target("no-such-host.invalid", 443), ProbeOptions(timeout=2.0))
    assert caught.value.reason == "resolve"


def test_several_endpoints_are_probed_concurrently(endpoint: Target, started: dt.datetime) -> None:
    """Four silent ports with a 1 s timeout take about one timeout, not four."""
    with (
        silent_listener() as a,
        silent_listener() as b,
        silent_listener() as c,
        silent_listener() as d,
    ):
        began = utcnow()
        report = check_targets(
            [str(endpoint), str(a), str(b), str(c), str(d)],
            Thresholds(),
            started + MINUTE,
            probe=ProbeOptions(timeout=1.0),
        )
        elapsed = (utcnow() - began).total_seconds()
    assert len(report.errors) == 4
    assert {e.reason for e in report.errors} == {"timeout"}
    assert report.certificates[0].info.common_name == "localhost"
    assert elapsed < 3.5  # one after another would take at least 4 s
