"""The pure half: probe results are values, and ``evaluate`` decides from them alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from grpcsec.doctor.checks import evaluate
from grpcsec.doctor.client import ClientMaterial
from grpcsec.doctor.client_checks import client_auth_mode
from grpcsec.doctor.connection_checks import version_status
from grpcsec.doctor.handshake import ServerHandshake
from grpcsec.doctor.observations import CallResult, Inputs, Observations
from grpcsec.doctor.probe import AfterHandshake, HandshakeOutcome, TlsProbe
from grpcsec.doctor.report import DoctorReport
from grpcsec.doctor.roots import Roots
from grpcsec.doctor.tcp import Endpoint, SniffOutcome, SniffResult, TcpOutcome, TcpResult
from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    Profile,
    SubjectAltNames,
    Validity,
    utcnow,
)
from grpcsec.target import Target
from tests.doctor.conftest import forge

NOW = utcnow()
TARGET = Target("127.0.0.1", 443)
CONNECTED = TcpResult(outcome=TcpOutcome.CONNECTED, endpoint=Endpoint(2, ("127.0.0.1", 443)))


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("checks root", now=NOW)


@pytest.fixture(scope="module")
def server(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue(Profile.SERVER, SubjectAltNames.build(ips=["127.0.0.1"]), now=NOW)


def der(issued: IssuedCertificate) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(Encoding.DER) for c in issued.chain)


def inputs(ca: CertificateAuthority, **changes: Any) -> Inputs:
    roots = Roots(certificates=(ca.certificate,), origin="explicit", source="ca.crt", pem=b"")
    base = Inputs(target=TARGET, server_name="127.0.0.1", roots=roots, timeout=2.0)
    return replace(base, **changes)


def tls(
    outcome: HandshakeOutcome = HandshakeOutcome.COMPLETED,
    *,
    offered: str = "default",
    version: str | None = "TLSv1.3",
    after: AfterHandshake | None = AfterHandshake.HTTP2,
    alpn: str | None = "h2",
    chain: tuple[bytes, ...] = (),
    requested: bool = False,
    recorded: bool = True,
    alert: str | None = None,
    cipher: str | None = "TLS_AES_128_GCM_SHA256",
    cas: tuple[bytes, ...] = (),
) -> TlsProbe:
    completed = outcome is HandshakeOutcome.COMPLETED
    return TlsProbe(
        offered=offered,
        with_client_certificate=False,
        outcome=outcome,
        alert=alert,
        version=version if completed else None,
        cipher=cipher if completed else None,
        alpn=alpn if completed else None,
        after=after if completed else None,
        server=ServerHandshake(
            version=version if recorded else None,
            alpn=alpn,
            chain_der=chain if recorded else (),
            certificate_requested=requested,
            acceptable_ca_names_der=cas,
        ),
        chain_der=() if recorded else chain,
        messages_recorded=recorded,
    )


def versions(*accepted: str) -> tuple[TlsProbe, ...]:
    return tuple(
        tls(offered=v, version=v)
        if v in accepted
        else tls(HandshakeOutcome.CLOSED, offered=v, version=None)
        for v in ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0")
    )


def healthy(server: IssuedCertificate) -> Observations:
    return Observations(
        tcp=CONNECTED,
        tls=tls(chain=der(server)),
        versions=versions("TLSv1.3", "TLSv1.2"),
        call=CallResult(code="OK", health="SERVING"),
    )


def report(given: Inputs, obs: Observations, now: dt.datetime = NOW) -> DoctorReport:
    return DoctorReport(target=str(TARGET), checks=evaluate(given, obs, now))


def test_healthy_observations_pass_every_check(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    result = report(inputs(ca), healthy(server))
    assert result.diagnosis == "ok"
    assert {c.status.value for c in result.checks} == {"pass"}


@pytest.mark.parametrize(
    ("outcome", "diagnosis"),
    [
        (TcpOutcome.REFUSED, "connection_refused"),
        (TcpOutcome.TIMEOUT, "timeout"),
        (TcpOutcome.DNS_FAILED, "dns_failure"),
        (TcpOutcome.FAILED, "connection_failed"),
    ],
)
def test_tcp_outcomes(ca: CertificateAuthority, outcome: TcpOutcome, diagnosis: str) -> None:
    result = report(inputs(ca), Observations(tcp=TcpResult(outcome=outcome, error="x")))
    assert result.diagnosis == diagnosis
    assert [c.status.value for c in result.checks[1:]] == ["skip"] * (len(result.checks) - 1)
    assert all(c.message == "not run: an earlier check failed" for c in result.checks[1:])


@pytest.mark.parametrize(
    ("probe", "sniff", "diagnosis"),
    [
        (tls(HandshakeOutcome.NOT_TLS), SniffOutcome.HTTP2, "plaintext_server"),
        (tls(HandshakeOutcome.CLOSED), SniffOutcome.HTTP2, "plaintext_server"),
        (tls(HandshakeOutcome.NOT_TLS), SniffOutcome.OTHER, "unknown_protocol"),
        (tls(HandshakeOutcome.CLOSED), SniffOutcome.CLOSED, "tls_handshake_failed"),
        (tls(HandshakeOutcome.TIMEOUT, version=None), None, "timeout"),
    ],
)
def test_what_a_tls_client_meets(
    ca: CertificateAuthority, probe: TlsProbe, sniff: SniffOutcome | None, diagnosis: str
) -> None:
    probe = replace(probe, server=ServerHandshake())
    seen = None if sniff is None else SniffResult(outcome=sniff, detail="HTTP/1.1 400")
    result = report(inputs(ca), Observations(tcp=CONNECTED, tls=probe, sniff=seen))
    assert result.diagnosis == diagnosis


@pytest.mark.parametrize(
    ("sniff", "probe", "diagnosis"),
    [
        (SniffOutcome.HTTP2, None, "ok"),
        (SniffOutcome.CLOSED, tls(after=None), "server_requires_tls"),
        (SniffOutcome.TLS, tls(after=None), "server_requires_tls"),
        (SniffOutcome.TIMEOUT, None, "timeout"),
        (SniffOutcome.OTHER, None, "unknown_protocol"),
    ],
)
def test_what_a_plaintext_client_meets(
    ca: CertificateAuthority, sniff: SniffOutcome, probe: TlsProbe | None, diagnosis: str
) -> None:
    obs = Observations(
        tcp=CONNECTED,
        sniff=SniffResult(outcome=sniff),
        tls=probe,
        call=CallResult(code="OK", health="SERVING"),
    )
    result = report(inputs(ca, insecure=True, roots=None), obs)
    assert result.diagnosis == diagnosis
    assert "tls_versions" not in {c.name for c in result.checks}


def test_only_legacy_versions_is_unsupported(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    obs = replace(healthy(server), versions=versions("TLSv1.1", "TLSv1.0"))
    assert report(inputs(ca), obs).diagnosis == "tls_version_unsupported"


def test_legacy_versions_besides_modern_ones_warn(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    obs = replace(healthy(server), versions=versions("TLSv1.3", "TLSv1.2", "TLSv1.0"))
    result = report(inputs(ca), obs)
    assert result.diagnosis == "ok"
    assert result.checks[2].code == "weak_tls_version"


def test_version_status_without_recorded_messages() -> None:
    refused = tls(HandshakeOutcome.ALERT, offered="TLSv1.0", recorded=False, version=None)
    assert version_status(replace(refused, alert="protocol_version")) == "refused"
    assert version_status(replace(refused, alert="handshake_failure")) == "unknown"
    assert version_status(tls(HandshakeOutcome.TIMEOUT, offered="TLSv1.2", version=None)) == (
        "unknown"
    )


def test_alpn_missing_or_refused(ca: CertificateAuthority, server: IssuedCertificate) -> None:
    no_alpn = replace(healthy(server), tls=tls(alpn=None, chain=der(server)))
    assert report(inputs(ca), no_alpn).diagnosis == "no_alpn_h2"
    refused = replace(
        healthy(server),
        tls=tls(HandshakeOutcome.ALERT, version=None, alert="no_application_protocol"),
    )
    assert report(inputs(ca), refused).diagnosis == "no_alpn_h2"


@pytest.mark.parametrize(
    ("cipher", "status"),
    [("ECDHE-ECDSA-AES128-GCM-SHA256", "pass"), ("AES256-SHA", "warn")],
)
def test_tls12_cipher_strength(
    ca: CertificateAuthority, server: IssuedCertificate, cipher: str, status: str
) -> None:
    obs = replace(healthy(server), tls=tls(version="TLSv1.2", cipher=cipher, chain=der(server)))
    checks = {c.name: c for c in report(inputs(ca), obs).checks}
    assert checks["cipher"].status.value == status


@pytest.mark.parametrize(
    ("probe", "mode"),
    [
        (tls(), "none"),
        (tls(requested=True), "optional"),
        (tls(requested=True, after=AfterHandshake.CLOSED), "required"),
        (tls(requested=True, after=AfterHandshake.ALERT, alert="certificate_required"), "required"),
        (tls(after=AfterHandshake.CLOSED, recorded=False), "required"),
        (tls(after=AfterHandshake.CLOSED), "closed"),
        (tls(after=AfterHandshake.TIMEOUT), "unknown"),
        (tls(HandshakeOutcome.ALERT, version="TLSv1.2", requested=True), "required"),
        (tls(HandshakeOutcome.CLOSED, version=None), None),
    ],
)
def test_client_auth_mode(probe: TlsProbe, mode: str | None) -> None:
    assert client_auth_mode(probe) == mode


def test_required_client_certificate_names_the_acceptable_cas(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    probe = tls(
        requested=True,
        after=AfterHandshake.ALERT,
        alert="certificate_required",
        chain=der(server),
        cas=(ca.certificate.subject.public_bytes(),),
    )
    result = report(inputs(ca), replace(healthy(server), tls=probe, call=None))
    assert result.diagnosis == "client_cert_required"
    cause = result.root_cause
    assert cause is not None
    assert "certificate_required" in cause.message
    assert "'CN=checks root'" in (cause.fix or "")


def test_client_certificate_not_requested_warns(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    issued = ca.issue(Profile.CLIENT, SubjectAltNames.build(dns=["c.test"]), now=NOW)
    assert issued.key is not None
    material = ClientMaterial(
        cert_path="c.crt", key_path="c.key", chain=issued.chain, key=issued.key
    )
    result = report(inputs(ca, client=material), healthy(server))
    checks = {c.name: c for c in result.checks}
    assert result.diagnosis == "ok"
    assert checks["client_auth"].code == "client_cert_not_requested"
    assert "client_cert_accepted" not in checks


@pytest.mark.parametrize(
    ("alert", "expected"),
    [("unknown_ca", "does not trust the CA"), (None, "without a reason")],
)
def test_client_certificate_rejection_says_how(
    ca: CertificateAuthority, server: IssuedCertificate, alert: str | None, expected: str
) -> None:
    issued = ca.issue(Profile.CLIENT, SubjectAltNames.build(dns=["c.test"]), now=NOW)
    assert issued.key is not None
    material = ClientMaterial(
        cert_path="c.crt", key_path="c.key", chain=issued.chain, key=issued.key
    )
    asked = tls(requested=True, after=AfterHandshake.CLOSED, chain=der(server))
    after = AfterHandshake.ALERT if alert else AfterHandshake.CLOSED
    rejected = replace(tls(requested=True, after=after, alert=alert), with_client_certificate=True)
    obs = replace(healthy(server), tls=asked, client_tls=rejected, call=None)
    result = report(inputs(ca, client=material), obs)
    assert result.diagnosis == "client_cert_rejected"
    assert result.root_cause is not None
    assert expected in result.root_cause.message


def test_server_certificate_due_for_renewal_warns_at_a_later_now(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    later = server.certificate.not_valid_before_utc + dt.timedelta(days=80)
    result = report(inputs(ca), healthy(server), now=later)
    checks = {c.name: c for c in result.checks}
    assert result.diagnosis == "ok"
    assert checks["validity"].code == "renewal_due"


def test_expired_intermediate_is_named(ca: CertificateAuthority) -> None:
    day = dt.timedelta(days=1)
    issuing = ca.create_intermediate(
        "short issuing", validity=Validity(not_before=NOW - day, not_after=NOW + day), now=NOW
    )
    leaf, _ = forge(
        issuing,
        common_name="outlives its CA",
        names=SubjectAltNames.build(ips=["127.0.0.1"]),
        not_after=NOW + 10 * day,
    )
    chain = tuple(c.public_bytes(Encoding.DER) for c in (leaf, issuing.certificate))
    obs = Observations(tcp=CONNECTED, tls=tls(chain=chain), versions=versions("TLSv1.3"))
    result = report(inputs(ca), obs, now=NOW + 2 * day)
    assert result.diagnosis == "server_cert_expired"
    assert result.root_cause is not None
    assert "'CN=short issuing' expired" in result.root_cause.message


@pytest.mark.parametrize(
    ("call", "token", "diagnosis", "in_fix"),
    [
        (CallResult(code="OK", health="NOT_SERVING"), False, "not_serving", "log"),
        (CallResult(code="OK", health="SERVICE_UNKNOWN"), False, "not_serving", "log"),
        (CallResult(code="NOT_FOUND"), False, "not_serving", "health servicer"),
        (CallResult(code="UNAUTHENTICATED"), False, "unauthenticated", "--token"),
        (CallResult(code="UNAUTHENTICATED"), True, "unauthenticated", "token was refused"),
        (CallResult(code="PERMISSION_DENIED"), True, "permission_denied", "policy"),
        (CallResult(code="DEADLINE_EXCEEDED"), False, "timeout", "address"),
        (
            CallResult(code="UNAVAILABLE", details="last error: UNAVAILABLE: Socket closed"),
            False,
            "client_cert_required",
            "--cert",
        ),
        (CallResult(code="INTERNAL", details="boom"), False, "grpc_call_failed", "GRPC_TRACE"),
    ],
)
def test_grpc_call_outcomes(
    ca: CertificateAuthority,
    server: IssuedCertificate,
    *,
    call: CallResult,
    token: bool,
    diagnosis: str,
    in_fix: str,
) -> None:
    result = report(inputs(ca, token_given=token), replace(healthy(server), call=call))
    assert result.diagnosis == diagnosis
    assert result.root_cause is not None
    assert in_fix in (result.root_cause.fix or "")


def test_health_unimplemented_is_a_warning(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    obs = replace(healthy(server), call=CallResult(code="UNIMPLEMENTED"))
    result = report(inputs(ca), obs)
    assert result.diagnosis == "ok"
    assert result.checks[-1].code == "health_unimplemented"


def test_facts_after_the_first_failure_are_still_judged(
    ca: CertificateAuthority, server: IssuedCertificate
) -> None:
    other = CertificateAuthority.create("unrelated", now=NOW)
    given = inputs(
        ca, roots=Roots(certificates=(other.certificate,), origin="explicit", source="x")
    )
    result = report(given, replace(healthy(server), call=None))
    checks = {c.name: c.status.value for c in result.checks}
    assert result.diagnosis == "unknown_authority"
    assert checks["hostname"] == "pass"
    assert checks["grpc_health"] == "skip"
